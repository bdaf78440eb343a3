//! The technicians' visits as a client sees them (work orders read over HTTP), and the check that
//! no technician is double-booked.
//!
//! The visits are derived here from the work orders' wire form, following the scheduler's
//! specification (which open order is a visit, how long it lasts, which window was promised),
//! not by the server's own code: the check does not share the reading it checks.

use std::collections::HashMap;

use jiff::{Timestamp, tz::TimeZone};
use revisit_scheduler::{self as sched, GeoPoint, GreatCircle, Visit, Window};
use serde_json::Value;

use crate::harness::Setup;

/// Every status of an open order (all but Rejected 1001, Closed Complete 4096 and Closed
/// Incomplete 4097), as the list's `OrderStatus` filter: the orders that can be visits.
pub(crate) const OPEN_STATUSES: &str = "1,6,7,8,9";

/// Minutes a visit lasts when neither its times, `PlannedDur` nor its order type say (the
/// built-in scheduler's default).
const DEFAULT_DURATION_MINUTES: i64 = 60;

fn time(v: &Value) -> Option<Timestamp> {
    v.as_str()?.parse().ok()
}

fn coordinate(v: &Value) -> Option<f64> {
    match v {
        Value::String(s) => s.trim().parse().ok(),
        Value::Number(n) => n.as_f64(),
        _ => None,
    }
}

/// The visit an open work order is, with its technician: `None` without a `UserName` or a
/// `PlannedStartDate`. Its length comes from `PlannedEndDate`, else `PlannedDur`, else its order
/// type; its promised window is its `TimeConstraints` item of type 1001, else its planned start
/// alone (an arrival outside the promised window is kept as it is, so the check reports it).
pub(crate) fn visit_of(setup: &Setup, order: &Value) -> Option<(String, Visit)> {
    let tech = order["UserName"].as_str().filter(|s| !s.is_empty())?;
    let start = time(&order["PlannedStartDate"])?;
    let minutes = order["PlannedDur"]
        .as_i64()
        .filter(|m| *m > 0)
        .or_else(|| {
            let t = setup.order_types.get(order["OrderType"].as_str()?)?;
            Some(i64::from(t.duration_minutes))
        })
        .unwrap_or(DEFAULT_DURATION_MINUTES);
    let end = time(&order["PlannedEndDate"])
        .filter(|e| *e > start)
        .unwrap_or_else(|| start + jiff::SignedDuration::from_mins(minutes));
    let window = order["TimeConstraints"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|tc| tc["Type"] == "1001")
        .and_then(|tc| {
            Some(Window {
                start: time(&tc["Period"]["Start"])?,
                end: time(&tc["Period"]["End"])?,
            })
        })
        .unwrap_or(Window { start, end: start });
    let address = &order["Location"]["Address"];
    let location = match (coordinate(&address["Lat"]), coordinate(&address["Lon"])) {
        (Some(lat), Some(lon)) => Some(GeoPoint { lat, lon }),
        _ => None,
    };
    Some((
        tech.to_string(),
        Visit {
            order_num: order["OrderNum"].as_str().unwrap_or_default().to_string(),
            start,
            end,
            location,
            window,
        },
    ))
}

/// The visits per technician, gathered order by order.
#[derive(Default)]
pub(crate) struct VisitsByTech(HashMap<String, Vec<Visit>>);

impl VisitsByTech {
    /// Adds `order` if it is a visit.
    pub(crate) fn add(&mut self, setup: &Setup, order: &Value) {
        if let Some((tech, v)) = visit_of(setup, order) {
            self.0.entry(tech).or_default().push(v);
        }
    }

    /// Each technician's visits, sorted by start.
    pub(crate) fn sorted(mut self) -> HashMap<String, Vec<Visit>> {
        for v in self.0.values_mut() {
            v.sort_by_key(|x| x.start);
        }
        self.0
    }
}

/// What the double-booking check found.
pub(crate) struct DayCheck {
    pub(crate) technicians: usize,
    /// Pairs of consecutive visits of one technician that overlap.
    pub(crate) overlaps: usize,
    /// Technicians whose days break `revisit_scheduler::check_day` (travel between visits,
    /// arrivals inside promised windows), with the reason; a technician unknown to the set-up
    /// is one too.
    pub(crate) day_failures: Vec<String>,
    /// Technicians with a visit outside their shift (`check_shift_bounds`).
    pub(crate) shift_failures: usize,
}

pub(crate) fn check_days(setup: &Setup, visits: &HashMap<String, Vec<Visit>>) -> DayCheck {
    let mut c = DayCheck {
        technicians: visits.len(),
        overlaps: 0,
        day_failures: Vec::new(),
        shift_failures: 0,
    };
    for (tech, visits) in visits {
        c.overlaps += visits.windows(2).filter(|p| p[1].start < p[0].end).count();
        let Some(t) = setup.technicians.iter().find(|t| &t.user_name == tech) else {
            c.day_failures
                .push(format!("{tech}: not a technician of the set-up"));
            continue;
        };
        let Some(wc) = t
            .service_area_ids
            .first()
            .and_then(|id| setup.work_center(id))
        else {
            c.day_failures
                .push(format!("{tech}: no work center of the set-up"));
            continue;
        };
        let tz = TimeZone::get(&wc.time_zone).unwrap_or(TimeZone::UTC);
        let travel = GreatCircle::from_policy(&wc.policy);
        if let Err(e) = sched::check_day(t, &tz, visits, &travel) {
            c.day_failures.push(format!("{tech}: {e}"));
        }
        if sched::check_shift_bounds(t, &tz, visits, &travel).is_err() {
            c.shift_failures += 1;
        }
    }
    c.day_failures.sort();
    c
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn visits_by_tech(setup: &Setup, orders: &[Value]) -> HashMap<String, Vec<Visit>> {
        let mut v = VisitsByTech::default();
        for o in orders {
            v.add(setup, o);
        }
        v.sorted()
    }

    fn setup() -> Setup {
        Setup {
            work_centers: Vec::new(),
            technicians: Vec::new(),
            order_types: revisit::demo::order_types()
                .into_iter()
                .map(|t| (t.order_type.clone(), t))
                .collect(),
        }
    }

    #[test]
    fn an_order_is_a_visit_only_with_a_technician_and_a_planned_start() {
        let s = setup();
        assert!(visit_of(&s, &json!({"OrderNum": "A", "UserName": "t1"})).is_none());
        assert!(
            visit_of(
                &s,
                &json!({"OrderNum": "A", "PlannedStartDate": "2026-12-01T14:00:00.000Z"})
            )
            .is_none()
        );
    }

    #[test]
    fn a_visit_lasts_until_its_planned_end_else_its_duration_else_its_type() {
        let s = setup();
        let start = "2026-12-01T14:00:00.000Z";
        let at = |t: &str| t.parse::<Timestamp>().unwrap();
        let (tech, v) = visit_of(
            &s,
            &json!({"OrderNum": "A", "UserName": "t1", "PlannedStartDate": start,
                    "PlannedEndDate": "2026-12-01T14:30:00.000Z", "PlannedDur": 90, "OrderType": "MAINT",
                    "TimeConstraints": [{"Type": "1002", "Period": {"Start": "2026-12-01T08:00:00Z", "End": "2026-12-01T20:00:00Z"}},
                                        {"Type": "1001", "Period": {"Start": "2026-12-01T12:00:00Z", "End": "2026-12-01T16:00:00Z"}}],
                    "Location": {"Address": {"Lat": "41.88", "Lon": -87.63}}}),
        )
        .unwrap();
        assert_eq!(tech, "t1");
        assert_eq!(v.end, at("2026-12-01T14:30:00Z"));
        assert_eq!(v.window.start, at("2026-12-01T12:00:00Z"));
        assert_eq!(v.window.end, at("2026-12-01T16:00:00Z"));
        assert_eq!(v.location.map(|p| (p.lat, p.lon)), Some((41.88, -87.63)));
        let (_, v) = visit_of(
            &s,
            &json!({"UserName": "t1", "PlannedStartDate": start, "PlannedDur": 90, "OrderType": "MAINT"}),
        )
        .unwrap();
        assert_eq!(v.end, at("2026-12-01T15:30:00Z"));
        assert_eq!((v.window.start, v.window.end), (v.start, v.start));
        assert!(v.location.is_none());
        let (_, v) = visit_of(
            &s,
            &json!({"UserName": "t1", "PlannedStartDate": start, "OrderType": "MAINT"}),
        )
        .unwrap();
        assert_eq!(v.end, at("2026-12-01T14:45:00Z"));
    }

    #[test]
    fn overlapping_visits_and_broken_promises_are_found() {
        let g = revisit::demo::generate(
            revisit::demo::Size {
                technicians: 3,
                days: 1,
                visits_per_day: 0,
                seed: 1,
                planned_routes: false,
            },
            jiff::civil::Date::constant(2026, 12, 1),
        );
        let s = Setup {
            work_centers: g.work_centers,
            technicians: g.technicians,
            order_types: setup().order_types,
        };
        let tech = s.technicians[0].user_name.clone();
        let order = |num: &str, start: &str, end: &str, window: (&str, &str)| {
            json!({"OrderNum": num, "UserName": tech, "PlannedStartDate": start, "PlannedEndDate": end,
                   "TimeConstraints": [{"Type": "1001", "Period": {"Start": window.0, "End": window.1}}]})
        };
        let morning = ("2026-12-01T14:00:00Z", "2026-12-01T18:00:00Z");
        let fine = [
            order("A", "2026-12-01T14:00:00Z", "2026-12-01T14:45:00Z", morning),
            order("B", "2026-12-01T16:00:00Z", "2026-12-01T16:45:00Z", morning),
        ];
        let c = check_days(&s, &visits_by_tech(&s, &fine));
        assert_eq!(
            (c.overlaps, c.day_failures.len()),
            (0, 0),
            "{:?}",
            c.day_failures
        );
        let overlapping = [
            order("A", "2026-12-01T14:00:00Z", "2026-12-01T14:45:00Z", morning),
            order("B", "2026-12-01T14:30:00Z", "2026-12-01T15:15:00Z", morning),
        ];
        let c = check_days(&s, &visits_by_tech(&s, &overlapping));
        assert_eq!(c.overlaps, 1);
        assert_eq!(c.day_failures.len(), 1);
        let outside = [order(
            "A",
            "2026-12-01T19:00:00Z",
            "2026-12-01T19:45:00Z",
            morning,
        )];
        let c = check_days(&s, &visits_by_tech(&s, &outside));
        assert_eq!((c.overlaps, c.day_failures.len()), (0, 1));
    }
}
