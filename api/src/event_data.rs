//! [`RawData`]: an event's `data` as it crosses the API, as JSON text
//! rather than a parsed value, so that nothing on the way can change it
//! (`hookfleet_common::event_data` says what a `serde_json::Value` would
//! change).
//!
//! In a request it is what the client sent, captured by serde_json while
//! [`JsonBody`](crate::body::JsonBody) parses the body, and not yet
//! checked: a handler turns it into an [`EventData`] with
//! [`RawData::check`], whose refusal names the field and the path inside
//! it (`events[3].data.items[2].id`). In a response
//! (`GET /api/v1/events/{id}`) it is the text stored with the event,
//! written out unchanged by [`ExactJson`](crate::exact_json::ExactJson).
//!
//! Its OpenAPI schema is a JSON object, carrying the description of the
//! field that holds it. poem-openapi's own conversions (`ParseFromJSON`,
//! `ToJSON`) go through a `Value`, so they serve the spec's examples only;
//! no request or response with data passes through them.

use std::borrow::Cow;

use hookfleet_common::event_data::EventData;
use poem_openapi::registry::{MetaSchema, MetaSchemaRef};
use poem_openapi::types::{ParseError, ParseFromJSON, ParseResult, ToJSON, Type};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;

use crate::error::ApiError;

/// An event's `data` as JSON text: a request's, unchecked, or a stored
/// event's.
#[derive(Debug, Clone)]
pub struct RawData(Box<RawValue>);

impl RawData {
    /// Checks a request's `data` and parses it into the type publishing
    /// takes. `prefix` places the field as in the request's other errors
    /// (`""` for a body's own `data`, `"events[3]."` in a batch); a refusal
    /// is a 422 naming it and the path inside it (`data.items[2].id`).
    pub fn check(self, prefix: &str) -> Result<EventData, ApiError> {
        EventData::parse(self.0).map_err(|err| {
            ApiError::invalid(format!("{prefix}data{}", err.path()), err.to_string())
        })
    }

    /// A stored event's data, to answer with.
    pub fn stored(raw: &RawValue) -> Self {
        RawData(raw.to_owned())
    }

    /// Data for the spec's examples.
    pub fn example(value: serde_json::Value) -> Self {
        // A `Value` always serializes; `null` only keeps this total.
        let raw =
            serde_json::value::to_raw_value(&value).unwrap_or_else(|_| RawValue::NULL.to_owned());
        RawData(raw)
    }

    /// The JSON text.
    pub fn as_str(&self) -> &str {
        self.0.get()
    }
}

impl<'de> Deserialize<'de> for RawData {
    /// Captures the value's text, as sent (serde_json has checked its
    /// syntax); nothing else.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Box::<RawValue>::deserialize(deserializer).map(RawData)
    }
}

impl Serialize for RawData {
    /// Writes the text verbatim.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

impl Type for RawData {
    const IS_REQUIRED: bool = true;

    type RawValueType = Self;

    type RawElementValueType = Self;

    fn name() -> Cow<'static, str> {
        "object".into()
    }

    fn schema_ref() -> MetaSchemaRef {
        MetaSchemaRef::Inline(Box::new(MetaSchema::new("object")))
    }

    fn as_raw_value(&self) -> Option<&Self::RawValueType> {
        Some(self)
    }

    fn raw_element_iter<'a>(
        &'a self,
    ) -> Box<dyn Iterator<Item = &'a Self::RawElementValueType> + 'a> {
        Box::new(self.as_raw_value().into_iter())
    }
}

impl ParseFromJSON for RawData {
    fn parse_from_json(value: Option<serde_json::Value>) -> ParseResult<Self> {
        serde_json::value::to_raw_value(&value.unwrap_or_default())
            .map(RawData)
            .map_err(ParseError::custom)
    }
}

impl ToJSON for RawData {
    /// The text as a `Value`, for the spec's examples. Lossy for numbers a
    /// `Value` cannot hold, which is why no response with data uses it.
    fn to_json(&self) -> Option<serde_json::Value> {
        serde_json::from_str(self.as_str()).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(text: &str) -> RawData {
        serde_json::from_str(text).unwrap()
    }

    fn field_and_message(err: ApiError) -> (String, String) {
        let body = err.into_body();
        (body.field.unwrap_or_default(), body.message)
    }

    #[test]
    fn a_refusal_names_the_field_and_the_path_inside_it() {
        let err = raw(r#"{"a":{"b":1,"b":2}}"#)
            .check("events[3].")
            .unwrap_err();
        assert_eq!(err.status(), poem::http::StatusCode::UNPROCESSABLE_ENTITY);
        let (field, message) = field_and_message(err);
        assert_eq!(field, "events[3].data.a.b");
        assert!(
            message.starts_with("events[3].data.a.b: the key `b`"),
            "{message}"
        );
        let (field, message) = field_and_message(raw("[1]").check("").unwrap_err());
        assert_eq!(field, "data");
        assert_eq!(message, "data: must be a JSON object");
    }

    #[test]
    fn text_is_kept_from_request_to_response() {
        let text = r#"{"n": 1e400, "z": -0}"#;
        let data = raw(text);
        assert_eq!(data.as_str(), text);
        assert_eq!(serde_json::to_string(&data).unwrap(), text);
        assert_eq!(data.check("").unwrap().as_str(), text);
    }
}
