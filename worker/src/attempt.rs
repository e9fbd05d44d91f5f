//! After the POST: decide what the attempt means and record it.
//!
//! 2xx → delivered. Connection errors, timeouts, 3xx, 408, 429 and 5xx →
//! retried on the schedule (jittered ±10%; a `Retry-After` is honoured up to
//! `HOOKFLEET_RETRY_AFTER_MAX`) until the schedule runs out → failed. Any
//! other 4xx → failed at once: the receiver has said the request is wrong.
//! The attempt is appended to the endpoint's stream and the endpoint's
//! counters move in the same Lua call that finishes or reschedules.

use std::time::Duration;

use hookfleet_common::ids::Partition;
use hookfleet_common::model::AttemptEntry;
use hookfleet_common::redis_pool::RedisPool;
use hookfleet_common::store::record::{self, AttemptRecord, RecordSettings};
use hookfleet_common::{Config, Keys};
use rand::Rng;

pub use hookfleet_common::store::record::{class_field, Decision, RecordError, Recorded};

use crate::claim::Job;
use crate::deliver::AttemptResult;

/// Whether a response (or its absence) is worth another attempt.
pub fn is_retryable(status: Option<u16>) -> bool {
    match status {
        None => true,
        Some(code) => matches!(code, 300..=399 | 408 | 429 | 500..=599),
    }
}

/// Decides the attempt's outcome. `attempt_number` is 1 for the first
/// attempt; `schedule[n]` is the delay before attempt n + 1.
pub fn decide(
    result: &AttemptResult,
    attempt_number: u32,
    max_attempts: Option<u32>,
    schedule: &[Duration],
    retry_after_max: Duration,
    now_ms: u64,
) -> Decision {
    if let Some(200..=299) = result.status {
        return Decision::Delivered;
    }
    if result.refused || !is_retryable(result.status) {
        return Decision::Failed;
    }
    if max_attempts.is_some_and(|max| attempt_number >= max) {
        return Decision::Failed;
    }
    let Some(&delay) = schedule.get(attempt_number as usize) else {
        return Decision::Failed;
    };
    let jitter = rand::rng().random_range(0.9..=1.1);
    let mut delay = delay.mul_f64(jitter);
    if let Some(retry_after) = result.retry_after {
        delay = delay.max(retry_after.min(retry_after_max));
    }
    Decision::RetryAt(now_ms + delay.as_millis() as u64)
}

/// A retry that could not be attempted and recorded before the delivery
/// expires (retention counts from the event's creation; the attempt needs
/// up to a lease) ends the delivery as failed instead: otherwise the claim
/// would find it gone and drop it, with no final state and no
/// `message.attempt.exhausted`. Jitter and `Retry-After` can push a late
/// retry past a retention close to the schedule's length. (A rate limit's
/// wait comes later, in the claim, and is not seen here.)
pub fn within_retention(
    decision: Decision,
    event_created_ms: u64,
    retention: Duration,
    lease: Duration,
) -> Decision {
    match decision {
        Decision::RetryAt(at) => {
            let expires = event_created_ms.saturating_add(retention.as_millis() as u64);
            if at.saturating_add(lease.as_millis() as u64) >= expires {
                Decision::Failed
            } else {
                decision
            }
        }
        other => other,
    }
}

/// One attempt to record: the job it was made for, what happened, what it
/// means, and when it was made.
#[derive(Clone, Copy)]
pub struct Attempted<'a> {
    pub job: &'a Job,
    pub result: &'a AttemptResult,
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
    attempts: &[Attempted<'_>],
) -> Result<Vec<Recorded>, RecordError> {
    let texts: Vec<(String, String)> = attempts.iter().map(entry_and_notice).collect();
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
fn entry_and_notice(attempted: &Attempted<'_>) -> (String, String) {
    let Attempted {
        job,
        result,
        decision,
        at_ms,
    } = *attempted;
    let status = result.status.map(|s| s.to_string()).unwrap_or_default();
    let (outcome, next) = match decision {
        Decision::Delivered => ("delivered", String::new()),
        Decision::Failed => ("failed", String::new()),
        Decision::RetryAt(at) => ("retry", at.to_string()),
    };
    let entry = AttemptEntry {
        delivery: &job.delivery_id,
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
        request_headers: &result.request_headers,
        test: if job.test() { "1" } else { "0" },
    };
    // Only a failed attempt can trip the breaker or end the delivery.
    let notice = if decision == Decision::Delivered {
        String::new()
    } else {
        crate::operational::notice(job, result)
    };
    (entry.packed(), notice)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answered(status: u16) -> AttemptResult {
        AttemptResult {
            status: Some(status),
            ..AttemptResult::default()
        }
    }

    fn schedule() -> Vec<Duration> {
        vec![
            Duration::ZERO,
            Duration::from_secs(5),
            Duration::from_secs(300),
        ]
    }

    #[test]
    fn a_retry_past_retention_fails_the_delivery() {
        let (day, minute) = (Duration::from_secs(86_400), Duration::from_secs(60));
        let created = 1_000_000;
        let day_ms = day.as_millis() as u64;
        let early = Decision::RetryAt(created + day_ms / 2);
        assert_eq!(within_retention(early, created, day, minute), early);
        // Within a lease of the end: it could expire mid-attempt.
        let late = Decision::RetryAt(created + day_ms - 30_000);
        assert_eq!(
            within_retention(late, created, day, minute),
            Decision::Failed
        );
        let after = Decision::RetryAt(created + day_ms + 1);
        assert_eq!(
            within_retention(after, created, day, minute),
            Decision::Failed
        );
        for other in [Decision::Delivered, Decision::Failed] {
            assert_eq!(within_retention(other, created, day, minute), other);
        }
    }

    #[test]
    fn outcomes_by_status() {
        let max = Duration::from_secs(3600);
        assert_eq!(
            decide(&answered(200), 1, None, &schedule(), max, 0),
            Decision::Delivered
        );
        assert_eq!(
            decide(&answered(204), 1, None, &schedule(), max, 0),
            Decision::Delivered
        );
        assert_eq!(
            decide(&answered(400), 1, None, &schedule(), max, 0),
            Decision::Failed
        );
        assert_eq!(
            decide(&answered(410), 1, None, &schedule(), max, 0),
            Decision::Failed
        );
        for retryable in [301, 408, 429, 500, 503] {
            assert!(matches!(
                decide(&answered(retryable), 1, None, &schedule(), max, 0),
                Decision::RetryAt(_)
            ));
        }
        let no_answer = AttemptResult {
            error: Some("connect error".into()),
            ..AttemptResult::default()
        };
        assert!(matches!(
            decide(&no_answer, 1, None, &schedule(), max, 0),
            Decision::RetryAt(_)
        ));
    }

    #[test]
    fn schedule_runs_out() {
        let max = Duration::from_secs(3600);
        let Decision::RetryAt(at) = decide(&answered(500), 1, None, &schedule(), max, 1_000_000)
        else {
            panic!("expected a retry");
        };
        assert!((1_004_500..=1_005_500).contains(&at), "{at}");
        assert!(matches!(
            decide(&answered(500), 2, None, &schedule(), max, 0),
            Decision::RetryAt(_)
        ));
        assert_eq!(
            decide(&answered(500), 3, None, &schedule(), max, 0),
            Decision::Failed
        );
    }

    #[test]
    fn retry_after_is_honoured_and_capped() {
        let mut result = answered(429);
        result.retry_after = Some(Duration::from_secs(60));
        let Decision::RetryAt(at) =
            decide(&result, 1, None, &schedule(), Duration::from_secs(3600), 0)
        else {
            panic!("expected a retry");
        };
        assert_eq!(at, 60_000);
        let Decision::RetryAt(capped) =
            decide(&result, 1, None, &schedule(), Duration::from_secs(10), 0)
        else {
            panic!("expected a retry");
        };
        assert_eq!(capped, 10_000);
    }
}
