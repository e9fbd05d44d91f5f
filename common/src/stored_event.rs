//! An event as stored: one field of its home partition's `events:<bucket>`
//! hash (see `keys.rs`), the event id → its *record*:
//!
//! ```text
//! <flag><tenant id>\n<event type>\n<form><payload>
//! ```
//!
//! `flag` is `t` for a test send and `-` otherwise. The scripts read only
//! the first two lines (`publish.lua` the flag, `event_heads.lua` the head);
//! what follows is this module's:
//!
//! | form | payload |
//! | --- | --- |
//! | `=` | `data`, the text the event was published with (`event_data.rs`) |
//! | `~` | `data` compressed: its length (4 bytes, little-endian), then an LZ4 block |
//! | `{` | the whole signed body (records written before the two forms above; the `{` is the body's own) |
//!
//! The body every attempt sends, `{"id","type","timestamp","data"}`, is not
//! stored: the id is the field's name, the type is in the head and the
//! timestamp is the id's creation time, so [`EventRecord::parse`] rebuilds
//! it byte for byte (about 80 bytes of envelope a record no longer holds).
//! `data` is compressed when it is at least `HOOKFLEET_COMPRESS_ABOVE`
//! bytes long and LZ4 saves an eighth of it (docs/BENCHMARKS.md, "Memory
//! per delivery", has the codecs measured).
//!
//! One field instead of a hash and a body key per event saves two keys,
//! two TTLs and a hash table per event (about 200 bytes); the bucket's hash
//! expires as a whole once its events are past retention, and readers
//! treat an event older than retention as gone even while its bucket
//! lingers (at most one bucket, about 17.5 minutes).
//!
//! The record is written once, by `publish.lua`, and never changed: what
//! changes later (an interrupted fan-out completing, its delivery count)
//! lives in `fanout_pending` and the idempotency key.

use std::time::Duration;

use serde_json::value::RawValue;

use crate::compression;
use crate::event_data::EventData;
use crate::ids::{self, IdKind};
use crate::time_util::rfc3339_ms;

/// The form byte of a record holding `data` as its text.
const PLAIN: u8 = b'=';
/// The form byte of a record holding `data` compressed.
const COMPRESSED: u8 = b'~';
/// The form byte of a record holding the whole body (its first byte).
const WHOLE_BODY: u8 = b'{';
/// The largest `data` a compressed record may claim to expand to: far
/// above any payload the API accepts, and a bound on what a damaged
/// record can make a reader allocate.
const MAX_DATA_LEN: usize = 64 << 20;

/// An event's record, parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventRecord {
    pub tenant_id: String,
    pub event_type: String,
    /// A test send: one attempt, outside the endpoint's statistics.
    pub test: bool,
    /// The body every attempt sends.
    body: String,
}

impl EventRecord {
    /// The stored form of a new event (see the module's header): `data`
    /// compressed when it is at least `compress_above` bytes long and
    /// compression saves an eighth of it, as its text otherwise.
    pub fn encode_event(
        tenant_id: &str,
        event_type: &str,
        test: bool,
        data: &EventData,
        compress_above: usize,
    ) -> Vec<u8> {
        let data = data.as_str().as_bytes();
        let compress = data.len() >= compress_above && data.len() <= MAX_DATA_LEN;
        let room = if compress {
            compression::room_for(data.len())
        } else {
            data.len()
        };
        let mut stored = Self::head(tenant_id, event_type, test, room + 1);
        if compress {
            stored.push(COMPRESSED);
            if compression::append_if_smaller(&mut stored, data) {
                return stored;
            }
            stored.pop();
        }
        stored.push(PLAIN);
        stored.extend_from_slice(data);
        stored
    }

    /// A record holding the whole body, as records were written before
    /// the envelope was rebuilt on reading (tests of reading them use it).
    pub fn encode_whole_body(tenant_id: &str, event_type: &str, test: bool, body: &str) -> Vec<u8> {
        let mut stored = Self::head(tenant_id, event_type, test, body.len());
        stored.extend_from_slice(body.as_bytes());
        stored
    }

    /// The record's first two lines, with room for `payload_len` more bytes.
    fn head(tenant_id: &str, event_type: &str, test: bool, payload_len: usize) -> Vec<u8> {
        let mut stored = Vec::with_capacity(tenant_id.len() + event_type.len() + payload_len + 3);
        stored.push(if test { b't' } else { b'-' });
        stored.extend_from_slice(tenant_id.as_bytes());
        stored.push(b'\n');
        stored.extend_from_slice(event_type.as_bytes());
        stored.push(b'\n');
        stored
    }

    /// Parses the stored record of event `event_id`, rebuilding its body;
    /// `None` when it is not a record (or its data does not decompress).
    pub fn parse(event_id: &str, stored: &[u8]) -> Option<Self> {
        let test = match stored.first()? {
            b't' => true,
            b'-' => false,
            _ => return None,
        };
        let tenant_end = memchr::memchr(b'\n', stored)?;
        let type_end = tenant_end + 1 + memchr::memchr(b'\n', &stored[tenant_end + 1..])?;
        let tenant_id = std::str::from_utf8(&stored[1..tenant_end]).ok()?;
        let event_type = std::str::from_utf8(&stored[tenant_end + 1..type_end]).ok()?;
        let payload = &stored[type_end + 1..];
        let body = match *payload.first()? {
            PLAIN => {
                let data = std::str::from_utf8(&payload[1..]).ok()?;
                envelope(event_id, event_type, data)?
            }
            COMPRESSED => {
                let data = compression::expand(&payload[1..], MAX_DATA_LEN)?;
                envelope(event_id, event_type, std::str::from_utf8(&data).ok()?)?
            }
            WHOLE_BODY => std::str::from_utf8(payload).ok()?.to_string(),
            _ => return None,
        };
        Some(EventRecord {
            tenant_id: tenant_id.to_string(),
            event_type: event_type.to_string(),
            test,
            body,
        })
    }

    /// The body: the signed JSON every attempt sends.
    pub fn body(&self) -> &str {
        &self.body
    }

    /// The body, without a copy.
    pub fn into_body(self) -> String {
        self.body
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

/// The body an event's attempts send: the envelope's strings escaped,
/// `data` as its text, the timestamp the id's creation time; `None` for an
/// id that is not an event id.
fn envelope(event_id: &str, event_type: &str, data: &str) -> Option<String> {
    let timestamp = rfc3339_ms(ids::created_ms(IdKind::Event, event_id)?);
    // The envelope's strings are short and need no escaping in practice;
    // 64 bytes cover the keys and punctuation.
    let mut body = String::with_capacity(
        event_id.len() + event_type.len() + timestamp.len() + data.len() + 64,
    );
    body.push_str("{\"id\":");
    push_json_string(&mut body, event_id);
    body.push_str(",\"type\":");
    push_json_string(&mut body, event_type);
    body.push_str(",\"timestamp\":");
    push_json_string(&mut body, &timestamp);
    body.push_str(",\"data\":");
    body.push_str(data);
    body.push('}');
    Some(body)
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

    /// An event id created at 2026-01-31T12:00:00.000Z.
    fn event_id() -> String {
        ids::new_id(IdKind::Event, ids::Partition(3), 1_769_860_800_000)
    }

    fn body_of(event_id: &str, data: &str) -> String {
        format!(
            "{{\"id\":\"{event_id}\",\"type\":\"user.created\",\"timestamp\":\"2026-01-31T12:00:00.000Z\",\"data\":{data}}}"
        )
    }

    #[test]
    fn records_round_trip_in_every_form() {
        let id = event_id();
        let small = r#"{"a":"x\ny"}"#.to_string();
        let large = format!(
            r#"{{"note":"{}","n":[{}]}}"#,
            "ab".repeat(200),
            "1,".repeat(50) + "2"
        );
        for test in [false, true] {
            for (data, form) in [(&small, PLAIN), (&large, COMPRESSED)] {
                let stored = EventRecord::encode_event(
                    "ten_1",
                    "user.created",
                    test,
                    &EventData::from_json(data).unwrap(),
                    128,
                );
                let head_len = "-ten_1\nuser.created\n".len();
                assert_eq!(stored[head_len], form, "{data}");
                if form == COMPRESSED {
                    assert!(
                        stored.len() < data.len() / 2,
                        "{} of {}",
                        stored.len(),
                        data.len()
                    );
                }
                let record = EventRecord::parse(&id, &stored).unwrap();
                assert_eq!(record.tenant_id, "ten_1");
                assert_eq!(record.event_type, "user.created");
                assert_eq!(record.test, test);
                assert_eq!(record.body(), body_of(&id, data));
                assert_eq!(record.data().map(RawValue::get), Some(data.as_str()));
                assert_eq!(record.into_body(), body_of(&id, data));
            }
        }
    }

    #[test]
    fn data_is_compressed_only_above_the_threshold_and_when_it_pays() {
        let id = event_id();
        let form = |data: &str, above: usize| {
            let stored = EventRecord::encode_event(
                "ten_1",
                "t",
                false,
                &EventData::from_json(data).unwrap(),
                above,
            );
            let record = EventRecord::parse(&id, &stored).unwrap();
            assert_eq!(record.data().map(RawValue::get), Some(data));
            stored["-ten_1\nt\n".len()]
        };
        let repetitive = format!(r#"{{"note":"{}"}}"#, "x".repeat(300));
        assert_eq!(form(&repetitive, 128), COMPRESSED);
        assert_eq!(form(&repetitive, 1000), PLAIN);
        // Random-looking text LZ4 cannot shrink by an eighth stays as it is.
        let noise: String = (0..300u32)
            .map(|i| char::from(b'a' + ((i.wrapping_mul(2_654_435_761) >> 13) % 26) as u8))
            .collect();
        assert_eq!(form(&format!(r#"{{"noise":"{noise}"}}"#), 16), PLAIN);
    }

    #[test]
    fn records_with_the_whole_body_still_read() {
        let id = event_id();
        let body = "{\"id\":\"evt_1\",\"data\":{\"a\":\"x\\ny\"}}";
        for test in [false, true] {
            let stored = EventRecord::encode_whole_body("ten_1", "user.created", test, body);
            let record = EventRecord::parse(&id, &stored).unwrap();
            assert_eq!(record.tenant_id, "ten_1");
            assert_eq!(record.event_type, "user.created");
            assert_eq!(record.test, test);
            assert_eq!(record.body(), body);
            assert_eq!(record.data().map(RawValue::get), Some("{\"a\":\"x\\ny\"}"));
        }
    }

    #[test]
    fn damaged_records_do_not_parse() {
        let id = event_id();
        let mut truncated = EventRecord::encode_event(
            "ten_1",
            "t",
            false,
            &EventData::from_json(&format!(r#"{{"note":"{}"}}"#, "x".repeat(400))).unwrap(),
            128,
        );
        truncated.truncate(truncated.len() - 3);
        let mut huge = b"-ten_1\nt\n~".to_vec();
        huge.extend_from_slice(&u32::MAX.to_le_bytes());
        huge.extend_from_slice(b"\x10x");
        let bad: [&[u8]; 10] = [
            b"",
            b"x",
            b"-ten_1",
            b"-ten_1\nuser.created",
            b"-ten_1\nuser.created\n",
            b"?ten\nt\n=1",
            b"-ten_1\nt\n?1",
            b"-ten_1\nt\n=\xff",
            &truncated,
            &huge,
        ];
        for stored in bad {
            assert_eq!(EventRecord::parse(&id, stored), None, "{stored:?}");
        }
        // The body is rebuilt from the id: a field that is not an event id
        // has no record.
        assert_eq!(EventRecord::parse("not-an-id", b"-ten_1\nt\n=1"), None);
        let stray = EventRecord::parse(&id, b"-ten_1\nt\n{not json").unwrap();
        assert!(stray.data().is_none());
    }

    #[test]
    fn a_new_events_body_holds_its_data_verbatim() {
        let id = event_id();
        let text = "{\"n\":123456789012345678901234567890, \"e\":1e400,\"z\":-0}";
        for above in [0, usize::MAX] {
            let data = EventData::from_json(text).unwrap();
            let stored = EventRecord::encode_event("ten_1", "user.created", false, &data, above);
            let record = EventRecord::parse(&id, &stored).unwrap();
            assert_eq!(record.body(), body_of(&id, text));
            assert_eq!(record.data().map(RawValue::get), Some(text));
        }
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
