//! The Hookfleet worker: claims due deliveries from Redis, signs and POSTs
//! them, and records every attempt.
//!
//! The flow of one delivery through a worker:
//!
//! ```text
//!  wake (pub/sub) or timer ──> claim.rs ── one Lua call per partition:
//!                                          leases a batch of due deliveries
//!        ──> deliver.rs ── signs (Standard Webhooks) and POSTs with the one
//!                          shared HTTP client
//!        ──> attempt.rs ── decides delivered / retry at T / failed
//!        ──> recorder.rs ── records attempts, batched per partition, in
//!                           the Lua call that moves their deliveries on
//! ```
//!
//! Workers share nothing but Redis, so any number can run; a worker that dies
//! mid-attempt loses only its leases, which the next claim takes back once
//! they expire.

pub mod attempt;
pub mod claim;
pub mod deliver;
pub mod metrics;
pub mod operational;
pub mod recorder;
pub mod registry;
pub mod run;
pub mod shutdown;
pub mod tenant_share;
pub mod wake;

pub use run::{run, WorkerError};
