//! Reading a stored event: its hash (`event:<evid>`) and its body
//! (`event_body:<evid>`, a string of its own so the hash stays a compact
//! listpack). Events stored before the body had its own key keep it in the
//! hash's `body` field; every reader here looks in both places, in one round
//! trip.

use std::collections::HashMap;

use redis::aio::ConnectionLike;

use crate::ids::Partition;
use crate::Keys;

/// The body (signed JSON) of event `event_id` of home partition `home`, or
/// `None` once it has expired.
pub async fn body<C: ConnectionLike + Send>(
    conn: &mut C,
    keys: &Keys,
    home: Partition,
    event_id: &str,
) -> redis::RedisResult<Option<String>> {
    let (own, in_hash): (Option<String>, Option<String>) = redis::pipe()
        .get(keys.event_body(home, event_id))
        .hget(keys.event(home, event_id), "body")
        .query_async(conn)
        .await?;
    Ok(own.or(in_hash))
}

/// The event's hash fields with its body under `body` (empty map once the
/// event has expired).
pub async fn load<C: ConnectionLike + Send>(
    conn: &mut C,
    keys: &Keys,
    home: Partition,
    event_id: &str,
) -> redis::RedisResult<HashMap<String, String>> {
    let (mut fields, own): (HashMap<String, String>, Option<String>) = redis::pipe()
        .hgetall(keys.event(home, event_id))
        .get(keys.event_body(home, event_id))
        .query_async(conn)
        .await?;
    if let Some(body) = own {
        fields.insert("body".into(), body);
    }
    Ok(fields)
}

/// The delivery ids an event's hash lists itself (`dlv`: a complete event
/// with at most two deliveries, all in its home partition). The others are
/// in the `event_dlv` set of each partition.
pub fn listed_deliveries(fields: &HashMap<String, String>) -> Vec<String> {
    fields
        .get("dlv")
        .map(String::as_str)
        .unwrap_or("")
        .split(',')
        .filter(|id| !id.is_empty())
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listed_deliveries_splits_the_field_and_skips_empty_ones() {
        let mut fields = HashMap::new();
        assert!(listed_deliveries(&fields).is_empty());
        fields.insert("dlv".to_string(), String::new());
        assert!(listed_deliveries(&fields).is_empty());
        fields.insert("dlv".to_string(), "dlv_a,dlv_b".to_string());
        assert_eq!(listed_deliveries(&fields), vec!["dlv_a", "dlv_b"]);
    }
}
