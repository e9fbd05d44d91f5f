//! The HTTP side of a delivery: the one shared client and the request rules.
//! Nothing else in Hookfleet builds outbound requests, so timeouts, redirect
//! policy and header rules live here.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hookfleet_common::net_policy::AddressPolicy;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use hookfleet_common::signing::signature_header;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE, USER_AGENT};

use crate::claim::Job;

/// `User-Agent` of every delivery.
pub const USER_AGENT_VALUE: &str = hookfleet_common::model::USER_AGENT;

/// Resolves names for deliveries and drops every address the policy
/// refuses, at connect time, so a public-looking name that resolves to an
/// internal address (DNS rebinding included) never gets a connection.
struct PolicyResolver {
    policy: AddressPolicy,
}

impl Resolve for PolicyResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy.clone();
        Box::pin(async move {
            let host = name.as_str().to_string();
            let resolved = tokio::net::lookup_host((host.as_str(), 0)).await?;
            let allowed: Vec<SocketAddr> =
                resolved.filter(|addr| policy.allows(addr.ip())).collect();
            if allowed.is_empty() {
                let refusal: Box<dyn std::error::Error + Send + Sync> = format!(
                    "refused: {host} resolves only to private, loopback or otherwise restricted addresses"
                )
                .into();
                return Err(refusal);
            }
            let addrs: Addrs = Box::new(allowed.into_iter());
            Ok(addrs)
        })
    }
}

/// Builds the client shared by every attempt of this process: connection
/// reuse across deliveries, the SSRF-checking resolver, no redirects (a 3xx
/// is the receiver's answer, and following it could lead a request
/// somewhere the tenant never registered), no proxies from the environment.
pub fn build_client(policy: &AddressPolicy) -> Result<reqwest::Client, reqwest::Error> {
    // reqwest is built without a default crypto provider (ring is much
    // lighter to build than aws-lc-rs); install ring once per process.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .connect_timeout(Duration::from_secs(10))
        .pool_idle_timeout(Duration::from_secs(60))
        .pool_max_idle_per_host(64)
        .tcp_nodelay(true)
        .dns_resolver(Arc::new(PolicyResolver {
            policy: policy.clone(),
        }))
        .build()
}

/// The timeout of an attempt whose lease (`lease` long) started `since_claim`
/// ago: the endpoint's own (or the default), cut so that the attempt ends
/// 5 s before the lease does. `None` when less than a second would be left
/// (or, for a timeout under two seconds, less than half of it): better not
/// to send, and let the delivery be claimed again. (A flat second would
/// refuse every attempt of a 1 s timeout under the shortest lease the
/// configuration allows, the timeout plus 5 s.)
pub fn attempt_timeout(
    lease: Duration,
    since_claim: Duration,
    endpoint_timeout: Option<Duration>,
    default_timeout: Duration,
) -> Option<Duration> {
    let timeout = endpoint_timeout.unwrap_or(default_timeout);
    let left = lease
        .saturating_sub(since_claim)
        .saturating_sub(Duration::from_secs(5));
    if left.is_zero() || left < Duration::from_secs(1).min(timeout / 2) {
        return None;
    }
    Some(timeout.min(left))
}

/// What happened on the wire for one attempt.
#[derive(Debug, Clone, Default)]
pub struct AttemptResult {
    pub status: Option<u16>,
    pub duration: Duration,
    /// Connection, TLS or timeout error, without the URL.
    pub error: Option<String>,
    pub response_headers: Vec<(String, String)>,
    /// The first bytes of the response body (`HOOKFLEET_RESPONSE_EXCERPT`).
    pub response_body: String,
    /// `Retry-After` from a 429/503 answer, as a delay.
    pub retry_after: Option<Duration>,
    /// The `webhook-timestamp` that was sent.
    pub webhook_timestamp: u64,
    /// The destination was refused by the address policy before any
    /// connection (a literal restricted address): retrying cannot help.
    pub refused: bool,
    /// The fingerprints of the secrets that signed it, space-separated:
    /// what the attempt log keeps instead of the request headers.
    pub signed_by: String,
    /// No answer came within the attempt's timeout: the endpoint's
    /// concurrency window shrinks (see record.lua).
    pub timed_out: bool,
}

/// Checks a URL whose host is a literal IP (the resolver only sees names).
pub fn check_destination(parsed: &url::Url, policy: &AddressPolicy) -> Result<(), String> {
    policy
        .check_url(parsed)
        .map_err(|reason| format!("refused: the URL {reason}"))?;
    let literal = match parsed.host() {
        Some(url::Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
        Some(url::Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
        _ => None,
    };
    match literal {
        Some(ip) if !policy.allows(ip) => Err("refused: restricted address".into()),
        _ => Ok(()),
    }
}

/// The three protocol headers of one attempt, in the order they are sent.
pub type SignedHeaders = [(&'static str, String); 3];

/// The signature headers of one attempt, and the fingerprints of the
/// secrets that signed it.
pub fn signed_headers(
    job: &Job,
    body: &str,
    timestamp: u64,
    now_ms: u64,
) -> Result<(SignedHeaders, String), String> {
    let endpoint = &job.endpoint;
    let secret = endpoint.signer.as_ref().map_err(String::clone)?;
    let previous = match (&endpoint.previous_signer, endpoint.previous_secret_until) {
        (Some(previous), Some(until)) if until > now_ms => Some(previous),
        _ => None,
    };
    let signature = signature_header(secret, previous, &job.event_id, timestamp, body.as_bytes());
    let mut signed_by = secret.fingerprint().to_string();
    if let Some(previous) = previous {
        signed_by.push(' ');
        signed_by.push_str(previous.fingerprint());
    }
    Ok((
        [
            ("webhook-id", job.event_id.clone()),
            ("webhook-timestamp", timestamp.to_string()),
            ("webhook-signature", signature),
        ],
        signed_by,
    ))
}

/// Sends one attempt, given at most `timeout` (see [`attempt_timeout`]),
/// and reads at most a few KiB of the answer.
pub async fn send(
    client: &reqwest::Client,
    policy: &AddressPolicy,
    job: &Job,
    body: &str,
    timeout: Duration,
    now_ms: u64,
    excerpt_max: usize,
) -> AttemptResult {
    let timestamp = now_ms / 1000;
    let mut result = AttemptResult {
        webhook_timestamp: timestamp,
        ..AttemptResult::default()
    };
    let url = match &job.endpoint.parsed_url {
        Ok(url) => url,
        Err(reason) => {
            tracing::warn!(
                delivery_id = %job.delivery_id,
                endpoint_id = %job.endpoint_id,
                reason = %reason,
                "delivery refused: the endpoint URL does not parse"
            );
            result.error = Some(reason.clone());
            result.refused = true;
            return result;
        }
    };
    if let Err(reason) = check_destination(url, policy) {
        tracing::warn!(
            delivery_id = %job.delivery_id,
            endpoint_id = %job.endpoint_id,
            reason = %reason,
            "delivery refused by the address policy"
        );
        result.error = Some(reason);
        result.refused = true;
        return result;
    }
    let signed = match signed_headers(job, body, timestamp, now_ms) {
        Ok((signed, signed_by)) => {
            result.signed_by = signed_by;
            signed
        }
        Err(err) => {
            result.error = Some(format!("endpoint secret unusable: {err}"));
            return result;
        }
    };
    let mut headers = HeaderMap::with_capacity(job.endpoint.headers.len() + 5);
    // Custom headers first, so the protocol headers below always win.
    for (name, value) in &job.endpoint.headers {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            headers.insert(name, value);
        }
    }
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(USER_AGENT, HeaderValue::from_static(USER_AGENT_VALUE));
    for (name, value) in signed {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    }
    let started = Instant::now();
    let response = client
        .post(url.clone())
        .headers(headers)
        .timeout(timeout)
        .body(body.to_owned())
        .send()
        .await;
    match response {
        Ok(mut response) => {
            let status = response.status().as_u16();
            result.status = Some(status);
            result.response_headers = response
                .headers()
                .iter()
                .map(|(k, v)| {
                    (
                        k.as_str().to_owned(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect();
            if status == 429 || status == 503 {
                result.retry_after = response
                    .headers()
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(parse_retry_after);
            }
            let mut excerpt = Vec::new();
            loop {
                match response.chunk().await {
                    Ok(Some(chunk)) => {
                        let room = excerpt_max.saturating_sub(excerpt.len());
                        excerpt.extend_from_slice(&chunk[..chunk.len().min(room)]);
                        if excerpt.len() >= excerpt_max {
                            break;
                        }
                    }
                    Ok(None) => break,
                    Err(err) => {
                        // The status already arrived; a broken body does not
                        // change the outcome, but is worth showing.
                        result.error = Some(describe(&err));
                        break;
                    }
                }
            }
            result.response_body = String::from_utf8_lossy(&excerpt).into_owned();
        }
        Err(err) => {
            result.timed_out = err.is_timeout();
            result.error = Some(describe(&err));
        }
    }
    result.duration = started.elapsed();
    result
}

/// A short, URL-free description of a request error (URLs may carry tokens).
fn describe(err: &reqwest::Error) -> String {
    let kind = if err.is_timeout() {
        "timeout"
    } else if err.is_connect() {
        "connect error"
    } else if err.is_body() || err.is_decode() {
        "response body error"
    } else {
        "request error"
    };
    let mut text = kind.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// `Retry-After` as delay-seconds (HTTP-dates are rare from webhook
/// receivers and are treated as absent).
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::sync::Mutex;

    use hookfleet_common::store::claim::ClaimedEndpoint;
    use tracing::Instrument;

    /// What the subscriber below writes, shared with the test.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            if let Ok(mut buffer) = self.0.lock() {
                buffer.extend_from_slice(bytes);
            }
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// The attempt's span exists at debug level only: at info, a refused
    /// attempt's warning names its delivery and endpoint itself.
    #[tokio::test]
    async fn a_refused_attempt_names_its_delivery_at_info_level() {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::INFO)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        let _default = tracing::subscriber::set_default(subscriber);

        let policy = AddressPolicy::new(Vec::new(), false);
        let client = build_client(&policy).expect("client");
        let endpoint = ClaimedEndpoint::new(
            "ep_refused",
            "ten_a",
            "http://10.1.2.3/hook",
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        );
        let job = Job::first_attempt("dlv_refused", "evt_refused", Arc::new(endpoint));
        let span = tracing::debug_span!("attempt", delivery_id = %job.delivery_id);
        let result = send(&client, &policy, &job, "{}", Duration::from_secs(1), 0, 64)
            .instrument(span)
            .await;
        assert!(result.refused, "{result:?}");
        let logged = captured.0.lock().map(|b| b.clone()).unwrap_or_default();
        let logged = String::from_utf8_lossy(&logged);
        assert!(
            logged.contains("delivery refused by the address policy")
                && logged.contains("delivery_id=dlv_refused")
                && logged.contains("endpoint_id=ep_refused"),
            "{logged}"
        );
        assert!(!logged.contains("attempt{"), "no span at info: {logged}");
    }

    #[test]
    fn an_attempt_ends_before_its_lease() {
        let s = Duration::from_secs;
        // Plenty of lease left: the endpoint's timeout, or the default.
        assert_eq!(
            attempt_timeout(s(60), s(1), Some(s(10)), s(30)),
            Some(s(10))
        );
        assert_eq!(attempt_timeout(s(60), s(1), None, s(30)), Some(s(30)));
        // A long wait since the claim cuts it to end 5 s before the lease.
        assert_eq!(
            attempt_timeout(s(60), s(25), Some(s(55)), s(30)),
            Some(s(30))
        );
        assert_eq!(attempt_timeout(s(60), s(40), None, s(30)), Some(s(15)));
        // Under a second left: not sent at all.
        assert_eq!(
            attempt_timeout(s(60), s(54) + Duration::from_millis(500), None, s(30)),
            None
        );
        assert_eq!(attempt_timeout(s(60), s(90), None, s(30)), None);
        // The shortest lease the configuration allows (timeout + 5 s) still
        // sends a 1 s attempt claimed a moment ago, cut by that moment.
        let moment = Duration::from_millis(20);
        assert_eq!(
            attempt_timeout(s(6), moment, None, s(1)),
            Some(s(1) - moment)
        );
        assert_eq!(
            attempt_timeout(s(6), Duration::from_millis(600), None, s(1)),
            None
        );
    }

    #[tokio::test]
    async fn the_resolver_drops_restricted_addresses() {
        use std::str::FromStr;
        let strict = PolicyResolver {
            policy: AddressPolicy::default(),
        };
        let refused = strict.resolve(Name::from_str("localhost").unwrap()).await;
        let message = refused.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(message.contains("refused"), "{message}");
        let open = PolicyResolver {
            policy: AddressPolicy::new(
                AddressPolicy::parse_allow_list("127.0.0.0/8,::1/128").unwrap(),
                false,
            ),
        };
        let addrs: Vec<SocketAddr> = open
            .resolve(Name::from_str("localhost").unwrap())
            .await
            .map(|a| a.collect())
            .unwrap_or_default();
        assert!(!addrs.is_empty() && addrs.iter().all(|a| a.ip().is_loopback()));
    }

    #[test]
    fn literal_destinations_are_checked() {
        let strict = AddressPolicy::default();
        let check = |url: &str| check_destination(&url::Url::parse(url).unwrap(), &strict);
        assert!(check("http://127.0.0.1:1/").is_err());
        assert!(check("http://[::ffff:10.0.0.1]/").is_err());
        assert!(check("https://93.184.216.34/").is_ok());
        assert!(check("https://example.com/").is_ok());
    }

    #[test]
    fn retry_after_seconds() {
        assert_eq!(parse_retry_after(" 3 "), Some(Duration::from_secs(3)));
        assert_eq!(parse_retry_after("soon"), None);
    }
}
