//! Route quality on a seeded city: follow-ups booked one at a time through `search` + `plan`, then
//! re-optimised. Run with:
//!
//! ```text
//! cargo run --release -p revisit-scheduler --example quality -- \
//!     --technicians 8 --days 4 --jobs 200 --seed 1 [--order date|cost|both] \
//!     [--customer first|best|both] [--iterations N] [--repair] \
//!     [--reopt-every K [--reopt-iterations N]] [--per-day-penalty MIN] [--export DIR]
//! ```
//!
//! The city is 30 km across; technicians' homes and jobs are spread uniformly over it. Every
//! technician works 08:00-20:00 every day; the policy offers three 4-hour windows a day over the
//! next `days` days; jobs are one-hour follow-ups with no preferred technician and no skills,
//! all booked on the evening before the first day. A customer takes the first window offered
//! (`first`) or the cheapest (`best`); `--order cost` sets the policy's `OfferOrder` to `Cost`.
//! `--repair` books through `search_with_repair` and `plan_with_repair`. `--reopt-every K`
//! re-optimises after every K bookings (`--reopt-iterations` each, default 2,000), as the
//! server's debounced background run would. After the last booking the plan is re-optimised with
//! `--iterations` (default 20,000); every plan is checked with `check_day` and
//! `check_shift_bounds`.
//!
//! `--export DIR` writes each run's instance (technicians, jobs with their promised window, the
//! jobs refused with every window they could have had, the travel matrix in seconds) as JSON for
//! `bench/vroom_compare.py`, which solves the same jobs with VROOM.

use std::collections::HashMap;
use std::time::Instant;

use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use revisit_scheduler::{
    BookedVisit, Budget, GeoPoint, GreatCircle, Job, OfferOrder, Policy, Reoptimize, ShiftDef,
    Snapshot, Technician, Travel, Visit, VisitFacts, Window, WindowDef, WorkCenter,
    candidate_windows, check_day, check_shift_bounds, plan, plan_with_repair, reoptimize, search,
    search_with_repair,
};
use serde_json::json;

/// xorshift64*: enough randomness for test data, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn f(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

const CENTER: (f64, f64) = (41.88, -87.63);
const ZONE: &str = "America/Chicago";
const ALL_DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

fn spot(rng: &mut Rng) -> GeoPoint {
    // 30 km x 30 km around the center.
    GeoPoint {
        lat: CENTER.0 + rng.f(-15.0, 15.0) / 111.2,
        lon: CENTER.1 + rng.f(-15.0, 15.0) / 82.9,
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Customer {
    First,
    Best,
}

struct Args {
    technicians: usize,
    days: u32,
    jobs: usize,
    seed: u64,
    iterations: u64,
    orders: Vec<OfferOrder>,
    customers: Vec<Customer>,
    repair: bool,
    export: Option<String>,
    per_day_penalty: Option<f64>,
    /// Re-optimise (as in the background) after every this many bookings; 0 = never.
    reopt_every: usize,
    reopt_iterations: u64,
}

fn parse_args() -> Args {
    let mut a = Args {
        technicians: 8,
        days: 4,
        jobs: 200,
        seed: 1,
        iterations: 20_000,
        orders: vec![OfferOrder::Chronological, OfferOrder::Cost],
        customers: vec![Customer::First, Customer::Best],
        repair: false,
        export: None,
        per_day_penalty: None,
        reopt_every: 0,
        reopt_iterations: 2_000,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < args.len() {
        let value = || args.get(i + 1).cloned().unwrap_or_default();
        match args[i].as_str() {
            "--technicians" => a.technicians = value().parse().expect("--technicians N"),
            "--days" => a.days = value().parse().expect("--days N"),
            "--jobs" => a.jobs = value().parse().expect("--jobs N"),
            "--seed" => a.seed = value().parse().expect("--seed N"),
            "--iterations" => a.iterations = value().parse().expect("--iterations N"),
            "--order" => {
                a.orders = match value().as_str() {
                    "date" => vec![OfferOrder::Chronological],
                    "cost" => vec![OfferOrder::Cost],
                    _ => vec![OfferOrder::Chronological, OfferOrder::Cost],
                }
            }
            "--customer" => {
                a.customers = match value().as_str() {
                    "first" => vec![Customer::First],
                    "best" => vec![Customer::Best],
                    _ => vec![Customer::First, Customer::Best],
                }
            }
            "--export" => a.export = Some(value()),
            "--per-day-penalty" => a.per_day_penalty = Some(value().parse().expect("minutes")),
            "--reopt-every" => a.reopt_every = value().parse().expect("--reopt-every K"),
            "--reopt-iterations" => a.reopt_iterations = value().parse().expect("N"),
            "--repair" => {
                a.repair = true;
                i += 1;
                continue;
            }
            other => panic!("unknown argument {other}"),
        }
        i += 2;
    }
    a
}

struct City {
    wc: WorkCenter,
    techs: Vec<Technician>,
    jobs: Vec<GeoPoint>,
    now: Timestamp,
    tz: TimeZone,
}

fn city(a: &Args, order: OfferOrder) -> City {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ a.seed.wrapping_mul(0x2545_F491_4F6C_DD1D));
    let window = |s: &str, e: &str| WindowDef {
        days: ALL_DAYS.map(String::from).to_vec(),
        start: s.into(),
        end: e.into(),
    };
    let policy = Policy {
        windows: vec![
            window("08:00", "12:00"),
            window("12:00", "16:00"),
            window("16:00", "20:00"),
        ],
        // Today (Sunday, all past) + the booked days.
        horizon_days: a.days + 1,
        offer_order: order,
        per_day_penalty_minutes: a
            .per_day_penalty
            .unwrap_or(Policy::default().per_day_penalty_minutes),
        ..Policy::default()
    };
    let wc = WorkCenter {
        service_area_id: "CITY".into(),
        name: "City".into(),
        time_zone: ZONE.into(),
        lat: CENTER.0,
        lon: CENTER.1,
        policy,
    };
    let techs = (0..a.technicians)
        .map(|i| Technician {
            user_name: format!("t{i}"),
            name: format!("Tech {i}"),
            service_area_ids: vec!["CITY".into()],
            skills: vec![],
            home: spot(&mut rng),
            shifts: vec![ShiftDef {
                days: ALL_DAYS.map(String::from).to_vec(),
                start: "08:00".into(),
                end: "20:00".into(),
            }],
            exceptions: vec![],
            active: true,
        })
        .collect();
    let jobs = (0..a.jobs).map(|_| spot(&mut rng)).collect();
    let tz = TimeZone::get(ZONE).unwrap();
    // Sunday 29 Nov 2026, 23:00: everything is booked before Monday starts.
    let now = tz
        .to_ambiguous_timestamp(jiff::civil::date(2026, 11, 29).at(23, 0, 0, 0))
        .compatible()
        .unwrap();
    City {
        wc,
        techs,
        jobs,
        now,
        tz,
    }
}

fn job_at(loc: GeoPoint) -> Job {
    Job {
        duration_minutes: 60,
        skills: vec![],
        location: loc,
        service_area_id: Some("CITY".into()),
        preferred_tech: None,
        customer: vec![],
        required_parts: vec![],
    }
}

/// Travel minutes of every technician-day: home, visits, home.
fn total_travel(
    c: &City,
    visits: &HashMap<String, Vec<Visit>>,
    travel: &dyn Travel,
) -> (i64, usize) {
    let mut total = 0i64;
    let mut days = 0;
    for t in &c.techs {
        let Some(list) = visits.get(&t.user_name) else {
            continue;
        };
        let mut i = 0;
        while i < list.len() {
            let date = c.tz.to_datetime(list[i].start).date();
            let mut prev = t.home;
            days += 1;
            while i < list.len() && c.tz.to_datetime(list[i].start).date() == date {
                let loc = list[i].location.unwrap();
                total += i64::from(travel.minutes(prev, loc));
                prev = loc;
                i += 1;
            }
            total += i64::from(travel.minutes(prev, t.home));
        }
    }
    (total, days)
}

fn check_all(c: &City, visits: &HashMap<String, Vec<Visit>>, travel: &dyn Travel) {
    for t in &c.techs {
        let list = visits.get(&t.user_name).map_or(&[][..], |v| v.as_slice());
        check_day(t, &c.tz, list, travel).unwrap();
        check_shift_bounds(t, &c.tz, list, travel).unwrap();
    }
}

struct Run {
    visits: HashMap<String, Vec<Visit>>,
    refused: Vec<usize>,
    repaired: usize,
    book_ms: f64,
    /// The slowest search + plan of one booking.
    slowest_ms: f64,
}

fn book_all(a: &Args, c: &City, customer: Customer) -> Run {
    let wcs = [c.wc.clone()];
    let mut visits: HashMap<String, Vec<Visit>> = HashMap::new();
    // Every booked follow-up may move (no skills, nobody promised, not started or pinned).
    let mut facts: HashMap<String, VisitFacts> = HashMap::new();
    let mut refused = Vec::new();
    let mut repaired = 0;
    let started = Instant::now();
    let mut slowest = 0f64;
    for (j, &loc) in c.jobs.iter().enumerate() {
        let one = Instant::now();
        let job = job_at(loc);
        let snap = Snapshot {
            work_centers: &wcs,
            technicians: &c.techs,
            visits: &visits,
        };
        let out = if a.repair {
            search_with_repair(&snap, &job, c.now, None, &facts)
        } else {
            search(&snap, &job, c.now)
        };
        let chosen = match customer {
            Customer::First => out.offers.first(),
            Customer::Best => out
                .offers
                .iter()
                .min_by(|x, y| x.cost.total_cmp(&y.cost).then(x.window.cmp(&y.window))),
        };
        let Some(offer) = chosen else {
            slowest = slowest.max(one.elapsed().as_secs_f64());
            refused.push(j);
            continue;
        };
        let window = offer.window;
        let order = format!("J{j}");
        let (placement, moved) = if a.repair {
            match plan_with_repair(&snap, &job, window, c.now, None, &facts) {
                Ok(r) => (r.placement, r.moved),
                Err(e) => panic!("offered window cannot be planned: {e}"),
            }
        } else {
            match plan(&snap, &job, window, c.now) {
                Ok(p) => (p, Vec::new()),
                Err(e) => panic!("offered window cannot be planned: {e}"),
            }
        };
        slowest = slowest.max(one.elapsed().as_secs_f64());
        if !moved.is_empty() {
            repaired += 1;
        }
        // Apply: the pushed visits, the repair's moves, then the new visit.
        let list = visits.entry(placement.tech.clone()).or_default();
        for s in &placement.shifted {
            let v = list
                .iter_mut()
                .find(|v| v.order_num == s.order_num)
                .unwrap();
            v.start = s.start;
            v.end = s.end;
        }
        for m in &moved {
            let from = visits.get_mut(&m.from_tech).unwrap();
            let k = from
                .iter()
                .position(|v| v.order_num == m.order_num)
                .unwrap();
            let mut v = from.remove(k);
            v.start = m.start;
            v.end = m.end;
            visits.entry(m.to_tech.clone()).or_default().push(v);
        }
        facts.insert(order.clone(), VisitFacts::default());
        visits
            .entry(placement.tech.clone())
            .or_default()
            .push(Visit {
                order_num: order,
                start: placement.start,
                end: placement.end,
                location: Some(loc),
                window,
            });
        for list in visits.values_mut() {
            list.sort_by_key(|v| v.start);
        }
        if a.reopt_every > 0 && (j + 1) % a.reopt_every == 0 {
            visits = apply(
                &reoptimised(c, &visits, a.reopt_iterations, a.seed),
                &visits,
            );
        }
    }
    Run {
        visits,
        refused,
        repaired,
        book_ms: started.elapsed().as_secs_f64() * 1e3,
        slowest_ms: slowest * 1e3,
    }
}

fn booked_visits(c: &City, visits: &HashMap<String, Vec<Visit>>) -> Vec<BookedVisit> {
    c.techs
        .iter()
        .flat_map(|t| {
            visits
                .get(&t.user_name)
                .into_iter()
                .flatten()
                .map(|v| BookedVisit {
                    tech: t.user_name.clone(),
                    visit: v.clone(),
                    facts: VisitFacts::default(),
                })
        })
        .collect()
}

fn reoptimised(
    c: &City,
    visits: &HashMap<String, Vec<Visit>>,
    iterations: u64,
    seed: u64,
) -> revisit_scheduler::Reoptimized {
    let booked = booked_visits(c, visits);
    reoptimize(&Reoptimize {
        work_center: &c.wc,
        technicians: &c.techs,
        visits: &booked,
        now: c.now,
        travel: None,
        seed,
        budget: Budget::iterations(iterations),
    })
    .unwrap()
}

/// The visits after a re-optimisation, each keeping its window and location.
fn apply(
    out: &revisit_scheduler::Reoptimized,
    before: &HashMap<String, Vec<Visit>>,
) -> HashMap<String, Vec<Visit>> {
    let by_order: HashMap<&str, &Visit> = before
        .values()
        .flatten()
        .map(|v| (v.order_num.as_str(), v))
        .collect();
    let mut after: HashMap<String, Vec<Visit>> = HashMap::new();
    for day in &out.days {
        for s in &day.visits {
            let old = by_order[s.order_num.as_str()];
            assert!(old.window.start <= s.start && s.start <= old.window.end);
            after.entry(day.tech.clone()).or_default().push(Visit {
                start: s.start,
                end: s.end,
                ..old.clone()
            });
        }
    }
    for list in after.values_mut() {
        list.sort_by_key(|v| v.start);
    }
    after
}

fn main() {
    let a = parse_args();
    let background = if a.reopt_every > 0 {
        format!(
            ", re-optimised every {} booking(s) ({} iterations)",
            a.reopt_every, a.reopt_iterations
        )
    } else {
        String::new()
    };
    println!(
        "{} technicians, {} days, {} jobs, seed {}, {} iterations{}{background}",
        a.technicians,
        a.days,
        a.jobs,
        a.seed,
        a.iterations,
        if a.repair { ", repair" } else { "" }
    );
    println!(
        "| offers | customer | booked | refused | repaired | travel booked (min) | after re-opt (min) | saved | re-opt time | booking time (slowest) |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for &order in &a.orders {
        for &customer in &a.customers {
            let c = city(&a, order);
            let travel = GreatCircle::from_policy(&c.wc.policy);
            let run = book_all(&a, &c, customer);
            check_all(&c, &run.visits, &travel);
            let (before, _) = total_travel(&c, &run.visits, &travel);

            let booked = booked_visits(&c, &run.visits);
            let started = Instant::now();
            let out = reoptimised(&c, &run.visits, a.iterations, a.seed);
            let reopt_s = started.elapsed().as_secs_f64();
            // Apply the result and check it independently.
            let after = apply(&out, &run.visits);
            check_all(&c, &after, &travel);
            assert_eq!(
                after.values().map(Vec::len).sum::<usize>(),
                booked.len(),
                "a visit was lost"
            );
            let (after_min, _) = total_travel(&c, &after, &travel);
            assert_eq!(after_min, out.travel_after_minutes);
            assert_eq!(before, out.travel_before_minutes);
            let name_order = match order {
                OfferOrder::Chronological => "date",
                OfferOrder::Cost => "cost",
            };
            let name_customer = match customer {
                Customer::First => "first",
                Customer::Best => "best",
            };
            println!(
                "| {name_order} | {name_customer} | {} | {} | {} | {before} | {after_min} | {:.1} % | {:.2} s ({} it) | {:.0} ms ({:.1} ms) |",
                booked.len(),
                run.refused.len(),
                run.repaired,
                100.0 * (before - after_min) as f64 / before.max(1) as f64,
                reopt_s,
                out.iterations,
                run.book_ms,
                run.slowest_ms,
            );
            if let Some(dir) = &a.export {
                export(
                    dir,
                    &a,
                    &c,
                    &run,
                    &after,
                    name_order,
                    name_customer,
                    &travel,
                );
            }
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn export(
    dir: &str,
    a: &Args,
    c: &City,
    run: &Run,
    after: &HashMap<String, Vec<Visit>>,
    order: &str,
    customer: &str,
    travel: &dyn Travel,
) {
    let base = c.now.as_second();
    let rel = |t: Timestamp| t.as_second() - base;
    // Locations: homes first, then jobs.
    let mut locs: Vec<GeoPoint> = c.techs.iter().map(|t| t.home).collect();
    locs.extend(c.jobs.iter().copied());
    let n = locs.len();
    let matrix: Vec<Vec<i64>> = (0..n)
        .map(|i| {
            (0..n)
                .map(|j| i64::from(travel.minutes(locs[i], locs[j])) * 60)
                .collect()
        })
        .collect();
    let local = |d: u32, hhmm: (i8, i8)| {
        let date = jiff::civil::date(2026, 11, 30) + SignedDuration::from_hours(24 * i64::from(d));
        c.tz.to_ambiguous_timestamp(date.at(hhmm.0, hhmm.1, 0, 0))
            .compatible()
            .unwrap()
    };
    let technicians: Vec<_> = c
        .techs
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let shifts: Vec<[i64; 2]> = (0..a.days)
                .map(|d| [rel(local(d, (8, 0))), rel(local(d, (20, 0)))])
                .collect();
            json!({"id": t.user_name, "home": i, "shifts": shifts})
        })
        .collect();
    let mut jobs = Vec::new();
    let tech_of = |visits: &HashMap<String, Vec<Visit>>, order: &str| {
        visits.iter().find_map(|(t, list)| {
            list.iter()
                .find(|v| v.order_num == order)
                .map(|v| (t.clone(), rel(v.start)))
        })
    };
    for (j, _) in c.jobs.iter().enumerate() {
        let order = format!("J{j}");
        let Some((tech, start)) = tech_of(&run.visits, &order) else {
            continue;
        };
        let v = run.visits[&tech]
            .iter()
            .find(|v| v.order_num == order)
            .unwrap();
        let (after_tech, after_start) = tech_of(after, &order).unwrap();
        jobs.push(json!({
            "id": order,
            "location": c.techs.len() + j,
            "duration": 3600,
            "window": [rel(v.window.start), rel(v.window.end)],
            "day": c.tz.to_datetime(v.window.start).date().to_string(),
            "booked": {"tech": tech, "start": start},
            "reoptimised": {"tech": after_tech, "start": after_start},
        }));
    }
    let all_windows: Vec<[i64; 2]> = candidate_windows(&c.wc, &c.tz, c.now, a.days + 1)
        .into_iter()
        .filter(|w: &Window| w.start > c.now)
        .map(|w| [rel(w.start), rel(w.end)])
        .collect();
    let refused: Vec<_> = run
        .refused
        .iter()
        .map(|&j| {
            json!({"id": format!("J{j}"), "location": c.techs.len() + j, "duration": 3600, "windows": all_windows})
        })
        .collect();
    let (before, _) = total_travel(c, &run.visits, travel);
    let (after_min, _) = total_travel(c, after, travel);
    let doc = json!({
        "seed": a.seed,
        "offers": order,
        "customer": customer,
        "technicians": technicians,
        "jobs": jobs,
        "refused": refused,
        "matrix": matrix,
        "travel_booked_seconds": before * 60,
        "travel_reoptimised_seconds": after_min * 60,
    });
    std::fs::create_dir_all(dir).unwrap();
    let path = format!(
        "{dir}/quality-t{}-d{}-j{}-s{}-{order}-{customer}.json",
        a.technicians, a.days, a.jobs, a.seed
    );
    std::fs::write(&path, serde_json::to_string(&doc).unwrap()).unwrap();
    eprintln!("wrote {path}");
}
