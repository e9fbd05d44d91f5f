//! The Hookfleet HTTP API: tenants and their API keys, endpoints (called
//! *webhooks* in the API, as in the system Hookfleet replaces), event types,
//! publishing, the delivery log, portal links, and the console that uses
//! them ([`console`]). Stateless: every request reads and writes
//! Redis, so any number of API processes can run behind a load balancer.

pub mod auth;
pub mod body;
pub mod console;
pub mod delivery_log;
pub mod delivery_view;
pub mod error;
pub mod event_data;
pub mod event_list;
pub mod exact_json;
pub mod examples;
pub mod framing;
pub mod index_cache;
pub mod input;
pub mod key_cache;
pub mod metrics;
pub mod paging;
pub mod publish;
pub mod routes;
pub mod spec;
pub mod startup;
pub mod state;
pub mod test_send;

pub use startup::{build, Application};
