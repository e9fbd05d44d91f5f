//! Hookfleet's test kit: what the end-to-end suite (`tests/e2e`, one test
//! binary with a module per step of an event's flow) and the worker's own
//! tests (`worker/tests`) share, one concern per file: the app under test
//! and its builder (`app`), the tenants and endpoints most tests start from
//! (`fixtures`), HTTP receivers (`receiver`), the test Redis and private
//! ones (`redis`), the binaries as processes (`processes`), polling with
//! deadlines (`poll`), worker steps played by hand (`worker`), metric
//! scrapes (`metrics`) and third-party signature verifiers (`verifiers`).
//! Tests import from the crate root, not from the files.
//!
//! `cargo test` needs nothing set up beyond `redis-server` on PATH: without
//! `HOOKFLEET_TEST_REDIS_URL` the kit starts one for the test binary.

mod app;
mod fixtures;
mod metrics;
mod poll;
mod processes;
mod receiver;
mod redis;
mod verifiers;
mod worker;

use rand::Rng;

pub use app::{init_tls, TestApp};
pub use fixtures::{endpoint_partition, Neighbours, TenantWithEndpoint};
pub use metrics::{counter, summed};
pub use poll::wait_until;
pub use processes::{
    api_binary, free_port, sigterm, spawn, spawn_logged, wait_exit, worker_binary, worker_env,
    ChildGuard, LoggedChild,
};
pub use receiver::{spawn_receiver, Received, Receiver, Reply};
pub use redis::{cluster_masters, cluster_nodes, command_calls, redis_url, OwnCluster, OwnRedis};
pub use verifiers::{python, python_accepts, require_node_standardwebhooks};
pub use worker::{claim_jobs, claim_settings, record_one};

/// A random 16-hex-digit suffix, for key prefixes and names no other test
/// uses.
pub fn random_suffix() -> String {
    let n: u64 = rand::rng().random();
    format!("{n:016x}")
}
