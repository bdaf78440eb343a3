//! The dispatcher's board over HTTP (`GET /scheduling/v1/board`): a work center's day with each
//! technician's shifts, visits in order with the travel before them, and the totals; an
//! unchanged day answers 304 to its ETag; only admins and dispatchers of the entity read it.

use jiff::{SignedDuration, Timestamp};
use reqwest::header::IF_NONE_MATCH;
use revisit::domain::{Role, time};
use serde_json::{Value, json};

use crate::{
    both_backends,
    helpers::{
        AREA, JOB_LAT, JOB_LON, Resp, TestApp, assert_error, assert_invalid, book_body,
        closed_order, fleet, local, location, order_type_body, technician_body, tz, window,
        work_center_body,
    },
};

/// An open REPAIR visit of `user`, `days` from today at `hhmm` local for an hour, promised
/// 08:00-12:00 of that day, `km_east` km east of the work center.
fn visit(num: &str, user: &str, days: i64, hhmm: &str, km_east: f64) -> Value {
    let start = local(days, hhmm);
    let mut loc = location(num);
    loc["Address"]["Lon"] = json!(format!("{:.4}", JOB_LON + km_east / 77.8));
    json!({
        "OrderNum": num, "OrderType": "REPAIR", "OrderStatus": 1, "DispatchStatus": 3,
        "UserName": user,
        "PlannedStartDate": time::format(start),
        "PlannedEndDate": time::format(start + SignedDuration::from_hours(1)),
        "TimeConstraints": [{"Type": "1001", "Period": {
            "Start": time::format(local(days, "08:00")), "End": time::format(local(days, "12:00"))}}],
        "Account": {"AccountNum": format!("A-{num}"), "AccountType": "1002", "Name": format!("Customer {num}")},
        "Location": loc,
    })
}

fn date(days: i64) -> String {
    (Timestamp::now().to_zoned(tz()).date() + jiff::Span::new().days(days)).to_string()
}

async fn board(app: &TestApp, token: &str, query: &str) -> Resp {
    app.request(
        reqwest::Method::GET,
        &format!("/scheduling/v1/board?{query}"),
        Some(token),
        None,
    )
    .await
}

fn ts(v: &Value) -> Timestamp {
    time::parse(v.as_str().unwrap_or_else(|| panic!("a time, not {v}")))
        .expect("a wire time")
        .to_timestamp()
}

both_backends!(
    a_day_shows_every_technicians_shift_visits_in_order_with_travel_and_the_totals,
    |app| async move {
        let f = fleet(&app).await;
        app.sched_put(&f.admin, "technicians", "tina", &technician_body("tina"))
            .await
            .expect(201);
        // tom: two visits tomorrow (the second given first), one the day after; tina none.
        for (num, days, hhmm, km) in [
            ("WO-2", 1, "10:30", 8.0),
            ("WO-1", 1, "08:30", 0.0),
            ("WO-3", 2, "09:00", 0.0),
        ] {
            app.put_order(&f.dispatcher, num, &visit(num, "tom", days, hhmm, km))
                .await
                .expect(201);
        }
        let r = board(
            &app,
            &f.dispatcher,
            &format!("ServiceAreaID={AREA}&Date={}", date(1)),
        )
        .await
        .expect(200);
        let b = &r.body;
        assert_eq!(b["TimeZone"], "Europe/Paris");
        assert_eq!(b["Date"], date(1));
        assert_eq!(ts(&b["Day"]["Start"]), local(1, "00:00"));
        let techs = b["Technicians"].as_array().unwrap();
        let names: Vec<&str> = techs
            .iter()
            .map(|t| t["UserName"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["tina", "tom"]);
        let tom = &techs[1];
        assert_eq!(ts(&tom["Shifts"][0]["Start"]), local(1, "07:00"));
        assert_eq!(ts(&tom["Shifts"][0]["End"]), local(1, "21:00"));
        let visits = tom["Visits"].as_array().unwrap();
        let nums: Vec<&str> = visits
            .iter()
            .map(|v| v["OrderNum"].as_str().unwrap())
            .collect();
        assert_eq!(nums, ["WO-1", "WO-2"], "only that day's, in planned order");
        assert_eq!(visits[0]["Stop"], 1);
        assert_eq!(ts(&visits[0]["Start"]), local(1, "08:30"));
        assert_eq!(ts(&visits[0]["End"]), local(1, "09:30"));
        assert_eq!(ts(&visits[0]["Window"]["Start"]), local(1, "08:00"));
        assert_eq!(visits[0]["Customer"], "Customer WO-1");
        assert_eq!(visits[0]["Address"], "1 Place Bellecour, Lyon");
        // Home is ~2 km from the work center; WO-2 is 8 km east of WO-1: each leg is
        // distance x 1.3 / 40 km/h, rounded up.
        let legs: Vec<i64> = visits
            .iter()
            .map(|v| v["TravelMinutes"].as_i64().unwrap())
            .collect();
        assert!(legs[0] >= 2 && legs[0] <= 6, "{legs:?}");
        assert!(legs[1] >= 14 && legs[1] <= 17, "{legs:?}");
        let home = tom["TravelHomeMinutes"].as_i64().unwrap();
        let t = &tom["Totals"];
        assert_eq!(t["Visits"], 2);
        assert_eq!(t["WorkMinutes"], 120);
        assert_eq!(t["TravelMinutes"], legs[0] + legs[1] + home);
        assert_eq!(t["ShiftMinutes"], 14 * 60);
        assert!(techs[0]["Visits"].as_array().unwrap().is_empty());
        assert_eq!(techs[0]["Totals"]["Utilisation"], 0.0);
        assert_eq!(b["Totals"]["Visits"], 2);
        assert_eq!(b["Totals"]["ShiftMinutes"], 2 * 14 * 60);
        assert_eq!(b["Totals"]["TravelMinutes"], t["TravelMinutes"]);
    }
);

both_backends!(
    a_daylight_saving_day_has_23_hours_and_its_shifts_keep_their_local_times,
    |app| async move {
        let f = fleet(&app).await;
        // Europe/Paris springs forward on 29 March 2026 (02:00 becomes 03:00).
        let r = board(
            &app,
            &f.admin,
            &format!("ServiceAreaID={AREA}&Date=2026-03-29"),
        )
        .await
        .expect(200);
        let b = &r.body;
        assert_eq!(b["Day"]["Start"], "2026-03-28T23:00:00.000Z");
        assert_eq!(b["Day"]["End"], "2026-03-29T22:00:00.000Z");
        let shift = &b["Technicians"][0]["Shifts"][0];
        assert_eq!(shift["Start"], "2026-03-29T05:00:00.000Z");
        assert_eq!(shift["End"], "2026-03-29T19:00:00.000Z");
        let r = board(
            &app,
            &f.admin,
            &format!("ServiceAreaID={AREA}&Date=2026-10-25"),
        )
        .await
        .expect(200);
        assert_eq!(r.body["Day"]["Start"], "2026-10-24T22:00:00.000Z");
        assert_eq!(r.body["Day"]["End"], "2026-10-25T23:00:00.000Z");
        assert_eq!(
            r.body["Technicians"][0]["Shifts"][0]["Start"],
            "2026-10-25T06:00:00.000Z"
        );
    }
);

both_backends!(
    a_split_shift_shows_its_break_and_a_day_off_has_no_shift,
    |app| async move {
        let f = fleet(&app).await;
        let mut tom = technician_body("tom");
        tom["Shifts"] = json!([
            {"Days": ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"], "Start": "08:00", "End": "12:00"},
            {"Days": ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"], "Start": "13:00", "End": "17:00"},
        ]);
        tom["Exceptions"] = json!([{"Date": date(2)}]);
        app.sched_put(&f.admin, "technicians", "tom", &tom)
            .await
            .expect(200);
        let r = board(
            &app,
            &f.dispatcher,
            &format!("ServiceAreaID={AREA}&Date={}", date(1)),
        )
        .await
        .expect(200);
        let shifts = r.body["Technicians"][0]["Shifts"]
            .as_array()
            .unwrap()
            .clone();
        assert_eq!(shifts.len(), 2);
        assert_eq!(ts(&shifts[0]["End"]), local(1, "12:00"));
        assert_eq!(ts(&shifts[1]["Start"]), local(1, "13:00"));
        assert_eq!(r.body["Technicians"][0]["Totals"]["ShiftMinutes"], 8 * 60);
        let r = board(
            &app,
            &f.dispatcher,
            &format!("ServiceAreaID={AREA}&Date={}", date(2)),
        )
        .await
        .expect(200);
        assert_eq!(r.body["Technicians"][0]["Shifts"], json!([]));
    }
);

both_backends!(
    the_boards_shifts_are_the_ones_the_scheduler_offers_from_whatever_the_weekdays_spelling,
    |app| async move {
        let f = fleet(&app).await;
        // Weekdays as validation takes them (full names, any case), which the board once read
        // as no shift at all; an exception day with other hours.
        let mut tom = technician_body("tom");
        tom["Shifts"] = json!([{"Days": ["monday", "TUESDAY", "Wednesday", "thursday",
            "Friday", "saturday", "Sunday"], "Start": "07:00", "End": "13:00"}]);
        tom["Exceptions"] = json!([{"Date": date(2), "Start": "14:00", "End": "21:00"}]);
        app.sched_put(&f.admin, "technicians", "tom", &tom)
            .await
            .expect(200);
        let shifts = |r: &Resp| -> Vec<(Timestamp, Timestamp)> {
            r.body["Technicians"][0]["Shifts"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| (ts(&s["Start"]), ts(&s["End"])))
                .collect()
        };
        let day1 = board(
            &app,
            &f.dispatcher,
            &format!("ServiceAreaID={AREA}&Date={}", date(1)),
        )
        .await
        .expect(200);
        assert_eq!(shifts(&day1), [(local(1, "07:00"), local(1, "13:00"))]);
        assert_eq!(
            day1.body["Technicians"][0]["Totals"]["ShiftMinutes"],
            6 * 60
        );
        let day2 = board(
            &app,
            &f.dispatcher,
            &format!("ServiceAreaID={AREA}&Date={}", date(2)),
        )
        .await
        .expect(200);
        assert_eq!(shifts(&day2), [(local(2, "14:00"), local(2, "21:00"))]);
        // The scheduler offers tom's time on those days by the same shifts: the morning window
        // on day 1 only, the afternoon and evening ones on day 2 only.
        app.put_order(&f.dispatcher, "WO-X", &closed_order("WO-X", "tom"))
            .await
            .expect(201);
        let r = app
            .open_slots(&f.tech.token, &json!({"OriginalOrderNum": "WO-X"}))
            .await
            .expect(200);
        let offered: Vec<(Timestamp, Timestamp)> = r.body["TimeConstraints"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| (ts(&o["Period"]["Start"]), ts(&o["Period"]["End"])))
            .collect();
        for (w, on_shift) in [
            (window(1, 0), true),
            (window(1, 1), false),
            (window(2, 0), false),
            (window(2, 1), true),
            (window(2, 2), true),
        ] {
            assert_eq!(offered.contains(&w), on_shift, "{w:?} in {offered:?}");
        }
    }
);

both_backends!(
    a_visit_without_an_end_lasts_on_the_board_as_long_as_the_scheduler_holds_it,
    |app| async move {
        let f = fleet(&app).await;
        // No PlannedEndDate nor PlannedDur: the scheduler holds its order type's 60 minutes.
        let mut wo = visit("WO-1", "tom", 1, "09:00", 0.0);
        wo.as_object_mut().unwrap().remove("PlannedEndDate");
        app.put_order(&f.dispatcher, "WO-1", &wo).await.expect(201);
        let r = board(
            &app,
            &f.dispatcher,
            &format!("ServiceAreaID={AREA}&Date={}", date(1)),
        )
        .await
        .expect(200);
        let v = &r.body["Technicians"][0]["Visits"][0];
        assert_eq!(ts(&v["End"]), local(1, "10:00"), "{v}");
        assert_eq!(r.body["Technicians"][0]["Totals"]["WorkMinutes"], 60);
    }
);

both_backends!(
    a_booked_follow_up_is_marked_on_its_day_and_counted_on_the_day_it_was_booked,
    |app| async move {
        let f = fleet(&app).await;
        app.put_order(&f.dispatcher, "WO-X", &closed_order("WO-X", "tom"))
            .await
            .expect(201);
        let today = format!("ServiceAreaID={AREA}&Date={}", date(0));
        let before = board(&app, &f.dispatcher, &today).await.expect(200);
        assert_eq!(before.body["Totals"]["FollowupsBooked"], 0);
        // The closed visit stays on the board with its status.
        let closed: Vec<&Value> = before.body["Technicians"][0]["Visits"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|v| v["OrderNum"] == "WO-X")
            .collect();
        assert_eq!(closed.len(), 1, "{}", before.body);
        assert_eq!(closed[0]["OrderStatus"], 4097);
        let r = app
            .book_followup(&f.tech.token, "WO-X", &book_body(window(1, 1)))
            .await
            .expect(200);
        let new_num = r.body["OrderNum"]
            .as_str()
            .expect("the new order")
            .to_string();
        let after = board(&app, &f.dispatcher, &today).await.expect(200);
        assert_eq!(after.body["Totals"]["FollowupsBooked"], 1);
        let next = board(
            &app,
            &f.dispatcher,
            &format!("ServiceAreaID={AREA}&Date={}", date(1)),
        )
        .await
        .expect(200);
        let v = &next.body["Technicians"][0]["Visits"][0];
        assert_eq!(v["OrderNum"], new_num.as_str());
        assert_eq!(v["OriginalOrderNum"], "WO-X");
        assert_eq!(next.body["Technicians"][0]["Totals"]["Followups"], 1);
        assert_eq!(next.body["Totals"]["FollowupVisits"], 1);
    }
);

both_backends!(
    an_unchanged_day_answers_304_to_its_etag_and_any_write_changes_the_etag,
    |app| async move {
        let f = fleet(&app).await;
        let url = format!(
            "{}/scheduling/v1/board?ServiceAreaID={AREA}&Date={}",
            app.address,
            date(1)
        );
        let get = |etag: Option<String>| {
            let mut req = app.client.get(&url).header("x-access-token", &f.dispatcher);
            if let Some(e) = etag {
                req = req.header(IF_NONE_MATCH, e);
            }
            req.send()
        };
        let first = get(None).await.unwrap();
        assert_eq!(first.status(), 200);
        let etag = first.headers()["etag"].to_str().unwrap().to_string();
        let body: Value = first.json().await.unwrap();
        assert_eq!(format!("\"{}\"", body["Version"].as_str().unwrap()), etag);
        let again = get(Some(etag.clone())).await.unwrap();
        assert_eq!(again.status(), 304);
        assert!(again.bytes().await.unwrap().is_empty());
        // A visit written, then a technician changed: each gives a new tag and the new day.
        app.put_order(
            &f.dispatcher,
            "WO-1",
            &visit("WO-1", "tom", 1, "09:00", 0.0),
        )
        .await
        .expect(201);
        let changed = get(Some(etag.clone())).await.unwrap();
        assert_eq!(changed.status(), 200);
        let etag2 = changed.headers()["etag"].to_str().unwrap().to_string();
        assert_ne!(etag2, etag);
        let body: Value = changed.json().await.unwrap();
        assert_eq!(body["Technicians"][0]["Visits"][0]["OrderNum"], "WO-1");
        app.sched_put(&f.admin, "technicians", "tina", &technician_body("tina"))
            .await
            .expect(201);
        let changed = get(Some(etag2.clone())).await.unwrap();
        assert_eq!(changed.status(), 200);
        assert_ne!(changed.headers()["etag"].to_str().unwrap(), etag2);
    }
);

both_backends!(
    only_admins_and_dispatchers_of_the_entity_read_its_board_and_bad_queries_are_400,
    |app| async move {
        let f = fleet(&app).await;
        app.put_order(
            &f.dispatcher,
            "WO-1",
            &visit("WO-1", "tom", 1, "09:00", 0.0),
        )
        .await
        .expect(201);
        let q = format!("ServiceAreaID={AREA}&Date={}", date(1));
        let r = board(&app, &f.tech.token, &q).await;
        assert_error(&r, 403);
        let r = app
            .request(
                reqwest::Method::GET,
                &format!("/scheduling/v1/board?{q}"),
                None,
                None,
            )
            .await;
        assert_error(&r, 401);
        // Another entity with a work center of the same id sees its own (empty) day only.
        let other = app.user("globex", "gus", Role::Admin).await.token;
        assert_error(&board(&app, &other, &q).await, 404);
        app.sched_put(
            &other,
            "workcenters",
            AREA,
            &crate::helpers::work_center_body(),
        )
        .await
        .expect(201);
        let mut tom = technician_body("tom");
        tom["Home"] = json!({"Lat": JOB_LAT, "Lon": JOB_LON});
        app.sched_put(&other, "technicians", "tom", &tom)
            .await
            .expect(201);
        let r = board(&app, &other, &q).await.expect(200);
        assert_eq!(r.body["Technicians"][0]["Visits"], json!([]), "{}", r.body);
        assert_eq!(r.body["Totals"]["Visits"], 0);

        assert_error(&board(&app, &f.dispatcher, "ServiceAreaID=NOPE").await, 404);
        let r = board(&app, &f.dispatcher, "Date=2026-12-01").await;
        assert_invalid(&r, 400, "ServiceAreaID");
        assert_eq!(r.body["title"], "Invalid query parameter", "{}", r.body);
        assert_invalid(
            &board(
                &app,
                &f.dispatcher,
                &format!("ServiceAreaID={AREA}&Date=2026-13-01"),
            )
            .await,
            400,
            "Date",
        );
        assert_invalid(
            &board(
                &app,
                &f.dispatcher,
                &format!("ServiceAreaID={AREA}&Date=1.12.2026"),
            )
            .await,
            400,
            "Date",
        );
        assert_invalid(
            &board(
                &app,
                &f.dispatcher,
                &format!("ServiceAreaID={AREA}&Colour=red"),
            )
            .await,
            400,
            "Colour",
        );
        // Without a date: today in the work center's zone.
        let r = board(&app, &f.dispatcher, &format!("ServiceAreaID={AREA}"))
            .await
            .expect(200);
        assert_eq!(r.body["Date"], date(0));
    }
);

/// Tom busy `days` from today from half an hour before the end of the morning window for five
/// hours: the afternoon window is fully booked.
fn blocker(num: &str, user: &str, days: i64) -> Value {
    let morning = window(days, 0);
    let start = morning.1 - SignedDuration::from_mins(30);
    json!({
        "OrderNum": num, "OrderType": "REPAIR", "OrderStatus": 1, "DispatchStatus": 3,
        "UserName": user,
        "PlannedStartDate": time::format(start),
        "PlannedEndDate": time::format(start + SignedDuration::from_hours(5)),
        "TimeConstraints": [{"Type": "1001", "Period": {
            "Start": time::format(morning.0), "End": time::format(morning.1)}}],
        "Location": location(num),
    })
}

/// `entity` set up as the fleet is (its admin, its technician `user` in the work center, the
/// built-in scheduler), with a closed order `WO-1` of `user` and `user` busy in tomorrow's
/// afternoon window. Returns the admin's and the technician's tokens.
async fn full_afternoon(app: &TestApp, entity: &str, admin: &str, user: &str) -> (String, String) {
    let admin = app.user(entity, admin, Role::Admin).await.token;
    let tech = app.user(entity, user, Role::Technician).await.token;
    app.post_config(
        &admin,
        &json!({"RestApi": {"BookJob": "builtin:", "SearchAppts": "builtin:"}}),
    )
    .await
    .expect(200);
    app.sched_put(&admin, "workcenters", AREA, &work_center_body())
        .await
        .expect(201);
    app.sched_put(&admin, "technicians", user, &technician_body(user))
        .await
        .expect(201);
    app.sched_put(
        &admin,
        "ordertypes",
        "REPAIR",
        &order_type_body("REPAIR", 60, "HVAC"),
    )
    .await
    .expect(201);
    app.put_order(&admin, "WO-1", &closed_order("WO-1", user))
        .await
        .expect(201);
    app.put_order(&admin, "BUSY-1", &blocker("BUSY-1", user, 1))
        .await
        .expect(201);
    (admin, tech)
}

both_backends!(
    requests_refused_as_fully_booked_are_counted_on_the_day_they_were_made_in_their_entity_only,
    |app| async move {
        let (admin, tech) = full_afternoon(&app, "acme", "ada", "tom").await;
        let today = format!("ServiceAreaID={AREA}&Date={}", date(0));
        let before = board(&app, &admin, &today).await.expect(200);
        assert_eq!(before.body["Totals"]["RefusedFullyBooked"], 0);
        let tag = before.header("etag").expect("an ETag").to_string();

        // A booking of the full afternoon window is refused (409): counted.
        let full = window(1, 1);
        let r = app.book_followup(&tech, "WO-1", &book_body(full)).await;
        assert_error(&r, 409);
        assert_eq!(r.body["type"], "urn:revisit:error:slot-unavailable");
        // The open board sees the change: its tag is no longer current.
        let again = app
            .client
            .get(format!("{}/scheduling/v1/board?{today}", app.address))
            .header("x-access-token", &admin)
            .header(IF_NONE_MATCH, &tag)
            .send()
            .await
            .unwrap();
        assert_eq!(again.status(), 200, "a refusal changes the board's version");
        let after = board(&app, &admin, &today).await.expect(200);
        assert_eq!(after.body["Totals"]["RefusedFullyBooked"], 1);

        // A search where the customer is free only then offers nothing, fully booked: counted.
        let only_then = json!({"OriginalOrderNum": "WO-1", "TimeConstraints": [
            {"Type": "1002", "Period": {"Start": time::format(full.0), "End": time::format(full.1)}}]});
        let s = app.open_slots(&tech, &only_then).await.expect(200);
        assert_eq!(s.body["TimeConstraints"], json!([]), "{}", s.body);
        assert!(
            s.body["StatusMsg"]
                .as_str()
                .is_some_and(|m| m.contains("is fully booked")),
            "the scheduler's words the count relies on: {}",
            s.body
        );
        let after = board(&app, &admin, &today).await.expect(200);
        assert_eq!(after.body["Totals"]["RefusedFullyBooked"], 2);

        // A search that offers windows, and a booking that succeeds, are not refusals.
        app.open_slots(&tech, &json!({"OriginalOrderNum": "WO-1"}))
            .await
            .expect(200);
        app.book_followup(&tech, "WO-1", &book_body(window(1, 2)))
            .await
            .expect(200);
        let after = board(&app, &admin, &today).await.expect(200);
        assert_eq!(after.body["Totals"]["RefusedFullyBooked"], 2);
        // Counted on the day they were made, not on the day asked for.
        let tomorrow = format!("ServiceAreaID={AREA}&Date={}", date(1));
        let next = board(&app, &admin, &tomorrow).await.expect(200);
        assert_eq!(next.body["Totals"]["RefusedFullyBooked"], 0);

        // Another entity's refusals, in a work center of the same name, are its own.
        let (other_admin, other_tech) = full_afternoon(&app, "globex", "gus", "gil").await;
        let r = app
            .book_followup(&other_tech, "WO-1", &book_body(full))
            .await;
        assert_error(&r, 409);
        let theirs = board(&app, &other_admin, &today).await.expect(200);
        assert_eq!(theirs.body["Totals"]["RefusedFullyBooked"], 1);
        let ours = board(&app, &admin, &today).await.expect(200);
        assert_eq!(ours.body["Totals"]["RefusedFullyBooked"], 2);
    }
);

both_backends!(the_openapi_document_lists_the_board, |app| async move {
    let r = app
        .request(reqwest::Method::GET, "/seiapi/v3/openapi.json", None, None)
        .await
        .expect(200);
    let board = &r.body["paths"]["/scheduling/v1/board"]["get"];
    assert!(board.is_object(), "{}", r.body["paths"]);
    let params: Vec<&str> = board["parameters"]
        .as_array()
        .expect("its parameters")
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert!(params.contains(&"ServiceAreaID"), "{params:?}");
});
