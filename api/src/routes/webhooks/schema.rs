//! A webhook as the API shows it ([`Webhook`], [`WebhookPage`]) and as a
//! tenant creates and changes it ([`CreateWebhook`], [`UpdateWebhook`]):
//! the bodies of the CRUD routes in `crud.rs`, each field with its
//! description and bounds. The bounds on request fields document; `input.rs`
//! and the handlers enforce them.

use std::collections::BTreeMap;
use std::time::Duration;

use hookfleet_common::duration::format_duration;

use hookfleet_common::ids;
use hookfleet_common::model::EndpointRecord;
use hookfleet_common::store::reads;
use hookfleet_common::time_util::{now_ms, rfc3339_ms};
use poem_openapi::types::MaybeUndefined;
use poem_openapi::Object;
use serde::Deserialize;

/// An endpoint that receives events.
#[derive(Object, Debug)]
#[oai(example)]
pub struct Webhook {
    /// The endpoint's id (`ep_…`).
    pub id: String,
    /// Where events are POSTed (http or https).
    pub url: String,
    /// The event types it receives: exact names, `prefix.*` or `*`.
    pub events: Vec<String>,
    /// A note for people.
    pub description: String,
    /// Extra request headers sent with every delivery.
    pub headers: BTreeMap<String, String>,
    /// Most deliveries per second, fleet-wide; absent for no limit.
    #[oai(skip_serializing_if_is_none)]
    pub rate_limit: Option<u32>,
    /// Timeout of one delivery attempt in seconds; absent for the server's
    /// default (`HOOKFLEET_REQUEST_TIMEOUT`, 30 s).
    #[oai(skip_serializing_if_is_none)]
    pub timeout_s: Option<u64>,
    /// Most attempts in flight to this endpoint at once, across every
    /// worker; absent for the server's default (`HOOKFLEET_MAX_IN_FLIGHT`,
    /// 32). While its attempts time out, fewer are sent (halved per
    /// timeout, one more per answer).
    #[oai(skip_serializing_if_is_none)]
    pub max_in_flight: Option<u32>,
    /// `enabled`, `paused` (new events are queued and held, in order, until
    /// it is resumed) or `disabled` (nothing new is queued; what was queued
    /// waits until it is enabled). Follows from `active` and `paused`.
    #[oai(validator(pattern = "^(enabled|paused|disabled)$"))]
    pub status: String,
    /// False when disabled, by a person (`PATCH {"active": false}`) or by
    /// the circuit breaker: it receives nothing new; deliveries already
    /// queued wait until it is enabled again.
    pub active: bool,
    /// True when paused (`PATCH {"paused": true}`): events published
    /// meanwhile are queued for it but held, in order, and go out when it
    /// is resumed (`{"paused": false}`). The circuit breaker never pauses.
    pub paused: bool,
    /// `none` (deliveries go out as fast as `max_in_flight` allows; one
    /// waiting for a retry holds no other) or `fifo` (one attempt at a
    /// time, fleet-wide, in the order the events were published to it; a
    /// delivery waiting for a retry holds the ones behind it until it is
    /// delivered or fails for good).
    #[oai(validator(pattern = "^(none|fifo)$"))]
    pub ordering: String,
    /// A CEL expression over the event (`type`, `data`): only events for
    /// which it is true are delivered here. Absent: every event of its
    /// types.
    #[oai(skip_serializing_if_is_none)]
    pub filter: Option<String>,
    /// Its own retry schedule (the delays before each attempt, the first
    /// before the first attempt); absent: the server's
    /// (`HOOKFLEET_RETRY_SCHEDULE`).
    #[oai(skip_serializing_if_is_none)]
    pub retry_schedule: Option<Vec<String>>,
    /// For a `fifo` endpoint read on its own (`GET /webhooks/{id}`): the
    /// delivery at the head of its line, which the others wait behind.
    /// Absent when nothing waits, in lists, and for `none`.
    #[oai(skip_serializing_if_is_none)]
    pub head_of_line: Option<HeadOfLine>,
    /// The signing secret (`whsec_…`). Returned only when the endpoint is
    /// created; store it then.
    #[oai(skip_serializing_if_is_none)]
    pub secret: Option<String>,
    /// When it was created (RFC 3339).
    pub created_at: String,
    /// When it last changed (RFC 3339).
    pub updated_at: String,
}

impl Webhook {
    pub(super) fn from_record(record: EndpointRecord, secret: Option<String>) -> Self {
        Self {
            id: record.id,
            url: record.url,
            events: record.events,
            description: record.description,
            headers: record.headers.into_iter().collect(),
            rate_limit: record.rate_limit,
            timeout_s: record.timeout_ms.map(|ms| ms / 1000),
            max_in_flight: record.max_in_flight,
            status: if !record.active {
                "disabled"
            } else if record.paused {
                "paused"
            } else {
                "enabled"
            }
            .to_string(),
            active: record.active,
            paused: record.paused,
            ordering: record.ordering.as_str().to_string(),
            filter: record.filter,
            retry_schedule: record.retry_schedule.map(|delays| {
                delays
                    .into_iter()
                    .map(|ms| format_duration(Duration::from_millis(ms)))
                    .collect()
            }),
            head_of_line: None,
            secret,
            created_at: rfc3339_ms(record.created_at),
            updated_at: rfc3339_ms(record.updated_at),
        }
    }
}

/// The delivery at the head of a FIFO endpoint's line.
#[derive(Object, Debug)]
#[oai(example)]
pub struct HeadOfLine {
    /// The delivery (`dlv_…`).
    pub delivery_id: String,
    /// Its event (`evt_…`).
    pub event_id: String,
    /// `in_flight` (being attempted now), `scheduled` (waiting for its
    /// next attempt, at `next_attempt_at`; the deliveries behind it wait
    /// too) or `pending` (next to go).
    #[oai(validator(pattern = "^(in_flight|scheduled|pending)$"))]
    pub status: String,
    /// Attempts made so far.
    pub attempts: u32,
    /// When its event was published to this endpoint (RFC 3339).
    pub queued_at: String,
    /// How long it has been waiting since then, in milliseconds: a large
    /// value means the receiver is holding the line.
    pub age_ms: u64,
    /// When it is attempted next (RFC 3339), if scheduled.
    #[oai(skip_serializing_if_is_none)]
    pub next_attempt_at: Option<String>,
}

impl HeadOfLine {
    /// The API's view of [`reads::FifoHead`] for endpoint `endpoint_id`.
    pub(super) fn new(head: reads::FifoHead, endpoint_id: &str) -> Option<Self> {
        Some(Self {
            delivery_id: ids::delivery_id(&head.event_id, endpoint_id)?,
            event_id: head.event_id,
            status: head.status.as_str().to_string(),
            attempts: head.attempts,
            queued_at: rfc3339_ms(head.queued_ms),
            age_ms: now_ms().saturating_sub(head.queued_ms),
            next_attempt_at: head.next_ms.map(rfc3339_ms),
        })
    }
}

/// An endpoint to create.
#[derive(Object, Deserialize)]
#[oai(deny_unknown_fields, example)]
#[serde(deny_unknown_fields)]
pub struct CreateWebhook {
    /// Where to POST events: an absolute `http://` or `https://` URL, up to
    /// 2048 bytes, `scheme://[user:password@]host[:port][/path][?query]`
    /// without spaces, control characters or a `#fragment`. The host is a
    /// name of letters, digits, `-` and `_` labels (Unicode names in their
    /// `xn--` form), an IPv4 address or a bracketed IPv6 address; private,
    /// loopback and other restricted addresses are refused unless
    /// `HOOKFLEET_ALLOW_CIDRS` opens them.
    #[oai(validator(min_length = 1, max_length = 2048))]
    pub url: String,
    /// Event types to receive (1 to 100): exact names from
    /// `GET /api/v1/webhooks/events`, `prefix.*` for a family, or `*`.
    #[oai(validator(min_items = 1, max_items = 100, max_length = 130))]
    pub events: Vec<String>,
    /// A note for people, up to 1024 characters.
    #[oai(validator(max_length = 1024), nullable)]
    #[serde(default)]
    #[oai(skip_serializing_if_is_none)]
    pub description: Option<String>,
    /// Up to 20 extra request headers. Names must be valid HTTP header
    /// names; `webhook-*`, `content-type`, `user-agent`, `host` and other
    /// headers Hookfleet sets are refused. Values: printable ASCII (spaces
    /// allowed), up to 1024 characters.
    #[oai(
        validator(max_properties = 20, max_length = 1024, pattern = r"^[ -~]*$"),
        nullable
    )]
    #[serde(default)]
    #[oai(skip_serializing_if_is_none)]
    pub headers: Option<BTreeMap<String, String>>,
    /// Most deliveries per second to this endpoint (1 to 10000), enforced
    /// across all workers. Omit for no limit.
    #[oai(validator(minimum(value = "1"), maximum(value = "10000")), nullable)]
    #[serde(default)]
    pub rate_limit: Option<i64>,
    /// Timeout of one attempt in seconds, 1 up to the server's lease minus
    /// 5 s (55 by default); omit for the server default (30 s).
    #[oai(validator(minimum(value = "1"), maximum(value = "3600")), nullable)]
    #[serde(default)]
    pub timeout_s: Option<i64>,
    /// Most attempts in flight to this endpoint at once, across every
    /// worker (1 to 1000); omit for the server's default
    /// (`HOOKFLEET_MAX_IN_FLIGHT`, 32). A receiver that answers slowly or
    /// not at all holds at most this many of the fleet's attempt slots;
    /// the rest wait their turn, in order.
    #[oai(validator(minimum(value = "1"), maximum(value = "1000")), nullable)]
    #[serde(default)]
    pub max_in_flight: Option<i64>,
    /// Whether it receives events now (default true); false creates it
    /// disabled.
    #[oai(nullable)]
    #[serde(default)]
    #[oai(skip_serializing_if_is_none)]
    pub active: Option<bool>,
    /// Create it paused (default false): events are queued for it and held
    /// until it is resumed.
    #[oai(nullable)]
    #[serde(default)]
    #[oai(skip_serializing_if_is_none)]
    pub paused: Option<bool>,
    /// `none` (the default) or `fifo`: one attempt at a time, fleet-wide,
    /// in publish order; a delivery waiting for its retry holds the ones
    /// behind it until it is delivered or fails for good. See the README,
    /// "Delivery semantics", for what retries, replays and test sends do.
    #[oai(validator(pattern = "^(none|fifo)$"), nullable)]
    #[serde(default)]
    #[oai(skip_serializing_if_is_none)]
    pub ordering: Option<String>,
    /// Deliver only events for which this CEL expression is true, e.g.
    /// `data.amount >= 1000 && data.currency == "EUR"`. Variables: `type`
    /// (the event type) and `data` (its payload). Up to 2048 bytes; one
    /// that does not compile, names another variable or an unknown
    /// function is refused with its position. An event on which it fails
    /// (a missing field, a wrong type) is not delivered here.
    #[oai(validator(min_length = 1, max_length = 2048), nullable)]
    #[serde(default)]
    #[oai(skip_serializing_if_is_none)]
    pub filter: Option<String>,
    /// This endpoint's own retry schedule, replacing the server's: 1 to 20
    /// durations (`0s`, `250ms`, `30s`, `5m`, `2h`, `1d`), the first
    /// before the first attempt, each later one before the next retry.
    /// With its jitter (+10 %) the whole must end within the server's
    /// retention.
    #[oai(validator(min_items = 1, max_items = 20, max_length = 16), nullable)]
    #[serde(default)]
    #[oai(skip_serializing_if_is_none)]
    pub retry_schedule: Option<Vec<String>>,
    /// A signing secret of your own (`whsec_` + standard base64 of 24 to 64
    /// bytes); omit to have one generated.
    #[oai(
        validator(
            min_length = 38,
            max_length = 94,
            pattern = r"^whsec_[A-Za-z0-9+/]+={0,2}$"
        ),
        nullable
    )]
    #[serde(default)]
    #[oai(skip_serializing_if_is_none)]
    pub secret: Option<String>,
}

/// Changes to an endpoint; absent fields (and `null` ones, except
/// `rate_limit`, `timeout_s`, `max_in_flight`, `filter` and
/// `retry_schedule`, where `null` returns to the default) stay as they are.
#[derive(Object, Deserialize)]
#[oai(deny_unknown_fields, example)]
#[serde(deny_unknown_fields)]
pub struct UpdateWebhook {
    /// New URL (same rules as on create).
    #[oai(validator(min_length = 1, max_length = 2048), nullable)]
    #[serde(default)]
    #[oai(skip_serializing_if_is_none)]
    pub url: Option<String>,
    /// New list of event types (same rules as on create).
    #[oai(validator(min_items = 1, max_items = 100, max_length = 130), nullable)]
    #[serde(default)]
    #[oai(skip_serializing_if_is_none)]
    pub events: Option<Vec<String>>,
    /// New description, up to 1024 characters.
    #[oai(validator(max_length = 1024), nullable)]
    #[serde(default)]
    #[oai(skip_serializing_if_is_none)]
    pub description: Option<String>,
    /// New set of extra headers (replaces the old set; same rules as on
    /// create).
    #[oai(
        validator(max_properties = 20, max_length = 1024, pattern = r"^[ -~]*$"),
        nullable
    )]
    #[serde(default)]
    #[oai(skip_serializing_if_is_none)]
    pub headers: Option<BTreeMap<String, String>>,
    /// New rate limit (1 to 10000); `null` removes the limit.
    #[oai(validator(minimum(value = "1"), maximum(value = "10000")), nullable)]
    #[serde(default)]
    pub rate_limit: MaybeUndefined<i64>,
    /// New attempt timeout in seconds (same range as on create); `null`
    /// returns to the server default.
    #[oai(validator(minimum(value = "1"), maximum(value = "3600")), nullable)]
    #[serde(default)]
    pub timeout_s: MaybeUndefined<i64>,
    /// New cap of attempts in flight (1 to 1000); `null` returns to the
    /// server default.
    #[oai(validator(minimum(value = "1"), maximum(value = "1000")), nullable)]
    #[serde(default)]
    pub max_in_flight: MaybeUndefined<i64>,
    /// Enable or disable. A disabled endpoint gets no deliveries for events
    /// published meanwhile; re-enabling releases the deliveries held and
    /// resets the circuit breaker.
    #[oai(nullable)]
    #[serde(default)]
    #[oai(skip_serializing_if_is_none)]
    pub active: Option<bool>,
    /// Pause or resume. A paused endpoint keeps receiving deliveries but
    /// holds them, in order; resuming sends them. Pausing keeps every
    /// event, disabling does not.
    #[oai(nullable)]
    #[serde(default)]
    #[oai(skip_serializing_if_is_none)]
    pub paused: Option<bool>,
    /// `none` or `fifo` (see create). Switching with deliveries waiting is
    /// safe: to `fifo`, the attempts in flight finish and then one goes
    /// at a time, those waiting for a retry first; to `none`, everything
    /// waiting goes out as the concurrency cap allows.
    #[oai(validator(pattern = "^(none|fifo)$"), nullable)]
    #[serde(default)]
    #[oai(skip_serializing_if_is_none)]
    pub ordering: Option<String>,
    /// New filter (same rules as on create); `null` removes it. Applies to
    /// events published after the change.
    #[oai(validator(min_length = 1, max_length = 2048), nullable)]
    #[serde(default)]
    pub filter: MaybeUndefined<String>,
    /// New retry schedule (same rules as on create); `null` returns to
    /// the server's. A delivery waiting for a retry keeps the time it was
    /// given; its later attempts follow the new schedule.
    #[oai(validator(min_items = 1, max_items = 20, max_length = 16), nullable)]
    #[serde(default)]
    pub retry_schedule: MaybeUndefined<Vec<String>>,
}

/// A page of webhooks, oldest first.
#[derive(Object)]
#[oai(example)]
pub struct WebhookPage {
    /// The webhooks of this page.
    pub data: Vec<Webhook>,
    /// Pass as `cursor` to get the next page; absent at the end.
    #[oai(skip_serializing_if_is_none)]
    pub next: Option<String>,
}
