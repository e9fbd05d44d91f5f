//! Input types that can only be built through a constructor that checks
//! them ("parse, don't validate"): once a handler holds an [`EndpointUrl`]
//! or a [`HeaderList`], nothing downstream checks again. Every error names
//! the field, as the API promises.

use std::collections::BTreeMap;

use hookfleet_common::catalog::{self, Pattern};
use hookfleet_common::model::EndpointOrdering;
use hookfleet_common::net_policy::AddressPolicy;
use poem::http::HeaderName;

use crate::error::ApiError;

/// Longest endpoint URL.
pub const MAX_URL_LEN: usize = 2048;
/// Longest description (endpoint or event type).
pub const MAX_DESCRIPTION_LEN: usize = 1024;
/// Most subscription patterns per endpoint.
pub const MAX_EVENTS: usize = 100;
/// Most custom headers per endpoint.
pub const MAX_HEADERS: usize = 20;
/// Longest custom header value.
pub const MAX_HEADER_VALUE_LEN: usize = 1024;
/// Highest per-endpoint rate limit (deliveries per second).
pub const MAX_RATE_LIMIT: u32 = 10_000;

/// Headers Hookfleet sets itself: a tenant may not set or override them.
pub const RESERVED_HEADERS: &[&str] = &[
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
    "content-type",
    "content-length",
    "content-encoding",
    "host",
    "user-agent",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "te",
    "trailer",
    "upgrade",
    "proxy-authorization",
    "proxy-connection",
];

/// An IPv6 address in hex groups, with or without one `::` (the usual
/// eight alternatives; forms with a trailing dotted IPv4 address are left
/// out: the destination policy refuses the mapped and translated ranges
/// that use them).
macro_rules! ipv6_hex {
    () => {
        concat!(
            r"([0-9A-Fa-f]{1,4}:){7}[0-9A-Fa-f]{1,4}",
            r"|([0-9A-Fa-f]{1,4}:){1,7}:",
            r"|([0-9A-Fa-f]{1,4}:){1,6}:[0-9A-Fa-f]{1,4}",
            r"|([0-9A-Fa-f]{1,4}:){1,5}(:[0-9A-Fa-f]{1,4}){1,2}",
            r"|([0-9A-Fa-f]{1,4}:){1,4}(:[0-9A-Fa-f]{1,4}){1,3}",
            r"|([0-9A-Fa-f]{1,4}:){1,3}(:[0-9A-Fa-f]{1,4}){1,4}",
            r"|([0-9A-Fa-f]{1,4}:){1,2}(:[0-9A-Fa-f]{1,4}){1,5}",
            r"|[0-9A-Fa-f]{1,4}:(:[0-9A-Fa-f]{1,4}){1,6}",
            r"|:((:[0-9A-Fa-f]{1,4}){1,7}|:)"
        )
    };
}

/// The form of an endpoint URL, as the spec states it for `url`:
/// `http(s)://[userinfo@]host[:port][/path][?query]`, where the host is a
/// name of letters, digits, `-` and `_` labels, an IPv4 address or a
/// bracketed IPv6 address in hex groups. The URL parser accepts more (Unicode hosts,
/// percent-encoded hosts, empty labels); refusing those here keeps the
/// API's rule and the spec's pattern one rule, which a test checks.
pub const URL_PATTERN: &str = concat!(
    r"^[Hh][Tt][Tt][Pp][Ss]?://",
    r"([^\x00-\x20\x7f#/?@\[\]]+@)?",
    r"(\[(",
    ipv6_hex!(),
    r")\]|([A-Za-z0-9_-]{1,63}\.)*[A-Za-z0-9_-]{1,63}\.?)",
    r"(:[0-9]{1,5})?",
    r"([/?][^\x00-\x20\x7f#]*)?$"
);

static URL_FORM: std::sync::LazyLock<Option<regex::Regex>> =
    std::sync::LazyLock::new(|| regex::Regex::new(URL_PATTERN).ok());

/// An absolute `http`/`https` URL with a host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointUrl(String);

impl EndpointUrl {
    /// Parses and checks a URL against the destination policy (scheme,
    /// restricted literal addresses, `localhost` names).
    pub fn parse(text: &str, policy: &AddressPolicy) -> Result<Self, ApiError> {
        let field = "url";
        if text.is_empty() {
            return Err(ApiError::invalid(field, "must not be empty"));
        }
        if text.len() > MAX_URL_LEN {
            return Err(ApiError::invalid(
                field,
                format!("must be at most {MAX_URL_LEN} characters"),
            ));
        }
        // The URL parser forgives a lot (missing slashes after the scheme,
        // surrounding spaces, tabs and line breaks inside); refuse what it
        // would silently repair, so the rules are the documented pattern.
        let lower = text.get(..8).unwrap_or(text).to_ascii_lowercase();
        if !lower.starts_with("http://") && !lower.starts_with("https://") {
            return Err(ApiError::invalid(
                field,
                "must start with http:// or https://",
            ));
        }
        if text.chars().any(|c| c <= ' ' || c == '\u{7f}') {
            return Err(ApiError::invalid(
                field,
                "must not contain spaces or control characters (percent-encode them)",
            ));
        }
        // The pattern compiles (a unit test says so); were it ever not to,
        // the URL parser and the policy below still hold the line.
        if URL_FORM.as_ref().is_some_and(|form| !form.is_match(text)) {
            return Err(ApiError::invalid(
                field,
                "must be http(s)://host[:port][/path][?query], the host a name of letters, digits, `-` and `_` labels, an IPv4 address or a bracketed IPv6 address",
            ));
        }
        let url = url::Url::parse(text)
            .map_err(|err| ApiError::invalid(field, format!("not a valid absolute URL ({err})")))?;
        if url.host_str().is_none_or(str::is_empty) {
            return Err(ApiError::invalid(field, "must have a host"));
        }
        policy
            .check_url(&url)
            .map_err(|reason| ApiError::invalid(field, reason))?;
        if url.fragment().is_some() {
            return Err(ApiError::invalid(field, "must not have a #fragment"));
        }
        Ok(Self(url.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

/// A description of at most [`MAX_DESCRIPTION_LEN`] characters.
pub fn description(field: &str, text: &str) -> Result<String, ApiError> {
    if text.chars().count() > MAX_DESCRIPTION_LEN {
        return Err(ApiError::invalid(
            field,
            format!("must be at most {MAX_DESCRIPTION_LEN} characters"),
        ));
    }
    Ok(text.to_string())
}

/// An endpoint's subscription patterns: non-empty, each `*`, `prefix.*` or
/// the exact name of a type the tenant can publish; duplicates dropped.
pub fn events(
    patterns: &[String],
    is_known: impl Fn(&str) -> bool,
) -> Result<Vec<String>, ApiError> {
    if patterns.is_empty() {
        return Err(ApiError::invalid(
            "events",
            "must list at least one event type (or `*` for all)",
        ));
    }
    if patterns.len() > MAX_EVENTS {
        return Err(ApiError::invalid(
            "events",
            format!("at most {MAX_EVENTS} entries"),
        ));
    }
    let mut out: Vec<String> = Vec::with_capacity(patterns.len());
    for (i, text) in patterns.iter().enumerate() {
        let field = format!("events[{i}]");
        match Pattern::parse(text) {
            Err(reason) => return Err(ApiError::invalid(field, reason)),
            Ok(Pattern::Exact(name)) if !is_known(&name) => {
                return Err(ApiError::invalid(
                    field,
                    format!("unknown event type `{name}` (see GET /api/v1/webhooks/events)"),
                ))
            }
            Ok(_) => {}
        }
        if !out.contains(text) {
            out.push(text.clone());
        }
    }
    Ok(out)
}

/// Custom request headers sent with every delivery to an endpoint.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeaderList(Vec<(String, String)>);

impl HeaderList {
    pub fn parse(map: &BTreeMap<String, String>) -> Result<Self, ApiError> {
        if map.len() > MAX_HEADERS {
            return Err(ApiError::invalid(
                "headers",
                format!("at most {MAX_HEADERS} headers"),
            ));
        }
        let mut out = Vec::with_capacity(map.len());
        for (name, value) in map {
            let field = format!("headers.{name}");
            let parsed = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| ApiError::invalid(&field, "not a valid HTTP header name"))?;
            if RESERVED_HEADERS.contains(&parsed.as_str())
                || parsed.as_str().starts_with("webhook-")
            {
                return Err(ApiError::invalid(
                    &field,
                    "is set by Hookfleet itself and cannot be overridden",
                ));
            }
            if value.len() > MAX_HEADER_VALUE_LEN {
                return Err(ApiError::invalid(
                    &field,
                    format!("the value must be at most {MAX_HEADER_VALUE_LEN} bytes"),
                ));
            }
            // Visible ASCII and spaces, as the OpenAPI pattern says: bytes
            // past 0x7f are legal on the wire but read differently by
            // different receivers.
            if !value.bytes().all(|b| (0x20..0x7f).contains(&b)) {
                return Err(ApiError::invalid(
                    &field,
                    "the value must be visible ASCII (no control characters or line breaks)",
                ));
            }
            if out.iter().any(|(name, _)| name == parsed.as_str()) {
                return Err(ApiError::invalid(
                    &field,
                    "names another header of the list again (header names ignore case)",
                ));
            }
            out.push((parsed.as_str().to_string(), value.clone()));
        }
        Ok(Self(out))
    }

    pub fn into_vec(self) -> Vec<(String, String)> {
        self.0
    }
}

/// Deliveries per second for one endpoint: 1..=[`MAX_RATE_LIMIT`].
pub fn rate_limit(value: i64) -> Result<u32, ApiError> {
    if value < 1 || value > i64::from(MAX_RATE_LIMIT) {
        return Err(ApiError::invalid(
            "rate_limit",
            format!("must be between 1 and {MAX_RATE_LIMIT} deliveries per second"),
        ));
    }
    Ok(value as u32)
}

/// Attempts in flight at once to one endpoint, fleet-wide:
/// 1..=[`MAX_IN_FLIGHT`](hookfleet_common::config::MAX_IN_FLIGHT).
pub fn max_in_flight(value: i64) -> Result<u32, ApiError> {
    let max = hookfleet_common::config::MAX_IN_FLIGHT;
    if value < 1 || value > i64::from(max) {
        return Err(ApiError::invalid(
            "max_in_flight",
            format!("must be between 1 and {max} attempts"),
        ));
    }
    Ok(value as u32)
}

/// A per-endpoint attempt timeout: 1 s up to the lease minus 5 s, so a
/// lease always outlives its attempt (else a slow receiver would get the
/// event twice).
pub fn timeout_ms(seconds: i64, config: &hookfleet_common::Config) -> Result<u64, ApiError> {
    let max = config.lease.as_secs().saturating_sub(5).max(1);
    if seconds < 1 || seconds as u64 > max {
        return Err(ApiError::invalid(
            "timeout_s",
            format!("must be between 1 and {max} seconds"),
        ));
    }
    Ok(seconds as u64 * 1000)
}

/// Most entries of an endpoint's own retry schedule.
pub const MAX_SCHEDULE_ENTRIES: usize = 20;

/// An endpoint's delivery order: `none` or `fifo`.
pub fn ordering(text: &str) -> Result<EndpointOrdering, ApiError> {
    EndpointOrdering::parse(text)
        .ok_or_else(|| ApiError::invalid("ordering", "must be `none` or `fifo`"))
}

/// An endpoint's own retry schedule: 1 to [`MAX_SCHEDULE_ENTRIES`]
/// durations in the syntax of `HOOKFLEET_RETRY_SCHEDULE` (`0s`, `250ms`,
/// `5m`, `2h`, `1d`), the first before the first attempt; with its jitter
/// (+10 % each) the whole must end within the server's retention, as the
/// server's own schedule must. Returns the delays in ms.
pub fn retry_schedule(
    entries: &[String],
    config: &hookfleet_common::Config,
) -> Result<Vec<u64>, ApiError> {
    if entries.is_empty() || entries.len() > MAX_SCHEDULE_ENTRIES {
        return Err(ApiError::invalid(
            "retry_schedule",
            format!("must list 1 to {MAX_SCHEDULE_ENTRIES} durations (or be null for the server's schedule)"),
        ));
    }
    let mut delays = Vec::with_capacity(entries.len());
    for (i, text) in entries.iter().enumerate() {
        let field = format!("retry_schedule[{i}]");
        if text.trim() != text || text.is_empty() {
            return Err(ApiError::invalid(
                field,
                "a duration such as `30s`, `5m` or `2h`, without spaces",
            ));
        }
        let delay = hookfleet_common::duration::parse_duration(text)
            .map_err(|reason| ApiError::invalid(field, reason))?;
        delays.push(delay);
    }
    let total: std::time::Duration = delays.iter().sum();
    let retention = config.retention;
    if total.mul_f64(1.1) >= retention {
        return Err(ApiError::invalid(
            "retry_schedule",
            format!(
                "the whole schedule with its jitter (+10 %) must end within the server's retention ({}); this one takes {}",
                hookfleet_common::duration::format_duration(retention),
                hookfleet_common::duration::format_duration(total.mul_f64(1.1)),
            ),
        ));
    }
    Ok(delays.iter().map(|d| d.as_millis() as u64).collect())
}

/// An endpoint's content filter: a CEL expression that compiles and
/// passes the checks of `hookfleet_common::filter` (at most 2 KiB, only
/// `type` and `data`, known functions, a bool at its root). The error
/// names the line and column.
pub fn filter(text: &str) -> Result<String, ApiError> {
    hookfleet_common::filter::compile(text)
        .map_err(|err| ApiError::invalid("filter", err.to_string()))?;
    Ok(text.to_string())
}

/// An event type name for a new tenant-defined type.
pub fn event_type_name(field: &str, name: &str) -> Result<String, ApiError> {
    catalog::validate_name(name).map_err(|reason| ApiError::invalid(field, reason))?;
    Ok(name.to_string())
}

/// Whether `key` may be an idempotency key: 1..=255 visible ASCII characters.
pub fn is_idempotency_key(key: &str) -> bool {
    !key.is_empty() && key.len() <= 255 && key.bytes().all(|b| b.is_ascii_graphic())
}

/// An `Idempotency-Key` header (see [`is_idempotency_key`]).
pub fn idempotency_key(key: &str) -> Result<String, ApiError> {
    if !is_idempotency_key(key) {
        return Err(ApiError::bad_header(
            "Idempotency-Key",
            "must be 1 to 255 visible ASCII characters",
        ));
    }
    Ok(key.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_of(err: ApiError) -> Option<String> {
        match err {
            ApiError::Invalid(body) | ApiError::BadRequest(body) => body.0.field,
            _ => None,
        }
    }

    #[test]
    fn urls() {
        let open = AddressPolicy::new(
            AddressPolicy::parse_allow_list("127.0.0.0/8").unwrap(),
            false,
        );
        let strict = AddressPolicy::default();
        assert!(EndpointUrl::parse("https://example.com/hook", &strict).is_ok());
        assert!(EndpointUrl::parse("http://127.0.0.1:9000/x?y=1", &open).is_ok());
        assert_eq!(
            field_of(EndpointUrl::parse("http://127.0.0.1:9000/x", &strict).unwrap_err())
                .as_deref(),
            Some("url")
        );
        for bad in [
            "",
            "example.com/hook",
            "ftp://example.com",
            "https://",
            "javascript:alert(1)",
            "https://example.com/#x",
        ] {
            assert_eq!(
                field_of(EndpointUrl::parse(bad, &open).unwrap_err()).as_deref(),
                Some("url"),
                "{bad}"
            );
        }
        assert!(EndpointUrl::parse(&format!("https://e.com/{}", "a".repeat(3000)), &open).is_err());
    }

    /// The name and subscription patterns the spec states are the rules
    /// `catalog` applies.
    #[test]
    fn event_type_patterns_agree_with_the_catalogs_checks() {
        let name = regex::Regex::new(catalog::NAME_PATTERN).unwrap();
        let subscription = regex::Regex::new(catalog::SUBSCRIPTION_PATTERN).unwrap();
        for text in [
            "user.created",
            "a",
            "A_b-c.d9",
            "invoice.paid.v2",
            "",
            ".",
            "a.",
            ".a",
            "a..b",
            "a b",
            "a.*",
            "*",
            "a/b",
            "é",
            "a.b.*",
            "*.a",
            "a.*.b",
        ] {
            assert_eq!(
                name.is_match(text),
                catalog::validate_name(text).is_ok(),
                "name {text:?}"
            );
            assert_eq!(
                subscription.is_match(text),
                Pattern::parse(text).is_ok(),
                "subscription {text:?}"
            );
        }
    }

    #[test]
    fn the_url_pattern_compiles_and_is_the_rule_the_api_applies() {
        assert!(URL_FORM.is_some(), "URL_PATTERN must compile");
        let open = AddressPolicy::new(
            AddressPolicy::parse_allow_list("0.0.0.0/0,::/0").unwrap(),
            false,
        );
        for good in [
            "https://example.com",
            "https://example.com./x",
            "http://receiver:8080/hook",
            "https://user:pass@hooks.example.com/in?x=1&y=%20",
            "https://my_service.internal/",
            "http://93.184.216.34/",
            "https://[2001:db8::1]:8443/x",
            "http://[2001:db8:0:0:0:0:0:1]/",
            "http://[1:2:3:4:5:6:7::]/",
            "https://xn--bcher-kva.example/",
            "HTTPS://EXAMPLE.COM?q",
        ] {
            assert!(EndpointUrl::parse(good, &open).is_ok(), "{good}");
        }
        for bad in [
            "https://bücher.example/",
            "https://%65xample.com/",
            "https://a..b/",
            "http://[1:2:3:4:5:6:7:8:9]/",
            "http://[1::2::3]/",
            "http://[::ffff:93.184.216.34]/",
            "https://example.com:port/",
            "https://example.com:123456/",
            "https://@example.com/",
            "https://exa mple.com/",
        ] {
            let err = EndpointUrl::parse(bad, &open).unwrap_err();
            assert_eq!(field_of(err).as_deref(), Some("url"), "{bad}");
        }
    }

    #[test]
    fn event_patterns() {
        let known = |name: &str| name == "user.created";
        assert_eq!(
            events(
                &["user.created".into(), "*".into(), "video.*".into()],
                known
            )
            .unwrap()
            .len(),
            3
        );
        assert_eq!(
            field_of(events(&[], known).unwrap_err()).as_deref(),
            Some("events")
        );
        assert_eq!(
            field_of(events(&["*".into(), "nope.nope".into()], known).unwrap_err()).as_deref(),
            Some("events[1]")
        );
        assert_eq!(
            field_of(events(&["a b".into()], known).unwrap_err()).as_deref(),
            Some("events[0]")
        );
        assert_eq!(
            events(&["*".into(), "*".into()], known).unwrap(),
            vec!["*".to_string()]
        );
    }

    #[test]
    fn headers() {
        let ok: BTreeMap<String, String> = [("X-Team".to_string(), "blue".to_string())].into();
        assert_eq!(
            HeaderList::parse(&ok).unwrap().into_vec(),
            vec![("x-team".into(), "blue".into())]
        );
        for (name, value, field) in [
            ("bad name", "v", "headers.bad name"),
            ("webhook-signature", "v", "headers.webhook-signature"),
            ("Webhook-Id", "v", "headers.Webhook-Id"),
            ("x-ok", "line\r\nbreak", "headers.x-ok"),
        ] {
            let map: BTreeMap<String, String> = [(name.to_string(), value.to_string())].into();
            assert_eq!(
                field_of(HeaderList::parse(&map).unwrap_err()).as_deref(),
                Some(field)
            );
        }
    }

    #[test]
    fn rate_limits() {
        assert_eq!(rate_limit(50).unwrap(), 50);
        assert!(rate_limit(0).is_err());
        assert!(rate_limit(-3).is_err());
        assert!(rate_limit(1_000_000).is_err());
        assert_eq!(max_in_flight(1).unwrap(), 1);
        assert_eq!(max_in_flight(1000).unwrap(), 1000);
        assert!(max_in_flight(0).is_err());
        assert!(max_in_flight(1001).is_err());
    }
}
