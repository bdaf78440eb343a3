//! Wire types of the scheduler's configuration: work centers, technicians and order types.
//!
//! These structs are used as-is as the admin JSON bodies under `/scheduling/v1/`, hence the
//! PascalCase property names. Every policy field has a default so an admin can send only what
//! differs. Nothing here is trusted until `validate` has passed: the search treats a value it cannot
//! parse as "not offered" rather than panicking, but it cannot guess what the admin meant.

use jiff::civil::{Date, Weekday};
use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};

/// A point on the earth, in degrees (WGS 84).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GeoPoint {
    pub lat: f64,
    pub lon: f64,
}

/// A skill a technician has (`level` = how good) or a job needs (`level` = minimum).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Skill {
    pub code: String,
    pub level: u8,
}

/// Local-time arrival windows offered on the given weekdays (`"Mon"` .. `"Sun"`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct WindowDef {
    pub days: Vec<String>,
    /// `"HH:MM"`, local time of the work center.
    pub start: String,
    /// `"HH:MM"`, after `start` on the same day.
    pub end: String,
}

/// How slot search orders the offers it returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum OfferOrder {
    /// By window start (the default).
    #[default]
    Chronological,
    /// Cheapest first (the grading cost: added travel and penalties), then by window start: the
    /// customer who takes the first offer books the window that costs least.
    Cost,
}

/// A work center's arrival-window policy (docs/scheduler.md §2–§4; the offer order, best offers and
/// freeze horizon: `REOPTIMISE.md`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Policy {
    pub windows: Vec<WindowDef>,
    pub horizon_days: u32,
    pub min_lead_minutes: u32,
    pub max_slots: usize,
    pub road_factor: f64,
    pub speed_kmh: f64,
    pub parts_buffer_minutes: u32,
    pub parts_default_lead_days: u32,
    pub non_original_penalty_minutes: f64,
    pub per_day_penalty_minutes: f64,
    /// The order of the offers (default chronological).
    pub offer_order: OfferOrder,
    /// How many of the cheapest offers are flagged `best`.
    pub best_offers: usize,
    /// Re-optimisation leaves alone visits starting within this many minutes from now, and moves
    /// no visit to start before then.
    pub freeze_minutes: u32,
}

impl Default for Policy {
    fn default() -> Self {
        let weekdays: Vec<String> = ["Mon", "Tue", "Wed", "Thu", "Fri"]
            .iter()
            .map(|d| d.to_string())
            .collect();
        let window = |start: &str, end: &str| WindowDef {
            days: weekdays.clone(),
            start: start.to_string(),
            end: end.to_string(),
        };
        Policy {
            windows: vec![
                window("08:00", "12:00"),
                window("12:00", "16:00"),
                window("16:00", "20:00"),
            ],
            horizon_days: 14,
            min_lead_minutes: 120,
            max_slots: 10,
            road_factor: 1.3,
            speed_kmh: 40.0,
            parts_buffer_minutes: 120,
            parts_default_lead_days: 2,
            non_original_penalty_minutes: 30.0,
            per_day_penalty_minutes: 5.0,
            offer_order: OfferOrder::Chronological,
            best_offers: 3,
            freeze_minutes: 120,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct WorkCenter {
    #[serde(rename = "ServiceAreaID")]
    pub service_area_id: String,
    pub name: String,
    /// IANA time zone name, e.g. `America/Chicago`.
    pub time_zone: String,
    pub lat: f64,
    pub lon: f64,
    #[serde(default)]
    pub policy: Policy,
}

impl WorkCenter {
    pub fn location(&self) -> GeoPoint {
        GeoPoint {
            lat: self.lat,
            lon: self.lon,
        }
    }
}

/// A weekly shift in the local time of the technician's first work center.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ShiftDef {
    pub days: Vec<String>,
    pub start: String,
    pub end: String,
}

/// A dated change to the weekly pattern: no `start`/`end` = day off; both = that day's only shift.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ShiftException {
    /// `"YYYY-MM-DD"`, local date.
    pub date: String,
    #[serde(default)]
    pub start: Option<String>,
    #[serde(default)]
    pub end: Option<String>,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Technician {
    pub user_name: String,
    pub name: String,
    #[serde(rename = "ServiceAreaIDs")]
    pub service_area_ids: Vec<String>,
    pub skills: Vec<Skill>,
    /// Each working day's route starts and ends here.
    pub home: GeoPoint,
    pub shifts: Vec<ShiftDef>,
    #[serde(default)]
    pub exceptions: Vec<ShiftException>,
    #[serde(default = "yes")]
    pub active: bool,
}

impl Technician {
    /// True when the technician has every `required` skill at or above its level.
    pub fn has_skills(&self, required: &[Skill]) -> bool {
        required.iter().all(|need| {
            self.skills
                .iter()
                .any(|have| have.code == need.code && have.level >= need.level)
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct OrderType {
    pub order_type: String,
    pub desc: String,
    pub duration_minutes: u32,
    pub skills: Vec<Skill>,
}

/// One reason a configuration object is rejected, located by a JSON path (`$.Policy.Windows[0].Start`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Invalid {
    pub path: String,
    pub reason: String,
}

// ---------------------------------------------------------------------------------------------
// Parsing helpers shared with the search. They never panic; `None` means "not valid".

/// Parses `"HH:MM"` (00:00 to 23:59) into minutes after local midnight.
pub(crate) fn parse_hhmm(s: &str) -> Option<u16> {
    let b = s.as_bytes();
    if b.len() != 5 || b[2] != b':' {
        return None;
    }
    let digit = |c: u8| c.is_ascii_digit().then(|| u16::from(c - b'0'));
    let h = digit(b[0])? * 10 + digit(b[1])?;
    let m = digit(b[3])? * 10 + digit(b[4])?;
    (h < 24 && m < 60).then_some(h * 60 + m)
}

/// Parses a weekday name: `"Mon"` .. `"Sun"` or the full English name, case-insensitively.
pub(crate) fn parse_weekday(s: &str) -> Option<Weekday> {
    const NAMES: [(&str, &str, Weekday); 7] = [
        ("mon", "monday", Weekday::Monday),
        ("tue", "tuesday", Weekday::Tuesday),
        ("wed", "wednesday", Weekday::Wednesday),
        ("thu", "thursday", Weekday::Thursday),
        ("fri", "friday", Weekday::Friday),
        ("sat", "saturday", Weekday::Saturday),
        ("sun", "sunday", Weekday::Sunday),
    ];
    NAMES
        .iter()
        .find(|(short, long, _)| s.eq_ignore_ascii_case(short) || s.eq_ignore_ascii_case(long))
        .map(|(_, _, day)| *day)
}

/// Bit set of weekdays, bit 0 = Monday. Unknown names are ignored (validation reports them).
pub(crate) fn weekday_mask(days: &[String]) -> u8 {
    days.iter()
        .filter_map(|d| parse_weekday(d))
        .fold(0, |mask, d| mask | 1 << d.to_monday_zero_offset())
}

pub(crate) fn parse_date(s: &str) -> Option<Date> {
    // jiff accepts more than `YYYY-MM-DD` (e.g. a datetime); the wire format is the date alone.
    if s.len() != 10 {
        return None;
    }
    s.parse::<Date>().ok()
}

// ---------------------------------------------------------------------------------------------
// Validation

#[derive(Default)]
struct Report(Vec<Invalid>);

impl Report {
    fn add(&mut self, path: impl Into<String>, reason: impl Into<String>) {
        self.0.push(Invalid {
            path: path.into(),
            reason: reason.into(),
        });
    }

    fn non_empty(&mut self, path: &str, value: &str) {
        if value.trim().is_empty() {
            self.add(path, "must not be empty");
        }
    }

    fn latitude(&mut self, path: &str, lat: f64) {
        if !lat.is_finite() || !(-90.0..=90.0).contains(&lat) {
            self.add(path, "latitude must be a number from -90 to 90");
        }
    }

    fn longitude(&mut self, path: &str, lon: f64) {
        if !lon.is_finite() || !(-180.0..=180.0).contains(&lon) {
            self.add(path, "longitude must be a number from -180 to 180");
        }
    }

    fn days(&mut self, path: &str, days: &[String]) {
        if days.is_empty() {
            self.add(path, "must name at least one weekday");
        }
        for (i, d) in days.iter().enumerate() {
            if parse_weekday(d).is_none() {
                self.add(
                    format!("{path}[{i}]"),
                    format!("unknown weekday {d:?}; use Mon, Tue, Wed, Thu, Fri, Sat or Sun"),
                );
            }
        }
    }

    /// Checks a same-day `start`..`end` pair of `"HH:MM"` times.
    fn span(&mut self, path: &str, start: &str, end: &str) {
        let s = parse_hhmm(start);
        let e = parse_hhmm(end);
        if s.is_none() {
            self.add(
                format!("{path}.Start"),
                format!("{start:?} is not a time HH:MM"),
            );
        }
        if e.is_none() {
            self.add(
                format!("{path}.End"),
                format!("{end:?} is not a time HH:MM"),
            );
        }
        if let (Some(s), Some(e)) = (s, e)
            && e <= s
        {
            self.add(
                format!("{path}.End"),
                format!("must be after Start ({start}) on the same day"),
            );
        }
    }

    fn skills(&mut self, path: &str, skills: &[Skill]) {
        for (i, s) in skills.iter().enumerate() {
            self.non_empty(&format!("{path}[{i}].Code"), &s.code);
        }
    }

    fn finish(self) -> Result<(), Vec<Invalid>> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(self.0)
        }
    }
}

impl Policy {
    fn check(&self, r: &mut Report, path: &str) {
        for (i, w) in self.windows.iter().enumerate() {
            let wp = format!("{path}.Windows[{i}]");
            r.days(&format!("{wp}.Days"), &w.days);
            r.span(&wp, &w.start, &w.end);
        }
        if self.horizon_days == 0 || self.horizon_days > 366 {
            r.add(format!("{path}.HorizonDays"), "must be from 1 to 366");
        }
        if self.max_slots == 0 {
            r.add(format!("{path}.MaxSlots"), "must be at least 1");
        }
        if !self.road_factor.is_finite() || self.road_factor < 1.0 || self.road_factor > 10.0 {
            r.add(
                format!("{path}.RoadFactor"),
                "must be a number from 1 to 10",
            );
        }
        if !self.speed_kmh.is_finite() || self.speed_kmh <= 0.0 || self.speed_kmh > 300.0 {
            r.add(
                format!("{path}.SpeedKmh"),
                "must be a number above 0 and at most 300",
            );
        }
        for (name, v) in [
            (
                "NonOriginalPenaltyMinutes",
                self.non_original_penalty_minutes,
            ),
            ("PerDayPenaltyMinutes", self.per_day_penalty_minutes),
        ] {
            if !v.is_finite() || v < 0.0 {
                r.add(
                    format!("{path}.{name}"),
                    "must be a finite number, 0 or more",
                );
            }
        }
    }
}

impl WorkCenter {
    /// Accepts a work center the search can use: known IANA zone, valid coordinates and policy.
    pub fn validate(&self) -> Result<(), Vec<Invalid>> {
        let mut r = Report::default();
        r.non_empty("$.ServiceAreaID", &self.service_area_id);
        if TimeZone::get(&self.time_zone).is_err() {
            r.add(
                "$.TimeZone",
                format!(
                    "unknown time zone {:?}; use an IANA name such as America/Chicago",
                    self.time_zone
                ),
            );
        }
        r.latitude("$.Lat", self.lat);
        r.longitude("$.Lon", self.lon);
        self.policy.check(&mut r, "$.Policy");
        r.finish()
    }
}

impl Technician {
    pub fn validate(&self) -> Result<(), Vec<Invalid>> {
        let mut r = Report::default();
        r.non_empty("$.UserName", &self.user_name);
        if self.service_area_ids.is_empty() {
            r.add("$.ServiceAreaIDs", "must name at least one work center");
        }
        for (i, id) in self.service_area_ids.iter().enumerate() {
            r.non_empty(&format!("$.ServiceAreaIDs[{i}]"), id);
        }
        r.skills("$.Skills", &self.skills);
        r.latitude("$.Home.Lat", self.home.lat);
        r.longitude("$.Home.Lon", self.home.lon);
        for (i, s) in self.shifts.iter().enumerate() {
            let sp = format!("$.Shifts[{i}]");
            r.days(&format!("{sp}.Days"), &s.days);
            r.span(&sp, &s.start, &s.end);
        }
        for (i, e) in self.exceptions.iter().enumerate() {
            let ep = format!("$.Exceptions[{i}]");
            if parse_date(&e.date).is_none() {
                r.add(
                    format!("{ep}.Date"),
                    format!("{:?} is not a date YYYY-MM-DD", e.date),
                );
            }
            match (&e.start, &e.end) {
                (None, None) => {}
                (Some(s), Some(en)) => r.span(&ep, s, en),
                (Some(_), None) => r.add(
                    format!("{ep}.End"),
                    "give both Start and End, or neither for a day off",
                ),
                (None, Some(_)) => r.add(
                    format!("{ep}.Start"),
                    "give both Start and End, or neither for a day off",
                ),
            }
        }
        r.finish()
    }
}

impl OrderType {
    pub fn validate(&self) -> Result<(), Vec<Invalid>> {
        let mut r = Report::default();
        r.non_empty("$.OrderType", &self.order_type);
        if self.duration_minutes == 0 || self.duration_minutes > 24 * 60 {
            r.add(
                "$.DurationMinutes",
                "must be from 1 to 1440 minutes (24 hours)",
            );
        }
        r.skills("$.Skills", &self.skills);
        r.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_work_center_with_only_the_required_fields_gets_the_default_policy() {
        let wc: WorkCenter = serde_json::from_str(
            r#"{"ServiceAreaID":"CHI-N","Name":"Chicago North","TimeZone":"America/Chicago","Lat":41.9,"Lon":-87.7}"#,
        )
        .unwrap();
        assert_eq!(wc.policy, Policy::default());
        assert!(wc.validate().is_ok());
    }

    #[test]
    fn a_partial_policy_keeps_the_defaults_of_the_missing_fields() {
        let p: Policy = serde_json::from_str(r#"{"HorizonDays":28,"Unknown":1}"#).unwrap();
        assert_eq!(p.horizon_days, 28);
        assert_eq!(p.max_slots, 10);
        assert_eq!(p.windows.len(), 3);
        let json = serde_json::to_value(Policy::default()).unwrap();
        for key in [
            "Windows",
            "HorizonDays",
            "MinLeadMinutes",
            "MaxSlots",
            "RoadFactor",
            "SpeedKmh",
            "PartsBufferMinutes",
            "PartsDefaultLeadDays",
            "NonOriginalPenaltyMinutes",
            "PerDayPenaltyMinutes",
            "OfferOrder",
            "BestOffers",
            "FreezeMinutes",
        ] {
            assert!(json.get(key).is_some(), "{key} missing");
        }
        assert_eq!(json["OfferOrder"], "Chronological");
        let p: Policy = serde_json::from_str(r#"{"OfferOrder":"Cost"}"#).unwrap();
        assert_eq!(p.offer_order, OfferOrder::Cost);
        assert!(serde_json::from_str::<Policy>(r#"{"OfferOrder":"Random"}"#).is_err());
    }

    #[test]
    fn a_technician_is_active_and_has_no_exceptions_unless_told() {
        let t: Technician = serde_json::from_str(
            r#"{"UserName":"ann","Name":"Ann","ServiceAreaIDs":["CHI-N"],"Skills":[{"Code":"HVAC","Level":2}],
                "Home":{"Lat":41.9,"Lon":-87.7},"Shifts":[{"Days":["Mon","Tue"],"Start":"08:00","End":"17:00"}]}"#,
        )
        .unwrap();
        assert!(t.active);
        assert!(t.exceptions.is_empty());
        assert!(t.validate().is_ok());
        assert!(t.has_skills(&[Skill {
            code: "HVAC".into(),
            level: 1
        }]));
        assert!(!t.has_skills(&[Skill {
            code: "HVAC".into(),
            level: 3
        }]));
        assert!(!t.has_skills(&[Skill {
            code: "GAS".into(),
            level: 1
        }]));
    }

    #[test]
    fn validation_names_every_bad_field_by_its_json_path() {
        let mut wc = WorkCenter {
            service_area_id: "".into(),
            name: "x".into(),
            time_zone: "Mars/Olympus".into(),
            lat: 91.0,
            lon: f64::NAN,
            policy: Policy::default(),
        };
        wc.policy.windows[0].start = "8:00".into();
        wc.policy.windows[1].end = "11:00".into();
        wc.policy.windows[2].days.push("Funday".into());
        wc.policy.speed_kmh = f64::INFINITY;
        let paths: Vec<String> = wc
            .validate()
            .unwrap_err()
            .into_iter()
            .map(|i| i.path)
            .collect();
        for p in [
            "$.ServiceAreaID",
            "$.TimeZone",
            "$.Lat",
            "$.Lon",
            "$.Policy.Windows[0].Start",
            "$.Policy.Windows[1].End",
            "$.Policy.Windows[2].Days[5]",
            "$.Policy.SpeedKmh",
        ] {
            assert!(paths.iter().any(|x| x == p), "{p} not in {paths:?}");
        }
    }

    #[test]
    fn technician_and_order_type_validation_catch_bad_dates_spans_and_durations() {
        let t = Technician {
            user_name: "ann".into(),
            name: "Ann".into(),
            service_area_ids: vec![],
            skills: vec![],
            home: GeoPoint {
                lat: 0.0,
                lon: 200.0,
            },
            shifts: vec![ShiftDef {
                days: vec!["Mon".into()],
                start: "17:00".into(),
                end: "08:00".into(),
            }],
            exceptions: vec![
                ShiftException {
                    date: "2026-02-30".into(),
                    start: None,
                    end: None,
                },
                ShiftException {
                    date: "2026-12-24".into(),
                    start: Some("08:00".into()),
                    end: None,
                },
            ],
            active: true,
        };
        let paths: Vec<String> = t
            .validate()
            .unwrap_err()
            .into_iter()
            .map(|i| i.path)
            .collect();
        for p in [
            "$.ServiceAreaIDs",
            "$.Home.Lon",
            "$.Shifts[0].End",
            "$.Exceptions[0].Date",
            "$.Exceptions[1].End",
        ] {
            assert!(paths.iter().any(|x| x == p), "{p} not in {paths:?}");
        }
        let ot = |d| OrderType {
            order_type: "FIX".into(),
            desc: "".into(),
            duration_minutes: d,
            skills: vec![],
        };
        assert!(ot(0).validate().is_err());
        assert!(ot(24 * 60 + 1).validate().is_err());
        assert!(ot(90).validate().is_ok());
    }

    #[test]
    fn times_and_weekdays_parse_strictly() {
        assert_eq!(parse_hhmm("08:30"), Some(510));
        assert_eq!(parse_hhmm("23:59"), Some(1439));
        for bad in ["24:00", "8:30", "08:60", "08-30", "", "08:3a"] {
            assert_eq!(parse_hhmm(bad), None, "{bad}");
        }
        assert_eq!(parse_weekday("wed"), Some(Weekday::Wednesday));
        assert_eq!(parse_weekday("Sunday"), Some(Weekday::Sunday));
        assert_eq!(parse_weekday("Wd"), None);
        assert_eq!(weekday_mask(&["Mon".into(), "Sun".into()]), 0b100_0001);
        assert!(parse_date("2026-12-24").is_some());
        assert!(parse_date("2026-12-24T10:00").is_none());
    }
}
