//! Everything the Hookfleet API and worker must agree on: configuration, the
//! Redis key layout, the Lua scripts that move a delivery through its states,
//! identifiers (which carry their queue partition), Standard Webhooks signing,
//! and the types both sides read and write.
//!
//! Nothing outside this crate spells a Redis key or a Lua script, so the
//! storage layout can be read (and changed) in one place.

pub mod catalog;
pub mod compression;
pub mod config;
pub mod delivery_state;
pub mod duration;
pub mod event_data;
pub mod filter;
pub mod ids;
pub mod keys;
pub mod metrics;
pub mod model;
pub mod net_policy;
pub mod outage;
pub mod publish;
pub mod redis_pool;
pub mod runtime;
pub mod signing;
pub mod stats;
pub mod store;
pub mod stored_event;
pub mod subscription;
pub mod telemetry;
pub mod time_util;

pub use config::Config;
pub use keys::Keys;
