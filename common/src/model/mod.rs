//! Types the API and the worker both read or write in Redis. An
//! endpoint's hash and its changes are in `endpoint.rs`.

mod endpoint;

pub use endpoint::*;

use std::collections::HashMap;

use crate::signing::SigningSecret;

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
    /// In a [`COMPACT`] entry, in place of the request headers: the
    /// fingerprints of the secrets that signed it (see
    /// [`super::request_headers`]).
    pub const SIGNED_BY: &str = "signed_by";

    /// The one field of an entry written since attempts became compact:
    /// the values in [`COMPACT_ORDER`] as one JSON array. The delivery id
    /// is not stored (it is the event's and the endpoint's, whose stream
    /// this is), nor the event id's prefix, nor the request headers (the
    /// same for every attempt of an endpoint but for the signature, which
    /// is recomputed from the secret that made it). A different order
    /// would need a new field name.
    pub const COMPACT: &str = "a";

    /// The order of the values in a [`COMPACT`] entry: the event id's
    /// body first.
    pub const COMPACT_ORDER: [&str; 13] = [
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
        SIGNED_BY,
        TEST,
    ];

    /// The one field of an entry of the previous layout: the values of the
    /// fields above as one JSON array, in [`PACKED_ORDER`], request
    /// headers included. Still read.
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

/// One attempt as the worker logs it: what the attempt-log entry holds.
/// Written as one [`attempt_field::COMPACT`] JSON array (an array, not an
/// object: a stream stores the field names of similar entries once, and
/// the array costs about what the values' own framing would).
#[derive(Debug)]
pub struct AttemptEntry<'a> {
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
    /// The fingerprints of the secrets whose signatures it carried
    /// ([`crate::signing::SigningSecret::fingerprint`]), space-separated.
    pub signed_by: &'a str,
    /// A test send.
    pub test: bool,
}

impl AttemptEntry<'_> {
    /// The stream field's value: the values in
    /// [`attempt_field::COMPACT_ORDER`].
    pub fn packed(&self) -> String {
        let event_body = self.event.strip_prefix("evt_").unwrap_or(self.event);
        let values = (
            event_body,
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
            self.signed_by,
            u8::from(self.test),
        );
        // Strings, numbers and string pairs always serialize; an empty
        // entry would still record the attempt's outcome and counters.
        serde_json::to_string(&values).unwrap_or_default()
    }
}

/// The fields of one attempt-log entry of `endpoint_id`'s stream by name,
/// whichever way it was written: one [`attempt_field::COMPACT`] array (the
/// delivery and event ids rebuilt; [`attempt_field::SIGNED_BY`] in place of
/// the request headers, which [`request_headers`] rebuilds), one
/// [`attempt_field::PACKED`] array of the previous layout, or one stream
/// field per value (earlier still). Non-string values become their JSON
/// text.
pub fn attempt_fields(
    endpoint_id: &str,
    mut stored: HashMap<String, String>,
) -> HashMap<String, String> {
    let (order, text): (&[&str], String) = if let Some(text) = stored.remove(attempt_field::COMPACT)
    {
        (&attempt_field::COMPACT_ORDER, text)
    } else if let Some(text) = stored.remove(attempt_field::PACKED) {
        (&attempt_field::PACKED_ORDER, text)
    } else {
        return stored;
    };
    let compact = order.len() == attempt_field::COMPACT_ORDER.len();
    let values: Vec<serde_json::Value> = serde_json::from_str(&text).unwrap_or_default();
    let mut fields: HashMap<String, String> = order
        .iter()
        .zip(values)
        .map(|(name, value)| {
            let text = match value {
                serde_json::Value::String(text) => text,
                other => other.to_string(),
            };
            (name.to_string(), text)
        })
        .collect();
    if compact {
        let event_body = fields.remove(attempt_field::EVENT).unwrap_or_default();
        let endpoint_body = endpoint_id.strip_prefix("ep_").unwrap_or(endpoint_id);
        fields.insert(
            attempt_field::DELIVERY.into(),
            format!("dlv_{event_body}{endpoint_body}"),
        );
        fields.insert(attempt_field::EVENT.into(), format!("evt_{event_body}"));
    }
    fields
}

/// What an endpoint signs and sends with now: its secrets and custom
/// headers, to rebuild the request headers of a compact attempt entry.
#[derive(Debug, Default)]
pub struct SentWith<'a> {
    pub secret: Option<&'a str>,
    pub old_secret: Option<&'a str>,
    /// The endpoint's custom headers (its hash's `headers`: a JSON list
    /// of pairs).
    pub headers: Option<&'a str>,
}

/// The `user-agent` deliveries are sent with.
pub const USER_AGENT: &str = concat!("Hookfleet/", env!("CARGO_PKG_VERSION"));

/// Placeholder for a signature whose secret is no longer known.
pub const ROTATED_OUT: &str = "(made with a secret since rotated out)";

/// The request headers of an attempt read by [`attempt_fields`]: as
/// stored (an entry of an earlier layout), or rebuilt from a compact
/// entry: the endpoint's custom headers as they are now, the protocol
/// headers, and the signature recomputed from `body` with each secret
/// whose fingerprint the entry lists (a secret since rotated out, or an
/// event gone with retention, shows [`ROTATED_OUT`] or nothing).
pub fn request_headers(
    fields: &HashMap<String, String>,
    endpoint: &SentWith<'_>,
    body: Option<&str>,
    user_agent: &str,
) -> Vec<(String, String)> {
    if let Some(stored) = fields.get(attempt_field::REQUEST_HEADERS) {
        return serde_json::from_str(stored).unwrap_or_default();
    }
    // An attempt refused before sending (a restricted address, a URL that
    // does not parse, an unusable secret) was never signed nor sent.
    let Some(signed_by) = fields
        .get(attempt_field::SIGNED_BY)
        .filter(|s| !s.is_empty())
    else {
        return Vec::new();
    };
    let get = |name: &str| fields.get(name).cloned().unwrap_or_default();
    // Stored as the endpoint's hash keeps them: a JSON list of pairs.
    let mut headers: Vec<(String, String)> = endpoint
        .headers
        .and_then(|h| serde_json::from_str::<Vec<(String, String)>>(h).ok())
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v))
        .collect();
    headers.push(("content-type".into(), "application/json".into()));
    headers.push(("user-agent".into(), user_agent.into()));
    let event_id = get(attempt_field::EVENT);
    let timestamp = get(attempt_field::WEBHOOK_TIMESTAMP);
    let secrets: Vec<SigningSecret> = [endpoint.secret, endpoint.old_secret]
        .into_iter()
        .flatten()
        .filter_map(|s| SigningSecret::parse(s).ok())
        .collect();
    let signatures: Vec<String> = signed_by
        .split_whitespace()
        .map(|fingerprint| {
            let secret = secrets.iter().find(|s| s.fingerprint() == fingerprint);
            match (secret, body, timestamp.parse::<u64>()) {
                (Some(secret), Some(body), Ok(ts)) => secret.sign(&event_id, ts, body.as_bytes()),
                _ => ROTATED_OUT.to_string(),
            }
        })
        .collect();
    headers.push(("webhook-id".into(), event_id));
    headers.push(("webhook-timestamp".into(), timestamp));
    if !signatures.is_empty() {
        headers.push(("webhook-signature".into(), signatures.join(" ")));
    }
    // Custom headers come first when sent, so the protocol headers win.
    let mut seen = std::collections::HashSet::new();
    let mut out: Vec<(String, String)> = headers
        .into_iter()
        .rev()
        .filter(|(k, _)| seen.insert(k.clone()))
        .collect();
    out.reverse();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const EVENT: &str = "evt_01m9648k638566yktgb8q400";
    const ENDPOINT: &str = "ep_01m9648k5crcgrh1kg597c02";
    const DELIVERY: &str = "dlv_01m9648k638566yktgb8q40001m9648k5crcgrh1kg597c02";

    #[test]
    fn a_compact_attempt_reads_back_with_its_ids() {
        let response = vec![("content-type".to_string(), "text/plain".to_string())];
        let entry = AttemptEntry {
            event: EVENT,
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
            signed_by: "0a1b2c3d",
            test: false,
        };
        let packed = entry.packed();
        assert!(
            !packed.contains("evt_") && !packed.contains("dlv_"),
            "{packed}"
        );
        let fields = attempt_fields(
            ENDPOINT,
            HashMap::from([(attempt_field::COMPACT.to_string(), packed)]),
        );
        let expected = [
            (attempt_field::DELIVERY, DELIVERY),
            (attempt_field::EVENT, EVENT),
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
            (attempt_field::SIGNED_BY, "0a1b2c3d"),
            (attempt_field::TEST, "0"),
        ];
        assert_eq!(fields.len(), expected.len(), "{fields:?}");
        for (name, value) in expected {
            assert_eq!(fields.get(name).map(String::as_str), Some(value), "{name}");
        }
    }

    #[test]
    fn entries_of_earlier_layouts_read_as_they_were_written() {
        // The previous layout: one JSON array of fourteen values, request
        // headers included.
        let previous = format!(
            r#"["{DELIVERY}","{EVENT}",1,1700000000123,"200",12,"","delivered",[],"ok","",1700000000,[["webhook-id","{EVENT}"],["x-team","blue"]],"0"]"#
        );
        let fields = attempt_fields(
            ENDPOINT,
            HashMap::from([(attempt_field::PACKED.to_string(), previous)]),
        );
        assert_eq!(fields[attempt_field::DELIVERY], DELIVERY);
        assert_eq!(fields[attempt_field::OUTCOME], "delivered");
        let headers = request_headers(&fields, &SentWith::default(), None, USER_AGENT);
        assert_eq!(
            headers,
            vec![
                ("webhook-id".to_string(), EVENT.to_string()),
                ("x-team".to_string(), "blue".to_string())
            ]
        );
        // Earlier still: one stream field per value.
        let old = HashMap::from([(attempt_field::OUTCOME.to_string(), "failed".to_string())]);
        assert_eq!(attempt_fields(ENDPOINT, old.clone()), old);
    }

    #[test]
    fn a_compact_attempts_headers_are_rebuilt_with_a_signature_that_verifies() {
        let current = SigningSecret::generate();
        let previous = SigningSecret::generate();
        let (current_text, previous_text) = (current.expose(), previous.expose());
        let body = r#"{"type":"user.created","data":{"n":1}}"#;
        let signed_by = format!("{} {}", current.fingerprint(), previous.fingerprint());
        let entry = AttemptEntry {
            event: EVENT,
            attempt: 1,
            at: 1_700_000_000_123,
            code: "200",
            duration_ms: 3,
            error: "",
            outcome: "delivered",
            response_headers: &[],
            response_body: "",
            next: "",
            webhook_timestamp: 1_700_000_000,
            signed_by: &signed_by,
            test: false,
        };
        let fields = attempt_fields(
            ENDPOINT,
            HashMap::from([(attempt_field::COMPACT.to_string(), entry.packed())]),
        );
        let endpoint = SentWith {
            secret: Some(&current_text),
            old_secret: Some(&previous_text),
            headers: Some(r#"[["X-Team","blue"],["webhook-id","spoofed"]]"#),
        };
        let headers: HashMap<String, String> =
            request_headers(&fields, &endpoint, Some(body), USER_AGENT)
                .into_iter()
                .collect();
        assert_eq!(headers["webhook-id"], EVENT, "protocol headers win");
        assert_eq!(headers["x-team"], "blue");
        assert_eq!(headers["user-agent"], USER_AGENT);
        assert_eq!(headers["webhook-timestamp"], "1700000000");
        let signature = &headers["webhook-signature"];
        for secret in [&current, &previous] {
            assert!(
                crate::signing::verify(secret, EVENT, 1_700_000_000, body.as_bytes(), signature),
                "{signature}"
            );
        }
        // Once a secret is rotated out, its signature cannot be shown.
        let rotated = SentWith {
            secret: Some(&current_text),
            ..SentWith::default()
        };
        let headers: HashMap<String, String> =
            request_headers(&fields, &rotated, Some(body), USER_AGENT)
                .into_iter()
                .collect();
        let signature = &headers["webhook-signature"];
        assert!(crate::signing::verify(
            &current,
            EVENT,
            1_700_000_000,
            body.as_bytes(),
            signature
        ));
        assert!(signature.ends_with(ROTATED_OUT), "{signature}");
    }

    #[test]
    fn statuses_round_trip() {
        for status in DeliveryStatus::ALL {
            assert_eq!(DeliveryStatus::parse(status.as_str()), Some(status));
        }
        assert_eq!(DeliveryStatus::parse("lost"), None);
    }
}
