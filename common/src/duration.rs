//! Human durations in configuration (`250ms`, `5s`, `5m`, `2h`, `30d`).
//!
//! Operators write retry schedules and timeouts by hand, so the format is the
//! one people already use in compose files and Svix's docs, not raw numbers.

use std::time::Duration;

/// Parses `<integer><unit>` where unit is one of `ms`, `s`, `m`, `h`, `d`.
///
/// A bare integer is refused on purpose: `30` could mean seconds or
/// milliseconds, and a wrong guess in a retry schedule is costly.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("`{text}` has no unit (use ms, s, m, h or d)"))?;
    let (number, unit) = text.split_at(split);
    if number.is_empty() {
        return Err(format!("`{text}` does not start with a number"));
    }
    let value: u64 = number
        .parse()
        .map_err(|_| format!("`{number}` is not a whole number"))?;
    let millis_per_unit: u64 = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        other => {
            return Err(format!(
                "unknown unit `{other}` in `{text}` (use ms, s, m, h or d)"
            ))
        }
    };
    let millis = value
        .checked_mul(millis_per_unit)
        .ok_or_else(|| format!("`{text}` is too large"))?;
    Ok(Duration::from_millis(millis))
}

/// Parses a comma-separated list of durations, such as a retry schedule.
pub fn parse_duration_list(text: &str) -> Result<Vec<Duration>, String> {
    text.split(',')
        .filter(|part| !part.trim().is_empty())
        .map(parse_duration)
        .collect()
}

/// Writes a duration in the largest unit that holds it exactly (`0s`,
/// `250ms`, `90s`, `5m`, `2h`, `1d`): what [`parse_duration`] reads back.
pub fn format_duration(duration: Duration) -> String {
    let ms = duration.as_millis();
    if ms == 0 {
        return "0s".into();
    }
    for (unit, size) in [
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1_000),
    ] {
        if ms.is_multiple_of(size) {
            return format!("{}{unit}", ms / size);
        }
    }
    format!("{ms}ms")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_what_it_parses() {
        for text in ["0s", "250ms", "1500ms", "90s", "5m", "2h", "1d", "36h"] {
            let duration = parse_duration(text).unwrap();
            assert_eq!(format_duration(duration), text);
        }
    }

    #[test]
    fn parses_each_unit() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_duration("30d"), Ok(Duration::from_secs(30 * 86400)));
        assert_eq!(parse_duration(" 0s "), Ok(Duration::ZERO));
    }

    #[test]
    fn refuses_ambiguous_or_broken_input() {
        assert!(parse_duration("30").is_err());
        assert!(parse_duration("s").is_err());
        assert!(parse_duration("5w").is_err());
        assert!(parse_duration("-5s").is_err());
        assert!(parse_duration("99999999999999999999s").is_err());
    }

    #[test]
    fn parses_the_default_schedule() {
        let schedule = parse_duration_list("0s,5s,5m,30m,2h,5h,10h,10h").unwrap();
        assert_eq!(schedule.len(), 8);
        assert_eq!(schedule[2], Duration::from_secs(300));
    }
}
