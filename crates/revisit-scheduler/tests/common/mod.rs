//! Fixtures shared by the integration tests: a Chicago work center and helpers for local times.
#![allow(dead_code)]

use std::collections::HashMap;

use jiff::Timestamp;
use jiff::civil::Date;
use jiff::tz::TimeZone;
use revisit_scheduler::{
    GeoPoint, Job, Policy, ShiftDef, ShiftException, Skill, Technician, Visit, Window, WindowDef,
    WorkCenter,
};

pub const CHI: &str = "America/Chicago";

pub fn chicago() -> TimeZone {
    TimeZone::get(CHI).unwrap()
}

/// A Chicago local date and "HH:MM" as an instant.
pub fn at(date: &str, hhmm: &str) -> Timestamp {
    let d: Date = date.parse().unwrap();
    let (h, m) = hhmm.split_once(':').unwrap();
    let dt = d.at(h.parse().unwrap(), m.parse().unwrap(), 0, 0);
    chicago().to_ambiguous_timestamp(dt).compatible().unwrap()
}

pub fn utc(s: &str) -> Timestamp {
    s.parse().unwrap()
}

pub fn win(date: &str, from: &str, to: &str) -> Window {
    Window {
        start: at(date, from),
        end: at(date, to),
    }
}

pub fn point(lat: f64, lon: f64) -> GeoPoint {
    GeoPoint { lat, lon }
}

/// Chicago North's office; other places are given relative to it in kilometres (approximately).
pub fn near(km_north: f64, km_east: f64) -> GeoPoint {
    point(41.90 + km_north / 111.2, -87.70 + km_east / 82.9)
}

pub const ALL_DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
pub const WEEKDAYS: [&str; 5] = ["Mon", "Tue", "Wed", "Thu", "Fri"];

pub fn days(d: &[&str]) -> Vec<String> {
    d.iter().map(|s| s.to_string()).collect()
}

pub fn work_center(id: &str, policy: Policy) -> WorkCenter {
    WorkCenter {
        service_area_id: id.into(),
        name: format!("{id} office"),
        time_zone: CHI.into(),
        lat: 41.90,
        lon: -87.70,
        policy,
    }
}

pub fn window_def(d: &[&str], start: &str, end: &str) -> WindowDef {
    WindowDef {
        days: days(d),
        start: start.into(),
        end: end.into(),
    }
}

pub fn skill(code: &str, level: u8) -> Skill {
    Skill {
        code: code.into(),
        level,
    }
}

/// A technician of CHI-N working 08:00-18:00 Monday to Friday, HVAC level 2.
pub fn tech(user: &str, home: GeoPoint) -> Technician {
    Technician {
        user_name: user.into(),
        name: user.to_uppercase(),
        service_area_ids: vec!["CHI-N".into()],
        skills: vec![skill("HVAC", 2)],
        home,
        shifts: vec![ShiftDef {
            days: days(&WEEKDAYS),
            start: "08:00".into(),
            end: "18:00".into(),
        }],
        exceptions: vec![],
        active: true,
    }
}

pub fn day_off(date: &str) -> ShiftException {
    ShiftException {
        date: date.into(),
        start: None,
        end: None,
    }
}

pub fn job(location: GeoPoint, minutes: u32) -> Job {
    Job {
        duration_minutes: minutes,
        skills: vec![skill("HVAC", 1)],
        location,
        service_area_id: Some("CHI-N".into()),
        preferred_tech: None,
        customer: vec![],
        required_parts: vec![],
    }
}

pub fn visit(
    order: &str,
    start: Timestamp,
    minutes: i64,
    location: GeoPoint,
    window: Window,
) -> Visit {
    Visit {
        order_num: order.into(),
        start,
        end: start + jiff::SignedDuration::from_mins(minutes),
        location: Some(location),
        window,
    }
}

pub fn visits(list: Vec<(&str, Vec<Visit>)>) -> HashMap<String, Vec<Visit>> {
    list.into_iter().map(|(u, v)| (u.to_string(), v)).collect()
}
