//! Wall-clock helpers. Redis scores and stored timestamps are epoch
//! milliseconds everywhere, so every component agrees on one unit.

use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Formats epoch milliseconds as RFC 3339 (UTC, millisecond precision), the
/// form used in API responses and in the delivered body's `timestamp`.
pub fn rfc3339_ms(ms: u64) -> String {
    let nanos = i128::from(ms) * 1_000_000;
    let Ok(at) = time::OffsetDateTime::from_unix_timestamp_nanos(nanos) else {
        return String::new();
    };
    let format = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    at.format(&format).unwrap_or_default()
}

/// Parses an RFC 3339 timestamp into epoch milliseconds. A time before
/// 1970 is a valid bound that precedes everything stored, so it reads as 0
/// rather than as an error.
pub fn parse_rfc3339_ms(text: &str) -> Option<u64> {
    let at =
        time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).ok()?;
    let ms = (at.unix_timestamp_nanos() / 1_000_000).max(0);
    u64::try_from(ms).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let text = rfc3339_ms(1_614_265_330_123);
        assert_eq!(text, "2021-02-25T15:02:10.123Z");
        assert_eq!(parse_rfc3339_ms(&text), Some(1_614_265_330_123));
    }

    #[test]
    fn times_before_1970_read_as_the_epoch_and_garbage_as_none() {
        assert_eq!(parse_rfc3339_ms("1969-12-31T23:59:59Z"), Some(0));
        assert_eq!(parse_rfc3339_ms("0001-01-01T00:00:00+05:00"), Some(0));
        assert_eq!(parse_rfc3339_ms("yesterday"), None);
    }
}
