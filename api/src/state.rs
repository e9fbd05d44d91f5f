//! What every handler shares: the storage handle (Redis pool, key names,
//! configuration), the request limiter, metrics, the publish coalescer and
//! the test sends waiting for their attempts.

use std::sync::Arc;

use governor::DefaultKeyedRateLimiter;
use hookfleet_common::redis_pool::RedisConn;
pub use hookfleet_common::store::caps::{CappedAdd, CappedHash};
use hookfleet_common::store::{caps, Store};

use crate::error::ApiError;

/// One per process, shared by every request: a clone is one reference
/// count (the routing gives each request its own copy). Its fields are
/// [`Shared`]'s.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl AppState {
    pub fn new(shared: Shared) -> Self {
        AppState(Arc::new(shared))
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// What an [`AppState`] holds.
pub struct Shared {
    /// Redis, the key layout and the configuration.
    pub store: Store,
    /// Request budget per API key (in-process: each API instance grants
    /// the full budget, which is the usual trade-off for an edge limit).
    pub limiter: Arc<DefaultKeyedRateLimiter<String>>,
    pub metrics: Arc<crate::metrics::ApiMetrics>,
    /// Single publishes share `publish.lua` calls through it
    /// (`hookfleet_common::publish::Coalescer`).
    pub coalescer: hookfleet_common::publish::Coalescer,
    /// Test sends waiting for their attempts (`crate::test_send`).
    pub attempt_waiters: Arc<crate::test_send::AttemptWaiters>,
    /// API keys resolved lately (`crate::key_cache`).
    pub key_cache: Arc<crate::key_cache::KeyCache>,
    /// Tenants' publish configurations read lately (`crate::index_cache`).
    pub index_cache: Arc<crate::index_cache::IndexCache>,
}

impl AppState {
    /// A pooled connection, or 503 when Redis is unreachable.
    pub async fn conn(&self) -> Result<RedisConn, ApiError> {
        Ok(self.store.pool.get().await?)
    }

    /// Announces a change of the tenant's endpoint index, event types or
    /// cap, already written, to every partition (`store::tenant_config`),
    /// so no API process matches a publish made after the change is
    /// answered against a copy cached before it. Call it before answering.
    pub async fn announce_config_change(&self, tenant_id: &str) -> Result<(), ApiError> {
        let mut conn = self.conn().await?;
        hookfleet_common::store::tenant_config::announce(
            &mut conn,
            &self.store.keys,
            tenant_id,
            self.store.config.all_partitions(),
        )
        .await?;
        self.index_cache.forget(tenant_id);
        Ok(())
    }

    /// The retention of `tenant_id`'s data: its own (set by the admin
    /// routes), else the server's `HOOKFLEET_RETENTION`. Reads treat what
    /// is older as gone, even while the workers' sweep has yet to remove it.
    pub async fn retention_of(&self, tenant_id: &str) -> Result<std::time::Duration, ApiError> {
        let mut conn = self.conn().await?;
        let own =
            hookfleet_common::store::tenants::retention(&mut conn, &self.store.keys, tenant_id)
                .await?;
        Ok(own.map_or(
            self.store.config.retention,
            std::time::Duration::from_millis,
        ))
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
        Ok(caps::capped_add(&mut conn, &self.store.keys, hash, cap, field, value).await?)
    }
}
