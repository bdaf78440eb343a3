//! Booking follow-ups with the built-in scheduler over HTTP (docs/api.md §1, §7; docs/scheduler.md §5):
//! the technician's whole flow, unavailable windows, the last free window under concurrency,
//! idempotent retries, and work orders as the single source of truth for who is busy when.

use std::{collections::HashMap, sync::Arc};

use jiff::{SignedDuration, Timestamp};
use revisit::{
    domain::{EntityId, time},
    schedule::builtin::{load_setup, visits_by_tech},
    store::VisitQuery,
};
use revisit_scheduler::{GreatCircle, Window, check_day, check_shift_bounds};
use serde_json::{Value, json};

use crate::{
    both_backends,
    helpers::{
        AREA, Resp, TestApp, Win, assert_error, assert_invalid, assert_windows_either, book_body,
        closed_order, fleet, fmt_wins, followups_of, location, open_windows, order_type_body,
        period, policy_windows, technician_body, tz, window,
    },
};

const SLOT_UNAVAILABLE: &str = "urn:revisit:error:slot-unavailable";

#[track_caller]
fn assert_kind(r: &Resp, status: u16, kind: &str) {
    assert_error(r, status);
    assert_eq!(r.body["type"], kind, "{}", r.body);
}

/// A 409 slot-unavailable whose `Alternatives` are 0 to 3 offerable windows, none of them `w`.
#[track_caller]
fn assert_slot_unavailable(r: &Resp, w: Win) -> Vec<Win> {
    assert_kind(r, 409, SLOT_UNAVAILABLE);
    let alternatives = crate::helpers::offered(&r.body["Alternatives"]);
    assert!(alternatives.len() <= 3, "{}", r.body);
    assert!(!alternatives.contains(&w), "{}", r.body);
    assert!(alternatives.is_sorted(), "{}", r.body);
    alternatives
}

/// A work order of `user` that fills window 12:00-16:00 of the local date `days` from now: it
/// arrives 11:30, within its promised 08:00-12:00, and stays until 16:30, at the jobs' place.
fn blocker(num: &str, user: &str, days: i64) -> Value {
    let morning = window(days, 0);
    let start = morning.1 - SignedDuration::from_mins(30);
    json!({
        "OrderNum": num,
        "OrderType": "REPAIR",
        "OrderStatus": 1,
        "DispatchStatus": 3,
        "UserName": user,
        "PlannedStartDate": time::format(start),
        "PlannedEndDate": time::format(start + SignedDuration::from_hours(5)),
        "TimeConstraints": [{"Type": "1001", "Period": period(morning)}],
        "Location": location(num),
    })
}

fn first_ten(now: Timestamp) -> Vec<Win> {
    policy_windows(now).into_iter().take(10).collect()
}

both_backends!(
    a_technician_closes_an_order_incomplete_searches_books_the_first_slot_and_retries_safely,
    |app| async move {
        let f = fleet(&app).await;
        // The dispatcher plans the visit; the technician is on site.
        let mut original = closed_order("WO-1", "tom");
        original["OrderStatus"] = json!(7);
        original.as_object_mut().unwrap().remove("ReasonCode");
        app.put_order(&f.dispatcher, "WO-1", &original)
            .await
            .expect(201);

        // The technician logs in, closes it incomplete: parts required.
        let token = app.login("tom", &f.tech.password).await;
        let tom = &token;
        let closed = app
            .patch_order(
                tom,
                "WO-1",
                &json!({"OrderStatus": 4097, "ReasonCode": "2001"}),
            )
            .await
            .expect(200);
        assert_eq!(closed.body["OrderStatus"], 4097, "{}", closed.body);

        // Open slots: the first ten windows, chronological, each a 1001 with ID, Desc, Period.
        let parts = json!([{"ProdNum": "FILTER-20", "Qty": 1,
            "EstimatedDelivery": time::format(Timestamp::now() - SignedDuration::from_hours(20))}]);
        let search = json!({"OriginalOrderNum": "WO-1", "RequiredParts": parts});
        let before = Timestamp::now();
        let (slots, got) = open_windows(&app, tom, &search).await;
        let after = Timestamp::now();
        assert_windows_either(&got, first_ten(before), first_ten(after));
        assert!(got.is_sorted());
        let first = slots.body["TimeConstraints"][0].clone();

        // Book the first one, with the parts.
        let body = json!({
            "TimeConstraints": [{"Type": "1001", "Period": first["Period"].clone()}],
            "RequiredParts": parts,
        });
        let booked = app.book_followup(tom, "WO-1", &body).await.expect(200);
        let num = booked.body["OrderNum"].as_str().unwrap().to_string();
        assert!(!num.is_empty());
        let ordered = booked.body["OrderedParts"].as_array().unwrap();
        assert_eq!(ordered.len(), 1, "{}", booked.body);
        assert!(
            ordered[0]["PartOrderNum"]
                .as_str()
                .is_some_and(|s| !s.is_empty())
        );
        assert_eq!(ordered[0]["Parts"], json!(["FILTER-20"]));

        // The new order, as the technician reads it.
        let new = app.get_order(tom, &num).await.expect(200).body;
        assert_eq!(new["OrderStatus"], 1, "{new}");
        assert_eq!(new["UserName"], "tom");
        assert_eq!(new["DispatchStatus"], 3);
        assert_eq!(new["OriginalOrderNum"], "WO-1");
        assert_eq!(new["OrderType"], "REPAIR");
        let tcs = new["TimeConstraints"].as_array().unwrap();
        assert_eq!(tcs.len(), 1, "{new}");
        assert_eq!(tcs[0]["Type"], "1001");
        assert_eq!(tcs[0]["Period"], first["Period"]);
        let slot = got[0];
        let at = |k: &str| {
            time::parse(new[k].as_str().unwrap())
                .unwrap()
                .to_timestamp()
        };
        let (start, end) = (at("PlannedStartDate"), at("PlannedEndDate"));
        assert!(slot.0 <= start && start <= slot.1, "{new}");
        assert_eq!(
            end.duration_since(start),
            SignedDuration::from_mins(60),
            "{new}"
        );
        assert_eq!(new["PlannedDur"], 60, "{new}");
        assert_eq!(new["Account"], original["Account"]);
        assert_eq!(new["Location"], original["Location"]);
        assert_eq!(new["RequiredParts"], parts);

        // The original lists it.
        let list = app.list_followups(tom, "WO-1").await.expect(200).body;
        let items = list["Followups"].as_array().unwrap();
        assert_eq!(items.len(), 1, "{list}");
        assert_eq!(items[0]["OrderNum"], num.as_str());
        assert_eq!(items[0]["OriginalOrderNum"], "WO-1");
        assert_eq!(items[0]["UserName"], "tom");
        assert_eq!(items[0]["Scheduler"], "builtin");
        assert_eq!(items[0]["Slot"], first["Period"]);

        // A retry of the same request without a key replays the answer; still one follow-up.
        let again = app.book_followup(tom, "WO-1", &body).await.expect(200);
        assert_eq!(again.body, booked.body);
        assert_eq!(
            followups_of(&app, &f.dispatcher, "tom", "WO-1").await.len(),
            1
        );
        let list = app.list_followups(tom, "WO-1").await.expect(200).body;
        assert_eq!(list["Followups"].as_array().unwrap().len(), 1, "{list}");

        // Another slot without a key: the follow-up is already booked.
        let r = app.book_followup(tom, "WO-1", &book_body(got[1])).await;
        assert_kind(&r, 409, "urn:revisit:error:followup-already-booked");
        assert!(
            r.body["detail"].as_str().unwrap().contains(&num),
            "{}",
            r.body
        );
        assert_eq!(
            followups_of(&app, &f.dispatcher, "tom", "WO-1").await.len(),
            1
        );

        // The booked visit is now on tom's day: the slot booked is still offered only if a
        // second visit fits in it (it does: a 60-minute visit in a 4-hour window).
        app.put_order(&f.dispatcher, "WO-2", &closed_order("WO-2", "tom"))
            .await
            .expect(201);
        let (_, again) =
            open_windows(&app, &f.dispatcher, &json!({"OriginalOrderNum": "WO-2"})).await;
        assert!(again.contains(&slot), "{:?}", fmt_wins(&again));
    }
);

both_backends!(
    a_window_that_cannot_be_offered_is_a_409_with_alternatives,
    |app| async move {
        let f = fleet(&app).await;
        app.put_order(&f.dispatcher, "WO-1", &closed_order("WO-1", "tom"))
            .await
            .expect(201);

        // Not a policy window: 09:00-10:00 tomorrow.
        let odd = (
            window(1, 0).0 + SignedDuration::from_hours(1),
            window(1, 0).0 + SignedDuration::from_hours(2),
        );
        let r = app
            .book_followup(&f.tech.token, "WO-1", &book_body(odd))
            .await;
        let alts = assert_slot_unavailable(&r, odd);
        // The calendar is free: the nearest windows are offered instead.
        assert_eq!(alts.len(), 3, "{}", r.body);
        assert!(alts.contains(&window(1, 0)), "{:?}", fmt_wins(&alts));
        // A policy window beyond the horizon, or before the lead time.
        let far = window(30, 1);
        assert_slot_unavailable(
            &app.book_followup(&f.tech.token, "WO-1", &book_body(far))
                .await,
            far,
        );
        let past = window(-1, 1);
        assert_slot_unavailable(
            &app.book_followup(&f.tech.token, "WO-1", &book_body(past))
                .await,
            past,
        );

        // A fully booked window: tom, the only technician, is busy tomorrow 11:30-16:30.
        app.put_order(&f.dispatcher, "BUSY-1", &blocker("BUSY-1", "tom", 1))
            .await
            .expect(201);
        let full = window(1, 1);
        let r = app
            .book_followup(&f.tech.token, "WO-1", &book_body(full))
            .await;
        let alts = assert_slot_unavailable(&r, full);
        assert!(!alts.is_empty(), "{}", r.body);
        assert!(r.body["detail"].as_str().is_some_and(|d| !d.is_empty()));
        // The search does not offer it either.
        let (_, got) =
            open_windows(&app, &f.tech.token, &json!({"OriginalOrderNum": "WO-1"})).await;
        assert!(!got.contains(&full), "{:?}", fmt_wins(&got));
        assert!(got.contains(&window(1, 0)) && got.contains(&window(1, 2)));

        // Nothing was booked, and a refused booking does not block the next one.
        assert!(
            followups_of(&app, &f.dispatcher, "tom", "WO-1")
                .await
                .is_empty()
        );
        let list = app
            .list_followups(&f.tech.token, "WO-1")
            .await
            .expect(200)
            .body;
        assert_eq!(list["Followups"], json!([]), "{list}");
        let ok = window(1, 2);
        app.book_followup(&f.tech.token, "WO-1", &book_body(ok))
            .await
            .expect(200);

        // A booking body without a slot is a 400, not a 409.
        assert_invalid(
            &app.book_followup(&f.tech.token, "WO-1", &json!({})).await,
            400,
            "$.TimeConstraints",
        );
    }
);

both_backends!(
    multi_thread
    thirty_two_concurrent_bookings_of_the_last_free_window_give_one_success_and_keep_every_day_valid,
    |app| async move {
        let f = fleet(&app).await;
        // A long job, and a day with a short shift: the 12:00-16:00 window two days from now has
        // room for exactly one more visit (arrive 12:00, leave 15:00, home by 16:30).
        app.sched_put(&f.admin, "ordertypes", "LONG", &order_type_body("LONG", 180, "HVAC"))
            .await
            .expect(201);
        let day = local_date(2);
        let mut tom = technician_body("tom");
        tom["Exceptions"] = json!([{"Date": day, "Start": "11:00", "End": "16:30"}]);
        app.sched_put(&f.admin, "technicians", "tom", &tom)
            .await
            .expect(200);
        let target = window(2, 1);
        let n = 32;
        for i in 0..n {
            let num = format!("WO-{i:02}");
            let mut o = closed_order(&num, "tom");
            o["OrderType"] = json!("LONG");
            app.put_order(&f.dispatcher, &num, &o).await.expect(201);
        }
        // Before: offered.
        let (_, got) = open_windows(&app, &f.dispatcher, &json!({"OriginalOrderNum": "WO-00"})).await;
        assert!(got.contains(&target), "{:?}", fmt_wins(&got));

        let app = Arc::new(app);
        let tasks: Vec<_> = (0..n)
            .map(|i| {
                let (app, token) = (app.clone(), f.dispatcher.clone());
                tokio::spawn(async move {
                    let num = format!("WO-{i:02}");
                    let r = app.book_followup(&token, &num, &book_body(target)).await;
                    (num, r)
                })
            })
            .collect();
        let mut won = Vec::new();
        for t in tasks {
            let (num, r) = t.await.expect("the task ran");
            match r.status.as_u16() {
                200 => won.push((num, r.body["OrderNum"].as_str().unwrap().to_string())),
                _ => {
                    assert_slot_unavailable(&r, target);
                }
            }
        }
        assert_eq!(won.len(), 1, "winners: {won:?}");

        // The one booked visit is in the window, tom's.
        let (orig, new) = &won[0];
        let o = app.get_order(&f.dispatcher, new).await.expect(200).body;
        assert_eq!(o["OriginalOrderNum"], orig.as_str());
        let start = time::parse(o["PlannedStartDate"].as_str().unwrap())
            .unwrap()
            .to_timestamp();
        assert!(target.0 <= start && start <= target.1, "{o}");
        // The losers have no follow-up, and may retry (their claims were dropped): still 409.
        let loser = (0..n)
            .map(|i| format!("WO-{i:02}"))
            .find(|num| num != orig)
            .unwrap();
        assert_slot_unavailable(
            &app.book_followup(&f.dispatcher, &loser, &book_body(target))
                .await,
            target,
        );
        for i in 0..n {
            let num = format!("WO-{i:02}");
            let list = app.list_followups(&f.dispatcher, &num).await.expect(200).body;
            let want = usize::from(&num == orig);
            assert_eq!(list["Followups"].as_array().unwrap().len(), want, "{num}: {list}");
        }
        // The window is no longer offered.
        let (_, got) = open_windows(&app, &f.dispatcher, &json!({"OriginalOrderNum": loser})).await;
        assert!(!got.contains(&target), "{:?}", fmt_wins(&got));

        // In the database: every technician-day keeps its invariants.
        assert_days_valid(&app).await;
    }
);

/// The local date `days` from today, `YYYY-MM-DD`.
fn local_date(days: i64) -> String {
    window(days, 0)
        .0
        .to_zoned(tz())
        .date()
        .strftime("%Y-%m-%d")
        .to_string()
}

/// Reads acme's visits from the store and checks every technician's days: no two visits
/// overlap, consecutive visits leave the travel time, every arrival is in its promised window,
/// and every visit is within the shift.
async fn assert_days_valid(app: &TestApp) {
    let entity = EntityId::parse("acme").unwrap();
    let store = app.state.store.as_ref();
    let now = Timestamp::now().as_millisecond();
    let rows = store
        .list_visits(
            &entity,
            &VisitQuery {
                techs: Vec::new(),
                from_ms: now - 2 * 86_400_000,
                to_ms: now + 30 * 86_400_000,
            },
        )
        .await
        .expect("visits");
    assert!(!rows.is_empty());
    let setup = load_setup(store, &entity)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let wc = setup
        .work_centers
        .iter()
        .find(|w| w.service_area_id == AREA)
        .expect("the work center");
    let travel = GreatCircle::from_policy(&wc.policy);
    let zone = tz();
    let by_tech: HashMap<_, _> = visits_by_tech(&setup, rows);
    for (user, visits) in &by_tech {
        let tech = setup
            .technicians
            .iter()
            .find(|t| &t.user_name == user)
            .expect("a known technician");
        check_day(tech, &zone, visits, &travel).unwrap_or_else(|e| panic!("{user}: {e}"));
        check_shift_bounds(tech, &zone, visits, &travel).unwrap_or_else(|e| panic!("{user}: {e}"));
        for v in visits {
            assert_ne!(
                v.window,
                Window {
                    start: v.start,
                    end: v.start
                },
                "{}: no promised window",
                v.order_num
            );
        }
    }
}

both_backends!(
    an_idempotency_key_replays_the_first_answer_and_refuses_another_body,
    |app| async move {
        let f = fleet(&app).await;
        for num in ["WO-1", "WO-2"] {
            app.put_order(&f.dispatcher, num, &closed_order(num, "tom"))
                .await
                .expect(201);
        }
        let tom = &f.tech.token;
        let body = book_body(window(1, 1));
        let first = app
            .book_followup_with_key(tom, "WO-1", &body, "key-1")
            .await
            .expect(200);
        let num = first.body["OrderNum"].as_str().unwrap().to_string();
        let again = app
            .book_followup_with_key(tom, "WO-1", &body, "key-1")
            .await
            .expect(200);
        assert_eq!(again.body, first.body);
        assert_eq!(again.header("idempotent-replayed"), Some("true"));
        assert_eq!(
            followups_of(&app, &f.dispatcher, "tom", "WO-1").await.len(),
            1
        );
        assert_eq!(
            app.list_followups(tom, "WO-1").await.expect(200).body["Followups"]
                .as_array()
                .unwrap()
                .len(),
            1
        );
        // The key's body is compared canonically: the same slot written in local time, with the
        // OriginalOrderNum the path implies, is the same request.
        let w = window(1, 1);
        let local = |t: Timestamp| {
            t.to_zoned(tz())
                .strftime("%Y-%m-%dT%H:%M:%S%:z")
                .to_string()
        };
        let reordered = json!({"OriginalOrderNum": "WO-1", "TimeConstraints": [
            {"Period": {"End": local(w.1), "Start": local(w.0)}, "Type": "1001"}]});
        let r = app
            .book_followup_with_key(tom, "WO-1", &reordered, "key-1")
            .await
            .expect(200);
        assert_eq!(r.body["OrderNum"], num.as_str());

        // The same key with another body: 422, and nothing is booked.
        let other = book_body(window(1, 2));
        let r = app
            .book_followup_with_key(tom, "WO-1", &other, "key-1")
            .await;
        assert_kind(&r, 422, "urn:revisit:error:idempotency-key-reused");
        let r = app
            .book_followup_with_key(tom, "WO-2", &other, "key-1")
            .await;
        assert_error(&r, 422);
        assert!(
            followups_of(&app, &f.dispatcher, "tom", "WO-2")
                .await
                .is_empty()
        );

        // A new key for another slot of the same original: the follow-up is already booked.
        let r = app
            .book_followup_with_key(tom, "WO-1", &other, "key-2")
            .await;
        assert_kind(&r, 409, "urn:revisit:error:followup-already-booked");

        // Keys of 0 or 300 characters, or with non-ASCII bytes: 400.
        for key in ["x".repeat(300), "schlüssel".to_string()] {
            let req = app
                .client
                .post(format!(
                    "{}{}/WO-2/Followup",
                    app.address,
                    crate::helpers::WO
                ))
                .header("x-access-token", tom.as_str())
                .header("idempotency-key", key.as_bytes())
                .json(&book_body(window(1, 2)));
            let r = req.send().await.unwrap();
            assert_eq!(r.status().as_u16(), 400, "{key:?}");
        }
        assert_error(
            &app.book_followup_with_key(tom, "WO-2", &book_body(window(1, 2)), &"k".repeat(300))
                .await,
            400,
        );
        assert_error(
            &app.book_followup_with_key(tom, "WO-2", &book_body(window(1, 2)), "")
                .await,
            400,
        );
        // 255 characters is fine.
        app.book_followup_with_key(tom, "WO-2", &book_body(window(1, 2)), &"k".repeat(255))
            .await
            .expect(200);
        assert_eq!(
            followups_of(&app, &f.dispatcher, "tom", "WO-2").await.len(),
            1
        );
    }
);

both_backends!(
    a_retry_of_a_booked_follow_up_replays_after_its_window_filled_up,
    |app| async move {
        let f = fleet(&app).await;
        for num in ["WO-1", "WO-2"] {
            app.put_order(&f.dispatcher, num, &closed_order(num, "tom"))
                .await
                .expect(201);
        }
        let tom = &f.tech.token;
        let target = window(1, 1);
        let body = book_body(target);
        let first = app
            .book_followup_with_key(tom, "WO-1", &body, "key-1")
            .await
            .expect(200);
        // The dispatcher fills the rest of tom's window: nothing more fits in it.
        app.put_order(&f.dispatcher, "WO-B", &blocker("WO-B", "tom", 1))
            .await
            .expect(201);
        // A new booking of that window is refused, and refused again when retried: the refusal
        // left no claim behind that would make the retry a request in flight.
        for _ in 0..2 {
            let r = app.book_followup(tom, "WO-2", &body).await;
            assert_slot_unavailable(&r, target);
        }
        assert!(
            followups_of(&app, &f.dispatcher, "tom", "WO-2")
                .await
                .is_empty()
        );
        // The technician's retry of the booking already made (its answer was lost on the way)
        // replays it, with or without the key, although the window is now full.
        let again = app
            .book_followup_with_key(tom, "WO-1", &body, "key-1")
            .await
            .expect(200);
        assert_eq!(again.body, first.body);
        assert_eq!(again.header("idempotent-replayed"), Some("true"));
        let again = app.book_followup(tom, "WO-1", &body).await.expect(200);
        assert_eq!(again.body, first.body);
        // The same key with the other body, and another body without a key, are refused as
        // before.
        let r = app
            .book_followup_with_key(tom, "WO-1", &book_body(window(1, 0)), "key-1")
            .await;
        assert_kind(&r, 422, "urn:revisit:error:idempotency-key-reused");
        let r = app
            .book_followup(tom, "WO-1", &book_body(window(1, 0)))
            .await;
        assert_kind(&r, 409, "urn:revisit:error:followup-already-booked");
        assert_eq!(
            followups_of(&app, &f.dispatcher, "tom", "WO-1").await.len(),
            1
        );
    }
);

both_backends!(
    multi_thread
    ten_concurrent_duplicates_with_one_idempotency_key_book_one_order,
    |app| async move {
        let f = fleet(&app).await;
        app.put_order(&f.dispatcher, "WO-1", &closed_order("WO-1", "tom"))
            .await
            .expect(201);
        let app = Arc::new(app);
        let body = book_body(window(1, 1));
        let tasks: Vec<_> = (0..10)
            .map(|_| {
                let (app, token, body) = (app.clone(), f.tech.token.clone(), body.clone());
                tokio::spawn(async move {
                    app.book_followup_with_key(&token, "WO-1", &body, "dup-key")
                        .await
                })
            })
            .collect();
        let mut answers = Vec::new();
        for t in tasks {
            answers.push(t.await.expect("the task ran"));
        }
        let ok: Vec<&Resp> = answers.iter().filter(|r| r.status == 200).collect();
        assert!(!ok.is_empty(), "no success: {answers:?}");
        for r in &ok {
            assert_eq!(r.body, ok[0].body);
        }
        for r in answers.iter().filter(|r| r.status != 200) {
            assert_kind(r, 409, "urn:revisit:error:request-in-flight");
        }
        assert_eq!(followups_of(&app, &f.dispatcher, "tom", "WO-1").await.len(), 1);
        // Once done, the key replays.
        let r = app
            .book_followup_with_key(&f.tech.token, "WO-1", &body, "dup-key")
            .await
            .expect(200);
        assert_eq!(r.body, ok[0].body);
        // And without the key: the same body replays too.
        let r = app.book_followup(&f.tech.token, "WO-1", &body).await.expect(200);
        assert_eq!(r.body, ok[0].body);
    }
);

both_backends!(
    a_work_order_that_fills_a_window_removes_it_from_the_offers_at_once_and_deleting_it_brings_it_back,
    |app| async move {
        let f = fleet(&app).await;
        app.put_order(&f.dispatcher, "WO-1", &closed_order("WO-1", "tom"))
            .await
            .expect(201);
        let search = json!({"OriginalOrderNum": "WO-1"});
        let target = window(1, 1);
        let (_, before) = open_windows(&app, &f.tech.token, &search).await;
        assert!(before.contains(&target), "{:?}", fmt_wins(&before));

        // The dispatcher books tom for tomorrow 11:30-16:30.
        app.put_order(&f.dispatcher, "BUSY-1", &blocker("BUSY-1", "tom", 1))
            .await
            .expect(201);
        let (_, during) = open_windows(&app, &f.tech.token, &search).await;
        assert!(!during.contains(&target), "{:?}", fmt_wins(&during));
        assert!(during.contains(&window(1, 0)), "{:?}", fmt_wins(&during));
        assert!(during.contains(&window(1, 2)), "{:?}", fmt_wins(&during));
        assert_eq!(during.len(), 10);

        // Moving it to the day after frees tomorrow and fills that day instead.
        app.put_order(&f.dispatcher, "BUSY-1", &blocker("BUSY-1", "tom", 2))
            .await
            .expect(200);
        let (_, moved) = open_windows(&app, &f.tech.token, &search).await;
        assert!(moved.contains(&target), "{:?}", fmt_wins(&moved));
        assert!(!moved.contains(&window(2, 1)), "{:?}", fmt_wins(&moved));

        // Closing it frees the window too.
        app.patch_order(&f.dispatcher, "BUSY-1", &json!({"OrderStatus": 4096}))
            .await
            .expect(200);
        let (_, closed) = open_windows(&app, &f.tech.token, &search).await;
        assert!(closed.contains(&window(2, 1)), "{:?}", fmt_wins(&closed));

        // Another blocker, deleted: the window comes back.
        app.put_order(&f.dispatcher, "BUSY-2", &blocker("BUSY-2", "tom", 1))
            .await
            .expect(201);
        let (_, during) = open_windows(&app, &f.tech.token, &search).await;
        assert!(!during.contains(&target), "{:?}", fmt_wins(&during));
        app.delete_order(&f.dispatcher, "BUSY-2").await.expect(204);
        let now = Timestamp::now();
        let (_, after) = open_windows(&app, &f.tech.token, &search).await;
        assert!(after.contains(&target), "{:?}", fmt_wins(&after));
        assert_windows_either(&after, first_ten(now), first_ten(Timestamp::now()));
    }
);

both_backends!(
    a_booking_that_needs_room_moves_a_visit_later_inside_its_promised_window,
    |app| async move {
        let f = fleet(&app).await;
        app.put_order(&f.dispatcher, "WO-1", &closed_order("WO-1", "tom"))
            .await
            .expect(201);
        // Two days from now tom works 07:00-10:10 only, with one visit 08:10-09:10 promised
        // 08:00-12:00. After it there is no time left to drive home; before it there is, if it
        // moves to 09:00.
        let mut tom = technician_body("tom");
        tom["Exceptions"] = json!([{"Date": local_date(2), "Start": "07:00", "End": "10:10"}]);
        app.sched_put(&f.admin, "technicians", "tom", &tom)
            .await
            .expect(200);
        let morning = window(2, 0);
        let v_start = morning.0 + SignedDuration::from_mins(10);
        let mut visit = blocker("V-1", "tom", 2);
        visit["PlannedStartDate"] = json!(time::format(v_start));
        visit["PlannedEndDate"] = json!(time::format(v_start + SignedDuration::from_hours(1)));
        app.put_order(&f.dispatcher, "V-1", &visit)
            .await
            .expect(201);

        let r = app
            .book_followup(&f.dispatcher, "WO-1", &book_body(morning))
            .await
            .expect(200);
        let new = app
            .get_order(&f.dispatcher, r.body["OrderNum"].as_str().unwrap())
            .await
            .expect(200)
            .body;
        assert_eq!(new["PlannedStartDate"], time::format(morning.0), "{new}");
        let moved = app.get_order(&f.dispatcher, "V-1").await.expect(200).body;
        let hour = morning.0 + SignedDuration::from_hours(1);
        assert_eq!(moved["PlannedStartDate"], time::format(hour), "{moved}");
        assert_eq!(
            moved["PlannedEndDate"],
            time::format(hour + SignedDuration::from_hours(1)),
            "{moved}"
        );
        assert_eq!(
            moved["TimeConstraints"], visit["TimeConstraints"],
            "{moved}"
        );
        assert_days_valid(&app).await;

        // The day is now full: the window is no longer offered.
        app.put_order(&f.dispatcher, "WO-2", &closed_order("WO-2", "tom"))
            .await
            .expect(201);
        let (_, got) =
            open_windows(&app, &f.dispatcher, &json!({"OriginalOrderNum": "WO-2"})).await;
        assert!(!got.contains(&morning), "{:?}", fmt_wins(&got));
    }
);

both_backends!(
    a_managed_account_or_location_is_expanded_from_the_original_and_an_ad_hoc_one_kept,
    |app| async move {
        let f = fleet(&app).await;
        for num in ["WO-1", "WO-2"] {
            app.put_order(&f.dispatcher, num, &closed_order(num, "tom"))
                .await
                .expect(201);
        }
        let original = closed_order("WO-1", "tom");
        let mut body = book_body(window(1, 0));
        body["Account"] = json!({"AccountNum": "ACCT-WO-1"});
        body["Location"] = json!({"LocationNum": "LOC-WO-1"});
        let r = app
            .book_followup(&f.tech.token, "WO-1", &body)
            .await
            .expect(200);
        let new = app
            .get_order(&f.tech.token, r.body["OrderNum"].as_str().unwrap())
            .await
            .expect(200)
            .body;
        assert_eq!(new["Account"], original["Account"]);
        assert_eq!(new["Location"], original["Location"]);

        // An ad-hoc account is taken as given.
        let mut body = book_body(window(1, 1));
        let account = json!({"AccountNum": "ACCT-NEW", "Name": "M. Martin", "AccountType": "1002"});
        body["Account"] = account.clone();
        let r = app
            .book_followup(&f.tech.token, "WO-2", &body)
            .await
            .expect(200);
        let new = app
            .get_order(&f.tech.token, r.body["OrderNum"].as_str().unwrap())
            .await
            .expect(200)
            .body;
        assert_eq!(new["Account"], account);
        assert_eq!(new["Location"], closed_order("WO-2", "tom")["Location"]);
    }
);

both_backends!(
    a_technician_reads_the_follow_up_of_their_order_even_when_a_colleague_got_it,
    |app| async move {
        let f = fleet(&app).await;
        // Tom is off the schedule, so the follow-up goes to Tess.
        let mut tom_off = technician_body("tom");
        tom_off["Active"] = json!(false);
        app.sched_put(&f.admin, "technicians", "tom", &tom_off)
            .await
            .expect(200);
        app.sched_put(&f.admin, "technicians", "tess", &technician_body("tess"))
            .await
            .expect(201);
        app.put_order(&f.dispatcher, "WO-9", &closed_order("WO-9", "tom"))
            .await
            .expect(201);
        let tom = f.tech.token.clone();
        let (_, windows) = open_windows(&app, &tom, &json!({"OriginalOrderNum": "WO-9"})).await;
        let booked = app
            .book_followup(&tom, "WO-9", &book_body(windows[0]))
            .await
            .expect(200);
        let num = booked.body["OrderNum"].as_str().unwrap().to_string();

        let new = app.get_order(&tom, &num).await.expect(200).body;
        assert_eq!(new["UserName"], "tess", "{new}");
        assert_eq!(new["OriginalOrderNum"], "WO-9");
        // Reading is all: the order is Tess's to change.
        let patch = app
            .patch_order(&tom, &num, &json!({"Notes": "bring the filter"}))
            .await;
        assert_error(&patch, 403);
        // A technician with no part in it still cannot read it.
        let tia = app
            .user("acme", "tia", revisit::domain::Role::Technician)
            .await
            .token;
        assert_error(&app.get_order(&tia, &num).await, 403);
    }
);

both_backends!(
    multi_thread
    dispatcher_writes_racing_bookings_never_get_a_booking_placed_on_a_visit_already_written,
    |app| async move {
        let f = fleet(&app).await;
        let target = window(1, 1);
        let n = 12;
        for i in 0..n {
            let num = format!("WO-{i:02}");
            app.put_order(&f.dispatcher, &num, &closed_order(&num, "tom"))
                .await
                .expect(201);
        }
        // Short fixed visits a dispatcher plans for tom inside the window, written while the
        // bookings run.
        let crm = |i: i64| {
            let start = target.0 + SignedDuration::from_mins(20 * i);
            json!({
                "OrderNum": format!("CRM-{i:02}"),
                "OrderType": "REPAIR",
                "OrderStatus": 1,
                "DispatchStatus": 3,
                "UserName": "tom",
                "PlannedStartDate": time::format(start),
                "PlannedEndDate": time::format(start + SignedDuration::from_mins(15)),
                "Location": location("CRM"),
            })
        };
        let app = Arc::new(app);
        let mut tasks = Vec::new();
        for i in 0..n {
            let (a, token) = (app.clone(), f.tech.token.clone());
            tasks.push(tokio::spawn(async move {
                let num = format!("WO-{i:02}");
                let r = a.book_followup(&token, &num, &book_body(target)).await;
                assert!(r.status == 200 || r.status == 409, "{num}: {r:?}");
                // Refused by the code, which saw every write made before it decided; never by
                // the database's backstop against an overlap the code did not see.
                assert!(
                    !r.body["detail"]
                        .as_str()
                        .unwrap_or_default()
                        .contains("Another booking took that time first"),
                    "{num}: {}",
                    r.body
                );
            }));
            let (a, token, body) = (app.clone(), f.dispatcher.clone(), crm(i as i64));
            tasks.push(tokio::spawn(async move {
                let num = body["OrderNum"].as_str().unwrap().to_string();
                a.put_order(&token, &num, &body).await.expect(201);
            }));
        }
        for t in tasks {
            t.await.expect("the task ran");
        }
        // Every write has a sequence number, in commit order. A booked visit may overlap a
        // dispatcher's visit only if the dispatcher wrote it later (their call); never one that
        // was already written when the booking was decided.
        let entity = EntityId::parse("acme").unwrap();
        let changes = app
            .state
            .store
            .visit_changes(&entity, 0)
            .await
            .expect("the changes");
        let rows: Vec<_> = changes
            .iter()
            .filter_map(|c| c.row.clone().map(|r| (c.seq, r)))
            .filter(|(_, r)| r.user_name == "tom" && r.start_ms >= target.0.as_millisecond())
            .collect();
        let end = |r: &revisit::store::VisitRow| r.busy_end_ms.unwrap_or(r.start_ms + 60_000);
        let booked: Vec<_> = rows.iter().filter(|(_, r)| r.order_num.contains("-F")).collect();
        assert!(!booked.is_empty(), "no booking succeeded");
        for (s_seq, s) in &booked {
            for (c_seq, c) in rows.iter().filter(|(_, r)| r.order_num.starts_with("CRM-")) {
                let overlap = s.start_ms < end(c) && c.start_ms < end(s);
                assert!(
                    !overlap || c_seq > s_seq,
                    "{} (written {s_seq}) was booked onto {} (written {c_seq})",
                    s.order_num,
                    c.order_num
                );
            }
        }
    }
);

/// PostgreSQL only: there a booking's read and its technician lock are separate steps, and a
/// dispatcher's write may commit between them. (SQLite runs one writer at a time: the write
/// below would wait for the booking.) The decision is then taken again on the day as it is.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_booking_is_decided_again_when_the_technicians_day_changed_before_its_locks_postgres() {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use revisit::{
        domain::{
            WorkOrderNum,
            followup::{FollowupDone, NewClaim},
            workorder::WorkOrder,
        },
        store::{BookingResult, BookingTx, BookingWrite, Decision, Store, VisitRow},
    };

    let Some(app) = crate::helpers::spawn_app(crate::helpers::Backend::Postgres).await else {
        return;
    };
    let _f = fleet(&app).await;
    let entity = EntityId::parse("acme").unwrap();
    let store: Arc<Store> = app.state.store.clone();
    let original = WorkOrderNum::parse("WO-1").unwrap();
    // The booking's record, written with it.
    let claim = NewClaim {
        id: "claim-1".into(),
        original: original.clone(),
        idem_key: None,
        request_hash: "h".into(),
        user_name: "tom".into(),
        scheduler: "builtin",
        endpoint_host: None,
        slot_start_ms: 0,
        slot_end_ms: 1,
        outbound_key: None,
        lease_until_ms: None,
    };

    let target = window(1, 1);
    let at = move |mins: i64| target.0 + SignedDuration::from_mins(mins);
    let order = move |num: &str, start: Timestamp, by_dispatcher: bool| {
        let mut m = json!({
            "OrderNum": num, "OrderType": "REPAIR", "OrderStatus": 1, "DispatchStatus": 3,
            "UserName": "tom",
            "PlannedStartDate": time::format(start),
            "PlannedEndDate": time::format(start + SignedDuration::from_mins(60)),
            "Location": location(num),
        });
        if !by_dispatcher {
            m["OriginalOrderNum"] = json!("WO-1");
        }
        let num = WorkOrderNum::parse(num).unwrap();
        WorkOrder::parse(&num, m.as_object().unwrap().clone()).unwrap()
    };
    let calls = Arc::new(AtomicUsize::new(0));
    let (decide_calls, decide_store, decide_entity) =
        (calls.clone(), store.clone(), entity.clone());
    let decide = move |visits: &[VisitRow]| {
        let first = decide_calls.fetch_add(1, Ordering::SeqCst) == 0;
        let start = if first {
            // The dispatcher puts tom at 12:00 right after the booking read his day, which was
            // empty then: the booking decides on 12:00 too.
            assert!(!visits.iter().any(|v| v.order_num == "CRM-1"));
            let crm = order("CRM-1", at(0), true);
            tokio::task::block_in_place(|| {
                tokio::runtime::Handle::current().block_on(decide_store.write_work_order(
                    &decide_entity,
                    &WorkOrderNum::parse("CRM-1").unwrap(),
                    Box::new(move |_| Ok(crm)),
                ))
            })
            .expect("the dispatcher's write");
            at(0)
        } else {
            // Decided again: the dispatcher's visit is there now; the booking goes after it.
            assert!(visits.iter().any(|v| v.order_num == "CRM-1"));
            at(90)
        };
        Decision::Write(Box::new(BookingWrite {
            new_order: order("WO-1-F1", start, false),
            shifted: Vec::new(),
            moved: Vec::new(),
            part_order: None,
            done: FollowupDone {
                order_num: Some("WO-1-F1".into()),
                status_code: 200,
                answer: json!({"OrderNum": "WO-1-F1"}),
                answer_raw: None,
            },
        }))
    };
    let day = target.0.as_millisecond();
    let result = store
        .commit_booking(
            &entity,
            &BookingTx {
                claim,
                visits: VisitQuery {
                    techs: vec!["tom".into()],
                    from_ms: day - 86_400_000,
                    to_ms: day + 86_400_000,
                },
                lock_key: "book:test".into(),
                events: Default::default(),
            },
            &decide,
        )
        .await
        .expect("the booking commits");
    assert!(matches!(result, BookingResult::Booked(_)), "{result:?}");
    assert_eq!(calls.load(Ordering::SeqCst), 2, "decided twice");
    let stored = store
        .get_work_order(&entity, &WorkOrderNum::parse("WO-1-F1").unwrap())
        .await
        .unwrap()
        .expect("the follow-up is stored")
        .into_value();
    assert_eq!(
        stored.get("PlannedStartDate"),
        Some(&json!(time::format(at(90))))
    );
    // The dispatcher's write, made while the first decision was taken, is kept as it was.
    assert!(
        store
            .get_work_order(&entity, &WorkOrderNum::parse("CRM-1").unwrap())
            .await
            .unwrap()
            .is_some()
    );
}

/// PostgreSQL only (where another node can hold a day's booking lock): a booking that waits in
/// its node's queue longer than `booking_queue_wait` gets a 503 with `Retry-After`, books nothing
/// and leaves nothing behind: its retry goes through once the queue moves.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_booking_that_waits_too_long_for_its_turn_is_a_503_and_its_retry_books_postgres() {
    use sqlx::Connection;

    let Some(app) = crate::helpers::spawn_app_with(crate::helpers::Backend::Postgres, |c| {
        c.booking_queue_wait = std::time::Duration::from_millis(300);
    })
    .await
    else {
        return;
    };
    let f = fleet(&app).await;
    for num in ["WO-1", "WO-2"] {
        app.put_order(&f.dispatcher, num, &closed_order(num, "tom"))
            .await
            .expect(201);
    }
    let target = window(1, 1);
    // Another node is booking that day: it holds the day's booking lock.
    let mut other = sqlx::PgConnection::connect(app.state.config.database_url.expose())
        .await
        .expect("a second connection");
    sqlx::query("BEGIN").execute(&mut other).await.unwrap();
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1 || chr(31) || $2, 0))")
        .bind("acme")
        .bind(format!("book:{}", local_date(1)))
        .execute(&mut other)
        .await
        .unwrap();

    // The first booking takes this node's turn and waits on the database lock...
    let app = Arc::new(app);
    let (a, token) = (app.clone(), f.tech.token.clone());
    let first =
        tokio::spawn(async move { a.book_followup(&token, "WO-1", &book_body(target)).await });
    tokio::time::sleep(std::time::Duration::from_millis(150)).await;
    // ...so the second waits behind it in the node's queue, and gives up.
    let r = app
        .book_followup(&f.tech.token, "WO-2", &book_body(target))
        .await;
    assert_kind(&r, 503, "urn:revisit:error:unavailable");
    assert_eq!(r.header("retry-after"), Some("5"), "{}", r.body);
    assert!(
        r.body["detail"]
            .as_str()
            .is_some_and(|d| d.contains(&local_date(1))),
        "{}",
        r.body
    );
    assert!(
        followups_of(&app, &f.dispatcher, "tom", "WO-2")
            .await
            .is_empty()
    );

    // The other node commits: the first booking goes through, and so does the retry.
    sqlx::query("COMMIT").execute(&mut other).await.unwrap();
    first.await.expect("the task ran").expect(200);
    app.book_followup(&f.tech.token, "WO-2", &book_body(target))
        .await
        .expect(200);
    assert_eq!(
        followups_of(&app, &f.dispatcher, "tom", "WO-2").await.len(),
        1
    );
}
