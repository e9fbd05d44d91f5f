//! Event types: the built-in catalog every tenant gets, the rules for a
//! type's name, and how an endpoint's subscription patterns match a type.

/// A built-in event type: (name, description, example `data`).
pub const BUILT_IN: &[(&str, &str, &str)] = &[
    (
        "match.found",
        "A match was found for a search the tenant registered.",
        r#"{"match_id":"m_123","score":0.97}"#,
    ),
    (
        "video.processed",
        "A video finished processing and is ready to stream.",
        r#"{"video_id":"v_123","duration_s":93}"#,
    ),
    (
        "job.failed",
        "A background job failed after its own retries.",
        r#"{"job_id":"j_123","error":"timeout"}"#,
    ),
    (
        "user.created",
        "A user account was created.",
        r#"{"user_id":"u_123","email":"ada@example.com"}"#,
    ),
    (
        "subscription.updated",
        "A subscription changed plan or status.",
        r#"{"subscription_id":"s_123","plan":"pro"}"#,
    ),
    (
        "api_limit.reached",
        "The tenant reached an API usage limit.",
        r#"{"limit":"requests_per_day","value":10000}"#,
    ),
];

/// Operational event types: Hookfleet itself publishes them to the tenant's
/// endpoints that subscribe to them by exact name (`*` and `prefix.*` do
/// not match them, so a catch-all receiver is not surprised by them).
/// Tenants cannot publish them.
pub const OPERATIONAL: &[(&str, &str, &str)] = &[
    ("endpoint.disabled", "An endpoint was disabled: it answered 410 Gone, or failed without any success for HOOKFLEET_DISABLE_AFTER. Its queued deliveries are held until it is enabled again.", r#"{"endpoint_id":"ep_…","url":"https://example.com/hook","reason":"failing","failing_since":"2026-01-01T00:00:00.000Z"}"#),
    ("message.attempt.exhausted", "A delivery ended failed: its schedule of retries ran out, or the endpoint answered with a non-retryable 4xx.", r#"{"event_id":"evt_…","delivery_id":"dlv_…","endpoint_id":"ep_…","event_type":"user.created","attempts":8,"last_status_code":503}"#),
];

/// Whether `name` is an operational type (see [`OPERATIONAL`]).
pub fn is_operational(name: &str) -> bool {
    OPERATIONAL.iter().any(|(n, _, _)| *n == name)
}

/// The type of the events sent by `POST /api/v1/webhooks/{id}/test`. It is
/// always deliverable to the endpoint under test, whatever it subscribes to.
pub const TEST_EVENT_TYPE: &str = "webhook.test";

/// The longest event type name.
pub const MAX_NAME_LEN: usize = 128;

/// An event type name as a pattern, as the spec states it wherever a name
/// is taken ([`validate_name`] is the rule; a test in the API checks that
/// the two agree).
pub const NAME_PATTERN: &str = r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$";

/// An endpoint's subscription as a pattern: `*`, a name, or `prefix.*`
/// ([`Pattern::parse`] is the rule).
pub const SUBSCRIPTION_PATTERN: &str = r"^(\*|[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*(\.\*)?)$";

/// Whether `name` is a built-in type (operational types included).
pub fn is_built_in(name: &str) -> bool {
    BUILT_IN.iter().any(|(n, _, _)| *n == name) || is_operational(name)
}

/// Checks an event type name: 1..=128 chars of `[A-Za-z0-9_-]` in
/// dot-separated segments (`user.created`, `invoice.paid.v2`).
pub fn validate_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("must not be empty".into());
    }
    if name.len() > MAX_NAME_LEN {
        return Err(format!("must be at most {MAX_NAME_LEN} characters"));
    }
    for segment in name.split('.') {
        if segment.is_empty() {
            return Err("segments between dots must not be empty".into());
        }
        if !segment
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return Err("may contain only letters, digits, `_`, `-` and `.`".into());
        }
    }
    Ok(())
}

/// A subscription pattern: `*` (everything), `prefix.*` (every type under
/// `prefix.`), or an exact type name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Pattern {
    All,
    Prefix(String),
    Exact(String),
}

impl Pattern {
    /// Parses a pattern; exact names are checked against the type rules.
    pub fn parse(text: &str) -> Result<Self, String> {
        if text == "*" {
            return Ok(Pattern::All);
        }
        if let Some(prefix) = text.strip_suffix(".*") {
            validate_name(prefix)?;
            return Ok(Pattern::Prefix(format!("{prefix}.")));
        }
        if text.contains('*') {
            return Err("`*` is allowed only alone or as a final `.*`".into());
        }
        validate_name(text)?;
        Ok(Pattern::Exact(text.to_string()))
    }

    pub fn matches(&self, event_type: &str) -> bool {
        if is_operational(event_type) {
            return matches!(self, Pattern::Exact(name) if name == event_type);
        }
        match self {
            Pattern::All => true,
            Pattern::Prefix(prefix) => event_type.starts_with(prefix.as_str()),
            Pattern::Exact(name) => name == event_type,
        }
    }
}

/// Whether any of `patterns` (as stored: the texts) matches `event_type`.
pub fn any_matches<'a>(patterns: impl IntoIterator<Item = &'a str>, event_type: &str) -> bool {
    patterns
        .into_iter()
        .filter_map(|p| Pattern::parse(p).ok())
        .any(|p| p.matches(event_type))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(validate_name("user.created").is_ok());
        assert!(validate_name("a-b_c.v2").is_ok());
        assert!(validate_name("").is_err());
        assert!(validate_name("user..created").is_err());
        assert!(validate_name("user created").is_err());
        assert!(validate_name(&"a".repeat(129)).is_err());
    }

    #[test]
    fn patterns() {
        assert!(Pattern::parse("*").unwrap().matches("video.processed"));
        let video = Pattern::parse("video.*").unwrap();
        assert!(video.matches("video.processed"));
        assert!(video.matches("video.a.b"));
        assert!(!video.matches("video"));
        assert!(!video.matches("videos.processed"));
        assert!(Pattern::parse("user.created")
            .unwrap()
            .matches("user.created"));
        assert!(Pattern::parse("us*er").is_err());
        assert!(!Pattern::parse("*").unwrap().matches("endpoint.disabled"));
        assert!(!Pattern::parse("endpoint.*")
            .unwrap()
            .matches("endpoint.disabled"));
        assert!(Pattern::parse("endpoint.disabled")
            .unwrap()
            .matches("endpoint.disabled"));
        assert!(Pattern::parse(".*").is_err());
    }
}
