//! What every handler shares: configuration, key names and the Redis pool.

use std::sync::Arc;

use governor::DefaultKeyedRateLimiter;
use hookfleet_common::redis_pool::{RedisConn, RedisPool};
use hookfleet_common::store::caps;
pub use hookfleet_common::store::caps::{CappedAdd, CappedHash};
use hookfleet_common::{Config, Keys};

use crate::error::ApiError;

/// Cheap to clone; one per process.
#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub keys: Keys,
    pub pool: RedisPool,
    /// Request budget per API key (in-process: each API instance grants
    /// the full budget, which is the usual trade-off for an edge limit).
    pub limiter: Arc<DefaultKeyedRateLimiter<String>>,
    pub metrics: Arc<crate::metrics::ApiMetrics>,
    /// Single publishes share `publish.lua` calls through it
    /// (`hookfleet_common::publish::Coalescer`).
    pub coalescer: hookfleet_common::publish::Coalescer,
    /// Test sends waiting for their attempts (`crate::test_send`).
    pub attempt_waiters: Arc<crate::test_send::AttemptWaiters>,
}

impl AppState {
    /// A pooled connection, or 503 when Redis is unreachable.
    pub async fn conn(&self) -> Result<RedisConn, ApiError> {
        Ok(self.pool.get().await?)
    }

    /// Adds `field` to one of a tenant's capped hashes (its webhooks, its
    /// event types): the cap check and the write are one step, so
    /// concurrent creates cannot overshoot the cap.
    pub async fn capped_add(
        &self,
        hash: CappedHash<'_>,
        cap: u64,
        field: &str,
        value: &str,
    ) -> Result<CappedAdd, ApiError> {
        let mut conn = self.conn().await?;
        Ok(caps::capped_add(&mut conn, &self.keys, hash, cap, field, value).await?)
    }
}
