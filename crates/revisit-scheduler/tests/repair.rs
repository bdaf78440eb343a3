//! Bounded repair (`REOPTIMISE.md`): a full window is offered and booked when moving one or two
//! booked visits to other technicians makes room.

mod common;

use std::collections::HashMap;

use common::*;
use revisit_scheduler::{
    GreatCircle, Job, Policy, Repaired, Snapshot, Technician, Unavailable, Visit, VisitFacts,
    WorkCenter, check_day, check_shift_bounds, plan, plan_with_repair, search, search_with_repair,
};

const MON: &str = "2026-11-30";

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

fn one_day() -> Vec<WorkCenter> {
    vec![work_center(
        "CHI-N",
        Policy {
            horizon_days: 1,
            ..Policy::default()
        },
    )]
}

/// A 230-minute visit that must start 08:00-08:30: it fills its technician's morning.
fn long_visit(order: &str, loc: revisit_scheduler::GeoPoint) -> Visit {
    visit(
        order,
        at(MON, "08:10"),
        230,
        loc,
        win(MON, "08:00", "08:30"),
    )
}

/// The job needs GAS, which only Gus has.
fn gas_job() -> Job {
    let mut j = job(near(0.0, -1.0), 60);
    j.skills = vec![skill("GAS", 1)];
    j
}

fn facts(orders: &[&str]) -> HashMap<String, VisitFacts> {
    orders
        .iter()
        .map(|o| {
            (
                o.to_string(),
                VisitFacts {
                    skills: vec![skill("HVAC", 1)],
                    ..VisitFacts::default()
                },
            )
        })
        .collect()
}

/// Applies a repaired booking to the calendars and checks every technician's day.
fn apply_and_check(
    techs: &[Technician],
    v: &HashMap<String, Vec<Visit>>,
    job: &Job,
    r: &Repaired,
    window: revisit_scheduler::Window,
) -> HashMap<String, Vec<Visit>> {
    let mut out = v.clone();
    for m in &r.moved {
        let from = out.get_mut(&m.from_tech).unwrap();
        let k = from
            .iter()
            .position(|x| x.order_num == m.order_num)
            .unwrap();
        let mut x = from.remove(k);
        assert!(
            x.window.start <= m.start && m.start <= x.window.end,
            "{m:?}"
        );
        x.start = m.start;
        x.end = m.end;
        out.entry(m.to_tech.clone()).or_default().push(x);
    }
    let list = out.entry(r.placement.tech.clone()).or_default();
    for s in &r.placement.shifted {
        let x = list
            .iter_mut()
            .find(|x| x.order_num == s.order_num)
            .unwrap();
        x.start = s.start;
        x.end = s.end;
    }
    list.push(visit(
        "NEW",
        r.placement.start,
        i64::from(job.duration_minutes),
        job.location,
        window,
    ));
    let travel = GreatCircle::from_policy(&Policy::default());
    for t in techs {
        let list = out.entry(t.user_name.clone()).or_default();
        list.sort_by_key(|x| x.start);
        check_day(t, &chicago(), list, &travel).unwrap();
        check_shift_bounds(t, &chicago(), list, &travel).unwrap();
    }
    out
}

#[test]
fn a_full_window_is_booked_by_moving_one_visit_to_another_technician() {
    let wcs = one_day();
    let mut gus = tech("gus", near(0.0, 0.0));
    gus.skills.push(skill("GAS", 1));
    let techs = vec![gus, tech("pia", near(0.0, 5.0))];
    // Gus's morning is taken by V1, which Pia (5 km away, free) could do as well.
    let v = visits(vec![("gus", vec![long_visit("V1", near(0.0, 5.0))])]);
    let s = snap(&wcs, &techs, &v);
    let job = gas_job();
    let morning = win(MON, "08:00", "12:00");
    assert_eq!(plan(&s, &job, morning, now()), Err(Unavailable::Booked));
    assert!(
        search(&s, &job, now())
            .offers
            .iter()
            .all(|o| o.window != morning)
    );

    let f = facts(&["V1"]);
    let out = search_with_repair(&s, &job, now(), None, &f);
    let offer = out.offers.iter().find(|o| o.window == morning).unwrap();
    assert!(offer.repair);
    assert_eq!(offer.tech, "gus");
    // Plain offers (the afternoon) are not repairs.
    assert!(
        out.offers
            .iter()
            .filter(|o| o.window != morning)
            .all(|o| !o.repair)
    );

    let r = plan_with_repair(&s, &job, morning, now(), None, &f).unwrap();
    assert_eq!(r.placement.tech, "gus");
    assert_eq!(r.placement.cost, offer.cost);
    assert_eq!(r.moved.len(), 1);
    assert_eq!(
        (
            r.moved[0].order_num.as_str(),
            r.moved[0].from_tech.as_str(),
            r.moved[0].to_tech.as_str()
        ),
        ("V1", "gus", "pia")
    );
    // Pia leaves home at 08:00 and V1 is next door.
    assert_eq!(r.moved[0].start, at(MON, "08:00"));
    apply_and_check(&techs, &v, &job, &r, morning);

    // A plain window books as plain `plan` does, with nothing moved.
    let afternoon = win(MON, "12:00", "16:00");
    let r = plan_with_repair(&s, &job, afternoon, now(), None, &f).unwrap();
    assert!(r.moved.is_empty());
    assert_eq!(r.placement, plan(&s, &job, afternoon, now()).unwrap());
}

#[test]
fn pinned_started_frozen_and_unknown_visits_are_never_moved_by_a_repair() {
    let wcs = one_day();
    let mut gus = tech("gus", near(0.0, 0.0));
    gus.skills.push(skill("GAS", 1));
    let techs = vec![gus, tech("pia", near(0.0, 5.0))];
    let v = visits(vec![("gus", vec![long_visit("V1", near(0.0, 5.0))])]);
    let s = snap(&wcs, &techs, &v);
    let job = gas_job();
    let morning = win(MON, "08:00", "12:00");
    let booked = Err(Unavailable::Booked);

    // No facts: it stays.
    let none: HashMap<String, VisitFacts> = HashMap::new();
    assert_eq!(
        plan_with_repair(&s, &job, morning, now(), None, &none),
        booked
    );
    for change in [
        |f: &mut VisitFacts| f.pinned = true,
        |f: &mut VisitFacts| f.started = true,
        // Pia lacks GAS: a visit needing it cannot go to her.
        |f: &mut VisitFacts| f.skills = vec![skill("GAS", 1)],
    ] {
        let mut f = facts(&["V1"]);
        change(f.get_mut("V1").unwrap());
        assert_eq!(plan_with_repair(&s, &job, morning, now(), None, &f), booked);
        let out = search_with_repair(&s, &job, now(), None, &f);
        assert!(out.offers.iter().all(|o| o.window != morning));
    }
    // Inside the freeze horizon (180 minutes from 06:00 covers 08:10): it stays.
    let f = facts(&["V1"]);
    let mut wcs = wcs.clone();
    wcs[0].policy.freeze_minutes = 180;
    let s = snap(&wcs, &techs, &v);
    assert_eq!(plan_with_repair(&s, &job, morning, now(), None, &f), booked);
}

#[test]
fn a_chain_of_two_moves_makes_room_when_one_is_not_enough() {
    let wcs = one_day();
    let mut gus = tech("gus", near(0.0, 0.0));
    gus.skills.push(skill("GAS", 1));
    // Pia could take V1 but her morning is taken by V2; Sam could take V2 but not reach V1 by
    // 08:30 (20 km, 39 minutes).
    let techs = vec![
        gus,
        tech("pia", near(0.0, 5.0)),
        tech("sam", near(0.0, 25.0)),
    ];
    let v = visits(vec![
        ("gus", vec![long_visit("V1", near(0.0, 5.0))]),
        ("pia", vec![long_visit("V2", near(0.0, 15.0))]),
    ]);
    let s = snap(&wcs, &techs, &v);
    let job = gas_job();
    let morning = win(MON, "08:00", "12:00");
    let f = facts(&["V1", "V2"]);
    let r = plan_with_repair(&s, &job, morning, now(), None, &f).unwrap();
    assert_eq!(r.placement.tech, "gus");
    let mut moves: Vec<(&str, &str, &str)> = r
        .moved
        .iter()
        .map(|m| {
            (
                m.order_num.as_str(),
                m.from_tech.as_str(),
                m.to_tech.as_str(),
            )
        })
        .collect();
    moves.sort();
    assert_eq!(moves, vec![("V1", "gus", "pia"), ("V2", "pia", "sam")]);
    apply_and_check(&techs, &v, &job, &r, morning);
    let out = search_with_repair(&s, &job, now(), None, &f);
    let offer = out.offers.iter().find(|o| o.window == morning).unwrap();
    assert!(offer.repair && offer.cost == r.placement.cost);
}

#[test]
fn the_repair_keeps_the_customers_availability() {
    let wcs = one_day();
    let mut gus = tech("gus", near(0.0, 0.0));
    gus.skills.push(skill("GAS", 1));
    let techs = vec![gus, tech("pia", near(0.0, 5.0))];
    let v = visits(vec![("gus", vec![long_visit("V1", near(0.0, 5.0))])]);
    let s = snap(&wcs, &techs, &v);
    let mut job = gas_job();
    job.customer = vec![
        revisit_scheduler::Availability {
            available: true,
            start: at(MON, "09:00"),
            end: at(MON, "11:00"),
        },
        revisit_scheduler::Availability {
            available: false,
            start: at(MON, "09:30"),
            end: at(MON, "09:45"),
        },
    ];
    let morning = win(MON, "08:00", "12:00");
    let r = plan_with_repair(&s, &job, morning, now(), None, &facts(&["V1"])).unwrap();
    // Not before 09:00, and not overlapping 09:30-09:45: from 09:45, done by 11:00.
    assert_eq!(r.placement.start, at(MON, "09:45"));
    assert_eq!(r.placement.end, at(MON, "10:45"));
}
