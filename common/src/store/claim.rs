//! Claiming: one `claim.lua` call leases up to N due deliveries of one
//! partition (see the script's header for everything it decides), and its
//! reply read into [`Job`]s that carry everything an attempt needs.

use std::sync::Arc;

use redis::Value;

use super::scripts;
use crate::ids::{self, Partition};
use crate::redis_pool::RedisPool;
use crate::signing::Signer;
use crate::stored_event::EventRecord;
use crate::Keys;

/// The endpoint jobs of one claim go to, as that claim read it: shared by
/// those jobs, so its settings are read, parsed and held once per claim.
#[derive(Clone)]
pub struct ClaimedEndpoint {
    pub id: String,
    /// Shared, as each attempt counts it in its tenant's share.
    pub tenant_id: Arc<str>,
    pub url: String,
    /// `url` parsed (once per claim; the attempt reports a URL that does
    /// not parse).
    pub parsed_url: Result<url::Url, String>,
    /// The signing secret, parsed and keyed once per claim (the attempt
    /// reports one that does not parse).
    pub signer: Result<Signer, String>,
    pub headers: Vec<(String, String)>,
    pub timeout_ms: Option<u64>,
    /// The secret a rotation replaced, while it still signs (until
    /// `previous_secret_until`); one that does not parse signs nothing.
    pub previous_signer: Option<Signer>,
    pub previous_secret_until: Option<u64>,
    /// The endpoint's own retry schedule, when it has one (else the
    /// server's `HOOKFLEET_RETRY_SCHEDULE` applies).
    pub retry_schedule: Option<Vec<std::time::Duration>>,
}

impl ClaimedEndpoint {
    /// An endpoint with only a URL and a secret (tests and the benchmark's
    /// bare loop).
    pub fn new(id: &str, tenant_id: &str, url: &str, secret: &str) -> Self {
        ClaimedEndpoint {
            id: id.to_string(),
            tenant_id: tenant_id.into(),
            url: url.to_string(),
            parsed_url: parse_url(url),
            signer: Signer::parse(secret),
            headers: Vec::new(),
            timeout_ms: None,
            previous_signer: None,
            previous_secret_until: None,
            retry_schedule: None,
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
    /// Proves this worker still holds the lease when it records the result
    /// (the lease deadline, shared by the claim's jobs).
    pub lease_token: Arc<str>,
    /// Where it goes, and how it is signed.
    pub endpoint: Arc<ClaimedEndpoint>,
    /// The event (body, type, test flag): from the claim when it lives in
    /// this partition, else read from its home partition before sending;
    /// shared by the claim's jobs of one event.
    pub event: Option<Arc<EventRecord>>,
    /// Attempts after which the delivery fails whatever the schedule says
    /// (a manual retry is one more attempt; a test send is a single one).
    pub max_attempts: Option<u32>,
    /// When the claim answered: the lease runs from about then, and the
    /// attempt's timeout is cut to what is left of it.
    pub claimed_at: std::time::Instant,
}

impl Job {
    /// A first attempt of a delivery to `endpoint`, under no lease and
    /// without its event (tests and the benchmark's bare loop).
    pub fn first_attempt(
        delivery_id: &str,
        event_id: &str,
        endpoint: Arc<ClaimedEndpoint>,
    ) -> Self {
        Job {
            partition: Partition(0),
            delivery_id: delivery_id.to_string(),
            endpoint_id: endpoint.id.clone(),
            event_id: event_id.to_string(),
            attempts_before: 0,
            lease_token: "".into(),
            endpoint,
            event: None,
            max_attempts: None,
            claimed_at: std::time::Instant::now(),
        }
    }

    /// A test send: logged, kept out of statistics and the circuit breaker.
    pub fn test(&self) -> bool {
        self.event.as_ref().is_some_and(|event| event.test)
    }

    /// The event's type (empty while the event is not read).
    pub fn event_type(&self) -> &str {
        self.event
            .as_ref()
            .map(|event| event.event_type.as_str())
            .unwrap_or("")
    }

    /// The attempts this delivery may have in all, if capped.
    pub fn attempt_cap(&self) -> Option<u32> {
        if self.test() {
            Some(1)
        } else {
            self.max_attempts
        }
    }
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
    /// Endpoints whose due deliveries waited for their rate limit's next
    /// slot in this call.
    pub rate_limited: u64,
    /// Endpoints with due deliveries left waiting because they were at
    /// their concurrency limit (`max_in_flight`, or less while timing out).
    pub at_capacity: u64,
    /// Endpoints left for other workers because their tenant holds its
    /// share of this worker's slots.
    pub skipped_for_share: u64,
}

/// Errors from claiming; all are Redis trouble or a reply we cannot read.
#[derive(Debug, thiserror::Error)]
pub enum ClaimError {
    #[error("redis pool: {0}")]
    Pool(#[from] crate::redis_pool::PoolError),
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("unexpected claim reply: {0}")]
    Reply(String),
}

/// What a claim needs besides the partition and how many to take: the
/// fleet-wide settings every worker must agree on.
#[derive(Clone, Copy, Debug)]
pub struct ClaimSettings {
    pub lease_ms: u64,
    /// The retry schedule's first entry.
    pub initial_delay_ms: u64,
    pub retention_ms: u64,
    /// `HOOKFLEET_MAX_IN_FLIGHT`: the cap of endpoints without their own.
    pub max_in_flight: u32,
}

impl ClaimSettings {
    pub fn from_config(config: &crate::Config) -> Self {
        Self {
            lease_ms: config.lease.as_millis() as u64,
            initial_delay_ms: config.initial_delay_ms(),
            retention_ms: config.storage_retention().as_millis() as u64,
            max_in_flight: config.max_in_flight,
        }
    }
}

/// The slots of this worker each tenant holds, and the most one may hold
/// (see `tenant_share.rs`): a claim hands a tenant no more than its room.
#[derive(Debug, Clone, Default)]
pub struct TenantSlots {
    pub limit: usize,
    /// (tenant id, slots held), for the tenants holding any.
    pub holding: Vec<(Arc<str>, usize)>,
}

impl TenantSlots {
    /// No share to keep: every tenant may take a whole claim.
    pub fn unlimited() -> Self {
        Self {
            limit: usize::MAX >> 1,
            holding: Vec::new(),
        }
    }
}

/// Leases up to `max` due deliveries of partition `p`.
pub async fn claim(
    pool: &RedisPool,
    keys: &Keys,
    p: Partition,
    max: usize,
    settings: ClaimSettings,
    share: &TenantSlots,
) -> Result<Claimed, ClaimError> {
    let mut conn = pool.get().await?;
    let mut invocation = scripts::CLAIM.prepare_invoke();
    invocation
        .key(keys.ready(p))
        .key(keys.inflight(p))
        .key(keys.queued(p))
        .arg(keys.partition_prefix(p))
        .arg(max)
        .arg(settings.lease_ms)
        .arg(ids::partition_code(p))
        .arg(max.max(16))
        .arg(settings.initial_delay_ms)
        .arg(settings.retention_ms)
        .arg(keys.wake_channel())
        .arg(p.0)
        .arg(settings.max_in_flight)
        .arg(share.limit);
    for (tenant, held) in &share.holding {
        invocation.arg(&**tenant).arg(*held);
    }
    let reply: Value = invocation.invoke_async(&mut conn).await?;
    parse_reply(p, reply)
}

/// An endpoint's own schedule as stored (ms, comma-separated); `None` when
/// it has none (or, should it not parse, the server's applies).
fn parse_schedule(text: &str) -> Option<Vec<std::time::Duration>> {
    if text.is_empty() {
        return None;
    }
    text.split(',')
        .map(|ms| ms.parse().ok().map(std::time::Duration::from_millis))
        .collect()
}

fn int(value: Option<Value>, what: &str) -> Result<i64, ClaimError> {
    match value {
        Some(Value::Int(n)) => Ok(n),
        other => Err(ClaimError::Reply(format!("bad {what}: {other:?}"))),
    }
}

fn text(value: Value) -> Result<String, ClaimError> {
    redis::from_redis_value(value).map_err(|e| ClaimError::Reply(e.to_string()))
}

fn parse_reply(p: Partition, reply: Value) -> Result<Claimed, ClaimError> {
    let Value::Array(items) = reply else {
        return Err(ClaimError::Reply("not an array".into()));
    };
    let mut items = items.into_iter();
    let next_due = int(items.next(), "next-due")?;
    let next_due_ms = (next_due >= 0).then_some(next_due as u64);
    let rate_limited = int(items.next(), "deferral count")?.max(0) as u64;
    // (A string: the exact text of the score record.lua compares it with.)
    let lease_token: Arc<str> = text(items.next().unwrap_or(Value::Nil))?.into();
    let at_capacity = int(items.next(), "parked count")?.max(0) as u64;
    let skipped_for_share = int(items.next(), "skipped count")?.max(0) as u64;
    let endpoint_count = int(items.next(), "endpoint count")?.max(0) as usize;
    let mut endpoints: Vec<Arc<ClaimedEndpoint>> = Vec::with_capacity(endpoint_count);
    for _ in 0..endpoint_count {
        let mut field = || text(items.next().unwrap_or(Value::Nil));
        let [id, tenant_id, url, secret, headers, timeout, previous_secret, previous_until, schedule] = [
            field()?,
            field()?,
            field()?,
            field()?,
            field()?,
            field()?,
            field()?,
            field()?,
            field()?,
        ];
        endpoints.push(Arc::new(ClaimedEndpoint {
            parsed_url: parse_url(&url),
            id,
            tenant_id: tenant_id.into(),
            url,
            signer: Signer::parse(&secret),
            headers: serde_json::from_str(&headers).unwrap_or_default(),
            timeout_ms: timeout.parse().ok(),
            previous_signer: Signer::parse(&previous_secret).ok(),
            previous_secret_until: previous_until.parse().ok(),
            retry_schedule: parse_schedule(&schedule),
        }));
    }
    let event_count = int(items.next(), "event count")?.max(0) as usize;
    // (event id, its record when it came with the claim)
    let mut events: Vec<(String, Option<Arc<EventRecord>>)> = Vec::with_capacity(event_count);
    for _ in 0..event_count {
        let (Some(id), Some(record)) = (items.next(), items.next()) else {
            return Err(ClaimError::Reply("an event is two values".into()));
        };
        let id = text(id)?;
        let record: Vec<u8> =
            redis::from_redis_value(record).map_err(|e| ClaimError::Reply(e.to_string()))?;
        // A record that does not parse fails its own jobs, not the claim
        // (whose leases are taken already): without one, the attempt reads
        // the event again (`stored_event::load`), finds none and ends the
        // delivery failed.
        let record = if record.is_empty() {
            None
        } else {
            let parsed = EventRecord::parse(&id, &record).map(Arc::new);
            if parsed.is_none() {
                tracing::warn!(event_id = %id, "an event record that does not parse");
            }
            parsed
        };
        events.push((id, record));
    }
    if !items.len().is_multiple_of(5) {
        return Err(ClaimError::Reply(format!(
            "{} values for jobs of 5 each",
            items.len()
        )));
    }
    let mut jobs = Vec::with_capacity(items.len() / 5);
    let claimed_at = std::time::Instant::now();
    while let Some(delivery_id) = items.next() {
        let delivery_id = text(delivery_id)?;
        let endpoint_at = int(items.next(), "job endpoint")?;
        let event_at = int(items.next(), "job event")?;
        let attempts = int(items.next(), "job attempts")?;
        let max_attempts = int(items.next(), "job max attempts")?;
        let endpoint = usize::try_from(endpoint_at - 1)
            .ok()
            .and_then(|i| endpoints.get(i))
            .cloned()
            .ok_or_else(|| ClaimError::Reply(format!("no endpoint {endpoint_at} in the reply")))?;
        let (event_id, event) = usize::try_from(event_at - 1)
            .ok()
            .and_then(|i| events.get(i))
            .cloned()
            .ok_or_else(|| ClaimError::Reply(format!("no event {event_at} in the reply")))?;
        jobs.push(Job {
            partition: p,
            delivery_id,
            endpoint_id: endpoint.id.clone(),
            event_id,
            attempts_before: attempts.clamp(0, i64::from(u32::MAX)) as u32,
            lease_token: lease_token.clone(),
            endpoint,
            event,
            max_attempts: u32::try_from(max_attempts).ok(),
            claimed_at,
        });
    }
    Ok(Claimed {
        jobs,
        next_due_ms,
        rate_limited,
        at_capacity,
        skipped_for_share,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(text: &str) -> Value {
        Value::BulkString(text.as_bytes().to_vec())
    }

    fn reply(record: &str) -> Value {
        let endpoint = [
            "ep_1",
            "ten_1",
            "http://a.test/",
            "whsec_x",
            "{}",
            "5000",
            "",
            "",
            "0,1000",
        ];
        let values = [
            Value::Int(-1),
            Value::Int(0),
            bulk("1700000000000"),
            Value::Int(0),
            Value::Int(0),
            Value::Int(1),
        ]
        .into_iter()
        .chain(endpoint.iter().map(|f| bulk(f)))
        .chain([
            Value::Int(2),
            bulk("evt_good"),
            bulk("-ten_1\norder.paid\n{}"),
            bulk("evt_bad"),
            bulk(record),
            bulk("dlv_good"),
            Value::Int(1),
            Value::Int(1),
            Value::Int(0),
            Value::Int(-1),
            bulk("dlv_bad"),
            Value::Int(1),
            Value::Int(2),
            Value::Int(0),
            Value::Int(-1),
        ])
        .collect();
        Value::Array(values)
    }

    /// A record that does not parse leaves its job without an event (the
    /// attempt reads it again and ends the delivery failed); the claim's
    /// other jobs go out, since their leases are taken already.
    #[test]
    fn a_record_that_does_not_parse_fails_only_its_own_jobs() {
        let claimed = parse_reply(Partition(0), reply("no newline at all")).unwrap();
        assert_eq!(claimed.jobs.len(), 2);
        assert!(
            claimed.jobs[0].event.is_some(),
            "the good event comes along"
        );
        assert_eq!(claimed.jobs[1].delivery_id, "dlv_bad");
        assert!(claimed.jobs[1].event.is_none());
        assert_eq!(&*claimed.jobs[1].lease_token, "1700000000000");
        assert_eq!(
            claimed.jobs[0].endpoint.retry_schedule,
            Some(vec![
                std::time::Duration::ZERO,
                std::time::Duration::from_secs(1)
            ])
        );
    }

    /// The reply is one flat array: a job cut short, or an endpoint or an
    /// event missing values, is an error, not a job with a wrong field.
    #[test]
    fn a_reply_cut_short_is_an_error() {
        let Value::Array(values) = reply("-ten_1\norder.paid\n{}") else {
            unreachable!()
        };
        for cut in [1, 4, 9, values.len() - 12] {
            let short = Value::Array(values[..values.len() - cut].to_vec());
            assert!(
                parse_reply(Partition(0), short).is_err(),
                "{cut} values fewer"
            );
        }
    }
}
