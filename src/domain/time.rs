//! Times on the wire (docs/api.md: "Accept any valid RFC 3339 time from year 0001 to 9999 on
//! input, bodies and query parameters alike; always emit `2026-12-01T08:00:00.000Z`").
//!
//! A [`Time`] is an instant to the millisecond, from `0001-01-01T00:00:00.000Z` to
//! `9999-12-31T23:59:59.999Z`; one only exists inside that range, so whatever Revisit stores
//! formats to the canonical form and parses back to the same value.
//!
//! Why not `jiff::Timestamp`: jiff's range ends at `9999-12-30T22:00:00.999999999Z` (so that any
//! offset can be added to it), a day and two hours short of the contract's, and it starts at year
//! -9999, which `%Y` writes as `-9999` and no RFC 3339 parser reads back. The parser here is the
//! RFC 3339 `date-time` grammar and the civil-calendar arithmetic, to epoch milliseconds; jiff
//! stays the scheduler's type, and [`Time::to_timestamp`] / `From<Timestamp>` cross over.

use std::fmt;

use jiff::Timestamp;
use serde::{Serialize, Serializer};

/// An instant on the wire: epoch milliseconds within [`Time::MIN`]..=[`Time::MAX`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Time(i64);

const MS_PER_DAY: i64 = 86_400_000;

impl Time {
    /// `0001-01-01T00:00:00.000Z`.
    pub(crate) const MIN: Time = Time(days_from_civil(1, 1, 1) * MS_PER_DAY);
    /// `9999-12-31T23:59:59.999Z`.
    pub const MAX: Time = Time(days_from_civil(10_000, 1, 1) * MS_PER_DAY - 1);

    /// The time `ms` milliseconds after 1970-01-01T00:00:00Z, if inside the range.
    pub fn from_millis(ms: i64) -> Option<Time> {
        (Self::MIN.0..=Self::MAX.0)
            .contains(&ms)
            .then_some(Time(ms))
    }

    /// Milliseconds since 1970-01-01T00:00:00Z (what the store's indexed columns hold).
    pub fn as_millis(self) -> i64 {
        self.0
    }

    /// The time `minutes` later, or [`Time::MAX`] if that is past the range.
    pub(crate) fn saturating_add_minutes(self, minutes: i64) -> Time {
        Time(
            self.0
                .saturating_add(minutes.saturating_mul(60_000))
                .min(Self::MAX.0),
        )
    }

    /// The same instant as a jiff timestamp, for the scheduler. jiff ends 26 hours before
    /// [`Time::MAX`]: a time in those hours becomes `Timestamp::MAX`, which no schedule reaches.
    pub fn to_timestamp(self) -> Timestamp {
        Timestamp::from_millisecond(self.0).unwrap_or(Timestamp::MAX)
    }

    /// Parses an RFC 3339 `date-time` (`2026-12-01T08:00:00.000Z`, `2026-12-01T09:00:00+01:00`;
    /// `T` and `Z` in either case, any number of fraction digits). What is finer than a
    /// millisecond is dropped (towards the past, as the digits are), so a time reads back equal
    /// to the one written; a leap second (`:60`) reads as `:59`.
    pub fn parse(s: &str) -> Result<Time, TimeError> {
        let b = s.as_bytes();
        // The grammar's year is four digits: a signed or longer one is a year out of range (and
        // saying so helps more than "malformed").
        let digits = b.iter().take_while(|c| c.is_ascii_digit()).count();
        if (matches!(b.first(), Some(b'+' | b'-')) && b.get(1).is_some_and(u8::is_ascii_digit))
            || (digits > 4 && b.get(digits) == Some(&b'-'))
        {
            return Err(TimeError::OutOfRange);
        }
        let mut p = Cursor { b, at: 0 };
        let year = p.digits(4)?;
        p.byte(b'-')?;
        let month = p.digits(2)?;
        p.byte(b'-')?;
        let day = p.digits(2)?;
        p.either(b'T', b't')?;
        let hour = p.digits(2)?;
        p.byte(b':')?;
        let minute = p.digits(2)?;
        p.byte(b':')?;
        let second = p.digits(2)?;
        let mut millis = 0;
        if p.peek() == Some(b'.') {
            p.at += 1;
            let frac = p.run_of_digits();
            if frac.is_empty() {
                return Err(TimeError::Malformed);
            }
            for i in 0..3 {
                millis = millis * 10 + frac.get(i).map_or(0, |d| i64::from(d - b'0'));
            }
        }
        let offset_minutes = match p.peek() {
            Some(b'Z' | b'z') => {
                p.at += 1;
                0
            }
            Some(sign @ (b'+' | b'-')) => {
                p.at += 1;
                let h = p.digits(2)?;
                p.byte(b':')?;
                let m = p.digits(2)?;
                if h > 23 || m > 59 {
                    return Err(TimeError::NoSuchTime);
                }
                if sign == b'-' {
                    -(h * 60 + m)
                } else {
                    h * 60 + m
                }
            }
            _ => return Err(TimeError::Malformed),
        };
        if p.at != b.len() {
            return Err(TimeError::Malformed);
        }
        if !(1..=12).contains(&month)
            || !(1..=days_in_month(year, month)).contains(&day)
            || hour > 23
            || minute > 59
            || second > 60
        {
            return Err(TimeError::NoSuchTime);
        }
        let second = second.min(59);
        let local = days_from_civil(year, month, day) * MS_PER_DAY
            + ((hour * 60 + minute) * 60 + second) * 1000
            + millis;
        Time::from_millis(local - offset_minutes * 60_000).ok_or(TimeError::OutOfRange)
    }
}

/// Why a string is not a [`Time`]; its `Display` is the reason an error object gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TimeError {
    #[error(
        "expected an RFC 3339 time with its offset, such as 2026-12-01T08:00:00.000Z or 2026-12-01T09:00:00+01:00"
    )]
    Malformed,
    #[error("not a date or time of day that exists")]
    NoSuchTime,
    #[error("out of range: times run from 0001-01-01T00:00:00.000Z to 9999-12-31T23:59:59.999Z")]
    OutOfRange,
}

/// The canonical form, `2026-12-01T08:00:00.000Z`.
impl fmt::Display for Time {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (days, ms) = (self.0.div_euclid(MS_PER_DAY), self.0.rem_euclid(MS_PER_DAY));
        let (y, m, d) = civil_from_days(days);
        let s = ms / 1000;
        write!(
            f,
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
            s / 3600,
            s / 60 % 60,
            s % 60,
            ms % 1000
        )
    }
}

impl Serialize for Time {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// A jiff instant to the millisecond (finer is dropped towards the past), kept inside the range:
/// only Revisit's own times (now, the scheduler's windows) are converted, and those are far
/// inside it.
impl From<Timestamp> for Time {
    fn from(t: Timestamp) -> Time {
        let ms = t.as_nanosecond().div_euclid(1_000_000);
        Time(ms.clamp(i128::from(Time::MIN.0), i128::from(Time::MAX.0)) as i64)
    }
}

/// Parses a wire time; see [`Time::parse`].
pub fn parse(s: &str) -> Result<Time, TimeError> {
    Time::parse(s)
}

/// A jiff instant in the canonical wire form, `2026-12-01T08:00:00.000Z`.
pub fn format(t: Timestamp) -> String {
    Time::from(t).to_string()
}

/// Stored epoch milliseconds in the canonical wire form, or `None` outside the range (which no
/// write lets in).
pub(crate) fn format_millis(ms: i64) -> Option<String> {
    Time::from_millis(ms).map(|t| t.to_string())
}

/// Re-emits a wire time in the canonical form, or `None` if it is not one.
pub fn canonical(s: &str) -> Option<String> {
    parse(s).ok().map(|t| t.to_string())
}

/// Reads the wire form byte by byte.
struct Cursor<'a> {
    b: &'a [u8],
    at: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.at).copied()
    }
    fn byte(&mut self, want: u8) -> Result<(), TimeError> {
        self.either(want, want)
    }
    fn either(&mut self, a: u8, b: u8) -> Result<(), TimeError> {
        match self.peek() {
            Some(c) if c == a || c == b => {
                self.at += 1;
                Ok(())
            }
            _ => Err(TimeError::Malformed),
        }
    }
    /// Exactly `n` ASCII digits, as a number.
    fn digits(&mut self, n: usize) -> Result<i64, TimeError> {
        let run = self
            .b
            .get(self.at..self.at + n)
            .ok_or(TimeError::Malformed)?;
        if !run.iter().all(u8::is_ascii_digit) {
            return Err(TimeError::Malformed);
        }
        self.at += n;
        Ok(run.iter().fold(0, |v, d| v * 10 + i64::from(d - b'0')))
    }
    /// The digits from here on (possibly none).
    fn run_of_digits(&mut self) -> &[u8] {
        let start = self.at;
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.at += 1;
        }
        &self.b[start..self.at]
    }
}

fn is_leap(y: i64) -> bool {
    y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to the proleptic Gregorian date (Howard Hinnant's `days_from_civil`:
/// years counted from March, so the leap day is the last of its year, in 400-year eras).
const fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The inverse of [`days_from_civil`]: (year, month, day).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn ok(s: &str) -> Time {
        Time::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn any_offset_in_canonical_utc_milliseconds_out() {
        assert_eq!(
            canonical("2026-12-01T09:00:00+01:00").unwrap(),
            "2026-12-01T08:00:00.000Z"
        );
        assert_eq!(
            canonical("2026-12-01T02:30:00-05:30").unwrap(),
            "2026-12-01T08:00:00.000Z"
        );
        assert_eq!(
            canonical("2026-12-01t08:00:00.1234z").unwrap(),
            "2026-12-01T08:00:00.123Z"
        );
        assert_eq!(
            canonical("2026-12-01T08:00:00.5Z").unwrap(),
            "2026-12-01T08:00:00.500Z"
        );
        // "Unknown local offset" names UTC all the same.
        assert_eq!(
            canonical("2026-12-01T08:00:00-00:00").unwrap(),
            "2026-12-01T08:00:00.000Z"
        );
        assert_eq!(
            canonical("2016-12-31T23:59:60.250Z").unwrap(),
            "2016-12-31T23:59:59.250Z"
        );
    }

    #[test]
    fn the_ends_of_the_range_are_accepted_and_read_back_exactly() {
        for s in ["0001-01-01T00:00:00.000Z", "9999-12-31T23:59:59.999Z"] {
            let t = ok(s);
            assert_eq!(t.to_string(), s);
            assert_eq!(ok(&t.to_string()), t);
            assert_eq!(Time::from_millis(t.as_millis()), Some(t));
        }
        assert_eq!(ok("0001-01-01T00:00:00Z"), Time::MIN);
        assert_eq!(ok("9999-12-31T23:59:59.999Z"), Time::MAX);
        assert_eq!(ok("9999-12-31T23:59:59.9999999Z"), Time::MAX);
        // Offsets that stay inside the range in UTC.
        assert_eq!(ok("0001-01-01T01:00:00+01:00"), Time::MIN);
        assert_eq!(ok("9999-12-31T22:59:59.999-01:00"), Time::MAX);
        assert_eq!(Time::MIN.as_millis(), -62_135_596_800_000);
        assert_eq!(Time::MAX.as_millis(), 253_402_300_799_999);
        assert_eq!(Time::from_millis(Time::MIN.as_millis() - 1), None);
        assert_eq!(Time::from_millis(Time::MAX.as_millis() + 1), None);
    }

    #[test]
    fn times_outside_the_range_are_refused_as_out_of_range() {
        for s in [
            "0000-01-01T00:00:00Z",
            "0000-12-31T23:59:59.999Z",
            "0001-01-01T00:30:00+01:00",
            "9999-12-31T23:59:59.999-00:01",
            "-000001-01-01T00:00:00Z",
            "-0001-01-01T00:00:00Z",
            "+002026-12-01T08:00:00Z",
            "10000-01-01T00:00:00Z",
            "-001-01-01T00:00:00.000Z",
        ] {
            assert_eq!(Time::parse(s), Err(TimeError::OutOfRange), "{s}");
        }
    }

    #[test]
    fn forms_that_are_not_rfc_3339_are_refused() {
        for s in [
            "2026-12-01 08:00",
            "2026-12-01 08:00:00Z",
            "2026-12-01T08:00:00",
            "2026-12-01T08:00:00.000",
            "2026-12-01T08:00Z",
            "2026-12-01T08:00:00+01",
            "2026-12-01T08:00:00+0100",
            "2026-12-01T08:00:00.Z",
            "2026-12-01T08:00:00,5Z",
            "20261201T080000Z",
            "2026-12-01",
            "2026-12-1T08:00:00Z",
            "2026-12-01T08:00:00Z[Europe/Paris]",
            "2026-12-01T08:00:00Z ",
            " 2026-12-01T08:00:00Z",
            "２０２６-12-01T08:00:00Z",
            "tomorrow",
            "",
        ] {
            assert_eq!(Time::parse(s), Err(TimeError::Malformed), "{s:?}");
        }
        for s in [
            "2026-02-29T08:00:00Z",
            "2026-13-01T08:00:00Z",
            "2026-00-01T08:00:00Z",
            "2026-12-00T08:00:00Z",
            "2026-04-31T08:00:00Z",
            "2026-12-01T24:00:00Z",
            "2026-12-01T08:60:00Z",
            "2026-12-01T08:00:61Z",
            "2026-12-01T08:00:00+24:00",
            "2026-12-01T08:00:00+01:60",
        ] {
            assert_eq!(Time::parse(s), Err(TimeError::NoSuchTime), "{s}");
        }
        assert!(Time::parse("2024-02-29T08:00:00Z").is_ok());
        assert!(Time::parse("2000-02-29T08:00:00Z").is_ok());
        assert!(Time::parse("1900-02-29T08:00:00Z").is_err());
    }

    #[test]
    fn jiff_instants_convert_to_the_millisecond_and_stay_in_range() {
        let t: Timestamp = "1969-12-31T23:59:59.9995Z".parse().unwrap();
        assert_eq!(Time::from(t).to_string(), "1969-12-31T23:59:59.999Z");
        assert_eq!(Time::from(Timestamp::MIN), Time::MIN);
        assert_eq!(
            Time::from(Timestamp::MAX).to_string(),
            "9999-12-30T22:00:00.999Z"
        );
        assert_eq!(Time::MAX.to_timestamp(), Timestamp::MAX);
        assert_eq!(
            Time::MIN.to_timestamp(),
            "0001-01-01T00:00:00Z".parse().unwrap()
        );
        assert_eq!(Time::MAX.saturating_add_minutes(30), Time::MAX);
        assert_eq!(
            ok("2026-12-01T08:00:00Z")
                .saturating_add_minutes(90)
                .to_string(),
            "2026-12-01T09:30:00.000Z"
        );
    }

    proptest! {
        /// Against jiff wherever both are defined: the same instant, the same text.
        #[test]
        fn parsing_and_formatting_agree_with_jiff(
            ms in Time::MIN.as_millis()..=Timestamp::MAX.as_millisecond(),
            offset_minutes in -(23 * 60 + 59)..=(23 * 60 + 59i64),
        ) {
            let t = Time::from_millis(ms).unwrap();
            let ts = Timestamp::from_millisecond(ms).unwrap();
            prop_assert_eq!(t.to_string(), ts.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string());
            prop_assert_eq!(ok(&t.to_string()), t);
            let offset = jiff::tz::Offset::from_seconds((offset_minutes * 60) as i32).unwrap();
            let local = offset.to_datetime(ts);
            if (1..=9999).contains(&local.year()) {
                let (sign, abs) = if offset_minutes < 0 { ('-', -offset_minutes) } else { ('+', offset_minutes) };
                let s = format!("{}{sign}{:02}:{:02}", local.strftime("%Y-%m-%dT%H:%M:%S%.3f"), abs / 60, abs % 60);
                prop_assert_eq!(ok(&s), t, "{}", s);
            }
        }
    }
}
