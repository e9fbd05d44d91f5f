//! The Hookfleet worker: claims due deliveries from Redis, signs and POSTs
//! them, and records every attempt.
//!
//! The flow of one delivery through a worker:
//!
//! ```text
//!  run.rs ── starts the worker, runs the claim loop, drains on SIGTERM
//!  wake.rs (pub/sub) or timer
//!    ──> claim_loop.rs ── per partition (PartitionSchedule): one claim.lua
//!                         call (store::claim) leases a batch of due
//!                         deliveries; one task per delivery
//!    ──> pipeline.rs ── the attempt's stages:
//!          read_event ─> send (deliver.rs: signs, Standard Webhooks, and
//!          POSTs with the one shared HTTP client) ─> decide (decide.rs,
//!          pure: delivered / retry at T / failed) ─> observe ─> record
//!          (record.rs + recorder.rs: batched per partition, in the
//!          record.lua call that moves the deliveries on) ─> after_recording
//!          (wake-ups, operational.rs: the tenant's operational events)
//! ```
//!
//! Beside the claim loop, run.rs starts the worker's background tasks:
//! queue gauges, fan-out and notice recovery, and replays.rs, which takes
//! due replays (one at a time per worker) and runs them a chunk at a time;
//! tenant_deletions.rs does the same for deleted tenants' data, and
//! retention_sweep.rs removes data past a tenant's own retention.
//!
//! Workers share nothing but Redis, so any number can run; a worker that dies
//! mid-attempt loses only its leases, which the next claim takes back once
//! they expire.

pub mod claim;
pub mod claim_loop;
pub mod context;
pub mod decide;
pub mod deliver;
pub mod metrics;
pub mod operational;
pub mod pipeline;
pub mod record;
pub mod recorder;
pub mod registry;
pub mod replays;
pub mod retention_sweep;
pub mod rounds;
pub mod run;
pub mod shutdown;
pub mod tenant_deletions;
pub mod tenant_share;
pub mod wake;

pub use run::{run, WorkerError};
