//! Claiming: one `claim.lua` call leases up to N due deliveries of one
//! partition (see the script's header for everything it decides).

use hookfleet_common::ids::Partition;
use hookfleet_common::redis_pool::RedisPool;
use hookfleet_common::{scripts, Keys};
use redis::Value;

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
    pub url: String,
    pub secret: String,
    pub headers: Vec<(String, String)>,
    pub timeout_ms: Option<u64>,
    /// The signed body, when it lives in this partition (else fetched).
    pub body: Option<String>,
    pub previous_secret: Option<String>,
    pub previous_secret_until: Option<u64>,
    pub tenant_id: String,
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
    let mut jobs = Vec::new();
    let claimed_at = std::time::Instant::now();
    for item in items {
        let fields: Vec<String> =
            redis::from_redis_value(item).map_err(|e| ClaimError::Reply(e.to_string()))?;
        let [delivery_id, endpoint_id, event_id, attempts, token, url, secret, headers, timeout, body, previous_secret, previous_until, tenant_id, event_type, max_attempts, test]: [String; 16] =
            fields
                .try_into()
                .map_err(|_| ClaimError::Reply("a job needs 16 fields".into()))?;
        let headers: Vec<(String, String)> = serde_json::from_str(&headers).unwrap_or_default();
        jobs.push(Job {
            partition: p,
            delivery_id,
            endpoint_id,
            event_id,
            attempts_before: attempts.parse().unwrap_or(0),
            lease_token: token,
            url,
            secret,
            headers,
            timeout_ms: timeout.parse().ok(),
            body: (!body.is_empty()).then_some(body),
            previous_secret: (!previous_secret.is_empty()).then_some(previous_secret),
            previous_secret_until: previous_until.parse().ok(),
            tenant_id,
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
