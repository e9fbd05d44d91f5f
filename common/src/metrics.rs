//! Prometheus metrics both binaries expose: the queue's depth and the age of
//! its oldest due delivery per partition (sampled from Redis), and the text
//! encoding of a registry.

use crate::redis_pool::RedisPool;
use prometheus::{Encoder, GaugeVec, IntGaugeVec, Opts, Registry, TextEncoder};

use crate::time_util::now_ms;
use crate::{Config, Keys};

/// Queue gauges, labelled by partition.
#[derive(Clone)]
pub struct QueueGauges {
    depth: IntGaugeVec,
    oldest_due_age: GaugeVec,
    in_flight: IntGaugeVec,
    fifo_head_age: GaugeVec,
    fifo_held: IntGaugeVec,
}

impl QueueGauges {
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let depth = IntGaugeVec::new(
            Opts::new(
                "hookfleet_queue_depth",
                "Deliveries waiting to be handed out (first attempts and later ones, due now or later; held ones of disabled endpoints included).",
            ),
            &["partition"],
        )?;
        let oldest_due_age = GaugeVec::new(
            Opts::new(
                "hookfleet_queue_oldest_due_age_seconds",
                "How long the earliest due delivery of an enabled endpoint has been due (0 when none is): a growing value means workers fall behind.",
            ),
            &["partition"],
        )?;
        let in_flight = IntGaugeVec::new(
            Opts::new("hookfleet_queue_in_flight", "Deliveries leased to workers."),
            &["partition"],
        )?;
        let fifo_head_age = GaugeVec::new(
            Opts::new(
                "hookfleet_fifo_head_age_seconds",
                "For ordered (FIFO) endpoints held by a delivery waiting for its retry: how long the oldest such delivery has waited since it was queued (0 when none is). A growing value is a receiver holding its line.",
            ),
            &["partition"],
        )?;
        let fifo_held = IntGaugeVec::new(
            Opts::new(
                "hookfleet_fifo_held_endpoints",
                "Ordered (FIFO) endpoints whose line is held by a delivery waiting for its retry.",
            ),
            &["partition"],
        )?;
        registry.register(Box::new(fifo_head_age.clone()))?;
        registry.register(Box::new(fifo_held.clone()))?;
        registry.register(Box::new(depth.clone()))?;
        registry.register(Box::new(oldest_due_age.clone()))?;
        registry.register(Box::new(in_flight.clone()))?;
        Ok(Self {
            depth,
            oldest_due_age,
            in_flight,
            fifo_head_age,
            fifo_held,
        })
    }

    /// Reads every partition's counter, ready and lease sets in one round
    /// trip.
    pub async fn sample(
        &self,
        pool: &RedisPool,
        keys: &Keys,
        config: &Config,
    ) -> Result<(), String> {
        let partitions: Vec<_> = config.all_partitions().collect();
        let mut conn = pool.get().await.map_err(|e| e.to_string())?;
        let depths = crate::store::reads::queue_depths(&mut conn, keys, &partitions)
            .await
            .map_err(|e| e.to_string())?;
        let now = now_ms();
        for (p, depth) in partitions.iter().zip(depths) {
            let label = p.0.to_string();
            let age = depth
                .first_due_ms
                .map(|due| now.saturating_sub(due) as f64 / 1000.0)
                .unwrap_or(0.0);
            self.depth
                .with_label_values(&[&label])
                .set(depth.queued as i64);
            self.oldest_due_age.with_label_values(&[&label]).set(age);
            self.in_flight
                .with_label_values(&[&label])
                .set(depth.in_flight as i64);
            let head_age = depth
                .fifo_oldest_head_ms
                .map(|queued| now.saturating_sub(queued) as f64 / 1000.0)
                .unwrap_or(0.0);
            self.fifo_head_age
                .with_label_values(&[&label])
                .set(head_age);
            self.fifo_held
                .with_label_values(&[&label])
                .set(depth.fifo_held as i64);
        }
        Ok(())
    }
}

/// The registry in Prometheus' text format.
pub fn encode(registry: &Registry) -> String {
    let mut out = Vec::new();
    if TextEncoder::new()
        .encode(&registry.gather(), &mut out)
        .is_err()
    {
        return String::new();
    }
    String::from_utf8(out).unwrap_or_default()
}
