//! Property tests of re-optimisation: whatever the random booked days, the result keeps every
//! promise (date, window), skill, shift block, pin, start and freeze, loses or duplicates no visit,
//! keeps every day valid (`check_day`, `check_shift_bounds`), never costs more, and is the same
//! for the same seed.

mod common;

use std::collections::HashMap;

use common::*;
use jiff::{SignedDuration, Timestamp};
use proptest::prelude::*;
use revisit_scheduler::{
    BookedVisit, Budget, GreatCircle, Policy, Reoptimize, Reoptimized, Technician, Travel, Visit,
    VisitFacts, Window, check_day, check_shift_bounds, reoptimize,
};

const DATES: [&str; 2] = ["2026-11-30", "2026-12-01"];

/// (gap, duration, km north, km east, window opens before, stays open after, flags, told, level)
type VisitSeed = (i64, i64, f64, f64, i64, i64, u8, u8, u8);

#[derive(Debug, Clone)]
struct TechSeed {
    home: (f64, f64),
    shift_start: u8,
    shift_end: u8,
    lunch: u8,
    level: u8,
    days: [Vec<VisitSeed>; 2],
}

fn visit_seed() -> impl Strategy<Value = VisitSeed> {
    (
        (0i64..6, 2i64..9, -15.0..15.0f64, -15.0..15.0f64),
        (0i64..17, 0i64..17, 0u8..10, 0u8..6, 1u8..4),
    )
        .prop_map(|((g, d, n, e), (b, a, flags, told, level))| {
            (g * 15, d * 15, n, e, b * 15, a * 15, flags, told, level)
        })
}

fn tech_seed() -> impl Strategy<Value = TechSeed> {
    (
        (-15.0..15.0f64, -15.0..15.0f64),
        0u8..4,
        0u8..9,
        prop_oneof![Just(0u8), 1u8..4],
        1u8..4,
        prop::collection::vec(visit_seed(), 0..7),
        prop::collection::vec(visit_seed(), 0..7),
    )
        .prop_map(
            |(home, shift_start, shift_end, lunch, level, d0, d1)| TechSeed {
                home,
                shift_start,
                shift_end,
                lunch,
                level,
                days: [d0, d1],
            },
        )
}

fn hhmm(minutes: i64) -> String {
    format!("{:02}:{:02}", minutes / 60, minutes % 60)
}

/// A technician and a valid booked calendar, laid out the way a careful dispatcher would.
fn build(
    i: usize,
    n_techs: usize,
    seed: &TechSeed,
    travel: &GreatCircle,
) -> (Technician, Vec<BookedVisit>) {
    let mut t = tech(&format!("t{i}"), near(seed.home.0, seed.home.1));
    t.skills = vec![skill("HVAC", seed.level)];
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
    let mut out: Vec<BookedVisit> = Vec::new();
    for (date, seeds) in DATES.iter().zip(&seed.days) {
        let shift_start = at(date, &hhmm(start_min));
        let shift_end = at(date, &hhmm(end_min));
        let (noon, back) = (at(date, "12:00"), at(date, &hhmm(12 * 60 + lunch)));
        let (mut free, mut from) = (shift_start, t.home);
        let first = out.len();
        for (n, &(gap, dur, kn, ke, before, after, flags, told, level)) in seeds.iter().enumerate()
        {
            let loc = near(kn, ke);
            let drive = |from| SignedDuration::from_mins(i64::from(travel.minutes(from, loc)));
            let mut start = free + drive(from) + SignedDuration::from_mins(gap);
            if lunch > 0 && start < back && start + SignedDuration::from_mins(dur) > noon {
                start = back + drive(from);
            }
            let end = start + SignedDuration::from_mins(dur);
            if end + SignedDuration::from_mins(i64::from(travel.minutes(loc, t.home))) > shift_end {
                break;
            }
            let window = Window {
                start: start - SignedDuration::from_mins(before),
                end: start + SignedDuration::from_mins(after),
            };
            let told_tech = match told {
                0 | 1 => None,
                2 | 3 => Some(t.user_name.clone()),
                k => Some(format!("t{}", (i + usize::from(k)) % n_techs)),
            };
            out.push(BookedVisit {
                tech: t.user_name.clone(),
                visit: visit(
                    &format!("{}-{date}-{n}", t.user_name),
                    start,
                    dur,
                    loc,
                    window,
                ),
                facts: VisitFacts {
                    skills: vec![skill("HVAC", level.min(seed.level))],
                    told_tech,
                    started: flags == 0,
                    pinned: flags == 1,
                },
            });
            free = end;
            from = loc;
        }
        while out.len() > first {
            let last = &out.last().unwrap().visit;
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

fn run(
    techs: &[Technician],
    visits: &[BookedVisit],
    now: Timestamp,
    seed: u64,
    policy: &Policy,
) -> Reoptimized {
    let wc = work_center("CHI-N", policy.clone());
    reoptimize(&Reoptimize {
        work_center: &wc,
        technicians: techs,
        visits,
        now,
        travel: None,
        seed,
        budget: Budget::iterations(300),
    })
    .unwrap()
}

/// Travel minutes and penalty minutes of a plan, computed independently of the optimiser.
fn cost_of(
    techs: &[Technician],
    days: &HashMap<String, Vec<(Visit, Option<String>)>>,
    travel: &GreatCircle,
    penalty: f64,
) -> (i64, f64) {
    let (mut total, mut pen) = (0i64, 0.0);
    for t in techs {
        let Some(list) = days.get(&t.user_name) else {
            continue;
        };
        let mut i = 0;
        while i < list.len() {
            let date = chicago().to_datetime(list[i].0.start).date();
            let mut prev = t.home;
            while i < list.len() && chicago().to_datetime(list[i].0.start).date() == date {
                let (v, told) = &list[i];
                let loc = v.location.unwrap();
                total += i64::from(travel.minutes(prev, loc));
                if told.as_ref().is_some_and(|u| *u != t.user_name) {
                    pen += penalty;
                }
                prev = loc;
                i += 1;
            }
            total += i64::from(travel.minutes(prev, t.home));
        }
    }
    (total, pen)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn reoptimisation_keeps_every_promise_and_rule_and_never_costs_more(
        seeds in prop::collection::vec(tech_seed(), 1..5),
        now_min in 0i64..48,
        seed in any::<u64>(),
    ) {
        let policy = Policy::default();
        let travel = GreatCircle::from_policy(&policy);
        let n = seeds.len();
        let built: Vec<(Technician, Vec<BookedVisit>)> =
            seeds.iter().enumerate().map(|(i, s)| build(i, n, s, &travel)).collect();
        let techs: Vec<Technician> = built.iter().map(|(t, _)| t.clone()).collect();
        let visits: Vec<BookedVisit> = built.iter().flat_map(|(_, v)| v.clone()).collect();
        for (t, v) in &built {
            let list: Vec<Visit> = v.iter().map(|b| b.visit.clone()).collect();
            check_day(t, &chicago(), &list, &travel).unwrap();
            check_shift_bounds(t, &chicago(), &list, &travel).unwrap();
        }
        // From Monday 04:00 to Tuesday 04:00 in half hours: the freeze sweeps over the visits.
        let now = at(DATES[0], "04:00") + SignedDuration::from_mins(30 * now_min);
        let freeze_until = now + SignedDuration::from_mins(i64::from(policy.freeze_minutes));

        let out = run(&techs, &visits, now, seed, &policy);

        // Every visit exactly once, in its window and on its date, with its duration.
        let input: HashMap<&str, &BookedVisit> =
            visits.iter().map(|b| (b.visit.order_num.as_str(), b)).collect();
        let mut seen: HashMap<&str, usize> = HashMap::new();
        let mut after: HashMap<String, Vec<(Visit, Option<String>)>> = HashMap::new();
        for day in &out.days {
            for s in &day.visits {
                *seen.entry(s.order_num.as_str()).or_default() += 1;
                let b = input[s.order_num.as_str()];
                let v = &b.visit;
                prop_assert!(v.window.start <= s.start && s.start <= v.window.end,
                    "{} outside its window", s.order_num);
                prop_assert_eq!(s.end.duration_since(s.start), v.end.duration_since(v.start));
                prop_assert_eq!(chicago().to_datetime(s.start).date(), chicago().to_datetime(v.start).date());
                prop_assert_eq!(day.date, chicago().to_datetime(v.start).date());
                let moved = day.tech != b.tech || s.start != v.start;
                let fixed = b.facts.started || b.facts.pinned || v.start < freeze_until;
                prop_assert!(!(fixed && moved), "{} is fixed but moved", s.order_num);
                if moved {
                    prop_assert!(s.start >= freeze_until, "{} moved before the horizon", s.order_num);
                }
                let t = techs.iter().find(|t| t.user_name == day.tech).unwrap();
                if day.tech != b.tech {
                    prop_assert!(t.has_skills(&b.facts.skills), "{} to {} without skills", s.order_num, t.user_name);
                }
                after.entry(day.tech.clone()).or_default().push((
                    Visit { start: s.start, end: s.end, ..v.clone() },
                    b.facts.told_tech.clone(),
                ));
            }
        }
        prop_assert_eq!(seen.len(), visits.len(), "a visit was lost");
        prop_assert!(seen.values().all(|&c| c == 1), "a visit was duplicated");
        for list in after.values_mut() {
            list.sort_by_key(|v| v.0.start);
        }
        for t in &techs {
            let list: Vec<Visit> = after.get(&t.user_name).map(|l| l.iter().map(|v| v.0.clone()).collect()).unwrap_or_default();
            if let Err(e) = check_day(t, &chicago(), &list, &travel) {
                return Err(TestCaseError::fail(format!("check_day {}: {e}", t.user_name)));
            }
            if let Err(e) = check_shift_bounds(t, &chicago(), &list, &travel) {
                return Err(TestCaseError::fail(format!("check_shift_bounds {}: {e}", t.user_name)));
            }
        }
        // Moves are exactly the visits that changed technician or time.
        let changed = out.days.iter().flat_map(|d| d.visits.iter().map(move |s| (d, s)))
            .filter(|(d, s)| { let b = input[s.order_num.as_str()]; d.tech != b.tech || s.start != b.visit.start })
            .count();
        prop_assert_eq!(out.moves.len(), changed);

        // Never costlier; the reported figures are the real ones.
        let before: HashMap<String, Vec<(Visit, Option<String>)>> = built.iter()
            .map(|(t, v)| (t.user_name.clone(), v.iter().map(|b| (b.visit.clone(), b.facts.told_tech.clone())).collect()))
            .collect();
        let penalty = policy.non_original_penalty_minutes;
        let (tb, pb) = cost_of(&techs, &before, &travel, penalty);
        let (ta, pa) = cost_of(&techs, &after, &travel, penalty);
        prop_assert_eq!(tb, out.travel_before_minutes);
        prop_assert_eq!(ta, out.travel_after_minutes);
        prop_assert!((pb - out.penalty_before_minutes).abs() < 1e-9);
        prop_assert!((pa - out.penalty_after_minutes).abs() < 1e-9);
        prop_assert!(ta as f64 + pa <= tb as f64 + pb, "cost went up: {} + {} > {} + {}", ta, pa, tb, pb);

        // The same seed gives the same plan.
        prop_assert_eq!(&out, &run(&techs, &visits, now, seed, &policy));
    }
}
