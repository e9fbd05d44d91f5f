//! Reading deliveries. A delivery has no record of its own until it is
//! attempted (see `common/src/delivery_state.rs`): its state is put
//! together from its endpoint's log (`ep_dlv`: it exists, and when it was
//! created), its stored state once attempted, the lease set (in flight),
//! its endpoint's `ep_due` (a later attempt is queued), whether its
//! endpoint still exists (cancelled if not), and its event's record head
//! (tenant, type, test flag; read by `event_heads.lua`, so that a page of
//! the log does not read every body). All of it for any number of
//! deliveries in one pipelined round trip.

use std::collections::HashMap;

use hookfleet_common::delivery_state::{self, Found, NoAnswer, StoredState};
use hookfleet_common::ids::{self, IdKind, Partition};
use hookfleet_common::store::reads::{self, DeliveryKey};
use hookfleet_common::stored_event;
use hookfleet_common::time_util::{now_ms, rfc3339_ms};

use crate::error::ApiError;
use crate::routes::deliveries::DeliverySummary;
use crate::state::AppState;

/// One delivery to read: the pair it names, its partition (the endpoint's)
/// and, when the caller read it from the log already, its log score.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeliveryRef {
    pub delivery_id: String,
    pub event_id: String,
    pub endpoint_id: String,
    pub partition: Partition,
    /// Its score in the endpoint's log (creation time, µs), if known.
    pub created_us: Option<u64>,
}

impl DeliveryRef {
    /// The delivery of `event_id` to `endpoint_id`; `None` for malformed ids.
    pub fn new(event_id: &str, endpoint_id: &str, created_us: Option<u64>) -> Option<Self> {
        Some(DeliveryRef {
            delivery_id: ids::delivery_id(event_id, endpoint_id)?,
            partition: ids::partition_of(IdKind::Endpoint, endpoint_id)?,
            event_id: event_id.to_string(),
            endpoint_id: endpoint_id.to_string(),
            created_us,
        })
    }

    /// The delivery a `dlv_…` id names; `None` when it is malformed.
    pub fn parse(delivery_id: &str) -> Option<Self> {
        let (event_id, endpoint_id) = ids::delivery_parts(delivery_id)?;
        Self::new(&event_id, &endpoint_id, None)
    }
}

/// A delivery as read: what users see, and its stored state (for its
/// attempt ids).
#[derive(Clone, Debug)]
pub struct Loaded {
    pub summary: DeliverySummary,
    pub stored: Option<StoredState>,
}

/// The heads of the events of `refs` (tenant, type, test flag), keyed by
/// event id, for the events still stored.
struct Head {
    tenant_id: String,
    event_type: String,
    test: bool,
}

fn parse_head(head: &str) -> Option<Head> {
    let test = match head.as_bytes().first()? {
        b't' => true,
        b'-' => false,
        _ => return None,
    };
    let (tenant, event_type) = head[1..].split_once('\n')?;
    Some(Head {
        tenant_id: tenant.to_string(),
        event_type: event_type.to_string(),
        test,
    })
}

/// Reads `refs` for `tenant_id`, in order: `None` for a delivery that does
/// not exist, has expired or belongs to another tenant.
pub async fn load(
    state: &AppState,
    tenant_id: &str,
    refs: &[DeliveryRef],
) -> Result<Vec<Option<Loaded>>, ApiError> {
    if refs.is_empty() {
        return Ok(Vec::new());
    }
    let retention = state.retention_of(tenant_id).await?;
    let now = now_ms();
    let keys: Vec<DeliveryKey<'_>> = refs
        .iter()
        .map(|r| DeliveryKey {
            partition: r.partition,
            delivery_id: &r.delivery_id,
            event_id: &r.event_id,
            endpoint_id: &r.endpoint_id,
            created_us: r.created_us,
        })
        .collect();
    let expired = |created_ms| stored_event::expired(created_ms, retention, now);
    let facts = {
        let mut conn = state.conn().await?;
        reads::delivery_facts(&mut conn, &state.store.keys, &keys, expired)
            .await
            .map_err(|err| {
                tracing::warn!(error = %err, "unexpected reply reading deliveries");
                ApiError::unavailable()
            })?
    };
    let heads: HashMap<&str, Head> = facts
        .heads
        .iter()
        .filter_map(|(event_id, head)| Some((event_id.as_str(), parse_head(head)?)))
        .collect();
    let initial_delay_ms = state.store.config.initial_delay_ms();
    let mut loaded = Vec::with_capacity(refs.len());
    for (r, found) in refs.iter().zip(facts.deliveries) {
        let (Some(created_us), Some(head)) = (found.created_us, heads.get(r.event_id.as_str()))
        else {
            loaded.push(None);
            continue;
        };
        if head.tenant_id != tenant_id {
            loaded.push(None);
            continue;
        }
        let event_created_ms = ids::created_ms(IdKind::Event, &r.event_id).unwrap_or(0);
        let stored = found
            .stored
            .as_deref()
            .and_then(|text| StoredState::parse(text, event_created_ms));
        let created_ms = created_us / 1000;
        let (endpoint_exists, endpoint_holds) = facts
            .endpoints
            .get(r.endpoint_id.as_str())
            .copied()
            .unwrap_or((false, false));
        let derived = delivery_state::derive(&Found {
            stored: stored.clone(),
            leased: found.leased,
            endpoint_exists,
            endpoint_holds,
            due_at: found.due_at,
            created_ms,
            initial_delay_ms,
        });
        loaded.push(Some(Loaded {
            summary: DeliverySummary {
                id: r.delivery_id.clone(),
                event_id: r.event_id.clone(),
                webhook_id: r.endpoint_id.clone(),
                event_type: head.event_type.clone(),
                status: derived.status.as_str().to_string(),
                attempts: derived.attempts,
                created_at: rfc3339_ms(created_ms),
                last_attempt_at: derived.last_at.map(rfc3339_ms),
                last_status_code: derived.last_code,
                last_error: derived.no_answer.map(|reason| {
                    match reason {
                        NoAnswer::Timeout => "timeout",
                        NoAnswer::ConnectError => "connect_error",
                    }
                    .to_string()
                }),
                next_attempt_at: derived.next_at.map(rfc3339_ms),
                test: head.test,
            },
            stored,
        }));
    }
    Ok(loaded)
}

/// Reads one delivery of `tenant_id` by id, or 404 (also across tenants,
/// for malformed ids and once it has expired).
pub async fn load_one(
    state: &AppState,
    tenant_id: &str,
    delivery_id: &str,
) -> Result<(DeliveryRef, Loaded), ApiError> {
    let not_found = || ApiError::not_found("delivery (or it expired after the retention period)");
    let r = DeliveryRef::parse(delivery_id).ok_or_else(not_found)?;
    let loaded = load(state, tenant_id, std::slice::from_ref(&r))
        .await?
        .pop()
        .flatten()
        .ok_or_else(not_found)?;
    Ok((r, loaded))
}

/// [`load_one`] for a request's credential: a delivery to an endpoint a
/// portal session does not show is not found, as another tenant's is.
pub async fn load_visible(
    state: &AppState,
    tenant: &crate::auth::TenantCtx,
    delivery_id: &str,
) -> Result<(DeliveryRef, Loaded), ApiError> {
    let visible =
        DeliveryRef::parse(delivery_id).is_some_and(|r| tenant.sees_endpoint(&r.endpoint_id));
    if !visible {
        return Err(ApiError::not_found(
            "delivery (or it expired after the retention period)",
        ));
    }
    load_one(state, &tenant.tenant_id, delivery_id).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads_parse() {
        let head = parse_head("tten_1\nuser.created").unwrap();
        assert!(head.test);
        assert_eq!(
            (head.tenant_id.as_str(), head.event_type.as_str()),
            ("ten_1", "user.created")
        );
        assert!(parse_head("-ten_1").is_none());
        assert!(parse_head("").is_none());
    }

    #[test]
    fn refs_come_from_well_formed_ids_only() {
        let event = ids::new_id(IdKind::Event, Partition(1), 1_000);
        let endpoint = ids::new_id(IdKind::Endpoint, Partition(4), 2_000);
        let r = DeliveryRef::new(&event, &endpoint, None).unwrap();
        assert_eq!(r.partition, Partition(4));
        assert_eq!(DeliveryRef::parse(&r.delivery_id), Some(r));
        assert_eq!(DeliveryRef::parse("dlv_nope"), None);
        assert_eq!(DeliveryRef::new("evt_x", &endpoint, None), None);
    }
}
