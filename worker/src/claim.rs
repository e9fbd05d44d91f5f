//! Claiming: one `claim.lua` call leases up to N due deliveries of one
//! partition (see the script's header for everything it decides).

use std::sync::Arc;

use hookfleet_common::ids::Partition;
use hookfleet_common::redis_pool::RedisPool;
use hookfleet_common::{scripts, Keys};
use redis::Value;

/// The endpoint jobs of one claim go to, as that claim read it: shared by
/// those jobs, so its settings are read, parsed and held once per claim.
#[derive(Clone)]
pub struct ClaimedEndpoint {
    pub id: String,
    pub tenant_id: String,
    pub url: String,
    /// `url` parsed (once per claim; the attempt reports a URL that does
    /// not parse).
    pub parsed_url: Result<url::Url, String>,
    pub secret: String,
    pub headers: Vec<(String, String)>,
    pub timeout_ms: Option<u64>,
    pub previous_secret: Option<String>,
    pub previous_secret_until: Option<u64>,
}

impl ClaimedEndpoint {
    /// An endpoint with only a URL and a secret (tests and the benchmark's
    /// bare loop).
    pub fn new(id: &str, tenant_id: &str, url: &str, secret: &str) -> Self {
        ClaimedEndpoint {
            id: id.to_string(),
            tenant_id: tenant_id.to_string(),
            url: url.to_string(),
            parsed_url: parse_url(url),
            secret: secret.to_string(),
            headers: Vec::new(),
            timeout_ms: None,
            previous_secret: None,
            previous_secret_until: None,
        }
    }
}

fn parse_url(url: &str) -> Result<url::Url, String> {
    url::Url::parse(url).map_err(|err| format!("invalid URL: {err}"))
}

/// One leased delivery, with everything needed to attempt it.
#[derive(Clone)]
pub struct Job {
    pub partition: Partition,
    pub delivery_id: String,
    pub endpoint_id: String,
    pub event_id: String,
    /// Attempts made before this one.
    pub attempts_before: u32,
    /// Proves this worker still holds the lease when it records the result.
    pub lease_token: String,
    /// Where it goes, and how it is signed.
    pub endpoint: Arc<ClaimedEndpoint>,
    /// The signed body, when it lives in this partition (else fetched).
    pub body: Option<String>,
    pub event_type: String,
    /// Attempts after which the delivery fails whatever the schedule says
    /// (a manual retry or a test send is a single attempt).
    pub max_attempts: Option<u32>,
    /// A test send: logged, kept out of statistics and the circuit breaker.
    pub test: bool,
    /// When the claim answered: the lease runs from about then, and the
    /// attempt's timeout is cut to what is left of it.
    pub claimed_at: std::time::Instant,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Secrets and bodies stay out of logs.
        f.debug_struct("Job")
            .field("delivery_id", &self.delivery_id)
            .field("endpoint_id", &self.endpoint_id)
            .field("event_id", &self.event_id)
            .field("attempts_before", &self.attempts_before)
            .finish_non_exhaustive()
    }
}

/// What one claim call returned.
#[derive(Debug, Default)]
pub struct Claimed {
    pub jobs: Vec<Job>,
    /// When the partition's earliest waiting delivery or lease is due.
    pub next_due_ms: Option<u64>,
    /// Deliveries pushed back by endpoint rate limits in this call.
    pub rate_limited: u64,
}

/// Errors from claiming; all are Redis trouble or a reply we cannot read.
#[derive(Debug, thiserror::Error)]
pub enum ClaimError {
    #[error("redis pool: {0}")]
    Pool(#[from] hookfleet_common::redis_pool::PoolError),
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("unexpected claim reply: {0}")]
    Reply(String),
}

/// Leases up to `max` due deliveries of partition `p`.
pub async fn claim(
    pool: &RedisPool,
    keys: &Keys,
    p: Partition,
    max: usize,
    lease_ms: u64,
    now_ms: u64,
) -> Result<Claimed, ClaimError> {
    let mut conn = pool.get().await?;
    let reply: Value = scripts::CLAIM
        .key(keys.due(p))
        .key(keys.inflight(p))
        .arg(keys.partition_prefix(p))
        .arg(now_ms)
        .arg(max)
        .arg(lease_ms)
        .arg(p.0)
        .arg(max.max(16))
        .invoke_async(&mut conn)
        .await?;
    parse_reply(p, reply)
}

fn parse_reply(p: Partition, reply: Value) -> Result<Claimed, ClaimError> {
    let Value::Array(items) = reply else {
        return Err(ClaimError::Reply("not an array".into()));
    };
    let mut items = items.into_iter();
    let next_due_ms = match items.next() {
        Some(Value::Int(n)) if n >= 0 => Some(n as u64),
        Some(Value::Int(_)) => None,
        other => return Err(ClaimError::Reply(format!("bad next-due: {other:?}"))),
    };
    let rate_limited = match items.next() {
        Some(Value::Int(n)) => n.max(0) as u64,
        other => return Err(ClaimError::Reply(format!("bad deferral count: {other:?}"))),
    };
    let endpoint_count = match items.next() {
        Some(Value::Int(n)) => n.max(0) as usize,
        other => return Err(ClaimError::Reply(format!("bad endpoint count: {other:?}"))),
    };
    let mut endpoints: Vec<Arc<ClaimedEndpoint>> = Vec::with_capacity(endpoint_count);
    for item in items.by_ref().take(endpoint_count) {
        let fields: Vec<String> =
            redis::from_redis_value(item).map_err(|e| ClaimError::Reply(e.to_string()))?;
        let [id, tenant_id, url, secret, headers, timeout, previous_secret, previous_until]: [String; 8] =
            fields
                .try_into()
                .map_err(|_| ClaimError::Reply("an endpoint needs 8 fields".into()))?;
        endpoints.push(Arc::new(ClaimedEndpoint {
            parsed_url: parse_url(&url),
            id,
            tenant_id,
            url,
            secret,
            headers: serde_json::from_str(&headers).unwrap_or_default(),
            timeout_ms: timeout.parse().ok(),
            previous_secret: (!previous_secret.is_empty()).then_some(previous_secret),
            previous_secret_until: previous_until.parse().ok(),
        }));
    }
    let mut jobs = Vec::new();
    let claimed_at = std::time::Instant::now();
    for item in items {
        let fields: Vec<String> =
            redis::from_redis_value(item).map_err(|e| ClaimError::Reply(e.to_string()))?;
        let [delivery_id, endpoint_id, event_id, attempts, token, body, event_type, max_attempts, test]: [String; 9] =
            fields
                .try_into()
                .map_err(|_| ClaimError::Reply("a job needs 9 fields".into()))?;
        let endpoint = endpoints
            .iter()
            .find(|endpoint| endpoint.id == endpoint_id)
            .cloned()
            .ok_or_else(|| ClaimError::Reply(format!("no endpoint {endpoint_id} in the reply")))?;
        jobs.push(Job {
            partition: p,
            delivery_id,
            endpoint_id,
            event_id,
            attempts_before: attempts.parse().unwrap_or(0),
            lease_token: token,
            endpoint,
            body: (!body.is_empty()).then_some(body),
            event_type,
            max_attempts: max_attempts.parse().ok(),
            test: test == "1",
            claimed_at,
        });
    }
    Ok(Claimed {
        jobs,
        next_due_ms,
        rate_limited,
    })
}
