//! The published OpenAPI document: what poem-openapi derives from the
//! routes and types, completed once at start-up with what its attributes
//! cannot say, so that the spec is exactly what the server enforces.
//!
//! - **Errors per operation.** An operation's error type is one enum
//!   ([`ApiError`](crate::error::ApiError)), so poem-openapi lists all its
//!   statuses everywhere. Each operation keeps only those it can answer
//!   with, worked out from its shape: a body can be malformed (400), too
//!   large (413), of another media type (415) or invalid (422); a query or
//!   header parameter can be malformed (400); a path names something that
//!   may not exist (404); a key can be missing (401), lack the scope the
//!   operation needs (403, on routes that take tenant keys) or be over its
//!   budget (429); Redis can be down (503). 409 is listed where a handler reports
//!   a conflict ([`CONFLICTS`]). Each error response gets its own example.
//! - **Request bodies refuse unknown fields** (`additionalProperties:
//!   false`), as their types do with `deny_unknown_fields`.
//! - **Constraints checked by our own code** that poem-openapi has no
//!   attribute for: JSON-object fields, RFC 3339 times (`date-time`, in
//!   requests and responses), and the endpoint timeout's maximum, which
//!   follows the configured lease.
//! - **Enums.** A `pattern` that only lists words (`^(1h|24h|7d)$`) becomes
//!   the `enum` it means, which Swagger UI shows as a choice and client
//!   generators as an enum type. On parameters the validator still
//!   enforces it; on response fields it documents the values the server
//!   sends (schemathesis checks every response against them).
//!
//! Request bodies are parsed by serde ([`JsonBody`](crate::body::JsonBody)),
//! so `#[oai(validator(...))]` on their fields only documents; the checks
//! live in `input.rs` and the handlers. Validators on query and header
//! parameters are enforced by poem-openapi too (a 400 naming the parameter).
//!
//! A patch whose target is missing fails start-up, so renaming a field or
//! an operation cannot silently drop its documentation.

use poem::http::HeaderMap;
use serde_json::{json, Map, Value};

use hookfleet_common::{catalog, Config};

/// An operation that can answer 409 Conflict.
pub struct Conflict {
    pub operation: &'static str,
    /// When it does, for the response's description.
    pub when: &'static str,
    /// One of the messages it answers with, for the example.
    pub message: &'static str,
}

/// Every operation whose handler reports a conflict.
pub const CONFLICTS: &[Conflict] = &[
    Conflict {
        operation: "create_webhook",
        when: "The tenant already has the most webhooks allowed (1000).",
        message: "a tenant may have at most 1000 webhooks",
    },
    Conflict {
        operation: "test_webhook",
        when: "The webhook is disabled; enable it first.",
        message: "the webhook is disabled; enable it to send a test",
    },
    Conflict {
        operation: "replay_webhook",
        when: "The webhook is disabled (enable it first), or another replay of it is running.",
        message: "the webhook is disabled; enable it to replay",
    },
    Conflict {
        operation: "cancel_replay",
        when: "The replay has already ended (completed or cancelled).",
        message: "the replay has already ended (completed)",
    },
    Conflict {
        operation: "retry_delivery",
        when: "The delivery was cancelled, is being attempted right now, or its webhook is disabled or deleted.",
        message: "the delivery is being attempted right now",
    },
    Conflict {
        operation: "create_event_type",
        when: "An event type of that name exists (built-in or the tenant's own).",
        message: "event type `invoice.paid` exists",
    },
    Conflict {
        operation: "update_tenant",
        when: "Other changes of the tenant's retention or cap kept restarting its count of retained events; try again.",
        message: "the tenant's retention or cap kept changing meanwhile; try again",
    },
    Conflict {
        operation: "delete_event_type",
        when: "Built-in event types cannot be deleted.",
        message: "`user.created` is a built-in event type and cannot be deleted",
    },
];

/// Fields that must hold a JSON object (checked by the handlers); their
/// Rust type is `serde_json::Value`, which poem-openapi leaves untyped.
/// (Event data is a `RawData`, whose schema says it is an object.)
const OBJECT_FIELDS: &[(&str, &str)] = &[("CreateEventType", "example")];

/// Body fields that take an event type name (`catalog::NAME_PATTERN`).
const NAME_FIELDS: &[(&str, &str)] = &[
    ("CreateEventType", "name"),
    ("PublishEvent", "event_type"),
    ("BatchEvent", "event_type"),
    ("TestWebhook", "event_type"),
];

/// Fields holding an RFC 3339 time: parsed by our own code in requests,
/// written by `time_util::rfc3339_ms` in responses.
const TIME_FIELDS: &[(&str, &str)] = &[
    ("StartReplay", "since"),
    ("StartReplay", "until"),
    ("ApiKeyInfo", "created_at"),
    ("Attempt", "at"),
    ("HeadOfLine", "queued_at"),
    ("EventSummary", "created_at"),
    ("HeadOfLine", "next_attempt_at"),
    ("Attempt", "next_attempt_at"),
    ("CreatedApiKey", "created_at"),
    ("DeliverySummary", "created_at"),
    ("DeliverySummary", "last_attempt_at"),
    ("DeliverySummary", "next_attempt_at"),
    ("EventDetail", "created_at"),
    ("EventType", "created_at"),
    ("LastAttempt", "at"),
    ("Replay", "since"),
    ("Replay", "until"),
    ("Replay", "started_at"),
    ("Replay", "finished_at"),
    ("RotatedSecret", "previous_secret_expires_at"),
    ("Tenant", "created_at"),
    ("TenantDeletion", "requested_at"),
    ("Webhook", "created_at"),
    ("Webhook", "updated_at"),
    ("Worker", "started"),
    ("Worker", "last_heartbeat"),
    ("CreatedPortalLink", "expires_at"),
    ("Me", "expires_at"),
    ("PortalSession", "expires_at"),
    ("StatsBucket", "start"),
    ("PortalLinkInfo", "created_at"),
    ("PortalLinkInfo", "expires_at"),
];

/// Query parameters holding an RFC 3339 time.
const TIME_PARAMS: &[(&str, &str)] = &[
    ("list_deliveries", "since"),
    ("list_deliveries", "until"),
    ("list_webhook_deliveries", "since"),
    ("list_webhook_deliveries", "until"),
    ("list_events", "since"),
    ("list_events", "until"),
];

/// The finished document, and Swagger UI showing it.
pub struct Published {
    /// The document, as served at `/openapi.json`.
    pub json: String,
    /// The Swagger UI page served at `/docs`, with the document inlined.
    pub swagger_ui: String,
    /// Each path template: its segments, its methods (the `Allow` header
    /// of a 405) and its 404 message.
    pub templates: Vec<Template>,
    /// The header parameters of all operations.
    pub header_params: Vec<String>,
}

/// A path of the document, for routing questions the framework leaves
/// open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    pub segments: Vec<Segment>,
    /// Its methods as an `Allow` header lists them (`GET, HEAD`).
    pub allow: String,
    /// What its operations answer with 404 (`webhook not found`).
    pub not_found: &'static str,
}

impl Template {
    fn matches(&self, path: &[&str]) -> bool {
        self.segments.len() == path.len()
            && self.segments.iter().zip(path).all(|(t, s)| match t {
                Segment::Literal(lit) => lit == s,
                Segment::Param => !s.is_empty(),
            })
    }

    fn has_param(&self) -> bool {
        self.segments.iter().any(|t| matches!(t, Segment::Param))
    }
}

/// A segment of a path template: literal, or a `{parameter}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    Literal(String),
    Param,
}

impl Published {
    /// Completes the derived document (`derived`, poem-openapi's JSON) and
    /// puts it into Swagger UI's page (`swagger_ui`, which inlines
    /// `derived`).
    pub fn new(derived: &str, swagger_ui: &str, config: &Config) -> Result<Self, String> {
        let mut doc: Value = serde_json::from_str(derived)
            .map_err(|err| format!("the derived OpenAPI document is not JSON: {err}"))?;
        complete(&mut doc, config)?;
        let json = serde_json::to_string_pretty(&doc)
            .map_err(|err| format!("cannot serialise the OpenAPI document: {err}"))?;
        if !swagger_ui.contains(derived) {
            return Err("Swagger UI's page does not inline the derived document".into());
        }
        let swagger_ui = swagger_ui.replacen(derived, &json, 1);
        let templates = path_templates(&doc);
        let mut header_params: Vec<String> = operations_mut(&mut doc)
            .into_iter()
            .flat_map(|(_, _, op)| {
                op.get("parameters")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default()
            })
            .filter(|p| p.get("in").and_then(Value::as_str) == Some("header"))
            .filter_map(|p| p.get("name").and_then(Value::as_str).map(str::to_string))
            .collect();
        header_params.sort();
        header_params.dedup();
        Ok(Self {
            json,
            swagger_ui,
            templates,
            header_params,
        })
    }

    /// The first header parameter of the API that `headers` carry with a
    /// value that is not visible ASCII. poem-openapi would treat such a
    /// header as absent (an `Idempotency-Key` silently ignored); the API
    /// refuses the request instead.
    pub fn unreadable_header<'a>(&'a self, headers: &HeaderMap) -> Option<&'a str> {
        self.header_params
            .iter()
            .find(|name| {
                headers
                    .get_all(name.as_str())
                    .iter()
                    .any(|value| value.to_str().is_err())
            })
            .map(String::as_str)
    }

    /// When routing sent `method` on `path` to a literal route without
    /// it (`PATCH /api/v1/webhooks/events`), a template with a parameter
    /// that has the method and would take the path otherwise
    /// (`/api/v1/webhooks/{id}`): what that operation answers for an id
    /// that names nothing, its 404 message. `None` when no such template
    /// exists (a true 405).
    pub fn shadowed_not_found(&self, method: &str, path: &str) -> Option<&'static str> {
        let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
        self.templates
            .iter()
            .find(|t| {
                t.has_param() && t.matches(&segments) && t.allow.split(", ").any(|m| m == method)
            })
            .map(|t| t.not_found)
    }

    /// The `Allow` value for a request path: the methods of the template
    /// that routing picks for it (literal segments win over parameters).
    pub fn allow(&self, path: &str) -> Option<&str> {
        let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
        self.templates
            .iter()
            .filter(|t| t.matches(&segments))
            .min_by_key(|t| {
                t.segments
                    .iter()
                    .map(|s| matches!(s, Segment::Param))
                    .collect::<Vec<bool>>()
            })
            .map(|t| t.allow.as_str())
    }
}

fn path_templates(doc: &Value) -> Vec<Template> {
    let Some(paths) = doc.get("paths").and_then(Value::as_object) else {
        return Vec::new();
    };
    paths
        .iter()
        .map(|(path, item)| {
            let template = path
                .trim_matches('/')
                .split('/')
                .map(|s| {
                    if s.starts_with('{') {
                        Segment::Param
                    } else {
                        Segment::Literal(s.to_string())
                    }
                })
                .collect();
            let mut methods: Vec<String> = item
                .as_object()
                .map(|ops| ops.keys().map(|m| m.to_ascii_uppercase()).collect())
                .unwrap_or_default();
            if methods.iter().any(|m| m == "GET") {
                methods.push("HEAD".into());
            }
            Template {
                segments: template,
                allow: methods.join(", "),
                not_found: missing_resource(path),
            }
        })
        .collect()
}

/// Applies every completion to `doc`.
pub fn complete(doc: &mut Value, config: &Config) -> Result<(), String> {
    let schemas = schemas_mut(doc)?;
    for (schema, field) in OBJECT_FIELDS {
        property_mut(schemas, schema, field)?.insert("type".into(), json!("object"));
    }
    for (schema, field) in TIME_FIELDS {
        property_mut(schemas, schema, field)?.insert("format".into(), json!("date-time"));
    }
    // The timeout's ceiling depends on the lease (see input::timeout_ms).
    let max_timeout = config.lease.as_secs().saturating_sub(5).max(1);
    for schema in ["CreateWebhook", "UpdateWebhook"] {
        property_mut(schemas, schema, "timeout_s")?.insert("maximum".into(), json!(max_timeout));
    }
    // Event type names and subscriptions: one pattern each, from the
    // catalog whose checks apply them (body validators only document).
    for (schema, field) in NAME_FIELDS {
        property_mut(schemas, schema, field)?
            .insert("pattern".into(), json!(catalog::NAME_PATTERN));
    }
    for schema in ["CreateWebhook", "UpdateWebhook"] {
        let events = property_mut(schemas, schema, "events")?;
        let items = events
            .get_mut("items")
            .and_then(Value::as_object_mut)
            .ok_or_else(|| format!("{schema}.events has no items"))?;
        items.insert("pattern".into(), json!(catalog::SUBSCRIPTION_PATTERN));
    }
    // The URL's form is one rule with input::EndpointUrl, which applies it.
    for schema in ["CreateWebhook", "UpdateWebhook"] {
        property_mut(schemas, schema, "url")?
            .insert("pattern".into(), json!(crate::input::URL_PATTERN));
    }
    // Header names are HTTP tokens (input::HeaderList refuses anything
    // else); the reserved ones are named in the field's description.
    for schema in ["CreateWebhook", "UpdateWebhook"] {
        property_mut(schemas, schema, "headers")?.insert(
            "propertyNames".into(),
            json!({"pattern": "^[!#$%&'*+.^_`|~0-9A-Za-z-]+$", "minLength": 1}),
        );
    }
    // A portal link's lists: endpoint ids, and origins that go into a
    // `frame-ancestors` header as they are (routes::portal checks both).
    let link_lists = [
        ("endpoint_ids", r"^ep_[0-9a-hjkmnp-tv-z]+$", 64),
        (
            "allowed_origins",
            crate::routes::portal::input::ORIGIN_PATTERN,
            200,
        ),
    ];
    for (field, pattern, max) in link_lists {
        let items = property_mut(schemas, "CreatePortalLink", field)?
            .get_mut("items")
            .and_then(Value::as_object_mut)
            .ok_or_else(|| format!("CreatePortalLink.{field} has no items"))?;
        items.insert("pattern".into(), json!(pattern));
        items.insert("maxLength".into(), json!(max));
    }
    // Branding's patterns, as `routes::portal::input` applies them.
    for (field, pattern) in [
        ("logo_url", crate::routes::portal::input::LOGO_URL_PATTERN),
        ("accent_color", crate::routes::portal::input::COLOR_PATTERN),
    ] {
        property_mut(schemas, "PortalBranding", field)?.insert("pattern".into(), json!(pattern));
    }
    // Branding is an object of its own that refuses unknown fields.
    property_mut(schemas, "CreatePortalLink", "branding")?.insert("type".into(), json!("object"));
    schemas
        .get_mut("PortalBranding")
        .and_then(Value::as_object_mut)
        .ok_or("PortalBranding is missing")?
        .insert("additionalProperties".into(), json!(false));
    for (operation, param) in TIME_PARAMS {
        param_schema_mut(doc, operation, param)?.insert("format".into(), json!("date-time"));
    }
    patterns_to_enums(doc);
    order_tags(doc);
    let created = operations_mut(doc)
        .into_iter()
        .find(|(_, _, op)| op.get("operationId") == Some(&json!("create_webhook")))
        .and_then(|(_, _, op)| op.pointer_mut("/responses/201/content"))
        .and_then(Value::as_object_mut)
        .ok_or("create_webhook has no 201 response")?;
    for media in created.values_mut().filter_map(Value::as_object_mut) {
        media.insert("example".into(), crate::examples::created_webhook());
    }
    let mut request_schemas = Vec::new();
    for (_, _, op) in operations_mut(doc) {
        if let Some(name) = op
            .pointer("/requestBody/content/application~1json/schema/$ref")
            .and_then(Value::as_str)
            .and_then(|r| r.strip_prefix("#/components/schemas/"))
        {
            request_schemas.push(name.to_string());
        }
    }
    let schemas = schemas_mut(doc)?;
    for name in request_schemas {
        schemas
            .get_mut(&name)
            .and_then(Value::as_object_mut)
            .ok_or_else(|| format!("request schema {name} is missing"))?
            .insert("additionalProperties".into(), json!(false));
    }
    let mut conflicts_seen = Vec::new();
    for (path, method, op) in operations_mut(doc) {
        let id = op
            .get("operationId")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let conflict = CONFLICTS.iter().find(|c| c.operation == id);
        if conflict.is_some() {
            conflicts_seen.push(id.clone());
        }
        keep_applicable_errors(op, &method, &path, conflict)
            .map_err(|err| format!("{id}: {err}"))?;
    }
    for conflict in CONFLICTS {
        if !conflicts_seen.iter().any(|seen| seen == conflict.operation) {
            return Err(format!(
                "CONFLICTS names `{}`, which is no operation",
                conflict.operation
            ));
        }
    }
    Ok(())
}

/// Swagger UI shows the groups in the order of the spec's `tags`: the way
/// a user meets them (webhooks first, then publishing and following
/// events), the operator's groups after, health last.
fn order_tags(doc: &mut Value) {
    const ORDER: [&str; 8] = [
        "Webhooks",
        "Events",
        "Deliveries",
        "EventTypes",
        "Access",
        "Tenants",
        "Admin",
        "Health",
    ];
    if let Some(tags) = doc.get_mut("tags").and_then(Value::as_array_mut) {
        let rank = |tag: &Value| {
            let name = tag.get("name").and_then(Value::as_str).unwrap_or("");
            ORDER.iter().position(|n| *n == name).unwrap_or(ORDER.len())
        };
        tags.sort_by_key(rank);
    }
}

/// Replaces every `pattern` of the form `^(word|word|...)$` with the
/// equivalent `enum`, throughout the document. A nullable field's enum
/// lists `null` too: in OpenAPI 3.0 an enum without it refuses null,
/// which the field accepts (as "not sent").
fn patterns_to_enums(value: &mut Value) {
    match value {
        Value::Object(map) => {
            let words = map
                .get("pattern")
                .and_then(Value::as_str)
                .and_then(|p| p.strip_prefix("^("))
                .and_then(|p| p.strip_suffix(")$"))
                .map(|alternatives| {
                    alternatives
                        .split('|')
                        .map(str::to_string)
                        .collect::<Vec<_>>()
                })
                .filter(|words| {
                    words.iter().all(|w| {
                        !w.is_empty() && w.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                    })
                });
            if let Some(words) = words {
                map.remove("pattern");
                let mut values: Vec<Value> = words.into_iter().map(Value::String).collect();
                if map.get("nullable") == Some(&Value::Bool(true)) {
                    values.push(Value::Null);
                }
                map.insert("enum".into(), Value::Array(values));
            }
            map.values_mut().for_each(patterns_to_enums);
        }
        Value::Array(items) => items.iter_mut().for_each(patterns_to_enums),
        _ => {}
    }
}

fn schemas_mut(doc: &mut Value) -> Result<&mut Map<String, Value>, String> {
    doc.pointer_mut("/components/schemas")
        .and_then(Value::as_object_mut)
        .ok_or_else(|| "the document has no components.schemas".to_string())
}

fn property_mut<'a>(
    schemas: &'a mut Map<String, Value>,
    schema: &str,
    field: &str,
) -> Result<&'a mut Map<String, Value>, String> {
    schemas
        .get_mut(schema)
        .and_then(|s| s.get_mut("properties"))
        .and_then(|p| p.get_mut(field))
        .and_then(Value::as_object_mut)
        .ok_or_else(|| format!("schema {schema} has no property `{field}`"))
}

/// Every operation: (path, method, operation object).
fn operations_mut(doc: &mut Value) -> Vec<(String, String, &mut Value)> {
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (path, item) in paths.iter_mut() {
        if let Some(item) = item.as_object_mut() {
            for (method, op) in item.iter_mut() {
                out.push((path.clone(), method.clone(), op));
            }
        }
    }
    out
}

fn param_schema_mut<'a>(
    doc: &'a mut Value,
    operation: &str,
    param: &str,
) -> Result<&'a mut Map<String, Value>, String> {
    operations_mut(doc)
        .into_iter()
        .map(|(_, _, op)| op)
        .find(|op| op.get("operationId").and_then(Value::as_str) == Some(operation))
        .and_then(|op| op.get_mut("parameters"))
        .and_then(Value::as_array_mut)
        .and_then(|params| {
            params
                .iter_mut()
                .find(|p| p.get("name").and_then(Value::as_str) == Some(param))
        })
        .and_then(|p| p.get_mut("schema"))
        .and_then(Value::as_object_mut)
        .ok_or_else(|| format!("operation {operation} has no parameter `{param}`"))
}

/// What a 404 of the operation at `path` names: the resource of its
/// first path parameter.
fn missing_resource(path: &str) -> &'static str {
    let segments: Vec<&str> = path.split('/').collect();
    let parent = segments
        .iter()
        .position(|s| s.starts_with('{'))
        .and_then(|i| i.checked_sub(1))
        .and_then(|i| segments.get(i))
        .copied()
        .unwrap_or("");
    match parent {
        "tenants" => "tenant not found",
        "events" => "event (or it expired after the retention period) not found",
        "deliveries" => "delivery (or it expired after the retention period) not found",
        "event-types" => "event type not found",
        _ => "webhook not found",
    }
}

/// The 400 a bad `name` parameter gets (see `error::parameter_rule`).
fn parameter_error_example(name: &str) -> Value {
    let rule = crate::error::parameter_rule(name).unwrap_or("is not valid");
    json!({
        "code": "invalid_parameter",
        "message": format!("{name}: {rule}"),
        "field": name,
    })
}

/// An example body for an error status of the operation at `path`.
fn error_example(status: &str, method: &str, path: &str, conflict: Option<&Conflict>) -> Value {
    let scope_message;
    let (code, message, field) = match status {
        "403" => {
            let scope = crate::auth::scope_needed(
                &method
                    .to_ascii_uppercase()
                    .parse()
                    .unwrap_or(poem::http::Method::GET),
                path,
            )
            .unwrap_or(crate::auth::Scope::Read);
            scope_message = format!(
                "this API key lacks the `{}` scope this operation needs",
                scope.name()
            );
            ("forbidden", scope_message.as_str(), None)
        }
        "401" if path == "/api/v1/portal-sessions" => (
            "unauthorized",
            "this portal link has expired or was revoked",
            None,
        ),
        "400" => (
            "bad_request",
            "the body is not valid JSON: expected value at line 1 column 1",
            None,
        ),
        "401" => (
            "unauthorized",
            "missing, unknown or revoked API key (send `Authorization: Bearer <key>`)",
            None,
        ),
        "404" => ("not_found", missing_resource(path), None),
        "409" => (
            "conflict",
            conflict.map_or("conflict", |c| c.message),
            None,
        ),
        "413" => (
            "payload_too_large",
            "the request body is larger than 262144 bytes",
            None,
        ),
        "415" => (
            "unsupported_media_type",
            "the `Content-Type` requested by the client is not supported: text/plain",
            None,
        ),
        // What the batch route answers for the README's example (a test
        // there checks it against the API); elsewhere, what creating a
        // webhook with that type answers.
        "422" if path == "/api/v1/events/batch" => (
            "invalid_field",
            "events[1].event_type: unknown event type `nope.nope` (see GET /api/v1/webhooks/events)",
            Some("events[1].event_type"),
        ),
        "422" => (
            "invalid_field",
            "events[1]: unknown event type `nope.nope` (see GET /api/v1/webhooks/events)",
            Some("events[1]"),
        ),
        "429" => (
            "rate_limited",
            "too many requests for this API key; retry after 1s",
            None,
        ),
        _ => (
            "unavailable",
            "the store is unreachable; retry later (publish with an Idempotency-Key so a retry cannot create the event twice)",
            None,
        ),
    };
    let mut body = json!({"code": code, "message": message});
    if let (Some(field), Some(map)) = (field, body.as_object_mut()) {
        map.insert("field".into(), json!(field));
    }
    body
}

/// Keeps the error responses `op` can answer with (see the module doc),
/// adds 415 to operations with a body, and an example to each.
fn keep_applicable_errors(
    op: &mut Value,
    method: &str,
    path: &str,
    conflict: Option<&Conflict>,
) -> Result<(), String> {
    let params: Vec<String> = op
        .get("parameters")
        .and_then(Value::as_array)
        .map(|ps| {
            ps.iter()
                .filter_map(|p| p.get("in").and_then(Value::as_str).map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let has_body = op.get("requestBody").is_some();
    // A query or header parameter, for the 400 example of operations that
    // take no body.
    let first_param: Option<String> =
        op.get("parameters")
            .and_then(Value::as_array)
            .and_then(|ps| {
                ps.iter()
                    .filter(|p| {
                        matches!(
                            p.get("in").and_then(Value::as_str),
                            Some("query" | "header")
                        )
                    })
                    .find_map(|p| p.get("name").and_then(Value::as_str).map(str::to_string))
            });
    let has_path = params.iter().any(|p| p == "path");
    let has_other_params = params.iter().any(|p| p == "query" || p == "header");
    // Every secured operation reads Redis (the tenant key's lookup, or the
    // admin handlers' own reads); the unsecured ones are the health probes,
    // whose 503 is their own.
    let schemes: Vec<String> = op
        .get("security")
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .filter_map(Value::as_object)
                .flat_map(|s| s.keys().cloned())
                .collect()
        })
        .unwrap_or_default();
    let secured = !schemes.is_empty();
    let mut applicable = Vec::new();
    if has_body || has_other_params {
        applicable.push("400");
    }
    if secured {
        applicable.extend(["401", "429", "503"]);
    }
    // A tenant credential may lack the operation's scope, or be a portal
    // session the operation is closed to.
    let takes_tenant_keys = schemes.iter().any(|s| s == "ApiKey");
    if takes_tenant_keys && crate::auth::scope_needed(&poem::http::Method::GET, path).is_some() {
        applicable.push("403");
    }
    // Exchanging a portal link's token needs no key, but the token may be
    // expired or revoked, it is looked up in Redis, and the exchanges of
    // one link share its request budget.
    if path == "/api/v1/portal-sessions" {
        applicable.extend(["401", "429", "503"]);
    }
    if has_path {
        applicable.push("404");
    }
    if conflict.is_some() {
        applicable.push("409");
    }
    if has_body {
        applicable.extend(["413", "415", "422"]);
    }

    let responses = op
        .get_mut("responses")
        .and_then(Value::as_object_mut)
        .ok_or("no responses")?;
    let error_content = responses.get("400").and_then(|r| r.get("content")).cloned();
    let is_error_of_api = |status: &str, response: &Value| {
        status.starts_with('4')
            || (status == "503"
                && response
                    .pointer("/content/application~1json; charset=utf-8/schema/$ref")
                    .and_then(Value::as_str)
                    == Some("#/components/schemas/ErrorBody"))
    };
    responses.retain(|status, response| {
        !is_error_of_api(status, response) || applicable.contains(&status.as_str())
    });
    if has_body {
        let content = error_content.ok_or("no 400 response to model 415 on")?;
        responses.insert(
            "415".into(),
            json!({
                "description": "The body is not `application/json` (or has no `Content-Type`).",
                "content": content,
            }),
        );
    }
    if let (Some(conflict), Some(response)) = (conflict, responses.get_mut("409")) {
        if let Some(response) = response.as_object_mut() {
            response.insert("description".into(), json!(conflict.when));
        }
    }
    for (status, response) in responses.iter_mut() {
        if !applicable.contains(&status.as_str()) {
            continue;
        }
        if let Some(media) = response
            .pointer_mut("/content/application~1json; charset=utf-8")
            .and_then(Value::as_object_mut)
        {
            let example = match (status.as_str(), has_body, &first_param) {
                // Without a body, a 400 is about a parameter.
                ("400", false, Some(name)) => parameter_error_example(name),
                _ => error_example(status, method, path, conflict),
            };
            media.insert("example".into(), example);
        }
    }
    let mut sorted: Vec<(String, Value)> = std::mem::take(responses).into_iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    responses.extend(sorted);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allow_prefers_literal_segments() {
        let doc = json!({"paths": {
            "/api/v1/webhooks/{id}": {"get": {}, "patch": {}, "delete": {}},
            "/api/v1/webhooks/events": {"get": {}},
            "/api/v1/webhooks": {"get": {}, "post": {}},
        }});
        let published = Published {
            json: String::new(),
            swagger_ui: String::new(),
            templates: path_templates(&doc),
            header_params: Vec::new(),
        };
        assert_eq!(
            published.allow("/api/v1/webhooks/events"),
            Some("GET, HEAD")
        );
        assert_eq!(
            published.allow("/api/v1/webhooks/ep_1"),
            Some("GET, PATCH, DELETE, HEAD")
        );
        assert_eq!(published.allow("/api/v1/webhooks"), Some("GET, POST, HEAD"));
        assert_eq!(published.allow("/api/v1/nope"), None);
        // `events` taken as an id by a method the literal route lacks: the
        // id route's 404, not a 405.
        assert_eq!(
            published.shadowed_not_found("PATCH", "/api/v1/webhooks/events"),
            Some("webhook not found")
        );
        assert_eq!(
            published.shadowed_not_found("POST", "/api/v1/webhooks/events"),
            None
        );
        assert_eq!(
            published.shadowed_not_found("PUT", "/api/v1/webhooks"),
            None
        );
    }

    #[test]
    fn word_patterns_become_enums_and_others_stay() {
        let mut doc = json!({
            "a": {"type": "string", "pattern": "^(1h|24h|7d)$"},
            "b": [{"pattern": "^(in_flight|failed)$"}],
            "c": {"pattern": "^[!-~]+$"},
            "d": {"pattern": "^(a|b.c)$"},
            "e": {"type": "string", "nullable": true, "pattern": "^(failed|all)$"},
        });
        patterns_to_enums(&mut doc);
        assert_eq!(
            doc["a"],
            json!({"type": "string", "enum": ["1h", "24h", "7d"]})
        );
        assert_eq!(doc["b"][0], json!({"enum": ["in_flight", "failed"]}));
        assert_eq!(doc["c"], json!({"pattern": "^[!-~]+$"}));
        assert_eq!(doc["d"], json!({"pattern": "^(a|b.c)$"}));
        assert_eq!(
            doc["e"],
            json!({"type": "string", "nullable": true, "enum": ["failed", "all", null]})
        );
    }
}
