//! Types the API and the worker both read or write in Redis.

use std::collections::HashMap;

/// A delivery's state. `in_flight` means a worker holds its lease now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeliveryStatus {
    Pending,
    InFlight,
    Scheduled,
    /// Waiting while its endpoint is paused or disabled: it goes out when
    /// the endpoint is resumed or enabled.
    Held,
    Delivered,
    Failed,
    Cancelled,
}

impl DeliveryStatus {
    pub const ALL: [DeliveryStatus; 7] = [
        DeliveryStatus::Pending,
        DeliveryStatus::InFlight,
        DeliveryStatus::Scheduled,
        DeliveryStatus::Held,
        DeliveryStatus::Delivered,
        DeliveryStatus::Failed,
        DeliveryStatus::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::InFlight => "in_flight",
            DeliveryStatus::Scheduled => "scheduled",
            DeliveryStatus::Held => "held",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Failed => "failed",
            DeliveryStatus::Cancelled => "cancelled",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// Terminal states never change again (short of a manual retry).
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            DeliveryStatus::Delivered | DeliveryStatus::Failed | DeliveryStatus::Cancelled
        )
    }
}

/// Names of the fields of one attempt in an endpoint's attempt stream.
pub mod attempt_field {
    pub const DELIVERY: &str = "delivery";
    pub const EVENT: &str = "event";
    pub const ATTEMPT: &str = "attempt";
    pub const AT: &str = "at";
    pub const STATUS_CODE: &str = "code";
    pub const DURATION_MS: &str = "duration_ms";
    pub const ERROR: &str = "error";
    pub const OUTCOME: &str = "outcome";
    pub const RESPONSE_HEADERS: &str = "response_headers";
    pub const RESPONSE_BODY: &str = "response_body";
    pub const NEXT_ATTEMPT_AT: &str = "next";
    pub const WEBHOOK_TIMESTAMP: &str = "webhook_timestamp";
    pub const REQUEST_HEADERS: &str = "request_headers";
    pub const TEST: &str = "test";

    /// The one field of an entry written since the attempt log became
    /// compact: the values of the fields above as one JSON array, in
    /// [`PACKED_ORDER`] ([`super::AttemptEntry`]). A different order would
    /// need a new field name.
    pub const PACKED: &str = "entry";

    /// The order of the values in a [`PACKED`] entry.
    pub const PACKED_ORDER: [&str; 14] = [
        DELIVERY,
        EVENT,
        ATTEMPT,
        AT,
        STATUS_CODE,
        DURATION_MS,
        ERROR,
        OUTCOME,
        RESPONSE_HEADERS,
        RESPONSE_BODY,
        NEXT_ATTEMPT_AT,
        WEBHOOK_TIMESTAMP,
        REQUEST_HEADERS,
        TEST,
    ];
}

/// One attempt as the worker logs it: a single stream field
/// ([`attempt_field::PACKED`]) holding its values as one JSON array, instead
/// of one stream field per value. Passing and appending one value instead of
/// fourteen is most of what `record.lua` saves per attempt; an array, not
/// an object, because a stream stores the field names of similar entries
/// once, and the array costs about what the fourteen values' own framing
/// did. Headers are JSON arrays of `[name, value]` pairs.
#[derive(Debug)]
pub struct AttemptEntry<'a> {
    pub delivery: &'a str,
    pub event: &'a str,
    pub attempt: u32,
    pub at: u64,
    /// The HTTP status, empty when there was no response.
    pub code: &'a str,
    pub duration_ms: u64,
    pub error: &'a str,
    pub outcome: &'a str,
    pub response_headers: &'a [(String, String)],
    pub response_body: &'a str,
    /// When the next attempt is due (epoch ms), empty when none is.
    pub next: &'a str,
    pub webhook_timestamp: u64,
    pub request_headers: &'a [(String, String)],
    /// "1" for a test send, "0" otherwise.
    pub test: &'a str,
}

impl AttemptEntry<'_> {
    /// The stream field's value: the values in [`attempt_field::PACKED_ORDER`].
    pub fn packed(&self) -> String {
        let values = (
            self.delivery,
            self.event,
            self.attempt,
            self.at,
            self.code,
            self.duration_ms,
            self.error,
            self.outcome,
            self.response_headers,
            self.response_body,
            self.next,
            self.webhook_timestamp,
            self.request_headers,
            self.test,
        );
        // Strings, numbers and string pairs always serialize; an empty
        // entry would still record the attempt's outcome and counters.
        serde_json::to_string(&values).unwrap_or_default()
    }
}

/// The fields of one attempt-log entry by name, whichever way it was
/// written: one [`attempt_field::PACKED`] JSON array (non-string values
/// become their JSON text), or one stream field per value (entries written
/// by earlier versions).
pub fn attempt_fields(mut stored: HashMap<String, String>) -> HashMap<String, String> {
    let Some(packed) = stored.remove(attempt_field::PACKED) else {
        return stored;
    };
    let values: Vec<serde_json::Value> = serde_json::from_str(&packed).unwrap_or_default();
    attempt_field::PACKED_ORDER
        .iter()
        .zip(values)
        .map(|(name, value)| {
            let text = match value {
                serde_json::Value::String(text) => text,
                other => other.to_string(),
            };
            (name.to_string(), text)
        })
        .collect()
}

/// The most response body kept per attempt.
pub const RESPONSE_EXCERPT_MAX: usize = 4096;

/// Every field of an endpoint's hash: those [`EndpointRecord::to_fields`]
/// writes, the signing secrets, and those the scripts keep (`qhead`, the
/// concurrency state, why the breaker disabled it). A test checks that the
/// scripts read and write no other field of an endpoint's hash.
pub const ENDPOINT_FIELDS: &[&str] = &[
    "id",
    "tenant",
    "url",
    "events",
    "description",
    "headers",
    "rate_limit",
    "timeout_ms",
    "max_in_flight",
    "active",
    "paused",
    "created",
    "updated",
    "secret",
    "old_secret",
    "old_secret_until",
    "disabled_reason",
    "qhead",
    "busy",
    "busy_at",
    "window",
    "parked",
];

/// An endpoint as stored in its hash (`hf:{pN}:endpoint:<id>`).
#[derive(Clone, Debug, PartialEq)]
pub struct EndpointRecord {
    pub id: String,
    pub tenant_id: String,
    pub url: String,
    pub events: Vec<String>,
    pub description: String,
    pub headers: Vec<(String, String)>,
    pub rate_limit: Option<u32>,
    pub timeout_ms: Option<u64>,
    /// Most attempts in flight at once, fleet-wide; `None`: the server's
    /// `HOOKFLEET_MAX_IN_FLIGHT`. claim.lua reads it as `max_in_flight`.
    pub max_in_flight: Option<u32>,
    /// Receives new events (false: disabled, by a person or the circuit
    /// breaker; nothing new is queued for it).
    pub active: bool,
    /// Paused: new events are queued for it but held, in order, until it
    /// is resumed (claim.lua leaves it out).
    pub paused: bool,
    pub created_at: u64,
    pub updated_at: u64,
}

impl EndpointRecord {
    /// Reads an endpoint from its hash; `None` if the hash is empty or
    /// damaged (treated as not found rather than a server error).
    pub fn from_hash(map: &HashMap<String, String>) -> Option<Self> {
        let get = |name: &str| map.get(name).cloned().unwrap_or_default();
        let id = map.get("id")?.clone();
        let events: Vec<String> = serde_json::from_str(&get("events")).ok()?;
        let headers: Vec<(String, String)> = serde_json::from_str(&get("headers")).ok()?;
        Some(Self {
            id,
            tenant_id: get("tenant"),
            url: get("url"),
            events,
            description: get("description"),
            headers,
            rate_limit: get("rate_limit").parse().ok(),
            timeout_ms: get("timeout_ms").parse().ok(),
            max_in_flight: get("max_in_flight").parse().ok(),
            active: get("active") == "1",
            paused: get("paused") == "1",
            created_at: get("created").parse().unwrap_or(0),
            updated_at: get("updated").parse().unwrap_or(0),
        })
    }

    /// The field/value pairs written to the endpoint's hash (not the secret,
    /// which is written only at creation and rotation).
    pub fn to_fields(&self) -> Vec<(&'static str, String)> {
        vec![
            ("id", self.id.clone()),
            ("tenant", self.tenant_id.clone()),
            ("url", self.url.clone()),
            ("events", encode_list(&self.events)),
            ("description", self.description.clone()),
            ("headers", encode_list(&self.headers)),
            ("rate_limit", encode_option(self.rate_limit)),
            ("timeout_ms", encode_option(self.timeout_ms)),
            ("max_in_flight", encode_option(self.max_in_flight)),
            ("active", encode_flag(self.active)),
            ("paused", encode_flag(self.paused)),
            ("created", self.created_at.to_string()),
            ("updated", self.updated_at.to_string()),
        ]
    }

    /// What the tenant's endpoint index stores for publish to match on:
    /// `<active 0|1> <pattern> <pattern> ...`.
    pub fn subscription_summary(&self) -> String {
        let mut summary = String::from(if self.active { "1" } else { "0" });
        for pattern in &self.events {
            summary.push(' ');
            summary.push_str(pattern);
        }
        summary
    }
}

/// A change to some of an endpoint's fields (a PATCH): `None` leaves a
/// field as it is; for the optional settings `Some(None)` clears it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EndpointChanges {
    pub url: Option<String>,
    pub events: Option<Vec<String>>,
    pub description: Option<String>,
    pub headers: Option<Vec<(String, String)>>,
    pub rate_limit: Option<Option<u32>>,
    pub timeout_ms: Option<Option<u64>>,
    pub max_in_flight: Option<Option<u32>>,
    pub active: Option<bool>,
    pub paused: Option<bool>,
}

impl EndpointChanges {
    /// The field/value pairs to write, encoded as [`EndpointRecord::to_fields`]
    /// encodes them, only for the fields that change (so a concurrent change
    /// of another field, such as the circuit breaker disabling the
    /// endpoint, is not overwritten), and `updated` = `now_ms`.
    pub fn to_fields(&self, now_ms: u64) -> Vec<(&'static str, String)> {
        let mut fields = Vec::new();
        let mut set = |name, value: Option<String>| {
            if let Some(value) = value {
                fields.push((name, value));
            }
        };
        set("url", self.url.clone());
        set("events", self.events.as_ref().map(|e| encode_list(e)));
        set("description", self.description.clone());
        set("headers", self.headers.as_ref().map(|h| encode_list(h)));
        set("rate_limit", self.rate_limit.map(encode_option));
        set("timeout_ms", self.timeout_ms.map(encode_option));
        set("max_in_flight", self.max_in_flight.map(encode_option));
        set("active", self.active.map(encode_flag));
        set("paused", self.paused.map(encode_flag));
        fields.push(("updated", now_ms.to_string()));
        fields
    }
}

fn encode_list<T: serde::Serialize>(list: &[T]) -> String {
    serde_json::to_string(list).unwrap_or_else(|_| "[]".into())
}

fn encode_option<T: ToString>(value: Option<T>) -> String {
    value.map(|v| v.to_string()).unwrap_or_default()
}

fn encode_flag(on: bool) -> String {
    if on { "1" } else { "0" }.to_string()
}

/// Parses an index entry written by [`EndpointRecord::subscription_summary`]:
/// whether the endpoint is active and whether it wants `event_type`.
pub fn summary_wants(summary: &str, event_type: &str) -> bool {
    let mut parts = summary.split(' ');
    if parts.next() != Some("1") {
        return false;
    }
    crate::catalog::any_matches(parts, event_type)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_endpoints_fields_are_the_listed_ones() {
        let record = EndpointRecord::from_hash(&HashMap::from([
            ("id".to_string(), "ep_x".to_string()),
            ("events".to_string(), "[]".to_string()),
            ("headers".to_string(), "[]".to_string()),
        ]))
        .unwrap();
        let all_changes = EndpointChanges {
            url: Some(String::new()),
            events: Some(Vec::new()),
            description: Some(String::new()),
            headers: Some(Vec::new()),
            rate_limit: Some(None),
            timeout_ms: Some(None),
            max_in_flight: Some(None),
            active: Some(true),
            paused: Some(false),
        };
        for (name, _) in record
            .to_fields()
            .into_iter()
            .chain(all_changes.to_fields(0))
        {
            assert!(
                ENDPOINT_FIELDS.contains(&name),
                "{name} is not in ENDPOINT_FIELDS"
            );
        }
    }

    /// A change writes only the fields it names (plus `updated`), encoded
    /// as a whole record encodes them.
    #[test]
    fn endpoint_changes_write_only_what_they_name_as_the_record_encodes_it() {
        let changes = EndpointChanges {
            events: Some(vec!["a.*".into()]),
            rate_limit: Some(None),
            timeout_ms: Some(Some(5_000)),
            paused: Some(true),
            ..EndpointChanges::default()
        };
        let fields = changes.to_fields(42);
        let names: Vec<&str> = fields.iter().map(|(n, _)| *n).collect();
        assert_eq!(
            names,
            ["events", "rate_limit", "timeout_ms", "paused", "updated"]
        );
        let record = EndpointRecord {
            id: "ep_x".into(),
            tenant_id: "ten_x".into(),
            url: "https://example.com".into(),
            events: vec!["a.*".into()],
            description: String::new(),
            headers: Vec::new(),
            rate_limit: None,
            timeout_ms: Some(5_000),
            max_in_flight: None,
            active: true,
            paused: true,
            created_at: 1,
            updated_at: 42,
        };
        let whole = record.to_fields();
        for (name, value) in &fields {
            let stored = whole.iter().find(|(n, _)| n == name).map(|(_, v)| v);
            assert_eq!(stored, Some(value), "{name}");
        }
    }

    #[test]
    fn a_packed_attempt_reads_like_one_written_field_by_field() {
        let request = vec![("webhook-id".to_string(), "msg_1".to_string())];
        let response = vec![("content-type".to_string(), "text/plain".to_string())];
        let entry = AttemptEntry {
            delivery: "dlv_1",
            event: "evt_1",
            attempt: 2,
            at: 1_700_000_000_123,
            code: "503",
            duration_ms: 41,
            error: "",
            outcome: "retry",
            response_headers: &response,
            response_body: "busy \"now\"\n",
            next: "1700000060123",
            webhook_timestamp: 1_700_000_000,
            request_headers: &request,
            test: "0",
        };
        let fields = attempt_fields(HashMap::from([(
            attempt_field::PACKED.to_string(),
            entry.packed(),
        )]));
        let expected = [
            (attempt_field::DELIVERY, "dlv_1"),
            (attempt_field::EVENT, "evt_1"),
            (attempt_field::ATTEMPT, "2"),
            (attempt_field::AT, "1700000000123"),
            (attempt_field::STATUS_CODE, "503"),
            (attempt_field::DURATION_MS, "41"),
            (attempt_field::ERROR, ""),
            (attempt_field::OUTCOME, "retry"),
            (
                attempt_field::RESPONSE_HEADERS,
                r#"[["content-type","text/plain"]]"#,
            ),
            (attempt_field::RESPONSE_BODY, "busy \"now\"\n"),
            (attempt_field::NEXT_ATTEMPT_AT, "1700000060123"),
            (attempt_field::WEBHOOK_TIMESTAMP, "1700000000"),
            (
                attempt_field::REQUEST_HEADERS,
                r#"[["webhook-id","msg_1"]]"#,
            ),
            (attempt_field::TEST, "0"),
        ];
        assert_eq!(fields.len(), expected.len(), "{fields:?}");
        for (name, value) in expected {
            assert_eq!(fields.get(name).map(String::as_str), Some(value), "{name}");
        }
        // An entry of the earlier layout is read as it is.
        let old = HashMap::from([(attempt_field::OUTCOME.to_string(), "failed".to_string())]);
        assert_eq!(attempt_fields(old.clone()), old);
    }

    #[test]
    fn endpoint_round_trips_through_its_hash() {
        let record = EndpointRecord {
            id: "ep_1".into(),
            tenant_id: "ten_1".into(),
            url: "https://example.com/hook".into(),
            events: vec!["video.*".into(), "user.created".into()],
            description: "d".into(),
            headers: vec![("x-team".into(), "a".into())],
            rate_limit: Some(5),
            timeout_ms: None,
            max_in_flight: Some(4),
            active: true,
            paused: false,
            created_at: 1,
            updated_at: 2,
        };
        let map: HashMap<String, String> = record
            .to_fields()
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        assert_eq!(EndpointRecord::from_hash(&map), Some(record.clone()));
        let summary = record.subscription_summary();
        assert!(summary_wants(&summary, "video.processed"));
        assert!(summary_wants(&summary, "user.created"));
        assert!(!summary_wants(&summary, "job.failed"));
        let inactive = EndpointRecord {
            active: false,
            ..record
        };
        assert!(!summary_wants(
            &inactive.subscription_summary(),
            "video.processed"
        ));
    }

    #[test]
    fn statuses_round_trip() {
        for status in DeliveryStatus::ALL {
            assert_eq!(DeliveryStatus::parse(status.as_str()), Some(status));
        }
        assert_eq!(DeliveryStatus::parse("lost"), None);
    }
}
