//! An event as stored: one field of its home partition's `events:<bucket>`
//! hash (see `keys.rs`), the event id → its *record*:
//!
//! ```text
//! <flag><tenant id>\n<event type>\n<body>
//! ```
//!
//! `flag` is `t` for a test send and `-` otherwise; `body` is the signed
//! JSON, the same bytes every attempt sends. One field instead of a hash
//! and a body key per event saves two keys, two TTLs and a hash table per
//! event (about 200 bytes); the bucket's hash expires as a whole once its
//! events are past retention, and readers treat an event older than
//! retention as gone even while its bucket lingers (at most one bucket,
//! about 17.5 minutes).
//!
//! The record is written once, by `publish.lua`, and never changed: what
//! changes later (an interrupted fan-out completing, its delivery count)
//! lives in `fanout_pending` and the idempotency key.

use std::time::Duration;

use redis::aio::ConnectionLike;

use crate::ids::{self, IdKind};
use crate::Keys;

/// An event's record, parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventRecord {
    pub tenant_id: String,
    pub event_type: String,
    /// A test send: one attempt, outside the endpoint's statistics.
    pub test: bool,
    /// The record as stored; the body is its tail.
    text: String,
    body_at: usize,
}

impl EventRecord {
    /// The stored form of an event (see the module's header).
    pub fn encode(tenant_id: &str, event_type: &str, test: bool, body: &str) -> String {
        let mut text = String::with_capacity(tenant_id.len() + event_type.len() + body.len() + 3);
        text.push(if test { 't' } else { '-' });
        text.push_str(tenant_id);
        text.push('\n');
        text.push_str(event_type);
        text.push('\n');
        text.push_str(body);
        text
    }

    /// Parses a stored record; `None` when it is not one.
    pub fn parse(text: String) -> Option<Self> {
        let test = match text.as_bytes().first()? {
            b't' => true,
            b'-' => false,
            _ => return None,
        };
        let tenant_end = text.find('\n')?;
        let type_end = tenant_end + 1 + text[tenant_end + 1..].find('\n')?;
        Some(EventRecord {
            tenant_id: text[1..tenant_end].to_string(),
            event_type: text[tenant_end + 1..type_end].to_string(),
            test,
            body_at: type_end + 1,
            text,
        })
    }

    /// The body: the signed JSON every attempt sends.
    pub fn body(&self) -> &str {
        &self.text[self.body_at..]
    }

    /// The body, taking the record apart without a copy when possible.
    pub fn into_body(mut self) -> String {
        self.text.drain(..self.body_at);
        self.text
    }
}

/// Whether an event created at `created_ms` is past `retention` at `now_ms`.
pub fn expired(created_ms: u64, retention: Duration, now_ms: u64) -> bool {
    created_ms.saturating_add(retention.as_millis() as u64) <= now_ms
}

/// The record of event `event_id`, or `None` once it has expired (or when
/// the id is malformed).
pub async fn load<C: ConnectionLike + Send>(
    conn: &mut C,
    keys: &Keys,
    event_id: &str,
    retention: Duration,
) -> redis::RedisResult<Option<EventRecord>> {
    let (Some(home), Some((bucket, _)), Some(created)) = (
        ids::partition_of(IdKind::Event, event_id),
        ids::time_bucket(IdKind::Event, event_id),
        ids::created_ms(IdKind::Event, event_id),
    ) else {
        return Ok(None);
    };
    if expired(created, retention, crate::time_util::now_ms()) {
        return Ok(None);
    }
    let text: Option<String> = redis::cmd("HGET")
        .arg(keys.events(home, bucket))
        .arg(event_id)
        .query_async(conn)
        .await?;
    Ok(text.and_then(EventRecord::parse))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip() {
        let body = "{\"id\":\"evt_1\",\"data\":{\"a\":\"x\\ny\"}}";
        for test in [false, true] {
            let text = EventRecord::encode("ten_1", "user.created", test, body);
            let record = EventRecord::parse(text).unwrap();
            assert_eq!(record.tenant_id, "ten_1");
            assert_eq!(record.event_type, "user.created");
            assert_eq!(record.test, test);
            assert_eq!(record.body(), body);
            assert_eq!(record.into_body(), body);
        }
        for bad in ["", "x", "-ten_1", "-ten_1\nuser.created", "?ten\nt\nb"] {
            assert_eq!(EventRecord::parse(bad.to_string()), None, "{bad:?}");
        }
    }

    #[test]
    fn expiry_counts_from_creation() {
        let day = Duration::from_secs(86_400);
        assert!(!expired(1_000, day, 1_000 + 86_399_999));
        assert!(expired(1_000, day, 1_000 + 86_400_000));
    }
}
