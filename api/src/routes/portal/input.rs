//! What a portal link may say: its life, its endpoints, the origins that
//! may frame it and its branding, each checked before anything is written
//! (the spec states the same patterns, `spec.rs`).

use std::sync::LazyLock;

use hookfleet_common::store::portal::Branding;
use regex::Regex;

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

static ORIGIN_FORM: LazyLock<Option<Regex>> = LazyLock::new(|| Regex::new(ORIGIN_PATTERN).ok());
static LOGO_URL_FORM: LazyLock<Option<Regex>> = LazyLock::new(|| Regex::new(LOGO_URL_PATTERN).ok());
static COLOR_FORM: LazyLock<Option<Regex>> = LazyLock::new(|| Regex::new(COLOR_PATTERN).ok());

/// Whether `text` has the form (a pattern that did not compile matches
/// nothing; the tests below compile each).
fn has_form(form: &LazyLock<Option<Regex>>, text: &str) -> bool {
    form.as_ref().is_some_and(|re| re.is_match(text))
}

/// A URL whose port is one (the patterns allow any five digits).
fn parses(url: &str) -> bool {
    url::Url::parse(url).is_ok()
}

pub fn check_origins(origins: &[String]) -> Result<Vec<String>, ApiError> {
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
            if origin.len() <= 200 && has_form(&ORIGIN_FORM, origin) && parses(origin) {
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
        |field: &str, value: &Option<String>, valid: &dyn Fn(&str) -> bool, rule: &str| match value
        {
            Some(v) if !valid(v) => Err(ApiError::invalid(format!("branding.{field}"), rule)),
            _ => Ok(value.clone()),
        };
    Ok(Branding {
        name: check(
            "name",
            &branding.name,
            &|v| !v.is_empty() && v.chars().count() <= 100 && !v.chars().any(char::is_control),
            "must be 1 to 100 characters without control characters",
        )?,
        logo_url: check(
            "logo_url",
            &branding.logo_url,
            &|v| v.len() <= 500 && has_form(&LOGO_URL_FORM, v) && parses(v),
            "must be an https URL of at most 500 characters",
        )?,
        accent_color: check(
            "accent_color",
            &branding.accent_color,
            &|v| has_form(&COLOR_FORM, v),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_patterns_compile_and_draw_the_lines_the_docs_say() {
        for form in [&ORIGIN_FORM, &LOGO_URL_FORM, &COLOR_FORM] {
            assert!(form.is_some());
        }
        let origins =
            |list: &[&str]| check_origins(&list.iter().map(|o| o.to_string()).collect::<Vec<_>>());
        assert_eq!(
            origins(&["https://App.Example.com:8443", "http://10.0.0.1"]).ok(),
            Some(vec![
                "https://app.example.com:8443".to_string(),
                "http://10.0.0.1".to_string()
            ])
        );
        for bad in [
            "https://a.example.com/",
            "https://[::1]",
            "https://a.example.com:70000",
            "https://a b",
        ] {
            assert!(origins(&[bad]).is_err(), "{bad}");
        }
        let branding = |name: &str, logo: &str, color: &str| {
            check_branding(&PortalBranding {
                name: Some(name.into()),
                logo_url: Some(logo.into()),
                accent_color: Some(color.into()),
            })
        };
        assert!(branding("Acme", "https://acme.example.com/logo.svg?v=2", "#0B7285").is_ok());
        assert!(branding("", "https://acme.example.com/l.svg", "#0b7285").is_err());
        assert!(branding("a\u{85}b", "https://acme.example.com/l.svg", "#0b7285").is_err());
        assert!(branding("Acme", "http://acme.example.com/l.svg", "#0b7285").is_err());
        assert!(branding("Acme", "https://acme.example.com/\"x", "#0b7285").is_err());
        assert!(branding("Acme", "https://acme.example.com/l.svg", "teal").is_err());
    }
}
