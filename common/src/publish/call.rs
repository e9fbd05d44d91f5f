//! One publish call: an event prepared for `publish.lua` (its id, record
//! and the endpoints it goes to, by partition), the call that stores a
//! group of them (`store::publish`), and what happens after the answer
//! (the fan-out to other partitions, or the first event's answer for a
//! repeated idempotency key).

use std::collections::BTreeMap;
use std::sync::Arc;

use super::fanout::{fanout, finish_fanout, mark_complete};
use super::{PublishError, Published, Store};
use crate::event_data::EventData;
use crate::ids::{self, IdKind, Partition};
use crate::store::publish::{EventToStore, PublishCall, PublishSettings, STALE};
use crate::stored_event::EventRecord;
use crate::time_util::now_ms;

/// `publish.lua`'s answer: (fresh, event id, deliveries, complete).
pub(super) use crate::store::publish::PublishReply;

/// One event ready for `publish.lua`: its id, record and the endpoints it
/// goes to, by partition.
pub(super) struct Prepared {
    pub(super) now: u64,
    pub(super) event_id: String,
    pub(super) home: Partition,
    /// The stored form (stored_event.rs): tenant, type, test flag, body.
    pub(super) record: Vec<u8>,
    /// Its home partition's events hash, and when that may expire.
    pub(super) bucket: String,
    pub(super) expire_at: u64,
    pub(super) complete: bool,
    pub(super) matched: usize,
    pub(super) idempotency_key: Option<String>,
    pub(super) groups: Arc<BTreeMap<Partition, Vec<String>>>,
    /// The configuration version `groups` were matched at, when they came
    /// from a cache (`publish.lua` checks it; see `store::tenant_config`).
    pub(super) checked: Option<u64>,
}

impl Prepared {
    pub(super) fn new(
        state: &Store,
        tenant_id: &str,
        event_type: &str,
        data: &EventData,
        idempotency_key: Option<&str>,
        groups: Arc<BTreeMap<Partition, Vec<String>>>,
        test: bool,
    ) -> Self {
        let now = now_ms();
        let config = &state.config;
        let home = match idempotency_key {
            Some(key) => ids::partition_for(&format!("{tenant_id}\n{key}"), config.partitions),
            None => groups
                .keys()
                .next()
                .copied()
                .unwrap_or_else(|| ids::random_partition(config.partitions)),
        };
        let event_id = ids::new_id(IdKind::Event, home, now);
        let record =
            EventRecord::encode_event(tenant_id, event_type, test, data, config.compress_above);
        let bucket = ids::time_bucket(IdKind::Event, &event_id)
            .map(|(bucket, _)| bucket.to_string())
            .unwrap_or_default();
        let expire_at =
            ids::bucket_expires_at(IdKind::Event, &event_id, config.storage_retention());
        let complete = groups.keys().all(|p| *p == home);
        let matched: usize = groups.values().map(Vec::len).sum();
        Prepared {
            now,
            event_id,
            home,
            record,
            bucket,
            expire_at,
            complete,
            matched,
            idempotency_key: idempotency_key.map(str::to_string),
            groups,
            checked: None,
        }
    }

    /// The same event, its endpoints matched against a cached copy of the
    /// tenant's configuration at version `checked` (if any).
    pub(super) fn checked_at(self, checked: Option<u64>) -> Self {
        Prepared { checked, ..self }
    }

    /// After `publish.lua`: finish an interrupted fan-out of a repeated
    /// key, or queue the other partitions' deliveries of a new event.
    pub(super) async fn settle(
        self,
        state: &Store,
        tenant_id: &str,
        reply: PublishReply,
    ) -> Result<Published, PublishError> {
        let (fresh, id, count, first_complete) = reply;
        if fresh == STALE {
            return Err(PublishError::Stale);
        }
        let now = self.now;
        if fresh == 0 {
            // Seen before. If that request's fan-out was interrupted, finish it.
            if first_complete != "1" {
                let deliveries = Box::pin(finish_fanout(state, tenant_id, &id)).await?;
                return Ok(Published {
                    event_id: id,
                    deliveries,
                    created_at: now,
                    duplicate: true,
                });
            }
            return Ok(Published {
                event_id: id,
                deliveries: count,
                created_at: now,
                duplicate: true,
            });
        }
        if self.complete {
            return Ok(Published {
                event_id: self.event_id,
                deliveries: count,
                created_at: now,
                duplicate: false,
            });
        }
        if self.matched > state.config.fanout_inline {
            // A large fan-out: the event is stored, listed as pending and its
            // home partition's deliveries are queued, so answer now and queue
            // the rest right after. If this process dies first, a worker
            // finishes it (`recover_fanouts`).
            let home = self.home;
            let others: usize = self
                .groups
                .iter()
                .filter(|(p, _)| **p != home)
                .map(|(_, ids)| ids.len())
                .sum();
            let owned = state.clone();
            let tenant_id = tenant_id.to_string();
            let event_id = self.event_id.clone();
            tokio::spawn(async move {
                if let Err(err) = self.fan_out_rest(&owned, &tenant_id, count).await {
                    tracing::warn!(event_id = %self.event_id, error = %err,
                        "background fan-out failed; a worker will finish it");
                }
            });
            return Ok(Published {
                event_id,
                deliveries: count + others as u64,
                created_at: now,
                duplicate: false,
            });
        }
        // Boxed, as the other rare paths here: a settle that only answers
        // (nearly every one) keeps a small future, which every layer of
        // the API's routing moves.
        match Box::pin(self.fan_out_rest(state, tenant_id, count)).await {
            Ok(total) => Ok(Published {
                event_id: self.event_id,
                deliveries: total,
                created_at: now,
                duplicate: false,
            }),
            // The event is stored and listed as pending, so it will be
            // delivered (a worker finishes the fan-out): accept it. An error
            // here would have the client publish it again under a new id,
            // which receivers could not tell from the first.
            Err(err) => {
                tracing::warn!(event_id = %self.event_id, error = %err,
                    "fan-out to other partitions failed; a worker will finish it");
                Ok(Published {
                    event_id: self.event_id,
                    deliveries: self.matched as u64,
                    created_at: now,
                    duplicate: false,
                })
            }
        }
    }

    /// Queues the other partitions' deliveries, then marks the event
    /// complete. Returns the event's delivery count.
    pub(super) async fn fan_out_rest(
        &self,
        state: &Store,
        tenant_id: &str,
        home_count: u64,
    ) -> Result<u64, PublishError> {
        let home = self.home;
        let others = self.groups.iter().filter(|(p, _)| **p != home);
        let total = home_count + fanout(state, tenant_id, &self.event_id, others).await?;
        mark_complete(state, home, &self.event_id).await?;
        Ok(total)
    }
}

/// The `publish.lua` call for events of one tenant sharing a home
/// partition and the version they were matched at (the first event's is
/// checked: callers group events by it).
pub(super) fn invocation(state: &Store, tenant_id: &str, group: &[&Prepared]) -> PublishCall {
    let home = group.first().map_or(Partition(0), |first| first.home);
    let checked = group.first().and_then(|first| first.checked);
    let events: Vec<EventToStore<'_>> = group
        .iter()
        .map(|event| EventToStore {
            event_id: &event.event_id,
            record: &event.record,
            bucket: &event.bucket,
            expire_at: event.expire_at,
            complete: event.complete,
            matched: event.matched,
            idempotency_key: event.idempotency_key.as_deref(),
            here: event
                .groups
                .get(&event.home)
                .map(Vec::as_slice)
                .unwrap_or(&[]),
        })
        .collect();
    let retention = state.config.storage_retention().as_millis() as u64;
    let settings = PublishSettings {
        initial_delay_ms: state.config.initial_delay_ms(),
        idempotency_ttl_ms: state.config.idempotency_ttl.as_millis() as u64,
        retained_from: crate::ids::time_prefix(
            crate::ids::IdKind::Event,
            crate::time_util::now_ms().saturating_sub(retention),
        ),
    };
    PublishCall::new(&state.keys, settings, tenant_id, home, checked, &events)
}
