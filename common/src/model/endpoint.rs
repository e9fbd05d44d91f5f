//! An endpoint as stored in its hash (`hf:{pN}:endpoint:<id>`), a change
//! to it (a PATCH), every field its hash may hold, and the tenant index
//! entry publish matches on.

use std::collections::HashMap;

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
    "ordering",
    "filter",
    "retry_schedule",
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
    "fifo_at",
];

/// The order an endpoint's deliveries are attempted in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum EndpointOrdering {
    /// As many at once as its concurrency cap allows; a delivery waiting
    /// for a retry does not hold the others.
    #[default]
    None,
    /// One attempt in flight at a time, fleet-wide, in the endpoint's log
    /// order: a delivery waiting for a retry holds the ones behind it until
    /// it ends (claim.lua).
    Fifo,
}

impl EndpointOrdering {
    pub fn as_str(self) -> &'static str {
        match self {
            EndpointOrdering::None => "none",
            EndpointOrdering::Fifo => "fifo",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "none" => Some(EndpointOrdering::None),
            "fifo" => Some(EndpointOrdering::Fifo),
            _ => None,
        }
    }

    /// As stored in the hash: `fifo`, or empty (claim.lua tests for `fifo`).
    fn encode(self) -> String {
        match self {
            EndpointOrdering::None => String::new(),
            EndpointOrdering::Fifo => "fifo".into(),
        }
    }
}

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
    pub ordering: EndpointOrdering,
    /// A CEL expression an event must satisfy to be delivered here
    /// (`filter.rs`); `None` delivers every event of its types.
    pub filter: Option<String>,
    /// Delays before each attempt in ms (the first before the first
    /// attempt); `None` follows the server's `HOOKFLEET_RETRY_SCHEDULE`.
    /// Stored comma-separated; claim.lua reads its first entry.
    pub retry_schedule: Option<Vec<u64>>,
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
            ordering: EndpointOrdering::parse(&get("ordering")).unwrap_or_default(),
            filter: map.get("filter").filter(|f| !f.is_empty()).cloned(),
            retry_schedule: decode_schedule(&get("retry_schedule")),
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
            ("ordering", self.ordering.encode()),
            ("filter", self.filter.clone().unwrap_or_default()),
            (
                "retry_schedule",
                encode_schedule(self.retry_schedule.as_deref()),
            ),
            ("created", self.created_at.to_string()),
            ("updated", self.updated_at.to_string()),
        ]
    }

    /// What the tenant's endpoint index stores for publish to match on:
    /// `<active 0|1> <pattern> <pattern> ...`, then, when it has a filter,
    /// a newline and the filter's text (patterns hold no spaces or
    /// newlines; a filter may hold both).
    pub fn subscription_summary(&self) -> String {
        let mut summary = String::from(if self.active { "1" } else { "0" });
        for pattern in &self.events {
            summary.push(' ');
            summary.push_str(pattern);
        }
        if let Some(filter) = &self.filter {
            summary.push('\n');
            summary.push_str(filter);
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
    pub ordering: Option<EndpointOrdering>,
    pub filter: Option<Option<String>>,
    pub retry_schedule: Option<Option<Vec<u64>>>,
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
        set("ordering", self.ordering.map(EndpointOrdering::encode));
        set(
            "filter",
            self.filter.as_ref().map(|f| f.clone().unwrap_or_default()),
        );
        set(
            "retry_schedule",
            self.retry_schedule
                .as_ref()
                .map(|s| encode_schedule(s.as_deref())),
        );
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

/// A schedule as stored: delays in ms, comma-separated; empty for none.
fn encode_schedule(schedule: Option<&[u64]>) -> String {
    schedule
        .map(|delays| {
            delays
                .iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default()
}

fn decode_schedule(text: &str) -> Option<Vec<u64>> {
    if text.is_empty() {
        return None;
    }
    text.split(',').map(|part| part.parse().ok()).collect()
}

fn encode_flag(on: bool) -> String {
    if on { "1" } else { "0" }.to_string()
}

/// Parses an index entry written by [`EndpointRecord::subscription_summary`]:
/// whether the endpoint is active and whether it wants `event_type` (its
/// filter, if any, aside: see [`summary_filter`]).
pub fn summary_wants(summary: &str, event_type: &str) -> bool {
    let patterns = summary.split('\n').next().unwrap_or("");
    let mut parts = patterns.split(' ');
    if parts.next() != Some("1") {
        return false;
    }
    crate::catalog::any_matches(parts, event_type)
}

/// The filter of an index entry, if it has one.
pub fn summary_filter(summary: &str) -> Option<&str> {
    summary.split_once('\n').map(|(_, filter)| filter)
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
            ordering: Some(EndpointOrdering::Fifo),
            filter: Some(None),
            retry_schedule: Some(None),
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
            ordering: EndpointOrdering::None,
            filter: None,
            retry_schedule: None,
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
            ordering: EndpointOrdering::Fifo,
            filter: Some("data.amount > 1000 &&\n type == 'invoice.paid'".into()),
            retry_schedule: Some(vec![0, 1_000, 60_000]),
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
        assert_eq!(summary_filter(&summary), record.filter.as_deref());
        let unfiltered = EndpointRecord {
            filter: None,
            ..record.clone()
        };
        assert_eq!(summary_filter(&unfiltered.subscription_summary()), None);
        let inactive = EndpointRecord {
            active: false,
            ..record
        };
        assert!(!summary_wants(
            &inactive.subscription_summary(),
            "video.processed"
        ));
    }
}
