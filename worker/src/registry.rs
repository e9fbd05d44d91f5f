//! The fleet's view of itself: each worker writes a heartbeat to Redis every
//! two seconds (`hf:workers` hash + `hf:workers_seen` sorted set), which
//! `GET /api/v1/admin/workers` lists; a worker that stops heartbeating
//! drops off after `HOOKFLEET_WORKER_TIMEOUT`. A clean shutdown removes it at
//! once.

use std::sync::Arc;
use std::time::{Duration, Instant};

use hookfleet_common::outage::{RedisOutage, Source};
use hookfleet_common::redis_pool::RedisPool;
use hookfleet_common::store::workers;
use hookfleet_common::time_util::now_ms;
use hookfleet_common::Keys;
use rand::Rng;
use serde::Serialize;
use tokio::sync::watch;

use crate::metrics::WorkerMetrics;

/// One heartbeat, as stored and listed.
#[derive(Debug, Clone, Serialize)]
pub struct Heartbeat {
    pub id: String,
    pub host: String,
    pub pid: u32,
    pub started_at: u64,
    pub last_heartbeat: u64,
    pub in_flight: i64,
    pub deliveries_per_second: f64,
    pub version: &'static str,
}

/// This process's worker id: host, pid and a random suffix.
pub fn worker_id() -> (String, String) {
    let host = std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|| "unknown".into());
    let suffix: u32 = rand::rng().random();
    (format!("{host}-{}-{suffix:08x}", std::process::id()), host)
}

/// Heartbeats until shutdown, then removes this worker from the registry.
/// Failures go to `outage`, which logs a Redis outage once for every loop.
pub async fn heartbeat(
    pool: RedisPool,
    keys: Keys,
    metrics: Arc<WorkerMetrics>,
    outage: Arc<RedisOutage>,
    mut shutdown: watch::Receiver<bool>,
) {
    const HEARTBEAT: Source = Source::task("heartbeat");
    let (id, host) = worker_id();
    let started_at = now_ms();
    let mut last_count = metrics.outcomes_total();
    let mut last_at = Instant::now();
    loop {
        let count = metrics.outcomes_total();
        let elapsed = last_at.elapsed().as_secs_f64().max(0.001);
        let beat = Heartbeat {
            id: id.clone(),
            host: host.clone(),
            pid: std::process::id(),
            started_at,
            last_heartbeat: now_ms(),
            in_flight: metrics.in_flight.get(),
            deliveries_per_second: (count.saturating_sub(last_count)) as f64 / elapsed,
            version: env!("CARGO_PKG_VERSION"),
        };
        (last_count, last_at) = (count, Instant::now());
        match write(&pool, &keys, &beat).await {
            Ok(()) => outage.succeeded(HEARTBEAT),
            Err(err) => outage.failed(HEARTBEAT, &err),
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(2)) => {}
            _ = crate::shutdown::wait(&mut shutdown) => break,
        }
    }
    if let Ok(mut conn) = pool.get().await {
        let _ = workers::remove(&mut conn, &keys, std::slice::from_ref(&id)).await;
    }
}

async fn write(pool: &RedisPool, keys: &Keys, beat: &Heartbeat) -> Result<(), String> {
    let json = serde_json::to_string(beat).map_err(|e| e.to_string())?;
    let mut conn = pool.get().await.map_err(|e| e.to_string())?;
    workers::beat(&mut conn, keys, &beat.id, &json, beat.last_heartbeat)
        .await
        .map_err(|e| e.to_string())
}
