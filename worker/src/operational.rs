//! Operational events: Hookfleet tells a tenant about its own endpoints by
//! publishing `endpoint.disabled` and `message.attempt.exhausted` to the
//! tenant's endpoints that subscribe to those types by exact name. When
//! none does, nothing is published (no event is stored). They are
//! signed and retried like any event. Deliveries of operational events never
//! produce operational events themselves, so a broken operations endpoint
//! cannot start a loop.
//!
//! They are sent at least once. `record.lua` adds a *notice* to its
//! partition's `notices` set in the same step as the state change it
//! reports (the breaker tripping, a delivery ending failed); the worker that
//! recorded it then publishes it and removes it. A notice left behind (the
//! worker died in between, or Redis failed the publish) is published by any
//! worker's sweep once it is `HOOKFLEET_FANOUT_RECOVERY` old. Each notice
//! publishes under an idempotency key of its own, so a notice published
//! twice (a sweep racing its worker) makes one event.

use hookfleet_common::catalog::is_operational;
use hookfleet_common::event_data::EventData;
use hookfleet_common::ids::Partition;
use hookfleet_common::publish::{self, PublishError, Store, Target};
use hookfleet_common::store::notices;
use hookfleet_common::time_util::{now_ms, rfc3339_ms};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::claim::Job;
use crate::deliver::AttemptResult;

/// What the worker knows of a failed attempt that an operational event may
/// report; `record.lua` stores it in a notice when one is due. Every field
/// has a default, so notices written by another version of the worker (a
/// rolling upgrade) still read.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(default)]
struct Facts {
    tenant_id: String,
    event_id: String,
    delivery_id: String,
    endpoint_id: String,
    event_type: String,
    url: String,
    attempts: u32,
    last_status_code: Option<u16>,
    last_error: Option<String>,
}

/// The notice value `record.lua` takes with a failed attempt: the facts as
/// JSON, or empty when the attempt may not cause operational events (a test
/// send, or a delivery of an operational event: an operations endpoint that
/// breaks is disabled, but says nothing about itself through itself).
pub fn notice(job: &Job, result: &AttemptResult) -> String {
    if job.test() || is_operational(job.event_type()) {
        return String::new();
    }
    let facts = Facts {
        tenant_id: job.endpoint.tenant_id.to_string(),
        event_id: job.event_id.clone(),
        delivery_id: job.delivery_id.clone(),
        endpoint_id: job.endpoint_id.clone(),
        event_type: job.event_type().to_string(),
        url: job.endpoint.url.clone(),
        attempts: job.attempts_before + 1,
        last_status_code: result.status,
        last_error: result.error.clone(),
    };
    serde_json::to_string(&facts).unwrap_or_default()
}

/// An operational event ready to publish.
#[derive(Debug, PartialEq)]
struct Operational {
    tenant_id: String,
    event_type: &'static str,
    data: serde_json::Value,
    /// Makes publishing the same notice twice create one event. It has a
    /// space, which tenants' keys (visible ASCII) cannot.
    idempotency_key: String,
}

/// Reads a notice written by `record.lua` (see its header for the forms).
fn parse(member: &str) -> Option<Operational> {
    let (kind, rest) = member.split_once(' ')?;
    match kind {
        "endpoint.disabled" => {
            let mut parts = rest.splitn(4, ' ');
            let disabled_at: u64 = parts.next()?.parse().ok()?;
            let failing_since: u64 = parts.next()?.parse().ok()?;
            let reason = parts.next()?;
            let facts: Facts = serde_json::from_str(parts.next()?).ok()?;
            Some(Operational {
                idempotency_key: format!("notice {kind} {} {disabled_at}", facts.endpoint_id),
                event_type: "endpoint.disabled",
                data: json!({
                    "endpoint_id": facts.endpoint_id,
                    "url": facts.url,
                    "reason": reason,
                    "failing_since": rfc3339_ms(failing_since),
                    "disabled_at": rfc3339_ms(disabled_at),
                    "last_status_code": facts.last_status_code,
                }),
                tenant_id: facts.tenant_id,
            })
        }
        "message.attempt.exhausted" => {
            let facts: Facts = serde_json::from_str(rest).ok()?;
            Some(Operational {
                idempotency_key: format!("notice {kind} {} {}", facts.delivery_id, facts.attempts),
                event_type: "message.attempt.exhausted",
                data: json!({
                    "event_id": facts.event_id,
                    "delivery_id": facts.delivery_id,
                    "endpoint_id": facts.endpoint_id,
                    "event_type": facts.event_type,
                    "attempts": facts.attempts,
                    "last_status_code": facts.last_status_code,
                    "last_error": facts.last_error,
                }),
                tenant_id: facts.tenant_id,
            })
        }
        _ => None,
    }
}

/// Publishes the notice `member` of partition `p` and removes it. A notice
/// that cannot be read is dropped with a warning; one whose publishing
/// fails stays for the sweep, its score moved to now so that notices that
/// keep failing do not hold up the others (the sweep takes the oldest).
pub async fn publish_notice(store: &Store, p: Partition, member: &str) {
    // `parse` builds the data as a `Value` (ours, so exact by
    // construction); it is published as the same checked `EventData` a
    // tenant's event carries.
    let read =
        parse(member).and_then(|event| Some((EventData::from_value(&event.data).ok()?, event)));
    let Some((data, event)) = read else {
        tracing::warn!(partition = p.0, "dropping an unreadable notice");
        remove(store, p, member).await;
        return;
    };
    // An operational event no endpoint subscribes to is not stored: it
    // would reach no one, and would cost a record, an index entry and an
    // idempotency key per failure.
    let target = match publish::subscribers(
        store,
        &event.tenant_id,
        event.event_type,
        data.as_str(),
    )
    .await
    {
        Ok(Some(found)) if found.is_empty() => {
            tracing::debug!(
                event_type = event.event_type,
                "no endpoint subscribes to the operational event; dropped"
            );
            remove(store, p, member).await;
            return;
        }
        Ok(Some(found)) => Target::Matched(found),
        Ok(None) | Err(_) => Target::Subscribers,
    };
    match publish::publish(
        store,
        None,
        &event.tenant_id,
        event.event_type,
        &data,
        Some(&event.idempotency_key),
        target,
    )
    .await
    {
        Ok(published) => {
            tracing::info!(
                event_id = %published.event_id,
                event_type = event.event_type,
                deliveries = published.deliveries,
                duplicate = published.duplicate,
                "operational event published"
            );
            remove(store, p, member).await;
        }
        Err(PublishError::Expired) => {
            // Published before under this key, and that event is gone.
            remove(store, p, member).await;
        }
        Err(err) => {
            tracing::warn!(error = %err, event_type = event.event_type, "could not publish an operational event; a sweep will");
            let moved: Result<(), String> = async {
                let mut conn = store.pool.get().await.map_err(|e| e.to_string())?;
                notices::again(&mut conn, &store.keys, p, member, now_ms())
                    .await
                    .map_err(|e| e.to_string())
            }
            .await;
            if let Err(err) = moved {
                tracing::warn!(error = %err, "could not move a failed notice back in line");
            }
        }
    }
}

async fn remove(store: &Store, p: Partition, member: &str) {
    let removed: Result<(), String> = async {
        let mut conn = store.pool.get().await.map_err(|e| e.to_string())?;
        notices::done(&mut conn, &store.keys, p, member)
            .await
            .map_err(|e| e.to_string())
    }
    .await;
    if let Err(err) = removed {
        // Published already: the sweep publishes it again under the same
        // idempotency key, which creates nothing.
        tracing::warn!(error = %err, "could not remove a published notice");
    }
}

/// Publishes the notices of partition `p` recorded more than `older_than`
/// ago (their worker died before publishing them, or its publish failed),
/// at most `limit`; returns how many it took up.
pub async fn recover_notices(
    store: &Store,
    p: Partition,
    older_than: std::time::Duration,
    limit: usize,
) -> Result<usize, redis::RedisError> {
    let cutoff = now_ms().saturating_sub(older_than.as_millis() as u64);
    let members: Vec<String> = {
        let Ok(mut conn) = store.pool.get().await else {
            return Err(redis::RedisError::from((
                redis::ErrorKind::Io,
                "no Redis connection",
            )));
        };
        notices::due(&mut conn, &store.keys, p, cutoff, limit).await?
    };
    for member in &members {
        publish_notice(store, p, member).await;
    }
    Ok(members.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> String {
        serde_json::to_string(&Facts {
            tenant_id: "ten_1".into(),
            event_id: "evt_1".into(),
            delivery_id: "dlv_1".into(),
            endpoint_id: "ep_1".into(),
            event_type: "user.created".into(),
            url: "https://example.com/a b".into(),
            attempts: 8,
            last_status_code: Some(503),
            last_error: None,
        })
        .unwrap()
    }

    #[test]
    fn notices_read_back_into_their_events() {
        let disabled = parse(&format!(
            "endpoint.disabled 1700000000000 1699990000000 gone {}",
            facts()
        ))
        .unwrap();
        assert_eq!(disabled.event_type, "endpoint.disabled");
        assert_eq!(disabled.tenant_id, "ten_1");
        assert_eq!(disabled.data["reason"], "gone");
        assert_eq!(disabled.data["url"], "https://example.com/a b");
        assert_eq!(disabled.data["disabled_at"], rfc3339_ms(1_700_000_000_000));
        assert_eq!(
            disabled.data["failing_since"],
            rfc3339_ms(1_699_990_000_000)
        );
        assert_eq!(
            disabled.idempotency_key,
            "notice endpoint.disabled ep_1 1700000000000"
        );

        let exhausted = parse(&format!("message.attempt.exhausted {}", facts())).unwrap();
        assert_eq!(exhausted.data["attempts"], 8);
        assert_eq!(exhausted.data["last_status_code"], 503);
        assert_eq!(exhausted.data["delivery_id"], "dlv_1");
        assert_eq!(
            exhausted.idempotency_key,
            "notice message.attempt.exhausted dlv_1 8"
        );

        // Fields another version did not write read as their defaults.
        let older =
            parse(r#"message.attempt.exhausted {"tenant_id":"ten_1","delivery_id":"dlv_2"}"#)
                .unwrap();
        assert_eq!(older.data["delivery_id"], "dlv_2");
        assert_eq!(older.data["attempts"], 0);

        assert_eq!(parse("endpoint.disabled 1 2"), None);
        assert_eq!(parse("something.else {}"), None);
    }
}
