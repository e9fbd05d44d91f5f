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

    /// The one field of an entry written now: the values of
    /// [`COMPACT_ORDER`] as text (see [`super::AttemptEntry::encode`]),
    /// times as differences, the outcome as one letter, the response
    /// headers as lines. Still not stored: the delivery id (it is the
    /// event's and the endpoint's, whose stream this is), the event id's
    /// prefix, the request headers (the same for every attempt of an
    /// endpoint but for the signature, which is recomputed from the secret
    /// that made it).
    pub const TEXT: &str = "b";

    /// The one field of an entry of the previous layout: the values in
    /// [`COMPACT_ORDER`] as one JSON array. Still read.
    pub const COMPACT: &str = "a";

    /// The order of the values in a [`COMPACT`] or [`TEXT`] entry: the
    /// event id's body first.
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
/// Written as one [`attempt_field::TEXT`] field (one field: a stream stores
/// the field names of similar entries once).
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
    /// The [`attempt_field::TEXT`] field's value: the values of
    /// [`attempt_field::COMPACT_ORDER`], `|`-separated up to the three
    /// that may hold any text, whose lengths come first:
    ///
    /// ```text
    /// <event body>|<attempt>|<at>|<code>|<duration>|<outcome>|<next>|<timestamp>|<signed by>|<test>|<error length>|<headers length>[~]|<error><headers><response body>
    /// ```
    ///
    /// `at` counts ms from the event's creation (its id says when), `next`
    /// ms from `at`, the `webhook-timestamp` seconds from `at`'s; the
    /// outcome is `d`, `r` or `f` (delivered, retry, failed); the response
    /// headers are `name:value` lines, or `name@<seconds from at's>` for an
    /// HTTP date that reads back exactly (a `date` header: 6 bytes, not
    /// 29; see [`http_date_secs`]). A response body of at least
    /// `compress_above` bytes that LZ4 shrinks by an eighth is stored
    /// compressed (its length, 4 bytes little-endian, then the block),
    /// marked by `~` after the headers' length. About 50 bytes fewer than
    /// the JSON array of the previous layout before any body.
    pub fn encode(&self, compress_above: usize) -> Vec<u8> {
        use std::io::Write;
        let event_body = self.event.strip_prefix("evt_").unwrap_or(self.event);
        let created = crate::ids::created_ms(crate::ids::IdKind::Event, self.event).unwrap_or(0);
        let at_secs = (self.at / 1000) as i64;
        let headers_len: usize = self
            .response_headers
            .iter()
            .map(|(name, value)| {
                name.len()
                    + 2
                    + match http_date_secs(value) {
                        Some(secs) => decimal_len(secs - at_secs),
                        None => header_value(value).len(),
                    }
            })
            .sum();
        let body = self.response_body.as_bytes();
        let compress = body.len() >= compress_above;
        let body_room = if compress {
            crate::compression::room_for(body.len())
        } else {
            body.len()
        };
        let mut out = Vec::with_capacity(96 + self.error.len() + headers_len + body_room);
        // (Writing to a Vec cannot fail.)
        let _ = write!(
            out,
            "{event_body}|{}|{}|{}|{}|{}|",
            self.attempt,
            self.at as i64 - created as i64,
            self.code,
            self.duration_ms,
            outcome_letter(self.outcome),
        );
        if let Ok(next) = self.next.parse::<i64>() {
            let _ = write!(out, "{}", next - self.at as i64);
        }
        let _ = write!(
            out,
            "|{}|{}|{}|{}|{headers_len}",
            self.webhook_timestamp as i64 - (self.at / 1000) as i64,
            self.signed_by,
            u8::from(self.test),
            self.error.len(),
        );
        let marker_at = out.len();
        out.push(b'|');
        out.extend_from_slice(self.error.as_bytes());
        for (name, value) in self.response_headers {
            out.extend_from_slice(name.as_bytes());
            match http_date_secs(value) {
                Some(secs) => {
                    let _ = write!(out, "@{}", secs - at_secs);
                }
                None => {
                    out.push(b':');
                    out.extend_from_slice(header_value(value).as_bytes());
                }
            }
            out.push(b'\n');
        }
        if compress && crate::compression::append_if_smaller(&mut out, body) {
            out.insert(marker_at, b'~');
        } else {
            out.extend_from_slice(body);
        }
        out
    }
}

/// The second a response header's value names when it is an HTTP date in
/// its preferred form (`Sun, 06 Dec 2026 22:17:09 GMT`, as `date`,
/// `expires` and `last-modified` carry it) that reads back exactly: an
/// entry keeps such a value as seconds from its attempt's (`name@<delta>`),
/// 6 bytes instead of 29.
fn http_date_secs(value: &str) -> Option<i64> {
    if value.len() != 29 || !value.ends_with(" GMT") {
        return None;
    }
    let at = httpdate::parse_http_date(value).ok()?;
    let secs = at.duration_since(std::time::UNIX_EPOCH).ok()?.as_secs();
    (httpdate::fmt_http_date(at) == value).then(|| i64::try_from(secs).ok())?
}

/// The HTTP date of `secs` after the epoch (see [`http_date_secs`]).
fn http_date(secs: i64) -> Option<String> {
    // (httpdate formats years up to 9999 and panics past them.)
    let secs = u64::try_from(secs).ok().filter(|&s| s < 253_402_300_800)?;
    let at = std::time::UNIX_EPOCH.checked_add(std::time::Duration::from_secs(secs))?;
    Some(httpdate::fmt_http_date(at))
}

/// Characters of `n` in decimal.
fn decimal_len(n: i64) -> usize {
    let digits = n
        .unsigned_abs()
        .checked_ilog10()
        .map_or(1, |d| d as usize + 1);
    digits + usize::from(n < 0)
}

/// A response header's value as an entry keeps it: header names hold no
/// `:` and neither holds a line break; a value that did is cut there.
fn header_value(value: &str) -> &str {
    value.split(['\r', '\n']).next().unwrap_or_default()
}

/// The outcomes an attempt can have, with the letter a
/// [`attempt_field::TEXT`] entry stores for each.
const OUTCOMES: [(&str, &str); 3] = [("delivered", "d"), ("retry", "r"), ("failed", "f")];

fn outcome_letter(outcome: &str) -> &str {
    OUTCOMES
        .iter()
        .find(|(word, _)| *word == outcome)
        .map_or(outcome, |(_, letter)| letter)
}

/// The largest response body a compressed entry may claim to expand to
/// (`HOOKFLEET_RESPONSE_EXCERPT` is at most 64 KiB).
const MAX_EXCERPT: usize = 1 << 20;

/// The values of a [`attempt_field::TEXT`] entry by name (as
/// [`attempt_fields`] gives them); `None` when it is not one.
fn decode_text(stored: &[u8]) -> Option<HashMap<String, String>> {
    use attempt_field as f;
    let mut fields: Vec<&str> = Vec::with_capacity(12);
    let mut at = 0;
    for _ in 0..12 {
        let bar = at + memchr::memchr(b'|', stored.get(at..)?)?;
        fields.push(std::str::from_utf8(&stored[at..bar]).ok()?);
        at = bar + 1;
    }
    let rest = &stored[at..];
    let [event_body, attempt, at_delta, code, duration, outcome, next_delta, timestamp_delta, signed_by, test, error_len, headers_len] =
        fields[..]
    else {
        return None;
    };
    let (headers_len, compressed) = match headers_len.strip_suffix('~') {
        Some(len) => (len, true),
        None => (headers_len, false),
    };
    let (error_len, headers_len): (usize, usize) =
        (error_len.parse().ok()?, headers_len.parse().ok()?);
    let headers_end = error_len.checked_add(headers_len)?;
    let error = std::str::from_utf8(rest.get(..error_len)?).ok()?;
    let headers = std::str::from_utf8(rest.get(error_len..headers_end)?).ok()?;
    let body = rest.get(headers_end..)?;
    let body = if compressed {
        String::from_utf8(crate::compression::expand(body, MAX_EXCERPT)?).ok()?
    } else {
        std::str::from_utf8(body).ok()?.to_string()
    };
    let at_delta: i64 = at_delta.parse().ok()?;
    let timestamp_delta: i64 = timestamp_delta.parse().ok()?;
    let created = crate::ids::created_ms(crate::ids::IdKind::Event, &format!("evt_{event_body}"))
        .unwrap_or(0);
    let at = (created as i64).checked_add(at_delta)?;
    let next_at = if next_delta.is_empty() {
        String::new()
    } else {
        at.checked_add(next_delta.parse().ok()?)?.to_string()
    };
    let outcome = OUTCOMES
        .iter()
        .find(|(_, letter)| *letter == outcome)
        .map_or(outcome, |(word, _)| word);
    let at_secs = at.div_euclid(1000);
    let headers: Vec<(&str, std::borrow::Cow<'_, str>)> = headers
        .lines()
        .filter_map(|line| match line.split_once(':') {
            Some((name, value)) => Some((name, value.into())),
            None => {
                let (name, delta) = line.split_once('@')?;
                let secs = at_secs.checked_add(delta.parse().ok()?)?;
                Some((name, http_date(secs)?.into()))
            }
        })
        .collect();
    let values = [
        (f::EVENT, event_body.to_string()),
        (f::ATTEMPT, attempt.to_string()),
        (f::AT, at.to_string()),
        (f::STATUS_CODE, code.to_string()),
        (f::DURATION_MS, duration.to_string()),
        (f::ERROR, error.to_string()),
        (f::OUTCOME, outcome.to_string()),
        (
            f::RESPONSE_HEADERS,
            serde_json::to_string(&headers).unwrap_or_default(),
        ),
        (f::RESPONSE_BODY, body),
        (f::NEXT_ATTEMPT_AT, next_at),
        (
            f::WEBHOOK_TIMESTAMP,
            (at / 1000).checked_add(timestamp_delta)?.to_string(),
        ),
        (f::SIGNED_BY, signed_by.to_string()),
        (f::TEST, test.to_string()),
    ];
    Some(
        values
            .into_iter()
            .map(|(name, value)| (name.to_string(), value))
            .collect(),
    )
}

/// The fields of one attempt-log entry of `endpoint_id`'s stream by name,
/// whichever way it was written: one [`attempt_field::TEXT`] field or one
/// [`attempt_field::COMPACT`] array (the delivery and event ids rebuilt;
/// [`attempt_field::SIGNED_BY`] in place of the request headers, which
/// [`request_headers`] rebuilds), one [`attempt_field::PACKED`] array of an
/// earlier layout, or one stream field per value (earlier still).
/// Non-string values become their JSON text.
pub fn attempt_fields(
    endpoint_id: &str,
    mut stored: HashMap<String, Vec<u8>>,
) -> HashMap<String, String> {
    if let Some(bytes) = stored.remove(attempt_field::TEXT) {
        let fields = decode_text(&bytes).unwrap_or_default();
        return with_ids(endpoint_id, fields);
    }
    // Entries of earlier layouts are text.
    let mut stored: HashMap<String, String> = stored
        .into_iter()
        .map(|(name, value)| (name, String::from_utf8_lossy(&value).into_owned()))
        .collect();
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
    let fields: HashMap<String, String> = order
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
        return with_ids(endpoint_id, fields);
    }
    fields
}

/// A compact entry's fields with the delivery and event ids rebuilt from
/// the event id's body it stores and the stream's endpoint.
fn with_ids(endpoint_id: &str, mut fields: HashMap<String, String>) -> HashMap<String, String> {
    if fields.is_empty() {
        return fields;
    }
    let event_body = fields.remove(attempt_field::EVENT).unwrap_or_default();
    let endpoint_body = endpoint_id.strip_prefix("ep_").unwrap_or(endpoint_id);
    fields.insert(
        attempt_field::DELIVERY.into(),
        format!("dlv_{event_body}{endpoint_body}"),
    );
    fields.insert(attempt_field::EVENT.into(), format!("evt_{event_body}"));
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
    fn an_attempt_reads_back_with_its_ids() {
        let response = vec![
            ("content-type".to_string(), "text/plain".to_string()),
            ("x-odd".to_string(), "a:b|c".to_string()),
        ];
        let retry = AttemptEntry {
            event: EVENT,
            attempt: 2,
            at: 1_700_000_000_123,
            code: "503",
            duration_ms: 41,
            error: "",
            outcome: "retry",
            response_headers: &response,
            response_body: "busy | \"now\"\nü",
            next: "1700000060123",
            webhook_timestamp: 1_700_000_000,
            signed_by: "0a1b2c3d 4e5f6a7b",
            test: false,
        };
        let refused = AttemptEntry {
            event: EVENT,
            attempt: 1,
            at: 1_600_000_000_999,
            code: "",
            duration_ms: 0,
            error: "connect | refused\nby peer",
            outcome: "failed",
            response_headers: &[],
            response_body: "",
            next: "",
            webhook_timestamp: 1_599_999_990,
            signed_by: "",
            test: true,
        };
        let cases = [
            (
                retry,
                [
                    "2",
                    "1700000000123",
                    "503",
                    "41",
                    "",
                    "retry",
                    r#"[["content-type","text/plain"],["x-odd","a:b|c"]]"#,
                    "busy | \"now\"\nü",
                    "1700000060123",
                    "1700000000",
                    "0a1b2c3d 4e5f6a7b",
                    "0",
                ],
            ),
            (
                refused,
                [
                    "1",
                    "1600000000999",
                    "",
                    "0",
                    "connect | refused\nby peer",
                    "failed",
                    "[]",
                    "",
                    "",
                    "1599999990",
                    "",
                    "1",
                ],
            ),
        ];
        for (entry, values) in cases {
            let text = String::from_utf8(entry.encode(128)).unwrap();
            assert!(!text.contains("evt_") && !text.contains("dlv_"), "{text}");
            let fields = attempt_fields(
                ENDPOINT,
                HashMap::from([(attempt_field::TEXT.to_string(), text.clone().into_bytes())]),
            );
            let names = &attempt_field::COMPACT_ORDER[1..];
            let expected = [
                (attempt_field::DELIVERY, DELIVERY),
                (attempt_field::EVENT, EVENT),
            ]
            .into_iter()
            .chain(names.iter().copied().zip(values));
            assert_eq!(fields.len(), names.len() + 2, "{fields:?}");
            for (name, value) in expected {
                assert_eq!(
                    fields.get(name).map(String::as_str),
                    Some(value),
                    "{name} of {text}"
                );
            }
        }
        // What a damaged entry reads as: nothing rather than a guess.
        for bad in [
            "",
            "x|1",
            "01m9648k638566yktgb8q400|1|0|200|1|d||0||0|99|0|short",
        ] {
            let fields = attempt_fields(
                ENDPOINT,
                HashMap::from([(attempt_field::TEXT.to_string(), bad.as_bytes().to_vec())]),
            );
            assert!(fields.is_empty(), "{bad}: {fields:?}");
        }
    }

    #[test]
    fn long_response_bodies_are_stored_compressed() {
        let page = format!(
            "<html><head><title>502 Bad Gateway</title></head><body>{}</body></html>",
            "<p>The upstream server did not answer in time.</p>\n".repeat(16)
        );
        let noise: String = (0..400u32)
            .map(|i| char::from(b'a' + ((i.wrapping_mul(2_654_435_761) >> 13) % 26) as u8))
            .collect();
        for (body, above, compressed) in [
            (page.as_str(), 128, true),
            (page.as_str(), page.len() + 1, false),
            (noise.as_str(), 128, false),
            ("short", 0, false),
        ] {
            let entry = AttemptEntry {
                event: EVENT,
                attempt: 1,
                at: 1_700_000_000_123,
                code: "502",
                duration_ms: 30,
                error: "",
                outcome: "retry",
                response_headers: &[],
                response_body: body,
                next: "1700000001123",
                webhook_timestamp: 1_700_000_000,
                signed_by: "0a1b2c3d",
                test: false,
            };
            let stored = entry.encode(above);
            assert_eq!(
                stored.len() < body.len() / 2,
                compressed,
                "{above}: {} of {}",
                stored.len(),
                body.len()
            );
            let fields = attempt_fields(
                ENDPOINT,
                HashMap::from([(attempt_field::TEXT.to_string(), stored.clone())]),
            );
            assert_eq!(fields[attempt_field::RESPONSE_BODY], body);
            assert_eq!(fields[attempt_field::STATUS_CODE], "502");
            if compressed {
                // A damaged block, or one claiming too much, reads as nothing.
                let mut cut = stored.clone();
                cut.truncate(cut.len() - 5);
                let fields = attempt_fields(
                    ENDPOINT,
                    HashMap::from([(attempt_field::TEXT.to_string(), cut)]),
                );
                assert!(fields.is_empty());
            }
        }
    }

    /// An event id created 0.9 s before the attempt of [`delivered`].
    fn event_before_its_attempt() -> String {
        crate::ids::new_id(
            crate::ids::IdKind::Event,
            crate::ids::Partition(1),
            1_796_586_189_540,
        )
    }

    /// A first attempt that delivered, at 1_796_586_190_440.
    fn delivered<'a>(
        event: &'a str,
        response_headers: &'a [(String, String)],
        response_body: &'a str,
    ) -> AttemptEntry<'a> {
        AttemptEntry {
            event,
            attempt: 1,
            at: 1_796_586_190_440,
            code: "200",
            duration_ms: 2,
            error: "",
            outcome: "delivered",
            response_headers,
            response_body,
            next: "",
            webhook_timestamp: 1_796_586_190,
            signed_by: "85eea8ab",
            test: false,
        }
    }

    #[test]
    fn text_entries_are_smaller_than_the_json_arrays_before_them() {
        let response = vec![
            ("content-length".to_string(), "0".to_string()),
            (
                "date".to_string(),
                "Sun, 06 Dec 2026 19:43:10 GMT".to_string(),
            ),
        ];
        let event = event_before_its_attempt();
        let entry = delivered(&event, &response, "");
        let json_array = format!(
            r#"["{}",1,1796586190440,"200",2,"","delivered",[["content-length","0"],["date","Sun, 06 Dec 2026 19:43:10 GMT"]],"","",1796586190,"85eea8ab",0]"#,
            &event[4..]
        );
        let previous = attempt_fields(
            ENDPOINT,
            HashMap::from([(
                attempt_field::COMPACT.to_string(),
                json_array.clone().into_bytes(),
            )]),
        );
        let text = entry.encode(128);
        let now = attempt_fields(
            ENDPOINT,
            HashMap::from([(attempt_field::TEXT.to_string(), text.clone())]),
        );
        assert_eq!(now, previous, "both layouts read alike");
        assert_eq!(now[attempt_field::EVENT], event);
        // 113 → 62 bytes before the headers' lines, 52 → 25 bytes of those
        // (the date kept as seconds from the attempt's).
        assert!(
            text.len() + 75 <= json_array.len(),
            "{text:?}: {} vs {}",
            text.len(),
            json_array.len()
        );
    }

    #[test]
    fn http_dates_are_kept_as_seconds_and_read_back_exactly() {
        let event = event_before_its_attempt();
        let header = |name: &str, value: &str| (name.to_string(), value.to_string());
        let response = vec![
            // The attempt's second, one before it, one a day after.
            header("date", "Sun, 06 Dec 2026 19:43:10 GMT"),
            header("last-modified", "Sun, 06 Dec 2026 19:43:09 GMT"),
            header("expires", "Mon, 07 Dec 2026 19:43:10 GMT"),
            // Not the preferred form, or not a date: kept as sent.
            header("x-obsolete", "Sunday, 06-Dec-26 19:43:10 GMT"),
            header("x-wrong-day", "Mon, 06 Dec 2026 19:43:10 GMT"),
            header("x-other", "Sun, 06 Dec 2026 19:43:10 UTC"),
        ];
        let entry = delivered(&event, &response, "ok");
        let text = entry.encode(128);
        let stored = String::from_utf8(text.clone()).unwrap();
        for line in ["\ndate@0\n", "\nlast-modified@-1\n", "\nexpires@86400\n"] {
            assert!(
                stored.contains(line) || stored.contains(&line[1..]),
                "{stored}"
            );
        }
        let fields = attempt_fields(
            ENDPOINT,
            HashMap::from([(attempt_field::TEXT.to_string(), text)]),
        );
        let read: Vec<(String, String)> =
            serde_json::from_str(&fields[attempt_field::RESPONSE_HEADERS]).unwrap();
        assert_eq!(read, response);
        assert_eq!(fields[attempt_field::RESPONSE_BODY], "ok");
        // A damaged delta is no date, whatever year it would name
        // (formatting one past 9999 would panic).
        assert_eq!(
            http_date(0).as_deref(),
            Some("Thu, 01 Jan 1970 00:00:00 GMT")
        );
        for secs in [-1, 253_402_300_800, i64::MAX] {
            assert_eq!(http_date(secs), None);
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
            HashMap::from([(attempt_field::PACKED.to_string(), previous.into_bytes())]),
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
        let old = HashMap::from([(attempt_field::OUTCOME.to_string(), b"failed".to_vec())]);
        assert_eq!(
            attempt_fields(ENDPOINT, old),
            HashMap::from([(attempt_field::OUTCOME.to_string(), "failed".to_string())])
        );
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
            HashMap::from([(attempt_field::TEXT.to_string(), entry.encode(128))]),
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
