//! What a portal link may say: its life, its endpoints, the origins that
//! may frame it and its branding, each checked before anything is written
//! (the spec states the same patterns, `spec.rs`).

use hookfleet_common::store::portal::Branding;

use super::PortalBranding;
use crate::auth::AnyAuth;
use crate::error::ApiError;

/// Default and longest life of a portal link, in seconds.
pub const DEFAULT_EXPIRES_IN: u32 = 3600;
pub const MAX_EXPIRES_IN: u32 = 86_400;
/// Shortest life of a portal link, in seconds.
pub const MIN_EXPIRES_IN: u32 = 60;
/// Most endpoints one link may be limited to, and most embedding origins.
pub const MAX_LINK_ENDPOINTS: usize = 100;
pub const MAX_ORIGINS: usize = 10;

/// An origin allowed to embed a portal: `http(s)://host[:port]` with a host
/// name or IPv4 address, nothing more (it goes into a
/// `Content-Security-Policy` header as it is).
pub const ORIGIN_PATTERN: &str = r"^https?://[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*(:[0-9]{1,5})?$";
/// A logo's URL: https, a host name or IPv4 address, and a path without
/// quotes, spaces, brackets or braces.
pub const LOGO_URL_PATTERN: &str = r#"^https://[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?(:[0-9]{1,5})?([/?#][^\s"'<>\\\[\]{}|^`]*)?$"#;
/// An accent colour: `#rrggbb`.
pub const COLOR_PATTERN: &str = "^#[0-9A-Fa-f]{6}$";

/// The tenant a portal-link request acts for: the tenant key's, or the
/// one the admin key names.
pub fn link_tenant(auth: &AnyAuth, named: Option<&str>) -> Result<String, ApiError> {
    match auth {
        AnyAuth::Admin(_) => named
            .map(str::to_string)
            .ok_or_else(|| ApiError::invalid("tenant_id", "is required with the admin key")),
        AnyAuth::Tenant(key) => match named {
            Some(id) if id != key.0.tenant_id => Err(ApiError::invalid(
                "tenant_id",
                "must be this API key's tenant (or absent)",
            )),
            _ => Ok(key.0.tenant_id.clone()),
        },
    }
}

pub fn check_origins(origins: &[String]) -> Result<Vec<String>, ApiError> {
    let pattern = regex::Regex::new(ORIGIN_PATTERN).map_err(|_| ApiError::unavailable())?;
    if origins.len() > MAX_ORIGINS {
        return Err(ApiError::invalid(
            "allowed_origins",
            format!("at most {MAX_ORIGINS} origins"),
        ));
    }
    origins
        .iter()
        .enumerate()
        .map(|(i, origin)| {
            // The port must be one (the pattern allows five digits).
            let port_ok = url::Url::parse(origin).is_ok();
            if origin.len() <= 200 && pattern.is_match(origin) && port_ok {
                Ok(origin.to_ascii_lowercase())
            } else {
                Err(ApiError::invalid(
                    format!("allowed_origins[{i}]"),
                    "must be an origin: http(s)://host[:port], with no path",
                ))
            }
        })
        .collect()
}

pub fn check_branding(branding: &PortalBranding) -> Result<Branding, ApiError> {
    let check =
        |field: &str, value: &Option<String>, pattern: &str, max: usize, rule: &str| match value {
            Some(v) => {
                let re = regex::Regex::new(pattern).map_err(|_| ApiError::unavailable())?;
                // A URL's port must be one (the pattern allows five digits).
                let parses = field != "logo_url" || url::Url::parse(v).is_ok();
                if v.chars().count() <= max && re.is_match(v) && parses {
                    Ok(Some(v.clone()))
                } else {
                    Err(ApiError::invalid(format!("branding.{field}"), rule))
                }
            }
            None => Ok(None),
        };
    Ok(Branding {
        name: check(
            "name",
            &branding.name,
            r"^[^\x00-\x1f\x7f-\x9f]+$",
            100,
            "must be 1 to 100 characters without control characters",
        )?,
        logo_url: check(
            "logo_url",
            &branding.logo_url,
            LOGO_URL_PATTERN,
            500,
            "must be an https URL of at most 500 characters",
        )?,
        accent_color: check(
            "accent_color",
            &branding.accent_color,
            COLOR_PATTERN,
            7,
            "must be a colour as #rrggbb",
        )?,
    })
}

/// The origin the request was made to, from its `Host` header (and
/// `X-Forwarded-Proto` when a proxy says https), or `None` when the header
/// is absent or not a plain `host[:port]`.
pub fn request_origin(req: &poem::Request) -> Option<String> {
    let host = req.headers().get("host")?.to_str().ok()?;
    let plain = !host.is_empty()
        && host.len() <= 255
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b));
    if !plain {
        return None;
    }
    let https = req
        .headers()
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("https"));
    Some(format!("{}://{host}", if https { "https" } else { "http" }))
}
