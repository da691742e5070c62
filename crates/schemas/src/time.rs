//! Timestamps: one canonical format written, a few real-world formats read.
//!
//! All times are naive UTC, like the seed report's `2025-03-12T14:52:41`.

use chrono::{DateTime, NaiveDate, NaiveDateTime};

/// The format every timestamp is written in.
pub const CANONICAL: &str = "%Y-%m-%dT%H:%M:%S";

/// Formats a timestamp in the canonical format.
pub fn format(ts: NaiveDateTime) -> String {
    ts.format(CANONICAL).to_string()
}

/// Parses a timestamp in any accepted format and returns it as naive UTC.
///
/// Accepted: `2025-03-12T14:52:41`, with fractional seconds, with a space
/// instead of `T`, and RFC 3339 with `Z` or an offset (converted to UTC).
/// Returns `None` for anything else, including impossible dates.
pub fn parse(s: &str) -> Option<NaiveDateTime> {
    let s = s.trim();
    for fmt in [
        CANONICAL,
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%d %H:%M:%S%.f",
    ] {
        if let Ok(ts) = NaiveDateTime::parse_from_str(s, fmt) {
            return Some(ts);
        }
    }
    DateTime::parse_from_rfc3339(s).ok().map(|t| t.naive_utc())
}

/// Milliseconds since the Unix epoch, for log record timestamps.
pub fn epoch_millis(ts: NaiveDateTime) -> i64 {
    ts.and_utc().timestamp_millis()
}

/// Parses a `YYYY-MM-DD` date.
pub fn parse_date(s: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, CANONICAL).expect("test literal")
    }

    #[test]
    fn accepts_the_real_world_variants_and_normalises_them() {
        let want = ts("2025-03-12T14:52:41");
        assert_eq!(parse("2025-03-12T14:52:41"), Some(want));
        assert_eq!(parse("2025-03-12 14:52:41"), Some(want));
        assert_eq!(parse("2025-03-12T14:52:41Z"), Some(want));
        assert_eq!(parse("2025-03-12T16:52:41+02:00"), Some(want));
        assert_eq!(
            parse("2025-03-12T14:52:41.250").map(|t| t.and_utc().timestamp_millis() % 1000),
            Some(250)
        );
        assert_eq!(format(want), "2025-03-12T14:52:41");
    }

    #[test]
    fn rejects_impossible_and_foreign_formats() {
        for bad in [
            "",
            "N/A",
            "2025-02-30T10:00:00",
            "2025-03-12T25:61:00",
            "12/03/2025 14:52",
            "1741791161",
        ] {
            assert_eq!(parse(bad), None, "{bad:?} should not parse");
        }
    }
}
