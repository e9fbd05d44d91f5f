//! One error type for the whole API, mapped to HTTP in one place.
//!
//! Every error response has the body `{"code", "message", "field"?}`:
//! `code` is machine-readable and stable, `message` is for people, `field`
//! names the input at fault (`url`, `events[2]`, `headers.X-Foo`). Errors
//! raised by the framework itself (unknown route, missing `Authorization`,
//! a bad query parameter) are rewritten into the same shape by
//! [`json_error`], and those hyper raises before routing (a request it
//! cannot parse) by [`crate::framing`], so clients never see plain text or
//! an empty error.

use poem::http::StatusCode;
use poem::Response;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object};

/// The body of every error response.
#[derive(Debug, Clone, Object, serde::Serialize, serde::Deserialize)]
#[oai(example)]
pub struct ErrorBody {
    /// Machine-readable error code, e.g. `invalid_field`, `not_found`,
    /// `unauthorized`, `payload_too_large`, `unavailable`.
    pub code: String,
    /// What went wrong, for people.
    pub message: String,
    /// The request field at fault, when there is one (`url`, `events[1]`,
    /// `headers.X-Team`, `rate_limit`).
    #[oai(skip_serializing_if_is_none)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

impl poem_openapi::types::Example for ErrorBody {
    fn example() -> Self {
        ErrorBody {
            code: "invalid_field".into(),
            message: "url: the scheme must be http or https".into(),
            field: Some("url".into()),
        }
    }
}

impl ErrorBody {
    /// The body for a request hyper refused while parsing it, before any
    /// route ran (hyper sends these with no body; [`crate::framing`] adds
    /// this one). `None` for a status hyper does not answer parse errors
    /// with. Hyper does not say which part was malformed, so neither can we.
    pub fn unparsable_request(status: StatusCode) -> Option<ErrorBody> {
        let (code, message) = match status {
            StatusCode::BAD_REQUEST => (
                "bad_request",
                "the request is not valid HTTP/1.1: its request line or a header is malformed (e.g. a Content-Length that is not a number, or two that disagree)",
            ),
            StatusCode::URI_TOO_LONG => (
                "uri_too_long",
                "the request URI is longer than the server accepts",
            ),
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => (
                "headers_too_large",
                "the request's headers are too large or too many for the server to read",
            ),
            _ => return None,
        };
        Some(ErrorBody {
            code: code.into(),
            message: message.into(),
            field: None,
        })
    }
}

/// Every error an operation can answer with.
#[derive(Debug, ApiResponse)]
pub enum ApiError {
    /// The request could not be read: the body is not JSON, or a header or
    /// parameter is malformed.
    #[oai(status = 400)]
    BadRequest(Json<ErrorBody>),
    /// No API key, or one that is unknown or revoked.
    #[oai(status = 401)]
    Unauthorized(Json<ErrorBody>),
    /// The key is valid but may not do this: it lacks the scope the
    /// operation needs (`publish`, `manage` or `read`; the message names
    /// it), or it is a portal session and the operation is outside its
    /// portal. Nothing was written.
    #[oai(status = 403)]
    Forbidden(Json<ErrorBody>),
    /// No such resource: unknown, deleted, past its retention period, or
    /// (on tenant routes) another tenant's, which is reported the same way
    /// so that ids do not leak.
    #[oai(status = 404)]
    NotFound(Json<ErrorBody>),
    /// The request conflicts with the resource's state (e.g. it exists).
    #[oai(status = 409)]
    Conflict(Json<ErrorBody>),
    /// The body is larger than `HOOKFLEET_MAX_PAYLOAD` (256 KiB by default).
    #[oai(status = 413)]
    PayloadTooLarge(Json<ErrorBody>),
    /// The body is JSON but a field is missing, unknown, of the wrong type or
    /// invalid; `field` names it. Nothing was written.
    #[oai(status = 422)]
    Invalid(Json<ErrorBody>),
    /// Too many requests: this API key has used its request budget
    /// (`HOOKFLEET_API_RATE_LIMIT` per second; code `rate_limited`), or, for
    /// a test send, the tenant has `HOOKFLEET_TEST_SEND_MAX_PENDING` test
    /// sends waiting for their attempts (code `too_many_test_sends`), or
    /// a publish would pass the tenant's cap on retained events (code
    /// `quota_exceeded`, naming the cap; nothing is written). Retry after
    /// `Retry-After` seconds.
    #[oai(status = 429)]
    TooManyRequests(
        Json<ErrorBody>,
        /// Seconds to wait before retrying.
        #[oai(header = "Retry-After")]
        u64,
    ),
    /// Redis is unreachable. Retry later; when publishing, retry with the
    /// same `Idempotency-Key`: an event whose fan-out was interrupted is then
    /// completed, not created twice.
    #[oai(status = 503)]
    Unavailable(Json<ErrorBody>),
}

/// The two kinds of API key (see `auth.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// A tenant's `hf_…` key: every route under a tenant.
    Tenant,
    /// `HOOKFLEET_ADMIN_KEY`: tenants and their keys.
    Admin,
}

fn body(code: &str, message: impl Into<String>, field: Option<String>) -> Json<ErrorBody> {
    Json(ErrorBody {
        code: code.into(),
        message: message.into(),
        field,
    })
}

impl ApiError {
    /// 422 naming `field`.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        let field = field.into();
        let message = format!("{field}: {}", message.into());
        ApiError::Invalid(body("invalid_field", message, Some(field)))
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError::BadRequest(body("bad_request", message, None))
    }

    /// 400 for a bad query or path parameter, naming it.
    pub fn bad_param(field: impl Into<String>, message: impl Into<String>) -> Self {
        let field = field.into();
        let message = format!("{field}: {}", message.into());
        ApiError::BadRequest(body("invalid_parameter", message, Some(field)))
    }

    pub fn bad_header(field: impl Into<String>, message: impl Into<String>) -> Self {
        let field = field.into();
        let message = format!("{field}: {}", message.into());
        ApiError::BadRequest(body("invalid_header", message, Some(field)))
    }

    pub fn unauthorized() -> Self {
        ApiError::Unauthorized(body(
            "unauthorized",
            "missing, unknown or revoked API key (send `Authorization: Bearer <key>`)",
            None,
        ))
    }

    /// 401 for a valid key of the other kind: the admin key on a tenant
    /// route, or a tenant key on an admin route.
    pub fn wrong_key_kind(needed: KeyKind) -> Self {
        let message = match needed {
            KeyKind::Tenant => "this is the admin key; this route needs a tenant API key (`hf_…`, created with POST /api/v1/tenants/{tenant_id}/api-keys)",
            KeyKind::Admin => "this is a tenant API key; this route needs the admin key (HOOKFLEET_ADMIN_KEY)",
        };
        ApiError::Unauthorized(body("unauthorized", message, None))
    }

    /// 401 for a portal link or session that has expired or was revoked.
    pub fn portal_expired() -> Self {
        ApiError::Unauthorized(body(
            "unauthorized",
            "this portal link has expired or was revoked",
            None,
        ))
    }

    /// 403 `forbidden`: a valid key that may not do this.
    pub fn forbidden(message: impl Into<String>) -> Self {
        ApiError::Forbidden(body("forbidden", message, None))
    }

    pub fn not_found(what: &str) -> Self {
        ApiError::NotFound(body("not_found", format!("{what} not found"), None))
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        ApiError::Conflict(body("conflict", message, None))
    }

    pub fn too_large(limit: usize) -> Self {
        ApiError::PayloadTooLarge(body(
            "payload_too_large",
            format!("the request body is larger than {limit} bytes"),
            None,
        ))
    }

    pub fn too_many_requests(retry_after_s: u64) -> Self {
        ApiError::TooManyRequests(
            body(
                "rate_limited",
                format!("too many requests for this API key; retry after {retry_after_s}s"),
                None,
            ),
            retry_after_s,
        )
    }

    /// 429: the tenant has `cap` test sends waiting already.
    pub fn too_many_test_sends(cap: u32, retry_after_s: u64) -> Self {
        ApiError::TooManyRequests(
            body(
                "too_many_test_sends",
                format!(
                    "this tenant has {cap} test sends waiting for their attempts (the most allowed); retry after {retry_after_s}s"
                ),
                None,
            ),
            retry_after_s,
        )
    }

    /// 429: storing the events would pass the tenant's cap on retained
    /// events (`cap`; `kept` counted now). Nothing was written.
    pub fn quota_exceeded(cap: u64, kept: u64, retry_after_s: u64) -> Self {
        ApiError::TooManyRequests(
            body(
                "quota_exceeded",
                format!(
                    "this tenant may keep at most {cap} events (max_retained_events) and keeps {kept}; nothing was published. The oldest leave the count in {retry_after_s}s, or the operator may raise the cap"
                ),
                Some("max_retained_events".into()),
            ),
            retry_after_s,
        )
    }

    pub fn unavailable() -> Self {
        ApiError::Unavailable(body(
            "unavailable",
            "the store is unreachable; retry later (publish with an Idempotency-Key so a retry cannot create the event twice)",
            None,
        ))
    }

    /// The error's JSON body (for per-item results of a batch).
    pub fn into_body(self) -> ErrorBody {
        match self {
            ApiError::BadRequest(b)
            | ApiError::Unauthorized(b)
            | ApiError::Forbidden(b)
            | ApiError::NotFound(b)
            | ApiError::Conflict(b)
            | ApiError::PayloadTooLarge(b)
            | ApiError::Invalid(b)
            | ApiError::TooManyRequests(b, _)
            | ApiError::Unavailable(b) => b.0,
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::TooManyRequests(..) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

impl From<hookfleet_common::redis_pool::PoolError> for ApiError {
    fn from(err: hookfleet_common::redis_pool::PoolError) -> Self {
        tracing::warn!(error = %err, "redis pool error");
        ApiError::unavailable()
    }
}

impl From<redis::RedisError> for ApiError {
    fn from(err: redis::RedisError) -> Self {
        tracing::warn!(error = %err, "redis error");
        ApiError::unavailable()
    }
}

/// Rewrites any error that reaches the top of the router into the JSON
/// error shape (errors from our handlers already have it and pass through).
/// What each query or header parameter of the API takes, for errors the
/// framework raises before a handler runs (the names are the same wherever
/// a parameter appears).
pub fn parameter_rule(name: &str) -> Option<&'static str> {
    Some(match name {
        "limit" => "must be a whole number from 1 to 250",
        "cursor" => "not a cursor returned by this API (pass the `next` of the previous page)",
        "status" => "must be pending, in_flight, scheduled, held, delivered, failed or cancelled",
        "event_type" => {
            "must be an event type name: 1 to 128 letters, digits, `_` or `-`, in parts separated by dots"
        }
        "since" | "until" => "must be an RFC 3339 time, e.g. 2026-01-31T12:00:00Z",
        "response" => {
            "must be a status code (404), a class (1xx to 5xx), timeout or connect_error"
        }
        "outcome" => "must be `failed` (events with a delivery that ended failed)",
        "window" => "must be 1h, 24h or 7d",
        "series" => "must be true or false",
        "tenant_id" => "must be a tenant id (`ten_…`)",
        "Idempotency-Key" => "must be 1 to 255 visible ASCII characters",
        _ => return None,
    })
}

pub async fn json_error(err: poem::Error) -> Response {
    let status = err.status();
    let text = err.to_string();
    let response = err.into_response();
    let is_json = response
        .content_type()
        .is_some_and(|ct| ct.starts_with("application/json"));
    if is_json {
        return response;
    }
    let (code, field) = match status {
        StatusCode::BAD_REQUEST => match backticked(&text) {
            Some(field) => ("invalid_parameter", Some(field)),
            None => ("bad_request", None),
        },
        StatusCode::UNAUTHORIZED => ("unauthorized", None),
        StatusCode::NOT_FOUND => ("not_found", None),
        StatusCode::METHOD_NOT_ALLOWED => ("method_not_allowed", None),
        StatusCode::PAYLOAD_TOO_LARGE => ("payload_too_large", None),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ("unsupported_media_type", None),
        s if s.is_server_error() => ("internal", None),
        _ => ("error", None),
    };
    // A query or header parameter the framework refused (its type or a
    // validator): say what the parameter takes, in the same words our own
    // checks use, instead of the validator's text.
    let friendly = match (&field, status) {
        (Some(name), StatusCode::BAD_REQUEST) => {
            parameter_rule(name).map(|rule| format!("{name}: {rule}"))
        }
        _ => None,
    };
    let message = match status {
        _ if friendly.is_some() => friendly.unwrap_or_default(),
        StatusCode::UNAUTHORIZED => {
            "missing, unknown or revoked API key (send `Authorization: Bearer <key>`)".to_string()
        }
        StatusCode::NOT_FOUND => "no such route".to_string(),
        _ if text.is_empty() => status.canonical_reason().unwrap_or("error").to_string(),
        _ => text,
    };
    let body = ErrorBody {
        code: code.into(),
        message,
        field,
    };
    let json = serde_json::to_string(&body).unwrap_or_default();
    Response::builder()
        .status(status)
        .content_type("application/json; charset=utf-8")
        .body(json)
}

/// poem-openapi names a bad parameter in backticks; lift it out as `field`.
fn backticked(text: &str) -> Option<String> {
    let start = text.find('`')?;
    let len = text[start + 1..].find('`')?;
    Some(text[start + 1..start + 1 + len].to_string())
}
