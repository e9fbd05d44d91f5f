//! Endpoint statistics kept cheaply: counters in time buckets, and attempt
//! latencies in a log-scale histogram inside the same buckets.
//!
//! Each attempt adds to two buckets of its endpoint: a 5-minute one (kept
//! 25 hours, read for the 1 h and 24 h windows) and an hourly one (kept 8
//! days, read for the 7 d window). A window is the sum of its buckets, so a
//! stats request reads at most 288 small hashes and never scans the log.
//! Latency bins are half powers of two (…, 1.4 ms, 2 ms, 2.8 ms, …), so a
//! percentile is reported as the upper edge of its bin: at most 41% high.

/// 5 minutes, in ms.
pub const FINE_BUCKET_MS: u64 = 5 * 60 * 1000;
/// 1 hour, in ms.
pub const COARSE_BUCKET_MS: u64 = 60 * 60 * 1000;
/// How long fine buckets live.
pub const FINE_TTL_MS: u64 = 25 * 60 * 60 * 1000;
/// How long coarse buckets live.
pub const COARSE_TTL_MS: u64 = 8 * 24 * 60 * 60 * 1000;
/// Number of latency bins (bin 47 holds everything from ~11.6 min up).
pub const LATENCY_BINS: usize = 48;

/// The histogram bin of a latency: `floor(2 * log2(ms + 1))`, capped.
pub fn latency_bin(ms: u64) -> usize {
    let x = (ms + 1) as f64;
    ((2.0 * x.log2()).floor() as usize).min(LATENCY_BINS - 1)
}

/// The upper edge of a bin, in ms (what a percentile in that bin reports).
pub fn bin_upper_ms(bin: usize) -> u64 {
    let edge = 2f64.powf((bin as f64 + 1.0) / 2.0) - 1.0;
    edge.ceil().max(1.0) as u64
}

/// The field of a bucket hash counting attempts in latency bin `bin`.
pub fn latency_field(bin: usize) -> String {
    format!("lat_{bin}")
}

/// The `q`-quantile (0..=1) of a histogram, as a bin's upper edge in ms.
pub fn quantile(bins: &[u64; LATENCY_BINS], q: f64) -> Option<u64> {
    let total: u64 = bins.iter().sum();
    if total == 0 {
        return None;
    }
    let rank = ((q * total as f64).ceil() as u64).clamp(1, total);
    let mut seen = 0;
    for (bin, count) in bins.iter().enumerate() {
        seen += count;
        if seen >= rank {
            return Some(bin_upper_ms(bin));
        }
    }
    None
}

/// The bucket starts covering the window `[now - window_ms, now]`.
pub fn buckets(now_ms: u64, window_ms: u64, bucket_ms: u64) -> Vec<u64> {
    let last = now_ms / bucket_ms * bucket_ms;
    let first = now_ms.saturating_sub(window_ms) / bucket_ms * bucket_ms;
    (0..)
        .map(|i| first + i * bucket_ms)
        .take_while(|start| *start <= last)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bins_grow_by_half_powers_of_two() {
        assert_eq!(latency_bin(0), 0);
        assert_eq!(latency_bin(1), 2);
        assert_eq!(latency_bin(3), 4);
        assert!(latency_bin(100) < latency_bin(200));
        assert_eq!(latency_bin(u64::MAX / 4), LATENCY_BINS - 1);
        for ms in [1u64, 7, 50, 999, 30_000] {
            let upper = bin_upper_ms(latency_bin(ms));
            assert!(
                upper >= ms && upper as f64 <= (ms as f64 + 1.0) * 1.42,
                "{ms} -> {upper}"
            );
        }
    }

    #[test]
    fn quantiles_come_from_the_right_bins() {
        let mut bins = [0u64; LATENCY_BINS];
        for ms in 1..=100u64 {
            bins[latency_bin(ms)] += 1;
        }
        let p50 = quantile(&bins, 0.5).unwrap();
        let p99 = quantile(&bins, 0.99).unwrap();
        assert!((50..=72).contains(&p50), "{p50}");
        assert!((99..=142).contains(&p99), "{p99}");
        assert_eq!(quantile(&[0; LATENCY_BINS], 0.5), None);
    }

    #[test]
    fn windows_cover_their_buckets() {
        let now = 10 * COARSE_BUCKET_MS + 1234;
        assert_eq!(buckets(now, COARSE_BUCKET_MS, COARSE_BUCKET_MS).len(), 2);
        assert_eq!(buckets(now, COARSE_BUCKET_MS, FINE_BUCKET_MS).len(), 13);
        assert_eq!(
            *buckets(now, 0, FINE_BUCKET_MS).last().unwrap(),
            now / FINE_BUCKET_MS * FINE_BUCKET_MS
        );
    }
}
