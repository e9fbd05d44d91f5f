//! The one place that names Redis keys.
//!
//! Layout (`hf` is the configurable prefix):
//!
//! | key | type | what |
//! | --- | --- | --- |
//! | `hf:layout` | string | the storage layout this data is in (see [`LAYOUT`]) |
//! | `hf:tenants` | zset | tenant ids by creation time (admin listing) |
//! | `hf:api_key:<sha256>` | string | `<tenant id> <key id> <scopes>` for a hashed API key (keys made before scopes have no third part: all scopes) |
//! | `hf:portal_link:<plid>` | string | a portal link (JSON, with the SHA-256 of its token, never the token), expiring with the link |
//! | `hf:portal_token:<sha256>` | string | the portal link id for a hashed link token, expiring with the link |
//! | `hf:portal_session:<sha256>` | string | the portal link id for a hashed portal session token, expiring with the link |
//! | `hf:tenant_deletions` | hash | tenant id → its deletion job (phase, cursor, counts, lease) |
//! | `hf:retention_sweep` | string | the worker sweeping data past tenants' own retention (TTL: one sweep interval) |
//! | `hf:workers` | hash | worker id → its last heartbeat (JSON) |
//! | `hf:workers_seen` | zset | worker ids by last heartbeat time |
//! | `hf:{t:<tid>}:tenant` | hash | the tenant |
//! | `hf:{t:<tid>}:api_keys` | hash | key id → key metadata (never the key) |
//! | `hf:{t:<tid>}:endpoints` | hash | endpoint id → subscription summary (publish's index) |
//! | `hf:{t:<tid>}:endpoints_deleted` | zset | endpoints deleted within retention, by deletion time (their deliveries still show, cancelled, on their events) |
//! | `hf:{t:<tid>}:event_types` | hash | tenant-defined event types |
//! | `hf:{t:<tid>}:usage` | hash | events counted against the tenant's cap, by hour (`h<hour>`), with `total`, `from` and `retention` |
//! | `hf:{t:<tid>}:portal_links` | zset | the tenant's portal link ids, score = when each expires (ms) |
//! | `hf:{pN}:events:<bucket>` | hash | event id → the event record (`<flag><tenant>\n<type>\n<form><payload>`, [`crate::stored_event`]), for events created in the bucket |
//! | `hf:{pN}:idem:<tid>:<key>` | string | idempotency key → `<event id> <delivery count>` |
//! | `hf:{pN}:fanout_pending` | zset | events (of this home partition) whose fan-out is not complete, score = publish time |
//! | `hf:{pN}:ready` | zset | endpoints with deliveries to hand out, score = when the first is due (ms), or the endpoint's next rate-limit slot |
//! | `hf:{pN}:queued` | string | deliveries waiting in the partition (the depth gauge) |
//! | `hf:{pN}:inflight` | zset | deliveries claimed, score = lease deadline (ms), which is also the lease token |
//! | `hf:{pN}:endpoint:<eid>` | hash | the endpoint (authoritative record); `qhead` = the log score of the last delivery handed out for a first attempt |
//! | `hf:{pN}:ep_dlv:<eid>` | zset | the endpoint's deliveries: event ids by creation time (µs, unique per endpoint); the delivery log, and past `qhead` the queue of first attempts |
//! | `hf:{pN}:ep_due:<eid>` | zset | the endpoint's deliveries waiting for a later attempt (retry, manual retry, expired lease), score = due (ms) |
//! | `hf:{pN}:states:<bucket>` | hash | delivery id (without `dlv_`) → its state once attempted or retried ([`crate::delivery_state`]) |
//! | `hf:{pN}:attempts:<eid>` | stream | the endpoint's attempt log (capped) |
//! | `hf:{pN}:ep_stats:<eid>` | hash | the endpoint's counters |
//! | `hf:{pN}:rate:<eid>` | string | GCRA state (theoretical arrival time) |
//! | `hf:{pN}:ep_b5:<eid>:<start>` | hash | 5-minute stats bucket (counters, latency bins) |
//! | `hf:{pN}:ep_bh:<eid>:<start>` | hash | hourly stats bucket |
//! | `hf:{pN}:replay:<rid>` | hash | a replay job's progress |
//! | `hf:{pN}:replay_running:<eid>` | string | the id of the endpoint's running replay (one at a time) |
//! | `hf:{pN}:notices` | zset | operational events recorded by `record.lua`, not yet published (score: the attempt's time) |
//!
//! A delivery has no key of its own until it is attempted: it is the pair
//! (event, endpoint) its id names, an entry in the endpoint's `ep_dlv`, and
//! the event's record. `<bucket>` is the first six characters of an id's
//! body ([`crate::ids::time_bucket`], about 17.5 minutes): events and
//! delivery states share one hash per partition and bucket, which expires
//! as a whole once the bucket is past retention, instead of a key and a TTL
//! per event and per delivery.
//!
//! Everything in `{pN}` shares one hash slot, so the scripts that move a
//! delivery (publish, fanout, claim, record) run on one node even on a
//! Redis Cluster. Per-id keys that a script discovers while running (an
//! endpoint found in the ready set) are built in Lua from
//! [`Keys::partition_prefix`] and the `*_PART` fragments below; a test checks
//! the scripts use exactly these fragments.

use crate::ids::Partition;

/// The storage layout of this version: the value of `hf:layout`. Both
/// binaries refuse to start on data of another layout (an empty Redis
/// takes this one).
pub const LAYOUT: &str = "4";

/// Key fragment after the partition prefix: an endpoint's hash.
pub const ENDPOINT_PART: &str = "endpoint:";
/// Key fragment: the events of one time bucket (`events:<bucket>`).
pub const EVENTS_PART: &str = "events:";
/// Key fragment: the delivery states of one time bucket (`states:<bucket>`).
pub const STATES_PART: &str = "states:";
/// Key fragment: an endpoint's deliveries by creation time.
pub const ENDPOINT_DELIVERIES_PART: &str = "ep_dlv:";
/// Key fragment: an endpoint's deliveries waiting for a later attempt.
pub const ENDPOINT_DUE_PART: &str = "ep_due:";
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
/// Key fragment after the partition prefix: a tenant's events homed in the
/// partition (`tevents:<tid>`).
pub const TENANT_EVENTS_PART: &str = "tevents:";
/// Key fragment after the partition prefix: a tenant's events with a
/// delivery that ended failed in the partition (`tfailed:<tid>`).
pub const TENANT_FAILED_PART: &str = "tfailed:";
/// Key fragment: the id of an endpoint's running replay.
pub const REPLAY_RUNNING_PART: &str = "replay_running:";

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

    /// The storage layout of the data under this prefix ([`LAYOUT`]).
    pub fn layout(&self) -> String {
        format!("{}:layout", self.prefix)
    }

    pub fn tenants(&self) -> String {
        format!("{}:tenants", self.prefix)
    }

    /// Lookup from the SHA-256 (hex) of an API key to its tenant and key id.
    pub fn api_key_lookup(&self, key_hash_hex: &str) -> String {
        format!("{}:api_key:{key_hash_hex}", self.prefix)
    }

    /// A portal link (JSON), by its id.
    pub fn portal_link(&self, link_id: &str) -> String {
        format!("{}:portal_link:{link_id}", self.prefix)
    }

    /// Lookup from the SHA-256 (hex) of a portal link's token to the link.
    pub fn portal_token(&self, token_hash_hex: &str) -> String {
        format!("{}:portal_token:{token_hash_hex}", self.prefix)
    }

    /// Lookup from the SHA-256 (hex) of a portal session to its link.
    pub fn portal_session(&self, session_hash_hex: &str) -> String {
        format!("{}:portal_session:{session_hash_hex}", self.prefix)
    }

    /// Tenant deletions under way: tenant id → the job (JSON: its phase,
    /// cursor, counts, and the lease of the worker running it). One key
    /// for the whole installation, so taking a job and moving its cursor
    /// are single-key scripts on a cluster too.
    pub fn tenant_deletions(&self) -> String {
        format!("{}:tenant_deletions", self.prefix)
    }

    /// Held (with a TTL of one sweep interval) by the worker sweeping
    /// tenants' data past their own retention.
    pub fn retention_sweep(&self) -> String {
        format!("{}:retention_sweep", self.prefix)
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

    /// Channel on which a revoked API key's SHA-256 is published, so every
    /// API process drops it from its cache of resolved keys.
    pub fn auth_channel(&self) -> String {
        format!("{}:auth", self.prefix)
    }

    /// Channel on which `record.lua` names each test send's delivery once
    /// its attempt is recorded: API processes wait on it instead of polling.
    pub fn attempted_channel(&self) -> String {
        format!("{}:attempted", self.prefix)
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

    /// Endpoints of the tenant deleted within retention, by deletion time:
    /// an event's deliveries are found through its tenant's endpoints, and
    /// those of a deleted endpoint still show (cancelled) until they expire.
    pub fn tenant_endpoints_deleted(&self, tenant_id: &str) -> String {
        format!("{}:{{t:{tenant_id}}}:endpoints_deleted", self.prefix)
    }

    /// The tenant's test sends waiting for their attempt: token → the
    /// time (ms) its wait ends, so a slot whose API process died frees
    /// itself (`HOOKFLEET_TEST_SEND_MAX_PENDING`).
    pub fn tenant_test_sends(&self, tenant_id: &str) -> String {
        format!("{}:{{t:{tenant_id}}}:test_sends", self.prefix)
    }

    /// The tenant's portal links by expiry, to list them.
    pub fn tenant_portal_links(&self, tenant_id: &str) -> String {
        format!("{}:{{t:{tenant_id}}}:portal_links", self.prefix)
    }

    /// The tenant's events counted against its cap on retained events,
    /// by hour (only while it has a cap; see `store::usage`).
    pub fn tenant_usage(&self, tenant_id: &str) -> String {
        format!("{}:{{t:{tenant_id}}}:usage", self.prefix)
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

    /// Endpoints of partition `p` with deliveries to hand out, by when the
    /// first is due (the claim's schedule).
    pub fn ready(&self, p: Partition) -> String {
        format!("{}:{{p{}}}:ready", self.prefix, p.0)
    }

    /// How many deliveries wait in partition `p` (first attempts not yet
    /// handed out, and later attempts due); kept by the scripts, read by
    /// the queue-depth gauge.
    pub fn queued(&self, p: Partition) -> String {
        format!("{}:{{p{}}}:queued", self.prefix, p.0)
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

    /// `hf:{pN}:tconfig`: tenant id → the version of the tenant's publish
    /// configuration (endpoint index, event types, cap) last announced to
    /// this partition. Every change writes it into every partition before
    /// it is answered, so `publish.lua` can tell an API process that
    /// matched an event against an older cached copy to read it again
    /// (the API's `index_cache.rs`).
    pub fn tenant_config_versions(&self, p: Partition) -> String {
        format!("{}:{{p{}}}:tconfig", self.prefix, p.0)
    }

    /// Ordered (FIFO) endpoints of partition `p` whose line is held by a
    /// delivery waiting for its retry, scored by when that delivery was
    /// created (ms): record.lua keeps it, the head-age gauge reads it.
    pub fn fifo_heads(&self, p: Partition) -> String {
        format!("{}:{{p{}}}:fifo_heads", self.prefix, p.0)
    }

    /// The tenant's events homed in partition `p` (test sends aside), by
    /// id: all scored 0, so the set orders them by id, which is by time.
    pub fn tenant_events(&self, p: Partition, tenant_id: &str) -> String {
        self.in_partition(p, TENANT_EVENTS_PART, tenant_id)
    }

    /// The tenant's events with a delivery to an endpoint of partition `p`
    /// that ended failed, by id (scored 0, as [`Keys::tenant_events`]).
    pub fn tenant_failed(&self, p: Partition, tenant_id: &str) -> String {
        self.in_partition(p, TENANT_FAILED_PART, tenant_id)
    }

    /// Running replays of partition `p`, by when a worker may take one:
    /// its start, or its holder's lease deadline (ms).
    pub fn replays(&self, p: Partition) -> String {
        format!("{}:{{p{}}}:replays", self.prefix, p.0)
    }

    pub fn inflight(&self, p: Partition) -> String {
        format!("{}:{{p{}}}:inflight", self.prefix, p.0)
    }

    pub fn endpoint(&self, p: Partition, endpoint_id: &str) -> String {
        self.in_partition(p, ENDPOINT_PART, endpoint_id)
    }

    /// The events of home partition `p` created in time bucket `bucket`
    /// ([`crate::ids::time_bucket`]).
    pub fn events(&self, p: Partition, bucket: &str) -> String {
        self.in_partition(p, EVENTS_PART, bucket)
    }

    /// The delivery states of partition `p` whose events were created in
    /// time bucket `bucket`.
    pub fn states(&self, p: Partition, bucket: &str) -> String {
        self.in_partition(p, STATES_PART, bucket)
    }

    pub fn idempotency(&self, p: Partition, tenant_id: &str, key: &str) -> String {
        format!("{}:{{p{}}}:idem:{tenant_id}:{key}", self.prefix, p.0)
    }

    /// The endpoint's deliveries by creation time: its delivery log, and
    /// (past the endpoint's `qhead`) its queue of first attempts.
    pub fn endpoint_deliveries(&self, p: Partition, endpoint_id: &str) -> String {
        self.in_partition(p, ENDPOINT_DELIVERIES_PART, endpoint_id)
    }

    /// The endpoint's deliveries waiting for a later attempt, by due time.
    pub fn endpoint_due(&self, p: Partition, endpoint_id: &str) -> String {
        self.in_partition(p, ENDPOINT_DUE_PART, endpoint_id)
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
            keys.ready(p),
            keys.queued(p),
            keys.inflight(p),
            keys.fifo_heads(p),
            keys.replays(p),
            keys.tenant_events(p, "ten_1"),
            keys.tenant_failed(p, "ten_1"),
            keys.fanout_pending(p),
            keys.notices(p),
            keys.endpoint(p, "ep_1"),
            keys.events(p, "0123ab"),
            keys.states(p, "0123ab"),
            keys.idempotency(p, "ten_1", "abc"),
            keys.endpoint_deliveries(p, "ep_1"),
            keys.endpoint_due(p, "ep_1"),
            keys.attempts(p, "ep_1"),
            keys.endpoint_stats(p, "ep_1"),
            keys.rate(p, "ep_1"),
            keys.stats_fine(p, "ep_1", 0),
            keys.stats_coarse(p, "ep_1", 0),
            keys.replay(p, "rpl_1"),
            keys.replay_running(p, "ep_1"),
        ];
        for key in &all {
            assert_eq!(hash_tag(key), "p7", "{key}");
            assert!(key.starts_with(&keys.partition_prefix(p)), "{key}");
        }
        assert_eq!(hash_tag(&keys.tenant("ten_1")), "t:ten_1");
        assert_eq!(hash_tag(&keys.tenant_endpoints("ten_1")), "t:ten_1");
        assert_eq!(hash_tag(&keys.tenant_endpoints_deleted("ten_1")), "t:ten_1");
        assert_eq!(hash_tag(&keys.tenant_test_sends("ten_1")), "t:ten_1");
    }

    #[test]
    fn lua_scripts_use_only_known_fragments() {
        let fragments = [
            ENDPOINT_PART,
            EVENTS_PART,
            STATES_PART,
            ENDPOINT_DELIVERIES_PART,
            ENDPOINT_DUE_PART,
            ATTEMPTS_PART,
            ENDPOINT_STATS_PART,
            RATE_PART,
            STATS_FINE_PART,
            STATS_COARSE_PART,
            REPLAY_PART,
            TENANT_EVENTS_PART,
            TENANT_FAILED_PART,
        ];
        for (name, source) in crate::store::SOURCES {
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
