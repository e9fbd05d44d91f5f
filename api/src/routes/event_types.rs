//! Event types: the built-in catalog plus the tenant's own.
//!
//! A type must exist before it can be published or named exactly in an
//! endpoint's `events` (wildcards need not match an existing type).

use hookfleet_common::catalog::{self, BUILT_IN, OPERATIONAL};
use hookfleet_common::store::event_types as store_event_types;
use hookfleet_common::time_util::{now_ms, rfc3339_ms};
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};
use serde::{Deserialize, Serialize};

use super::ApiTags;
use crate::auth::ApiKeyAuth;
use crate::body::JsonBody;
use crate::error::ApiError;
use crate::input;
use crate::paging::PageRequest;
use crate::state::{AppState, CappedAdd, CappedHash};

pub struct EventTypesApi {
    pub state: AppState,
}

/// An event type the tenant can publish and subscribe to.
#[derive(Object, Clone, Serialize, Deserialize)]
#[oai(example)]
pub struct EventType {
    /// Dot-separated name, e.g. `video.processed`.
    pub name: String,
    /// What the event means.
    pub description: String,
    /// An example of the event's `data`.
    #[oai(skip_serializing_if_is_none)]
    #[serde(default)]
    pub example: Option<serde_json::Value>,
    /// True for the types every tenant has; false for the tenant's own.
    pub built_in: bool,
    /// True for Hookfleet's operational types (`endpoint.disabled`,
    /// `message.attempt.exhausted`): Hookfleet publishes them about your
    /// endpoints; you cannot. Subscribe to them by exact name (`*` and
    /// `prefix.*` do not match them).
    #[serde(default)]
    pub operational: bool,
    /// When a tenant-defined type was created (RFC 3339).
    #[oai(skip_serializing_if_is_none)]
    #[serde(default)]
    pub created_at: Option<String>,
}

/// A tenant-defined event type to create.
#[derive(Object, Deserialize)]
#[oai(deny_unknown_fields, example)]
#[serde(deny_unknown_fields)]
pub struct CreateEventType {
    /// 1 to 128 characters of letters, digits, `_` and `-`, in dot-separated
    /// segments (`invoice.paid`).
    #[oai(validator(min_length = 1, max_length = 128))]
    pub name: String,
    /// What the event means, up to 1024 characters.
    #[oai(validator(max_length = 1024))]
    pub description: String,
    /// An example of the event's `data` (a JSON object, at most 8 KiB as
    /// JSON).
    #[oai(nullable)]
    #[serde(default)]
    pub example: Option<serde_json::Value>,
}

/// Event types a tenant may define: every webhook create and type list
/// reads them all.
pub const MAX_EVENT_TYPES_PER_TENANT: u64 = 1000;

/// Size of an event type's `example`, as JSON.
pub const MAX_EXAMPLE_BYTES: usize = 8 * 1024;

#[derive(ApiResponse)]
pub enum EventTypeCreated {
    /// The type was created.
    #[oai(status = 201)]
    Created(Json<EventType>),
}

#[derive(ApiResponse)]
pub enum EventTypeDeleted {
    /// The type was deleted. Endpoints that name it keep their patterns.
    #[oai(status = 204)]
    NoContent,
}

/// Every type the tenant can use: built-in first, then its own by name.
pub async fn available(state: &AppState, tenant_id: &str) -> Result<Vec<EventType>, ApiError> {
    let mut conn = state.conn().await?;
    let own = store_event_types::all(&mut conn, &state.store.keys, tenant_id).await?;
    let built_in = BUILT_IN.iter().map(|entry| (entry, false));
    let operational = OPERATIONAL.iter().map(|entry| (entry, true));
    let mut out: Vec<EventType> = built_in
        .chain(operational)
        .map(|((name, description, example), operational)| EventType {
            name: name.to_string(),
            description: description.to_string(),
            example: serde_json::from_str(example).ok(),
            built_in: true,
            operational,
            created_at: None,
        })
        .collect();
    let mut own: Vec<EventType> = own
        .values()
        .filter_map(|json| serde_json::from_str(json).ok())
        .collect();
    own.sort_by(|a, b| a.name.cmp(&b.name));
    out.extend(own);
    Ok(out)
}

/// The names of every type the tenant can use (as [`available`], without
/// reading the types' descriptions and examples).
pub async fn names(state: &AppState, tenant_id: &str) -> Result<Vec<String>, ApiError> {
    let mut conn = state.conn().await?;
    let own = store_event_types::names(&mut conn, &state.store.keys, tenant_id).await?;
    let fixed = BUILT_IN.iter().chain(OPERATIONAL.iter());
    Ok(fixed
        .map(|(name, _, _)| name.to_string())
        .chain(own)
        .collect())
}

/// Whether the tenant can publish `name`.
pub async fn exists(state: &AppState, tenant_id: &str, name: &str) -> Result<bool, ApiError> {
    if catalog::is_built_in(name) {
        return Ok(true);
    }
    let mut conn = state.conn().await?;
    Ok(store_event_types::exists(&mut conn, &state.store.keys, tenant_id, name).await?)
}

impl EventTypesApi {
    /// One page of the types the tenant can use, by name.
    async fn page(
        &self,
        auth: ApiKeyAuth,
        limit: Option<u32>,
        cursor: Option<&str>,
    ) -> Result<Json<EventTypePage>, ApiError> {
        let request = PageRequest::parse(limit, cursor)?;
        let tenant = self.state.tenant(&auth).await?;
        let mut types = available(&self.state, &tenant.tenant_id).await?;
        types.sort_by(|a, b| a.name.cmp(&b.name));
        let (data, next) = request.page(types, |t| t.name.as_str());
        Ok(Json(EventTypePage { data, next }))
    }
}

/// A page of event types, by name.
#[derive(Object)]
#[oai(example)]
pub struct EventTypePage {
    /// The event types of this page.
    pub data: Vec<EventType>,
    /// Pass as `cursor` to get the next page; absent at the end.
    #[oai(skip_serializing_if_is_none)]
    pub next: Option<String>,
}

#[OpenApi(prefix_path = "/api/v1", tag = "ApiTags::EventTypes")]
impl EventTypesApi {
    /// List available event types
    ///
    /// The event types this tenant can subscribe endpoints to and publish:
    /// the built-in catalog and the tenant's own, by name, a page at a time
    /// (`limit`, default 50; pass `next` back as `cursor`).
    #[oai(
        path = "/webhooks/events",
        method = "get",
        operation_id = "list_webhook_event_types"
    )]
    async fn list_for_webhooks(
        &self,
        auth: ApiKeyAuth,
        /// Page size, 1 to 250 (default 50).
        #[oai(validator(minimum(value = "1"), maximum(value = "250")))]
        limit: Query<Option<u32>>,
        /// The `next` of the previous page.
        #[oai(validator(min_length = 1, max_length = 300, pattern = "^[A-Za-z0-9_-]+$"))]
        cursor: Query<Option<String>>,
    ) -> Result<Json<EventTypePage>, ApiError> {
        self.page(auth, limit.0, cursor.0.as_deref()).await
    }

    /// List event types
    ///
    /// Same as `GET /api/v1/webhooks/events`.
    #[oai(
        path = "/event-types",
        method = "get",
        operation_id = "list_event_types"
    )]
    async fn list(
        &self,
        auth: ApiKeyAuth,
        /// Page size, 1 to 250 (default 50).
        #[oai(validator(minimum(value = "1"), maximum(value = "250")))]
        limit: Query<Option<u32>>,
        /// The `next` of the previous page.
        #[oai(validator(min_length = 1, max_length = 300, pattern = "^[A-Za-z0-9_-]+$"))]
        cursor: Query<Option<String>>,
    ) -> Result<Json<EventTypePage>, ApiError> {
        self.page(auth, limit.0, cursor.0.as_deref()).await
    }

    /// Create an event type
    ///
    /// Defines a tenant-specific event type. 409 if the name is taken
    /// (built-in or the tenant's own), or if the tenant already has
    /// 1000 event types of its own.
    #[oai(
        path = "/event-types",
        method = "post",
        operation_id = "create_event_type"
    )]
    async fn create(
        &self,
        auth: ApiKeyAuth,
        body: JsonBody<CreateEventType>,
    ) -> Result<EventTypeCreated, ApiError> {
        let tenant = self.state.tenant(&auth).await?;
        let body = body.0;
        let name = input::event_type_name("name", &body.name)?;
        let description = input::description("description", &body.description)?;
        if let Some(example) = &body.example {
            if !example.is_object() {
                return Err(ApiError::invalid("example", "must be a JSON object"));
            }
            if example.to_string().len() > MAX_EXAMPLE_BYTES {
                return Err(ApiError::invalid(
                    "example",
                    format!("must be at most {MAX_EXAMPLE_BYTES} bytes as JSON"),
                ));
            }
        }
        if catalog::is_built_in(&name) {
            return Err(ApiError::conflict(format!(
                "`{name}` is a built-in event type"
            )));
        }
        let now = now_ms();
        let event_type = EventType {
            name: name.clone(),
            description,
            example: body.example,
            built_in: false,
            operational: false,
            created_at: Some(rfc3339_ms(now)),
        };
        let json = serde_json::to_string(&event_type).map_err(|_| ApiError::unavailable())?;
        match self
            .state
            .capped_add(
                CappedHash::EventTypes {
                    tenant_id: &tenant.tenant_id,
                },
                MAX_EVENT_TYPES_PER_TENANT,
                &name,
                &json,
            )
            .await?
        {
            CappedAdd::Added => {}
            CappedAdd::Exists => {
                return Err(ApiError::conflict(format!("event type `{name}` exists")))
            }
            CappedAdd::Full => {
                return Err(ApiError::conflict(format!(
                    "a tenant may define at most {MAX_EVENT_TYPES_PER_TENANT} event types"
                )))
            }
        }
        Ok(EventTypeCreated::Created(Json(event_type)))
    }

    /// Delete an event type
    ///
    /// Deletes a tenant-defined type; it can no longer be published.
    /// Built-in types cannot be deleted (409).
    #[oai(
        path = "/event-types/:name",
        method = "delete",
        operation_id = "delete_event_type"
    )]
    async fn delete(
        &self,
        auth: ApiKeyAuth,
        /// The event type's name.
        name: Path<String>,
    ) -> Result<EventTypeDeleted, ApiError> {
        let tenant = self.state.tenant(&auth).await?;
        if catalog::is_built_in(&name.0) {
            return Err(ApiError::conflict(format!(
                "`{}` is a built-in event type and cannot be deleted",
                name.0
            )));
        }
        let mut conn = self.state.conn().await?;
        let keys = &self.state.store.keys;
        let removed =
            store_event_types::delete(&mut conn, keys, &tenant.tenant_id, &name.0).await?;
        if !removed {
            return Err(ApiError::not_found("event type"));
        }
        drop(conn);
        // (A new type needs no announcing: a copy that does not know a
        // type reads it from Redis.)
        self.state.announce_config_change(&tenant.tenant_id).await?;
        Ok(EventTypeDeleted::NoContent)
    }
}
