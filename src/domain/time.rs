//! Times on the wire: any RFC 3339 accepted, always emitted as UTC with milliseconds and `Z`.

use jiff::Timestamp;

/// Parses an RFC 3339 / ISO-8601 instant with an offset (`Z` or `+01:00`).
pub fn parse(s: &str) -> Option<Timestamp> {
    s.parse::<Timestamp>().ok()
}

/// `2026-12-01T08:00:00.000Z`.
pub fn format(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// The instant as the wire keeps it: `format` writes milliseconds, so what is finer is dropped
/// (towards the past, as `format` does before 1970 too), and a time read back compares equal to
/// the one written.
pub fn to_millis(t: Timestamp) -> Timestamp {
    let ns = t.as_nanosecond();
    Timestamp::from_nanosecond(ns - ns.rem_euclid(1_000_000)).unwrap_or(t)
}

/// Re-emits a wire time in the canonical form, or `None` if it is not a time.
pub fn canonical(s: &str) -> Option<String> {
    parse(s).map(format)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_offset_in_canonical_utc_milliseconds_out() {
        assert_eq!(
            canonical("2026-12-01T09:00:00+01:00").unwrap(),
            "2026-12-01T08:00:00.000Z"
        );
        assert_eq!(
            canonical("2026-12-01T08:00:00.1234Z").unwrap(),
            "2026-12-01T08:00:00.123Z"
        );
        assert!(canonical("2026-12-01 08:00").is_none());
        assert!(canonical("tomorrow").is_none());
    }

    #[test]
    fn to_millis_keeps_what_format_writes() {
        for s in [
            "2026-12-01T08:00:00.1239Z",
            "2026-12-01T08:00:00Z",
            "1969-12-31T23:59:59.9995Z",
            "1969-12-31T23:59:59.0001Z",
            "1900-01-01T00:00:00.000999Z",
        ] {
            let t = parse(s).unwrap();
            assert_eq!(to_millis(t), parse(&format(t)).unwrap(), "{s}");
            assert_eq!(format(to_millis(t)), format(t), "{s}");
        }
    }
}
