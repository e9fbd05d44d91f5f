//! What every handler shares: configuration, key names and the Redis pool.

use std::sync::Arc;

use governor::DefaultKeyedRateLimiter;
use hookfleet_common::redis_pool::{RedisConn, RedisPool};
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
}

impl AppState {
    /// A pooled connection, or 503 when Redis is unreachable.
    pub async fn conn(&self) -> Result<RedisConn, ApiError> {
        Ok(self.pool.get().await?)
    }
}
