//! Operational events: Hookfleet tells a tenant about its own endpoints by
//! publishing `endpoint.disabled` and `message.attempt.exhausted` to the
//! tenant's endpoints that subscribe to those types by exact name. They are
//! signed and retried like any event. Deliveries of operational events never
//! produce operational events themselves, so a broken operations endpoint
//! cannot start a loop.

use std::collections::HashMap;

use hookfleet_common::catalog::is_operational;
use hookfleet_common::ids::{self, IdKind};
use hookfleet_common::publish::{self, Store, Target};
use hookfleet_common::time_util::{now_ms, rfc3339_ms};
use redis::AsyncCommands;
use serde_json::json;

use crate::claim::Job;
use crate::deliver::AttemptResult;

/// The endpoint of `job` was just disabled by the circuit breaker: publish
/// `endpoint.disabled`.
pub async fn endpoint_disabled(store: &Store<'_>, job: &Job, result: &AttemptResult) {
    if is_operational(&job.event_type) {
        // An operations endpoint that breaks is disabled, but says nothing
        // about itself through itself.
        return;
    }
    let reason = if result.status == Some(410) {
        "gone"
    } else {
        "failing"
    };
    tracing::warn!(reason, "endpoint disabled by the circuit breaker");
    let Some(p) = ids::partition_of(IdKind::Endpoint, &job.endpoint_id) else {
        return;
    };
    // The tenant's endpoint index is left alone: publish re-checks `active`
    // in the endpoint's own hash, and writing the index here could undo a
    // re-enable that lands meanwhile.
    let stats: HashMap<String, String> = match store.pool.get().await {
        Ok(mut conn) => conn
            .hgetall(store.keys.endpoint_stats(p, &job.endpoint_id))
            .await
            .unwrap_or_default(),
        Err(err) => {
            tracing::warn!(error = %err, "could not read the disabled endpoint's counters");
            HashMap::new()
        }
    };
    let failing_since = stats
        .get("failing_since")
        .and_then(|v| v.parse().ok())
        .map(rfc3339_ms);
    let data = json!({
        "endpoint_id": job.endpoint_id,
        "url": job.url,
        "reason": reason,
        "failing_since": failing_since,
        "disabled_at": rfc3339_ms(now_ms()),
        "last_status_code": result.status,
    });
    send(store, &job.tenant_id, "endpoint.disabled", &data).await;
}

/// A delivery ended `failed`: publish `message.attempt.exhausted`.
pub async fn attempts_exhausted(store: &Store<'_>, job: &Job, result: &AttemptResult) {
    if is_operational(&job.event_type) {
        return;
    }
    let data = json!({
        "event_id": job.event_id,
        "delivery_id": job.delivery_id,
        "endpoint_id": job.endpoint_id,
        "event_type": job.event_type,
        "attempts": job.attempts_before + 1,
        "last_status_code": result.status,
        "last_error": result.error,
    });
    send(store, &job.tenant_id, "message.attempt.exhausted", &data).await;
}

async fn send(store: &Store<'_>, tenant_id: &str, event_type: &str, data: &serde_json::Value) {
    match publish::publish(
        *store,
        tenant_id,
        event_type,
        data,
        None,
        Target::Subscribers,
    )
    .await
    {
        Ok(published) => tracing::info!(
            event_id = %published.event_id,
            event_type,
            deliveries = published.deliveries,
            "operational event published"
        ),
        Err(err) => {
            tracing::warn!(error = %err, event_type, "could not publish an operational event")
        }
    }
}
