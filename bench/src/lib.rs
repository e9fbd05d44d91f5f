//! What the benchmark driver and the benchmark receiver share: the clock
//! (unix nanoseconds, read the same way on both sides, so publish→receipt
//! is one subtraction), the marker that carries a publish time inside an
//! event's `data`, the receiver's statistics, and readers for `/proc`.
//!
//! `scripts/bench` runs both programs; `docs/BENCHMARKS.md` holds what they
//! measured.

use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// The `data` field that carries the publish time (unix ns) of an event.
pub const SENT_FIELD: &str = "sent_ns";

/// Now, in nanoseconds since the unix epoch. Publisher and receiver run on
/// one machine and read the same clock.
pub fn unix_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// The `data` of a benchmark event: its publish time and padding, so that
/// the signed body (`{"id", "type", "timestamp", "data"}`) is about
/// `body_bytes` long.
pub fn event_data(sent_ns: u64, body_bytes: usize) -> serde_json::Value {
    // The envelope (id, type, timestamp) and the time field take ~141 bytes
    // with the type `user.created`.
    let pad = body_bytes.saturating_sub(141).max(1);
    serde_json::json!({ SENT_FIELD: sent_ns, "pad": "x".repeat(pad) })
}

/// Reads the publish time out of a delivered body without parsing all of
/// it: the receiver must stay cheap, or it would be what is measured.
pub fn sent_ns_of(body: &[u8]) -> Option<u64> {
    let marker = b"\"sent_ns\":";
    let at = body.windows(marker.len()).position(|w| w == marker)? + marker.len();
    let digits = body[at..]
        .iter()
        .take_while(|b| b.is_ascii_digit())
        .fold(0u64, |n, b| n * 10 + u64::from(b - b'0'));
    (digits > 0).then_some(digits)
}

/// What the receiver has seen since its last reset (`GET /stats`).
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct ReceiverStats {
    /// Requests received.
    pub count: u64,
    /// Receipt time of the first and last request (unix ns; 0 if none).
    pub first_ns: u64,
    pub last_ns: u64,
    /// Publish→receipt latency percentiles over requests that carried a
    /// publish time (µs).
    pub latency: Option<Percentiles>,
}

/// Percentiles of a set of durations, in microseconds.
#[derive(Debug, Default, Clone, Copy, Serialize, Deserialize)]
pub struct Percentiles {
    pub samples: u64,
    pub p50_us: f64,
    pub p95_us: f64,
    pub p99_us: f64,
    pub max_us: f64,
}

impl Percentiles {
    /// Nearest-rank percentiles of `values` (nanoseconds); sorts them.
    pub fn of_nanos(values: &mut [u64]) -> Option<Self> {
        if values.is_empty() {
            return None;
        }
        values.sort_unstable();
        let rank = |q: f64| {
            let i = ((q * values.len() as f64).ceil() as usize).clamp(1, values.len()) - 1;
            values[i] as f64 / 1000.0
        };
        Some(Percentiles {
            samples: values.len() as u64,
            p50_us: rank(0.50),
            p95_us: rank(0.95),
            p99_us: rank(0.99),
            max_us: rank(1.0),
        })
    }
}

/// CPU time (user + system) of a process so far, in clock ticks, from
/// `/proc/<pid>/stat`.
pub fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which ends at the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line, so 12 and 13
    // counted from the state field (field 3).
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// A `/proc/<pid>/status` value in kB, e.g. `VmHWM` (peak resident set).
pub fn status_kb(pid: u32, name: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|line| {
        let value = line.strip_prefix(name)?.strip_prefix(':')?;
        value.trim().trim_end_matches("kB").trim().parse().ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_publish_time_is_found_in_a_body() {
        let data = event_data(1_234_567_890_123, 200);
        let body = serde_json::json!({"id": "evt_x", "type": "t", "data": data}).to_string();
        assert_eq!(sent_ns_of(body.as_bytes()), Some(1_234_567_890_123));
        assert_eq!(sent_ns_of(b"{\"data\":{}}"), None);
    }

    #[test]
    fn percentiles_by_nearest_rank() {
        let mut values: Vec<u64> = (1..=100).map(|n| n * 1000).collect();
        let p = Percentiles::of_nanos(&mut values).unwrap();
        assert_eq!((p.p50_us, p.p99_us, p.max_us), (50.0, 99.0, 100.0));
        assert!(Percentiles::of_nanos(&mut []).is_none());
    }

    #[test]
    fn this_process_has_cpu_time_and_memory() {
        let pid = std::process::id();
        assert!(cpu_ticks(pid).is_some());
        assert!(status_kb(pid, "VmHWM").unwrap_or(0) > 0);
    }
}
