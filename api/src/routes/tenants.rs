//! Tenants and their API keys. Admin key only.
//!
//! Deleting a tenant revokes its keys and portal links before the answer,
//! so nothing can act for it from then on, and the tenant answers 404 from
//! then on; its data is removed in the background by the workers
//! (`store::tenant_deletion`), whose progress the operator reads at
//! `GET /api/v1/admin/tenant-deletions`.
//!
//! An API key is shown once, in the answer that creates it; Redis keeps its
//! SHA-256 hash (the lookup) and metadata without the key (the listing).

use hookfleet_common::duration::{format_duration, parse_duration};
use hookfleet_common::ids::{self, IdKind, Partition};
use hookfleet_common::store::tenant_deletion::{self as store_deletion, DeletionJob};
use hookfleet_common::store::tenants::{
    self as store_tenants, TenantChange, TenantRecord, Updated,
};
use hookfleet_common::store::usage;
use hookfleet_common::time_util::{now_ms, rfc3339_ms};
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::types::MaybeUndefined;
use poem_openapi::{ApiResponse, Object, OpenApi};
use serde::{Deserialize, Serialize};

use super::ApiTags;
use crate::auth::{generate_api_key, hash_key, AdminAuth, Scope, Scopes};
use crate::body::JsonBody;
use crate::error::ApiError;
use crate::paging::PageRequest;
use crate::state::AppState;

pub struct TenantsApi {
    pub state: AppState,
}

/// Longest tenant or API key name.
const MAX_NAME_LEN: usize = 200;

/// A tenant to create.
#[derive(Object, Deserialize)]
#[oai(deny_unknown_fields, example)]
#[serde(deny_unknown_fields)]
pub struct CreateTenant {
    /// A name for people, 1 to 200 characters without control characters;
    /// surrounding spaces are trimmed.
    #[oai(validator(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]+$"
    ))]
    pub name: String,
}

/// A change to a tenant. Fields left out are left as they are.
#[derive(Object, Deserialize)]
#[oai(deny_unknown_fields, example)]
#[serde(deny_unknown_fields)]
pub struct UpdateTenant {
    /// A new name, 1 to 200 characters without control characters;
    /// surrounding spaces are trimmed.
    #[oai(validator(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]+$"
    ))]
    #[serde(default)]
    pub name: Option<String>,
    /// How long the tenant's events, deliveries and attempts are kept, as
    /// a duration (`7d`, `90d`, `36h`), within the operator's bounds
    /// (`HOOKFLEET_TENANT_RETENTION_MIN` and `_MAX`); `null` returns to
    /// the server's `HOOKFLEET_RETENTION`. It applies to what the tenant
    /// has already: a shorter one removes what is older within a sweep
    /// interval, a longer one keeps what is still there longer.
    #[oai(validator(min_length = 1, max_length = 16), nullable)]
    #[serde(default)]
    pub retention: MaybeUndefined<String>,
    /// The most events the tenant may keep within its retention, 1 to
    /// 1,000,000,000; `null` removes the cap. A publish that would pass it
    /// is answered 429 `quota_exceeded` and writes nothing. Events count
    /// from the hour they are published until that hour is past retention;
    /// operational events and test sends are not counted.
    #[oai(
        validator(minimum(value = "1"), maximum(value = "1000000000")),
        nullable
    )]
    #[serde(default)]
    pub max_retained_events: MaybeUndefined<u64>,
}

/// Most events a cap may allow.
const MAX_CAP: u64 = 1_000_000_000;

/// What a tenant keeps now.
#[derive(Object, Serialize, Deserialize)]
pub struct StorageUsage {
    /// Its events within its retention (test sends aside).
    pub retained_events: u64,
    /// With a cap: what the cap counts now (events published in the hours
    /// still within retention, so at least `retained_events`).
    #[oai(skip_serializing_if_is_none)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counted_events: Option<u64>,
}

/// A tenant's deletion under way. It runs in the background, in steps
/// that survive any process's crash; the counts are progress.
#[derive(Object, Serialize, Deserialize)]
#[oai(example)]
pub struct TenantDeletion {
    /// The deleted tenant's id (`ten_…`); it answers 404 already.
    pub tenant_id: String,
    /// Its name, while its record is still there.
    #[oai(skip_serializing_if_is_none)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// When the deletion was asked for (RFC 3339).
    pub requested_at: String,
    /// What it is removing now: `access` (revoking keys and portal links,
    /// again), `endpoints` (each webhook with its deliveries, attempts and
    /// stats), `events` (the events no webhook received, partition by
    /// partition), `records` (its event types, key metadata and the
    /// tenant itself; then the deletion ends).
    #[oai(validator(pattern = "^(access|endpoints|events|records)$"))]
    pub phase: String,
    /// Webhooks whose data is gone.
    pub endpoints_removed: u64,
    /// Deliveries (with their states) removed.
    pub deliveries_removed: u64,
    /// Events removed that no webhook of the tenant had received.
    pub events_removed: u64,
}

impl TenantDeletion {
    fn of(tenant_id: &str, name: Option<String>, job: &DeletionJob) -> Self {
        Self {
            tenant_id: tenant_id.to_string(),
            name,
            requested_at: rfc3339_ms(job.requested_ms),
            phase: job.phase.name().to_string(),
            endpoints_removed: job.endpoints,
            deliveries_removed: job.deliveries,
            events_removed: job.events,
        }
    }
}

/// A tenant: an isolated customer account with its own endpoints, event
/// types, events and API keys.
#[derive(Object, Serialize, Deserialize)]
#[oai(example)]
pub struct Tenant {
    /// The tenant's id (`ten_…`).
    pub id: String,
    /// Its name.
    pub name: String,
    /// When it was created (RFC 3339).
    pub created_at: String,
    /// How long its events, deliveries and attempts are kept (its own,
    /// or the server's `HOOKFLEET_RETENTION`).
    pub retention: String,
    /// True when `retention` is the tenant's own.
    pub own_retention: bool,
    /// The most events it may keep within its retention; absent without
    /// a cap.
    #[oai(skip_serializing_if_is_none)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_retained_events: Option<u64>,
    /// What it keeps now (read one tenant at a time, not in lists).
    #[oai(skip_serializing_if_is_none)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<StorageUsage>,
}

/// An API key to create.
#[derive(Object, Deserialize)]
#[oai(deny_unknown_fields, example)]
#[serde(deny_unknown_fields)]
pub struct CreateApiKey {
    /// Optional label, 1 to 200 characters without control characters
    /// (e.g. `billing-service`); surrounding spaces are trimmed.
    #[oai(
        validator(
            min_length = 1,
            max_length = 200,
            pattern = r"^[^\x00-\x1f\x7f-\x9f]+$"
        ),
        nullable
    )]
    #[serde(default)]
    pub name: Option<String>,
    /// What the key may do: `publish` (publish events), `manage` (create,
    /// change and delete endpoints and event types; retries, replays, test
    /// sends, secret rotation, portal links) and `read` (every `GET`). All
    /// three when absent. A request outside them gets 403 `forbidden`.
    #[oai(validator(min_items = 1, max_items = 3), nullable)]
    #[serde(default)]
    pub scopes: Option<Vec<Scope>>,
}

/// A key's scopes as listed: all three for keys made before scopes.
fn all_scopes() -> Vec<Scope> {
    Scope::ALL.to_vec()
}

/// A newly created API key. `key` is shown only here.
#[derive(Object)]
#[oai(example)]
pub struct CreatedApiKey {
    /// The key's id (`key_…`), used to revoke it.
    pub id: String,
    /// The key itself (`hf_…`): send it as `Authorization: Bearer <key>`.
    /// Store it now; Hookfleet keeps only its hash.
    pub key: String,
    /// Its label.
    pub name: String,
    /// The first characters of the key, to recognise it in listings.
    pub prefix: String,
    /// What the key may do.
    pub scopes: Vec<Scope>,
    /// When it was created (RFC 3339).
    pub created_at: String,
}

/// An API key as listed (never the key itself).
#[derive(Object, Serialize, Deserialize)]
#[oai(example)]
pub struct ApiKeyInfo {
    /// The key's id (`key_…`).
    pub id: String,
    /// Its label.
    pub name: String,
    /// The first characters of the key.
    pub prefix: String,
    /// What the key may do (all three for keys made before scopes).
    #[serde(default = "all_scopes")]
    pub scopes: Vec<Scope>,
    /// When it was created (RFC 3339).
    pub created_at: String,
    #[oai(skip)]
    #[serde(default)]
    pub hash: String,
}

/// A page of tenants, oldest first.
#[derive(Object)]
#[oai(example)]
pub struct TenantPage {
    /// The tenants of this page.
    pub data: Vec<Tenant>,
    /// Pass as `cursor` to get the next page; absent at the end.
    #[oai(skip_serializing_if_is_none)]
    pub next: Option<String>,
}

/// A page of a tenant's API keys, oldest first.
#[derive(Object)]
#[oai(example)]
pub struct ApiKeyPage {
    /// The keys of this page (never the keys themselves).
    pub data: Vec<ApiKeyInfo>,
    /// Pass as `cursor` to get the next page; absent at the end.
    #[oai(skip_serializing_if_is_none)]
    pub next: Option<String>,
}

#[derive(ApiResponse)]
pub enum TenantCreated {
    /// The tenant was created.
    #[oai(status = 201)]
    Created(Json<Tenant>),
}

#[derive(ApiResponse)]
pub enum TenantDeleted {
    /// The tenant's keys and portal links no longer work, and it answers
    /// 404; its data is being removed in the background (progress at
    /// `GET /api/v1/admin/tenant-deletions`).
    #[oai(status = 202)]
    Accepted(Json<TenantDeletion>),
}

#[derive(ApiResponse)]
pub enum ApiKeyCreated {
    /// The key was created; this is the only time it is shown.
    #[oai(status = 201)]
    Created(Json<CreatedApiKey>),
}

#[derive(ApiResponse)]
pub enum Revoked {
    /// The key was revoked; requests with it now get 401.
    #[oai(status = 204)]
    NoContent,
}

fn name(field: &str, value: &str) -> Result<String, ApiError> {
    // Checked before trimming, so the limit is the documented `maxLength`.
    if value.chars().count() > MAX_NAME_LEN || value.chars().any(char::is_control) {
        return Err(ApiError::invalid(
            field,
            format!("must be at most {MAX_NAME_LEN} characters without control characters"),
        ));
    }
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err(ApiError::invalid(field, "must not be empty"));
    }
    Ok(trimmed.to_string())
}

impl TenantsApi {
    async fn load_tenant(&self, id: &str) -> Result<Tenant, ApiError> {
        if !ids::is_valid(IdKind::Tenant, id) {
            return Err(ApiError::not_found("tenant"));
        }
        let mut conn = self.state.conn().await?;
        let keys = &self.state.store.keys;
        // A tenant being deleted is gone for the API already.
        let tenant = store_tenants::load(&mut conn, keys, id)
            .await?
            .filter(|t| t.deleting_ms.is_none())
            .ok_or_else(|| ApiError::not_found("tenant"))?;
        let retention_ms = tenant
            .retention_ms
            .unwrap_or(self.state.store.config.retention.as_millis() as u64);
        Ok(Tenant {
            id: tenant.id,
            name: tenant.name,
            created_at: rfc3339_ms(tenant.created_ms),
            retention: format_duration(std::time::Duration::from_millis(retention_ms)),
            own_retention: tenant.retention_ms.is_some(),
            max_retained_events: tenant.max_events,
            usage: None,
        })
    }

    /// What the tenant keeps now: its retained events (exact, from its
    /// event index) and, with a cap, what the cap counts.
    async fn usage_of(&self, tenant: &Tenant) -> Result<StorageUsage, ApiError> {
        let retention = self.state.retention_of(&tenant.id).await?;
        let partitions: Vec<_> = self.state.store.config.all_partitions().collect();
        let mut conn = self.state.conn().await?;
        let keys = &self.state.store.keys;
        let retained = usage::retained(
            &mut conn,
            keys,
            &tenant.id,
            &partitions,
            retention.as_millis() as u64,
            now_ms(),
        )
        .await?;
        let counted = match tenant.max_retained_events {
            Some(_) => usage::counted(&mut conn, keys, &tenant.id).await?,
            None => None,
        };
        Ok(StorageUsage {
            retained_events: retained,
            counted_events: counted,
        })
    }

    /// The retention a request asks for, checked against the operator's
    /// bounds: `Some(None)` returns to the server's.
    fn retention_change(
        &self,
        value: &MaybeUndefined<String>,
    ) -> Result<Option<Option<u64>>, ApiError> {
        let text = match value {
            MaybeUndefined::Undefined => return Ok(None),
            MaybeUndefined::Null => return Ok(Some(None)),
            MaybeUndefined::Value(text) => text,
        };
        let config = &self.state.store.config;
        let (min, max) = (config.tenant_retention_min, config.tenant_retention_max);
        let bounds = || {
            format!(
                "a duration such as `7d` or `36h`, from {} to {} (the operator's bounds)",
                format_duration(min),
                format_duration(max)
            )
        };
        let retention = parse_duration(text.trim())
            .ok()
            .filter(|d| text.trim() == text && *d >= min && *d <= max)
            .ok_or_else(|| ApiError::invalid("retention", bounds()))?;
        Ok(Some(Some(retention.as_millis() as u64)))
    }
}

#[OpenApi(prefix_path = "/api/v1", tag = "ApiTags::Tenants")]
impl TenantsApi {
    /// Create a tenant
    ///
    /// Creates an isolated tenant. Then create an API key for it with
    /// `POST /api/v1/tenants/{id}/api-keys`. Admin key only.
    #[oai(path = "/tenants", method = "post", operation_id = "create_tenant")]
    async fn create_tenant(
        &self,
        auth: AdminAuth,
        body: JsonBody<CreateTenant>,
    ) -> Result<TenantCreated, ApiError> {
        self.state.admin(&auth)?;
        let name = name("name", &body.0.name)?;
        let now = now_ms();
        let id = ids::new_id(IdKind::Tenant, Partition(0), now);
        let mut conn = self.state.conn().await?;
        let record = TenantRecord {
            id: id.clone(),
            name: name.clone(),
            created_ms: now,
            deleting_ms: None,
            retention_ms: None,
            max_events: None,
        };
        store_tenants::create(&mut conn, &self.state.store.keys, &record).await?;
        Ok(TenantCreated::Created(Json(Tenant {
            id,
            name,
            created_at: rfc3339_ms(now),
            retention: format_duration(self.state.store.config.retention),
            own_retention: false,
            max_retained_events: None,
            usage: None,
        })))
    }

    /// List tenants
    ///
    /// Every tenant, oldest first, a page at a time (`limit`, default 50;
    /// pass `next` back as `cursor`). Admin key only.
    #[oai(path = "/tenants", method = "get", operation_id = "list_tenants")]
    async fn list_tenants(
        &self,
        auth: AdminAuth,
        /// Page size, 1 to 250 (default 50).
        #[oai(validator(minimum(value = "1"), maximum(value = "250")))]
        limit: Query<Option<u32>>,
        /// The `next` of the previous page.
        #[oai(validator(min_length = 1, max_length = 300, pattern = "^[A-Za-z0-9_-]+$"))]
        cursor: Query<Option<String>>,
    ) -> Result<Json<TenantPage>, ApiError> {
        self.state.admin(&auth)?;
        let request = PageRequest::parse(limit.0, cursor.0.as_deref())?;
        // The index is scored by creation time and ids begin with it, so
        // its order is id order: read from the cursor's millisecond on
        // (ties in that millisecond are skipped by `page`), one more than a
        // page plus room for such ties.
        let from = match &request.after {
            Some(after) => Some(ids::created_ms(IdKind::Tenant, after).ok_or_else(|| {
                ApiError::bad_param("cursor", "not a cursor returned by this API")
            })?),
            None => None,
        };
        let mut conn = self.state.conn().await?;
        let keys = &self.state.store.keys;
        let ids = store_tenants::ids_from(&mut conn, keys, from, request.limit + 64).await?;
        drop(conn);
        let (ids, next) = request.page(ids, |id| id.as_str());
        let mut data = Vec::with_capacity(ids.len());
        for id in ids {
            if let Ok(tenant) = self.load_tenant(&id).await {
                data.push(tenant);
            }
        }
        Ok(Json(TenantPage { data, next }))
    }

    /// Get a tenant
    ///
    /// Admin key only.
    #[oai(
        path = "/tenants/:tenant_id",
        method = "get",
        operation_id = "get_tenant"
    )]
    async fn get_tenant(
        &self,
        auth: AdminAuth,
        /// The tenant's id (`ten_…`).
        tenant_id: Path<String>,
    ) -> Result<Json<Tenant>, ApiError> {
        self.state.admin(&auth)?;
        let mut tenant = self.load_tenant(&tenant_id.0).await?;
        tenant.usage = Some(self.usage_of(&tenant).await?);
        Ok(Json(tenant))
    }

    /// Change a tenant
    ///
    /// Changes the fields given: its name, its own retention, its cap on
    /// retained events; `{}` changes nothing. The answer shows its usage.
    /// 404 once its deletion has started; 409 in the rare case that other
    /// changes of its retention or cap kept restarting its count. Admin
    /// key only.
    #[oai(
        path = "/tenants/:tenant_id",
        method = "patch",
        operation_id = "update_tenant"
    )]
    async fn update_tenant(
        &self,
        auth: AdminAuth,
        /// The tenant's id (`ten_…`).
        tenant_id: Path<String>,
        body: JsonBody<UpdateTenant>,
    ) -> Result<Json<Tenant>, ApiError> {
        self.state.admin(&auth)?;
        let body = body.0;
        let change = TenantChange {
            name: body.name.as_deref().map(|n| name("name", n)).transpose()?,
            retention_ms: self.retention_change(&body.retention)?,
            max_events: match body.max_retained_events {
                MaybeUndefined::Undefined => None,
                MaybeUndefined::Null => Some(None),
                MaybeUndefined::Value(cap) if (1..=MAX_CAP).contains(&cap) => Some(Some(cap)),
                MaybeUndefined::Value(_) => {
                    return Err(ApiError::invalid(
                        "max_retained_events",
                        format!("must be 1 to {MAX_CAP}, or null for no cap"),
                    ))
                }
            },
        };
        let mut tenant = self.load_tenant(&tenant_id.0).await?;
        let mut conn = self.state.conn().await?;
        let keys = &self.state.store.keys;
        let server_retention_ms = self.state.store.config.retention.as_millis() as u64;
        let partitions: Vec<_> = self.state.store.config.all_partitions().collect();
        let recount = change.retention_ms.is_some() || change.max_events.is_some();
        // A cap counts from the tenant's event index: the count is started
        // before the cap (or the retention it counts by) takes effect, so
        // no publish meets a cap without its count; publishes counted
        // meanwhile are kept (`usage::rebuild`). The change is written only
        // over a count for the retention it leaves (`tenant_update.lua`):
        // when another change removed or restarted the count meanwhile,
        // this one counts again, from the tenant as it is now.
        let mut tries = 0;
        loop {
            let capped = match change.max_events {
                Some(cap) => cap.is_some(),
                None => tenant.max_retained_events.is_some(),
            };
            if recount && capped {
                let retention_ms = match change.retention_ms {
                    Some(Some(ms)) => ms,
                    Some(None) => server_retention_ms,
                    None => self.state.retention_of(&tenant.id).await?.as_millis() as u64,
                };
                usage::rebuild(
                    &mut conn,
                    keys,
                    &tenant.id,
                    &partitions,
                    retention_ms,
                    now_ms(),
                )
                .await?;
            }
            match store_tenants::update(&mut conn, keys, &tenant.id, &change, server_retention_ms)
                .await?
            {
                Updated::Updated => break,
                Updated::NotFound => return Err(ApiError::not_found("tenant")),
                // Its deletion started meanwhile: gone.
                Updated::Deleting => return Err(ApiError::not_found("tenant")),
                Updated::Recount if tries < 3 => {
                    tries += 1;
                    tenant = self.load_tenant(&tenant.id).await?;
                }
                Updated::Recount => {
                    return Err(ApiError::conflict(
                        "the tenant's retention or cap kept changing meanwhile; try again",
                    ))
                }
            }
        }
        drop(conn);
        if change.max_events.is_some() {
            // A publish counts its event by the cap it matched with.
            self.state.announce_config_change(&tenant.id).await?;
        }
        let mut tenant = self.load_tenant(&tenant.id).await?;
        tenant.usage = Some(self.usage_of(&tenant).await?);
        Ok(Json(tenant))
    }

    /// Delete a tenant
    ///
    /// Its API keys and portal links stop working before this answers, so
    /// nothing more can be published, read or changed for it, and the
    /// tenant answers 404 from then on. The workers then remove its
    /// webhooks, events, deliveries, attempts, stats, event types and key
    /// metadata in bounded steps (`HOOKFLEET_TENANT_DELETE_RATE` a
    /// second); a crash of any process only pauses it. The answer, and
    /// `GET /api/v1/admin/tenant-deletions` until it ends, show its
    /// progress. Admin key only.
    #[oai(
        path = "/tenants/:tenant_id",
        method = "delete",
        operation_id = "delete_tenant"
    )]
    async fn delete_tenant(
        &self,
        auth: AdminAuth,
        /// The tenant's id (`ten_…`).
        tenant_id: Path<String>,
    ) -> Result<TenantDeleted, ApiError> {
        self.state.admin(&auth)?;
        let tenant = self.load_tenant(&tenant_id.0).await?;
        let mut conn = self.state.conn().await?;
        let keys = &self.state.store.keys;
        let job = store_deletion::start(&mut conn, keys, &tenant.id, now_ms()).await?;
        store_deletion::revoke_access(&mut conn, keys, &tenant.id, job.requested_ms).await?;
        // (The other processes hear of each key through `hf:auth`.)
        self.state.key_cache.forget("*");
        tracing::info!(tenant_id = %tenant.id, "tenant deletion requested");
        Ok(TenantDeleted::Accepted(Json(TenantDeletion::of(
            &tenant.id,
            Some(tenant.name),
            &job,
        ))))
    }

    /// List tenant deletions
    ///
    /// The deletions under way, oldest first, with their progress; one
    /// leaves the list when the tenant's data is gone. Admin key only.
    #[oai(
        path = "/admin/tenant-deletions",
        method = "get",
        operation_id = "list_tenant_deletions"
    )]
    async fn list_tenant_deletions(
        &self,
        auth: AdminAuth,
    ) -> Result<Json<Vec<TenantDeletion>>, ApiError> {
        self.state.admin(&auth)?;
        let mut conn = self.state.conn().await?;
        let keys = &self.state.store.keys;
        let jobs = store_deletion::all(&mut conn, keys).await?;
        let mut list = Vec::with_capacity(jobs.len());
        for (tenant_id, job) in jobs {
            let name = store_tenants::load(&mut conn, keys, &tenant_id)
                .await?
                .map(|t| t.name);
            list.push(TenantDeletion::of(&tenant_id, name, &job));
        }
        list.sort_by(|a, b| (&a.requested_at, &a.tenant_id).cmp(&(&b.requested_at, &b.tenant_id)));
        Ok(Json(list))
    }

    /// Create an API key
    ///
    /// Creates a key that acts for this tenant, with the scopes given (all
    /// three by default: `publish`, `manage`, `read`). The key is in this
    /// answer only; Hookfleet stores its SHA-256 hash. Send `{}` for an
    /// unnamed key with every scope. Admin key only.
    #[oai(
        path = "/tenants/:tenant_id/api-keys",
        method = "post",
        operation_id = "create_api_key"
    )]
    async fn create_api_key(
        &self,
        auth: AdminAuth,
        /// The tenant's id (`ten_…`).
        tenant_id: Path<String>,
        body: JsonBody<CreateApiKey>,
    ) -> Result<ApiKeyCreated, ApiError> {
        self.state.admin(&auth)?;
        let label = match &body.0.name {
            Some(label) => name("name", label)?,
            None => String::new(),
        };
        let scopes = match &body.0.scopes {
            Some(list) if list.is_empty() || list.len() > Scope::ALL.len() => {
                return Err(ApiError::invalid(
                    "scopes",
                    "must list one to three of publish, manage, read",
                ))
            }
            Some(list) => Scopes::of(list.iter().copied()),
            None => Scopes::ALL,
        };
        let tenant = self.load_tenant(&tenant_id.0).await?;
        let now = now_ms();
        let key = generate_api_key();
        let key_id = ids::new_id(IdKind::ApiKey, Partition(0), now);
        let hash = hash_key(&key);
        let info = ApiKeyInfo {
            id: key_id.clone(),
            name: label.clone(),
            prefix: key.chars().take(10).collect(),
            scopes: scopes.list(),
            created_at: rfc3339_ms(now),
            hash: hash.clone(),
        };
        let meta = serde_json::to_string(&info).map_err(|_| ApiError::unavailable())?;
        let mut conn = self.state.conn().await?;
        let keys = &self.state.store.keys;
        let scopes_text = scopes.encode();
        store_tenants::add_api_key(
            &mut conn,
            keys,
            &tenant.id,
            &key_id,
            &hash,
            &scopes_text,
            &meta,
        )
        .await?;
        Ok(ApiKeyCreated::Created(Json(CreatedApiKey {
            id: key_id,
            key,
            name: label,
            prefix: info.prefix,
            scopes: info.scopes,
            created_at: info.created_at,
        })))
    }

    /// List API keys
    ///
    /// The tenant's keys, oldest first, without the keys themselves, a page
    /// at a time (`limit`, default 50; pass `next` back as `cursor`). Admin
    /// key only.
    #[oai(
        path = "/tenants/:tenant_id/api-keys",
        method = "get",
        operation_id = "list_api_keys"
    )]
    async fn list_api_keys(
        &self,
        auth: AdminAuth,
        /// The tenant's id (`ten_…`).
        tenant_id: Path<String>,
        /// Page size, 1 to 250 (default 50).
        #[oai(validator(minimum(value = "1"), maximum(value = "250")))]
        limit: Query<Option<u32>>,
        /// The `next` of the previous page.
        #[oai(validator(min_length = 1, max_length = 300, pattern = "^[A-Za-z0-9_-]+$"))]
        cursor: Query<Option<String>>,
    ) -> Result<Json<ApiKeyPage>, ApiError> {
        self.state.admin(&auth)?;
        let request = PageRequest::parse(limit.0, cursor.0.as_deref())?;
        let tenant = self.load_tenant(&tenant_id.0).await?;
        let mut conn = self.state.conn().await?;
        let map = store_tenants::api_keys(&mut conn, &self.state.store.keys, &tenant.id).await?;
        let mut keys: Vec<ApiKeyInfo> = map
            .values()
            .filter_map(|meta| serde_json::from_str(meta).ok())
            .collect();
        keys.sort_by(|a, b| a.id.cmp(&b.id));
        let (data, next) = request.page(keys, |key| key.id.as_str());
        Ok(Json(ApiKeyPage { data, next }))
    }

    /// Revoke an API key
    ///
    /// Requests with the key get 401 from now on. Admin key only.
    #[oai(
        path = "/tenants/:tenant_id/api-keys/:key_id",
        method = "delete",
        operation_id = "revoke_api_key"
    )]
    async fn revoke_api_key(
        &self,
        auth: AdminAuth,
        /// The tenant's id (`ten_…`).
        tenant_id: Path<String>,
        /// The key's id (`key_…`).
        key_id: Path<String>,
    ) -> Result<Revoked, ApiError> {
        self.state.admin(&auth)?;
        let tenant = self.load_tenant(&tenant_id.0).await?;
        let mut conn = self.state.conn().await?;
        let keys = &self.state.store.keys;
        let meta = store_tenants::api_key(&mut conn, keys, &tenant.id, &key_id.0).await?;
        let info: ApiKeyInfo = meta
            .and_then(|m| serde_json::from_str(&m).ok())
            .ok_or_else(|| ApiError::not_found("API key"))?;
        store_tenants::revoke_api_key(&mut conn, keys, &tenant.id, &key_id.0, &info.hash).await?;
        self.state.key_cache.forget(&info.hash);
        Ok(Revoked::NoContent)
    }
}
