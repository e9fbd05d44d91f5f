//! Hookfleet end to end: the real API, real workers (in-process and as
//! processes), real Redis and real HTTP receivers, talking over the wire.
//! One test binary, a module per step of an event's flow; what the tests
//! share is the package's library, the test kit (`hookfleet_tests`).
//!
//! `cargo test -p hookfleet-tests` needs nothing set up beyond
//! `redis-server` on PATH (the suite starts its own); `scripts/test` runs it
//! with everything, including a second pass against a Redis Cluster.

/// The API's surface: keys, isolation, the OpenAPI spec, HTTP framing and
/// its Redis pool.
mod api;
/// A Redis Cluster under the whole flow.
mod cluster;
/// Claiming, signing, attempting and recording deliveries, as the whole
/// system shows them (the claim loop's own tests are the worker's, in
/// `worker/tests`).
mod delivery;
/// Measurements run by scripts (ignored in the suite).
mod measure;
/// What a tenant does with deliveries afterwards: logs, retry, replay,
/// statistics, secret rotation.
mod operations;
/// The binaries as processes: start, stop, crash, logs and metrics.
mod processes;
/// Publishing events: single and batch, exact payloads, the API's cached
/// copy of a tenant's endpoints, what is stored and for how long.
mod publish;
/// The storage layer's contracts with its Lua scripts, checked in Redis.
mod store;
/// Endpoints (webhooks, in the API): CRUD, SSRF rules, pause and the
/// circuit breaker.
mod webhooks;
