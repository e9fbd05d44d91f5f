//! `GET /api/v1/me`: what the credential in `Authorization` is (the admin
//! key, a tenant's API key, or a portal session), the tenant it acts for
//! and what it may do. The console starts here.

use hookfleet_common::duration::format_duration;
use hookfleet_common::store::tenants as store_tenants;
use hookfleet_common::store::usage;
use hookfleet_common::time_util::{now_ms, rfc3339_ms};
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};

use super::portal::PortalBranding;
use super::ApiTags;
use crate::auth::{AnyAuth, Scope, TenantCtx};
use crate::error::ApiError;
use crate::state::AppState;

pub struct MeApi {
    pub state: AppState,
}

/// What kind of credential a request carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CredentialKind {
    /// `HOOKFLEET_ADMIN_KEY`.
    Admin,
    /// A tenant's API key (`hf_…`).
    Tenant,
    /// A portal session (`hfs_…`), made from a portal link.
    Portal,
}

impl CredentialKind {
    /// As the API writes it. (A plain string in the spec, whose pattern
    /// becomes an enum: a described enum field is an `allOf` that client
    /// generators refuse.)
    pub fn name(self) -> &'static str {
        match self {
            CredentialKind::Admin => "admin",
            CredentialKind::Tenant => "tenant",
            CredentialKind::Portal => "portal",
        }
    }
}

/// The credential this request carries, and what it may do.
#[derive(Object)]
#[oai(example)]
pub struct Me {
    /// `admin`, `tenant` (an API key) or `portal` (a portal session).
    #[oai(validator(pattern = "^(admin|tenant|portal)$"))]
    pub kind: String,
    /// The tenant it acts for; absent for the admin key.
    #[oai(skip_serializing_if_is_none)]
    pub tenant_id: Option<String>,
    /// The tenant's name; absent for the admin key.
    #[oai(skip_serializing_if_is_none)]
    pub tenant_name: Option<String>,
    /// Its scopes (empty for the admin key, which manages tenants and the
    /// fleet rather than acting for a tenant).
    pub scopes: Vec<Scope>,
    /// For a portal limited to some endpoints: those endpoints.
    #[oai(skip_serializing_if_is_none)]
    pub endpoint_ids: Option<Vec<String>>,
    /// For a portal session: when it (and its link) expires (RFC 3339).
    #[oai(skip_serializing_if_is_none)]
    pub expires_at: Option<String>,
    /// For a portal session: the link's branding, if it has one.
    #[oai(skip_serializing_if_is_none)]
    pub branding: Option<PortalBranding>,
    /// How long the tenant's events, deliveries and attempts are kept;
    /// absent for the admin key.
    #[oai(skip_serializing_if_is_none)]
    pub retention: Option<String>,
    /// The most events the tenant may keep within its retention (a
    /// publish past it gets 429 `quota_exceeded`); absent without a cap.
    #[oai(skip_serializing_if_is_none)]
    pub max_retained_events: Option<u64>,
    /// The tenant's events within its retention now (test sends aside);
    /// absent for the admin key.
    #[oai(skip_serializing_if_is_none)]
    pub retained_events: Option<u64>,
}

#[OpenApi(prefix_path = "/api/v1", tag = "ApiTags::Access")]
impl MeApi {
    /// Who am I
    ///
    /// What the credential in `Authorization` is (`admin`, `tenant` or
    /// `portal`), the tenant it acts for and its scopes; for a portal
    /// session also its endpoints, expiry and branding. Any credential may
    /// call it, whatever its scopes. The console starts here.
    #[oai(path = "/me", method = "get", operation_id = "get_me")]
    async fn me(&self, auth: AnyAuth) -> Result<Json<Me>, ApiError> {
        let tenant: &TenantCtx = match &auth {
            AnyAuth::Admin(_) => {
                return Ok(Json(Me {
                    kind: CredentialKind::Admin.name().into(),
                    tenant_id: None,
                    tenant_name: None,
                    scopes: Vec::new(),
                    endpoint_ids: None,
                    expires_at: None,
                    branding: None,
                    retention: None,
                    max_retained_events: None,
                    retained_events: None,
                }))
            }
            AnyAuth::Tenant(key) => &key.0,
        };
        let mut conn = self.state.conn().await?;
        let keys = &self.state.store.keys;
        let record = store_tenants::load(&mut conn, keys, &tenant.tenant_id).await?;
        let retention_ms = record
            .as_ref()
            .and_then(|t| t.retention_ms)
            .unwrap_or(self.state.store.config.retention.as_millis() as u64);
        let partitions: Vec<_> = self.state.store.config.all_partitions().collect();
        let retained = usage::retained(
            &mut conn,
            keys,
            &tenant.tenant_id,
            &partitions,
            retention_ms,
            now_ms(),
        )
        .await?;
        let max_retained_events = record.as_ref().and_then(|t| t.max_events);
        let link = tenant.portal.as_deref();
        Ok(Json(Me {
            kind: if link.is_some() {
                CredentialKind::Portal
            } else {
                CredentialKind::Tenant
            }
            .name()
            .into(),
            tenant_id: Some(tenant.tenant_id.clone()),
            tenant_name: record.map(|t| t.name),
            retention: Some(format_duration(std::time::Duration::from_millis(
                retention_ms,
            ))),
            max_retained_events,
            retained_events: Some(retained),
            scopes: tenant.scopes.list(),
            endpoint_ids: link.and_then(|l| l.endpoint_ids.clone()),
            expires_at: link.map(|l| rfc3339_ms(l.expires_ms)),
            branding: link.and_then(|l| l.branding.clone()).map(Into::into),
        }))
    }
}
