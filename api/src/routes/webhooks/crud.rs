//! Create, list, read, change and delete endpoints ("webhooks").
//!
//! The endpoint's hash in its partition is authoritative; the tenant's index
//! (`{t:<tid>}:endpoints`) is what publish reads to find subscribers. Writes
//! touch the index first on create and last on delete/update, and the publish
//! scripts re-check every endpoint they queue for, so a crash between the
//! two writes can never deliver to a deleted or disabled endpoint.

use hookfleet_common::ids::{self, IdKind};
use hookfleet_common::model::{EndpointChanges, EndpointOrdering, EndpointRecord};
use hookfleet_common::signing::SigningSecret;
use hookfleet_common::store::endpoint::{self as store_endpoint, EndpointRef};
use hookfleet_common::store::reads;
use hookfleet_common::time_util::now_ms;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::types::MaybeUndefined;
use poem_openapi::{ApiResponse, OpenApi};

use super::load_endpoint;
use super::schema::{CreateWebhook, HeadOfLine, UpdateWebhook, Webhook, WebhookPage};
use crate::auth::{ApiKeyAuth, TenantCtx};
use crate::body::JsonBody;
use crate::error::ApiError;
use crate::input::{self, EndpointUrl, HeaderList};
use crate::paging::PageRequest;
use crate::routes::event_types;
use crate::routes::ApiTags;
use crate::state::{AppState, CappedAdd};

/// The most endpoints one tenant may have: it bounds what one publish
/// fans out to and what one tenant-wide log page reads.
pub const MAX_ENDPOINTS_PER_TENANT: u64 = 1000;

/// The CRUD routes.
pub struct WebhooksApi {
    pub state: AppState,
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
        let config = &self.state.store.config;
        let ordering = body
            .ordering
            .as_deref()
            .map(input::ordering)
            .transpose()?
            .unwrap_or_default();
        let filter = body.filter.as_deref().map(input::filter).transpose()?;
        let retry_schedule = body
            .retry_schedule
            .as_deref()
            .map(|entries| input::retry_schedule(entries, config))
            .transpose()?;
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
            ordering,
            filter,
            retry_schedule,
            created_at: now,
            updated_at: now,
        };
        let exposed = secret.expose();
        let mut conn = self.state.conn().await?;
        let placed = store_endpoint::create(
            &mut conn,
            &self.state.store.keys,
            p,
            &record,
            &exposed,
            MAX_ENDPOINTS_PER_TENANT,
        )
        .await?;
        if placed != CappedAdd::Added {
            return Err(ApiError::conflict(format!(
                "a tenant may have at most {MAX_ENDPOINTS_PER_TENANT} webhooks"
            )));
        }
        self.state.announce_config_change(&tenant.tenant_id).await?;
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
        let keys = &self.state.store.keys;
        let mut ids = store_endpoint::ids_of(&mut conn, keys, &tenant.tenant_id).await?;
        ids.retain(|id| tenant.sees_endpoint(id));
        let (ids, next) = request.page(ids, |id| id.as_str());
        let data = if ids.is_empty() {
            Vec::new()
        } else {
            store_endpoint::load_many(&mut conn, keys, &tenant.tenant_id, &ids)
                .await?
                .into_iter()
                .map(|r| Webhook::from_record(r, None))
                .collect()
        };
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
        let record = self.load(&tenant, &id.0).await?;
        let fifo = record.ordering == EndpointOrdering::Fifo;
        let p = ids::partition_of(IdKind::Endpoint, &record.id);
        let mut webhook = Webhook::from_record(record, None);
        if let (true, Some(p)) = (fifo, p) {
            let mut conn = self.state.conn().await?;
            let head = reads::fifo_head(&mut conn, &self.state.store.keys, p, &webhook.id).await?;
            webhook.head_of_line = head.and_then(|head| HeadOfLine::new(head, &webhook.id));
        }
        Ok(Json(webhook))
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
        // A portal limited to some endpoints must not widen what they
        // receive: the tenant's other events may be meant for others.
        let limited = tenant
            .portal
            .as_ref()
            .is_some_and(|link| link.endpoint_ids.is_some());
        if limited && body.events.is_some() {
            return Err(ApiError::forbidden(
                "this portal link is limited to some webhooks; it cannot change their `events`",
            ));
        }
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
        let ordering = body.ordering.as_deref().map(input::ordering).transpose()?;
        let filter = match &body.filter {
            MaybeUndefined::Undefined => None,
            MaybeUndefined::Null => Some(None),
            MaybeUndefined::Value(text) => Some(Some(input::filter(text)?)),
        };
        let retry_schedule = match &body.retry_schedule {
            MaybeUndefined::Undefined => None,
            MaybeUndefined::Null => Some(None),
            MaybeUndefined::Value(entries) => Some(Some(input::retry_schedule(
                entries,
                &self.state.store.config,
            )?)),
        };
        let changes = EndpointChanges {
            url: url.map(EndpointUrl::into_string),
            events,
            description,
            headers: headers.map(HeaderList::into_vec),
            rate_limit,
            timeout_ms,
            max_in_flight,
            active: body.active,
            paused: body.paused,
            ordering,
            filter,
            retry_schedule,
        };
        // Only the fields the request names are written (the script checks
        // the tenant and answers the endpoint as stored after the change).
        let p = ids::partition_of(IdKind::Endpoint, &id.0)
            .filter(|_| tenant.sees_endpoint(&id.0))
            .ok_or_else(|| ApiError::not_found("webhook"))?;
        let endpoint = EndpointRef {
            tenant_id: &tenant.tenant_id,
            partition: p,
            endpoint_id: &id.0,
        };
        let mut conn = self.state.conn().await?;
        let record = store_endpoint::update(
            &mut conn,
            &self.state.store.keys,
            endpoint,
            &changes,
            now_ms(),
        )
        .await?
        .ok_or_else(|| ApiError::not_found("webhook"))?;
        drop(conn);
        self.state.announce_config_change(&tenant.tenant_id).await?;
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
        let retention_ms = self.state.store.config.storage_retention().as_millis() as u64;
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
        store_endpoint::unindex_deleted(
            &mut conn,
            keys,
            &tenant.tenant_id,
            &record.id,
            now_ms(),
            retention_ms,
        )
        .await?;
        drop(conn);
        self.state.announce_config_change(&tenant.tenant_id).await?;
        tracing::info!(endpoint_id = %record.id, cancelled, "endpoint deleted");
        Ok(WebhookDeleted::NoContent)
    }
}
