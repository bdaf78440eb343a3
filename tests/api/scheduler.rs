//! The built-in scheduler's set-up over HTTP (`/scheduling/v1/...`, docs/scheduler.md §1) and its slot
//! search (§3, §4) through `POST /seiapi/v3/trans/Appointments/OpenSlots` (docs/api.md §6).

use jiff::{SignedDuration, Timestamp};
use revisit::domain::{Role, time};
use serde_json::{Value, json};

use crate::{
    both_backends,
    helpers::{
        AREA, JOB_LAT, JOB_LON, assert_error, assert_invalid, assert_windows_either, closed_order,
        fleet, fmt_wins, open_windows, order_type_body, policy_windows, technician_body, window,
        work_center_body,
    },
};

/// One valid object of each kind, with its id.
fn samples() -> [(&'static str, &'static str, Value); 3] {
    [
        ("workcenters", AREA, work_center_body()),
        ("technicians", "tom", technician_body("tom")),
        (
            "ordertypes",
            "REPAIR",
            order_type_body("REPAIR", 60, "HVAC"),
        ),
    ]
}

both_backends!(
    an_admin_puts_gets_lists_and_deletes_work_centers_technicians_and_order_types,
    |app| async move {
        let admin = app.user("acme", "ada", Role::Admin).await.token;
        let other = app.user("globex", "gil", Role::Admin).await.token;
        for (kind, id, body) in samples() {
            assert_eq!(
                app.sched_list(&admin, kind).await.expect(200).body,
                json!({"Items": []})
            );
            // PUT creates (201) and answers the stored form; defaults are filled in.
            let created = app
                .sched_put(&admin, kind, id, &body)
                .await
                .expect(201)
                .body;
            for (k, v) in body.as_object().unwrap() {
                if k != "Policy" {
                    assert_eq!(&created[k], v, "{kind} {k}: {created}");
                }
            }
            let got = app.sched_get(&admin, kind, id).await.expect(200).body;
            assert_eq!(got, created);
            // PUT again replaces (200).
            let mut changed = body.clone();
            let name = if kind == "ordertypes" { "Desc" } else { "Name" };
            changed[name] = json!("renamed");
            app.sched_put(&admin, kind, id, &changed).await.expect(200);
            let got = app.sched_get(&admin, kind, id).await.expect(200).body;
            assert_eq!(got[name], "renamed");
            // The id may be left out of the body: the path gives it.
            let mut without_id = changed.clone();
            let key = match kind {
                "workcenters" => "ServiceAreaID",
                "technicians" => "UserName",
                _ => "OrderType",
            };
            without_id.as_object_mut().unwrap().remove(key);
            let second = format!("{id}2");
            let r = app
                .sched_put(&admin, kind, &second, &without_id)
                .await
                .expect(201);
            assert_eq!(r.body[key], second);
            let list = app.sched_list(&admin, kind).await.expect(200).body;
            let mut ids: Vec<&str> = list["Items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i[key].as_str().unwrap())
                .collect();
            ids.sort_unstable();
            assert_eq!(ids, vec![id, second.as_str()]);
            // Another entity sees none of it.
            assert_eq!(
                app.sched_list(&other, kind).await.expect(200).body,
                json!({"Items": []})
            );
            assert_error(&app.sched_get(&other, kind, id).await, 404);
            assert_error(&app.sched_delete(&other, kind, id).await, 404);
            // DELETE: 204, then it is gone.
            app.sched_delete(&admin, kind, &second).await.expect(204);
            assert_error(&app.sched_get(&admin, kind, &second).await, 404);
            assert_error(&app.sched_delete(&admin, kind, &second).await, 404);
            assert_eq!(
                app.sched_list(&admin, kind).await.expect(200).body["Items"]
                    .as_array()
                    .unwrap()
                    .len(),
                1
            );
        }
        // A work center without a policy gets the default one.
        let mut bare = work_center_body();
        bare.as_object_mut().unwrap().remove("Policy");
        bare["ServiceAreaID"] = json!("BARE");
        let r = app
            .sched_put(&admin, "workcenters", "BARE", &bare)
            .await
            .expect(201);
        assert_eq!(r.body["Policy"]["HorizonDays"], 14);
        assert_eq!(r.body["Policy"]["MinLeadMinutes"], 120);
        assert_eq!(r.body["Policy"]["Windows"].as_array().unwrap().len(), 3);
        // An unknown kind is 404.
        assert_error(&app.sched_list(&admin, "trucks").await, 404);
        assert_error(
            &app.sched_put(&admin, "trucks", "T1", &json!({})).await,
            404,
        );
    }
);

both_backends!(
    only_an_admin_may_change_the_scheduler_set_up_or_read_more_than_its_work_centers,
    |app| async move {
        let admin = app.user("acme", "ada", Role::Admin).await.token;
        let dora = app.user("acme", "dora", Role::Dispatcher).await.token;
        let tom = app.user("acme", "tom", Role::Technician).await.token;
        let gus = app.user("globex", "gus", Role::Technician).await.token;
        for (kind, id, body) in samples() {
            let stored = app
                .sched_put(&admin, kind, id, &body)
                .await
                .expect(201)
                .body;
            for token in [&dora, &tom] {
                if kind == "workcenters" {
                    // Every role reads work centers: the apps need their time zones.
                    let one = app.sched_get(token, kind, id).await.expect(200).body;
                    assert_eq!(one, stored);
                    assert_eq!(one["TimeZone"], crate::helpers::TZ);
                    let all = app.sched_list(token, kind).await.expect(200).body;
                    assert_eq!(all["Items"], json!([stored]));
                    assert_error(&app.sched_get(token, kind, "NEW").await, 404);
                    // Another entity's technician sees none of them.
                    assert_error(&app.sched_get(&gus, kind, id).await, 404);
                    let theirs = app.sched_list(&gus, kind).await.expect(200).body;
                    assert_eq!(theirs["Items"], json!([]));
                } else {
                    assert_error(&app.sched_list(token, kind).await, 403);
                    assert_error(&app.sched_get(token, kind, id).await, 403);
                }
                assert_error(&app.sched_put(token, kind, id, &body).await, 403);
                assert_error(&app.sched_put(token, kind, "NEW", &body).await, 403);
                assert_error(&app.sched_delete(token, kind, id).await, 403);
            }
            // Nothing changed.
            app.sched_get(&admin, kind, id).await.expect(200);
            assert_error(&app.sched_get(&admin, kind, "NEW").await, 404);
            // Without a token: 401.
            assert_error(&app.sched_list("", kind).await, 401);
        }
    }
);

both_backends!(
    an_invalid_set_up_object_is_a_400_naming_every_bad_property,
    |app| async move {
        let admin = app.user("acme", "ada", Role::Admin).await.token;
        let put = |kind: &'static str, id: &'static str, body: Value| {
            let (app, admin) = (&app, admin.clone());
            async move { app.sched_put(&admin, kind, id, &body).await }
        };

        // Work center: unknown zone, 25:00, an unknown weekday, latitude 95: all reported.
        let mut wc = work_center_body();
        wc["TimeZone"] = json!("Mars/Olympus");
        wc["Policy"]["Windows"][0]["Start"] = json!("25:00");
        wc["Policy"]["Windows"][1]["Days"] = json!(["Mon", "Funday"]);
        wc["Lat"] = json!(95);
        let r = put("workcenters", AREA, wc).await;
        for path in [
            "$.TimeZone",
            "$.Policy.Windows[0].Start",
            "$.Policy.Windows[1].Days[1]",
            "$.Lat",
        ] {
            assert_invalid(&r, 400, path);
        }
        // Each on its own, too.
        let cases: [(&str, Value, &str); 6] = [
            ("/TimeZone", json!("Europe/Lyon"), "$.TimeZone"),
            (
                "/Policy/Windows/2/End",
                json!("25:00"),
                "$.Policy.Windows[2].End",
            ),
            (
                "/Policy/Windows/0/Days/0",
                json!("Lundi"),
                "$.Policy.Windows[0].Days[0]",
            ),
            ("/Lat", json!(95.0), "$.Lat"),
            ("/Lon", json!(-181), "$.Lon"),
            ("/Policy/HorizonDays", json!(0), "$.Policy.HorizonDays"),
        ];
        for (pointer, value, path) in cases {
            let mut wc = work_center_body();
            *wc.pointer_mut(pointer).unwrap() = value;
            assert_invalid(&put("workcenters", AREA, wc).await, 400, path);
        }
        // A wrong type is a 400 naming the property too.
        let mut wc = work_center_body();
        wc["Lat"] = json!("north");
        assert_invalid(&put("workcenters", AREA, wc).await, 400, "$.Lat");

        // Technician: home latitude 95, a shift ending at 25:00, an unknown weekday.
        let mut t = technician_body("tom");
        t["Home"]["Lat"] = json!(95);
        t["Shifts"][0]["End"] = json!("25:00");
        t["Shifts"][0]["Days"] = json!(["Someday"]);
        let r = put("technicians", "tom", t).await;
        for path in ["$.Home.Lat", "$.Shifts[0].End", "$.Shifts[0].Days[0]"] {
            assert_invalid(&r, 400, path);
        }
        // Order type: no duration.
        let mut ot = order_type_body("REPAIR", 60, "HVAC");
        ot["DurationMinutes"] = json!(0);
        assert_invalid(
            &put("ordertypes", "REPAIR", ot).await,
            400,
            "$.DurationMinutes",
        );

        // The id in the body must match the path's.
        let r = put("workcenters", "PARIS", work_center_body()).await;
        assert_invalid(&r, 400, "$.ServiceAreaID");
        let r = put("technicians", "tim", technician_body("tom")).await;
        assert_invalid(&r, 400, "$.UserName");
        let r = put(
            "ordertypes",
            "INSTALL",
            order_type_body("REPAIR", 60, "HVAC"),
        )
        .await;
        assert_invalid(&r, 400, "$.OrderType");

        // Nothing was stored.
        for kind in ["workcenters", "technicians", "ordertypes"] {
            assert_eq!(
                app.sched_list(&admin, kind).await.expect(200).body,
                json!({"Items": []}),
                "{kind}"
            );
        }
    }
);

/// The search body for a follow-up of `original`, with extra properties.
fn search_for(original: &str, extra: Value) -> Value {
    let mut b = json!({"OriginalOrderNum": original});
    for (k, v) in extra.as_object().unwrap() {
        b[k] = v.clone();
    }
    b
}

both_backends!(
    with_a_free_technician_the_search_offers_the_first_policy_windows_after_the_lead_time,
    |app| async move {
        let f = fleet(&app).await;
        app.put_order(&f.dispatcher, "WO-1", &closed_order("WO-1", "tom"))
            .await
            .expect(201);
        let before = Timestamp::now();
        let (r, got) = open_windows(&app, &f.dispatcher, &search_for("WO-1", json!({}))).await;
        let after = Timestamp::now();
        // A free day costs the same in every window, and each day later costs a little more:
        // the best ten are the first ten.
        let first = |now| policy_windows(now).into_iter().take(10).collect::<Vec<_>>();
        assert_windows_either(&got, first(before), first(after));
        assert_eq!(r.body["StatusMsg"], "", "{}", r.body);
        // IDs are distinct; Desc reads in local time ("Wed 2 Dec, 13:00-17:00" style).
        let items = r.body["TimeConstraints"].as_array().unwrap();
        let mut ids: Vec<&str> = items.iter().map(|i| i["ID"].as_str().unwrap()).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), items.len());
        for i in items {
            let desc = i["Desc"].as_str().unwrap();
            assert!(
                ["08:00-12:00", "12:00-16:00", "16:00-20:00"]
                    .iter()
                    .any(|w| desc.ends_with(w)),
                "{desc}"
            );
        }
    }
);

both_backends!(
    the_customers_availability_narrows_the_windows_offered,
    |app| async move {
        let f = fleet(&app).await;
        app.put_order(&f.dispatcher, "WO-1", &closed_order("WO-1", "tom"))
            .await
            .expect(201);
        let p =
            |s: Timestamp, e: Timestamp| json!({"Start": time::format(s), "End": time::format(e)});
        // Available tomorrow and the day after (local), but not tomorrow before 13:00.
        let body = search_for(
            "WO-1",
            json!({"TimeConstraints": [
                {"Type": "1002", "Period": p(window(1, 0).0 - SignedDuration::from_hours(8), window(3, 0).0 - SignedDuration::from_hours(8))},
                {"Type": "1003", "Period": p(window(1, 0).0 - SignedDuration::from_hours(1), window(1, 1).0 + SignedDuration::from_hours(1))},
            ]}),
        );
        let (_, got) = open_windows(&app, &f.dispatcher, &body).await;
        let want = vec![
            window(1, 1),
            window(1, 2),
            window(2, 0),
            window(2, 1),
            window(2, 2),
        ];
        assert_eq!(fmt_wins(&got), fmt_wins(&want));

        // Available for 3 hours inside one window only: that window alone (a window's end is the
        // latest arrival, so the period starts after the morning window ends).
        let body = search_for(
            "WO-1",
            json!({"TimeConstraints": [{"Type": "1002", "Period": p(
                window(2, 1).0 + SignedDuration::from_mins(30),
                window(2, 1).1 - SignedDuration::from_mins(30),
            )}]}),
        );
        let (_, got) = open_windows(&app, &f.dispatcher, &body).await;
        assert_eq!(fmt_wins(&got), fmt_wins(&[window(2, 1)]));

        // Available only for less than the visit lasts: nothing, and StatusMsg says why.
        let body = search_for(
            "WO-1",
            json!({"TimeConstraints": [{"Type": "1002", "Period": p(
                window(2, 1).0,
                window(2, 1).0 + SignedDuration::from_mins(30),
            )}]}),
        );
        let (r, got) = open_windows(&app, &f.dispatcher, &body).await;
        assert!(got.is_empty(), "{}", r.body);
        assert!(
            !r.body["StatusMsg"].as_str().unwrap().is_empty(),
            "{}",
            r.body
        );
    }
);

both_backends!(
    parts_delivered_in_three_days_push_the_first_window_past_delivery_plus_two_hours,
    |app| async move {
        let f = fleet(&app).await;
        app.put_order(&f.dispatcher, "WO-1", &closed_order("WO-1", "tom"))
            .await
            .expect(201);
        let eta = Timestamp::now() + SignedDuration::from_hours(72);
        let body = search_for(
            "WO-1",
            json!({"RequiredParts": [
                {"ProdNum": "FILTER-20", "Qty": 1, "EstimatedDelivery": time::format(eta)},
                {"ProdNum": "VALVE-3", "Qty": 2, "EstimatedDelivery": time::format(eta - SignedDuration::from_hours(30))},
            ]}),
        );
        let (r, got) = open_windows(&app, &f.tech.token, &body).await;
        let gate = eta + SignedDuration::from_hours(2);
        assert!(!got.is_empty(), "{}", r.body);
        for w in &got {
            assert!(w.0 >= gate, "{:?} starts before the parts", fmt_wins(&[*w]));
        }
        // The first window after the gate is the first offered.
        let first = policy_windows(Timestamp::now())
            .into_iter()
            .find(|w| w.0 >= gate)
            .unwrap();
        assert_eq!(got[0], first, "{}", r.body);
        let msg = r.body["StatusMsg"].as_str().unwrap();
        assert!(msg.to_lowercase().contains("part"), "{msg}");

        // Parts already in stock change nothing.
        let body = search_for(
            "WO-1",
            json!({"RequiredParts": [{"ProdNum": "FILTER-20", "Qty": 1,
                "EstimatedDelivery": time::format(Timestamp::now() - SignedDuration::from_hours(24))}]}),
        );
        let before = Timestamp::now();
        let (r, got) = open_windows(&app, &f.tech.token, &body).await;
        let after = Timestamp::now();
        let first = |now| policy_windows(now).into_iter().take(10).collect::<Vec<_>>();
        assert_windows_either(&got, first(before), first(after));
        assert_eq!(r.body["StatusMsg"], "", "{}", r.body);
    }
);

both_backends!(
    without_a_technician_with_the_skills_the_search_is_an_empty_200_that_says_why,
    |app| async move {
        let f = fleet(&app).await;
        app.sched_put(
            &f.admin,
            "ordertypes",
            "GAS",
            &order_type_body("GAS", 90, "GAS"),
        )
        .await
        .expect(201);
        app.put_order(&f.dispatcher, "WO-1", &closed_order("WO-1", "tom"))
            .await
            .expect(201);
        // The follow-up is of another type than the original.
        let (r, got) = open_windows(
            &app,
            &f.tech.token,
            &search_for("WO-1", json!({"OrderType": "GAS"})),
        )
        .await;
        assert!(got.is_empty(), "{}", r.body);
        let msg = r.body["StatusMsg"].as_str().unwrap();
        assert!(msg.contains("GAS"), "{msg}");
        // A dispatcher searching without an original order, at a place given in the body.
        let body = json!({"OrderType": "GAS", "Location": {"ServiceAreaID": AREA,
            "Address": {"Lat": JOB_LAT.to_string(), "Lon": JOB_LON.to_string()}}});
        let (r, got) = open_windows(&app, &f.dispatcher, &body).await;
        assert!(got.is_empty(), "{}", r.body);
        assert!(!r.body["StatusMsg"].as_str().unwrap().is_empty());
        // An inactive technician offers nothing either.
        let mut tom = technician_body("tom");
        tom["Active"] = json!(false);
        app.sched_put(&f.admin, "technicians", "tom", &tom)
            .await
            .expect(200);
        let (r, got) = open_windows(&app, &f.tech.token, &search_for("WO-1", json!({}))).await;
        assert!(got.is_empty(), "{}", r.body);
        assert!(!r.body["StatusMsg"].as_str().unwrap().is_empty());
    }
);
