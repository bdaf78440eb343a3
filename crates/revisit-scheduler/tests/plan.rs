//! Slot search and placement on hand-made days (docs/scheduler.md §3–§5).

mod common;

use std::collections::HashMap;

use common::*;
use jiff::SignedDuration;
use revisit_scheduler::{
    Availability, GreatCircle, PartEta, Policy, ShiftDef, ShiftException, Snapshot, Technician,
    Travel, Unavailable, Visit, WorkCenter, check_day, check_shift_bounds, plan, search,
};

const MON: &str = "2026-11-30";
const TUE: &str = "2026-12-01";
const WED: &str = "2026-12-02";

fn now() -> jiff::Timestamp {
    at(MON, "06:00")
}

fn snap<'a>(
    wcs: &'a [WorkCenter],
    techs: &'a [Technician],
    visits: &'a HashMap<String, Vec<Visit>>,
) -> Snapshot<'a> {
    Snapshot {
        work_centers: wcs,
        technicians: techs,
        visits,
    }
}

fn gc() -> GreatCircle {
    GreatCircle::from_policy(&Policy::default())
}

#[test]
fn an_empty_calendar_offers_the_earliest_windows_in_chronological_order() {
    let wcs = [work_center("CHI-N", Policy::default())];
    let techs = [tech("ann", near(0.0, 0.0))];
    let v = HashMap::new();
    let out = search(&snap(&wcs, &techs, &v), &job(near(5.0, 0.0), 60), now());
    assert_eq!(out.status_msg, "");
    assert_eq!(out.offers.len(), 10);
    assert_eq!(out.offers[0].window, win(MON, "08:00", "12:00"));
    assert_eq!(out.offers[0].desc, "Mon 30 Nov, 08:00-12:00");
    assert_eq!(out.offers[0].id, "CHI-N:20261130T1400Z");
    assert_eq!(out.offers[0].tech, "ann");
    assert!(
        out.offers
            .windows(2)
            .all(|p| p[0].window.start < p[1].window.start)
    );
    // Cost = 2 x 5 km x 1.3 / 40 km/h (9.75 -> 10 min each way) + 5 per day.
    assert_eq!(out.offers[0].cost, 20.0);
    assert_eq!(out.offers[3].cost, 25.0);
    // 16:00-20:00 fits a shift ending at 18:00: arrive 16:00, finish 17:00, home 17:10.
    assert_eq!(out.offers[2].window, win(MON, "16:00", "20:00"));
}

#[test]
fn max_slots_keeps_the_cheapest_windows_then_sorts_them_by_time() {
    let policy = Policy {
        max_slots: 3,
        ..Policy::default()
    };
    let wcs = [work_center("CHI-N", policy)];
    // Ann, the original technician, is off Monday and Tuesday; Bob works every day.
    let mut ann = tech("ann", near(0.0, 0.0));
    ann.exceptions = vec![day_off(MON), day_off(TUE)];
    let techs = [tech("bob", near(0.0, 0.0)), ann];
    let v = HashMap::new();
    let mut j = job(near(5.0, 0.0), 60);
    j.preferred_tech = Some("ann".into());
    let out = search(&snap(&wcs, &techs, &v), &j, now());
    // Bob on Monday costs 20 + 30 (not the original) = 50; Ann on Wednesday 20 + 2 x 5 = 30.
    let got: Vec<_> = out
        .offers
        .iter()
        .map(|o| (o.desc.as_str(), o.tech.as_str(), o.cost))
        .collect();
    assert_eq!(
        got,
        vec![
            ("Wed 2 Dec, 08:00-12:00", "ann", 30.0),
            ("Wed 2 Dec, 12:00-16:00", "ann", 30.0),
            ("Wed 2 Dec, 16:00-20:00", "ann", 30.0),
        ]
    );
}

#[test]
fn a_shift_exception_with_times_replaces_the_weekly_pattern() {
    let policy = Policy {
        horizon_days: 1,
        ..Policy::default()
    };
    let wcs = [work_center("CHI-N", policy)];
    let mut ann = tech("ann", near(0.0, 0.0));
    ann.exceptions = vec![ShiftException {
        date: MON.into(),
        start: Some("13:00".into()),
        end: Some("15:00".into()),
    }];
    let techs = [ann];
    let v = HashMap::new();
    let out = search(&snap(&wcs, &techs, &v), &job(near(0.0, 0.0), 60), now());
    let descs: Vec<_> = out.offers.iter().map(|o| o.desc.as_str()).collect();
    assert_eq!(descs, vec!["Mon 30 Nov, 12:00-16:00"]);
    let p = plan(
        &snap(&wcs, &techs, &v),
        &job(near(0.0, 0.0), 60),
        win(MON, "12:00", "16:00"),
        now(),
    )
    .unwrap();
    assert_eq!(p.start, at(MON, "13:00"));
}

#[test]
fn only_active_technicians_with_every_skill_at_the_level_are_considered() {
    let wcs = [work_center("CHI-N", Policy::default())];
    let mut inactive = tech("zed", near(0.0, 0.0));
    inactive.skills = vec![skill("HVAC", 5), skill("GAS", 5)];
    inactive.active = false;
    let techs = [tech("ann", near(0.0, 0.0)), inactive];
    let v = HashMap::new();
    let mut j = job(near(1.0, 0.0), 60);
    j.skills = vec![skill("HVAC", 3), skill("GAS", 1)];
    let out = search(&snap(&wcs, &techs, &v), &j, now());
    assert!(out.offers.is_empty());
    assert_eq!(
        out.status_msg,
        "No active technician of work center CHI-N has the skills HVAC level 3, GAS level 1."
    );
    j.skills = vec![skill("HVAC", 2)];
    assert_eq!(
        search(&snap(&wcs, &techs, &v), &j, now()).offers[0].tech,
        "ann"
    );
}

#[test]
fn an_unknown_work_center_is_named_and_a_missing_one_is_the_nearest() {
    let mut south = work_center("CHI-S", Policy::default());
    south.lat = 41.70;
    let wcs = [work_center("CHI-N", Policy::default()), south];
    let mut bob = tech("bob", point(41.70, -87.70));
    bob.service_area_ids = vec!["CHI-S".into()];
    let techs = [tech("ann", near(0.0, 0.0)), bob];
    let v = HashMap::new();
    let mut j = job(point(41.72, -87.70), 60);
    j.service_area_id = Some("NYC".into());
    let out = search(&snap(&wcs, &techs, &v), &j, now());
    assert!(
        out.status_msg.starts_with("Unknown work center \"NYC\""),
        "{}",
        out.status_msg
    );
    j.service_area_id = None;
    let out = search(&snap(&wcs, &techs, &v), &j, now());
    assert!(
        out.offers
            .iter()
            .all(|o| o.id.starts_with("CHI-S:") && o.tech == "bob")
    );
    let out = search(&snap(&[], &techs, &v), &j, now());
    assert_eq!(out.status_msg, "No work center is set up for scheduling.");
}

#[test]
fn no_window_starts_before_the_minimum_lead_time() {
    let wcs = [work_center("CHI-N", Policy::default())];
    let techs = [tech("ann", near(0.0, 0.0))];
    let v = HashMap::new();
    let s = snap(&wcs, &techs, &v);
    let j = job(near(1.0, 0.0), 60);
    // 07:30 + 2 h = 09:30: the 08:00 window is gone, 12:00 is first.
    let out = search(&s, &j, at(MON, "07:30"));
    assert_eq!(out.offers[0].window, win(MON, "12:00", "16:00"));
    assert_eq!(out.status_msg, "");
    assert!(matches!(
        plan(&s, &j, win(MON, "08:00", "12:00"), at(MON, "07:30")),
        Err(Unavailable::TooEarly { .. })
    ));
    // Exactly the lead time is enough.
    assert_eq!(
        search(&s, &j, at(MON, "06:00")).offers[0].window,
        win(MON, "08:00", "12:00")
    );
}

#[test]
fn parts_push_the_first_slot_out_and_the_status_says_so() {
    let wcs = [work_center("CHI-N", Policy::default())];
    let techs = [tech("ann", near(0.0, 0.0))];
    let v = HashMap::new();
    let s = snap(&wcs, &techs, &v);
    let mut j = job(near(1.0, 0.0), 60);
    j.required_parts = vec![
        PartEta {
            estimated_delivery: Some(at(TUE, "09:00")),
        },
        PartEta {
            estimated_delivery: Some(at(WED, "10:00")),
        },
    ];
    let out = search(&s, &j, now());
    // Latest part Wed 10:00 + 2 h buffer = 12:00.
    assert_eq!(out.offers[0].window, win(WED, "12:00", "16:00"));
    assert_eq!(
        out.status_msg,
        "Parts expected Wed 2 Dec 10:00; first slot from Wed 2 Dec, 12:00-16:00."
    );
    assert!(matches!(
        plan(&s, &j, win(WED, "08:00", "12:00"), now()),
        Err(Unavailable::TooEarly { .. })
    ));
    assert!(plan(&s, &j, win(WED, "12:00", "16:00"), now()).is_ok());
}

#[test]
fn a_part_without_an_estimate_counts_as_delivered_after_the_default_lead_days() {
    let wcs = [work_center("CHI-N", Policy::default())];
    let techs = [tech("ann", near(0.0, 0.0))];
    let v = HashMap::new();
    let mut j = job(near(1.0, 0.0), 60);
    j.required_parts = vec![PartEta {
        estimated_delivery: None,
    }];
    // Mon 06:00 + 2 days + 2 h = Wed 08:00.
    let out = search(&snap(&wcs, &techs, &v), &j, now());
    assert_eq!(out.offers[0].window, win(WED, "08:00", "12:00"));
    assert!(
        out.status_msg
            .starts_with("Parts expected Wed 2 Dec 06:00;"),
        "{}",
        out.status_msg
    );
}

#[test]
fn parts_beyond_the_horizon_leave_nothing_and_the_status_says_when_they_come() {
    let wcs = [work_center("CHI-N", Policy::default())];
    let techs = [tech("ann", near(0.0, 0.0))];
    let v = HashMap::new();
    let mut j = job(near(1.0, 0.0), 60);
    j.required_parts = vec![PartEta {
        estimated_delivery: Some(at("2026-12-20", "09:00")),
    }];
    let out = search(&snap(&wcs, &techs, &v), &j, now());
    assert!(out.offers.is_empty());
    assert_eq!(
        out.status_msg,
        "Parts expected Sun 20 Dec 09:00; with the 120-minute handling buffer the first possible start \
         (Sun 20 Dec 11:00) is beyond the 14-day horizon."
    );
}

#[test]
fn the_visit_must_lie_inside_a_customer_available_period_and_outside_unavailable_ones() {
    let wcs = [work_center("CHI-N", Policy::default())];
    let techs = [tech("ann", near(0.0, 0.0))];
    let v = HashMap::new();
    let s = snap(&wcs, &techs, &v);
    let mut j = job(near(0.0, 0.0), 60);
    j.customer = vec![
        Availability {
            available: true,
            start: at(TUE, "09:00"),
            end: at(TUE, "13:30"),
        },
        Availability {
            available: false,
            start: at(TUE, "08:00"),
            end: at(TUE, "10:15"),
        },
    ];
    let out = search(&s, &j, now());
    let descs: Vec<_> = out.offers.iter().map(|o| o.desc.as_str()).collect();
    // 08:00-12:00: arrive 10:15 (after the 1003), done 11:15 inside 09:00-13:30.
    // 12:00-16:00: arrive 12:00, done 13:00. Nothing fits after 12:30.
    assert_eq!(
        descs,
        vec!["Tue 1 Dec, 08:00-12:00", "Tue 1 Dec, 12:00-16:00"]
    );
    let p = plan(&s, &j, win(TUE, "08:00", "12:00"), now()).unwrap();
    assert_eq!((p.start, p.end), (at(TUE, "10:15"), at(TUE, "11:15")));
    assert_eq!(
        plan(&s, &j, win(TUE, "16:00", "20:00"), now()),
        Err(Unavailable::Customer)
    );

    j.customer = vec![Availability {
        available: true,
        start: at(TUE, "09:00"),
        end: at(TUE, "09:30"),
    }];
    let out = search(&s, &j, now());
    assert_eq!(
        out.status_msg,
        "The customer's availability excludes every arrival window in the next 14 days."
    );
}

#[test]
fn existing_visits_are_pushed_later_within_their_windows_and_reported() {
    let policy = Policy {
        horizon_days: 1,
        ..Policy::default()
    };
    let wcs = [work_center("CHI-N", policy)];
    // Home is east; A is at P (where the new job is), B at Q 10 km north of P... and near home.
    let (p_loc, q_loc, home) = (near(0.0, 0.0), near(10.0, 20.0), near(10.0, 21.0));
    let techs = [tech("ann", home)];
    let a = visit(
        "A",
        at(MON, "09:00"),
        175,
        p_loc,
        win(MON, "09:00", "09:00"),
    ); // until 11:55
    let b = visit("B", at(MON, "12:30"), 60, q_loc, win(MON, "12:00", "16:00"));
    let v = visits(vec![("ann", vec![a.clone(), b.clone()])]);
    let s = snap(&wcs, &techs, &v);
    let j = job(p_loc, 60);
    let travel = GreatCircle::from_policy(&Policy::default());
    let pq = travel.minutes(p_loc, q_loc) as i64;

    let p = plan(&s, &j, win(MON, "12:00", "16:00"), now()).unwrap();
    // Between A and B costs no extra travel; B moves from 12:30 to 13:00 + travel.
    assert_eq!((p.start, p.end), (at(MON, "12:00"), at(MON, "13:00")));
    let b_start = at(MON, "13:00") + SignedDuration::from_mins(pq);
    assert_eq!(p.shifted.len(), 1);
    assert_eq!(p.shifted[0].order_num, "B");
    assert_eq!(
        (p.shifted[0].start, p.shifted[0].end),
        (b_start, b_start + SignedDuration::from_mins(60))
    );
    assert_eq!(p.cost, 0.0);

    // Applying the placement keeps every invariant.
    let mut day = vec![
        a.clone(),
        visit("NEW", p.start, 60, p_loc, win(MON, "12:00", "16:00")),
        b.clone(),
    ];
    day[2].start = p.shifted[0].start;
    day[2].end = p.shifted[0].end;
    check_day(&techs[0], &chicago(), &day, &travel).unwrap();
    check_shift_bounds(&techs[0], &chicago(), &day, &travel).unwrap();

    // If B was promised 12:00-12:30 it cannot move: the new visit goes after it instead.
    let b_tight = visit("B", at(MON, "12:30"), 60, q_loc, win(MON, "12:00", "12:30"));
    let v = visits(vec![("ann", vec![a.clone(), b_tight])]);
    let p = plan(
        &snap(&wcs, &techs, &v),
        &j,
        win(MON, "12:00", "16:00"),
        now(),
    )
    .unwrap();
    assert!(p.shifted.is_empty());
    assert_eq!(p.start, at(MON, "13:30") + SignedDuration::from_mins(pq));
    assert!(p.cost > 0.0);
}

#[test]
fn a_booking_never_pushes_a_visit_into_the_technicians_break() {
    let policy = Policy {
        horizon_days: 1,
        ..Policy::default()
    };
    let wcs = [work_center("CHI-N", policy)];
    // Ann works 08:00-12:00 and 13:00-17:00: lunch is a break, not working time.
    let mut ann = tech("ann", near(0.0, 0.0));
    ann.shifts = vec![
        ShiftDef {
            days: days(&WEEKDAYS),
            start: "08:00".into(),
            end: "12:00".into(),
        },
        ShiftDef {
            days: days(&WEEKDAYS),
            start: "13:00".into(),
            end: "17:00".into(),
        },
    ];
    let techs = [ann];
    // V (10:30-11:30, promised 08:00-12:00) is 7 minutes' drive from the new job.
    let (job_loc, v_loc) = (near(0.0, 0.0), near(3.5, 0.0));
    assert_eq!(gc().minutes(job_loc, v_loc), 7);
    let v_visit = visit("V", at(MON, "10:30"), 60, v_loc, win(MON, "08:00", "12:00"));
    let v = visits(vec![("ann", vec![v_visit.clone()])]);
    let s = snap(&wcs, &techs, &v);
    // The customer is there 10:00-11:10: a one-hour visit must start by 10:10.
    let mut j = job(job_loc, 60);
    j.customer = vec![Availability {
        available: true,
        start: at(MON, "10:00"),
        end: at(MON, "11:10"),
    }];
    // Before V it ends at 11:00 and V would move to 11:07-12:07, into the break; after V it
    // would start at 11:37. Neither keeps the rules, so the window is full.
    let placed = plan(&s, &j, win(MON, "08:00", "12:00"), now());
    if let Ok(p) = &placed {
        let mut day = vec![
            visit("NEW", p.start, 60, job_loc, win(MON, "08:00", "12:00")),
            v_visit.clone(),
        ];
        for sh in &p.shifted {
            day[1].start = sh.start;
            day[1].end = sh.end;
        }
        let bounds = check_shift_bounds(&techs[0], &chicago(), &day, &gc());
        panic!("planned {p:?}; shift bounds: {bounds:?}");
    }
    assert_eq!(placed, Err(Unavailable::Booked));
    let out = search(&s, &j, now());
    assert!(
        out.offers
            .iter()
            .all(|o| o.window != win(MON, "08:00", "12:00")),
        "{out:?}"
    );

    // A 30-minute V moves to 11:07-11:37 and stays inside the morning block: that is allowed.
    let short = visit("V", at(MON, "10:30"), 30, v_loc, win(MON, "08:00", "12:00"));
    let v = visits(vec![("ann", vec![short])]);
    let p = plan(
        &snap(&wcs, &techs, &v),
        &j,
        win(MON, "08:00", "12:00"),
        now(),
    )
    .unwrap();
    assert_eq!((p.start, p.end), (at(MON, "10:00"), at(MON, "11:00")));
    assert_eq!(p.shifted.len(), 1);
    assert_eq!(
        (p.shifted[0].start, p.shifted[0].end),
        (at(MON, "11:07"), at(MON, "11:37"))
    );
}

#[test]
fn a_fully_booked_day_and_a_day_off_give_different_reasons() {
    let policy = Policy {
        horizon_days: 1,
        ..Policy::default()
    };
    let wcs = [work_center("CHI-N", policy)];
    let home = near(0.0, 0.0);
    let techs = [tech("ann", home)];
    // Three pinned visits at home filling 08:00-18:00.
    let full = vec![
        visit("A", at(MON, "08:00"), 240, home, win(MON, "08:00", "08:00")),
        visit("B", at(MON, "12:00"), 240, home, win(MON, "12:00", "12:00")),
        visit("C", at(MON, "16:00"), 120, home, win(MON, "16:00", "16:00")),
    ];
    check_day(&techs[0], &chicago(), &full, &gc()).unwrap();
    let v = visits(vec![("ann", full)]);
    let mut j = job(near(1.0, 0.0), 30);
    j.skills = vec![skill("HVAC", 2)];
    let out = search(&snap(&wcs, &techs, &v), &j, now());
    assert_eq!(
        out.status_msg,
        "Every arrival window in the next 1 days is fully booked for the technicians of CHI-N with the skills HVAC level 2."
    );
    assert_eq!(
        plan(
            &snap(&wcs, &techs, &v),
            &j,
            win(MON, "08:00", "12:00"),
            now()
        ),
        Err(Unavailable::Booked)
    );

    let mut off = techs[0].clone();
    off.exceptions = vec![day_off(MON)];
    let techs = [off];
    let out = search(&snap(&wcs, &techs, &HashMap::new()), &j, now());
    assert!(
        out.status_msg
            .starts_with("No technician of CHI-N with the skills HVAC level 2 is on shift"),
        "{}",
        out.status_msg
    );
}

#[test]
fn a_window_the_policy_does_not_offer_cannot_be_planned() {
    let wcs = [work_center("CHI-N", Policy::default())];
    let techs = [tech("ann", near(0.0, 0.0))];
    let v = HashMap::new();
    let s = snap(&wcs, &techs, &v);
    let j = job(near(1.0, 0.0), 60);
    assert_eq!(
        plan(&s, &j, win(MON, "09:00", "12:00"), now()),
        Err(Unavailable::NotOffered)
    );
    // Saturday has no windows; beyond the horizon neither.
    assert_eq!(
        plan(&s, &j, win("2026-12-05", "08:00", "12:00"), now()),
        Err(Unavailable::NotOffered)
    );
    assert_eq!(
        plan(&s, &j, win("2026-12-16", "08:00", "12:00"), now()),
        Err(Unavailable::NotOffered)
    );
    assert!(plan(&s, &j, win("2026-12-11", "08:00", "12:00"), now()).is_ok());
}

#[test]
fn the_search_and_the_shifts_follow_the_spring_change() {
    let policy = Policy {
        windows: vec![window_def(&ALL_DAYS, "08:00", "12:00")],
        horizon_days: 3,
        ..Policy::default()
    };
    let wcs = [work_center("CHI-N", policy)];
    let mut ann = tech("ann", near(0.0, 0.0));
    ann.shifts[0].days = days(&ALL_DAYS);
    let techs = [ann];
    let v = HashMap::new();
    let s = snap(&wcs, &techs, &v);
    let j = job(near(0.0, 0.0), 60); // at home: no travel
    let now = at("2026-03-07", "05:00");
    let out = search(&s, &j, now);
    let starts: Vec<_> = out.offers.iter().map(|o| o.window.start).collect();
    assert_eq!(
        starts,
        vec![
            utc("2026-03-07T14:00:00Z"),
            utc("2026-03-08T13:00:00Z"),
            utc("2026-03-09T13:00:00Z")
        ]
    );
    for o in &out.offers {
        // Shift start 08:00 local is the same instant as the window start on every date.
        assert_eq!(plan(&s, &j, o.window, now).unwrap().start, o.window.start);
    }
    assert_eq!(out.offers[1].desc, "Sun 8 Mar, 08:00-12:00");
}

#[test]
fn the_search_follows_the_autumn_change() {
    let policy = Policy {
        windows: vec![window_def(&ALL_DAYS, "08:00", "12:00")],
        horizon_days: 3,
        ..Policy::default()
    };
    let wcs = [work_center("CHI-N", policy)];
    let mut ann = tech("ann", near(0.0, 0.0));
    ann.shifts[0].days = days(&ALL_DAYS);
    let techs = [ann];
    let v = HashMap::new();
    let out = search(
        &snap(&wcs, &techs, &v),
        &job(near(0.0, 0.0), 60),
        at("2026-10-31", "05:00"),
    );
    let starts: Vec<_> = out.offers.iter().map(|o| o.window.start).collect();
    assert_eq!(
        starts,
        vec![
            utc("2026-10-31T13:00:00Z"),
            utc("2026-11-01T14:00:00Z"),
            utc("2026-11-02T14:00:00Z")
        ]
    );
}

#[test]
fn check_day_reports_each_broken_invariant() {
    let home = near(0.0, 0.0);
    let t = tech("ann", home);
    let far = near(20.0, 0.0); // 20 km: 39 min
    let ok = vec![
        visit("A", at(MON, "09:00"), 60, home, win(MON, "08:00", "12:00")),
        visit("B", at(MON, "10:40"), 60, far, win(MON, "08:00", "12:00")),
    ];
    check_day(&t, &chicago(), &ok, &gc()).unwrap();
    let mut tight = ok.clone();
    tight[1].start = at(MON, "10:20");
    assert!(
        check_day(&t, &chicago(), &tight, &gc())
            .unwrap_err()
            .contains("travel needs")
    );
    let mut overlap = ok.clone();
    overlap[1].start = at(MON, "09:30");
    assert!(
        check_day(&t, &chicago(), &overlap, &gc())
            .unwrap_err()
            .contains("overlap")
    );
    let mut late = ok.clone();
    late[1].window = win(MON, "08:00", "10:00");
    assert!(
        check_day(&t, &chicago(), &late, &gc())
            .unwrap_err()
            .contains("outside its promised window")
    );
    let unsorted = vec![ok[1].clone(), ok[0].clone()];
    assert!(
        check_day(&t, &chicago(), &unsorted, &gc())
            .unwrap_err()
            .contains("not sorted")
    );
    // Shift bounds: 08:00 start at home is fine, a visit at 07:30 is not; Saturday is not a workday.
    check_shift_bounds(&t, &chicago(), &ok, &gc()).unwrap();
    let early = vec![visit(
        "E",
        at(MON, "07:30"),
        30,
        home,
        win(MON, "07:00", "08:00"),
    )];
    assert!(check_shift_bounds(&t, &chicago(), &early, &gc()).is_err());
    let sat = vec![visit(
        "S",
        at("2026-12-05", "09:00"),
        30,
        home,
        win("2026-12-05", "08:00", "12:00"),
    )];
    assert!(check_shift_bounds(&t, &chicago(), &sat, &gc()).is_err());
}

#[test]
fn visits_without_a_location_count_as_at_home_and_unsorted_input_is_sorted() {
    let policy = Policy {
        horizon_days: 1,
        ..Policy::default()
    };
    let wcs = [work_center("CHI-N", policy)];
    let home = near(0.0, 0.0);
    let techs = [tech("ann", home)];
    let mut b = visit("B", at(MON, "12:00"), 240, home, win(MON, "12:00", "12:00"));
    b.location = None;
    let a = visit("A", at(MON, "08:00"), 240, home, win(MON, "08:00", "08:00"));
    let v = visits(vec![("ann", vec![b, a])]);
    let out = search(&snap(&wcs, &techs, &v), &job(home, 60), now());
    // Only an arrival at 16:00 is left (a window's end is still inside it), after B, at home.
    let descs: Vec<_> = out.offers.iter().map(|o| o.desc.as_str()).collect();
    assert_eq!(
        descs,
        vec!["Mon 30 Nov, 12:00-16:00", "Mon 30 Nov, 16:00-20:00"]
    );
    assert!(out.offers.iter().all(|o| o.cost == 0.0));
    let p = plan(
        &snap(&wcs, &techs, &v),
        &job(home, 60),
        win(MON, "12:00", "16:00"),
        now(),
    )
    .unwrap();
    assert_eq!(p.start, at(MON, "16:00"));
}
