//! Endpoints ("webhooks" in the API, as in the system Hookfleet replaces):
//! create, list, read, change and delete them. What a tenant does with an
//! endpoint day to day (test sends, its log, stats, rotation, replay) is in
//! `webhook_ops.rs`.
//!
//! The endpoint's hash in its partition is authoritative; the tenant's index
//! (`{t:<tid>}:endpoints`) is what publish reads to find subscribers. Writes
//! touch the index first on create and last on delete/update, and the publish
//! scripts re-check every endpoint they queue for, so a crash between the
//! two writes can never deliver to a deleted or disabled endpoint.

use std::collections::{BTreeMap, HashMap};

use hookfleet_common::ids::{self, IdKind, Partition};
use hookfleet_common::model::EndpointRecord;
use hookfleet_common::signing::SigningSecret;
use hookfleet_common::store::endpoint::{self as store_endpoint, EndpointRef};
use hookfleet_common::time_util::{now_ms, rfc3339_ms};
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::types::MaybeUndefined;
use poem_openapi::{ApiResponse, Object, OpenApi};
use redis::AsyncCommands;
use serde::Deserialize;

use super::event_types;
use super::ApiTags;
use crate::auth::{ApiKeyAuth, TenantCtx};
use crate::body::JsonBody;
use crate::error::ApiError;
use crate::input::{self, EndpointUrl, HeaderList};
use crate::paging::PageRequest;
use crate::state::{AppState, CappedAdd, CappedHash};

/// The most endpoints one tenant may have: it bounds what one publish
/// fans out to and what one tenant-wide log page reads.
pub const MAX_ENDPOINTS_PER_TENANT: u64 = 1000;

pub struct WebhooksApi {
    pub state: AppState,
}

/// An endpoint that receives events.
#[derive(Object, Debug)]
#[oai(example)]
pub struct Webhook {
    /// The endpoint's id (`ep_…`).
    pub id: String,
    /// Where events are POSTed (http or https).
    pub url: String,
    /// The event types it receives: exact names, `prefix.*` or `*`.
    pub events: Vec<String>,
    /// A note for people.
    pub description: String,
    /// Extra request headers sent with every delivery.
    pub headers: BTreeMap<String, String>,
    /// Most deliveries per second, fleet-wide; absent for no limit.
    #[oai(skip_serializing_if_is_none)]
    pub rate_limit: Option<u32>,
    /// Timeout of one delivery attempt in seconds; absent for the server's
    /// default (`HOOKFLEET_REQUEST_TIMEOUT`, 30 s).
    #[oai(skip_serializing_if_is_none)]
    pub timeout_s: Option<u64>,
    /// Most attempts in flight to this endpoint at once, across every
    /// worker; absent for the server's default (`HOOKFLEET_MAX_IN_FLIGHT`,
    /// 32). While its attempts time out, fewer are sent (halved per
    /// timeout, one more per answer).
    #[oai(skip_serializing_if_is_none)]
    pub max_in_flight: Option<u32>,
    /// `enabled`, `paused` (new events are queued and held, in order, until
    /// it is resumed) or `disabled` (nothing new is queued; what was queued
    /// waits until it is enabled). Follows from `active` and `paused`.
    #[oai(validator(pattern = "^(enabled|paused|disabled)$"))]
    pub status: String,
    /// False when disabled, by a person (`PATCH {"active": false}`) or by
    /// the circuit breaker: it receives nothing new; deliveries already
    /// queued wait until it is enabled again.
    pub active: bool,
    /// True when paused (`PATCH {"paused": true}`): events published
    /// meanwhile are queued for it but held, in order, and go out when it
    /// is resumed (`{"paused": false}`). The circuit breaker never pauses.
    pub paused: bool,
    /// The signing secret (`whsec_…`). Returned only when the endpoint is
    /// created; store it then.
    #[oai(skip_serializing_if_is_none)]
    pub secret: Option<String>,
    /// When it was created (RFC 3339).
    pub created_at: String,
    /// When it last changed (RFC 3339).
    pub updated_at: String,
}

impl Webhook {
    fn from_record(record: EndpointRecord, secret: Option<String>) -> Self {
        Self {
            id: record.id,
            url: record.url,
            events: record.events,
            description: record.description,
            headers: record.headers.into_iter().collect(),
            rate_limit: record.rate_limit,
            timeout_s: record.timeout_ms.map(|ms| ms / 1000),
            max_in_flight: record.max_in_flight,
            status: if !record.active {
                "disabled"
            } else if record.paused {
                "paused"
            } else {
                "enabled"
            }
            .to_string(),
            active: record.active,
            paused: record.paused,
            secret,
            created_at: rfc3339_ms(record.created_at),
            updated_at: rfc3339_ms(record.updated_at),
        }
    }
}

/// An endpoint to create.
#[derive(Object, Deserialize)]
#[oai(deny_unknown_fields, example)]
#[serde(deny_unknown_fields)]
pub struct CreateWebhook {
    /// Where to POST events: an absolute `http://` or `https://` URL, up to
    /// 2048 bytes, `scheme://[user:password@]host[:port][/path][?query]`
    /// without spaces, control characters or a `#fragment`. The host is a
    /// name of letters, digits, `-` and `_` labels (Unicode names in their
    /// `xn--` form), an IPv4 address or a bracketed IPv6 address; private,
    /// loopback and other restricted addresses are refused unless
    /// `HOOKFLEET_ALLOW_CIDRS` opens them.
    #[oai(validator(min_length = 1, max_length = 2048,))]
    pub url: String,
    /// Event types to receive (1 to 100): exact names from
    /// `GET /api/v1/webhooks/events`, `prefix.*` for a family, or `*`.
    #[oai(validator(
        min_items = 1,
        max_items = 100,
        max_length = 130,
        pattern = r"^(\*|[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*(\.\*)?)$"
    ))]
    pub events: Vec<String>,
    /// A note for people, up to 1024 characters.
    #[oai(validator(max_length = 1024), nullable)]
    #[serde(default)]
    #[oai(skip_serializing_if_is_none)]
    pub description: Option<String>,
    /// Up to 20 extra request headers. Names must be valid HTTP header
    /// names; `webhook-*`, `content-type`, `user-agent`, `host` and other
    /// headers Hookfleet sets are refused. Values: printable ASCII (spaces
    /// allowed), up to 1024 characters.
    #[oai(
        validator(max_properties = 20, max_length = 1024, pattern = r"^[ -~]*$"),
        nullable
    )]
    #[serde(default)]
    #[oai(skip_serializing_if_is_none)]
    pub headers: Option<BTreeMap<String, String>>,
    /// Most deliveries per second to this endpoint (1 to 10000), enforced
    /// across all workers. Omit for no limit.
    #[oai(validator(minimum(value = "1"), maximum(value = "10000")), nullable)]
    #[serde(default)]
    pub rate_limit: Option<i64>,
    /// Timeout of one attempt in seconds, 1 up to the server's lease minus
    /// 5 s (55 by default); omit for the server default (30 s).
    #[oai(validator(minimum(value = "1"), maximum(value = "3600")), nullable)]
    #[serde(default)]
    pub timeout_s: Option<i64>,
    /// Most attempts in flight to this endpoint at once, across every
    /// worker (1 to 1000); omit for the server's default
    /// (`HOOKFLEET_MAX_IN_FLIGHT`, 32). A receiver that answers slowly or
    /// not at all holds at most this many of the fleet's attempt slots;
    /// the rest wait their turn, in order.
    #[oai(validator(minimum(value = "1"), maximum(value = "1000")), nullable)]
    #[serde(default)]
    pub max_in_flight: Option<i64>,
    /// Whether it receives events now (default true); false creates it
    /// disabled.
    #[oai(nullable)]
    #[serde(default)]
    #[oai(skip_serializing_if_is_none)]
    pub active: Option<bool>,
    /// Create it paused (default false): events are queued for it and held
    /// until it is resumed.
    #[oai(nullable)]
    #[serde(default)]
    #[oai(skip_serializing_if_is_none)]
    pub paused: Option<bool>,
    /// A signing secret of your own (`whsec_` + standard base64 of 24 to 64
    /// bytes); omit to have one generated.
    #[oai(
        validator(
            min_length = 38,
            max_length = 94,
            pattern = r"^whsec_[A-Za-z0-9+/]+={0,2}$"
        ),
        nullable
    )]
    #[serde(default)]
    #[oai(skip_serializing_if_is_none)]
    pub secret: Option<String>,
}

/// Changes to an endpoint; absent fields (and `null` ones, except
/// `rate_limit` and `timeout_s`) stay as they are.
#[derive(Object, Deserialize)]
#[oai(deny_unknown_fields, example)]
#[serde(deny_unknown_fields)]
pub struct UpdateWebhook {
    /// New URL (same rules as on create).
    #[oai(validator(min_length = 1, max_length = 2048,), nullable)]
    #[serde(default)]
    #[oai(skip_serializing_if_is_none)]
    pub url: Option<String>,
    /// New list of event types (same rules as on create).
    #[oai(
        validator(
            min_items = 1,
            max_items = 100,
            max_length = 130,
            pattern = r"^(\*|[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*(\.\*)?)$"
        ),
        nullable
    )]
    #[serde(default)]
    #[oai(skip_serializing_if_is_none)]
    pub events: Option<Vec<String>>,
    /// New description, up to 1024 characters.
    #[oai(validator(max_length = 1024), nullable)]
    #[serde(default)]
    #[oai(skip_serializing_if_is_none)]
    pub description: Option<String>,
    /// New set of extra headers (replaces the old set; same rules as on
    /// create).
    #[oai(
        validator(max_properties = 20, max_length = 1024, pattern = r"^[ -~]*$"),
        nullable
    )]
    #[serde(default)]
    #[oai(skip_serializing_if_is_none)]
    pub headers: Option<BTreeMap<String, String>>,
    /// New rate limit (1 to 10000); `null` removes the limit.
    #[oai(validator(minimum(value = "1"), maximum(value = "10000")), nullable)]
    #[serde(default)]
    pub rate_limit: MaybeUndefined<i64>,
    /// New attempt timeout in seconds (same range as on create); `null`
    /// returns to the server default.
    #[oai(validator(minimum(value = "1"), maximum(value = "3600")), nullable)]
    #[serde(default)]
    pub timeout_s: MaybeUndefined<i64>,
    /// New cap of attempts in flight (1 to 1000); `null` returns to the
    /// server default.
    #[oai(validator(minimum(value = "1"), maximum(value = "1000")), nullable)]
    #[serde(default)]
    pub max_in_flight: MaybeUndefined<i64>,
    /// Enable or disable. A disabled endpoint gets no deliveries for events
    /// published meanwhile; re-enabling releases the deliveries held and
    /// resets the circuit breaker.
    #[oai(nullable)]
    #[serde(default)]
    #[oai(skip_serializing_if_is_none)]
    pub active: Option<bool>,
    /// Pause or resume. A paused endpoint keeps receiving deliveries but
    /// holds them, in order; resuming sends them. Pausing keeps every
    /// event, disabling does not.
    #[oai(nullable)]
    #[serde(default)]
    #[oai(skip_serializing_if_is_none)]
    pub paused: Option<bool>,
}

/// A page of webhooks, oldest first.
#[derive(Object)]
#[oai(example)]
pub struct WebhookPage {
    /// The webhooks of this page.
    pub data: Vec<Webhook>,
    /// Pass as `cursor` to get the next page; absent at the end.
    #[oai(skip_serializing_if_is_none)]
    pub next: Option<String>,
}

#[derive(ApiResponse)]
pub enum WebhookCreated {
    /// Created. The answer holds the signing secret; it is not shown again.
    #[oai(status = 201)]
    Created(Json<Webhook>),
}

#[derive(ApiResponse)]
pub enum WebhookDeleted {
    /// Deleted; its pending and scheduled deliveries are cancelled.
    #[oai(status = 204)]
    NoContent,
}

/// The tenant's endpoint and its partition, or 404 (also for other
/// tenants' ids).
pub async fn load_endpoint(
    state: &AppState,
    tenant: &TenantCtx,
    id: &str,
) -> Result<(Partition, EndpointRecord), ApiError> {
    let p =
        ids::partition_of(IdKind::Endpoint, id).ok_or_else(|| ApiError::not_found("webhook"))?;
    let mut conn = state.conn().await?;
    let map: HashMap<String, String> = conn.hgetall(state.store.keys.endpoint(p, id)).await?;
    match EndpointRecord::from_hash(&map) {
        Some(record) if record.tenant_id == tenant.tenant_id => Ok((p, record)),
        _ => Err(ApiError::not_found("webhook")),
    }
}

impl WebhooksApi {
    async fn load(&self, tenant: &TenantCtx, id: &str) -> Result<EndpointRecord, ApiError> {
        Ok(load_endpoint(&self.state, tenant, id).await?.1)
    }

    async fn known_type_checker(
        &self,
        tenant: &TenantCtx,
    ) -> Result<impl Fn(&str) -> bool, ApiError> {
        let names = event_types::names(&self.state, &tenant.tenant_id).await?;
        Ok(move |name: &str| names.iter().any(|n| n == name))
    }
}

#[OpenApi(prefix_path = "/api/v1", tag = "ApiTags::Webhooks")]
impl WebhooksApi {
    /// Create a webhook
    ///
    /// Registers an endpoint. Every event whose type matches `events` is
    /// POSTed to `url`, signed per Standard Webhooks with the returned
    /// `secret` (shown only in this answer).
    #[oai(path = "/webhooks", method = "post", operation_id = "create_webhook")]
    async fn create(
        &self,
        auth: ApiKeyAuth,
        body: JsonBody<CreateWebhook>,
    ) -> Result<WebhookCreated, ApiError> {
        let tenant = self.state.tenant(&auth).await?;
        let body = body.0;
        let url = EndpointUrl::parse(&body.url, &self.state.store.config.address_policy)?;
        let is_known = self.known_type_checker(&tenant).await?;
        let events = input::events(&body.events, is_known)?;
        let description =
            input::description("description", body.description.as_deref().unwrap_or(""))?;
        let headers = HeaderList::parse(&body.headers.unwrap_or_default())?;
        let rate_limit = body.rate_limit.map(input::rate_limit).transpose()?;
        let timeout_ms = body
            .timeout_s
            .map(|t| input::timeout_ms(t, &self.state.store.config))
            .transpose()?;
        let max_in_flight = body.max_in_flight.map(input::max_in_flight).transpose()?;
        let secret = match &body.secret {
            Some(text) => {
                SigningSecret::parse(text).map_err(|reason| ApiError::invalid("secret", reason))?
            }
            None => SigningSecret::generate(),
        };

        let now = now_ms();
        let p = ids::random_partition(self.state.store.config.partitions);
        let record = EndpointRecord {
            id: ids::new_id(IdKind::Endpoint, p, now),
            tenant_id: tenant.tenant_id.clone(),
            url: url.into_string(),
            events,
            description,
            headers: headers.into_vec(),
            rate_limit,
            timeout_ms,
            max_in_flight,
            active: body.active.unwrap_or(true),
            paused: body.paused.unwrap_or(false),
            created_at: now,
            updated_at: now,
        };
        let exposed = secret.expose();
        let mut fields = record.to_fields();
        fields.push(("secret", exposed.clone()));
        // The endpoint's own hash first, then its entry in the tenant's
        // index, which takes a place under the cap in one step with the
        // check (`capped_add.lua`). Without a place the hash is deleted
        // again. Until the index entry exists nothing reaches the endpoint
        // (publishing reads the index), so a crash in between leaves only
        // an unreachable hash, never a place taken by no endpoint.
        let hash = self.state.store.keys.endpoint(p, &record.id);
        let mut conn = self.state.conn().await?;
        let _: () = conn.hset_multiple(&hash, &fields).await?;
        let placed = self
            .state
            .capped_add(
                CappedHash::Endpoints {
                    tenant_id: &tenant.tenant_id,
                },
                MAX_ENDPOINTS_PER_TENANT,
                &record.id,
                &record.subscription_summary(),
            )
            .await;
        if !matches!(placed, Ok(CappedAdd::Added)) {
            let undone: redis::RedisResult<()> = conn.del(&hash).await;
            if let Err(err) = undone {
                tracing::warn!(endpoint_id = %record.id, error = %err, "could not delete the hash of an endpoint not created");
            }
        }
        match placed? {
            CappedAdd::Added => {}
            // A fresh id never exists; both mean no place is left.
            CappedAdd::Exists | CappedAdd::Full => {
                return Err(ApiError::conflict(format!(
                    "a tenant may have at most {MAX_ENDPOINTS_PER_TENANT} webhooks"
                )))
            }
        }
        tracing::info!(endpoint_id = %record.id, tenant_id = %tenant.tenant_id, "endpoint created");
        Ok(WebhookCreated::Created(Json(Webhook::from_record(
            record,
            Some(exposed),
        ))))
    }

    /// List webhooks
    ///
    /// The tenant's endpoints, oldest first, a page at a time (`limit`,
    /// default 50; pass `next` back as `cursor`). Secrets are not included.
    #[oai(path = "/webhooks", method = "get", operation_id = "list_webhooks")]
    async fn list(
        &self,
        auth: ApiKeyAuth,
        /// Page size, 1 to 250 (default 50).
        #[oai(validator(minimum(value = "1"), maximum(value = "250")))]
        limit: Query<Option<u32>>,
        /// The `next` of the previous page.
        #[oai(validator(min_length = 1, max_length = 300, pattern = "^[A-Za-z0-9_-]+$"))]
        cursor: Query<Option<String>>,
    ) -> Result<Json<WebhookPage>, ApiError> {
        let tenant = self.state.tenant(&auth).await?;
        let request = PageRequest::parse(limit.0, cursor.0.as_deref())?;
        let mut conn = self.state.conn().await?;
        let mut ids: Vec<String> = conn
            .hkeys(self.state.store.keys.tenant_endpoints(&tenant.tenant_id))
            .await?;
        // Ids begin with their creation time: id order is creation order.
        ids.sort();
        let (ids, next) = request.page(ids, |id| id.as_str());
        if ids.is_empty() {
            return Ok(Json(WebhookPage {
                data: Vec::new(),
                next,
            }));
        }
        let mut pipe = redis::pipe();
        for id in &ids {
            if let Some(p) = ids::partition_of(IdKind::Endpoint, id) {
                pipe.hgetall(self.state.store.keys.endpoint(p, id));
            }
        }
        let maps: Vec<HashMap<String, String>> = pipe.query_async(&mut conn).await?;
        let data = maps
            .iter()
            .filter_map(EndpointRecord::from_hash)
            .filter(|r| r.tenant_id == tenant.tenant_id)
            .map(|r| Webhook::from_record(r, None))
            .collect();
        Ok(Json(WebhookPage { data, next }))
    }

    /// Get a webhook
    ///
    /// One endpoint, without its secret.
    #[oai(path = "/webhooks/:id", method = "get", operation_id = "get_webhook")]
    async fn get(
        &self,
        auth: ApiKeyAuth,
        /// The endpoint's id (`ep_…`).
        id: Path<String>,
    ) -> Result<Json<Webhook>, ApiError> {
        let tenant = self.state.tenant(&auth).await?;
        Ok(Json(Webhook::from_record(
            self.load(&tenant, &id.0).await?,
            None,
        )))
    }

    /// Update a webhook
    ///
    /// Changes the fields given; the rest stay. Disabling holds new and
    /// queued deliveries; re-enabling (`"active": true`) releases them.
    #[oai(
        path = "/webhooks/:id",
        method = "patch",
        operation_id = "update_webhook"
    )]
    async fn update(
        &self,
        auth: ApiKeyAuth,
        /// The endpoint's id (`ep_…`).
        id: Path<String>,
        body: JsonBody<UpdateWebhook>,
    ) -> Result<Json<Webhook>, ApiError> {
        let tenant = self.state.tenant(&auth).await?;
        let body = body.0;
        // Validate everything before touching the record: all or nothing.
        let policy = &self.state.store.config.address_policy;
        let url = body
            .url
            .as_deref()
            .map(|url| EndpointUrl::parse(url, policy))
            .transpose()?;
        let events = match &body.events {
            Some(events) => {
                let is_known = self.known_type_checker(&tenant).await?;
                Some(input::events(events, is_known)?)
            }
            None => None,
        };
        let description = body
            .description
            .as_deref()
            .map(|d| input::description("description", d))
            .transpose()?;
        let headers = body.headers.as_ref().map(HeaderList::parse).transpose()?;
        let rate_limit = match body.rate_limit {
            MaybeUndefined::Undefined => None,
            MaybeUndefined::Null => Some(None),
            MaybeUndefined::Value(v) => Some(Some(input::rate_limit(v)?)),
        };

        let timeout_ms = match body.timeout_s {
            MaybeUndefined::Undefined => None,
            MaybeUndefined::Null => Some(None),
            MaybeUndefined::Value(v) => Some(Some(input::timeout_ms(v, &self.state.store.config)?)),
        };
        let max_in_flight = match body.max_in_flight {
            MaybeUndefined::Undefined => None,
            MaybeUndefined::Null => Some(None),
            MaybeUndefined::Value(v) => Some(Some(input::max_in_flight(v)?)),
        };
        let record = self.load(&tenant, &id.0).await?;
        // Only the fields the request names are written, so a concurrent
        // change of another field (the circuit breaker disabling the
        // endpoint, another PATCH) is not overwritten with a stale value.
        let mut fields: Vec<(&'static str, String)> = Vec::new();
        if let Some(url) = url {
            fields.push(("url", url.into_string()));
        }
        if let Some(events) = &events {
            fields.push((
                "events",
                serde_json::to_string(events).unwrap_or_else(|_| "[]".into()),
            ));
        }
        if let Some(description) = description {
            fields.push(("description", description));
        }
        if let Some(headers) = headers {
            let headers = headers.into_vec();
            fields.push((
                "headers",
                serde_json::to_string(&headers).unwrap_or_else(|_| "[]".into()),
            ));
        }
        if let Some(rate_limit) = rate_limit {
            fields.push((
                "rate_limit",
                rate_limit.map(|r| r.to_string()).unwrap_or_default(),
            ));
        }
        if let Some(timeout_ms) = timeout_ms {
            fields.push((
                "timeout_ms",
                timeout_ms.map(|t| t.to_string()).unwrap_or_default(),
            ));
        }
        if let Some(max_in_flight) = max_in_flight {
            fields.push((
                "max_in_flight",
                max_in_flight.map(|n| n.to_string()).unwrap_or_default(),
            ));
        }
        if let Some(active) = body.active {
            fields.push(("active", if active { "1" } else { "0" }.to_string()));
        }
        if let Some(paused) = body.paused {
            fields.push(("paused", if paused { "1" } else { "0" }.to_string()));
        }
        fields.push(("updated", now_ms().to_string()));

        let p = ids::partition_of(IdKind::Endpoint, &record.id)
            .ok_or_else(|| ApiError::not_found("webhook"))?;
        let keys = &self.state.store.keys;
        let endpoint = EndpointRef {
            tenant_id: &tenant.tenant_id,
            partition: p,
            endpoint_id: &record.id,
        };
        let updated = {
            let mut conn = self.state.conn().await?;
            store_endpoint::update(&mut conn, keys, endpoint, &fields).await?
        };
        if updated.is_none() {
            return Err(ApiError::not_found("webhook"));
        }
        // Read back what is stored now, for the answer and the index.
        let record = self.load(&tenant, &id.0).await?;
        let mut conn = self.state.conn().await?;
        let _: () = conn
            .hset(
                keys.tenant_endpoints(&tenant.tenant_id),
                &record.id,
                record.subscription_summary(),
            )
            .await?;
        Ok(Json(Webhook::from_record(record, None)))
    }

    /// Delete a webhook
    ///
    /// Deletes the endpoint and cancels its deliveries that have not ended
    /// (they show as `cancelled`). Delivered and failed ones stay readable
    /// through their events until retention ends.
    #[oai(
        path = "/webhooks/:id",
        method = "delete",
        operation_id = "delete_webhook"
    )]
    async fn delete(
        &self,
        auth: ApiKeyAuth,
        /// The endpoint's id (`ep_…`).
        id: Path<String>,
    ) -> Result<WebhookDeleted, ApiError> {
        let tenant = self.state.tenant(&auth).await?;
        let record = self.load(&tenant, &id.0).await?;
        let p = ids::partition_of(IdKind::Endpoint, &record.id)
            .ok_or_else(|| ApiError::not_found("webhook"))?;
        let keys = &self.state.store.keys;
        let mut conn = self.state.conn().await?;
        let retention_ms = self.state.store.config.retention.as_millis() as u64;
        let endpoint = EndpointRef {
            tenant_id: &tenant.tenant_id,
            partition: p,
            endpoint_id: &record.id,
        };
        let Some(cancelled) =
            store_endpoint::delete(&mut conn, keys, endpoint, retention_ms).await?
        else {
            return Err(ApiError::not_found("webhook"));
        };
        // Out of the index publish matches on; into the list an event's
        // deliveries are found through until retention ends (they read as
        // cancelled, or as they ended).
        let now = now_ms();
        let deleted = keys.tenant_endpoints_deleted(&tenant.tenant_id);
        let _: () = redis::pipe()
            .hdel(keys.tenant_endpoints(&tenant.tenant_id), &record.id)
            .ignore()
            .zadd(&deleted, &record.id, now)
            .ignore()
            .zrembyscore(&deleted, "-inf", now.saturating_sub(retention_ms))
            .ignore()
            .query_async(&mut conn)
            .await?;
        tracing::info!(endpoint_id = %record.id, cancelled, "endpoint deleted");
        Ok(WebhookDeleted::NoContent)
    }
}
