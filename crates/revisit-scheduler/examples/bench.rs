//! Search latency on generated data. Run with:
//!
//! ```text
//! CARGO_TARGET_DIR=/tmp/sched-target cargo run --release -p revisit-scheduler --example bench
//! ```
//!
//! Each scenario builds technicians with ~6 booked visits per working day over the horizon and
//! times `search` (and `plan` of the first offer) for random jobs, printing p50/p99/max.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use revisit_scheduler::{
    GeoPoint, Job, Policy, ShiftDef, Skill, Snapshot, Technician, Visit, Window, WorkCenter, plan,
    search,
};

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
    fn n(&mut self, below: u64) -> u64 {
        self.next() % below
    }
}

fn around(rng: &mut Rng, c: (f64, f64), km: f64) -> GeoPoint {
    GeoPoint {
        lat: c.0 + rng.f(-km, km) / 111.2,
        lon: c.1 + rng.f(-km, km) / 82.9,
    }
}

struct Scenario {
    name: &'static str,
    techs: usize,
    work_centers: usize,
    days: u32,
}

fn run(s: &Scenario) {
    let tz = TimeZone::get("America/Chicago").unwrap();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let centers: Vec<(f64, f64)> = (0..s.work_centers)
        .map(|i| (41.6 + 0.3 * i as f64, -87.7))
        .collect();
    let policy = Policy {
        horizon_days: s.days,
        ..Policy::default()
    };
    let wcs: Vec<WorkCenter> = centers
        .iter()
        .enumerate()
        .map(|(i, c)| WorkCenter {
            service_area_id: format!("WC{i}"),
            name: format!("Center {i}"),
            time_zone: "America/Chicago".into(),
            lat: c.0,
            lon: c.1,
            policy: policy.clone(),
        })
        .collect();
    let now: Timestamp = "2026-11-30T12:00:00Z".parse().unwrap(); // Mon 06:00 CST
    let today = tz.to_datetime(now).date();
    let mut techs = Vec::new();
    let mut visits: HashMap<String, Vec<Visit>> = HashMap::new();
    let mut order = 0u64;
    for t in 0..s.techs {
        let wc = t % s.work_centers;
        let user = format!("tech{t}");
        techs.push(Technician {
            user_name: user.clone(),
            name: user.clone(),
            service_area_ids: vec![format!("WC{wc}")],
            skills: vec![Skill {
                code: "HVAC".into(),
                level: 1 + (t % 3) as u8,
            }],
            home: around(&mut rng, centers[wc], 15.0),
            shifts: vec![ShiftDef {
                days: ["Mon", "Tue", "Wed", "Thu", "Fri"]
                    .map(String::from)
                    .to_vec(),
                start: "08:00".into(),
                end: "18:00".into(),
            }],
            exceptions: vec![],
            active: true,
        });
        let mut list = Vec::new();
        let mut date = today;
        for _ in 0..s.days {
            if date.weekday().to_monday_zero_offset() < 5 {
                for k in 0..6 {
                    let minute = 8 * 60 + 30 + k * 90 + rng.n(4) as i64 * 5;
                    let start = tz
                        .to_ambiguous_timestamp(date.at(
                            (minute / 60) as i8,
                            (minute % 60) as i8,
                            0,
                            0,
                        ))
                        .compatible()
                        .unwrap();
                    order += 1;
                    list.push(Visit {
                        order_num: format!("WO{order}"),
                        start,
                        end: start + SignedDuration::from_mins(45),
                        location: Some(around(&mut rng, centers[wc], 8.0)),
                        window: Window {
                            start: start - SignedDuration::from_mins(60),
                            end: start + SignedDuration::from_mins(30 + rng.n(4) as i64 * 15),
                        },
                    });
                }
            }
            date = date.tomorrow().unwrap();
        }
        visits.insert(user, list);
    }
    let snap = Snapshot {
        work_centers: &wcs,
        technicians: &techs,
        visits: &visits,
    };
    let (mut times, mut plan_times, mut offers) = (Vec::new(), Vec::new(), 0usize);
    for i in 0..300 {
        let wc = i % s.work_centers;
        let job = Job {
            duration_minutes: 30 + 15 * rng.n(5) as u32,
            skills: vec![Skill {
                code: "HVAC".into(),
                level: 1 + rng.n(2) as u8,
            }],
            location: around(&mut rng, centers[wc], 10.0),
            service_area_id: Some(format!("WC{wc}")),
            preferred_tech: Some(format!("tech{}", rng.n(s.techs as u64))),
            customer: vec![],
            required_parts: vec![],
        };
        let t0 = Instant::now();
        let out = search(&snap, &job, now);
        times.push(t0.elapsed());
        offers += out.offers.len();
        if let Some(o) = out.offers.first() {
            let t0 = Instant::now();
            plan(&snap, &job, o.window, now).expect("an offered window is plannable");
            plan_times.push(t0.elapsed());
        }
    }
    let pct = |v: &mut Vec<Duration>, p: f64| {
        v.sort();
        v[((v.len() - 1) as f64 * p) as usize]
    };
    println!(
        "{:<44} search p50 {:>9.3?} p99 {:>9.3?} max {:>9.3?} | plan p50 {:>9.3?} | {:.1} offers/search",
        s.name,
        pct(&mut times, 0.5),
        pct(&mut times, 0.99),
        pct(&mut times, 1.0),
        pct(&mut plan_times, 0.5),
        offers as f64 / 300.0
    );
}

fn main() {
    for s in [
        Scenario {
            name: "50 techs, 1 center, 14 days, 6 visits/day",
            techs: 50,
            work_centers: 1,
            days: 14,
        },
        Scenario {
            name: "500 techs, 3 centers (~170 each), 28 days",
            techs: 500,
            work_centers: 3,
            days: 28,
        },
        Scenario {
            name: "500 techs, 1 center, 28 days",
            techs: 500,
            work_centers: 1,
            days: 28,
        },
    ] {
        run(&s);
    }
}
