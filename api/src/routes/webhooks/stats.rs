//! `GET /api/v1/webhooks/{id}/stats`: an endpoint's attempts, success
//! rate, latency and ended deliveries over a window, its backlog now, and
//! its last success and failure. Everything is read from counters that
//! `record.lua` adds to as attempts are recorded, in 5-minute and hourly
//! buckets (`common/src/stats.rs`), never from the log.

use std::collections::HashMap;

use hookfleet_common::stats::{self, LATENCY_BINS};
use hookfleet_common::store::reads;
use hookfleet_common::time_util::{now_ms, rfc3339_ms};
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};

use super::load_endpoint;
use crate::auth::ApiKeyAuth;
use crate::error::ApiError;
use crate::routes::ApiTags;
use crate::state::AppState;

/// The statistics route.
pub struct StatsApi {
    pub state: AppState,
}

/// Latency percentiles, in ms (upper edges of log-scale bins: within 41%).
#[derive(Object)]
#[oai(example)]
pub struct Latency {
    /// Half of the attempts took at most this long.
    pub p50: u64,
    /// 95% of the attempts took at most this long.
    pub p95: u64,
    /// 99% of the attempts took at most this long.
    pub p99: u64,
}

/// The time and HTTP status of an attempt.
#[derive(Object)]
#[oai(example)]
pub struct LastAttempt {
    /// When (RFC 3339).
    pub at: String,
    /// The HTTP status; absent when there was no answer.
    #[oai(skip_serializing_if_is_none)]
    pub status_code: Option<u16>,
}

/// One bucket of an endpoint's statistics: 5 minutes in the `1h` and
/// `24h` windows, an hour in `7d`.
#[derive(Object)]
#[oai(example)]
pub struct StatsBucket {
    /// When the bucket starts (RFC 3339).
    pub start: String,
    /// Attempts made in it.
    pub attempts: u64,
    /// Of those, answered 2xx.
    pub succeeded: u64,
    /// Of those, failed (non-2xx or no answer).
    pub failed: u64,
    /// Half of its attempts took at most this long (ms); absent without
    /// attempts.
    #[oai(skip_serializing_if_is_none)]
    pub p50: Option<u64>,
    /// 95% of its attempts took at most this long (ms).
    #[oai(skip_serializing_if_is_none)]
    pub p95: Option<u64>,
    /// 99% of its attempts took at most this long (ms).
    #[oai(skip_serializing_if_is_none)]
    pub p99: Option<u64>,
}

/// Latency percentiles of one set of counters.
fn percentiles(counters: &HashMap<String, u64>) -> (Option<u64>, Option<u64>, Option<u64>) {
    let mut bins = [0u64; LATENCY_BINS];
    for (bin, slot) in bins.iter_mut().enumerate() {
        *slot = counters
            .get(&stats::latency_field(bin))
            .copied()
            .unwrap_or(0);
    }
    (
        stats::quantile(&bins, 0.5),
        stats::quantile(&bins, 0.95),
        stats::quantile(&bins, 0.99),
    )
}

/// An endpoint's statistics over a window (test sends excluded).
#[derive(Object)]
#[oai(example)]
pub struct WebhookStats {
    /// `1h`, `24h` or `7d`.
    #[oai(validator(pattern = "^(1h|24h|7d)$"))]
    pub window: String,
    /// Attempts made in the window.
    pub attempts: u64,
    /// Attempts answered 2xx.
    pub attempts_succeeded: u64,
    /// Attempts that failed (non-2xx or no answer).
    pub attempts_failed: u64,
    /// `attempts_succeeded / attempts`; absent without attempts.
    #[oai(skip_serializing_if_is_none)]
    pub success_rate: Option<f64>,
    /// Attempt latency; absent without attempts.
    #[oai(skip_serializing_if_is_none)]
    pub latency_ms: Option<Latency>,
    /// Deliveries that ended `delivered` in the window.
    pub delivered: u64,
    /// Deliveries that ended `failed` in the window.
    pub failed: u64,
    /// Deliveries not ended now (pending, in flight, scheduled, held).
    pub backlog: u64,
    /// Of the backlog, those held because the webhook is paused (they go
    /// out on resume) or disabled (they go out when it is enabled); 0
    /// while it is enabled. The webhook's `status` says which.
    pub held: u64,
    /// The last successful attempt ever.
    #[oai(skip_serializing_if_is_none)]
    pub last_success: Option<LastAttempt>,
    /// The last failed attempt ever.
    #[oai(skip_serializing_if_is_none)]
    pub last_failure: Option<LastAttempt>,
    /// The window bucket by bucket, oldest first, for charts: the
    /// five-minute buckets (`1h`, `24h`) or hourly ones (`7d`) that cover
    /// it, the first of which may start before it. Absent with
    /// `series=false`.
    #[oai(skip_serializing_if_is_none)]
    pub series: Option<Vec<StatsBucket>>,
}

#[OpenApi(prefix_path = "/api/v1", tag = "ApiTags::Webhooks")]
impl StatsApi {
    /// Get a webhook's statistics
    ///
    /// Attempts, success rate, latency percentiles and ended deliveries in
    /// the window (`1h`, `24h` — the default — or `7d`), the backlog now, and
    /// the last success and failure, and the window bucket by bucket
    /// (`series`, for charts). Kept as counters in 5-minute and hourly
    /// buckets, so reading them never scans the log. Test sends are not
    /// counted.
    #[oai(
        path = "/webhooks/:id/stats",
        method = "get",
        operation_id = "get_webhook_stats"
    )]
    async fn stats(
        &self,
        auth: ApiKeyAuth,
        /// The endpoint's id (`ep_…`).
        id: Path<String>,
        /// `1h`, `24h` (default) or `7d`.
        #[oai(validator(pattern = "^(1h|24h|7d)$"))]
        window: Query<Option<String>>,
        /// `false` leaves out `series` (288 buckets for `24h`), for a
        /// listing that needs only the totals; `true` by default.
        series: Query<Option<bool>>,
    ) -> Result<Json<WebhookStats>, ApiError> {
        let tenant = self.state.tenant(&auth).await?;
        let window = window.0.unwrap_or_else(|| "24h".into());
        let (window_ms, bucket_ms) = match window.as_str() {
            "1h" => (stats::COARSE_BUCKET_MS, stats::FINE_BUCKET_MS),
            "24h" => (24 * stats::COARSE_BUCKET_MS, stats::FINE_BUCKET_MS),
            "7d" => (7 * 24 * stats::COARSE_BUCKET_MS, stats::COARSE_BUCKET_MS),
            _ => return Err(ApiError::bad_param("window", "must be 1h, 24h or 7d")),
        };
        let (p, record) = load_endpoint(&self.state, &tenant, &id.0).await?;
        let starts = stats::buckets(now_ms(), window_ms, bucket_ms);
        let fine = bucket_ms == stats::FINE_BUCKET_MS;
        let mut conn = self.state.conn().await?;
        let keys = &self.state.store.keys;
        let read = reads::endpoint_stats(&mut conn, keys, p, &record.id, &starts, fine).await?;
        let (sums, totals, waiting, in_flight) =
            (read.sums, read.totals, read.waiting, read.in_flight);
        let n = |name: &str| sums.get(name).copied().unwrap_or(0);
        let attempts = n("attempts");
        let latency_ms = match percentiles(&sums) {
            (Some(p50), Some(p95), Some(p99)) => Some(Latency { p50, p95, p99 }),
            _ => None,
        };
        let series = series.0.unwrap_or(true).then(|| {
            starts
                .iter()
                .zip(&read.buckets)
                .map(|(&start, bucket)| {
                    let count = |name: &str| bucket.get(name).copied().unwrap_or(0);
                    let (p50, p95, p99) = percentiles(bucket);
                    StatsBucket {
                        start: rfc3339_ms(start),
                        attempts: count("attempts"),
                        succeeded: count("ok"),
                        failed: count("attempts").saturating_sub(count("ok")),
                        p50,
                        p95,
                        p99,
                    }
                })
                .collect()
        });
        let last = |at: &str, code: &str| {
            totals
                .get(at)
                .and_then(|v| v.parse().ok())
                .map(|ms| LastAttempt {
                    at: rfc3339_ms(ms),
                    status_code: totals.get(code).and_then(|v| v.parse().ok()),
                })
        };
        Ok(Json(WebhookStats {
            window,
            attempts,
            attempts_succeeded: n("ok"),
            attempts_failed: attempts.saturating_sub(n("ok")),
            success_rate: (attempts > 0).then(|| n("ok") as f64 / attempts as f64),
            latency_ms,
            delivered: n("delivered"),
            failed: n("failed"),
            backlog: waiting + in_flight,
            held: if !record.active || record.paused {
                waiting
            } else {
                0
            },
            last_success: last("last_success_at", "last_success_code"),
            last_failure: last("last_failure_at", "last_failure_code"),
            series,
        }))
    }
}
