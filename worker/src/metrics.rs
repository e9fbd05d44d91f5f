//! The worker's Prometheus metrics, served at `/metrics` on
//! `HOOKFLEET_METRICS_LISTEN`.

use std::net::SocketAddr;
use std::sync::Arc;

use hookfleet_common::metrics::QueueGauges;
use prometheus::{Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts, Registry};

/// Everything the worker counts.
pub struct WorkerMetrics {
    pub registry: Registry,
    /// Attempts by what they meant: delivered, retry, failed.
    pub outcomes: IntCounterVec,
    /// Attempts by status class: 2xx, 3xx, 4xx, 5xx, error.
    pub attempts: IntCounterVec,
    /// `outcomes` for each of [`OUTCOMES`] and `attempts` for each of
    /// [`CLASSES`], resolved once (a label lookup per attempt hashes and
    /// locks on the hot path).
    by_outcome: [IntCounter; 3],
    by_class: [IntCounter; 5],
    /// Wall time of one attempt (request and response excerpt).
    pub attempt_duration: Histogram,
    /// From publish to a successful delivery.
    pub delivery_latency: Histogram,
    /// Attempts running in this worker now.
    pub in_flight: IntGauge,
    /// Claim calls made.
    pub claims: IntCounter,
    /// Claim calls that found nothing due (the loop then sets the
    /// partition aside until something is).
    pub empty_claims: IntCounter,
    /// Deliveries handed out by claims.
    pub claimed: IntCounter,
    /// Deliveries pushed back by endpoint rate limits.
    pub rate_limited: IntCounter,
    /// Endpoints a claim left waiting at their concurrency limit.
    pub at_capacity: IntCounter,
    /// Endpoints a claim left to other workers: their tenant held its
    /// share of this worker's slots.
    pub share_skips: IntCounter,
    /// Failed Redis calls (claims, records).
    pub redis_errors: IntCounter,
    pub queue: QueueGauges,
}

/// The values of `outcomes`' label.
pub const OUTCOMES: [&str; 3] = ["delivered", "retry", "failed"];
/// The values of `attempts`' label.
pub const CLASSES: [&str; 5] = ["2xx", "3xx", "4xx", "5xx", "error"];

const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
    300.0, 1800.0, 7200.0, 36000.0,
];

impl WorkerMetrics {
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let outcomes = IntCounterVec::new(
            Opts::new(
                "hookfleet_attempt_outcomes_total",
                "Attempts by outcome (delivered, retry, failed).",
            ),
            &["outcome"],
        )?;
        let attempts = IntCounterVec::new(
            Opts::new(
                "hookfleet_attempts_total",
                "Attempts by HTTP status class (2xx … 5xx, error).",
            ),
            &["class"],
        )?;
        let attempt_duration = Histogram::with_opts(
            HistogramOpts::new(
                "hookfleet_attempt_duration_seconds",
                "Duration of one delivery attempt.",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
        )?;
        let delivery_latency = Histogram::with_opts(
            HistogramOpts::new(
                "hookfleet_delivery_latency_seconds",
                "Time from publishing an event to its successful delivery (retries included).",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
        )?;
        let in_flight = IntGauge::new(
            "hookfleet_worker_in_flight",
            "Attempts running in this worker.",
        )?;
        let claims = IntCounter::new("hookfleet_claims_total", "Claim calls made to Redis.")?;
        let empty_claims = IntCounter::new(
            "hookfleet_claims_empty_total",
            "Claim calls that found nothing due in their partition.",
        )?;
        let claimed = IntCounter::new(
            "hookfleet_claimed_total",
            "Deliveries handed to this worker.",
        )?;
        let rate_limited = IntCounter::new(
            "hookfleet_rate_limited_total",
            "Deliveries deferred because their endpoint's rate limit was reached.",
        )?;
        let at_capacity = IntCounter::new(
            "hookfleet_endpoints_at_capacity_total",
            "Times a claim left an endpoint's due deliveries waiting because the endpoint had its most attempts in flight (max_in_flight, lowered while it times out).",
        )?;
        let share_skips = IntCounter::new(
            "hookfleet_tenant_share_skips_total",
            "Times a claim of this worker skipped an endpoint because its tenant held its share of this worker's slots (HOOKFLEET_TENANT_SHARE).",
        )?;
        let redis_errors = IntCounter::new("hookfleet_redis_errors_total", "Failed Redis calls.")?;
        for metric in [
            Box::new(outcomes.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(attempts.clone()),
            Box::new(attempt_duration.clone()),
            Box::new(delivery_latency.clone()),
            Box::new(in_flight.clone()),
            Box::new(claims.clone()),
            Box::new(empty_claims.clone()),
            Box::new(claimed.clone()),
            Box::new(rate_limited.clone()),
            Box::new(at_capacity.clone()),
            Box::new(share_skips.clone()),
            Box::new(redis_errors.clone()),
        ] {
            registry.register(metric)?;
        }
        hookfleet_common::filter::register(&registry)?;
        let queue = QueueGauges::register(&registry)?;
        let by_outcome = OUTCOMES.map(|outcome| outcomes.with_label_values(&[outcome]));
        let by_class = CLASSES.map(|class| attempts.with_label_values(&[class]));
        Ok(Self {
            registry,
            outcomes,
            attempts,
            by_outcome,
            by_class,
            attempt_duration,
            delivery_latency,
            in_flight,
            claims,
            empty_claims,
            claimed,
            rate_limited,
            at_capacity,
            share_skips,
            redis_errors,
            queue,
        })
    }
}

impl WorkerMetrics {
    /// Counts an attempt of status class `class` (one of [`CLASSES`]).
    pub fn count_attempt(&self, class: &str) {
        count(&self.attempts, &CLASSES, &self.by_class, class);
    }

    /// Counts an attempt's outcome (one of [`OUTCOMES`]).
    pub fn count_outcome(&self, outcome: &str) {
        count(&self.outcomes, &OUTCOMES, &self.by_outcome, outcome);
    }

    /// Attempts counted by outcome, all together.
    pub fn outcomes_total(&self) -> u64 {
        self.by_outcome.iter().map(IntCounter::get).sum()
    }
}

/// Counts one under `label` of `vec`: through its counter resolved at
/// start when `label` is one of `labels` (`resolved` in the same order),
/// else by a label lookup.
fn count(vec: &IntCounterVec, labels: &[&str], resolved: &[IntCounter], label: &str) {
    match labels.iter().position(|l| *l == label) {
        Some(i) => {
            if let Some(counter) = resolved.get(i) {
                counter.inc();
            }
        }
        None => vec.with_label_values(&[label]).inc(),
    }
}

/// Binds the metrics listener (so a bad address fails start-up) and
/// returns the server future and the bound address.
pub async fn bind(
    addr: SocketAddr,
    metrics: Arc<WorkerMetrics>,
) -> std::io::Result<(
    SocketAddr,
    impl std::future::Future<Output = std::io::Result<()>>,
)> {
    use poem::listener::{Acceptor, Listener, TcpListener};
    use poem::{get, handler, web::Data, EndpointExt, Route};

    #[handler]
    fn render(Data(metrics): Data<&Arc<WorkerMetrics>>) -> String {
        hookfleet_common::metrics::encode(&metrics.registry)
    }

    let acceptor = TcpListener::bind(addr).into_acceptor().await?;
    let bound = acceptor
        .local_addr()
        .first()
        .and_then(|a| a.as_socket_addr().copied())
        .unwrap_or(addr);
    let app = Route::new().at("/metrics", get(render)).data(metrics);
    Ok((bound, poem::Server::new_with_acceptor(acceptor).run(app)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_class_and_outcome_counts_under_its_own_label() {
        let metrics = WorkerMetrics::new().unwrap();
        for (n, class) in CLASSES.iter().enumerate() {
            for _ in 0..=n {
                metrics.count_attempt(class);
            }
        }
        for (n, outcome) in OUTCOMES.iter().enumerate() {
            for _ in 0..=n {
                metrics.count_outcome(outcome);
            }
        }
        for (n, class) in CLASSES.iter().enumerate() {
            assert_eq!(
                metrics.attempts.with_label_values(&[class]).get(),
                n as u64 + 1
            );
        }
        for (n, outcome) in OUTCOMES.iter().enumerate() {
            assert_eq!(
                metrics.outcomes.with_label_values(&[outcome]).get(),
                n as u64 + 1
            );
        }
        assert_eq!(metrics.outcomes_total(), 6);
    }
}
