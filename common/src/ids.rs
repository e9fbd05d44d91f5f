//! Identifiers. Every id is `<kind>_<24 base32 chars>`: 10 chars of creation
//! time (so ids sort roughly by age), 12 random chars, and 2 chars naming the
//! queue partition its data lives in.
//!
//! Carrying the partition inside the id is what lets any API or worker find a
//! delivery's or event's keys with one lookup and no global index, on one
//! Redis or across a Redis Cluster (the keys are tagged with the partition,
//! see [`crate::keys`]). Ids are opaque to users; only this module reads them.

use rand::Rng;
use sha2::{Digest, Sha256};

const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";
const BODY_LEN: usize = 24;

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

fn decode_char(c: u8) -> Option<u16> {
    ALPHABET.iter().position(|&a| a == c).map(|p| p as u16)
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

/// The delivery id for one event and one endpoint. It is derived, not random,
/// so re-running an interrupted fan-out creates the same deliveries again
/// instead of duplicates (the publish scripts skip ids that exist).
pub fn delivery_id(event_id: &str, endpoint_id: &str, partition: Partition) -> String {
    let digest = Sha256::new()
        .chain_update(event_id.as_bytes())
        .chain_update(b"|")
        .chain_update(endpoint_id.as_bytes())
        .finalize();
    let mut id = String::with_capacity(4 + BODY_LEN);
    id.push_str("dlv_");
    let mut high = [0u8; 8];
    high.copy_from_slice(&digest[..8]);
    let mut low = [0u8; 8];
    low.copy_from_slice(&digest[8..16]);
    push_base32(&mut id, u64::from_be_bytes(high), 11);
    push_base32(&mut id, u64::from_be_bytes(low), 11);
    push_base32(&mut id, u64::from(partition.0), 2);
    id
}

/// The partition an id of `kind` lives in, or `None` when the text is not a
/// well-formed id of that kind (the API answers 404 for those, never 500).
pub fn partition_of(kind: IdKind, id: &str) -> Option<Partition> {
    let rest = id.strip_prefix(kind.prefix())?.strip_prefix('_')?;
    let bytes = rest.as_bytes();
    if bytes.len() != BODY_LEN || !bytes.iter().all(|&b| decode_char(b).is_some()) {
        return None;
    }
    let high = decode_char(bytes[BODY_LEN - 2])?;
    let low = decode_char(bytes[BODY_LEN - 1])?;
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
    fn ids_carry_their_partition() {
        for p in [0u16, 1, 31, 32, 500, 1023] {
            let id = new_id(IdKind::Event, Partition(p), 1_700_000_000_000);
            assert!(id.starts_with("evt_"));
            assert_eq!(id.len(), 4 + BODY_LEN);
            assert_eq!(partition_of(IdKind::Event, &id), Some(Partition(p)));
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
    fn delivery_ids_are_deterministic() {
        let a = delivery_id("evt_x", "ep_y", Partition(3));
        assert_eq!(a, delivery_id("evt_x", "ep_y", Partition(3)));
        assert_ne!(a, delivery_id("evt_x", "ep_z", Partition(3)));
        assert_eq!(partition_of(IdKind::Delivery, &a), Some(Partition(3)));
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
