//! Types the API and the worker both read or write in Redis. An
//! endpoint's hash and its changes are in `endpoint.rs`.

mod endpoint;

pub use endpoint::*;

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

#[cfg(test)]
mod tests {
    use super::*;

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
    fn statuses_round_trip() {
        for status in DeliveryStatus::ALL {
            assert_eq!(DeliveryStatus::parse(status.as_str()), Some(status));
        }
        assert_eq!(DeliveryStatus::parse("lost"), None);
    }
}
