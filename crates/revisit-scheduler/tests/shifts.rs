//! `shifts_on`: a technician's shift blocks of one local date, as the search reads them (the
//! dispatcher's board shows these).

mod common;

use std::collections::HashMap;

use common::*;
use jiff::{civil::Date, tz::TimeZone};
use revisit_scheduler::{
    Policy, ShiftDef, ShiftException, Snapshot, Technician, Visit, WorkCenter, shifts_on,
};

const MON: &str = "2026-11-30";
const TUE: &str = "2026-12-01";

fn date(s: &str) -> Date {
    s.parse().unwrap()
}

fn paris() -> TimeZone {
    TimeZone::get("Europe/Paris").unwrap()
}

fn blocks(
    wcs: &[WorkCenter],
    t: &Technician,
    fallback: &TimeZone,
    on: &str,
) -> Vec<(String, String)> {
    let none: HashMap<String, Vec<Visit>> = HashMap::new();
    let snap = Snapshot {
        work_centers: wcs,
        technicians: std::slice::from_ref(t),
        visits: &none,
    };
    shifts_on(&snap, t, fallback, date(on))
        .into_iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

fn span(date: &str, from: &str, to: &str) -> (String, String) {
    (at(date, from).to_string(), at(date, to).to_string())
}

#[test]
fn shifts_are_read_in_the_zone_of_the_technicians_first_work_center() {
    let wcs = vec![work_center("CHI-N", Policy::default())];
    let t = tech("ann", near(0.0, 0.0));
    // Chicago's 08:00-18:00, not Paris's, whatever zone the caller falls back on.
    assert_eq!(
        blocks(&wcs, &t, &paris(), MON),
        [span(MON, "08:00", "18:00")]
    );
    // A first work center not in the set-up: the fallback zone (Paris, UTC+1 in winter).
    let mut away = t.clone();
    away.service_area_ids = vec!["LYON".into()];
    assert_eq!(
        blocks(&wcs, &away, &paris(), MON),
        [(
            "2026-11-30T07:00:00Z".to_string(),
            "2026-11-30T17:00:00Z".to_string()
        )]
    );
}

#[test]
fn weekdays_in_any_spelling_split_shifts_and_exceptions_are_honoured() {
    let wcs = vec![work_center("CHI-N", Policy::default())];
    let mut t = tech("ann", near(0.0, 0.0));
    t.shifts = vec![
        ShiftDef {
            days: days(&["monday", "TUESDAY"]),
            start: "13:00".into(),
            end: "17:00".into(),
        },
        ShiftDef {
            days: days(&["Mon", "tue"]),
            start: "08:00".into(),
            end: "12:00".into(),
        },
    ];
    t.exceptions = vec![ShiftException {
        date: TUE.into(),
        start: Some("10:00".into()),
        end: Some("14:00".into()),
    }];
    let chi = chicago();
    assert_eq!(
        blocks(&wcs, &t, &chi, MON),
        [span(MON, "08:00", "12:00"), span(MON, "13:00", "17:00")]
    );
    assert_eq!(blocks(&wcs, &t, &chi, TUE), [span(TUE, "10:00", "14:00")]);
    t.exceptions = vec![day_off(TUE)];
    assert!(blocks(&wcs, &t, &chi, TUE).is_empty());
    // Wednesday is in neither weekly shift.
    assert!(blocks(&wcs, &t, &chi, "2026-12-02").is_empty());
}
