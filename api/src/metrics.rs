//! The API's Prometheus metrics at `/metrics` (same port as the API):
//! requests by status class, events published, and the queue gauges
//! (depth, oldest due age and leases per partition), sampled on each scrape.

use poem::http::StatusCode;
use poem::{handler, web::Data};
use prometheus::{IntCounter, IntCounterVec, Opts, Registry};

use hookfleet_common::metrics::QueueGauges;

use crate::state::AppState;

/// Everything the API counts.
pub struct ApiMetrics {
    pub registry: Registry,
    /// Responses by status class (2xx, 4xx, 5xx, …).
    pub responses: IntCounterVec,
    /// `responses` for 1xx to 5xx, each resolved once (a label lookup per
    /// request hashes and locks on the hot path).
    by_class: [IntCounter; 5],
    /// Events accepted (202), duplicates by idempotency key excluded.
    pub published: IntCounter,
    /// Single publishes by how they found their subscribers.
    pub index_cache: IndexCacheCounters,
    pub queue: QueueGauges,
}

/// `hookfleet_api_index_cache_total` by result, each resolved once (a
/// label lookup per publish would hash and lock on the hot path).
pub struct IndexCacheCounters {
    /// Matched against this process's cached configuration.
    pub hit: IntCounter,
    /// Read from Redis (no copy, or one that did not know the type).
    pub miss: IntCounter,
    /// Refused for a cached copy a change had outdated, then read.
    pub stale: IntCounter,
}

impl ApiMetrics {
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let responses = IntCounterVec::new(
            Opts::new(
                "hookfleet_api_responses_total",
                "API responses by status class.",
            ),
            &["class"],
        )?;
        let published = IntCounter::new(
            "hookfleet_events_published_total",
            "Events accepted for delivery.",
        )?;
        registry.register(Box::new(responses.clone()))?;
        let index_cache = IntCounterVec::new(
            Opts::new(
                "hookfleet_api_index_cache_total",
                "Single publishes by how their subscribers were found: hit (this process's cached copy of the tenant's endpoints, types and cap), miss (read from Redis), stale (matched against a copy a change had outdated: refused by Redis and matched again).",
            ),
            &["result"],
        )?;
        registry.register(Box::new(published.clone()))?;
        registry.register(Box::new(index_cache.clone()))?;
        let index_cache = IndexCacheCounters {
            hit: index_cache.with_label_values(&["hit"]),
            miss: index_cache.with_label_values(&["miss"]),
            stale: index_cache.with_label_values(&["stale"]),
        };
        hookfleet_common::filter::register(&registry)?;
        let queue = QueueGauges::register(&registry)?;
        let by_class =
            ["1xx", "2xx", "3xx", "4xx", "5xx"].map(|class| responses.with_label_values(&[class]));
        Ok(Self {
            registry,
            by_class,
            responses,
            published,
            index_cache,
            queue,
        })
    }
}

/// `GET /metrics`.
#[handler]
pub async fn render(Data(state): Data<&AppState>) -> String {
    if let Err(err) = state
        .metrics
        .queue
        .sample(&state.store.pool, &state.store.keys, &state.store.config)
        .await
    {
        tracing::debug!(error = %err, "queue sampling failed");
    }
    hookfleet_common::metrics::encode(&state.metrics.registry)
}

impl ApiMetrics {
    /// Counts one response by its status class.
    pub fn count(&self, status: StatusCode) {
        let class = usize::from(status.as_u16() / 100);
        match class.checked_sub(1).and_then(|i| self.by_class.get(i)) {
            Some(counter) => counter.inc(),
            None => self
                .responses
                .with_label_values(&[&format!("{class}xx")])
                .inc(),
        }
    }
}
