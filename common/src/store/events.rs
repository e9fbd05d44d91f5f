//! Events' records: one field of their home partition's
//! `{pN}:events:<bucket>` hash each (the format is `stored_event.rs`'s),
//! written by `publish.lua` and read here.

use std::time::Duration;

use redis::aio::ConnectionLike;

use crate::ids::{self, IdKind};
use crate::stored_event::{expired, EventRecord};
use crate::Keys;

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
    let stored: Option<Vec<u8>> = redis::cmd("HGET")
        .arg(keys.events(home, bucket))
        .arg(event_id)
        .query_async(conn)
        .await?;
    Ok(stored.and_then(|stored| EventRecord::parse(event_id, &stored)))
}
