//! Identifiers. Every id is `<kind>_<24 base32 chars>`: 10 chars of creation
//! time (so ids sort roughly by age), 12 random chars, and 2 chars naming the
//! queue partition its data lives in.
//!
//! Carrying the partition inside the id is what lets any API or worker find a
//! delivery's or event's keys with one lookup and no global index, on one
//! Redis or across a Redis Cluster (the keys are tagged with the partition,
//! see [`crate::keys`]). Ids are opaque to users; only this module reads them.

use rand::Rng;

const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";
/// Characters of an id's body (after `<kind>_`); a delivery id's body is
/// twice as long (its event's body, then its endpoint's).
pub const BODY_LEN: usize = 24;
/// Characters of a time bucket, the start of an event or delivery body.
pub const BUCKET_CHARS: usize = 6;
/// Characters that end an id and name its partition.
pub const PARTITION_CHARS: usize = 2;

/// The highest partition count an id can encode (two base32 characters).
pub const MAX_PARTITIONS: u16 = 1024;

/// A queue partition. Each one is a Redis hash tag (`{p7}`): its due set,
/// lease set, deliveries and endpoints live in one hash slot, so every Lua
/// script runs on one node of a cluster.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Partition(pub u16);

/// What an id names; the prefix makes ids self-describing in logs and URLs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdKind {
    Tenant,
    ApiKey,
    Endpoint,
    Event,
    Delivery,
    Replay,
    PortalLink,
}

impl IdKind {
    pub fn prefix(self) -> &'static str {
        match self {
            IdKind::Tenant => "ten",
            IdKind::ApiKey => "key",
            IdKind::Endpoint => "ep",
            IdKind::Event => "evt",
            IdKind::Delivery => "dlv",
            IdKind::Replay => "rpl",
            IdKind::PortalLink => "pl",
        }
    }
}

fn push_base32(out: &mut String, mut value: u64, chars: usize) {
    let mut buf = [0u8; 13];
    for slot in buf[..chars].iter_mut().rev() {
        *slot = ALPHABET[(value & 31) as usize];
        value >>= 5;
    }
    for &c in &buf[..chars] {
        out.push(c as char);
    }
}

/// Each byte's value in [`ALPHABET`], or [`NOT_BASE32`]: ids are read on
/// every request and attempt, so a lookup rather than a search.
const DECODE: [u8; 256] = {
    let mut table = [NOT_BASE32; 256];
    let mut i = 0;
    while i < ALPHABET.len() {
        table[ALPHABET[i] as usize] = i as u8;
        i += 1;
    }
    table
};
const NOT_BASE32: u8 = u8::MAX;

fn decode_char(c: u8) -> Option<u16> {
    match DECODE[c as usize] {
        NOT_BASE32 => None,
        value => Some(u16::from(value)),
    }
}

/// A new random id of `kind` whose data lives in `partition`.
pub fn new_id(kind: IdKind, partition: Partition, now_ms: u64) -> String {
    let mut id = String::with_capacity(kind.prefix().len() + 1 + BODY_LEN);
    id.push_str(kind.prefix());
    id.push('_');
    push_base32(&mut id, now_ms, 10);
    let random: u64 = rand::rng().random();
    push_base32(&mut id, random, 12);
    push_base32(&mut id, u64::from(partition.0), 2);
    id
}

/// The start shared by every id of `kind` created in millisecond `ms`:
/// `<kind>_` and the 10 characters of time. Ids sort by it, so
/// `time_prefix(kind, t)` is a lexicographic bound for "created at `t` or
/// later" (and, as an exclusive bound, "before `t`").
pub fn time_prefix(kind: IdKind, ms: u64) -> String {
    let mut prefix = String::with_capacity(kind.prefix().len() + 11);
    prefix.push_str(kind.prefix());
    prefix.push('_');
    push_base32(&mut prefix, ms, 10);
    prefix
}

/// Length of a delivery id's body: the event id's body, then the endpoint
/// id's body.
const DELIVERY_BODY_LEN: usize = 2 * BODY_LEN;

/// The delivery id for one event and one endpoint: `dlv_`, the event id's
/// 24 characters, then the endpoint id's 24. A delivery is stored as the
/// pair it names (see `keys.rs`), so the id is derived, not random: a
/// re-run fan-out finds the same deliveries, and any reader finds a
/// delivery's event, endpoint and partition (the endpoint's, its last two
/// characters) without an index. `None` when either id is malformed.
pub fn delivery_id(event_id: &str, endpoint_id: &str) -> Option<String> {
    let event = body_of(IdKind::Event, event_id)?;
    let endpoint = body_of(IdKind::Endpoint, endpoint_id)?;
    let mut id = String::with_capacity(4 + DELIVERY_BODY_LEN);
    id.push_str("dlv_");
    id.push_str(event);
    id.push_str(endpoint);
    Some(id)
}

/// The event id and endpoint id a delivery id names, or `None` when it is
/// not a well-formed delivery id.
pub fn delivery_parts(delivery_id: &str) -> Option<(String, String)> {
    let rest = delivery_id.strip_prefix("dlv_")?;
    if rest.len() != DELIVERY_BODY_LEN || !rest.bytes().all(|b| decode_char(b).is_some()) {
        return None;
    }
    let (event, endpoint) = rest.split_at(BODY_LEN);
    Some((format!("evt_{event}"), format!("ep_{endpoint}")))
}

/// The body (after `<kind>_`) of a well-formed id of `kind`.
pub fn body_of(kind: IdKind, id: &str) -> Option<&str> {
    partition_of(kind, id)?;
    id.get(kind.prefix().len() + 1..)
}

/// The partition an id of `kind` lives in, or `None` when the text is not a
/// well-formed id of that kind (the API answers 404 for those, never 500).
///
/// A delivery lives in its endpoint's partition: the last two characters
/// of its id, which end with the endpoint id's body.
pub fn partition_of(kind: IdKind, id: &str) -> Option<Partition> {
    let rest = id.strip_prefix(kind.prefix())?.strip_prefix('_')?;
    let bytes = rest.as_bytes();
    let len = match kind {
        IdKind::Delivery => DELIVERY_BODY_LEN,
        _ => BODY_LEN,
    };
    if bytes.len() != len || !bytes.iter().all(|&b| decode_char(b).is_some()) {
        return None;
    }
    let high = decode_char(bytes[len - 2])?;
    let low = decode_char(bytes[len - 1])?;
    Some(Partition(high * 32 + low))
}

/// When an id made by [`new_id`] was created (epoch ms), read from its
/// first ten characters. Used to measure publish-to-delivery latency.
pub fn created_ms(kind: IdKind, id: &str) -> Option<u64> {
    partition_of(kind, id)?;
    let body = id.get(kind.prefix().len() + 1..)?.as_bytes();
    body[..10].iter().try_fold(0u64, |acc, &c| {
        decode_char(c).map(|v| (acc << 5) | u64::from(v))
    })
}

/// Bits of a creation time (ms) below an id's time bucket: 2^20 ms, about
/// 17.5 minutes, so the bucket is exactly the first six characters of the
/// id's body (5 bits each) and a Lua script finds it with one `sub`.
pub const BUCKET_SHIFT: u32 = 20;

/// The time bucket of an event or delivery id (the first six characters of
/// its body: the creation time in ms, shifted right by [`BUCKET_SHIFT`])
/// and when that bucket ends (epoch ms). Events and delivery states are
/// stored in one hash per partition and bucket, which expires as a whole
/// once its newest entry is past retention (see `keys.rs`).
pub fn time_bucket(kind: IdKind, id: &str) -> Option<(&str, u64)> {
    let body = match kind {
        IdKind::Delivery => {
            delivery_parts(id)?;
            &id[4..]
        }
        _ => body_of(kind, id)?,
    };
    let bucket = &body[..BUCKET_CHARS];
    let value = bucket.bytes().try_fold(0u64, |acc, c| {
        decode_char(c).map(|v| (acc << 5) | u64::from(v))
    })?;
    Some((bucket, (value + 1) << BUCKET_SHIFT))
}

/// When what an event or delivery id's bucket holds may expire: the
/// bucket's end plus retention (the one rule for the events and states
/// hashes; 0, which Redis takes as "now", only for a malformed id).
pub fn bucket_expires_at(kind: IdKind, id: &str, retention: std::time::Duration) -> u64 {
    time_bucket(kind, id).map_or(0, |(_, end)| {
        end.saturating_add(retention.as_millis() as u64)
    })
}

/// The two characters that end the ids of everything living in partition
/// `p` (claim.lua tells the events homed in its partition by them).
pub fn partition_code(p: Partition) -> String {
    let mut code = String::with_capacity(2);
    push_base32(&mut code, u64::from(p.0), 2);
    code
}

/// Whether `id` is a well-formed id of `kind`.
pub fn is_valid(kind: IdKind, id: &str) -> bool {
    partition_of(kind, id).is_some()
}

/// Chooses a partition for a new endpoint: spread at random so the fleet's
/// work spreads evenly over partitions (and cluster nodes).
pub fn random_partition(partitions: u16) -> Partition {
    Partition(rand::rng().random_range(0..partitions.max(1)))
}

/// A stable partition for a string (FNV-1a), used where two requests must
/// agree on a partition without a lookup, e.g. an idempotency key.
pub fn partition_for(text: &str, partitions: u16) -> Partition {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in text.as_bytes() {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    Partition((hash % u64::from(partitions.max(1))) as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_byte_decodes_to_its_place_in_the_alphabet_or_to_none() {
        for byte in 0..=u8::MAX {
            let place = ALPHABET.iter().position(|&a| a == byte);
            assert_eq!(decode_char(byte), place.map(|p| p as u16), "byte {byte}");
        }
    }

    #[test]
    fn ids_carry_their_partition() {
        for p in [0u16, 1, 31, 32, 500, 1023] {
            let id = new_id(IdKind::Event, Partition(p), 1_700_000_000_000);
            assert!(id.starts_with("evt_"));
            assert_eq!(id.len(), 4 + BODY_LEN);
            assert_eq!(partition_of(IdKind::Event, &id), Some(Partition(p)));
            assert!(id.ends_with(&partition_code(Partition(p))));
            assert_eq!(partition_of(IdKind::Delivery, &id), None);
        }
    }

    #[test]
    fn ids_tell_when_they_were_made() {
        let id = new_id(IdKind::Event, Partition(5), 1_795_918_017_007);
        assert_eq!(created_ms(IdKind::Event, &id), Some(1_795_918_017_007));
        assert_eq!(created_ms(IdKind::Event, "evt_x"), None);
    }

    #[test]
    fn delivery_ids_name_their_event_and_endpoint() {
        let event = new_id(IdKind::Event, Partition(5), 1_700_000_000_000);
        let endpoint = new_id(IdKind::Endpoint, Partition(3), 1_600_000_000_000);
        let other = new_id(IdKind::Endpoint, Partition(3), 1_600_000_000_001);
        let a = delivery_id(&event, &endpoint).unwrap();
        assert_eq!(Some(a.clone()), delivery_id(&event, &endpoint));
        assert_ne!(Some(a.clone()), delivery_id(&event, &other));
        assert_eq!(a.len(), 4 + 48);
        assert_eq!(partition_of(IdKind::Delivery, &a), Some(Partition(3)));
        assert_eq!(delivery_parts(&a), Some((event.clone(), endpoint.clone())));
        assert_eq!(delivery_id("evt_x", &endpoint), None);
        assert_eq!(delivery_id(&event, "ep_y"), None);
        for bad in ["dlv_", "dlv_x", &a[..a.len() - 1], &format!("{a}x"), &event] {
            assert_eq!(delivery_parts(bad), None, "{bad}");
            assert_eq!(partition_of(IdKind::Delivery, bad), None, "{bad}");
        }
    }

    #[test]
    fn time_buckets_are_the_first_six_characters() {
        let at = 1_795_918_017_007;
        let event = new_id(IdKind::Event, Partition(2), at);
        let endpoint = new_id(IdKind::Endpoint, Partition(9), 5);
        let (bucket, end) = time_bucket(IdKind::Event, &event).unwrap();
        assert_eq!(bucket, &event[4..10]);
        assert_eq!(end, ((at >> BUCKET_SHIFT) + 1) << BUCKET_SHIFT);
        assert!(end > at && end - at <= 1 << BUCKET_SHIFT);
        let delivery = delivery_id(&event, &endpoint).unwrap();
        assert_eq!(
            time_bucket(IdKind::Delivery, &delivery),
            Some((bucket, end))
        );
        assert_eq!(time_bucket(IdKind::Event, "evt_x"), None);
        let day = std::time::Duration::from_secs(86_400);
        assert_eq!(
            bucket_expires_at(IdKind::Event, &event, day),
            end + 86_400_000
        );
        assert_eq!(
            bucket_expires_at(IdKind::Delivery, &delivery, day),
            end + 86_400_000
        );
        assert_eq!(bucket_expires_at(IdKind::Event, "evt_x", day), 0);
    }

    #[test]
    fn malformed_ids_are_refused() {
        for bad in [
            "",
            "evt_",
            "evt_short",
            "ep_0123456789abcdefghjkmnpq",
            "evt_0123456789abcdefghjkmnpi",
            "evt_0123456789abcdefghjkmnpqr",
        ] {
            assert_eq!(partition_of(IdKind::Event, bad), None, "{bad}");
        }
    }

    #[test]
    fn ids_sort_by_time() {
        let a = new_id(IdKind::Endpoint, Partition(9), 1_000);
        let b = new_id(IdKind::Endpoint, Partition(1), 2_000);
        assert!(a < b);
    }
}
