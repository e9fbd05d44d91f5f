//! Recording attempts: what the worker writes for each attempt (its
//! attempt-log entry and operational notice) and the call that writes it
//! ([`hookfleet_common::store::record`], one `record.lua` call per
//! partition's batch; batches are gathered by `recorder.rs`).

use hookfleet_common::ids::Partition;
use hookfleet_common::model::AttemptEntry;
use hookfleet_common::redis_pool::RedisPool;
use hookfleet_common::store::record::{self, AttemptRecord, RecordSettings};
use hookfleet_common::{Config, Keys};

pub use hookfleet_common::store::record::{class_field, Decision, RecordError, Recorded};

use crate::claim::Job;
use crate::deliver::AttemptResult;

/// One attempt to record: the job it was made for, what happened, what it
/// means, and when it was made.
pub struct Attempted {
    pub job: Job,
    pub result: AttemptResult,
    pub decision: Decision,
    pub at_ms: u64,
}

/// Records attempts of partition `p` in one `record.lua` call
/// ([`record::record`]): each is appended to its endpoint's stream, moves
/// its delivery (if this worker still holds the lease), its endpoint's
/// counters and stats buckets, and runs the endpoint's circuit breaker.
/// Answers one [`Recorded`] per attempt, in order. Every attempt must
/// belong to partition `p`.
pub async fn record_many(
    pool: &RedisPool,
    keys: &Keys,
    config: &Config,
    p: Partition,
    attempts: &[&Attempted],
) -> Result<Vec<Recorded>, RecordError> {
    let texts: Vec<(Vec<u8>, String)> = attempts
        .iter()
        .map(|a| entry_and_notice(a, config.compress_above))
        .collect();
    let records: Vec<AttemptRecord<'_>> = attempts
        .iter()
        .zip(&texts)
        .map(|(attempted, (entry, notice))| AttemptRecord {
            delivery_id: &attempted.job.delivery_id,
            endpoint_id: &attempted.job.endpoint_id,
            lease_token: &attempted.job.lease_token,
            decision: attempted.decision,
            at_ms: attempted.at_ms,
            status: attempted.result.status,
            duration_ms: attempted.result.duration.as_millis() as u64,
            test: attempted.job.test(),
            timed_out: attempted.result.timed_out,
            entry,
            notice,
        })
        .collect();
    record::record(pool, keys, RecordSettings::from_config(config), p, &records).await
}

/// The attempt-log entry (packed) and the operational notice of one
/// attempt: the two texts of its record the worker writes.
fn entry_and_notice(attempted: &Attempted, compress_above: usize) -> (Vec<u8>, String) {
    let Attempted {
        job,
        result,
        decision,
        at_ms,
    } = attempted;
    let (decision, at_ms) = (*decision, *at_ms);
    let status = result.status.map(|s| s.to_string()).unwrap_or_default();
    let (outcome, next) = match decision {
        Decision::Delivered => ("delivered", String::new()),
        Decision::Failed => ("failed", String::new()),
        Decision::RetryAt(at) => ("retry", at.to_string()),
    };
    let entry = AttemptEntry {
        event: &job.event_id,
        attempt: job.attempts_before + 1,
        at: at_ms,
        code: &status,
        duration_ms: result.duration.as_millis() as u64,
        error: result.error.as_deref().unwrap_or_default(),
        outcome,
        response_headers: &result.response_headers,
        response_body: &result.response_body,
        next: &next,
        webhook_timestamp: result.webhook_timestamp,
        signed_by: &result.signed_by,
        test: job.test(),
    };
    // Only a failed attempt can trip the breaker or end the delivery.
    let notice = if decision == Decision::Delivered {
        String::new()
    } else {
        crate::operational::notice(job, result)
    };
    (entry.encode(compress_above), notice)
}
