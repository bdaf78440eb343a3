//! Re-optimisation on hand-made days (`REOPTIMISE.md`).

mod common;

use std::collections::HashMap;

use common::*;
use jiff::Timestamp;
use revisit_scheduler::{
    BookedVisit, Budget, GreatCircle, Policy, Reoptimize, Reoptimized, ShiftDef, Technician, Visit,
    VisitFacts, WorkCenter, check_day, check_shift_bounds, reoptimize,
};

const MON: &str = "2026-11-30";

fn booked(tech: &str, v: Visit) -> BookedVisit {
    BookedVisit {
        tech: tech.into(),
        visit: v,
        facts: VisitFacts::default(),
    }
}

fn run(
    wc: &WorkCenter,
    techs: &[Technician],
    visits: &[BookedVisit],
    now: Timestamp,
    seed: u64,
) -> Reoptimized {
    reoptimize(&Reoptimize {
        work_center: wc,
        technicians: techs,
        visits,
        now,
        travel: None,
        seed,
        budget: Budget::iterations(2_000),
    })
    .unwrap()
}

/// Technician -> visits after re-optimisation (windows and locations from the input).
fn days_after(out: &Reoptimized, input: &[BookedVisit]) -> HashMap<String, Vec<Visit>> {
    let by_order: HashMap<&str, &Visit> = input
        .iter()
        .map(|b| (b.visit.order_num.as_str(), &b.visit))
        .collect();
    let mut after: HashMap<String, Vec<Visit>> = HashMap::new();
    for day in &out.days {
        for s in &day.visits {
            let v = by_order[s.order_num.as_str()];
            after.entry(day.tech.clone()).or_default().push(Visit {
                start: s.start,
                end: s.end,
                ..v.clone()
            });
        }
    }
    for list in after.values_mut() {
        list.sort_by_key(|v| v.start);
    }
    after
}

fn tech_of(out: &Reoptimized, order: &str) -> String {
    out.days
        .iter()
        .find(|d| d.visits.iter().any(|s| s.order_num == order))
        .map(|d| d.tech.clone())
        .unwrap()
}

fn check_all(techs: &[Technician], after: &HashMap<String, Vec<Visit>>) {
    let travel = GreatCircle::from_policy(&Policy::default());
    for t in techs {
        let list = after.get(&t.user_name).map_or(&[][..], |v| v.as_slice());
        check_day(t, &chicago(), list, &travel).unwrap();
        check_shift_bounds(t, &chicago(), list, &travel).unwrap();
    }
}

/// West lives 15 km west, East 15 km east; two visits near each home, booked crosswise.
fn crosswise() -> (WorkCenter, Vec<Technician>, Vec<BookedVisit>) {
    let wc = work_center("CHI-N", Policy::default());
    let techs = vec![
        tech("west", near(0.0, -15.0)),
        tech("east", near(0.0, 15.0)),
    ];
    let w = win(MON, "08:00", "12:00");
    let a = win(MON, "12:00", "16:00");
    let visits = vec![
        booked(
            "east",
            visit("W1", at(MON, "09:00"), 60, near(1.0, -14.0), w),
        ),
        booked(
            "east",
            visit("W2", at(MON, "13:00"), 60, near(-1.0, -14.0), a),
        ),
        booked(
            "west",
            visit("E1", at(MON, "09:00"), 60, near(1.0, 14.0), w),
        ),
        booked(
            "west",
            visit("E2", at(MON, "13:00"), 60, near(-1.0, 14.0), a),
        ),
    ];
    (wc, techs, visits)
}

#[test]
fn each_visit_goes_to_the_nearer_technician_and_every_move_is_reported() {
    let (wc, techs, visits) = crosswise();
    let out = run(&wc, &techs, &visits, at(MON, "05:00"), 1);
    assert_eq!(tech_of(&out, "W1"), "west");
    assert_eq!(tech_of(&out, "W2"), "west");
    assert_eq!(tech_of(&out, "E1"), "east");
    assert_eq!(tech_of(&out, "E2"), "east");
    assert!(
        out.travel_after_minutes < out.travel_before_minutes / 3,
        "{out:?}"
    );
    assert_eq!(
        out.travel_saved_minutes(),
        out.travel_before_minutes - out.travel_after_minutes
    );
    assert_eq!(out.moves.len(), 4);
    let w1 = out.moves.iter().find(|m| m.order_num == "W1").unwrap();
    assert_eq!(
        (w1.from_tech.as_str(), w1.to_tech.as_str()),
        ("east", "west")
    );
    assert_eq!(w1.from_start, at(MON, "09:00"));
    // Every visit keeps its window; the new days keep every rule.
    let after = days_after(&out, &visits);
    for v in after.values().flatten() {
        assert!(v.window.start <= v.start && v.start <= v.window.end);
    }
    check_all(&techs, &after);
    assert!(out.days.iter().all(|d| d.changed));
    assert!(out.untouched.is_empty());
}

#[test]
fn started_pinned_and_frozen_visits_keep_their_technician_and_time() {
    let (wc, techs, mut visits) = crosswise();
    visits[0].facts.started = true; // W1
    visits[2].facts.pinned = true; // E1
    // Now 07:30: the freeze horizon (120 min) covers anything starting before 09:30: W1, E1.
    let out = run(&wc, &techs, &visits, at(MON, "07:30"), 1);
    assert_eq!(tech_of(&out, "W1"), "east");
    assert_eq!(tech_of(&out, "E1"), "west");
    assert!(
        out.moves
            .iter()
            .all(|m| m.order_num != "W1" && m.order_num != "E1")
    );
    // The afternoon visits still move home.
    assert_eq!(tech_of(&out, "W2"), "west");
    assert_eq!(tech_of(&out, "E2"), "east");
    let after = days_after(&out, &visits);
    check_all(&techs, &after);
    for v in after.values().flatten() {
        if v.order_num == "W1" || v.order_num == "E1" {
            assert_eq!(v.start, at(MON, "09:00"));
        }
    }

    // Frozen by time alone: at 12:00 every visit starting before 14:00 stays.
    let (_, _, visits) = crosswise();
    let out = run(&wc, &techs, &visits, at(MON, "12:00"), 1);
    assert!(out.moves.is_empty(), "{:?}", out.moves);
    assert_eq!(out.travel_saved_minutes(), 0);
}

#[test]
fn no_visit_moves_to_start_before_the_freeze_horizon() {
    let wc = work_center("CHI-N", Policy::default());
    let techs = vec![
        tech("west", near(0.0, -15.0)),
        tech("east", near(0.0, 15.0)),
    ];
    // Booked with East at 11:00 (window 08:00-12:00); West could be there at 08:30, but at
    // 08:00 the horizon runs to 10:00.
    let visits = vec![booked(
        "east",
        visit(
            "W1",
            at(MON, "11:00"),
            60,
            near(0.0, -14.0),
            win(MON, "08:00", "12:00"),
        ),
    )];
    let out = run(&wc, &techs, &visits, at(MON, "08:00"), 1);
    let m = &out.moves[0];
    assert_eq!(m.to_tech, "west");
    assert!(m.to_start >= at(MON, "10:00"), "{m:?}");
}

#[test]
fn a_visit_only_goes_to_a_technician_with_its_skills() {
    let (wc, mut techs, mut visits) = crosswise();
    techs[0].skills = vec![skill("HVAC", 1)]; // West: level 1 only
    visits[0].facts.skills = vec![skill("HVAC", 2)]; // W1 needs level 2
    let out = run(&wc, &techs, &visits, at(MON, "05:00"), 1);
    assert_eq!(tech_of(&out, "W1"), "east");
    // East drives west for W1 anyway, so W2 may as well stay; the east side goes to East.
    assert_eq!(tech_of(&out, "E1"), "east");
    assert_eq!(tech_of(&out, "E2"), "east");
    check_all(&techs, &days_after(&out, &visits));
}

#[test]
fn moving_away_from_the_technician_the_customer_was_told_costs_the_policy_penalty() {
    // Two technicians 4 km apart; the visit, told to Ann, is next to Bob's home.
    let mut policy = Policy::default();
    let techs = vec![tech("ann", near(0.0, 0.0)), tech("bob", near(0.0, 4.0))];
    let mut v = booked(
        "ann",
        visit(
            "V",
            at(MON, "10:00"),
            60,
            near(0.0, 4.1),
            win(MON, "08:00", "12:00"),
        ),
    );
    v.facts.told_tech = Some("ann".into());
    let visits = vec![v];
    // Moving saves ~16 minutes of travel, less than the 30-minute penalty: it stays.
    let out = run(
        &work_center("CHI-N", policy.clone()),
        &techs,
        &visits,
        at(MON, "05:00"),
        1,
    );
    assert!(out.moves.is_empty(), "{:?}", out.moves);
    assert_eq!(out.penalty_before_minutes, 0.0);
    // Without a penalty it moves, and the penalty shows in the result.
    policy.non_original_penalty_minutes = 5.0;
    let out = run(
        &work_center("CHI-N", policy),
        &techs,
        &visits,
        at(MON, "05:00"),
        1,
    );
    assert_eq!(tech_of(&out, "V"), "bob");
    assert_eq!(out.penalty_after_minutes, 5.0);
    assert!(out.cost_after_minutes() < out.cost_before_minutes());
}

#[test]
fn a_visit_is_never_moved_into_a_technicians_break() {
    let wc = work_center("CHI-N", Policy::default());
    // Near works 08:00-12:00 and 13:00-18:00 and lives next to V; Far works 08:00-18:00.
    let mut near_tech = tech("near", near(0.0, 0.0));
    near_tech.shifts = vec![
        ShiftDef {
            days: days(&WEEKDAYS),
            start: "08:00".into(),
            end: "12:00".into(),
        },
        ShiftDef {
            days: days(&WEEKDAYS),
            start: "13:00".into(),
            end: "18:00".into(),
        },
    ];
    let techs = vec![near_tech, tech("far", near(0.0, 20.0))];
    // V must start 11:30-12:55 and lasts an hour: Near can only do it in the break.
    let visits = vec![booked(
        "far",
        visit(
            "V",
            at(MON, "11:30"),
            60,
            near(0.5, 0.0),
            win(MON, "11:30", "12:55"),
        ),
    )];
    let out = run(&wc, &techs, &visits, at(MON, "05:00"), 1);
    assert!(out.moves.is_empty(), "{:?}", out.moves);
    // With the window open until 13:10, Near takes it after the break.
    let mut visits = visits;
    visits[0].visit.window = win(MON, "11:30", "13:10");
    let out = run(&wc, &techs, &visits, at(MON, "05:00"), 1);
    assert_eq!(tech_of(&out, "V"), "near");
    let m = &out.moves[0];
    assert!(m.to_start >= at(MON, "13:00"), "{m:?}");
    check_all(&techs, &days_after(&out, &visits));
}

#[test]
fn a_day_that_already_breaks_a_rule_is_left_as_booked_and_reported() {
    let (wc, techs, mut visits) = crosswise();
    // W1 (East's) was put outside its window by hand, a window no shift can reach: East's day
    // is left alone. (A visit outside a window it can still reach is simply re-timed.)
    visits[0].visit.window = win(MON, "06:00", "07:00");
    let out = run(&wc, &techs, &visits, at(MON, "05:00"), 1);
    assert_eq!(out.untouched.len(), 1);
    assert_eq!(out.untouched[0].tech, "east");
    assert!(
        out.untouched[0].reason.starts_with("W1"),
        "{}",
        out.untouched[0].reason
    );
    assert_eq!(tech_of(&out, "W1"), "east");
    assert_eq!(tech_of(&out, "W2"), "east");
    // Nothing moves onto East's day either.
    assert_eq!(tech_of(&out, "E1"), "west");

    // A visit of a technician who is not part of the work center stays too.
    let (wc, techs, mut visits) = crosswise();
    visits[0].tech = "zed".into();
    let out = run(&wc, &techs, &visits, at(MON, "05:00"), 1);
    assert!(out.untouched.iter().any(|u| u.tech == "zed"));
    assert!(out.moves.iter().all(|m| m.order_num != "W1"));
}

#[test]
fn the_same_seed_gives_the_same_plan_and_an_optimal_plan_is_left_alone() {
    let (wc, techs, visits) = crosswise();
    let a = run(&wc, &techs, &visits, at(MON, "05:00"), 42);
    let b = run(&wc, &techs, &visits, at(MON, "05:00"), 42);
    assert_eq!(a, b);
    // Re-optimising the result again moves nothing and saves nothing.
    let again: Vec<BookedVisit> = days_after(&a, &visits)
        .into_iter()
        .flat_map(|(t, list)| list.into_iter().map(move |v| booked(&t, v)))
        .collect();
    let c = run(&wc, &techs, &again, at(MON, "05:00"), 7);
    assert!(c.moves.is_empty(), "{:?}", c.moves);
    assert_eq!(c.travel_before_minutes, c.travel_after_minutes);
    assert!(c.days.iter().all(|d| !d.changed));
}

#[test]
fn an_unknown_time_zone_is_an_error() {
    let mut wc = work_center("CHI-N", Policy::default());
    wc.time_zone = "Mars/Olympus".into();
    let err = reoptimize(&Reoptimize {
        work_center: &wc,
        technicians: &[],
        visits: &[],
        now: at(MON, "05:00"),
        travel: None,
        seed: 1,
        budget: Budget::iterations(10),
    })
    .unwrap_err();
    assert!(err.contains("Mars/Olympus"), "{err}");
}

#[test]
fn a_large_work_center_is_reoptimised_near_each_visit_and_keeps_every_rule() {
    // 45 technicians (beyond 40 routes a removed visit is reinserted only near it) and 150
    // one-hour visits booked through search + plan, each in the first window offered.
    use revisit_scheduler::{Snapshot, plan, search};
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    let mut next = move |lo: f64, hi: f64| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        lo + (hi - lo) * (x >> 11) as f64 / (1u64 << 53) as f64
    };
    let policy = Policy {
        horizon_days: 1,
        ..Policy::default()
    };
    let wcs = [work_center("CHI-N", policy)];
    let techs: Vec<Technician> = (0..45)
        .map(|i| tech(&format!("t{i}"), near(next(-15.0, 15.0), next(-15.0, 15.0))))
        .collect();
    let mut cal: HashMap<String, Vec<Visit>> = HashMap::new();
    let now = at(MON, "05:00");
    for j in 0..150 {
        let loc = near(next(-15.0, 15.0), next(-15.0, 15.0));
        let s = Snapshot {
            work_centers: &wcs,
            technicians: &techs,
            visits: &cal,
        };
        let job = job(loc, 60);
        let Some(offer) = search(&s, &job, now).offers.first().cloned() else {
            continue;
        };
        let p = plan(&s, &job, offer.window, now).unwrap();
        let list = cal.entry(p.tech.clone()).or_default();
        for sh in &p.shifted {
            let v = list
                .iter_mut()
                .find(|v| v.order_num == sh.order_num)
                .unwrap();
            v.start = sh.start;
            v.end = sh.end;
        }
        list.push(visit(&format!("J{j}"), p.start, 60, loc, offer.window));
        list.sort_by_key(|v| v.start);
    }
    let visits: Vec<BookedVisit> = cal
        .iter()
        .flat_map(|(t, list)| list.iter().map(move |v| booked(t, v.clone())))
        .collect();
    assert!(visits.len() > 100);
    let out = run(&wcs[0], &techs, &visits, now, 3);
    assert!(out.travel_after_minutes < out.travel_before_minutes);
    let after = days_after(&out, &visits);
    assert_eq!(after.values().map(Vec::len).sum::<usize>(), visits.len());
    for v in after.values().flatten() {
        assert!(v.window.start <= v.start && v.start <= v.window.end);
    }
    check_all(&techs, &after);
}
