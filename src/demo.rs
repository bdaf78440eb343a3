//! `serve --demo`: the demo entity, seeded idempotently (a restart adds nothing twice), and the
//! generator of scheduler data that the demo and the benchmarks share: a service company in
//! Chicago with three work centers and a fleet whose booked days are travel-feasible.

use jiff::{SignedDuration, Timestamp, ToSpan, civil::Date, tz::TimeZone};
use rand::{Rng, SeedableRng, rngs::StdRng};
use revisit_scheduler::{
    GeoPoint, OrderType, Policy, ShiftDef, Skill, Technician, Travel, WindowDef, WorkCenter,
    travel::GreatCircle,
};
use serde_json::{Value, json};

use crate::{
    auth::password,
    domain::{EntityId, Role, UserName, WorkOrderNum, time, workorder::WorkOrder},
    store::{SchedKind, Store},
};

pub const ENTITY: &str = "demo";
pub const TIME_ZONE: &str = "America/Chicago";

/// The demo users: `admin`, `dispatcher`, `tech01`..`tech40`; each password is the user name.
pub fn users() -> Vec<(String, Role)> {
    let mut v = vec![
        ("admin".to_string(), Role::Admin),
        ("dispatcher".to_string(), Role::Dispatcher),
    ];
    v.extend((1..=40).map(|i| (tech_name(i), Role::Technician)));
    v
}

pub(crate) fn tech_name(i: usize) -> String {
    format!("tech{i:02}")
}

/// How much data to generate.
#[derive(Debug, Clone, Copy)]
pub struct Size {
    pub technicians: usize,
    pub days: u32,
    /// Visits aimed at per technician-day (fewer when the day is full).
    pub visits_per_day: usize,
    pub seed: u64,
    /// Each technician-day's customers around one part of town, visited nearest first, as a
    /// dispatcher would plan them (the demo); otherwise anywhere in the work center's area, in
    /// random order (the benchmarks' data, which leaves a re-optimiser much to gain).
    pub planned_routes: bool,
}

impl Size {
    pub const DEMO: Size = Size {
        technicians: 40,
        days: 14,
        visits_per_day: 5,
        seed: 2026,
        planned_routes: true,
    };
}

pub struct Generated {
    pub work_centers: Vec<WorkCenter>,
    pub technicians: Vec<Technician>,
    pub order_types: Vec<OrderType>,
    pub orders: Vec<WorkOrder>,
}

fn days(list: &[&str]) -> Vec<String> {
    list.iter().map(|d| d.to_string()).collect()
}

const MON_SAT: [&str; 6] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];

fn demo_policy() -> Policy {
    let w = |s: &str, e: &str| WindowDef {
        days: days(&MON_SAT),
        start: s.into(),
        end: e.into(),
    };
    Policy {
        windows: vec![
            w("08:00", "12:00"),
            w("12:00", "16:00"),
            w("16:00", "20:00"),
        ],
        ..Policy::default()
    }
}

pub fn work_centers() -> Vec<WorkCenter> {
    let wc = |id: &str, name: &str, lat: f64, lon: f64| WorkCenter {
        service_area_id: id.into(),
        name: name.into(),
        time_zone: TIME_ZONE.into(),
        lat,
        lon,
        policy: demo_policy(),
    };
    vec![
        wc("CHI-N", "Chicago North Side (Lakeview)", 41.9484, -87.6553),
        wc("CHI-C", "Chicago Loop and West Side", 41.8781, -87.6298),
        wc("CHI-S", "Chicago South Side (Hyde Park)", 41.7943, -87.5907),
    ]
}

pub fn order_types() -> Vec<OrderType> {
    let ot = |code: &str, desc: &str, minutes: u32, skill: &str, level: u8| OrderType {
        order_type: code.into(),
        desc: desc.into(),
        duration_minutes: minutes,
        skills: vec![Skill {
            code: skill.into(),
            level,
        }],
    };
    vec![
        ot("MAINT", "Routine maintenance", 45, "GEN", 1),
        ot("REPAIR", "HVAC repair", 60, "HVAC", 1),
        ot("INSTALL", "HVAC installation", 120, "HVAC", 2),
        ot("PLUMB", "Plumbing repair", 90, "PLUMB", 1),
        ot("ELEC", "Electrical repair", 60, "ELEC", 1),
    ]
}

/// A point about `km` kilometres at most from `c`, uniformly over the disc.
pub fn near(rng: &mut StdRng, c: GeoPoint, km: f64) -> GeoPoint {
    let d = km * rng.r#gen::<f64>().sqrt();
    let a = rng.r#gen::<f64>() * std::f64::consts::TAU;
    GeoPoint {
        lat: c.lat + d * a.cos() / 111.0,
        lon: c.lon + d * a.sin() / (111.0 * c.lat.to_radians().cos()),
    }
}

fn at(date: Date, h: i8, m: i8, tz: &TimeZone) -> Timestamp {
    date.at(h, m, 0, 0)
        .to_zoned(tz.clone())
        .map(|z| z.timestamp())
        .unwrap_or(Timestamp::UNIX_EPOCH)
}

const STREETS: [&str; 8] = [
    "N Clark St",
    "W Belmont Ave",
    "S Halsted St",
    "W Madison St",
    "S Cottage Grove Ave",
    "N Broadway",
    "W Roosevelt Rd",
    "S Ashland Ave",
];

/// Generates the set-up and `days` days of booked visits from `today`, every technician-day
/// travel-feasible with each visit inside its promised window.
pub fn generate(size: Size, today: Date) -> Generated {
    let tz = TimeZone::get(TIME_ZONE).unwrap_or(TimeZone::UTC);
    let mut rng = StdRng::seed_from_u64(size.seed);
    let wcs = work_centers();
    let types = order_types();
    let travel = GreatCircle::from_policy(&wcs[0].policy);
    let mut techs = Vec::new();
    for i in 1..=size.technicians {
        let home_wc = &wcs[i % wcs.len()];
        let mut areas = vec![home_wc.service_area_id.clone()];
        if i % 7 == 0 {
            areas.push(wcs[(i + 1) % wcs.len()].service_area_id.clone());
        }
        let mut skills = vec![Skill {
            code: "GEN".into(),
            level: 1 + (i % 3) as u8,
        }];
        if i % 2 == 0 {
            skills.push(Skill {
                code: "HVAC".into(),
                level: 1 + (i % 3) as u8,
            });
        }
        if i % 3 == 0 {
            skills.push(Skill {
                code: "PLUMB".into(),
                level: 2,
            });
        }
        if i % 4 == 0 {
            skills.push(Skill {
                code: "ELEC".into(),
                level: 2,
            });
        }
        let weekdays: &[&str] = if i % 5 == 0 { &MON_SAT[..5] } else { &MON_SAT };
        techs.push(Technician {
            user_name: tech_name(i),
            name: format!("Technician {i:02}"),
            service_area_ids: areas,
            skills,
            home: near(&mut rng, home_wc.location(), 6.0),
            shifts: vec![ShiftDef {
                days: days(weekdays),
                start: "07:30".into(),
                end: "20:30".into(),
            }],
            exceptions: Vec::new(),
            active: true,
        });
    }
    let mut orders = Vec::new();
    // The first visit of every other technician's first working day (today, unless they are
    // off today) is Onsite: so `tech01` has an Onsite order to close whatever the weekday.
    let mut onsite_given = vec![false; techs.len()];
    for d in 0..size.days {
        let date = today.checked_add((d as i64).days()).unwrap_or(today);
        let weekday = date.weekday().to_monday_one_offset() as usize;
        for (ti, tech) in techs.iter().enumerate() {
            let day_name = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"][weekday - 1];
            if !tech
                .shifts
                .iter()
                .any(|sh| sh.days.iter().any(|d| d == day_name))
            {
                continue;
            }
            let wc = wcs
                .iter()
                .find(|w| w.service_area_id == tech.service_area_ids[0])
                .unwrap_or(&wcs[0]);
            let usable: Vec<&OrderType> = types
                .iter()
                .filter(|t| tech.has_skills(&t.skills))
                .collect();
            let shift_end = at(date, 20, 30, &tz);
            let mut here = tech.home;
            let mut t = at(date, 7, 30, &tz);
            // Planned routes: the day's customers live around a point of the technician's side
            // of town, visited nearest first (not criss-crossing the city).
            let center = GeoPoint {
                lat: (tech.home.lat + wc.location().lat) / 2.0,
                lon: (tech.home.lon + wc.location().lon) / 2.0,
            };
            let mut places: Vec<GeoPoint> = if size.planned_routes {
                (0..size.visits_per_day)
                    .map(|_| near(&mut rng, center, 4.0))
                    .collect()
            } else {
                Vec::new()
            };
            for k in 0..size.visits_per_day {
                let place = if size.planned_routes {
                    let next = (0..places.len())
                        .min_by_key(|&i| travel.minutes(here, places[i]))
                        .unwrap_or(0);
                    places.swap_remove(next)
                } else {
                    near(&mut rng, wc.location(), 9.0)
                };
                let ty = usable[rng.gen_range(0..usable.len())];
                let drive = SignedDuration::from_mins(i64::from(travel.minutes(here, place)));
                let mut arrival = t + drive;
                // Round up to five minutes, and never before the first window.
                let secs = arrival.as_second();
                arrival = Timestamp::from_second(secs + (300 - secs.rem_euclid(300)) % 300)
                    .unwrap_or(arrival);
                arrival = arrival.max(at(date, 8, 0, &tz));
                let window = [(8, 12), (12, 16), (16, 20)]
                    .into_iter()
                    .map(|(a, b)| (at(date, a, 0, &tz), at(date, b, 0, &tz)))
                    .find(|(a, b)| *a <= arrival && arrival < *b);
                let Some((ws, we)) = window else { break };
                let end = arrival + SignedDuration::from_mins(i64::from(ty.duration_minutes));
                let home_by =
                    end + SignedDuration::from_mins(i64::from(travel.minutes(place, tech.home)));
                if home_by > shift_end {
                    break;
                }
                let status = if k == 0 && ti % 2 == 0 && !onsite_given[ti] {
                    onsite_given[ti] = true;
                    7
                } else {
                    1
                };
                let num = format!(
                    "DEMO-{}-{}-{}",
                    date.strftime("%Y%m%d"),
                    tech.user_name,
                    k + 1
                );
                let body = json!({
                    "OrderNum": num,
                    "OrderType": ty.order_type,
                    "OrderStatus": status,
                    "DispatchStatus": 3,
                    "UserName": tech.user_name,
                    "PlannedStartDate": time::format(arrival),
                    "PlannedEndDate": time::format(end),
                    "PlannedDur": ty.duration_minutes,
                    "Description": ty.desc,
                    "TimeConstraints": [{
                        "ID": revisit_scheduler::offer_id(&wc.service_area_id, &revisit_scheduler::Window { start: ws, end: we }),
                        "Desc": revisit_scheduler::describe(&revisit_scheduler::Window { start: ws, end: we }, &tz),
                        "Type": "1001",
                        "Period": {"Start": time::format(ws), "End": time::format(we)},
                    }],
                    "Account": {"AccountNum": format!("ACCT-{}-{}", ti + 1, k + 1), "AccountType": "1002",
                                "Name": format!("Customer {} of {}", k + 1, tech.user_name)},
                    "Location": {
                        "LocationNum": format!("LOC-{}", num),
                        "Name": format!("Residence {}", k + 1),
                        "ServiceAreaID": wc.service_area_id,
                        "Address": {
                            "AddrLine1": format!("{} {}", 100 + rng.gen_range(0..4800), STREETS[rng.gen_range(0..STREETS.len())]),
                            "City": "Chicago", "Region": "IL", "Country": "US",
                            "Lat": format!("{:.6}", place.lat), "Lon": format!("{:.6}", place.lon),
                        },
                    },
                });
                if let (Ok(n), Value::Object(m)) = (WorkOrderNum::parse(&num), body)
                    && let Ok(o) = WorkOrder::parse(&n, m)
                {
                    orders.push(o);
                }
                here = place;
                // Leave some slack between visits, so a day has room for a follow-up.
                t = end + SignedDuration::from_mins(rng.gen_range(0..50));
            }
        }
    }
    Generated {
        work_centers: wcs,
        technicians: techs,
        order_types: types,
        orders,
    }
}

/// Stores the generated set-up and visits in `entity`, in one transaction: all or nothing.
pub async fn store_generated(
    store: &Store,
    entity: &EntityId,
    g: &Generated,
) -> anyhow::Result<()> {
    let mut objects = Vec::new();
    for w in &g.work_centers {
        objects.push((
            SchedKind::WorkCenters,
            w.service_area_id.clone(),
            serde_json::to_value(w)?,
        ));
    }
    for t in &g.technicians {
        objects.push((
            SchedKind::Technicians,
            t.user_name.clone(),
            serde_json::to_value(t)?,
        ));
    }
    for t in &g.order_types {
        objects.push((
            SchedKind::OrderTypes,
            t.order_type.clone(),
            serde_json::to_value(t)?,
        ));
    }
    store.import_setup(entity, &objects, &g.orders).await?;
    Ok(())
}

pub async fn seed(store: &Store) -> anyhow::Result<()> {
    let entity = EntityId::parse(ENTITY).map_err(anyhow::Error::msg)?;
    store.ensure_entity(&entity).await?;
    let mut created = 0;
    for (name, role) in users() {
        if store.find_user(&name).await?.is_some() {
            continue;
        }
        let n = name.clone();
        let hash = password::hash_blocking(n).await?;
        store
            .add_user(
                &entity,
                &UserName::parse(&name).map_err(anyhow::Error::msg)?,
                role,
                &hash,
            )
            .await?;
        created += 1;
    }
    // The configuration is set once; an admin's later changes are kept across restarts.
    store
        .update_config(
            &entity,
            Box::new(|current| {
                if !current.is_empty() {
                    return Ok(current);
                }
                let cfg = json!({
                    "RestApi": {"SearchAppts": "builtin:", "BookJob": "builtin:"},
                    "WorkOrderRules": {"Default": {"CanScheduleFollowup": true}},
                });
                Ok(cfg.as_object().cloned().unwrap_or_default())
            }),
        )
        .await?;
    // The scheduler's data is generated once, the first time, and written in one transaction:
    // its presence marks it done, and a crash while it is written leaves none of it. (Users and
    // the configuration before it are each checked and written on their own, so a restart
    // completes what a crash left.)
    let seeded = !store
        .list_sched(&entity, SchedKind::WorkCenters)
        .await?
        .is_empty();
    let mut visits = 0;
    if !seeded {
        let tz = TimeZone::get(TIME_ZONE)?;
        let today = Timestamp::now().to_zoned(tz).date();
        let g = generate(Size::DEMO, today);
        visits = g.orders.len();
        store_generated(store, &entity, &g).await?;
    }
    tracing::info!(
        entity = ENTITY,
        users_created = created,
        visits_created = visits,
        "demo data ready"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::schedule::builtin::{Setup, visits_by_tech};
    use crate::store::VisitRow;

    #[test]
    fn generated_days_are_travel_feasible_and_keep_every_promised_window() {
        let g = generate(Size::DEMO, Date::constant(2026, 11, 30));
        assert!(
            g.orders.len() > 40 * 10 * 4,
            "only {} visits",
            g.orders.len()
        );
        let setup = Setup {
            work_centers: g.work_centers.clone(),
            technicians: g.technicians.clone(),
            order_types: g
                .order_types
                .iter()
                .map(|t| (t.order_type.clone(), t.clone()))
                .collect::<HashMap<_, _>>(),
        };
        let rows: Vec<VisitRow> = g
            .orders
            .iter()
            .map(|o| {
                let ix = o.indexed();
                VisitRow {
                    order_num: o.order_num().to_string(),
                    user_name: ix.user_name.unwrap(),
                    order_type: ix.order_type,
                    start_ms: ix.planned_start.unwrap().as_millis(),
                    busy_end_ms: ix.busy_end.map(|t| t.as_millis()),
                    lat: ix.lat,
                    lon: ix.lon,
                    window_start_ms: ix.window.map(|w| w.0.as_millis()),
                    window_end_ms: ix.window.map(|w| w.1.as_millis()),
                    order_status: ix.order_status,
                    service_area_id: ix.service_area_id,
                    pinned: ix.pinned,
                }
            })
            .collect();
        let tz = TimeZone::get(TIME_ZONE).unwrap();
        let travel = GreatCircle::from_policy(&g.work_centers[0].policy);
        for (tech, visits) in visits_by_tech(&setup, rows) {
            let t = g.technicians.iter().find(|t| t.user_name == tech).unwrap();
            revisit_scheduler::check_day(t, &tz, &visits, &travel).unwrap();
            revisit_scheduler::check_shift_bounds(t, &tz, &visits, &travel).unwrap();
        }
    }
}
