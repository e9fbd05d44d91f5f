//! Operator views (admin key): the live workers of the fleet and each
//! queue partition's depth.

use hookfleet_common::store::reads;
use hookfleet_common::store::workers as store_workers;
use hookfleet_common::time_util::{now_ms, rfc3339_ms};
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};
use serde::Deserialize;

use super::ApiTags;
use crate::auth::AdminAuth;
use crate::error::ApiError;
use crate::state::AppState;

pub struct AdminApi {
    pub state: AppState,
}

/// A live worker, from its last heartbeat (sent every 2 s).
#[derive(Object, Deserialize)]
#[oai(example)]
pub struct Worker {
    /// The worker's id: host, process id and a random suffix.
    pub id: String,
    /// The host (container) it runs on.
    pub host: String,
    /// Its process id.
    pub pid: u32,
    /// When it started (RFC 3339).
    #[serde(skip)]
    pub started: String,
    /// When it last reported (RFC 3339).
    #[serde(skip)]
    pub last_heartbeat: String,
    /// Attempts it is running now.
    pub in_flight: i64,
    /// Attempts per second it made over its last heartbeat interval.
    pub deliveries_per_second: f64,
    /// Its version.
    pub version: String,
    #[oai(skip)]
    #[serde(rename = "started_at")]
    pub started_ms: u64,
    #[oai(skip)]
    #[serde(rename = "last_heartbeat")]
    pub heartbeat_ms: u64,
}

/// One queue partition now (the figures the metrics export as gauges).
#[derive(Object)]
#[oai(example)]
pub struct QueuePartition {
    /// The partition's number (0 to `HOOKFLEET_PARTITIONS` − 1).
    pub partition: u16,
    /// Deliveries waiting in it: due now, scheduled for later, or held.
    pub queued: u64,
    /// Deliveries being attempted (leased to a worker).
    pub in_flight: u64,
    /// How long the longest-waiting due endpoint has been due (ms); absent
    /// when nothing is due. Growing steadily means the fleet is behind.
    #[oai(skip_serializing_if_is_none)]
    pub oldest_due_age_ms: Option<u64>,
    /// Ordered (`fifo`) endpoints whose line is held by a delivery waiting
    /// for its retry.
    pub fifo_held: u64,
    /// How long the oldest of those deliveries has waited since it was
    /// queued (ms); absent when none is held.
    #[oai(skip_serializing_if_is_none)]
    pub fifo_head_age_ms: Option<u64>,
}

#[OpenApi(prefix_path = "/api/v1", tag = "ApiTags::Admin")]
impl AdminApi {
    /// List live workers
    ///
    /// Workers that sent a heartbeat within `HOOKFLEET_WORKER_TIMEOUT`
    /// (15 s by default), oldest first; silent ones are dropped from the
    /// registry. Admin key only.
    #[oai(path = "/admin/workers", method = "get", operation_id = "list_workers")]
    async fn workers(&self, auth: AdminAuth) -> Result<Json<Vec<Worker>>, ApiError> {
        self.state.admin(&auth)?;
        let keys = &self.state.store.keys;
        let cutoff =
            now_ms().saturating_sub(self.state.store.config.worker_timeout.as_millis() as u64);
        let mut conn = self.state.conn().await?;
        let beats = store_workers::live(&mut conn, keys, cutoff).await?;
        let mut workers: Vec<Worker> = beats
            .iter()
            .filter_map(|json| serde_json::from_str::<Worker>(json).ok())
            .map(|mut w| {
                w.started = rfc3339_ms(w.started_ms);
                w.last_heartbeat = rfc3339_ms(w.heartbeat_ms);
                w
            })
            .collect();
        workers.sort_by_key(|w| w.started_ms);
        Ok(Json(workers))
    }

    /// List queue partitions
    ///
    /// Every partition's depth, deliveries in flight and how long its
    /// oldest due work has waited, read in one round trip. Admin key only.
    #[oai(path = "/admin/queues", method = "get", operation_id = "list_queues")]
    async fn queues(&self, auth: AdminAuth) -> Result<Json<Vec<QueuePartition>>, ApiError> {
        self.state.admin(&auth)?;
        let config = &self.state.store.config;
        let partitions: Vec<_> = config.all_partitions().collect();
        let mut conn = self.state.conn().await?;
        let depths = reads::queue_depths(&mut conn, &self.state.store.keys, &partitions).await?;
        let now = now_ms();
        Ok(Json(
            partitions
                .iter()
                .zip(depths)
                .map(|(p, depth)| QueuePartition {
                    partition: p.0,
                    queued: depth.queued,
                    in_flight: depth.in_flight,
                    oldest_due_age_ms: depth
                        .first_due_ms
                        .filter(|due| *due <= now)
                        .map(|due| now - due),
                    fifo_held: depth.fifo_held,
                    fifo_head_age_ms: depth
                        .fifo_oldest_head_ms
                        .map(|queued| now.saturating_sub(queued)),
                })
                .collect(),
        ))
    }
}
