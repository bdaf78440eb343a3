//! One time range for every timestamp Revisit accepts: RFC 3339 from 0001-01-01T00:00:00.000Z to
//! 9999-12-31T23:59:59.999Z, the same in bodies and query parameters; written, it reads back
//! exactly, and no stored time makes a read fail.

use revisit::domain::Role;
use serde_json::{Value, json};
use sqlx::Connection;

use crate::{
    both_backends,
    helpers::{
        TestApp, assert_error, assert_invalid, closed_order, fleet, invalid_paths, location,
    },
};

const FIRST: &str = "0001-01-01T00:00:00.000Z";
const LAST: &str = "9999-12-31T23:59:59.999Z";

/// Every time property of a work order at `t`.
fn at(t: &str) -> Value {
    json!({"PlannedStartDate": t, "PlannedEndDate": t, "OrderDate": t,
        "TimeConstraints": [{"ID": "w", "Type": "1001", "Period": {"Start": t, "End": t}}],
        "RequiredParts": [{"ProdNum": "P1", "Qty": 1, "EstimatedDelivery": t}]})
}

/// The paths of [`at`]'s time properties.
const PATHS: [&str; 6] = [
    "$.PlannedStartDate",
    "$.PlannedEndDate",
    "$.OrderDate",
    "$.TimeConstraints[0].Period.Start",
    "$.TimeConstraints[0].Period.End",
    "$.RequiredParts[0].EstimatedDelivery",
];

/// Valid RFC 3339 or not, each outside what Revisit accepts.
const REFUSED: [&str; 9] = [
    "-000001-01-01T00:00:00Z",
    "-001-01-01T00:00:00.000Z",
    "0000-12-31T23:59:59.999Z",
    "0001-01-01T00:59:59.999+01:00",
    "10000-01-01T00:00:00Z",
    "9999-12-31T23:59:59.999-00:01",
    "2026-12-01 08:00",
    "2026-12-01T08:00:00",
    "2026-12-01T08:00Z",
];

both_backends!(
    work_orders_at_both_ends_of_the_time_range_read_back_exactly_and_list_by_from_and_to,
    |app| async move {
        let d = app.user("acme", "dora", Role::Dispatcher).await.token;
        let mut first = at(FIRST);
        first["PlannedEndDate"] = json!("0001-01-01T01:30:00+01:00");
        first["TimeConstraints"][0]["Period"]["End"] = json!("0001-01-01T00:00:00.001Z");
        let mut last = at(LAST);
        // Its end would be past the range: PlannedDur alone says how long it is.
        last.as_object_mut().unwrap().remove("PlannedEndDate");
        last["PlannedDur"] = json!(60);
        last["TimeConstraints"][0]["Period"]["Start"] = json!("9999-12-31T23:59:59.998Z");
        // Written with an offset, the same instant.
        last["OrderDate"] = json!("9999-12-31T22:59:59.999-01:00");
        let mut mid = at("2026-12-01T08:00:00.000Z");
        mid["TimeConstraints"][0]["Period"]["End"] = json!("2026-12-01T12:00:00.000Z");
        for (num, body) in [("WO-LAST", &last), ("WO-FIRST", &first), ("WO-MID", &mid)] {
            app.put_order(&d, num, body).await.expect(201);
        }

        let first_back = app.get_order(&d, "WO-FIRST").await.expect(200).body;
        assert_eq!(first_back["PlannedStartDate"], FIRST);
        assert_eq!(first_back["PlannedEndDate"], "0001-01-01T00:30:00.000Z");
        assert_eq!(first_back["OrderDate"], FIRST);
        assert_eq!(
            first_back["TimeConstraints"][0]["Period"],
            json!({"Start": FIRST, "End": "0001-01-01T00:00:00.001Z"})
        );
        assert_eq!(first_back["RequiredParts"][0]["EstimatedDelivery"], FIRST);
        let last_back = app.get_order(&d, "WO-LAST").await.expect(200).body;
        assert_eq!(last_back["PlannedStartDate"], LAST);
        assert_eq!(last_back["OrderDate"], LAST);
        assert_eq!(
            last_back["TimeConstraints"][0]["Period"],
            json!({"Start": "9999-12-31T23:59:59.998Z", "End": LAST})
        );
        assert_eq!(last_back["RequiredParts"][0]["EstimatedDelivery"], LAST);
        // What was read back can be written back as it is, and still reads the same.
        app.put_order(&d, "WO-LAST", &last_back).await.expect(200);
        let patched = app
            .patch_order(&d, "WO-FIRST", &json!({"Notes": "oldest"}))
            .await
            .expect(200);
        assert_eq!(patched.body["PlannedStartDate"], FIRST, "{}", patched.body);
        let mut expected = first_back.clone();
        expected["Notes"] = json!("oldest");
        assert_eq!(
            app.get_order(&d, "WO-FIRST").await.expect(200).body,
            expected
        );
        assert_eq!(
            app.get_order(&d, "WO-LAST").await.expect(200).body,
            last_back
        );

        // From is inclusive, To exclusive, at the edges of the range as anywhere.
        let all = ["WO-FIRST", "WO-MID", "WO-LAST"];
        assert_eq!(app.list_nums(&d, &[("From", FIRST)]).await, all);
        assert_eq!(
            app.list_nums(&d, &[("From", "0001-01-01T01:00:00+01:00")])
                .await,
            all
        );
        assert_eq!(
            app.list_nums(&d, &[("From", "0001-01-01T00:00:00.001Z")])
                .await,
            ["WO-MID", "WO-LAST"]
        );
        assert_eq!(app.list_nums(&d, &[("From", LAST)]).await, ["WO-LAST"]);
        assert_eq!(
            app.list_nums(&d, &[("To", FIRST)]).await,
            Vec::<String>::new()
        );
        assert_eq!(
            app.list_nums(&d, &[("To", "0001-01-01T00:00:00.001Z")])
                .await,
            ["WO-FIRST"]
        );
        assert_eq!(
            app.list_nums(&d, &[("To", LAST)]).await,
            ["WO-FIRST", "WO-MID"]
        );
        assert_eq!(
            app.list_nums(
                &d,
                &[("From", FIRST), ("To", "9999-12-31T22:59:59.999-01:00")]
            )
            .await,
            ["WO-FIRST", "WO-MID"]
        );
        // The list holds the orders as they read back.
        let r = app.list_orders(&d, &[("From", LAST)]).await.expect(200);
        assert_eq!(r.body["WorkOrders"][0], last_back);
    }
);

both_backends!(
    times_outside_the_range_or_not_rfc_3339_are_the_same_400_in_bodies_and_query_parameters,
    |app| async move {
        let f = fleet(&app).await;
        let d = &f.dispatcher;
        app.put_order(d, "WO-1", &closed_order("WO-1", "tom"))
            .await
            .expect(201);
        for bad in REFUSED {
            // A work order: each time property is named, and nothing is stored.
            let r = app.put_order(d, "WO-BAD", &at(bad)).await;
            assert_error(&r, 400);
            let paths = invalid_paths(&r);
            for path in PATHS {
                assert!(
                    paths.iter().any(|p| p == path),
                    "{bad}: {path} not in {}",
                    r.body
                );
            }
            let reason = r.body["invalidParams"][0]["reason"].clone();
            assert_eq!(r.body["invalidParams"][0]["value"], bad, "{}", r.body);
            assert_error(&app.get_order(d, "WO-BAD").await, 404);
            for (method, path) in [("POST", "$.OrderDate"), ("PATCH", "$.PlannedStartDate")] {
                let body = json!({path.trim_start_matches("$."): bad});
                let r = match method {
                    "POST" => app.post_order(d, "WO-1", &body).await,
                    _ => app.patch_order(d, "WO-1", &body).await,
                };
                assert_invalid(&r, 400, path);
            }

            // The list's query parameters: the same reason.
            for k in ["From", "To"] {
                let r = app.list_orders(d, &[(k, bad)]).await;
                assert_invalid(&r, 400, k);
                assert_eq!(
                    r.body["invalidParams"][0]["reason"], reason,
                    "{bad}: {}",
                    r.body
                );
            }

            // A Book Job and an Appointment Search.
            let slot =
                json!({"Type": "1001", "Period": {"Start": bad, "End": "2030-12-02T17:00:00Z"}});
            let r = app
                .book_followup(&f.tech.token, "WO-1", &json!({"TimeConstraints": [slot]}))
                .await;
            assert_invalid(&r, 400, "$.TimeConstraints[0].Period.Start");
            assert_eq!(
                r.body["invalidParams"][0]["reason"], reason,
                "{bad}: {}",
                r.body
            );
            let search = json!({"OriginalOrderNum": "WO-1", "TimeConstraints": [
                {"Type": "1002", "Period": {"Start": "2030-12-02T08:00:00Z", "End": bad}}],
                "RequiredParts": [{"ProdNum": "P1", "EstimatedDelivery": bad}]});
            let r = app.open_slots(d, &search).await;
            assert_invalid(&r, 400, "$.TimeConstraints[0].Period.End");
            assert_invalid(&r, 400, "$.RequiredParts[0].EstimatedDelivery");
        }
        // Out of range says so, wherever it is written.
        let r = app
            .list_orders(d, &[("From", "-000001-01-01T00:00:00Z")])
            .await;
        let reason = r.body["invalidParams"][0]["reason"]
            .as_str()
            .unwrap_or_default();
        assert!(
            reason.contains("0001-01-01T00:00:00.000Z to 9999-12-31T23:59:59.999Z"),
            "{}",
            r.body
        );

        // Cut to the millisecond, this period would be empty: refused, not stored unreadable.
        let r = app
            .put_order(
                d,
                "WO-BAD",
                &json!({"TimeConstraints": [{"Type": "1001", "Period":
                {"Start": "2026-12-01T08:00:00.0001Z", "End": "2026-12-01T08:00:00.0009Z"}}]}),
            )
            .await;
        assert_invalid(&r, 400, "$.TimeConstraints[0].Period.Start");
        assert_error(&app.get_order(d, "WO-BAD").await, 404);
        assert_eq!(app.list_nums(d, &[]).await, ["WO-1"]);
    }
);

both_backends!(
    a_booking_or_a_search_at_the_ends_of_the_range_is_answered_never_a_500,
    |app| async move {
        let f = fleet(&app).await;
        app.put_order(&f.dispatcher, "WO-1", &closed_order("WO-1", "tom"))
            .await
            .expect(201);
        let tom = &f.tech.token;
        // Slots at the very ends of the range are past the horizon or before the lead time.
        for (s, e) in [
            (FIRST, "0001-01-01T04:00:00.000Z"),
            ("9999-12-31T20:00:00.000Z", LAST),
        ] {
            let body =
                json!({"TimeConstraints": [{"Type": "1001", "Period": {"Start": s, "End": e}}]});
            let r = app.book_followup(tom, "WO-1", &body).await;
            assert_error(&r, 409);
            assert_eq!(
                r.body["type"], "urn:revisit:error:slot-unavailable",
                "{}",
                r.body
            );
        }
        // A customer available over the whole range is offered the ordinary windows; one
        // available only in the last hours of it, none.
        let search = |s: &str, e: &str| {
            json!({"OriginalOrderNum": "WO-1", "Location": location("WO-1"),
                "TimeConstraints": [{"Type": "1002", "Period": {"Start": s, "End": e}}],
                "RequiredParts": [{"ProdNum": "P1", "EstimatedDelivery": FIRST}]})
        };
        let r = app.open_slots(tom, &search(FIRST, LAST)).await.expect(200);
        assert!(
            !r.body["TimeConstraints"].as_array().unwrap().is_empty(),
            "{}",
            r.body
        );
        let r = app
            .open_slots(tom, &search("9999-12-31T00:00:00.000Z", LAST))
            .await
            .expect(200);
        assert_eq!(r.body["TimeConstraints"], json!([]), "{}", r.body);
        // And a slot offered by the search books as usual with the range's ends around it.
        let offered = app
            .open_slots(tom, &search(FIRST, LAST))
            .await
            .expect(200)
            .body;
        let mut body = book_body_of(&offered["TimeConstraints"][0]);
        body["RequiredParts"] = json!([{"ProdNum": "P1", "EstimatedDelivery": FIRST}]);
        app.book_followup(tom, "WO-1", &body).await.expect(200);
    }
);

/// A Book Job choosing the offered TimeConstraints item `tc`.
fn book_body_of(tc: &Value) -> Value {
    json!({"TimeConstraints": [{"Type": "1001", "Period": tc["Period"].clone()}]})
}

both_backends!(
    a_work_order_stored_with_a_time_an_earlier_version_let_in_still_reads,
    |app| async move {
        let d = app.user("acme", "dora", Role::Dispatcher).await.token;
        app.put_order(&d, "WO-OLD", &json!({"PlannedDur": 30, "Notes": "n"}))
            .await
            .expect(201);
        // What versions before the range stored for PlannedStartDate "-000001-01-01T00:00:00Z".
        let body = json!({"OrderNum": "WO-OLD", "PlannedDur": 30, "Notes": "n",
            "PlannedStartDate": "-001-01-01T00:00:00.000Z", "OrderDate": "0000-06-01T00:00:00.000Z"});
        set_stored_body(&app, "WO-OLD", &body).await;

        let r = app.get_order(&d, "WO-OLD").await.expect(200);
        assert_eq!(r.body, body);
        // Writing it back as it is is refused, naming the times to correct.
        let r = app.put_order(&d, "WO-OLD", &body).await;
        assert_invalid(&r, 400, "$.PlannedStartDate");
        assert_invalid(&r, 400, "$.OrderDate");
        // Correcting them works.
        let r = app
            .patch_order(
                &d,
                "WO-OLD",
                &json!({"PlannedStartDate": FIRST, "OrderDate": LAST}),
            )
            .await
            .expect(200);
        assert_eq!(r.body["PlannedStartDate"], FIRST);
        assert_eq!(app.list_nums(&d, &[("From", FIRST)]).await, ["WO-OLD"]);
    }
);

/// Replaces a stored order's body behind the API's back.
async fn set_stored_body(app: &TestApp, num: &str, body: &Value) {
    let url = app.state.config.database_url.expose();
    let text = body.to_string();
    if url.starts_with("sqlite:") {
        let mut c = sqlx::SqliteConnection::connect(url).await.expect("connect");
        sqlx::query("UPDATE work_orders SET body = ? WHERE order_num = ?")
            .bind(text)
            .bind(num)
            .execute(&mut c)
            .await
            .expect("update");
    } else {
        let mut c = sqlx::PgConnection::connect(url).await.expect("connect");
        sqlx::query("UPDATE work_orders SET body = $1::jsonb WHERE order_num = $2")
            .bind(text)
            .bind(num)
            .execute(&mut c)
            .await
            .expect("update");
    }
}
