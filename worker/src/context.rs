//! What every task of a worker shares: the storage handle (Redis pool, key
//! layout, configuration), the HTTP client, metrics, the recorder, the wake-up signal,
//! the tenant share and the outage log. Built once by [`crate::run`].

use std::sync::Arc;

use governor::DefaultDirectRateLimiter;
use hookfleet_common::outage::RedisOutage;
use hookfleet_common::store::Store;
use tokio::sync::Notify;

use crate::claim::ClaimSettings;
use crate::metrics::WorkerMetrics;
use crate::recorder::Recorder;
use crate::tenant_share::TenantShare;
use crate::wake::Woken;

/// What every claim and attempt task shares.
pub struct Context {
    /// Redis, the key layout and the configuration.
    pub store: Store,
    pub client: reqwest::Client,
    pub metrics: Arc<WorkerMetrics>,
    /// Records attempts, batched per partition (see recorder.rs).
    pub recorder: Recorder,
    /// The worker's own outbound budget (`HOOKFLEET_WORKER_MAX_RATE`):
    /// in-process, so governor's GCRA fits; fleet-wide per-endpoint limits
    /// live in Redis instead.
    pub outbound: Option<DefaultDirectRateLimiter>,
    /// Wakes the claim loop, and says for which partitions (wake.rs).
    pub notify: Arc<Notify>,
    pub woken: Arc<Woken>,
    /// What every claim passes claim.lua (lease, first delay, retention,
    /// default concurrency cap), worked out once.
    pub claim_settings: ClaimSettings,
    /// The slots each tenant holds here (`HOOKFLEET_TENANT_SHARE`).
    pub share: Arc<TenantShare>,
    /// Every loop's Redis failures go here, so an outage is logged once
    /// (outage.rs), not once per partition per back-off round.
    pub outage: Arc<RedisOutage>,
}
