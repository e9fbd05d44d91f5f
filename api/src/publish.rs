//! Publishing from the API: the shared fan-out (see
//! `hookfleet_common::publish`) with its errors mapped to HTTP.

use hookfleet_common::event_data::EventData;
use hookfleet_common::publish::{self as shared, PublishError, Store};
pub use hookfleet_common::publish::{BatchEvent, Published, Subscribers, Target};
use hookfleet_common::store::usage::{self, Counted};

use crate::error::ApiError;
use crate::state::AppState;

impl From<PublishError> for ApiError {
    fn from(err: PublishError) -> Self {
        match err {
            PublishError::Expired => ApiError::not_found("event"),
            PublishError::TooManyDeliveries(deliveries) => ApiError::invalid(
                "events",
                format!(
                    "the batch would create {deliveries} deliveries among its events (at most {}); send fewer events per batch",
                    shared::MAX_BATCH_DELIVERIES
                ),
            ),
            other => {
                tracing::warn!(error = %other, "publish failed");
                ApiError::unavailable()
            }
        }
    }
}

fn store(state: &AppState) -> &Store {
    &state.store
}

/// Counts `n` events against the tenant's cap on retained events before
/// they are stored: `None` when it has no cap, else the hour they were
/// counted in (to give back those not stored, [`give_back`]). Over the
/// cap: 429 `quota_exceeded`, and nothing is counted or written.
pub async fn count_against_cap(
    state: &AppState,
    tenant_id: &str,
    n: u64,
) -> Result<Option<u64>, ApiError> {
    let mut conn = state.conn().await?;
    let retention_ms = state.store.config.retention.as_millis() as u64;
    match usage::add(&mut conn, &state.store.keys, tenant_id, n, retention_ms).await? {
        Counted::Uncapped => Ok(None),
        Counted::Added { hour, .. } => Ok(Some(hour)),
        Counted::Over {
            cap,
            total,
            retry_after_ms,
        } => Err(ApiError::quota_exceeded(
            cap,
            total,
            retry_after_ms.div_ceil(1000).max(1),
        )),
    }
}

/// Which of the tenant's idempotency keys are remembered: a publish with
/// one of them stores nothing, so it is not counted against a cap.
pub async fn seen_keys(
    state: &AppState,
    tenant_id: &str,
    keys: &[&str],
) -> Result<Vec<bool>, ApiError> {
    Ok(shared::seen_keys(store(state), tenant_id, keys).await?)
}

/// Gives back `n` events counted in `hour` that were not stored (a
/// repeated idempotency key, a failure). A failure here only leaves them
/// counted until their hour is past retention, so it is logged, not
/// answered.
pub async fn give_back(state: &AppState, tenant_id: &str, n: u64, hour: u64) {
    if n == 0 {
        return;
    }
    let retention_ms = state.store.config.retention.as_millis() as u64;
    let result = match state.conn().await {
        Ok(mut conn) => usage::give_back(
            &mut conn,
            &state.store.keys,
            tenant_id,
            n,
            hour,
            retention_ms,
        )
        .await
        .map_err(|err| err.to_string()),
        Err(err) => Err(format!("{err:?}")),
    };
    if let Err(error) = result {
        tracing::warn!(%tenant_id, n, %error, "events not stored stay counted against the cap");
    }
}

/// The tenant's endpoints that want the event; `None` when the tenant
/// has no such type. With `cached`, matched against the tenant's
/// configuration as this process last read it, when it has a copy that
/// knows the type (`crate::index_cache`; the publish call then checks that
/// copy's version); otherwise read from Redis, and the copy kept.
async fn subscribers(
    state: &AppState,
    tenant_id: &str,
    event_type: &str,
    data: &EventData,
    cached: bool,
) -> Result<Option<Subscribers>, ApiError> {
    if cached {
        let counters = &state.metrics.index_cache;
        if let Some(config) = state.index_cache.get(tenant_id) {
            if config.knows(event_type) {
                counters.hit.inc();
                return Ok(Some(config.subscribers(event_type, data.as_str(), true)));
            }
        }
        counters.miss.inc();
    }
    let read_at = tokio::time::Instant::now();
    // Boxed: the read from Redis is the rare path, and its future is large
    // (see `publish_counted`).
    let Some(config) = Box::pin(shared::read_config(store(state), tenant_id, event_type)).await?
    else {
        return Ok(None);
    };
    let subscribers = config.subscribers(event_type, data.as_str(), false);
    state.index_cache.put(tenant_id, config, read_at);
    Ok(Some(subscribers))
}

/// Publishes one validated event for a tenant (`POST /api/v1/events`): its
/// subscribers found ([`subscribers`], from the cache when it can), the
/// event counted against the tenant's cap if it has one, and its
/// `publish.lua` call shared with the single publishes arriving beside it.
/// `None` when the tenant has no such event type. A publish matched
/// against a cached copy that a change has outdated is refused by Redis,
/// writing nothing; it is then matched again against what Redis holds.
/// An event counted and not stored after all (refused, a repeated
/// idempotency key, a failure) is given back.
pub async fn publish_one(
    state: &AppState,
    tenant_id: &str,
    event_type: &str,
    data: &EventData,
    idempotency_key: Option<&str>,
) -> Result<Option<Published>, ApiError> {
    let mut counted = None;
    let outcome = publish_counted(
        state,
        tenant_id,
        event_type,
        data,
        idempotency_key,
        &mut counted,
    )
    .await;
    if let Some(hour) = counted {
        if !matches!(&outcome, Ok(Some(p)) if !p.duplicate) {
            Box::pin(give_back(state, tenant_id, 1, hour)).await;
        }
    }
    outcome
}

/// [`publish_one`]'s passes: the first matched from the cache, a second
/// (after a stale answer) from Redis. `counted` is the hour the event is
/// counted in against the tenant's cap, kept across the passes (counted
/// once, given back if the second pass finds no cap).
///
/// The steps a publish matched from the cache to a tenant without a cap
/// does not take are boxed: what stays is a small future, which each
/// layer of the API's routing moves (in full) as the request passes.
async fn publish_counted(
    state: &AppState,
    tenant_id: &str,
    event_type: &str,
    data: &EventData,
    idempotency_key: Option<&str>,
    counted: &mut Option<u64>,
) -> Result<Option<Published>, ApiError> {
    let mut cached = true;
    loop {
        let Some(subscribers) = subscribers(state, tenant_id, event_type, data, cached).await?
        else {
            return Ok(None);
        };
        // A tenant with a cap has the event counted first (refused over
        // it). A repeated idempotency key stores nothing: not counted, and
        // answered with the first event even at the cap.
        match (subscribers.max_events, *counted) {
            (None, Some(hour)) => {
                Box::pin(give_back(state, tenant_id, 1, hour)).await;
                *counted = None;
            }
            (Some(_), None) => {
                let seen = match idempotency_key {
                    Some(key) => Box::pin(seen_keys(state, tenant_id, &[key]))
                        .await?
                        .first()
                        .copied()
                        .unwrap_or(false),
                    None => false,
                };
                if !seen {
                    *counted = Box::pin(count_against_cap(state, tenant_id, 1)).await?;
                }
            }
            _ => {}
        }
        let target = Target::Matched(subscribers);
        match publish(state, tenant_id, event_type, data, idempotency_key, target).await {
            // (Only a cached copy is checked: the second pass reads Redis.)
            Err(PublishError::Stale) if cached => {
                state.metrics.index_cache.stale.inc();
                state.index_cache.forget(tenant_id);
                cached = false;
            }
            published => return Ok(Some(published?)),
        }
    }
}

/// Publishes one event for a tenant to `target` through this process's
/// coalescer ([`shared::publish`]): its `publish.lua` call shared with the
/// single publishes arriving beside it. The caller has validated the
/// input; the error converts to the API's (`?`).
pub async fn publish(
    state: &AppState,
    tenant_id: &str,
    event_type: &str,
    data: &EventData,
    idempotency_key: Option<&str>,
    target: Target,
) -> Result<Published, PublishError> {
    shared::publish(
        store(state),
        Some(&state.coalescer),
        tenant_id,
        event_type,
        data,
        idempotency_key,
        target,
    )
    .await
}

/// Publishes validated events of one tenant in one go (see
/// `hookfleet_common::publish::publish_many`): one result per event, in
/// order; a Redis failure becomes that event's 503-style error. A batch
/// refused as a whole (its deliveries over the cap: 422; the tenant's
/// endpoints unreadable: 503) writes nothing.
pub async fn publish_many(
    state: &AppState,
    tenant_id: &str,
    events: &[BatchEvent<'_>],
) -> Result<Vec<Result<Published, ApiError>>, ApiError> {
    Ok(shared::publish_many(store(state), tenant_id, events)
        .await?
        .into_iter()
        .map(|result| result.map_err(ApiError::from))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The size of the future `f` returns, without calling it.
    fn future_size<A, F>(_: impl Fn(A) -> F) -> usize {
        std::mem::size_of::<F>()
    }

    /// Each routing layer a request passes moves its handler's future in
    /// full (poem boxes one per layer), so a single publish keeps the
    /// paths it rarely takes (a cache miss's read, a cap's counting, a
    /// fan-out beyond its home partition) behind boxes. Unboxed, its
    /// future was 9,112 bytes in a debug build; boxed, 1,408.
    #[test]
    fn a_single_publish_keeps_a_small_future() {
        let data: &'static EventData = Box::leak(Box::new(
            EventData::from_json("{}").unwrap_or_else(|err| panic!("{err:?}")),
        ));
        let size = future_size(|state: &'static AppState| {
            publish_one(state, "ten", "order.paid", data, None)
        });
        assert!(size <= 3 * 1024, "publish_one's future is {size} bytes");
    }
}
