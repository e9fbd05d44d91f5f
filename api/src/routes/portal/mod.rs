//! Portal links: a URL that opens the console for one tenant's customer,
//! expiring, optionally read-only and limited to some endpoints, never
//! able to publish. What a link may say is checked in [`input`].
//!
//! A link is `<origin>/console/portal/<link id>#<token>`. The token rides
//! in the fragment, so browsers never send it to a server (no access log,
//! no `Referer` holds it); the console reads it, rewrites the address
//! without it, and exchanges it for a session (`POST
//! /api/v1/portal-sessions`) that it keeps in the tab (`sessionStorage`,
//! or memory where the browser denies a framed page storage). The link id
//! in the path is not secret: it lets the page be served with the link's
//! `frame-ancestors`. Tokens and sessions are stored as SHA-256 hashes.

use hookfleet_common::ids::{self, IdKind, Partition};
use hookfleet_common::store::endpoint as store_endpoint;
use hookfleet_common::store::portal::{self as store_portal, Branding, PortalLink};
use hookfleet_common::store::tenants as store_tenants;
use hookfleet_common::time_util::{now_ms, rfc3339_ms};
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};
use serde::Deserialize;

use super::ApiTags;
use crate::auth::{generate_secret, hash_key, AnyAuth, Scope, PORTAL_TOKEN_PREFIX, SESSION_PREFIX};
use crate::body::JsonBody;
use crate::error::ApiError;
use crate::paging::PageRequest;
use crate::state::AppState;

pub mod input;

use input::{
    check_branding, check_origins, link_tenant, request_origin, DEFAULT_EXPIRES_IN, MAX_EXPIRES_IN,
    MAX_LINK_ENDPOINTS, MIN_EXPIRES_IN,
};

pub struct PortalApi {
    pub state: AppState,
}

/// How a portal presents itself.
#[derive(Object, Clone, Deserialize, Default)]
#[oai(deny_unknown_fields)]
#[serde(deny_unknown_fields)]
pub struct PortalBranding {
    /// The platform's name, shown in the portal's header (1 to 100
    /// characters without control characters).
    #[oai(
        validator(
            min_length = 1,
            max_length = 100,
            pattern = r"^[^\x00-\x1f\x7f-\x9f]+$"
        ),
        skip_serializing_if_is_none,
        nullable
    )]
    #[serde(default)]
    pub name: Option<String>,
    /// An https URL of the platform's logo (at most 500 characters).
    #[oai(validator(max_length = 500), skip_serializing_if_is_none, nullable)]
    #[serde(default)]
    pub logo_url: Option<String>,
    /// The accent colour, `#rrggbb`.
    #[oai(validator(max_length = 7), skip_serializing_if_is_none, nullable)]
    #[serde(default)]
    pub accent_color: Option<String>,
}

impl From<Branding> for PortalBranding {
    fn from(b: Branding) -> Self {
        PortalBranding {
            name: b.name,
            logo_url: b.logo_url,
            accent_color: b.accent_color,
        }
    }
}

/// A portal link to create.
#[derive(Object, Deserialize)]
#[oai(deny_unknown_fields, example)]
#[serde(deny_unknown_fields)]
pub struct CreatePortalLink {
    /// The tenant whose portal this is (`ten_…`). Required with the admin
    /// key; with a tenant key it is that key's tenant (omit it, or give the
    /// same id).
    #[oai(
        validator(max_length = 64, pattern = "^ten_[0-9a-hjkmnp-tv-z]+$"),
        skip_serializing_if_is_none,
        nullable
    )]
    #[serde(default)]
    pub tenant_id: Option<String>,
    /// Seconds until the link and its sessions expire: 60 to 86,400
    /// (24 h); 3,600 (1 h) when absent.
    #[oai(validator(minimum(value = "60"), maximum(value = "86400")), nullable)]
    #[serde(default)]
    pub expires_in: Option<u32>,
    /// `true`: the portal may only read (sessions get the `read` scope);
    /// `false` (default): its user may also manage the endpoints it shows
    /// (`manage`). A portal never publishes events, never changes event
    /// types and never makes portal links.
    #[oai(nullable)]
    #[serde(default)]
    pub read_only: Option<bool>,
    /// Limit the portal to these endpoints (1 to 100 of the tenant's
    /// `ep_…` ids): others are not found, and no endpoint can be created.
    /// All of the tenant's endpoints when absent.
    #[oai(
        validator(min_items = 1, max_items = 100),
        skip_serializing_if_is_none,
        nullable
    )]
    #[serde(default)]
    pub endpoint_ids: Option<Vec<String>>,
    /// Origins allowed to show the portal in an `<iframe>`
    /// (`https://app.example.com`: scheme, host name or IPv4 address, and
    /// optional port; at most 10). None when absent: the portal cannot be framed.
    #[oai(validator(max_items = 10), skip_serializing_if_is_none, nullable)]
    #[serde(default)]
    pub allowed_origins: Option<Vec<String>>,
    /// The platform's name, logo and accent colour, shown by the portal.
    #[oai(skip_serializing_if_is_none, nullable)]
    #[serde(default, deserialize_with = "branding_object")]
    pub branding: Option<PortalBranding>,
}

/// `branding` from a JSON object only (serde would build the struct from
/// an array too).
fn branding_object<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<PortalBranding>, D::Error> {
    use serde::de::Error as _;
    let fields = Option::<serde_json::Map<String, serde_json::Value>>::deserialize(deserializer)?;
    fields
        .map(|map| serde_json::from_value(serde_json::Value::Object(map)).map_err(D::Error::custom))
        .transpose()
}

/// A portal link as listed (never its token).
#[derive(Object)]
#[oai(example)]
pub struct PortalLinkInfo {
    /// The link's id (`pl_…`), to revoke it.
    pub id: String,
    /// The tenant (`ten_…`).
    pub tenant_id: String,
    /// When it was made (RFC 3339).
    pub created_at: String,
    /// When it and its sessions expire (RFC 3339).
    pub expires_at: String,
    /// Whether the portal may only read.
    pub read_only: bool,
    /// The endpoints it is limited to, if any.
    #[oai(skip_serializing_if_is_none)]
    pub endpoint_ids: Option<Vec<String>>,
    /// Origins allowed to frame it.
    pub allowed_origins: Vec<String>,
    /// Its branding, if any.
    #[oai(skip_serializing_if_is_none)]
    pub branding: Option<PortalBranding>,
}

impl From<PortalLink> for PortalLinkInfo {
    fn from(link: PortalLink) -> Self {
        PortalLinkInfo {
            id: link.id,
            tenant_id: link.tenant_id,
            created_at: rfc3339_ms(link.created_ms),
            expires_at: rfc3339_ms(link.expires_ms),
            read_only: link.read_only,
            endpoint_ids: link.endpoint_ids,
            allowed_origins: link.allowed_origins,
            branding: link.branding.map(Into::into),
        }
    }
}

/// A page of a tenant's live portal links, oldest first.
#[derive(Object)]
#[oai(example)]
pub struct PortalLinkPage {
    /// The links of this page.
    pub data: Vec<PortalLinkInfo>,
    /// Pass as `cursor` to get the next page; absent at the end.
    #[oai(skip_serializing_if_is_none)]
    pub next: Option<String>,
}

/// A portal link. `url` (with the token) is shown only when it is made.
#[derive(Object)]
#[oai(example)]
pub struct CreatedPortalLink {
    /// The link's id (`pl_…`), to revoke it.
    pub id: String,
    /// The tenant (`ten_…`).
    pub tenant_id: String,
    /// The link to hand to the tenant's customer:
    /// `<origin>/console/portal/<id>#<token>`, on the origin this request
    /// was made to. Its token is in this answer only.
    pub url: String,
    /// The same without the origin, for an API behind a proxy that
    /// changes it.
    pub path: String,
    /// When the link and its sessions expire (RFC 3339).
    pub expires_at: String,
    /// Whether the portal may only read.
    pub read_only: bool,
    /// The endpoints it is limited to, if any.
    #[oai(skip_serializing_if_is_none)]
    pub endpoint_ids: Option<Vec<String>>,
    /// Origins allowed to frame it.
    pub allowed_origins: Vec<String>,
    /// Its branding, if any.
    #[oai(skip_serializing_if_is_none)]
    pub branding: Option<PortalBranding>,
}

/// A portal link's token to exchange for a session.
#[derive(Object, Deserialize)]
#[oai(deny_unknown_fields, example)]
#[serde(deny_unknown_fields)]
pub struct CreatePortalSession {
    /// The token: the part of the portal link after `#` (`hfp_…`).
    #[oai(validator(min_length = 1, max_length = 128))]
    pub token: String,
    /// The link's id (`pl_…`, the last part of the link's path): when
    /// given, the token must be that link's, so a page framed under one
    /// link's `frame-ancestors` cannot open another link's session.
    #[oai(validator(max_length = 64), skip_serializing_if_is_none, nullable)]
    #[serde(default)]
    pub link_id: Option<String>,
}

/// A portal session: send it as `Authorization: Bearer <session>`.
#[derive(Object)]
#[oai(example)]
pub struct PortalSession {
    /// The session (`hfs_…`), shown only here. Keep it in memory; it acts
    /// for the link's tenant with the link's limits.
    pub session: String,
    /// When it expires (with its link; RFC 3339).
    pub expires_at: String,
}

#[derive(ApiResponse)]
pub enum PortalLinkCreated {
    /// The link was created; this is the only time its token is shown.
    #[oai(status = 201)]
    Created(Json<CreatedPortalLink>),
}

#[derive(ApiResponse)]
pub enum PortalSessionCreated {
    /// The session was created.
    #[oai(status = 201)]
    Created(Json<PortalSession>),
}

#[derive(ApiResponse)]
pub enum PortalLinkRevoked {
    /// The link was revoked: it no longer opens, and its sessions get 401.
    #[oai(status = 204)]
    NoContent,
}

#[OpenApi(prefix_path = "/api/v1", tag = "ApiTags::Access")]
impl PortalApi {
    /// List portal links
    ///
    /// A tenant's links that have not expired (revoked ones are gone),
    /// oldest first, a page at a time (`limit`, default 50; pass `next`
    /// back as `cursor`), without their tokens: to find and revoke them,
    /// e.g. after revoking the key that made them (a link lives until it
    /// expires or is revoked). Admin key (name `tenant_id`), or a tenant
    /// key with `read`.
    #[oai(
        path = "/portal-links",
        method = "get",
        operation_id = "list_portal_links"
    )]
    async fn list_links(
        &self,
        auth: AnyAuth,
        /// The tenant (`ten_…`): required with the admin key; with a tenant
        /// key, its own tenant (omit it).
        #[oai(validator(max_length = 64, pattern = "^ten_[0-9a-hjkmnp-tv-z]+$"))]
        tenant_id: Query<Option<String>>,
        /// Page size, 1 to 250 (default 50).
        #[oai(validator(minimum(value = "1"), maximum(value = "250")))]
        limit: Query<Option<u32>>,
        /// The `next` of the previous page.
        #[oai(validator(min_length = 1, max_length = 300, pattern = "^[A-Za-z0-9_-]+$"))]
        cursor: Query<Option<String>>,
    ) -> Result<Json<PortalLinkPage>, ApiError> {
        let tenant_id = match (&auth, tenant_id.0) {
            (AnyAuth::Admin(_), Some(id)) => id,
            (AnyAuth::Admin(_), None) => {
                return Err(ApiError::bad_param(
                    "tenant_id",
                    "is required with the admin key",
                ))
            }
            (AnyAuth::Tenant(key), Some(id)) if id != key.0.tenant_id => {
                return Err(ApiError::bad_param(
                    "tenant_id",
                    "must be this API key's tenant (or absent)",
                ))
            }
            (AnyAuth::Tenant(key), _) => key.0.tenant_id.clone(),
        };
        let request = PageRequest::parse(limit.0, cursor.0.as_deref())?;
        let keys = &self.state.store.keys;
        let now = now_ms();
        let mut conn = self.state.conn().await?;
        let ids = store_portal::ids_of(&mut conn, keys, &tenant_id, now).await?;
        let (ids, next) = request.page(ids, |id| id.as_str());
        let mut data = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(link) = store_portal::load(&mut conn, keys, &id, now).await? {
                data.push(link.into());
            }
        }
        Ok(Json(PortalLinkPage { data, next }))
    }

    /// Create a portal link
    ///
    /// A URL that opens the console for one tenant's customer: they see
    /// that tenant's endpoints (or only `endpoint_ids`), their deliveries
    /// and attempts, and unless `read_only` can change those endpoints,
    /// send tests, retry and replay. A portal never publishes, never
    /// changes event types and never makes links. The link expires after
    /// `expires_in` seconds (1 h by default, 24 h at most) and can be
    /// revoked. Its token (after `#`) is in this answer only; Hookfleet
    /// stores its SHA-256. Admin key (name `tenant_id`), or a tenant key
    /// with the `manage` scope.
    #[oai(
        path = "/portal-links",
        method = "post",
        operation_id = "create_portal_link"
    )]
    async fn create_link(
        &self,
        req: &poem::Request,
        auth: AnyAuth,
        body: JsonBody<CreatePortalLink>,
    ) -> Result<PortalLinkCreated, ApiError> {
        let body = body.0;
        // A link's sessions read; a key may not hand out more than it has.
        if let AnyAuth::Tenant(key) = &auth {
            if !key.0.scopes.contains(Scope::Read) {
                return Err(ApiError::forbidden(
                    "this API key lacks the `read` scope, which a portal link's sessions have; \
                     making one needs `manage` and `read`",
                ));
            }
        }
        let tenant_id = link_tenant(&auth, body.tenant_id.as_deref())?;
        let expires_in = body.expires_in.unwrap_or(DEFAULT_EXPIRES_IN);
        if !(MIN_EXPIRES_IN..=MAX_EXPIRES_IN).contains(&expires_in) {
            return Err(ApiError::invalid(
                "expires_in",
                format!("must be {MIN_EXPIRES_IN} to {MAX_EXPIRES_IN} seconds"),
            ));
        }
        let allowed_origins = check_origins(body.allowed_origins.as_deref().unwrap_or(&[]))?;
        let branding = body.branding.as_ref().map(check_branding).transpose()?;
        let keys = &self.state.store.keys;
        let mut conn = self.state.conn().await?;
        if !ids::is_valid(IdKind::Tenant, &tenant_id)
            || store_tenants::load(&mut conn, keys, &tenant_id)
                .await?
                .is_none_or(|tenant| tenant.deleting_ms.is_some())
        {
            // A tenant being deleted has no links any more, and gets none.
            return Err(ApiError::invalid("tenant_id", "no such tenant"));
        }
        if let Some(list) = &body.endpoint_ids {
            if list.is_empty() || list.len() > MAX_LINK_ENDPOINTS {
                return Err(ApiError::invalid(
                    "endpoint_ids",
                    format!("must list 1 to {MAX_LINK_ENDPOINTS} webhooks"),
                ));
            }
            for (i, id) in list.iter().enumerate() {
                let found = ids::is_valid(IdKind::Endpoint, id)
                    && store_endpoint::load(&mut conn, keys, &tenant_id, id)
                        .await?
                        .is_some();
                if !found {
                    return Err(ApiError::invalid(
                        format!("endpoint_ids[{i}]"),
                        "no such webhook of this tenant",
                    ));
                }
            }
        }
        let now = now_ms();
        let token = generate_secret(PORTAL_TOKEN_PREFIX);
        let link = PortalLink {
            id: ids::new_id(IdKind::PortalLink, Partition(0), now),
            tenant_id,
            token_hash: hash_key(&token),
            created_ms: now,
            expires_ms: now + u64::from(expires_in) * 1000,
            read_only: body.read_only.unwrap_or(false),
            endpoint_ids: body.endpoint_ids.clone(),
            allowed_origins,
            branding,
        };
        store_portal::create(&mut conn, keys, &link, now).await?;
        let path = format!("/console/portal/{}#{token}", link.id);
        let url = match request_origin(req) {
            Some(origin) => format!("{origin}{path}"),
            None => path.clone(),
        };
        Ok(PortalLinkCreated::Created(Json(CreatedPortalLink {
            id: link.id,
            tenant_id: link.tenant_id,
            url,
            path,
            expires_at: rfc3339_ms(link.expires_ms),
            read_only: link.read_only,
            endpoint_ids: link.endpoint_ids,
            allowed_origins: link.allowed_origins,
            branding: link.branding.map(Into::into),
        })))
    }

    /// Revoke a portal link
    ///
    /// The link no longer opens, and every session made from it gets 401
    /// from now on. Admin key, or a tenant key with `manage` (its own
    /// tenant's links; others are not found).
    #[oai(
        path = "/portal-links/:link_id",
        method = "delete",
        operation_id = "revoke_portal_link"
    )]
    async fn revoke_link(
        &self,
        auth: AnyAuth,
        /// The link's id (`pl_…`).
        link_id: Path<String>,
    ) -> Result<PortalLinkRevoked, ApiError> {
        let not_found = || ApiError::not_found("portal link");
        if !ids::is_valid(IdKind::PortalLink, &link_id.0) {
            return Err(not_found());
        }
        let keys = &self.state.store.keys;
        let mut conn = self.state.conn().await?;
        let link = store_portal::load(&mut conn, keys, &link_id.0, now_ms())
            .await?
            .ok_or_else(not_found)?;
        if let AnyAuth::Tenant(key) = &auth {
            if key.0.tenant_id != link.tenant_id {
                return Err(not_found());
            }
        }
        store_portal::revoke(&mut conn, keys, &link).await?;
        Ok(PortalLinkRevoked::NoContent)
    }

    /// Open a portal session
    ///
    /// Exchanges a portal link's token (the part of the link after `#`)
    /// for a session, sent from then on as `Authorization: Bearer
    /// <session>`. Needs no other credential. The link may be opened again
    /// until it expires; every session ends with it (or when it is
    /// revoked). 401 for a token that is unknown, expired or revoked.
    #[oai(
        path = "/portal-sessions",
        method = "post",
        operation_id = "create_portal_session"
    )]
    async fn create_session(
        &self,
        body: JsonBody<CreatePortalSession>,
    ) -> Result<PortalSessionCreated, ApiError> {
        let CreatePortalSession { token, link_id } = body.0;
        if token.is_empty() || token.len() > 128 {
            return Err(ApiError::invalid("token", "must be 1 to 128 characters"));
        }
        if !token.starts_with(PORTAL_TOKEN_PREFIX) {
            return Err(ApiError::portal_expired());
        }
        let keys = &self.state.store.keys;
        let now = now_ms();
        let mut conn = self.state.conn().await?;
        let link = store_portal::by_token(&mut conn, keys, &hash_key(&token), now)
            .await?
            .ok_or_else(ApiError::portal_expired)?;
        if link_id.is_some_and(|id| id != link.id) {
            return Err(ApiError::portal_expired());
        }
        // Exchanges need no key, so they spend the link's request budget:
        // a link cannot be used to fill Redis with sessions.
        crate::auth::spend_budget(&self.state, &link.id)?;
        let session = generate_secret(SESSION_PREFIX);
        store_portal::add_session(&mut conn, keys, &hash_key(&session), &link, now).await?;
        Ok(PortalSessionCreated::Created(Json(PortalSession {
            session,
            expires_at: rfc3339_ms(link.expires_ms),
        })))
    }
}

/// The `frame-ancestors` sources for the portal page of `link_id`: the
/// link's allowed origins, or `'none'` (unknown, expired or revoked links,
/// and links that name none).
pub async fn frame_ancestors(state: &AppState, link_id: &str) -> String {
    if !ids::is_valid(IdKind::PortalLink, link_id) {
        return "'none'".into();
    }
    let Ok(mut conn) = state.conn().await else {
        return "'none'".into();
    };
    let link = store_portal::load(&mut conn, &state.store.keys, link_id, now_ms())
        .await
        .ok()
        .flatten();
    match link {
        Some(link) if !link.allowed_origins.is_empty() => link.allowed_origins.join(" "),
        _ => "'none'".into(),
    }
}
