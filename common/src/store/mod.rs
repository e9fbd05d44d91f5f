//! The storage layer: the only caller of the Lua scripts.
//!
//! Every change to queue state that must be atomic is one Lua script
//! (`scripts/*.lua`, each with a header listing its KEYS, ARGV and reply).
//! Each script has one module here that owns its call: it builds KEYS and
//! ARGV from domain values, reads the reply into types, and holds the
//! constants it shares with the script (generated into the script, or
//! checked against it by a test). Handlers and the worker call these
//! functions and never spell a script's arguments by position.
//!
//! | module | script(s) | transition |
//! | --- | --- | --- |
//! | [`publish`] | `publish.lua`, `fanout.lua` | an event is stored and fanned out |
//! | [`claim`] | `claim.lua` | due deliveries are leased |
//! | [`record`] | `record.lua` | attempts are logged; deliveries move on |
//! | [`retry`] | `retry.lua` | a delivery is queued again by hand |
//! | [`endpoint`] | `update_endpoint.lua`, `delete_endpoint.lua`, `rotate_secret.lua` | an endpoint changes |
//! | [`replay`] | `replay_lock.lua`, `replay_take.lua`, `replay_chunk.lua`, `replay_cancel.lua` | one replay per endpoint at a time; a worker takes a replay, runs it a chunk at a time, or it is cancelled |
//! | [`retention`] | (plain commands) | a tenant's data past its own retention is removed, a step at a time |
//! | [`caps`] | `capped_add.lua`, `test_send_slot.lua` | a capped set gains a member |
//! | [`reads`] | `event_heads.lua`, `backlog.lua`, `fifo_head.lua` | read-only views |
//! | [`tenant_deletion`] | `tenant_deletion_take.lua`, `tenant_deletion_step.lua` | a worker takes a tenant's deletion and saves its progress, one step at a time |
//! | [`usage`] | `usage_reserve.lua`, `usage_rebuild.lua` | events counted against a tenant's cap, or given back; the count started from the event index |
//! | [`tenants`] | `tenant_update.lua` (and plain commands) | tenants and their API keys |
//! | [`tenant_config`] | `config_bump.lua`, `config_mark.lua` | a change of a tenant's endpoint index, event types or cap is announced to every partition |
//! | [`event_types`] | (plain commands) | a tenant's own event types |
//! | [`events`] | (plain commands) | reading an event's record |
//! | [`layout`] | (plain commands) | the storage layout check at start |
//! | [`notices`] | (plain commands) | operational events waiting to be published |
//! | [`portal`] | (plain commands) | portal links and their sessions |
//! | [`workers`] | (plain commands) | the worker registry (heartbeats) |

mod scripts;

use std::sync::Arc;

use crate::redis_pool::{PoolError, RedisConn, RedisPool};
use crate::{Config, Keys};

pub mod caps;
pub mod claim;
pub mod endpoint;
pub mod event_types;
pub mod events;
pub mod layout;
pub mod notices;
pub mod portal;
pub mod publish;
pub mod reads;
pub mod record;
pub mod replay;
pub mod retention;
pub mod retry;
pub mod tenant_config;
pub mod tenant_deletion;
pub mod tenants;
pub mod usage;
pub mod workers;

pub use scripts::id_layout;
#[cfg(test)]
pub(crate) use scripts::SOURCES;

/// The storage handle every process holds: the Redis pool, the key
/// layout, and the configuration the processes must agree on. Cheap to
/// clone (the pool and the configuration are shared), so work that
/// outlives a request takes its own.
#[derive(Clone)]
pub struct Store {
    pub pool: RedisPool,
    pub keys: Keys,
    pub config: Arc<Config>,
}

impl Store {
    pub fn new(pool: RedisPool, keys: Keys, config: Config) -> Self {
        Self {
            pool,
            keys,
            config: Arc::new(config),
        }
    }

    /// A pooled connection.
    pub async fn conn(&self) -> Result<RedisConn, PoolError> {
        self.pool.get().await
    }
}

/// Up to `limit` members of the sorted set `key` scored `cutoff` or less,
/// lowest first: what is due in a set scored by due time.
async fn due_members(
    conn: &mut impl redis::aio::ConnectionLike,
    key: String,
    cutoff: u64,
    limit: usize,
) -> redis::RedisResult<Vec<String>> {
    redis::cmd("ZRANGEBYSCORE")
        .arg(key)
        .arg("-inf")
        .arg(cutoff)
        .arg("LIMIT")
        .arg(0)
        .arg(limit)
        .query_async(conn)
        .await
}

/// `prelude.lua`, the helpers every script starts with, for tests that
/// run those helpers on their own.
pub const PRELUDE: &str = include_str!("scripts/prelude.lua");
