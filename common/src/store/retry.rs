//! Queuing one delivery again by hand (`retry.lua`): a manual retry, or
//! one delivery of a replay. Its original `webhook-id` goes out again.

use redis::aio::ConnectionLike;

use super::scripts;
use crate::ids::{self, IdKind, Partition};
use crate::Keys;

/// The delivery to queue again, as the caller found it.
#[derive(Debug, Clone, Copy)]
pub struct RetryRequest<'a> {
    pub tenant_id: &'a str,
    pub partition: Partition,
    pub delivery_id: &'a str,
    pub event_id: &'a str,
    pub endpoint_id: &'a str,
    /// The states that may be queued again (failed; delivered; scheduled:
    /// its next attempt moves to now).
    pub allowed: &'a [Retryable],
    /// The event is a test send and is left alone (a replay re-sends real
    /// deliveries only).
    pub skip_test: bool,
    /// Retention: how long the delivery's state stays readable.
    pub retention: std::time::Duration,
}

/// A state a retry may start from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retryable {
    Failed,
    Delivered,
    Scheduled,
}

impl Retryable {
    fn as_str(self) -> &'static str {
        match self {
            Retryable::Failed => "failed",
            Retryable::Delivered => "delivered",
            Retryable::Scheduled => "scheduled",
        }
    }
}

/// What [`retry`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryOutcome {
    /// A new attempt is due now.
    Queued,
    /// Left alone: its state is not one of `allowed` (a pending one is
    /// queued already), or it is a test send and `skip_test` was set.
    LeftAlone,
    /// No such delivery of this tenant.
    NotFound,
    /// Cancelled: its endpoint was deleted.
    Cancelled,
    /// Its endpoint is disabled.
    EndpointDisabled,
    /// Being attempted right now.
    InFlight,
}

/// Queues the delivery again; answers what happened and its state before.
pub async fn retry(
    conn: &mut impl ConnectionLike,
    keys: &Keys,
    request: RetryRequest<'_>,
) -> redis::RedisResult<(RetryOutcome, String)> {
    let p = request.partition;
    let endpoint = request.endpoint_id;
    let bucket = ids::time_bucket(IdKind::Delivery, request.delivery_id).map_or("", |(b, _)| b);
    let expire_at =
        ids::bucket_expires_at(IdKind::Delivery, request.delivery_id, request.retention);
    let allowed: Vec<&str> = request.allowed.iter().map(|s| s.as_str()).collect();
    let (code, before): (i64, String) = scripts::RETRY
        .key(keys.endpoint(p, endpoint))
        .key(keys.endpoint_deliveries(p, endpoint))
        .key(keys.endpoint_due(p, endpoint))
        .key(keys.ready(p))
        .key(keys.inflight(p))
        .key(keys.states(p, bucket))
        .key(keys.queued(p))
        .arg(request.tenant_id)
        .arg(request.delivery_id)
        .arg(request.event_id)
        .arg(endpoint)
        .arg(keys.wake_channel())
        .arg(p.0)
        .arg(allowed.join(","))
        .arg(if request.skip_test { "1" } else { "0" })
        .arg(expire_at)
        .invoke_async(conn)
        .await?;
    let outcome = match code {
        1 => RetryOutcome::Queued,
        0 => RetryOutcome::LeftAlone,
        -2 => RetryOutcome::Cancelled,
        -3 => RetryOutcome::EndpointDisabled,
        -4 => RetryOutcome::InFlight,
        _ => RetryOutcome::NotFound,
    };
    Ok((outcome, before))
}
