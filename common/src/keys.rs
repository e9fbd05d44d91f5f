//! The one place that names Redis keys.
//!
//! Layout (`hf` is the configurable prefix):
//!
//! | key | type | what |
//! | --- | --- | --- |
//! | `hf:tenants` | zset | tenant ids by creation time (admin listing) |
//! | `hf:api_key:<sha256>` | string | `<tenant id> <key id>` for a hashed API key |
//! | `hf:workers` | hash | worker id → its last heartbeat (JSON) |
//! | `hf:workers_seen` | zset | worker ids by last heartbeat time |
//! | `hf:{t:<tid>}:tenant` | hash | the tenant |
//! | `hf:{t:<tid>}:api_keys` | hash | key id → key metadata (never the key) |
//! | `hf:{t:<tid>}:endpoints` | hash | endpoint id → subscription summary (publish's index) |
//! | `hf:{t:<tid>}:event_types` | hash | tenant-defined event types |
//! | `hf:{pN}:due` | zset | deliveries waiting, score = next attempt (epoch ms) |
//! | `hf:{pN}:inflight` | zset | deliveries claimed, score = lease deadline |
//! | `hf:{pN}:endpoint:<eid>` | hash | the endpoint (authoritative record) |
//! | `hf:{pN}:event:<evid>` | hash | the event (small fields; a listpack) and, when all its deliveries are in `{pN}` and there are at most two, their ids (`dlv`) |
//! | `hf:{pN}:event_body:<evid>` | string | the event's body (signed JSON), stored once |
//! | `hf:{pN}:idem:<tid>:<key>` | string | idempotency key → event id |
//! | `hf:{pN}:event_dlv:<evid>` | set | the event's deliveries in this partition (not kept for an event listing them in its `dlv` field) |
//! | `hf:{pN}:fanout_pending` | zset | events (of this home partition) whose fan-out is not complete, score = publish time |
//! | `hf:{pN}:delivery:<did>` | hash | one delivery's state |
//! | `hf:{pN}:ep_dlv:<eid>` | zset | the endpoint's deliveries by creation time |
//! | `hf:{pN}:ep_open:<eid>` | set | the endpoint's non-terminal deliveries |
//! | `hf:{pN}:ep_held:<eid>` | zset | deliveries held while the endpoint is disabled |
//! | `hf:{pN}:attempts:<eid>` | stream | the endpoint's attempt log (capped) |
//! | `hf:{pN}:ep_stats:<eid>` | hash | the endpoint's counters |
//! | `hf:{pN}:rate:<eid>` | string | GCRA state (theoretical arrival time) |
//! | `hf:{pN}:ep_b5:<eid>:<start>` | hash | 5-minute stats bucket (counters, latency bins) |
//! | `hf:{pN}:ep_bh:<eid>:<start>` | hash | hourly stats bucket |
//! | `hf:{pN}:replay:<rid>` | hash | a replay job's progress |
//! | `hf:{pN}:replay_running:<eid>` | string | the id of the endpoint's running replay (one at a time) |
//! | `hf:{pN}:notices` | zset | operational events recorded by `record.lua`, not yet published (score: the attempt's time) |
//!
//! Everything in `{pN}` shares one hash slot, so the scripts that move a
//! delivery (publish, fanout, claim, record) run on one node even on a
//! Redis Cluster. Per-id keys that a script discovers while running (a
//! delivery found in the due set) are built in Lua from
//! [`Keys::partition_prefix`] and the `*_PART` fragments below; a test checks
//! the scripts use exactly these fragments.

use crate::ids::Partition;

/// Key fragment after the partition prefix: one delivery's hash.
pub const DELIVERY_PART: &str = "delivery:";
/// Key fragment: an endpoint's hash.
pub const ENDPOINT_PART: &str = "endpoint:";
/// Key fragment: an event's hash.
pub const EVENT_PART: &str = "event:";
/// Key fragment: an event's body.
pub const EVENT_BODY_PART: &str = "event_body:";
/// Key fragment: the set of an event's deliveries in one partition.
pub const EVENT_DELIVERIES_PART: &str = "event_dlv:";
/// Key fragment: an endpoint's deliveries by creation time.
pub const ENDPOINT_DELIVERIES_PART: &str = "ep_dlv:";
/// Key fragment: an endpoint's open (non-terminal) deliveries.
pub const ENDPOINT_OPEN_PART: &str = "ep_open:";
/// Key fragment: deliveries held while an endpoint is disabled.
pub const ENDPOINT_HELD_PART: &str = "ep_held:";
/// Key fragment: an endpoint's attempt stream.
pub const ATTEMPTS_PART: &str = "attempts:";
/// Key fragment: an endpoint's counters.
pub const ENDPOINT_STATS_PART: &str = "ep_stats:";
/// Key fragment: an endpoint's rate-limit (GCRA) state.
pub const RATE_PART: &str = "rate:";
/// Key fragment: an endpoint's 5-minute stats bucket (`<eid>:<start>`).
pub const STATS_FINE_PART: &str = "ep_b5:";
/// Key fragment: an endpoint's hourly stats bucket (`<eid>:<start>`).
pub const STATS_COARSE_PART: &str = "ep_bh:";
/// Key fragment: an endpoint's replay jobs.
pub const REPLAY_PART: &str = "replay:";
/// Key fragment: the id of an endpoint's running replay.
pub const REPLAY_RUNNING_PART: &str = "replay_running:";
/// Starts a release marker in `due` (claim.lua reads the word before `:`;
/// a delivery id starts with `dlv_`).
pub const RELEASE_MARKER: &str = "release:";
/// Starts a cancel marker in `due`.
pub const CANCEL_MARKER: &str = "cancel:";

/// Builds every key name from the configured prefix.
#[derive(Clone, Debug)]
pub struct Keys {
    prefix: String,
}

impl Keys {
    pub fn new(prefix: impl Into<String>) -> Self {
        Self {
            prefix: prefix.into(),
        }
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    // ---- global keys -------------------------------------------------

    pub fn tenants(&self) -> String {
        format!("{}:tenants", self.prefix)
    }

    /// Lookup from the SHA-256 (hex) of an API key to its tenant and key id.
    pub fn api_key_lookup(&self, key_hash_hex: &str) -> String {
        format!("{}:api_key:{key_hash_hex}", self.prefix)
    }

    /// Live workers: worker id → JSON heartbeat.
    pub fn workers(&self) -> String {
        format!("{}:workers", self.prefix)
    }

    /// Worker ids by last heartbeat (epoch ms), to drop silent ones.
    pub fn workers_seen(&self) -> String {
        format!("{}:workers_seen", self.prefix)
    }

    /// Channel on which publishers wake idle workers.
    pub fn wake_channel(&self) -> String {
        format!("{}:wake", self.prefix)
    }

    // ---- tenant keys (tag {t:<tid>}) ------------------------------------

    pub fn tenant(&self, tenant_id: &str) -> String {
        format!("{}:{{t:{tenant_id}}}:tenant", self.prefix)
    }

    pub fn tenant_api_keys(&self, tenant_id: &str) -> String {
        format!("{}:{{t:{tenant_id}}}:api_keys", self.prefix)
    }

    pub fn tenant_endpoints(&self, tenant_id: &str) -> String {
        format!("{}:{{t:{tenant_id}}}:endpoints", self.prefix)
    }

    pub fn tenant_event_types(&self, tenant_id: &str) -> String {
        format!("{}:{{t:{tenant_id}}}:event_types", self.prefix)
    }

    // ---- partition keys (tag {pN}) --------------------------------------

    /// `hf:{pN}:` — the start of every key in partition `p`.
    pub fn partition_prefix(&self, p: Partition) -> String {
        format!("{}:{{p{}}}:", self.prefix, p.0)
    }

    fn in_partition(&self, p: Partition, part: &str, id: &str) -> String {
        format!("{}:{{p{}}}:{part}{id}", self.prefix, p.0)
    }

    pub fn due(&self, p: Partition) -> String {
        format!("{}:{{p{}}}:due", self.prefix, p.0)
    }

    /// Events of home partition `p` whose fan-out is not complete yet.
    pub fn fanout_pending(&self, p: Partition) -> String {
        format!("{}:{{p{}}}:fanout_pending", self.prefix, p.0)
    }

    /// `hf:{pN}:notices`: operational events recorded by `record.lua` and
    /// not yet published (zset, score = the attempt's time, ms; pushed to
    /// now when publishing fails).
    pub fn notices(&self, p: Partition) -> String {
        format!("{}:{{p{}}}:notices", self.prefix, p.0)
    }

    pub fn inflight(&self, p: Partition) -> String {
        format!("{}:{{p{}}}:inflight", self.prefix, p.0)
    }

    pub fn endpoint(&self, p: Partition, endpoint_id: &str) -> String {
        self.in_partition(p, ENDPOINT_PART, endpoint_id)
    }

    pub fn event(&self, p: Partition, event_id: &str) -> String {
        self.in_partition(p, EVENT_PART, event_id)
    }

    /// The event's body (signed JSON), a string beside the event's hash.
    pub fn event_body(&self, p: Partition, event_id: &str) -> String {
        self.in_partition(p, EVENT_BODY_PART, event_id)
    }

    pub fn idempotency(&self, p: Partition, tenant_id: &str, key: &str) -> String {
        format!("{}:{{p{}}}:idem:{tenant_id}:{key}", self.prefix, p.0)
    }

    pub fn event_deliveries(&self, p: Partition, event_id: &str) -> String {
        self.in_partition(p, EVENT_DELIVERIES_PART, event_id)
    }

    pub fn delivery(&self, p: Partition, delivery_id: &str) -> String {
        self.in_partition(p, DELIVERY_PART, delivery_id)
    }

    pub fn endpoint_deliveries(&self, p: Partition, endpoint_id: &str) -> String {
        self.in_partition(p, ENDPOINT_DELIVERIES_PART, endpoint_id)
    }

    pub fn endpoint_open(&self, p: Partition, endpoint_id: &str) -> String {
        self.in_partition(p, ENDPOINT_OPEN_PART, endpoint_id)
    }

    pub fn endpoint_held(&self, p: Partition, endpoint_id: &str) -> String {
        self.in_partition(p, ENDPOINT_HELD_PART, endpoint_id)
    }

    /// Not a key: the member of an endpoint's `due` set that asks the
    /// claims to release the rest of its held deliveries (see claim.lua).
    pub fn release_marker(&self, endpoint_id: &str) -> String {
        format!("{RELEASE_MARKER}{endpoint_id}")
    }

    /// Not a key: the member of a deleted endpoint's `due` set that asks
    /// the claims to cancel the rest of its open deliveries.
    pub fn cancel_marker(&self, endpoint_id: &str) -> String {
        format!("{CANCEL_MARKER}{endpoint_id}")
    }

    pub fn attempts(&self, p: Partition, endpoint_id: &str) -> String {
        self.in_partition(p, ATTEMPTS_PART, endpoint_id)
    }

    pub fn endpoint_stats(&self, p: Partition, endpoint_id: &str) -> String {
        self.in_partition(p, ENDPOINT_STATS_PART, endpoint_id)
    }

    pub fn rate(&self, p: Partition, endpoint_id: &str) -> String {
        self.in_partition(p, RATE_PART, endpoint_id)
    }

    /// The 5-minute stats bucket of an endpoint starting at `start_ms`.
    pub fn stats_fine(&self, p: Partition, endpoint_id: &str, start_ms: u64) -> String {
        self.in_partition(p, STATS_FINE_PART, &format!("{endpoint_id}:{start_ms}"))
    }

    /// The hourly stats bucket of an endpoint starting at `start_ms`.
    pub fn stats_coarse(&self, p: Partition, endpoint_id: &str, start_ms: u64) -> String {
        self.in_partition(p, STATS_COARSE_PART, &format!("{endpoint_id}:{start_ms}"))
    }

    /// A replay job of an endpoint (in the endpoint's partition).
    pub fn replay(&self, p: Partition, replay_id: &str) -> String {
        self.in_partition(p, REPLAY_PART, replay_id)
    }

    /// The endpoint's running replay, if any: one replay per endpoint at a
    /// time (each walks up to 7 days of the log).
    pub fn replay_running(&self, p: Partition, endpoint_id: &str) -> String {
        self.in_partition(p, REPLAY_RUNNING_PART, endpoint_id)
    }
}

/// The Redis Cluster hash tag of a key (the text inside the first `{...}`),
/// or the whole key when it has none. Used by tests to prove every script's
/// keys share one slot.
pub fn hash_tag(key: &str) -> &str {
    if let Some(open) = key.find('{') {
        if let Some(len) = key[open + 1..].find('}') {
            if len > 0 {
                return &key[open + 1..open + 1 + len];
            }
        }
    }
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_keys_share_a_tag() {
        let keys = Keys::new("hf");
        let p = Partition(7);
        let all = [
            keys.due(p),
            keys.inflight(p),
            keys.endpoint(p, "ep_1"),
            keys.event(p, "evt_1"),
            keys.event_body(p, "evt_1"),
            keys.idempotency(p, "ten_1", "abc"),
            keys.event_deliveries(p, "evt_1"),
            keys.delivery(p, "dlv_1"),
            keys.endpoint_deliveries(p, "ep_1"),
            keys.endpoint_open(p, "ep_1"),
            keys.endpoint_held(p, "ep_1"),
            keys.attempts(p, "ep_1"),
            keys.endpoint_stats(p, "ep_1"),
            keys.rate(p, "ep_1"),
            keys.stats_fine(p, "ep_1", 0),
            keys.stats_coarse(p, "ep_1", 0),
            keys.replay(p, "rpl_1"),
        ];
        for key in &all {
            assert_eq!(hash_tag(key), "p7", "{key}");
            assert!(key.starts_with(&keys.partition_prefix(p)), "{key}");
        }
        assert_eq!(hash_tag(&keys.tenant("ten_1")), "t:ten_1");
        assert_eq!(hash_tag(&keys.tenant_endpoints("ten_1")), "t:ten_1");
    }

    #[test]
    fn lua_scripts_use_only_known_fragments() {
        let fragments = [
            DELIVERY_PART,
            ENDPOINT_PART,
            EVENT_PART,
            EVENT_BODY_PART,
            EVENT_DELIVERIES_PART,
            ENDPOINT_DELIVERIES_PART,
            ENDPOINT_OPEN_PART,
            ENDPOINT_HELD_PART,
            ATTEMPTS_PART,
            ENDPOINT_STATS_PART,
            RATE_PART,
            STATS_FINE_PART,
            STATS_COARSE_PART,
        ];
        for (name, source) in crate::scripts::SOURCES {
            // Every `prefix .. '<fragment>'` in a script must be a known fragment.
            for piece in source.split("prefix .. '").skip(1) {
                let fragment = piece.split('\'').next().unwrap_or_default();
                assert!(
                    fragments.contains(&fragment),
                    "{name} builds a key with unknown fragment `{fragment}`"
                );
            }
        }
    }
}
