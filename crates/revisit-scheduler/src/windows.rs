//! Arrival windows: the policy's local-time windows turned into UTC instants date by date.
//!
//! Windows are defined in the work center's local time, so the same "08:00-12:00" is 14:00Z in
//! January and 13:00Z in July in Chicago. Each date is converted on its own; a local time that
//! does not exist (the skipped hour in spring) is resolved with jiff's *compatible* rule (it moves
//! forward by the gap), an ambiguous one (the repeated hour in autumn) takes the earlier instant.

use jiff::Timestamp;
use jiff::civil::{Date, Time};
use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};

use crate::model::{Policy, WorkCenter, parse_hhmm, weekday_mask};

/// An arrival window in UTC: the technician arrives at some instant in `[start, end]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Window {
    pub start: Timestamp,
    pub end: Timestamp,
}

/// The policy's windows for each local date from `from`'s local date, for `days` dates, in
/// chronological order (by start, then end), each once. Includes windows already past on the first
/// date: the caller applies lead time and other gates.
pub fn candidate_windows(
    wc: &WorkCenter,
    tz: &TimeZone,
    from: Timestamp,
    days: u32,
) -> Vec<Window> {
    let first = tz.to_datetime(from).date();
    let local = LocalDays::new(tz, first, days as usize);
    windows_by_day(&wc.policy, &local)
        .into_iter()
        .map(|(_, w)| w)
        .collect()
}

/// A person-readable window in local time, e.g. `"Wed 2 Dec, 13:00-17:00"`.
pub fn describe(window: &Window, tz: &TimeZone) -> String {
    let start = tz.to_datetime(window.start);
    let end = tz.to_datetime(window.end);
    let mut s = start.strftime("%a %-d %b, %H:%M").to_string();
    s.push('-');
    if end.date() != start.date() {
        // Only for a policy window that crosses a DST-shortened midnight; keep it unambiguous.
        s.push_str(&end.strftime("%a %-d %b %H:%M").to_string());
    } else {
        s.push_str(&end.strftime("%H:%M").to_string());
    }
    s
}

/// Local date and time of an instant, e.g. `"Wed 2 Dec 13:00"` (for status messages).
pub fn describe_instant(at: Timestamp, tz: &TimeZone) -> String {
    tz.to_datetime(at).strftime("%a %-d %b %H:%M").to_string()
}

/// A stable offer id: the work center and the window's UTC start, e.g. `"CHI-N:20261202T1300Z"`.
/// Within one work center's policy a start instant identifies the window (policies whose windows
/// share a start are told apart by `parse_offer_id` + matching the end against the candidates).
pub fn offer_id(service_area_id: &str, window: &Window) -> String {
    format!(
        "{service_area_id}:{}",
        window.start.strftime("%Y%m%dT%H%MZ")
    )
}

/// Inverse of [`offer_id`]: the work center id and the window start.
pub fn parse_offer_id(id: &str) -> Option<(&str, Timestamp)> {
    let (area, stamp) = id.rsplit_once(':')?;
    let b = stamp.as_bytes();
    if b.len() != 14 || b[8] != b'T' || b[13] != b'Z' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| stamp.get(r)?.parse::<i16>().ok();
    let date = Date::new(num(0..4)?, num(4..6)? as i8, num(6..8)? as i8).ok()?;
    let time = Time::new(num(9..11)? as i8, num(11..13)? as i8, 0, 0).ok()?;
    let ts = date
        .to_datetime(time)
        .to_zoned(TimeZone::UTC)
        .ok()?
        .timestamp();
    Some((area, ts))
}

// ---------------------------------------------------------------------------------------------
// Fast local-time conversion for the search.

/// One local date: its UTC bounds and whether its UTC offset is the same all day.
#[derive(Debug, Clone)]
pub(crate) struct LocalDay {
    pub date: Date,
    /// UTC seconds of local midnight (compatible rule) and of the next one.
    pub start: i64,
    pub end: i64,
    uniform: bool,
}

/// Consecutive local dates of one time zone, with O(1) local-minute -> UTC conversion on days
/// without an offset change (every day but two a year), and jiff's rules on the others.
#[derive(Debug, Clone)]
pub(crate) struct LocalDays {
    tz: TimeZone,
    pub days: Vec<LocalDay>,
}

fn local_to_utc(tz: &TimeZone, date: Date, minute: u32) -> Option<i64> {
    let dt = date.at((minute / 60) as i8, (minute % 60) as i8, 0, 0);
    tz.to_ambiguous_timestamp(dt)
        .compatible()
        .ok()
        .map(|t| t.as_second())
}

impl LocalDays {
    pub fn new(tz: &TimeZone, first: Date, n: usize) -> Self {
        let mut days = Vec::with_capacity(n);
        let mut date = first;
        let mut start = local_to_utc(tz, date, 0);
        for _ in 0..n {
            let Ok(next) = date.tomorrow() else { break };
            let next_start = local_to_utc(tz, next, 0);
            let (Some(s), Some(e)) = (start, next_start) else {
                break;
            };
            let uniform = e - s == 86_400
                && Timestamp::from_second(s).ok().map(|t| tz.to_offset(t))
                    == Timestamp::from_second(e - 1).ok().map(|t| tz.to_offset(t));
            days.push(LocalDay {
                date,
                start: s,
                end: e,
                uniform,
            });
            date = next;
            start = next_start;
        }
        LocalDays {
            tz: tz.clone(),
            days,
        }
    }

    /// UTC seconds of `minute` (after local midnight) on day `i`.
    pub fn at(&self, i: usize, minute: u16) -> i64 {
        let d = &self.days[i];
        if d.uniform {
            d.start + i64::from(minute) * 60
        } else {
            local_to_utc(&self.tz, d.date, u32::from(minute))
                .unwrap_or(d.start + i64::from(minute) * 60)
        }
    }
}

/// Parsed policy windows: (weekday mask, start minute, end minute), invalid ones dropped.
pub(crate) fn parsed_window_defs(policy: &Policy) -> Vec<(u8, u16, u16)> {
    policy
        .windows
        .iter()
        .filter_map(|w| {
            let (s, e) = (parse_hhmm(&w.start)?, parse_hhmm(&w.end)?);
            (e > s).then_some((weekday_mask(&w.days), s, e))
        })
        .collect()
}

/// The policy's windows on each of `local`'s days, chronological, each once, tagged with the day.
pub(crate) fn windows_by_day(policy: &Policy, local: &LocalDays) -> Vec<(usize, Window)> {
    let defs = parsed_window_defs(policy);
    let mut out = Vec::with_capacity(local.days.len() * defs.len());
    for (i, day) in local.days.iter().enumerate() {
        let bit = 1u8 << day.date.weekday().to_monday_zero_offset();
        let from = out.len();
        for &(mask, s, e) in &defs {
            if mask & bit == 0 {
                continue;
            }
            let (Ok(start), Ok(end)) = (
                Timestamp::from_second(local.at(i, s)),
                Timestamp::from_second(local.at(i, e)),
            ) else {
                continue;
            };
            if end > start {
                out.push((i, Window { start, end }));
            }
        }
        out[from..].sort_by_key(|(_, w)| *w);
        // Dedup within the day (two policy entries giving the same window).
        let mut j = from;
        while j + 1 < out.len() {
            if out[j].1 == out[j + 1].1 {
                out.remove(j + 1);
            } else {
                j += 1;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::WindowDef;

    fn chicago() -> TimeZone {
        TimeZone::get("America/Chicago").unwrap()
    }

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn wc_with(windows: Vec<WindowDef>) -> WorkCenter {
        WorkCenter {
            service_area_id: "CHI-N".into(),
            name: "Chicago North".into(),
            time_zone: "America/Chicago".into(),
            lat: 41.9,
            lon: -87.7,
            policy: Policy {
                windows,
                ..Policy::default()
            },
        }
    }

    fn every_day(start: &str, end: &str) -> WindowDef {
        WindowDef {
            days: ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
                .map(String::from)
                .to_vec(),
            start: start.into(),
            end: end.into(),
        }
    }

    #[test]
    fn default_windows_are_three_a_weekday_and_none_at_the_weekend() {
        let wc = wc_with(Policy::default().windows);
        // Mon 30 Nov 2026 .. Sun 6 Dec 2026 (CST, UTC-6).
        let w = candidate_windows(&wc, &chicago(), ts("2026-11-30T12:00:00Z"), 7);
        assert_eq!(w.len(), 15);
        assert_eq!(w[0].start, ts("2026-11-30T14:00:00Z"));
        assert_eq!(w[0].end, ts("2026-11-30T18:00:00Z"));
        assert_eq!(w[14].end, ts("2026-12-05T02:00:00Z")); // Fri 20:00 CST
        assert!(w.windows(2).all(|p| p[0] < p[1]));
    }

    #[test]
    fn the_0800_window_moves_from_1400z_to_1300z_across_the_spring_change() {
        let wc = wc_with(vec![every_day("08:00", "12:00")]);
        // Sat 7 Mar (CST), Sun 8 Mar (change at 02:00), Mon 9 Mar (CDT).
        let w = candidate_windows(&wc, &chicago(), ts("2026-03-07T12:00:00Z"), 3);
        assert_eq!(
            w.iter().map(|w| w.start).collect::<Vec<_>>(),
            vec![
                ts("2026-03-07T14:00:00Z"),
                ts("2026-03-08T13:00:00Z"),
                ts("2026-03-09T13:00:00Z")
            ]
        );
    }

    #[test]
    fn a_window_over_the_spring_gap_is_an_hour_shorter_and_a_missing_start_moves_forward() {
        let wc = wc_with(vec![
            every_day("01:00", "03:00"),
            every_day("02:30", "04:00"),
        ]);
        let w = candidate_windows(&wc, &chicago(), ts("2026-03-08T12:00:00Z"), 1);
        // 01:00 CST = 07:00Z; 03:00 CDT = 08:00Z.
        assert_eq!(
            w[0],
            Window {
                start: ts("2026-03-08T07:00:00Z"),
                end: ts("2026-03-08T08:00:00Z")
            }
        );
        // 02:30 does not exist: compatible -> 03:30 CDT = 08:30Z; 04:00 CDT = 09:00Z.
        assert_eq!(
            w[1],
            Window {
                start: ts("2026-03-08T08:30:00Z"),
                end: ts("2026-03-08T09:00:00Z")
            }
        );
    }

    #[test]
    fn the_autumn_change_moves_windows_back_and_an_ambiguous_time_takes_the_earlier_instant() {
        let wc = wc_with(vec![
            every_day("01:30", "03:00"),
            every_day("08:00", "12:00"),
        ]);
        // Sat 31 Oct (CDT), Sun 1 Nov (change at 02:00 CDT -> 01:00 CST), Mon 2 Nov (CST).
        let w = candidate_windows(&wc, &chicago(), ts("2026-10-31T12:00:00Z"), 3);
        let on_1_nov: Vec<_> = w
            .iter()
            .filter(|w| chicago().to_datetime(w.start).date() == Date::new(2026, 11, 1).unwrap())
            .collect();
        // 01:30 CDT (first occurrence) = 06:30Z; 03:00 CST = 09:00Z: a 2.5 h window.
        assert_eq!(
            *on_1_nov[0],
            Window {
                start: ts("2026-11-01T06:30:00Z"),
                end: ts("2026-11-01T09:00:00Z")
            }
        );
        // 08:00 CST = 14:00Z on the change date and after; 13:00Z the day before.
        assert_eq!(on_1_nov[1].start, ts("2026-11-01T14:00:00Z"));
        assert!(w.contains(&Window {
            start: ts("2026-10-31T13:00:00Z"),
            end: ts("2026-10-31T17:00:00Z")
        }));
        assert!(w.contains(&Window {
            start: ts("2026-11-02T14:00:00Z"),
            end: ts("2026-11-02T18:00:00Z")
        }));
    }

    #[test]
    fn the_fast_conversion_agrees_with_jiff_on_every_minute_of_the_change_dates() {
        let tz = chicago();
        for first in [
            Date::new(2026, 3, 7).unwrap(),
            Date::new(2026, 10, 31).unwrap(),
        ] {
            let local = LocalDays::new(&tz, first, 3);
            for i in 0..3 {
                for m in (0..1440).step_by(7) {
                    assert_eq!(
                        local.at(i, m),
                        local_to_utc(&tz, local.days[i].date, u32::from(m)).unwrap()
                    );
                }
            }
            assert!(local.days[0].uniform && !local.days[1].uniform && local.days[2].uniform);
        }
    }

    #[test]
    fn duplicate_policy_windows_are_offered_once() {
        let wc = wc_with(vec![
            every_day("08:00", "12:00"),
            every_day("08:00", "12:00"),
        ]);
        assert_eq!(
            candidate_windows(&wc, &chicago(), ts("2026-11-30T12:00:00Z"), 2).len(),
            2
        );
    }

    #[test]
    fn describe_and_offer_id_read_well_and_round_trip() {
        let w = Window {
            start: ts("2026-12-02T19:00:00Z"),
            end: ts("2026-12-02T23:00:00Z"),
        };
        assert_eq!(describe(&w, &chicago()), "Wed 2 Dec, 13:00-17:00");
        let id = offer_id("CHI-N", &w);
        assert_eq!(id, "CHI-N:20261202T1900Z");
        assert_eq!(parse_offer_id(&id), Some(("CHI-N", w.start)));
        assert_eq!(parse_offer_id("CHI-N:2026120T1900Z"), None);
        assert_eq!(describe_instant(w.start, &chicago()), "Wed 2 Dec 13:00");
    }
}
