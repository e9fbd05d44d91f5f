//! `JsonBody<T>`: the JSON request body extractor every operation uses.
//!
//! poem-openapi's own `Json<T>` reports type errors without saying which
//! field was wrong. This one documents the same schema (`T`'s) but parses with
//! serde through `serde_path_to_error`, so a wrong type, a missing field or an
//! unknown field becomes a 422 that names the field. It also enforces
//! `HOOKFLEET_MAX_PAYLOAD` (413) while reading, so a huge body is refused
//! before it is held in memory; invalid JSON or UTF-8 is a 400.

use poem::{IntoResponse, Request, RequestBody};
use poem_openapi::payload::{ParsePayload, Payload};
use poem_openapi::registry::{MetaSchemaRef, Registry};
use poem_openapi::types::Type;
use serde::de::DeserializeOwned;

use crate::error::ApiError;
use crate::state::AppState;

/// A JSON body of type `T`, parsed with field-naming errors.
pub struct JsonBody<T>(pub T);

impl<T: Type> Payload for JsonBody<T> {
    const CONTENT_TYPE: &'static str = "application/json";

    fn check_content_type(content_type: &str) -> bool {
        let essence = content_type.split(';').next().unwrap_or("").trim();
        essence.eq_ignore_ascii_case("application/json")
            || essence.to_ascii_lowercase().ends_with("+json")
    }

    fn schema_ref() -> MetaSchemaRef {
        T::schema_ref()
    }

    fn register(registry: &mut Registry) {
        T::register(registry);
    }
}

fn reject(error: ApiError) -> poem::Error {
    poem::Error::from_response(error.into_response())
}

impl<T: Type + DeserializeOwned + Send> ParsePayload for JsonBody<T> {
    const IS_REQUIRED: bool = true;

    async fn from_request(request: &Request, body: &mut RequestBody) -> poem::Result<Self> {
        let limit = request
            .data::<AppState>()
            .map(|state| state.store.config.max_payload)
            .unwrap_or(256 * 1024);
        let raw = body.take()?;
        let bytes = raw.into_bytes_limit(limit).await.map_err(|err| match err {
            poem::error::ReadBodyError::PayloadTooLarge => reject(ApiError::too_large(limit)),
            other => reject(ApiError::bad_request(format!(
                "cannot read the body: {other}"
            ))),
        })?;
        parse_json::<T>(&bytes).map(JsonBody).map_err(reject)
    }
}

/// Parses `bytes` as `T`, naming the field at fault on error.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request(
            "the request body is empty; send a JSON object",
        ));
    }
    // Syntax first (cheap: nothing is built), so malformed JSON is always a
    // 400 even when its first part would also be a 422.
    if let Err(err) = serde_json::from_slice::<serde::de::IgnoredAny>(bytes) {
        return Err(ApiError::bad_request(format!(
            "the body is not valid JSON: {err}"
        )));
    }
    // serde would build a struct from an array; the API takes objects only.
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(ApiError::invalid("body", "the body must be a JSON object"));
    }
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let parsed: Result<T, _> = serde_path_to_error::deserialize(&mut deserializer);
    let value = match parsed {
        Ok(value) => value,
        Err(err) => {
            let path = err.path().to_string();
            let inner = err.into_inner();
            return Err(match inner.classify() {
                serde_json::error::Category::Data => {
                    let message = inner.to_string();
                    let message = strip_position(&message);
                    // serde reports a missing field at its parent's path and
                    // names it in backticks; every other error's path is the
                    // field itself.
                    let root = path == "." || path.is_empty();
                    let field = if message.starts_with("missing field") {
                        match (field_from_message(message), root) {
                            (Some(name), true) => name,
                            (Some(name), false) => format!("{path}.{name}"),
                            (None, _) => path,
                        }
                    } else if root {
                        field_from_message(message).unwrap_or_else(|| "body".into())
                    } else {
                        path
                    };
                    ApiError::invalid(field, message.to_string())
                }
                _ => ApiError::bad_request(format!("the body is not valid JSON: {inner}")),
            });
        }
    };
    // Trailing garbage after the value is malformed JSON too.
    if deserializer.end().is_err() {
        return Err(ApiError::bad_request(
            "the body has trailing characters after the JSON value",
        ));
    }
    Ok(value)
}

fn strip_position(message: &str) -> &str {
    match message.find(" at line ") {
        Some(at) => &message[..at],
        None => message,
    }
}

fn field_from_message(message: &str) -> Option<String> {
    let start = message.find('`')?;
    let len = message[start + 1..].find('`')?;
    Some(message[start + 1..start + 1 + len].to_string())
}

poem_openapi::impl_apirequest_for_payload!(JsonBody<T>, T: Type + DeserializeOwned + Send);
