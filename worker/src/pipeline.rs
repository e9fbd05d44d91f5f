//! The attempt pipeline: one claimed delivery, from its lease to its
//! recorded outcome, in named stages:
//!
//! 1. [`read_event`]: the event's record, when the claim did not bring it
//!    (it lives in another partition);
//! 2. [`send`]: wait for the worker's outbound budget, cut the timeout to
//!    what is left of the lease, sign and POST (`deliver.rs`);
//! 3. [`decide`]: what the answer means (`decide.rs`, pure);
//! 4. [`observe`]: the attempt's metrics;
//! 5. [`record`]: log the attempt and move the delivery on (batched per
//!    partition by `recorder.rs`), retrying while Redis is away;
//! 6. [`after_recording`]: wake the claim loop for a retry, publish the
//!    operational events the attempt caused.
//!
//! A task holds its concurrency slot and its place in its tenant's share
//! until the attempt is recorded. Any stage that cannot go on lets the
//! lease expire instead, and the delivery is claimed again. The attempt's
//! span (its delivery, event and endpoint ids) exists at debug level only;
//! what a stage logs at info and above names the delivery itself.

use std::sync::Arc;
use std::time::Duration;

use hookfleet_common::ids::{self, IdKind};
use hookfleet_common::outage::Source;
use hookfleet_common::stored_event::EventRecord;
use hookfleet_common::time_util::now_ms;
use tokio::sync::OwnedSemaphorePermit;

use crate::claim::Job;
use crate::context::Context;
use crate::decide::{self, Decision};
use crate::deliver::{self, AttemptResult};
use crate::operational;
use crate::record::{class_field, Attempted, Recorded};
use crate::tenant_share::Held;

/// An attempt's own Redis calls, each made once (see outage.rs).
const READING_EVENT: Source = Source::once("reading an event");
const RECORDING: Source = Source::once("recording an attempt");

/// Runs one attempt of one delivery through every stage. `_permit` (a
/// concurrency slot) and `_held` (its tenant's share) are held until the
/// attempt is recorded.
pub async fn process(ctx: Arc<Context>, mut job: Job, _permit: OwnedSemaphorePermit, _held: Held) {
    ctx.metrics.in_flight.inc();
    if read_event(&ctx, &mut job).await {
        if let Some((result, decision)) = send_and_decide(&ctx, &job).await {
            observe(&ctx, &job, &result, decision);
            let attempt = Arc::new(Attempted {
                job,
                result,
                decision,
                at_ms: now_ms(),
            });
            if let Some(recorded) = record(&ctx, &attempt).await {
                after_recording(&ctx, &attempt, &recorded).await;
            }
        }
    }
    ctx.metrics.in_flight.dec();
}

/// Stage 1: puts the event's record in the job when the claim did not
/// bring it. False when it could not be read (the lease expires; the
/// delivery is claimed again). A record that is gone (retention) is no
/// failure: the job goes on without one and ends failed.
async fn read_event(ctx: &Context, job: &mut Job) -> bool {
    if job.event.is_some() {
        return true;
    }
    // Boxed: the read's future is large and rare.
    match Box::pin(fetch_event(ctx, job)).await {
        Ok(event) => {
            ctx.outage.succeeded(READING_EVENT);
            job.event = event.map(Arc::new);
            true
        }
        Err(err) => {
            ctx.outage.failed(READING_EVENT, &err);
            false
        }
    }
}

/// Reads an event from its home partition. `Ok(None)`: the event expired.
async fn fetch_event(ctx: &Context, job: &Job) -> Result<Option<EventRecord>, String> {
    let mut conn = ctx.store.pool.get().await.map_err(|e| e.to_string())?;
    hookfleet_common::store::events::load(
        &mut conn,
        &ctx.store.keys,
        &job.event_id,
        ctx.store.config.storage_retention(),
    )
    .await
    .map_err(|e| e.to_string())
}

/// Stages 2 and 3. `None` when the lease is nearly over before sending
/// (the delivery will be claimed again).
async fn send_and_decide(ctx: &Context, job: &Job) -> Option<(AttemptResult, Decision)> {
    let Some(event) = job.event.clone() else {
        let result = AttemptResult {
            error: Some("the event's payload has expired (retention)".into()),
            ..AttemptResult::default()
        };
        return Some((result, Decision::Failed));
    };
    let result = send(ctx, job, &event).await?;
    let decision = decide(ctx, job, &result);
    Some((result, decision))
}

/// Stage 2: waits for the outbound budget, then signs and POSTs. An
/// attempt never outlives its lease, whatever timeout the endpoint stored
/// and however long reading the event and the budget took: past the lease
/// another worker may claim the delivery and send it at the same time.
async fn send(ctx: &Context, job: &Job, event: &EventRecord) -> Option<AttemptResult> {
    // The attempt's time is when it was ready to go, before the budget.
    let started_ms = now_ms();
    if let Some(outbound) = &ctx.outbound {
        outbound.until_ready().await;
    }
    let Some(timeout) = deliver::attempt_timeout(
        ctx.store.config.lease,
        job.claimed_at.elapsed(),
        job.endpoint.timeout_ms.map(Duration::from_millis),
        ctx.store.config.request_timeout,
    ) else {
        tracing::warn!(
            delivery_id = %job.delivery_id,
            endpoint_id = %job.endpoint_id,
            "the lease is nearly over before sending; the delivery will be claimed again"
        );
        return None;
    };
    Some(
        deliver::send(
            &ctx.client,
            &ctx.store.config.address_policy,
            job,
            event.body(),
            timeout,
            started_ms,
            ctx.store.config.response_excerpt,
        )
        .await,
    )
}

/// Stage 3: what the answer means, within the event's retention.
fn decide(ctx: &Context, job: &Job, result: &AttemptResult) -> Decision {
    let config = &ctx.store.config;
    let decision = decide::decide(
        result,
        job.attempts_before + 1,
        job.attempt_cap(),
        // The endpoint's own schedule as the claim read it, else the
        // server's: a change applies from the next attempt that fails.
        job.endpoint
            .retry_schedule
            .as_deref()
            .unwrap_or(&config.retry_schedule),
        config.retry_after_max,
        now_ms(),
    );
    match ids::created_ms(IdKind::Event, &job.event_id) {
        Some(created) => {
            decide::within_retention(decision, created, config.storage_retention(), config.lease)
        }
        None => decision,
    }
}

/// Stage 4: the attempt's metrics (its class, duration and outcome, and a
/// real delivery's publish-to-delivery latency).
fn observe(ctx: &Context, job: &Job, result: &AttemptResult, decision: Decision) {
    tracing::debug!(status = ?result.status, ?decision, "attempt done");
    let metrics = &ctx.metrics;
    metrics.count_attempt(class_field(result.status).trim_start_matches("attempts_"));
    metrics
        .attempt_duration
        .observe(result.duration.as_secs_f64());
    let outcome = match decision {
        Decision::Delivered => "delivered",
        Decision::RetryAt(_) => "retry",
        Decision::Failed => "failed",
    };
    metrics.count_outcome(outcome);
    if decision == Decision::Delivered && !job.test() {
        if let Some(published) = ids::created_ms(IdKind::Event, &job.event_id) {
            let latency = now_ms().saturating_sub(published) as f64 / 1000.0;
            metrics.delivery_latency.observe(latency);
        }
    }
}

/// Stage 5: records the attempt, retrying with back-off (six tries, up to
/// 3 s apart) while Redis is away. `None` when it could not: the lease
/// expires and the delivery is attempted again.
async fn record(ctx: &Context, attempt: &Arc<Attempted>) -> Option<Recorded> {
    let mut backoff = Duration::from_millis(100);
    for _ in 0..6 {
        match ctx.recorder.record(attempt.clone()).await {
            Ok(recorded) => {
                ctx.outage.succeeded(RECORDING);
                if !recorded.held {
                    tracing::info!(
                        delivery_id = %attempt.job.delivery_id,
                        "lease was taken over or delivery cancelled; attempt logged only"
                    );
                }
                return Some(recorded);
            }
            Err(err) => {
                ctx.metrics.redis_errors.inc();
                // Retried; the outage, if it is one, is said once.
                ctx.outage.failed(RECORDING, &err);
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(3));
            }
        }
    }
    tracing::error!(
        delivery_id = %attempt.job.delivery_id,
        "could not record the attempt; the lease will expire and the delivery will be retried"
    );
    None
}

/// Stage 6: a retry is due in a partition the claim loop may have set
/// aside as empty, so it is woken to look again (it then waits for the
/// retry's due time); the operational events the attempt caused are
/// published.
async fn after_recording(ctx: &Context, attempt: &Attempted, recorded: &Recorded) {
    let job = &attempt.job;
    if matches!(attempt.decision, Decision::RetryAt(_)) {
        ctx.woken.set(job.partition.0);
        ctx.notify.notify_one();
    }
    if recorded.disabled {
        tracing::warn!(
            endpoint_id = %job.endpoint_id,
            delivery_id = %job.delivery_id,
            status = ?attempt.result.status,
            "endpoint disabled by the circuit breaker"
        );
    }
    // Boxed: these rare operational sends' futures are several KiB, and
    // inline they would make every spawned attempt task that large.
    for notice in &recorded.notices {
        Box::pin(operational::publish_notice(
            &ctx.store,
            job.partition,
            notice,
        ))
        .await;
    }
}
