//! Re-optimising booked days over HTTP (`POST /scheduling/v1/reoptimize`, `GET
//! /scheduling/v1/moves`): a dry run reports without writing, a run moves visits to the
//! technician nearby within their promises and records every move, pinned and started visits
//! stay, and a run racing bookings and dispatcher writes loses or double-books nothing.

use std::sync::Arc;

use jiff::SignedDuration;
use revisit::domain::{Role, time};
use serde_json::{Value, json};

use crate::{
    both_backends,
    helpers::{
        AREA, JOB_LAT, JOB_LON, SCHED, TestApp, WEEK, assert_error, book_body, closed_order, fleet,
        local, order_type_body, window, work_center_body,
    },
};

/// East and west of the work center, about 23 km apart.
const EAST: (f64, f64) = (JOB_LAT, JOB_LON + 0.15);
const WEST: (f64, f64) = (JOB_LAT, JOB_LON - 0.15);

fn tech(user: &str, home: (f64, f64)) -> Value {
    json!({
        "UserName": user, "Name": user, "ServiceAreaIDs": [AREA],
        "Skills": [{"Code": "HVAC", "Level": 2}],
        "Home": {"Lat": home.0, "Lon": home.1},
        "Shifts": [{"Days": WEEK, "Start": "07:00", "End": "21:00"}],
    })
}

/// A visit tomorrow of `user` at `hhmm` (one hour), near `place`, promised 08:00-20:00.
fn visit(num: &str, user: &str, place: (f64, f64), hhmm: &str, extra: Value) -> Value {
    let start = local(1, hhmm);
    let mut v = json!({
        "OrderNum": num, "OrderType": "REPAIR", "OrderStatus": 1, "DispatchStatus": 3,
        "UserName": user,
        "PlannedStartDate": time::format(start),
        "PlannedEndDate": time::format(start + SignedDuration::from_mins(60)),
        "TimeConstraints": [{"Type": "1001", "Period": {
            "Start": time::format(local(1, "08:00")), "End": time::format(local(1, "20:00"))}}],
        "Location": {"ServiceAreaID": AREA, "Address": {
            "Lat": format!("{:.4}", place.0 + 0.001 * (num.len() as f64)), "Lon": format!("{:.4}", place.1)}},
    });
    if let Value::Object(m) = extra {
        v.as_object_mut().unwrap().extend(m);
    }
    v
}

/// `ada` (admin) and `dora` (dispatcher) of `acme`, the built-in scheduler configured and the
/// work center set up with `policy` merged into its policy.
async fn center(app: &TestApp, policy: Value) -> (String, String) {
    let admin = app.user("acme", "ada", Role::Admin).await.token;
    let dora = app.user("acme", "dora", Role::Dispatcher).await.token;
    app.post_config(
        &admin,
        &json!({"RestApi": {"BookJob": "builtin:", "SearchAppts": "builtin:"}}),
    )
    .await
    .expect(200);
    let mut wc = work_center_body();
    if let (Some(p), Value::Object(changes)) = (wc["Policy"].as_object_mut(), policy) {
        p.extend(changes);
    }
    app.sched_put(&admin, "workcenters", AREA, &wc)
        .await
        .expect(201);
    (admin, dora)
}

/// `ada` (admin), `dora` (dispatcher), technicians `east` and `west` living at either end, each
/// given two visits at the other end tomorrow. Moving a visit away from the technician the
/// customer was told costs 5 minutes here.
async fn crossed(app: &TestApp) -> (String, String) {
    let (admin, dora) = center(app, json!({"NonOriginalPenaltyMinutes": 5})).await;
    for (user, home) in [("east", EAST), ("west", WEST)] {
        app.user("acme", user, Role::Technician).await;
        app.sched_put(&admin, "technicians", user, &tech(user, home))
            .await
            .expect(201);
    }
    app.sched_put(
        &admin,
        "ordertypes",
        "REPAIR",
        &order_type_body("REPAIR", 60, "HVAC"),
    )
    .await
    .expect(201);
    for (num, user, place, at, extra) in [
        ("W1", "east", WEST, "09:00", json!({})),
        ("W2", "east", WEST, "11:00", json!({})),
        ("E1", "west", EAST, "09:00", json!({})),
        ("E2", "west", EAST, "11:00", json!({})),
    ] {
        app.put_order(&dora, num, &visit(num, user, place, at, extra))
            .await
            .expect(201);
    }
    (admin, dora)
}

async fn reoptimize(app: &TestApp, token: &str, body: Value) -> crate::helpers::Resp {
    app.request(
        reqwest::Method::POST,
        &format!("{SCHED}/reoptimize"),
        Some(token),
        Some(&body),
    )
    .await
}

async fn user_of(app: &TestApp, token: &str, num: &str) -> String {
    app.get_order(token, num).await.expect(200).body["UserName"]
        .as_str()
        .unwrap()
        .to_string()
}

both_backends!(
    a_dry_run_reports_the_moves_and_a_run_makes_them_within_every_promise,
    |app| async move {
        let (admin, dora) = crossed(&app).await;
        let tomorrow = local(1, "12:00").to_zoned(crate::helpers::tz()).date();
        let body = json!({"ServiceAreaID": AREA, "From": tomorrow.to_string(), "Days": 1,
            "DryRun": true, "Iterations": 2000});

        // Technicians may not; an unknown work center is a 404.
        let tech_token = app.login("east", "east-pw").await;
        assert_error(&reoptimize(&app, &tech_token, body.clone()).await, 403);
        let mut unknown = body.clone();
        unknown["ServiceAreaID"] = json!("NOWHERE");
        assert_error(&reoptimize(&app, &dora, unknown).await, 404);

        // A dry run: the moves and the travel saved, nothing written.
        let r = reoptimize(&app, &dora, body.clone()).await.expect(200);
        assert_eq!(r.body["DryRun"], true);
        let saved = r.body["TravelSavedMinutes"].as_i64().unwrap();
        assert!(saved > 30, "{}", r.body);
        let moved: Vec<&str> = r.body["Moves"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["OrderNum"].as_str().unwrap())
            .collect();
        for num in ["W1", "W2", "E1", "E2"] {
            assert!(moved.contains(&num), "{num} not in {moved:?}");
        }
        assert_eq!(user_of(&app, &dora, "W1").await, "east");
        assert_eq!(r.body["Committed"], json!([]));

        // The run: the west visits go to the technician in the west, and so on, each in its
        // promised window; the pinned one stays.
        let mut run = body.clone();
        run["DryRun"] = json!(false);
        let r = reoptimize(&app, &admin, run).await.expect(200);
        assert_eq!(
            r.body["Committed"],
            json!([tomorrow.to_string()]),
            "{}",
            r.body
        );
        assert_eq!(r.body["TravelSavedMinutes"].as_i64(), Some(saved));
        for (num, user) in [
            ("W1", "west"),
            ("W2", "west"),
            ("E1", "east"),
            ("E2", "east"),
        ] {
            let o = app.get_order(&dora, num).await.expect(200).body;
            assert_eq!(o["UserName"], user, "{num}: {o}");
            let start = time::parse(o["PlannedStartDate"].as_str().unwrap())
                .unwrap()
                .to_timestamp();
            assert!(
                start >= local(1, "08:00") && start <= local(1, "20:00"),
                "{num} starts at {start}, outside its promise"
            );
        }
        // The technician's own list shows the new day.
        let mine = app
            .request(
                reqwest::Method::GET,
                "/seiapi/v3/trans/WorkOrders",
                Some(&tech_token),
                None,
            )
            .await
            .expect(200);
        let nums: Vec<&str> = mine.body["WorkOrders"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["OrderNum"].as_str().unwrap())
            .collect();
        assert!(
            nums.contains(&"E1") && nums.contains(&"E2") && !nums.contains(&"W1"),
            "{nums:?}"
        );
        // Every move is recorded: when, from whom to whom, from when to when.
        let m = app
            .request(
                reqwest::Method::GET,
                &format!("{SCHED}/moves?OrderNum=W1"),
                Some(&dora),
                None,
            )
            .await
            .expect(200);
        let list = m.body["Moves"].as_array().unwrap();
        assert_eq!(list.len(), 1, "{}", m.body);
        assert_eq!(list[0]["FromUserName"], "east");
        assert_eq!(list[0]["ToUserName"], "west");
        assert_eq!(list[0]["Reason"], "reoptimize");
        assert_eq!(list[0]["RunID"], r.body["RunID"]);
        assert!(list[0]["MovedAt"].as_str().is_some());
        assert_error(
            &app.request(
                reqwest::Method::GET,
                &format!("{SCHED}/moves"),
                Some(&tech_token),
                None,
            )
            .await,
            403,
        );
        // Done: a second run finds nothing more to gain.
        let r = reoptimize(&app, &dora, body).await.expect(200);
        assert_eq!(r.body["TravelSavedMinutes"], 0, "{}", r.body);
    }
);

both_backends!(
    an_onsite_visit_a_pinned_one_and_one_inside_the_freeze_horizon_stay_where_they_are,
    |app| async move {
        let (_admin, dora) = crossed(&app).await;
        // A dispatcher pinned E2 where it is, far from its technician.
        app.request(
            reqwest::Method::PATCH,
            "/seiapi/v3/trans/WorkOrder/E2",
            Some(&dora),
            Some(&json!({"Pinned": true})),
        )
        .await
        .expect(200);
        // W1 is under way; W2 starts within the next two hours (the default freeze horizon).
        app.request(
            reqwest::Method::PATCH,
            "/seiapi/v3/trans/WorkOrder/W1",
            Some(&dora),
            Some(&json!({"OrderStatus": 7})),
        )
        .await
        .expect(200);
        let soon = jiff::Timestamp::now() + SignedDuration::from_mins(60);
        app.request(
            reqwest::Method::PATCH,
            "/seiapi/v3/trans/WorkOrder/W2",
            Some(&dora),
            Some(&json!({
                "PlannedStartDate": time::format(soon),
                "PlannedEndDate": time::format(soon + SignedDuration::from_mins(60)),
                "TimeConstraints": [{"Type": "1001", "Period": {
                    "Start": time::format(soon - SignedDuration::from_mins(30)),
                    "End": time::format(soon + SignedDuration::from_mins(30))}}],
            })),
        )
        .await
        .expect(200);
        let r = reoptimize(
            &app,
            &dora,
            json!({"ServiceAreaID": AREA, "Days": 2, "Iterations": 2000}),
        )
        .await
        .expect(200);
        assert_eq!(user_of(&app, &dora, "W1").await, "east", "{}", r.body);
        assert_eq!(user_of(&app, &dora, "W2").await, "east", "{}", r.body);
        assert_eq!(user_of(&app, &dora, "E2").await, "west", "{}", r.body);
        // And none of them is among the moves, not even in time.
        for m in r.body["Moves"].as_array().unwrap() {
            assert!(
                !["W1", "W2", "E2"].contains(&m["OrderNum"].as_str().unwrap()),
                "{m}"
            );
        }
    }
);

both_backends!(
    multi_thread
    a_reoptimization_racing_bookings_and_dispatcher_writes_loses_and_double_books_nothing,
    |app| async move {
        let f = fleet(&app).await;
        let (admin, dora) = (f.admin.clone(), f.dispatcher.clone());
        for (user, home) in [("east", EAST), ("west", WEST)] {
            app.user("acme", user, Role::Technician).await;
            app.sched_put(&admin, "technicians", user, &tech(user, home))
                .await
                .expect(201);
        }
        for i in 0..8 {
            let (user, place) = if i % 2 == 0 { ("east", WEST) } else { ("west", EAST) };
            let num = format!("V{i}");
            let at = format!("{:02}:00", 8 + i);
            app.put_order(&dora, &num, &visit(&num, user, place, &at, json!({})))
                .await
                .expect(201);
        }
        for i in 0..32 {
            let num = format!("WO-{i}");
            app.put_order(&dora, &num, &closed_order(&num, "tom"))
                .await
                .expect(201);
        }
        let app = Arc::new(app);
        let mut tasks = Vec::new();
        // 32 bookings of tomorrow's windows...
        for i in 0..32 {
            let (a, token) = (app.clone(), f.tech.token.clone());
            tasks.push(tokio::spawn(async move {
                a.book_followup(&token, &format!("WO-{i}"), &book_body(window(1, i % 3)))
                    .await
                    .status
                    .as_u16()
            }));
        }
        // ...dispatcher writes moving visits meanwhile...
        for i in 0..8 {
            let (a, token) = (app.clone(), dora.clone());
            tasks.push(tokio::spawn(async move {
                let num = format!("V{i}");
                let start = local(1, &format!("{:02}:30", 8 + i));
                a.request(
                    reqwest::Method::PATCH,
                    &format!("/seiapi/v3/trans/WorkOrder/{num}"),
                    Some(&token),
                    Some(&json!({"PlannedStartDate": time::format(start),
                        "PlannedEndDate": time::format(start + SignedDuration::from_mins(60))})),
                )
                .await
                .status
                .as_u16()
            }));
        }
        // ...and re-optimisations of the work center.
        for seed in 1..=4 {
            let (a, token) = (app.clone(), dora.clone());
            tasks.push(tokio::spawn(async move {
                reoptimize(&a, &token, json!({"ServiceAreaID": AREA, "Days": 2,
                    "Iterations": 500, "Seed": seed}))
                .await
                .status
                .as_u16()
            }));
        }
        for t in tasks {
            let status = t.await.unwrap();
            assert!([200, 409].contains(&status), "status {status}");
        }
        // Nothing lost: every visit and every booked follow-up is there, each once; no
        // technician has two visits at once.
        let all = app
            .request(
                reqwest::Method::GET,
                "/seiapi/v3/trans/WorkOrders?Limit=1000",
                Some(&dora),
                None,
            )
            .await
            .expect(200);
        let orders = all.body["WorkOrders"].as_array().unwrap().clone();
        for i in 0..8 {
            assert!(orders.iter().any(|o| o["OrderNum"] == format!("V{i}")), "V{i} lost");
        }
        let mut by_tech: std::collections::HashMap<String, Vec<(i64, i64, String)>> =
            Default::default();
        for o in &orders {
            let (Some(user), Some(s), Some(e)) = (
                o["UserName"].as_str(),
                o["PlannedStartDate"].as_str(),
                o["PlannedEndDate"].as_str(),
            ) else {
                continue;
            };
            if o["OrderStatus"] == 4097 {
                continue;
            }
            let ms = |t: &str| time::parse(t).unwrap().as_millis();
            by_tech.entry(user.to_string()).or_default().push((
                ms(s),
                ms(e),
                o["OrderNum"].as_str().unwrap().to_string(),
            ));
        }
        for (tech, mut visits) in by_tech {
            visits.sort();
            for w in visits.windows(2) {
                assert!(w[0].1 <= w[1].0, "{tech}: {} overlaps {}", w[0].2, w[1].2);
            }
        }
        for i in 0..32 {
            let list = app.list_followups(&dora, &format!("WO-{i}")).await.expect(200);
            assert!(list.body["Followups"].as_array().unwrap().len() <= 1);
        }
    }
);

/// PostgreSQL only (several nodes share one database): while another node re-optimises a work
/// center (it holds the work center's run lock), a run on this node is refused with 409 and
/// `Retry-After`, and nothing is written; once the other node is done, it runs.
#[tokio::test]
async fn only_one_node_reoptimizes_a_work_center_at_a_time_postgres() {
    use sqlx::Connection;

    let Some(app) = crate::helpers::spawn_app(crate::helpers::Backend::Postgres).await else {
        return;
    };
    let (_admin, dora) = crossed(&app).await;
    let body = json!({"ServiceAreaID": AREA, "Days": 2, "Iterations": 1000});
    let mut other = sqlx::PgConnection::connect(app.state.config.database_url.expose())
        .await
        .expect("a second connection");
    sqlx::query("BEGIN").execute(&mut other).await.unwrap();
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1 || chr(31) || $2, 0))")
        .bind("acme")
        .bind(format!("reopt:{AREA}"))
        .execute(&mut other)
        .await
        .unwrap();
    let r = reoptimize(&app, &dora, body.clone()).await;
    assert_error(&r, 409);
    assert_eq!(r.body["type"], "urn:revisit:error:reoptimization-running");
    assert!(r.header("retry-after").is_some());
    assert_eq!(user_of(&app, &dora, "W1").await, "east");
    sqlx::query("COMMIT").execute(&mut other).await.unwrap();
    let r = reoptimize(&app, &dora, body).await.expect(200);
    assert!(
        r.body["TravelSavedMinutes"].as_i64().unwrap() > 0,
        "{}",
        r.body
    );
}

/// The windows of an OpenSlots answer with their [Revisit] cost properties, checking each.
#[track_caller]
fn costed(body: &Value) -> Vec<(String, i64, bool)> {
    body["TimeConstraints"]
        .as_array()
        .unwrap_or_else(|| panic!("TimeConstraints in {body}"))
        .iter()
        .map(|tc| {
            let added = tc["AddedTravelMinutes"]
                .as_i64()
                .unwrap_or_else(|| panic!("AddedTravelMinutes in {tc}"));
            assert!(added >= 0, "{tc}");
            let best = tc["Best"]
                .as_bool()
                .unwrap_or_else(|| panic!("Best in {tc}"));
            (
                tc["Period"]["Start"].as_str().unwrap().to_string(),
                added,
                best,
            )
        })
        .collect()
}

both_backends!(
    offers_tell_their_added_travel_flag_the_best_and_a_cost_policy_offers_the_cheapest_first,
    |app| async move {
        let f = fleet(&app).await;
        app.put_order(&f.dispatcher, "WO-1", &closed_order("WO-1", "tom"))
            .await
            .expect(201);
        let search = json!({"OriginalOrderNum": "WO-1"});

        // Chronological (the default): in time order, the three cheapest flagged.
        let r = app.open_slots(&f.tech.token, &search).await.expect(200);
        let offers = costed(&r.body);
        assert!(offers.len() > 3, "{}", r.body);
        let starts: Vec<&String> = offers.iter().map(|o| &o.0).collect();
        let mut sorted = starts.clone();
        sorted.sort();
        assert_eq!(starts, sorted, "{}", r.body);
        assert_eq!(offers.iter().filter(|o| o.2).count(), 3, "{}", r.body);

        // Ordered by cost: the flagged ones come first.
        let mut wc = work_center_body();
        wc["Policy"]["OfferOrder"] = json!("Cost");
        wc["Policy"]["BestOffers"] = json!(2);
        app.sched_put(&f.admin, "workcenters", AREA, &wc)
            .await
            .expect(200);
        let r = app.open_slots(&f.tech.token, &search).await.expect(200);
        let offers = costed(&r.body);
        let flags: Vec<bool> = offers.iter().map(|o| o.2).collect();
        assert_eq!(&flags[..2], &[true, true], "{}", r.body);
        assert!(flags[2..].iter().all(|b| !b), "{}", r.body);

        // A window sent back with its cost properties books as any other.
        let chosen = r.body["TimeConstraints"][0].clone();
        app.book_followup(&f.tech.token, "WO-1", &json!({"TimeConstraints": [chosen]}))
            .await
            .expect(200);
    }
);

async fn moves(app: &TestApp, token: &str) -> Vec<Value> {
    let r = app
        .request(
            reqwest::Method::GET,
            &format!("{SCHED}/moves"),
            Some(token),
            None,
        )
        .await
        .expect(200);
    r.body["Moves"].as_array().unwrap().clone()
}

/// A booking wakes the re-optimiser for its work center and date: once bookings there pause,
/// the crossed visits are swapped in the background, recorded as `after-booking`.
async fn a_booking_wakes_the_reoptimiser(backend: crate::helpers::Backend) {
    let Some(app) = crate::helpers::spawn_app_with(backend, |c| {
        c.reoptimize.after_booking = true;
        c.reoptimize.debounce = std::time::Duration::from_millis(100);
        c.reoptimize.max_delay = std::time::Duration::from_secs(1);
    })
    .await
    else {
        return;
    };
    let (_admin, dora) = crossed(&app).await;
    let mut original = closed_order("ORIG", "east");
    original["Location"]["Address"]["Lat"] = json!(format!("{:.4}", EAST.0));
    original["Location"]["Address"]["Lon"] = json!(format!("{:.4}", EAST.1));
    app.put_order(&dora, "ORIG", &original).await.expect(201);
    // Nothing moves before a booking: the background runs only after one.
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    assert!(moves(&app, &dora).await.is_empty());
    let east = app.login("east", "east-pw").await;
    app.book_followup(&east, "ORIG", &book_body(window(1, 2)))
        .await
        .expect(200);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let list = moves(&app, &dora).await;
        if !list.is_empty() {
            assert!(
                list.iter().all(|m| m["Reason"] == "after-booking"),
                "{list:?}"
            );
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no move after the booking"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(user_of(&app, &dora, "W1").await, "west");
    assert_eq!(user_of(&app, &dora, "E1").await, "east");
}

#[tokio::test]
async fn a_booking_wakes_the_reoptimiser_for_its_day_sqlite() {
    a_booking_wakes_the_reoptimiser(crate::helpers::Backend::Sqlite).await;
}

#[tokio::test]
async fn a_booking_wakes_the_reoptimiser_for_its_day_postgres() {
    a_booking_wakes_the_reoptimiser(crate::helpers::Backend::Postgres).await;
}

/// `gus` (HVAC and GAS, at the work center) and `pia` (HVAC only, 4 km east), both on shift
/// 07:00-21:00; tomorrow `V1`, a 230-minute REPAIR promised to start 08:00-08:30, fills gus's
/// morning: a GAS follow-up of `ORIG` fits tomorrow's 08:00-12:00 window only if V1 goes to pia.
/// Two days of horizon, so the search has room to offer repaired windows.
async fn full_morning(app: &TestApp) -> (String, String) {
    let (admin, dora) = center(app, json!({"HorizonDays": 2})).await;
    let mut gus = tech("gus", (JOB_LAT, JOB_LON));
    gus["Skills"]
        .as_array_mut()
        .unwrap()
        .push(json!({"Code": "GAS", "Level": 1}));
    let pia = tech("pia", (JOB_LAT, JOB_LON + 0.05));
    for (user, body) in [("gus", gus), ("pia", pia)] {
        app.user("acme", user, Role::Technician).await;
        app.sched_put(&admin, "technicians", user, &body)
            .await
            .expect(201);
    }
    for (code, skill) in [("REPAIR", "HVAC"), ("GAS", "GAS")] {
        app.sched_put(
            &admin,
            "ordertypes",
            code,
            &order_type_body(code, 60, skill),
        )
        .await
        .expect(201);
    }
    let start = local(1, "08:10");
    let v1 = json!({
        "OrderNum": "V1", "OrderType": "REPAIR", "OrderStatus": 1, "DispatchStatus": 3,
        "UserName": "gus",
        "PlannedStartDate": time::format(start),
        "PlannedEndDate": time::format(start + SignedDuration::from_mins(230)),
        "TimeConstraints": [{"Type": "1001", "Period": {
            "Start": time::format(local(1, "08:00")), "End": time::format(local(1, "08:30"))}}],
        "Location": {"ServiceAreaID": AREA, "Address": {
            "Lat": format!("{JOB_LAT:.4}"), "Lon": format!("{:.4}", JOB_LON + 0.05)}},
    });
    app.put_order(&dora, "V1", &v1).await.expect(201);
    app.put_order(&dora, "ORIG", &closed_order("ORIG", "gus"))
        .await
        .expect(201);
    (admin, dora)
}

both_backends!(
    a_full_window_is_booked_by_moving_a_visit_to_another_technician_in_the_same_commit,
    |app| async move {
        let (_admin, dora) = full_morning(&app).await;
        let morning = window(1, 0);
        let mut gas = book_body(morning);
        gas["OrderType"] = json!("GAS");
        let search = json!({"OriginalOrderNum": "ORIG", "OrderType": "GAS"});

        // Pinned where it is, V1 stays: the morning is not offered and cannot be booked.
        app.patch_order(&dora, "V1", &json!({"Pinned": true}))
            .await
            .expect(200);
        let (_, offered) = crate::helpers::open_windows(&app, &dora, &search).await;
        assert!(!offered.contains(&morning), "{offered:?}");
        let refused = app.book_followup(&dora, "ORIG", &gas).await;
        assert_error(&refused, 409);
        assert_eq!(user_of(&app, &dora, "V1").await, "gus");

        // Unpinned, a repair makes room: the morning is offered, and booking it gives V1 to pia
        // (still arriving within its promise) and the follow-up to gus, in one commit.
        app.patch_order(&dora, "V1", &json!({"Pinned": false}))
            .await
            .expect(200);
        let (_, offered) = crate::helpers::open_windows(&app, &dora, &search).await;
        assert!(offered.contains(&morning), "{offered:?}");
        let booked = app.book_followup(&dora, "ORIG", &gas).await.expect(200);
        let num = booked.body["OrderNum"].as_str().unwrap().to_string();
        let new = app.get_order(&dora, &num).await.expect(200).body;
        assert_eq!(new["UserName"], "gus", "{new}");
        let new_start = time::parse(new["PlannedStartDate"].as_str().unwrap())
            .unwrap()
            .to_timestamp();
        assert!(morning.0 <= new_start && new_start <= morning.1, "{new}");

        let v1 = app.get_order(&dora, "V1").await.expect(200).body;
        assert_eq!(v1["UserName"], "pia", "{v1}");
        let v1_start = time::parse(v1["PlannedStartDate"].as_str().unwrap())
            .unwrap()
            .to_timestamp();
        assert!(
            local(1, "08:00") <= v1_start && v1_start <= local(1, "08:30"),
            "{v1}"
        );
        // Gus's visits do not overlap: V1 left before the follow-up came.
        let new_end = time::parse(new["PlannedEndDate"].as_str().unwrap())
            .unwrap()
            .to_timestamp();
        let gus = app
            .list_orders(&dora, &[("UserName", "gus"), ("Limit", "50")])
            .await
            .expect(200)
            .body;
        let nums: Vec<&str> = gus["WorkOrders"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["OrderNum"].as_str().unwrap())
            .collect();
        assert!(
            !nums.contains(&"V1") && nums.contains(&num.as_str()),
            "{nums:?}"
        );
        assert!(new_end > new_start);

        // The move is recorded, as the repair's.
        let m = app
            .request(
                reqwest::Method::GET,
                &format!("{SCHED}/moves?OrderNum=V1"),
                Some(&dora),
                None,
            )
            .await
            .expect(200);
        let list = m.body["Moves"].as_array().unwrap();
        assert_eq!(list.len(), 1, "{}", m.body);
        assert_eq!(list[0]["Reason"], "repair");
        assert_eq!(list[0]["FromUserName"], "gus");
        assert_eq!(list[0]["ToUserName"], "pia");
    }
);
