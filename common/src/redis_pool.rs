//! The Redis connection pool both binaries use.
//!
//! Timeouts are chosen so that a Redis outage surfaces quickly as an error
//! the API can answer with 503, instead of requests piling up behind a pool
//! that waits forever: 2 s to connect, 3 s to wait for a pooled connection.
//! The response timeout is long (10 s) on purpose: redis-rs' default of
//! 500 ms reports a slow but successful script (an AOF fsync stall, a large
//! endpoint deletion) as a failure after Redis has applied it, and the
//! caller would then do it again.

use std::time::Duration;

use deadpool_redis::{Manager, Pool, Runtime};
use redis::AsyncConnectionConfig;

use crate::Config;

/// Builds a pool; it connects lazily, so this succeeds while Redis is down.
pub fn create_pool(config: &Config) -> Result<Pool, String> {
    let connection = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(2)))
        .set_response_timeout(Some(Duration::from_secs(10)));
    let manager = Manager::new_with_config(config.redis_url.as_str(), connection)
        .map_err(|err| format!("HOOKFLEET_REDIS_URL: {err}"))?;
    Pool::builder(manager)
        .max_size(config.redis_pool)
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(Duration::from_secs(3)))
        .create_timeout(Some(Duration::from_secs(3)))
        .recycle_timeout(Some(Duration::from_secs(2)))
        .build()
        .map_err(|err| format!("HOOKFLEET_REDIS_URL: cannot build a Redis pool: {err}"))
}
