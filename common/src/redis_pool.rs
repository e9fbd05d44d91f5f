//! The Redis connection pool both binaries use.
//!
//! Timeouts are set so that a Redis outage surfaces quickly as an error the
//! API can answer with 503, instead of requests piling up behind a pool that
//! waits forever.

use std::time::Duration;

use deadpool_redis::{Pool, PoolConfig, Runtime, Timeouts};

use crate::Config;

/// Builds a pool; it connects lazily, so this succeeds while Redis is down.
pub fn create_pool(config: &Config) -> Result<Pool, String> {
    let mut pool_config = deadpool_redis::Config::from_url(config.redis_url.clone());
    pool_config.pool = Some(PoolConfig {
        max_size: config.redis_pool,
        timeouts: Timeouts {
            wait: Some(Duration::from_secs(3)),
            create: Some(Duration::from_secs(2)),
            recycle: Some(Duration::from_secs(2)),
        },
        ..PoolConfig::default()
    });
    pool_config
        .create_pool(Some(Runtime::Tokio1))
        .map_err(|err| format!("HOOKFLEET_REDIS_URL: cannot build a Redis pool: {err}"))
}
