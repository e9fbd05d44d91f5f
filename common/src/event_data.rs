//! [`EventData`]: an event's `data`, kept as the JSON text it arrived as.
//!
//! The design's invariant 10: what is accepted is what is stored, signed
//! and delivered. A `serde_json::Value` cannot keep that promise: its
//! numbers are `f64`, `i64` or `u64`, so `123456789012345678901234567890`
//! turns into `1.2345678901234568e+29`, `1e400` cannot be held at all, and
//! an object naming a key twice silently keeps the last value. So `data`
//! never becomes a `Value`. serde_json captures its text while it parses
//! the request (a `RawValue`, whose syntax it has checked), and that text
//! is written into the signed body verbatim (`stored_event.rs`).
//!
//! What the text cannot promise by itself is checked once, by
//! [`EventData::parse`], in one pass over it: `data` is an object; no
//! object in it names a key twice (receivers' parsers would disagree on
//! which value counts: the first, the last, or an error); no string holds
//! a lone UTF-16 surrogate escape such as `"\ud800"` (not Unicode text:
//! strict parsers refuse it, lenient ones replace it, so it could not
//! arrive as sent); and it nests at most [`MAX_DEPTH`] levels, so that the
//! signed body stays within what JSON parsers read by default. Input that
//! cannot be kept exactly is refused, never rewritten; each refusal names
//! the path inside `data` where it is (`.items[2].id`).
//!
//! Why a scanner and not a serde visitor: serde_json's `deserialize_any`
//! converts every number before a visitor sees it, refusing `1e400`
//! (valid JSON, outside `f64`), and serde offers no way to descend into
//! containers while skipping scalars unseen. The scanner walks text that
//! serde_json has already validated, so it only tracks structure; it still
//! refuses anything unexpected instead of panicking.
//!
//! Whitespace inside `data` is kept as sent, not minified: the delivered
//! `data` is then byte for byte the client's, which is what a client
//! comparing what it sent with what its receiver got can check, and
//! keeping it costs nothing, where minifying would copy every payload that
//! has any. It can make a body longer than needed, never longer than its
//! request, which `HOOKFLEET_MAX_PAYLOAD` bounds.

use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;

use serde::{Serialize, Serializer};
use serde_json::value::RawValue;

/// An event's `data`: a JSON object, as the text it was published with.
///
/// Built only through [`EventData::parse`] (which the other constructors
/// call too), so holding one means the checks above have passed;
/// publishing takes nothing else. Serializing it writes the text
/// unchanged.
#[derive(Clone)]
pub struct EventData(Box<RawValue>);

/// Why a `data` was refused. [`DataError::path`] says where inside it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DataError {
    #[error("must be a JSON object")]
    NotObject,
    /// Keeping one of the values would rewrite the input; which one a
    /// receiver keeps depends on its parser.
    #[error("the key `{key}` appears more than once in its object; send each key once")]
    DuplicateKey { path: String, key: String },
    #[error("holds a lone UTF-16 surrogate escape (`{escape}`), which is not a Unicode character")]
    LoneSurrogate { path: String, escape: String },
    /// `path` is the first object or array past the limit.
    #[error("nests objects and arrays more than {MAX_DEPTH} levels deep")]
    TooDeep { path: String },
    /// Text that is not JSON (only from [`EventData::from_json`]: a
    /// request's `data` has passed serde_json's syntax check already).
    #[error("is not valid JSON: {0}")]
    Syntax(String),
}

impl DataError {
    /// Where in `data` the fault is, to append to the name of the `data`
    /// field itself: `""` for `data` as a whole, `.user.id` for a member,
    /// `.items[2]` for an array item (keys as they are, like the paths of
    /// the API's other errors).
    pub fn path(&self) -> &str {
        match self {
            DataError::DuplicateKey { path, .. }
            | DataError::LoneSurrogate { path, .. }
            | DataError::TooDeep { path } => path,
            DataError::NotObject | DataError::Syntax(_) => "",
        }
    }
}

impl EventData {
    /// Checks `raw` (see the module's header) and keeps it as it is: no
    /// copy, no re-encoding.
    pub fn parse(raw: Box<RawValue>) -> Result<Self, DataError> {
        check(raw.get())?;
        Ok(EventData(raw))
    }

    /// Parses JSON text into `data` (tests and fixed defaults).
    pub fn from_json(text: &str) -> Result<Self, DataError> {
        let raw = RawValue::from_string(text.to_string())
            .map_err(|err| DataError::Syntax(err.to_string()))?;
        Self::parse(raw)
    }

    /// The `data` of an event Hookfleet builds itself (operational
    /// events). A `Value` has no duplicate keys and writes its own numbers
    /// exactly; the checks run all the same, so that no `EventData`
    /// skipped them.
    pub fn from_value(value: &serde_json::Value) -> Result<Self, DataError> {
        if !value.is_object() {
            return Err(DataError::NotObject);
        }
        let raw = serde_json::value::to_raw_value(value)
            .map_err(|err| DataError::Syntax(err.to_string()))?;
        Self::parse(raw)
    }

    /// The JSON text, exactly as published.
    pub fn as_str(&self) -> &str {
        self.0.get()
    }
}

impl Serialize for EventData {
    /// Writes the text verbatim (serde_json's `RawValue`).
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

impl fmt::Debug for EventData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("EventData").field(&self.as_str()).finish()
    }
}

impl PartialEq for EventData {
    /// Equal when the texts are: the same values written differently
    /// (`1.0` and `1`, other whitespace) are different data here.
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for EventData {}

/// Runs the checks of the module's header over `text`, a JSON value.
fn check(text: &str) -> Result<(), DataError> {
    let mut walk = Walk {
        text,
        bytes: text.as_bytes(),
        at: 0,
        open: Vec::new(),
        spare: Vec::new(),
    };
    walk.skip_whitespace();
    if walk.peek() != Some(b'{') {
        return Err(DataError::NotObject);
    }
    walk.run()
}

/// The deepest nesting `data` may have, itself counting as one level.
/// The signed body adds one, and serde_json, the strictest of the common
/// parsers, reads 127 levels by default: so the deepest body Hookfleet
/// sends is one that receivers' parsers read with their defaults.
pub const MAX_DEPTH: usize = 126;

/// Up to this many keys an object's keys are compared one by one (no
/// hashing, no second allocation: most objects are this small); past it
/// they go into a hash set, so that a 20,000-key object is not quadratic.
const LINEAR_KEYS: usize = 16;

/// The keys an object has named so far.
struct Keys<'a> {
    few: Vec<Cow<'a, str>>,
    many: HashSet<Cow<'a, str>>,
}

impl<'a> Keys<'a> {
    /// Adds `key`; false when the object named it before.
    fn insert(&mut self, key: Cow<'a, str>) -> bool {
        if self.many.is_empty() {
            if self.few.contains(&key) {
                return false;
            }
            if self.few.len() < LINEAR_KEYS {
                self.few.push(key);
                return true;
            }
            self.many.extend(self.few.drain(..));
        }
        self.many.insert(key)
    }
}

/// A container the walk is inside.
enum Open<'a> {
    /// An object: its keys so far, and the member being read.
    Object {
        keys: Keys<'a>,
        current: Cow<'a, str>,
    },
    /// An array: the item being read.
    Array { index: usize },
}

/// A single pass over a JSON text, holding only the containers it is in.
/// Iterative rather than recursive, so its depth costs heap, not stack.
struct Walk<'a> {
    text: &'a str,
    bytes: &'a [u8],
    at: usize,
    open: Vec<Open<'a>>,
    /// Key lists of closed objects, emptied, for the next ones: data with
    /// many small objects then allocates as many lists as it nests deep,
    /// not one per object.
    spare: Vec<Vec<Cow<'a, str>>>,
}

/// What a string turned out to be: its contents' span, and whether it has
/// escapes (then its value differs from its text).
struct Span {
    start: usize,
    end: usize,
    escaped: bool,
}

impl<'a> Walk<'a> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn skip_whitespace(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
    }

    fn malformed(&self) -> DataError {
        DataError::Syntax(format!("unexpected input at byte {}", self.at))
    }

    /// Walks values until the outermost one ends. At the top of the loop
    /// the walk is at the start of a value; after it, the value has ended
    /// and the containers that end with it are closed.
    fn run(&mut self) -> Result<(), DataError> {
        loop {
            self.skip_whitespace();
            let container = matches!(self.peek(), Some(b'{' | b'['));
            if container && self.open.len() >= MAX_DEPTH {
                return Err(DataError::TooDeep {
                    path: self.path(self.open.len()),
                });
            }
            match self.peek() {
                Some(b'{') => {
                    self.at += 1;
                    self.skip_whitespace();
                    if self.peek() == Some(b'}') {
                        self.at += 1;
                    } else {
                        let keys = Keys {
                            few: self.spare.pop().unwrap_or_default(),
                            many: HashSet::new(),
                        };
                        self.open.push(Open::Object {
                            keys,
                            current: Cow::Borrowed(""),
                        });
                        self.member()?;
                        continue;
                    }
                }
                Some(b'[') => {
                    self.at += 1;
                    self.skip_whitespace();
                    if self.peek() == Some(b']') {
                        self.at += 1;
                    } else {
                        self.open.push(Open::Array { index: 0 });
                        continue;
                    }
                }
                Some(b'"') => {
                    self.string()
                        .map_err(|escape| self.lone_surrogate(self.open.len(), escape))?;
                }
                Some(_) => self.scalar()?,
                None => return Err(self.malformed()),
            }
            // The value ended: close what ends with it, up to the next
            // member or item.
            loop {
                self.skip_whitespace();
                let next = self.peek();
                match (self.open.last_mut(), next) {
                    (None, None) => return Ok(()),
                    (Some(Open::Array { index }), Some(b',')) => {
                        *index += 1;
                        self.at += 1;
                        break;
                    }
                    (Some(Open::Object { .. }), Some(b',')) => {
                        self.at += 1;
                        self.member()?;
                        break;
                    }
                    (Some(Open::Array { .. }), Some(b']'))
                    | (Some(Open::Object { .. }), Some(b'}')) => {
                        self.at += 1;
                        if let Some(Open::Object { keys, .. }) = self.open.pop() {
                            let mut few = keys.few;
                            few.clear();
                            self.spare.push(few);
                        }
                    }
                    _ => return Err(self.malformed()),
                }
            }
        }
    }

    /// Reads a member's key and its colon, refusing a key the object named
    /// before. Keys compare by value: `"a"` and `"\u0061"` are one key.
    fn member(&mut self) -> Result<(), DataError> {
        self.skip_whitespace();
        if self.peek() != Some(b'"') {
            return Err(self.malformed());
        }
        let depth = self.open.len();
        let span = self
            .string()
            .map_err(|escape| self.lone_surrogate(depth.saturating_sub(1), escape))?;
        let text = self
            .text
            .get(span.start..span.end)
            .ok_or_else(|| self.malformed())?;
        let key: Cow<'a, str> = if span.escaped {
            // Only keys with escapes are decoded (and allocate); the
            // quotes around the span are part of the text.
            let quoted = self
                .text
                .get(span.start - 1..span.end + 1)
                .ok_or_else(|| self.malformed())?;
            Cow::Owned(
                serde_json::from_str::<String>(quoted)
                    .map_err(|err| DataError::Syntax(err.to_string()))?,
            )
        } else {
            Cow::Borrowed(text)
        };
        let Some(Open::Object { keys, current }) = self.open.last_mut() else {
            return Err(self.malformed());
        };
        let fresh = keys.insert(key.clone());
        let name = if fresh { None } else { Some(key.to_string()) };
        *current = key;
        if let Some(key) = name {
            return Err(DataError::DuplicateKey {
                path: self.path(depth),
                key,
            });
        }
        self.skip_whitespace();
        if self.peek() != Some(b':') {
            return Err(self.malformed());
        }
        self.at += 1;
        Ok(())
    }

    /// Skips a string, checking its `\u` escapes pair up. On a lone
    /// surrogate, answers the escape at fault.
    fn string(&mut self) -> Result<Span, String> {
        self.at += 1;
        let start = self.at;
        let mut escaped = false;
        loop {
            let rest = self.bytes.get(self.at..).unwrap_or_default();
            let Some(offset) = memchr::memchr2(b'"', b'\\', rest) else {
                // Unterminated: not from a RawValue. End the walk; the
                // caller finds nothing after it and reports it malformed.
                self.at = self.bytes.len();
                return Ok(Span {
                    start,
                    end: self.at,
                    escaped,
                });
            };
            self.at += offset;
            if self.peek() == Some(b'"') {
                let end = self.at;
                self.at += 1;
                return Ok(Span {
                    start,
                    end,
                    escaped,
                });
            }
            escaped = true;
            self.at += 1;
            if self.peek() != Some(b'u') {
                self.at += 1;
                continue;
            }
            let unit = self.hex4(self.at + 1);
            self.at += 5;
            match unit {
                Some(0xD800..=0xDBFF) => {
                    let next = self.bytes.get(self.at..self.at + 2) == Some(b"\\u");
                    let low = if next { self.hex4(self.at + 2) } else { None };
                    if !matches!(low, Some(0xDC00..=0xDFFF)) {
                        return Err(self.escape_before(self.at));
                    }
                    self.at += 6;
                }
                Some(0xDC00..=0xDFFF) => return Err(self.escape_before(self.at)),
                _ => {}
            }
        }
    }

    /// The six characters of the `\u` escape that ends at `end`.
    fn escape_before(&self, end: usize) -> String {
        self.text
            .get(end.saturating_sub(6)..end)
            .unwrap_or("\\u")
            .to_string()
    }

    /// The four hex digits at `at` as a UTF-16 code unit.
    fn hex4(&self, at: usize) -> Option<u32> {
        let digits = self.text.get(at..at + 4)?;
        u32::from_str_radix(digits, 16).ok()
    }

    /// Skips a number, `true`, `false` or `null`: the digits stay as sent.
    fn scalar(&mut self) -> Result<(), DataError> {
        let start = self.at;
        while let Some(byte) = self.peek() {
            if matches!(byte, b',' | b']' | b'}' | b' ' | b'\t' | b'\n' | b'\r') {
                break;
            }
            self.at += 1;
        }
        if self.at == start {
            return Err(self.malformed());
        }
        Ok(())
    }

    fn lone_surrogate(&self, depth: usize, escape: String) -> DataError {
        DataError::LoneSurrogate {
            path: self.path(depth),
            escape,
        }
    }

    /// The path of the value being read inside the first `depth` open
    /// containers: `.key` per object, `[index]` per array.
    fn path(&self, depth: usize) -> String {
        let mut path = String::new();
        for open in self.open.iter().take(depth) {
            match open {
                Open::Object { current, .. } => {
                    path.push('.');
                    path.push_str(current);
                }
                Open::Array { index } => {
                    path.push('[');
                    path.push_str(&index.to_string());
                    path.push(']');
                }
            }
        }
        path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<EventData, DataError> {
        EventData::from_json(text)
    }

    fn duplicate_at(text: &str) -> (String, String) {
        match parse(text) {
            Err(DataError::DuplicateKey { path, key }) => (path, key),
            other => panic!("{text}: expected a duplicate key, got {other:?}"),
        }
    }

    #[test]
    fn numbers_and_text_are_kept_exactly() {
        let texts = [
            r#"{"n":123456789012345678901234567890}"#,
            r#"{"n":-123456789012345678901234567890123}"#,
            r#"{"n":18446744073709551616,"m":-9223372036854775809}"#,
            r#"{"d":0.1000000000000000000000000001}"#,
            r#"{"z":-0,"zf":-0.0,"e":1e400,"f":-1E-400,"g":2.50e+10}"#,
            r#"{"s":"caf\u00e9 \ud83d\ude00 \"q\" \\ / \n","u":"Zoë 😀"}"#,
            "{ \"a\" : [ 1 , 2.0 ,\n\t{ } , [ ] , true , false , null ] }",
            r#"{}"#,
            r#"{"deep":[[[[{"a":[{"b":{"c":[1]}}]}]]]]}"#,
        ];
        for text in texts {
            let data = parse(text).unwrap_or_else(|err| panic!("{text}: {err}"));
            assert_eq!(data.as_str(), text);
            // Serializing writes it verbatim, inside any other JSON.
            #[derive(Serialize)]
            struct Body<'a> {
                id: &'a str,
                data: &'a EventData,
            }
            let body = serde_json::to_string(&Body {
                id: "evt_1",
                data: &data,
            })
            .unwrap();
            assert_eq!(body, format!(r#"{{"id":"evt_1","data":{text}}}"#));
        }
    }

    #[test]
    fn data_must_be_an_object() {
        for text in ["[]", "[{}]", "1", "\"{}\"", "null", "true", " [1] "] {
            assert_eq!(parse(text), Err(DataError::NotObject), "{text}");
        }
        let not_object = DataError::NotObject;
        assert_eq!(not_object.path(), "");
        assert_eq!(not_object.to_string(), "must be a JSON object");
        assert!(matches!(parse("{"), Err(DataError::Syntax(_))));
        assert!(matches!(parse("{} x"), Err(DataError::Syntax(_))));
    }

    #[test]
    fn duplicate_keys_are_refused_with_their_path() {
        let cases = [
            (r#"{"a":1,"a":2}"#, ".a", "a"),
            (r#"{"a":1,"b":2,"a":1}"#, ".a", "a"),
            (r#"{"a":{"b":1,"b":2}}"#, ".a.b", "b"),
            (
                r#"{"items":[{"id":1},{"id":2,"id":3}]}"#,
                ".items[1].id",
                "id",
            ),
            (
                r#"{"m":[[0,{"x":{"y":[{"k":1,"k":1}]}}]]}"#,
                ".m[0][1].x.y[0].k",
                "k",
            ),
            // After a nested object ends, its parent's keys still count.
            (r#"{"a":{"x":1},"b":{"x":2},"a":3}"#, ".a", "a"),
            // Keys compare by value, not by spelling.
            (r#"{"a":1,"\u0061":2}"#, ".a", "a"),
            (r#"{"a\"b":1,"a\u0022b":2}"#, r#".a"b"#, r#"a"b"#),
            (r#"{"":1,"":2}"#, ".", ""),
            ("{ \"a\" : 1 ,\n \"a\" : 2 }", ".a", "a"),
        ];
        for (text, path, key) in cases {
            assert_eq!(
                duplicate_at(text),
                (path.to_string(), key.to_string()),
                "{text}"
            );
        }
        let err = parse(r#"{"a":{"b":1,"b":2}}"#).unwrap_err();
        assert_eq!(err.path(), ".a.b");
        assert!(err.to_string().contains("`b`"), "{err}");
    }

    #[test]
    fn the_same_key_in_different_objects_is_fine() {
        for text in [
            r#"{"id":1,"child":{"id":2,"child":{"id":3}}}"#,
            r#"{"items":[{"id":1},{"id":2},{"id":3}]}"#,
            r#"{"a":"a","b":"a","ab":{"a":"b"}}"#,
            r#"{"a":1,"A":2,"a ":3,"\u0061b":4}"#,
            // Structural characters inside strings are not structure.
            r#"{"s":"}{,:[]\"\\","t":"\"a\":1,\"a\":2"}"#,
        ] {
            assert!(parse(text).is_ok(), "{text}");
        }
    }

    #[test]
    fn large_objects_are_checked_by_hash() {
        let members: Vec<String> = (0..5000).map(|i| format!("\"k{i}\":{i}")).collect();
        let text = format!("{{{}}}", members.join(","));
        assert!(parse(&text).is_ok());
        for dup in ["k0", "k15", "k16", "k17", "k4999"] {
            let text = format!("{{{},\"{dup}\":0}}", members.join(","));
            assert_eq!(duplicate_at(&text), (format!(".{dup}"), dup.to_string()));
        }
    }

    #[test]
    fn lone_surrogates_are_refused_with_their_path() {
        let cases = [
            (r#"{"s":"\ud800"}"#, ".s", r"\ud800"),
            (r#"{"s":"x\uDBFFy"}"#, ".s", r"\uDBFF"),
            (r#"{"s":"\udc00"}"#, ".s", r"\udc00"),
            (r#"{"s":"\ud800\u0041"}"#, ".s", r"\ud800"),
            (r#"{"a":[1,"ok","\ude00"]}"#, ".a[2]", r"\ude00"),
            (r#"{"o":{"\ud800":1}}"#, ".o", r"\ud800"),
        ];
        for (text, path, escape) in cases {
            assert_eq!(
                parse(text),
                Err(DataError::LoneSurrogate {
                    path: path.to_string(),
                    escape: escape.to_string()
                }),
                "{text}"
            );
        }
        assert!(parse(r#"{"s":"\ud83d\ude00\uD83D\uDE00"}"#).is_ok());
    }

    #[test]
    fn nesting_is_bounded_by_what_receivers_parse() {
        // `data` nested MAX_DEPTH deep: `{"a":[[...[]...]]}`.
        let nested = |depth: usize| {
            format!(
                "{{\"a\":{}{}}}",
                "[".repeat(depth - 1),
                "]".repeat(depth - 1)
            )
        };
        let deepest = parse(&nested(MAX_DEPTH)).unwrap();
        // The body it is delivered in still parses with serde_json's
        // defaults; one level more would not.
        let body = format!("{{\"id\":\"evt_1\",\"data\":{}}}", deepest.as_str());
        assert!(serde_json::from_str::<serde_json::Value>(&body).is_ok());
        let deeper = format!("{{\"id\":\"evt_1\",\"data\":{}}}", nested(MAX_DEPTH + 1));
        assert!(serde_json::from_str::<serde_json::Value>(&deeper).is_err());

        let err = parse(&nested(MAX_DEPTH + 1)).unwrap_err();
        let mut path = ".a".to_string();
        path.push_str(&"[0]".repeat(MAX_DEPTH - 1));
        assert_eq!(err, DataError::TooDeep { path });
        // Empty containers count as a level too.
        let empty = format!(
            "{{\"a\":{}{{}}{}}}",
            "[".repeat(MAX_DEPTH - 2),
            "]".repeat(MAX_DEPTH - 2)
        );
        assert!(parse(&empty).is_ok());
        let empty = format!(
            "{{\"a\":{}{{}}{}}}",
            "[".repeat(MAX_DEPTH - 1),
            "]".repeat(MAX_DEPTH - 1)
        );
        assert!(matches!(parse(&empty), Err(DataError::TooDeep { .. })));
    }

    #[test]
    fn values_hookfleet_builds_become_data() {
        let value = serde_json::json!({"endpoint_id": "ep_1", "attempts": 3, "n": null});
        let data = EventData::from_value(&value).unwrap();
        assert_eq!(
            data.as_str(),
            r#"{"endpoint_id":"ep_1","attempts":3,"n":null}"#
        );
        assert_eq!(
            EventData::from_value(&serde_json::json!([1])),
            Err(DataError::NotObject)
        );
    }
}
