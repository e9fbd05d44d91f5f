//! An event as stored: one field of its home partition's `events:<bucket>`
//! hash (see `keys.rs`), the event id → its *record*:
//!
//! ```text
//! <flag><tenant id>\n<event type>\n<body>
//! ```
//!
//! `flag` is `t` for a test send and `-` otherwise; `body` is the signed
//! JSON, the same bytes every attempt sends:
//! `{"id","type","timestamp","data"}`, with `data` the text the event was
//! published with (`event_data.rs`), written straight into the record: a
//! publish copies the payload once, and never re-encodes it. One field instead of a hash
//! and a body key per event saves two keys, two TTLs and a hash table per
//! event (about 200 bytes); the bucket's hash expires as a whole once its
//! events are past retention, and readers treat an event older than
//! retention as gone even while its bucket lingers (at most one bucket,
//! about 17.5 minutes).
//!
//! The record is written once, by `publish.lua`, and never changed: what
//! changes later (an interrupted fan-out completing, its delivery count)
//! lives in `fanout_pending` and the idempotency key.

use std::time::Duration;

use serde_json::value::RawValue;

use crate::event_data::EventData;

/// An event's record, parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventRecord {
    pub tenant_id: String,
    pub event_type: String,
    /// A test send: one attempt, outside the endpoint's statistics.
    pub test: bool,
    /// The record as stored; the body is its tail.
    text: String,
    body_at: usize,
}

impl EventRecord {
    /// The stored form of an event (see the module's header).
    pub fn encode(tenant_id: &str, event_type: &str, test: bool, body: &str) -> String {
        let mut text = Self::header(tenant_id, event_type, test, body.len());
        text.push_str(body);
        text
    }

    /// The stored form of a new event, its body built in place: the
    /// envelope's strings escaped, `data` as its text.
    pub fn encode_event(
        tenant_id: &str,
        event_type: &str,
        test: bool,
        event_id: &str,
        timestamp: &str,
        data: &EventData,
    ) -> String {
        let data = data.as_str();
        // The envelope's strings are short and need no escaping in
        // practice; 64 bytes cover the keys and punctuation.
        let body_len = event_id.len() + event_type.len() + timestamp.len() + data.len() + 64;
        let mut text = Self::header(tenant_id, event_type, test, body_len);
        text.push_str("{\"id\":");
        push_json_string(&mut text, event_id);
        text.push_str(",\"type\":");
        push_json_string(&mut text, event_type);
        text.push_str(",\"timestamp\":");
        push_json_string(&mut text, timestamp);
        text.push_str(",\"data\":");
        text.push_str(data);
        text.push('}');
        text
    }

    /// The record's first two lines, with room for a body of `body_len`.
    fn header(tenant_id: &str, event_type: &str, test: bool, body_len: usize) -> String {
        let mut text = String::with_capacity(tenant_id.len() + event_type.len() + body_len + 3);
        text.push(if test { 't' } else { '-' });
        text.push_str(tenant_id);
        text.push('\n');
        text.push_str(event_type);
        text.push('\n');
        text
    }

    /// Parses a stored record; `None` when it is not one.
    pub fn parse(text: String) -> Option<Self> {
        let test = match text.as_bytes().first()? {
            b't' => true,
            b'-' => false,
            _ => return None,
        };
        let tenant_end = text.find('\n')?;
        let type_end = tenant_end + 1 + text[tenant_end + 1..].find('\n')?;
        Some(EventRecord {
            tenant_id: text[1..tenant_end].to_string(),
            event_type: text[tenant_end + 1..type_end].to_string(),
            test,
            body_at: type_end + 1,
            text,
        })
    }

    /// The body: the signed JSON every attempt sends.
    pub fn body(&self) -> &str {
        &self.text[self.body_at..]
    }

    /// The body, taking the record apart without a copy when possible.
    pub fn into_body(mut self) -> String {
        self.text.drain(..self.body_at);
        self.text
    }

    /// The body's `data`, as its text; `None` when the body is not JSON
    /// with a `data` member (never written so).
    pub fn data(&self) -> Option<&RawValue> {
        #[derive(serde::Deserialize)]
        struct Body<'a> {
            #[serde(borrow)]
            data: &'a RawValue,
        }
        serde_json::from_str::<Body<'_>>(self.body())
            .ok()
            .map(|body| body.data)
    }
}

/// Appends `value` as a JSON string. Written here rather than through
/// serde_json because its writers are fallible (an `io::Write` or a
/// `Result<String>`) where appending to a `String` cannot fail.
fn push_json_string(out: &mut String, value: &str) {
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                let code = u32::from(c) as usize;
                out.push_str("\\u00");
                out.push(char::from(HEX[code >> 4]));
                out.push(char::from(HEX[code & 0xf]));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Whether an event created at `created_ms` is past `retention` at `now_ms`.
pub fn expired(created_ms: u64, retention: Duration, now_ms: u64) -> bool {
    created_ms.saturating_add(retention.as_millis() as u64) <= now_ms
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip() {
        let body = "{\"id\":\"evt_1\",\"data\":{\"a\":\"x\\ny\"}}";
        for test in [false, true] {
            let text = EventRecord::encode("ten_1", "user.created", test, body);
            let record = EventRecord::parse(text).unwrap();
            assert_eq!(record.tenant_id, "ten_1");
            assert_eq!(record.event_type, "user.created");
            assert_eq!(record.test, test);
            assert_eq!(record.body(), body);
            assert_eq!(record.into_body(), body);
        }
        for bad in ["", "x", "-ten_1", "-ten_1\nuser.created", "?ten\nt\nb"] {
            assert_eq!(EventRecord::parse(bad.to_string()), None, "{bad:?}");
        }
    }

    #[test]
    fn a_new_events_body_holds_its_data_verbatim() {
        let text = "{\"n\":123456789012345678901234567890, \"e\":1e400,\"z\":-0}";
        let data = EventData::from_json(text).unwrap();
        let record = EventRecord::encode_event(
            "ten_1",
            "user.created",
            false,
            "evt_1",
            "2026-01-31T12:00:00.000Z",
            &data,
        );
        let record = EventRecord::parse(record).unwrap();
        assert_eq!(
            record.body(),
            format!(
                "{{\"id\":\"evt_1\",\"type\":\"user.created\",\"timestamp\":\"2026-01-31T12:00:00.000Z\",\"data\":{text}}}"
            )
        );
        assert_eq!(record.data().map(RawValue::get), Some(text));
        assert_eq!(record.event_type, "user.created");
        assert!(!record.test);
        let stray = EventRecord::parse("-ten_1\nt\nnot json".to_string()).unwrap();
        assert!(stray.data().is_none());
    }

    #[test]
    fn envelope_strings_are_escaped() {
        let mut odd: String = (0u8..0x80).map(char::from).collect();
        odd.push_str("é😀\u{2028}");
        let mut out = String::new();
        push_json_string(&mut out, &odd);
        assert_eq!(serde_json::from_str::<String>(&out).unwrap(), odd);
        let mut out = String::new();
        push_json_string(&mut out, "user.created");
        assert_eq!(out, "\"user.created\"");
    }

    #[test]
    fn expiry_counts_from_creation() {
        let day = Duration::from_secs(86_400);
        assert!(!expired(1_000, day, 1_000 + 86_399_999));
        assert!(expired(1_000, day, 1_000 + 86_400_000));
    }
}
