//! Property tests: whatever the random day, what the scheduler offers can be booked, and booking
//! it keeps every invariant (no overlap, travel gaps, promised windows, shift bounds).

mod common;

use std::collections::HashMap;

use common::*;
use jiff::{SignedDuration, Timestamp};
use proptest::prelude::*;
use revisit_scheduler::{
    Availability, GreatCircle, Job, Policy, Snapshot, Technician, Travel, Unavailable, Visit,
    VisitFacts, Window, candidate_windows, check_day, check_shift_bounds, plan, plan_with_repair,
    search, search_with_repair,
};

const DATES: [&str; 2] = ["2026-11-30", "2026-12-01"];

/// One existing visit to lay out: (gap minutes, duration, km north, km east, minutes the
/// promised window opens before the arrival, minutes it stays open after).
type VisitSeed = (i64, i64, f64, f64, i64, i64);

#[derive(Debug, Clone)]
struct TechSeed {
    home: (f64, f64),
    shift_start: u8, // half-hours after 07:00
    shift_end: u8,   // half-hours after 15:00
    /// A split shift: off from 12:00 for this many half-hours (0 = one block).
    lunch: u8,
    days: [Vec<VisitSeed>; 2],
}

fn visit_seed() -> impl Strategy<Value = VisitSeed> {
    (
        0i64..8,
        1i64..13,
        -15.0..15.0f64,
        -15.0..15.0f64,
        0i64..13,
        0i64..13,
    )
        .prop_map(|(g, d, n, e, b, a)| (g * 15, d * 15, n, e, b * 15, a * 15))
}

fn tech_seed() -> impl Strategy<Value = TechSeed> {
    (
        (-15.0..15.0f64, -15.0..15.0f64),
        0u8..5,
        0u8..9,
        prop_oneof![Just(0u8), 1u8..4],
        prop::collection::vec(visit_seed(), 0..7),
        prop::collection::vec(visit_seed(), 0..7),
    )
        .prop_map(|(home, shift_start, shift_end, lunch, d0, d1)| TechSeed {
            home,
            shift_start,
            shift_end,
            lunch,
            days: [d0, d1],
        })
}

fn hhmm(minutes: i64) -> String {
    format!("{:02}:{:02}", minutes / 60, minutes % 60)
}

/// Builds a technician and a valid booked calendar from a seed, the way a careful dispatcher would.
fn build(i: usize, seed: &TechSeed, travel: &GreatCircle) -> (Technician, Vec<Visit>) {
    let mut t = tech(&format!("t{i}"), near(seed.home.0, seed.home.1));
    let start_min = 7 * 60 + 30 * i64::from(seed.shift_start);
    let end_min = 15 * 60 + 30 * i64::from(seed.shift_end);
    t.shifts[0].start = hhmm(start_min);
    t.shifts[0].end = hhmm(end_min);
    let lunch = 30 * i64::from(seed.lunch);
    if lunch > 0 {
        let mut afternoon = t.shifts[0].clone();
        afternoon.start = hhmm(12 * 60 + lunch);
        t.shifts[0].end = "12:00".into();
        t.shifts.push(afternoon);
    }
    let mut out = Vec::new();
    for (date, seeds) in DATES.iter().zip(&seed.days) {
        let shift_start = at(date, &t.shifts[0].start);
        let shift_end = at(date, &hhmm(end_min));
        let (noon, back) = (at(date, "12:00"), at(date, &hhmm(12 * 60 + lunch)));
        let (mut free, mut from) = (shift_start, t.home);
        let first = out.len();
        for (n, &(gap, dur, kn, ke, before, after)) in seeds.iter().enumerate() {
            let loc = near(kn, ke);
            let mut start =
                free + SignedDuration::from_mins(i64::from(travel.minutes(from, loc)) + gap);
            if lunch > 0 && start < back && start + SignedDuration::from_mins(dur) > noon {
                // It would run into the break: after it instead (driving after the break too,
                // so a first visit of the day leaves time to come from home).
                start = back + SignedDuration::from_mins(i64::from(travel.minutes(from, loc)));
            }
            let end = start + SignedDuration::from_mins(dur);
            if end + SignedDuration::from_mins(i64::from(travel.minutes(loc, t.home))) > shift_end {
                break;
            }
            let window = Window {
                start: start - SignedDuration::from_mins(before),
                end: start + SignedDuration::from_mins(after),
            };
            out.push(visit(
                &format!("{}-{date}-{n}", t.user_name),
                start,
                dur,
                loc,
                window,
            ));
            free = end;
            from = loc;
        }
        // The day's last visit must leave time to drive home before its own block ends.
        while out.len() > first {
            let last: &Visit = out.last().unwrap();
            let home_by = last.end
                + SignedDuration::from_mins(i64::from(
                    travel.minutes(last.location.unwrap(), t.home),
                ));
            if lunch > 0 && last.end <= noon && home_by > noon {
                out.pop();
            } else {
                break;
            }
        }
    }
    (t, out)
}

#[derive(Debug, Clone)]
struct JobSeed {
    loc: (f64, f64),
    dur: u32,
    busy: Option<(i64, i64)>,      // 1003 on Monday: start minute, length
    available: Option<(i64, i64)>, // 1002 on Tuesday
    preferred: Option<usize>,
}

fn job_seed() -> impl Strategy<Value = JobSeed> {
    (
        (-15.0..15.0f64, -15.0..15.0f64),
        1u32..17,
        prop::option::of((24i64..80, 1i64..24)),
        prop::option::of((24i64..80, 4i64..40)),
        prop::option::of(0usize..3),
    )
        .prop_map(|(loc, d, busy, available, preferred)| JobSeed {
            loc,
            dur: d * 15,
            busy: busy.map(|(s, l)| (s * 15, l * 15)),
            available: available.map(|(s, l)| (s * 15, l * 15)),
            preferred,
        })
}

fn make_job(seed: &JobSeed) -> Job {
    let mut j = job(near(seed.loc.0, seed.loc.1), seed.dur);
    let period = |date: &str, (s, l): (i64, i64), available: bool| Availability {
        available,
        start: at(date, &hhmm(s)),
        end: at(date, "00:00") + SignedDuration::from_mins(s + l),
    };
    if let Some(b) = seed.busy {
        j.customer.push(period(DATES[0], b, false));
    }
    if let Some(a) = seed.available {
        j.customer.push(period(DATES[1], a, true));
    }
    j.preferred_tech = seed.preferred.map(|i| format!("t{i}"));
    j
}

fn inside_customer(job: &Job, start: Timestamp, end: Timestamp) -> bool {
    let any_available = job.customer.iter().any(|a| a.available);
    let fits = job
        .customer
        .iter()
        .any(|a| a.available && a.start <= start && end <= a.end);
    let clashes = job
        .customer
        .iter()
        .any(|a| !a.available && a.start < end && a.end > start);
    (!any_available || fits) && !clashes
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn every_offer_is_plannable_and_booking_it_keeps_every_invariant(
        techs in prop::collection::vec(tech_seed(), 1..4),
        job_seed in job_seed(),
    ) {
        let policy = Policy {
            horizon_days: 3,
            max_slots: 100,
            ..Policy::default()
        };
        let travel = GreatCircle::from_policy(&policy);
        let wcs = [work_center("CHI-N", policy)];
        let built: Vec<(Technician, Vec<Visit>)> =
            techs.iter().enumerate().map(|(i, s)| build(i, s, &travel)).collect();
        for (t, v) in &built {
            check_day(t, &chicago(), v, &travel).unwrap();
            check_shift_bounds(t, &chicago(), v, &travel).unwrap();
        }
        let technicians: Vec<Technician> = built.iter().map(|(t, _)| t.clone()).collect();
        let visits: HashMap<String, Vec<Visit>> =
            built.iter().map(|(t, v)| (t.user_name.clone(), v.clone())).collect();
        let snap = Snapshot { work_centers: &wcs, technicians: &technicians, visits: &visits };
        let job = make_job(&job_seed);
        let now = at(DATES[0], "05:00");

        let out = search(&snap, &job, now);
        prop_assert!(out.offers.windows(2).all(|p| p[0].window.start < p[1].window.start));
        prop_assert_eq!(out.offers.is_empty(), !out.status_msg.is_empty());

        for window in candidate_windows(&wcs[0], &chicago(), now, 3) {
            let offer = out.offers.iter().find(|o| o.window == window);
            let placed = plan(&snap, &job, window, now);
            // With max_slots above the number of windows, search and plan agree on every window.
            prop_assert_eq!(offer.is_some(), placed.is_ok(), "window {:?}: {:?}", window, placed);
            let Ok(p) = placed else { continue };
            let offer = offer.unwrap();
            prop_assert_eq!(p.cost, offer.cost);
            prop_assert!(window.start <= p.start && p.start <= window.end);
            prop_assert_eq!(p.end.duration_since(p.start), SignedDuration::from_mins(i64::from(job.duration_minutes)));
            prop_assert!(inside_customer(&job, p.start, p.end));

            // Apply the placement to the chosen technician's calendar and re-check it all.
            let (tech, before) = built.iter().find(|(t, _)| t.user_name == p.tech).unwrap();
            let mut after = before.clone();
            for s in &p.shifted {
                let v = after.iter_mut().find(|v| v.order_num == s.order_num).unwrap();
                prop_assert!(s.start > v.start, "{} moved earlier", s.order_num);
                prop_assert_eq!(s.end.duration_since(s.start), v.end.duration_since(v.start));
                v.start = s.start;
                v.end = s.end;
            }
            after.push(Visit {
                order_num: "NEW".into(),
                start: p.start,
                end: p.end,
                location: Some(job.location),
                window,
            });
            after.sort_by_key(|v| v.start);
            let order_before: Vec<_> = before.iter().map(|v| &v.order_num).collect();
            let order_after: Vec<_> = after.iter().map(|v| &v.order_num).filter(|o| *o != "NEW").collect();
            prop_assert_eq!(order_before, order_after, "visits kept their order");
            if let Err(e) = check_day(tech, &chicago(), &after, &travel) {
                return Err(TestCaseError::fail(format!("check_day: {e}")));
            }
            if let Err(e) = check_shift_bounds(tech, &chicago(), &after, &travel) {
                return Err(TestCaseError::fail(format!("check_shift_bounds: {e}")));
            }
        }
    }

    #[test]
    fn every_repair_offer_is_plannable_and_booking_it_keeps_every_invariant(
        techs in prop::collection::vec(tech_seed(), 2..5),
        job_seed in job_seed(),
        gas in any::<bool>(),
        fact_seed in prop::collection::vec(0u8..10, 16),
    ) {
        let policy = Policy {
            horizon_days: 3,
            max_slots: 100,
            ..Policy::default()
        };
        let travel = GreatCircle::from_policy(&policy);
        let wcs = [work_center("CHI-N", policy)];
        let mut built: Vec<(Technician, Vec<Visit>)> =
            techs.iter().enumerate().map(|(i, s)| build(i, s, &travel)).collect();
        let mut job = make_job(&job_seed);
        if gas {
            // Only t0 can do the job: its full windows are where repairs help.
            built[0].0.skills.push(skill("GAS", 1));
            job.skills = vec![skill("GAS", 1)];
        }
        let technicians: Vec<Technician> = built.iter().map(|(t, _)| t.clone()).collect();
        let visits: HashMap<String, Vec<Visit>> =
            built.iter().map(|(t, v)| (t.user_name.clone(), v.clone())).collect();
        // Facts: none (never moves), pinned, or an ordinary movable HVAC visit.
        let mut facts: HashMap<String, VisitFacts> = HashMap::new();
        for (k, v) in built.iter().flat_map(|(_, v)| v).enumerate() {
            match fact_seed[k % fact_seed.len()] {
                0 => {}
                1 => {
                    facts.insert(v.order_num.clone(), VisitFacts { pinned: true, ..VisitFacts::default() });
                }
                _ => {
                    facts.insert(v.order_num.clone(), VisitFacts { skills: vec![skill("HVAC", 1)], ..VisitFacts::default() });
                }
            }
        }
        let snap = Snapshot { work_centers: &wcs, technicians: &technicians, visits: &visits };
        let now = at(DATES[0], "05:00");

        let plain = search(&snap, &job, now);
        let out = search_with_repair(&snap, &job, now, None, &facts);
        // Repair only adds offers: every plain offer is there unchanged.
        for o in &plain.offers {
            let same = out.offers.iter().find(|x| x.window == o.window);
            prop_assert_eq!(same.map(|x| (x.cost, x.repair)), Some((o.cost, false)));
        }
        for window in candidate_windows(&wcs[0], &chicago(), now, 3) {
            let offer = out.offers.iter().find(|o| o.window == window);
            let placed = plan_with_repair(&snap, &job, window, now, None, &facts);
            prop_assert_eq!(offer.is_some(), placed.is_ok(), "window {:?}: {:?}", window, placed);
            let Ok(r) = placed else {
                prop_assert!(plan(&snap, &job, window, now).is_err());
                continue;
            };
            let offer = offer.unwrap();
            prop_assert_eq!(r.placement.cost, offer.cost);
            prop_assert_eq!(offer.repair, !r.moved.is_empty() || plan(&snap, &job, window, now) == Err(Unavailable::Booked));
            prop_assert!(window.start <= r.placement.start && r.placement.start <= window.end);
            prop_assert!(inside_customer(&job, r.placement.start, r.placement.end));
            prop_assert!(technicians.iter().find(|t| t.user_name == r.placement.tech).unwrap().has_skills(&job.skills));

            // Apply the booking, the pushes and the moves, and re-check every day.
            let mut after = visits.clone();
            for m in &r.moved {
                let f = facts.get(&m.order_num);
                prop_assert!(f.is_some_and(|f| !f.pinned), "{} moved without leave", m.order_num);
                let from = after.get_mut(&m.from_tech).unwrap();
                let k = from.iter().position(|v| v.order_num == m.order_num).unwrap();
                let mut v = from.remove(k);
                prop_assert!(v.window.start <= m.start && m.start <= v.window.end, "{} left its window", m.order_num);
                prop_assert_eq!(m.end.duration_since(m.start), v.end.duration_since(v.start));
                v.start = m.start;
                v.end = m.end;
                after.entry(m.to_tech.clone()).or_default().push(v);
            }
            let list = after.entry(r.placement.tech.clone()).or_default();
            for sh in &r.placement.shifted {
                let v = list.iter_mut().find(|v| v.order_num == sh.order_num).unwrap();
                prop_assert!(v.window.start <= sh.start && sh.start <= v.window.end);
                v.start = sh.start;
                v.end = sh.end;
            }
            list.push(Visit {
                order_num: "NEW".into(),
                start: r.placement.start,
                end: r.placement.end,
                location: Some(job.location),
                window,
            });
            prop_assert_eq!(after.values().map(Vec::len).sum::<usize>(), visits.values().map(Vec::len).sum::<usize>() + 1);
            for t in &technicians {
                let list = after.entry(t.user_name.clone()).or_default();
                list.sort_by_key(|v| v.start);
                // Visits that may not move did not.
                for v in list.iter() {
                    let f = facts.get(&v.order_num);
                    if v.order_num != "NEW" && f.is_none_or(|f| f.pinned) {
                        let was = visits[&t.user_name].iter().find(|x| x.order_num == v.order_num);
                        prop_assert!(was.is_some_and(|x| x.start <= v.start), "{} moved", v.order_num);
                    }
                }
                if let Err(e) = check_day(t, &chicago(), list, &travel) {
                    return Err(TestCaseError::fail(format!("check_day {}: {e}", t.user_name)));
                }
                if let Err(e) = check_shift_bounds(t, &chicago(), list, &travel) {
                    return Err(TestCaseError::fail(format!("check_shift_bounds {}: {e}", t.user_name)));
                }
            }
        }
    }
}
