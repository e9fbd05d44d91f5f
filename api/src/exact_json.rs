//! `ExactJson<T>`: a JSON response written by serde, for the responses
//! that carry an event's data.
//!
//! poem-openapi's `Json<T>` first converts `T` into a `serde_json::Value`
//! (`ToJSON`), which would turn the numbers of `data` into `f64`, `i64` or
//! `u64` (`hookfleet_common::event_data` says what that changes). This
//! payload serializes `T` with serde instead, so a
//! [`RawData`](crate::event_data::RawData) in it is written as its text;
//! its schema and documented response are those `Json<T>` would have.
//! A field that is a plain poem-openapi object is best written through
//! its `ToJSON` with [`via_to_json`], so that it reads exactly as on every
//! other route.

use poem::http::StatusCode;
use poem::{IntoResponse, Response};
use poem_openapi::payload::Payload;
use poem_openapi::registry::{MetaMediaType, MetaResponse, MetaResponses, MetaSchemaRef, Registry};
use poem_openapi::types::{ToJSON, Type};
use poem_openapi::ApiResponse;
use serde::{Serialize, Serializer};

use crate::error::ErrorBody;

/// A `200` JSON response of type `T`, written by serde.
pub struct ExactJson<T>(pub T);

const CONTENT_TYPE: &str = "application/json; charset=utf-8";

impl<T: Type> Payload for ExactJson<T> {
    const CONTENT_TYPE: &'static str = CONTENT_TYPE;

    fn check_content_type(content_type: &str) -> bool {
        let essence = content_type.split(';').next().unwrap_or("").trim();
        essence.eq_ignore_ascii_case("application/json")
    }

    fn schema_ref() -> MetaSchemaRef {
        T::schema_ref()
    }

    fn register(registry: &mut Registry) {
        T::register(registry);
    }
}

impl<T: Serialize + Send> IntoResponse for ExactJson<T> {
    fn into_response(self) -> Response {
        match serde_json::to_vec(&self.0) {
            Ok(body) => Response::builder().content_type(CONTENT_TYPE).body(body),
            // Not expected: text, numbers and `RawValue`s always serialize.
            Err(err) => {
                tracing::warn!(error = %err, "a response could not be written");
                let body = ErrorBody {
                    code: "internal".into(),
                    message: "the response could not be written".into(),
                    field: None,
                };
                Response::builder()
                    .status(StatusCode::INTERNAL_SERVER_ERROR)
                    .content_type(CONTENT_TYPE)
                    .body(serde_json::to_string(&body).unwrap_or_default())
            }
        }
    }
}

impl<T: Type + Serialize + Send> ApiResponse for ExactJson<T> {
    fn meta() -> MetaResponses {
        MetaResponses {
            responses: vec![MetaResponse {
                description: "",
                status: Some(200),
                status_range: None,
                content: vec![MetaMediaType {
                    content_type: CONTENT_TYPE,
                    schema: Self::schema_ref(),
                }],
                headers: vec![],
            }],
        }
    }

    fn register(registry: &mut Registry) {
        T::register(registry);
    }
}

/// Serializes a field through poem-openapi's `ToJSON`, as `Json<T>` would
/// (`#[serde(serialize_with = "via_to_json")]`).
pub fn via_to_json<T: ToJSON, S: Serializer>(value: &T, serializer: S) -> Result<S::Ok, S::Error> {
    value.to_json().serialize(serializer)
}
