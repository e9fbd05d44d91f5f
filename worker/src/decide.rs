//! Deciding what an attempt means, with no I/O: 2xx → delivered;
//! connection errors, timeouts, 3xx, 408, 429 and 5xx → retried on the
//! schedule (jittered ±10%; a `Retry-After` is honoured up to
//! `HOOKFLEET_RETRY_AFTER_MAX`) until the schedule runs out → failed; any
//! other 4xx → failed at once: the receiver has said the request is wrong.
//! A retry that could not finish before the event expires fails instead.

use std::time::Duration;

use rand::Rng;

pub use hookfleet_common::store::record::Decision;

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
