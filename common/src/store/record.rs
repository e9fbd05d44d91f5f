//! Recording attempts: one `record.lua` call per partition logs a batch of
//! attempts and moves each delivery on (delivered, failed, or scheduled
//! again), with its endpoint's counters, statistics, concurrency slots
//! and circuit breaker, in one atomic step (see the script's header).

use std::borrow::Cow;
use std::time::Duration;

use super::scripts;
use crate::ids::{self, IdKind, Partition};
use crate::model::attempt_field;
use crate::redis_pool::RedisPool;
use crate::{stats, time_util, Keys};

/// Values per attempt in `record.lua`'s ARGV. The script's `STRIDE` is
/// generated from this constant, and [`values`] returns an array of
/// exactly this length, so the two sides cannot disagree.
pub const STRIDE: usize = 20;

/// What an attempt means for its delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Delivered,
    /// Attempt again at this time (epoch ms).
    RetryAt(u64),
    Failed,
}

/// One attempt to record: which delivery and lease, what happened, and
/// the two texts the worker prepared (the attempt-log entry and the
/// operational notice).
#[derive(Debug, Clone, Copy)]
pub struct AttemptRecord<'a> {
    pub delivery_id: &'a str,
    pub endpoint_id: &'a str,
    /// The lease deadline `claim.lua` answered: proves the lease is held.
    pub lease_token: &'a str,
    pub decision: Decision,
    /// When the attempt was made (epoch ms).
    pub at_ms: u64,
    /// The response status; `None` when there was no response.
    pub status: Option<u16>,
    pub duration_ms: u64,
    /// A test send: logged, kept out of statistics and the breaker.
    pub test: bool,
    /// No answer within the attempt's timeout (halves the endpoint's
    /// congestion window).
    pub timed_out: bool,
    /// The attempt-log entry (`model::AttemptEntry::encode`).
    pub entry: &'a [u8],
    /// The operational-event notice (`""` when the attempt cannot cause
    /// one: it succeeded, or is a test send).
    pub notice: &'a str,
}

/// Settings every worker must agree on when recording.
#[derive(Debug, Clone, Copy)]
pub struct RecordSettings {
    pub retention: Duration,
    /// `HOOKFLEET_ATTEMPT_LOG_MAXLEN`: an endpoint's attempt stream's cap.
    pub attempt_log_maxlen: u64,
    /// The circuit breaker: disable after failing this long without a success.
    pub disable_after: Duration,
    /// `HOOKFLEET_MAX_IN_FLIGHT`: the cap of endpoints without their own.
    pub max_in_flight: u32,
}

impl RecordSettings {
    pub fn from_config(config: &crate::Config) -> Self {
        Self {
            retention: config.storage_retention(),
            attempt_log_maxlen: config.attempt_log_maxlen,
            disable_after: config.disable_after,
            max_in_flight: config.max_in_flight,
        }
    }
}

/// What recording an attempt did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    /// This worker still held the lease, so the delivery moved (false: the
    /// attempt is logged, the state belongs to someone else now).
    pub held: bool,
    /// This attempt tripped the circuit breaker: the endpoint is disabled.
    pub disabled: bool,
    /// The operational events this attempt caused, recorded in its
    /// partition's notices set in the same step; the worker publishes
    /// them next.
    pub notices: Vec<String>,
}

/// Redis trouble while recording; the caller retries, and if Redis stays
/// away the lease expires and another worker attempts the delivery again.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("redis pool: {0}")]
    Pool(#[from] crate::redis_pool::PoolError),
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("unexpected record reply: {0}")]
    Reply(String),
}

/// The counter an attempt adds to (`attempts_2xx`, …, `attempts_error`).
pub fn class_field(status: Option<u16>) -> &'static str {
    match status {
        Some(200..=299) => "attempts_2xx",
        Some(300..=399) => "attempts_3xx",
        Some(400..=499) => "attempts_4xx",
        Some(500..=599) => "attempts_5xx",
        _ => "attempts_error",
    }
}

/// Records attempts of partition `p` in one `record.lua` call. Answers one
/// [`Recorded`] per attempt, in order. Every attempt must belong to `p`.
pub async fn record(
    pool: &RedisPool,
    keys: &Keys,
    settings: RecordSettings,
    p: Partition,
    attempts: &[AttemptRecord<'_>],
) -> Result<Vec<Recorded>, RecordError> {
    if attempts.is_empty() {
        return Ok(Vec::new());
    }
    let oldest_kept = time_util::now_ms().saturating_sub(settings.retention.as_millis() as u64);
    let mut invocation = scripts::RECORD.prepare_invoke();
    invocation
        .key(keys.inflight(p))
        .key(keys.ready(p))
        .key(keys.notices(p))
        .key(keys.queued(p))
        .key(keys.fifo_heads(p))
        .arg(keys.partition_prefix(p))
        .arg(settings.attempt_log_maxlen)
        .arg(oldest_kept)
        .arg(settings.disable_after.as_millis() as u64)
        .arg(stats::FINE_TTL_MS)
        .arg(stats::COARSE_TTL_MS)
        .arg(attempt_field::TEXT)
        .arg(keys.wake_channel())
        .arg(p.0)
        .arg(settings.max_in_flight)
        .arg(keys.attempted_channel());
    for attempt in attempts {
        for value in values(attempt, settings.retention) {
            invocation.arg(value);
        }
    }
    let mut conn = pool.get().await?;
    let reply: Vec<redis::Value> = invocation.invoke_async(&mut conn).await?;
    parse_reply(&reply, attempts.len())
}

/// One value of an attempt's ARGV group: text the attempt holds (ids, the
/// entry of up to several KiB, the notice) goes borrowed and numbers go
/// as numbers, so a batch allocates only the two strings it must build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value<'a> {
    Text(&'a str),
    /// Bytes that may not be text (an entry with a compressed body).
    Bytes(&'a [u8]),
    Built(String),
    Number(u64),
    /// A difference of two times (ms), which may be negative.
    Signed(i64),
}

impl Value<'_> {
    /// The value as the script reads it.
    pub fn text(&self) -> Cow<'_, str> {
        match self {
            Value::Text(text) => Cow::Borrowed(text),
            Value::Bytes(bytes) => String::from_utf8_lossy(bytes),
            Value::Built(text) => Cow::Borrowed(text),
            Value::Number(n) => Cow::Owned(n.to_string()),
            Value::Signed(n) => Cow::Owned(n.to_string()),
        }
    }
}

impl redis::ToRedisArgs for Value<'_> {
    fn write_redis_args<W>(&self, out: &mut W)
    where
        W: ?Sized + redis::RedisWrite,
    {
        match self {
            Value::Text(text) => text.write_redis_args(out),
            Value::Bytes(bytes) => bytes.write_redis_args(out),
            Value::Built(text) => text.write_redis_args(out),
            Value::Number(n) => n.write_redis_args(out),
            Value::Signed(n) => n.write_redis_args(out),
        }
    }
}

/// One attempt's ARGV group, in `record.lua`'s order (see its header).
pub fn values<'a>(attempt: &AttemptRecord<'a>, retention: Duration) -> [Value<'a>; STRIDE] {
    let (outcome, next) = match attempt.decision {
        Decision::Delivered => ("delivered", Value::Text("")),
        Decision::Failed => ("failed", Value::Text("")),
        Decision::RetryAt(at) => ("retry", Value::Number(at)),
    };
    let flag = |on: bool| Value::Text(if on { "1" } else { "0" });
    let at_ms = attempt.at_ms;
    // The state's stored forms (`delivery_state.rs`): the attempt time
    // after the event's creation, the lease token after the attempt time.
    let after = |later: u64, earlier: u64| {
        i64::try_from(later)
            .ok()
            .zip(i64::try_from(earlier).ok())
            .and_then(|(later, earlier)| later.checked_sub(earlier))
            .map_or(Value::Text(""), Value::Signed)
    };
    let stored_at = ids::created_ms(IdKind::Delivery, attempt.delivery_id)
        .map_or(Value::Text(""), |created| after(at_ms, created));
    let stored_token = attempt
        .lease_token
        .parse::<u64>()
        .map_or(Value::Text(""), |token| after(token, at_ms));
    [
        Value::Text(attempt.delivery_id),
        Value::Text(attempt.endpoint_id),
        Value::Text(attempt.lease_token),
        Value::Text(outcome),
        next,
        Value::Number(at_ms),
        attempt
            .status
            .map_or(Value::Text(""), |s| Value::Number(u64::from(s))),
        Value::Text(class_field(attempt.status)),
        flag(attempt.decision == Decision::Delivered),
        flag(attempt.status == Some(410)),
        flag(attempt.test),
        Value::Built(stats::latency_field(stats::latency_bin(
            attempt.duration_ms,
        ))),
        Value::Number(at_ms / stats::FINE_BUCKET_MS * stats::FINE_BUCKET_MS),
        Value::Number(at_ms / stats::COARSE_BUCKET_MS * stats::COARSE_BUCKET_MS),
        Value::Bytes(attempt.entry),
        Value::Text(attempt.notice),
        Value::Number(ids::bucket_expires_at(
            IdKind::Delivery,
            attempt.delivery_id,
            retention,
        )),
        flag(attempt.timed_out),
        stored_at,
        stored_token,
    ]
}

/// Per attempt, in one flat array: held, attempt entry id, disabled, the
/// number of notices, then the notices.
fn parse_reply(reply: &[redis::Value], attempts: usize) -> Result<Vec<Recorded>, RecordError> {
    let mut answers = Vec::with_capacity(attempts);
    let mut rest = reply;
    while let [held, _entry, disabled, count, tail @ ..] = rest {
        let (redis::Value::Int(held), redis::Value::Int(disabled), redis::Value::Int(count)) =
            (held, disabled, count)
        else {
            return Err(RecordError::Reply(format!("bad answer: {:?}", &rest[..4])));
        };
        let count = usize::try_from(*count).unwrap_or(usize::MAX);
        if count > tail.len() {
            return Err(RecordError::Reply(format!(
                "{count} notices announced, {} values left",
                tail.len()
            )));
        }
        let (notices, after) = tail.split_at(count);
        let notices = notices
            .iter()
            .map(redis::from_redis_value_ref)
            .collect::<Result<Vec<String>, _>>()
            .map_err(|err| RecordError::Reply(format!("bad notices: {err}")))?;
        answers.push(Recorded {
            held: *held == 1,
            disabled: *disabled == 1,
            notices,
        });
        rest = after;
    }
    if answers.len() != attempts || !rest.is_empty() {
        return Err(RecordError::Reply(format!(
            "{} answers ({} values left over) for {attempts} attempts",
            answers.len(),
            rest.len()
        )));
    }
    Ok(answers)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The script reads its groups with the generated `STRIDE`, and never
    /// spells its own.
    #[test]
    fn record_lua_takes_its_stride_from_rust() {
        let (_, source) = crate::store::SOURCES
            .iter()
            .find(|(name, _)| *name == "record.lua")
            .unwrap();
        assert!(source.contains("for i = first, #ARGV, STRIDE do"));
        assert!(!source.contains("local STRIDE"), "STRIDE is generated");
    }

    #[test]
    fn an_attempts_values_follow_the_scripts_order() {
        let delivery = ids::delivery_id(
            &ids::new_id(IdKind::Event, Partition(1), 1_700_000_000_000),
            &ids::new_id(IdKind::Endpoint, Partition(2), 1),
        )
        .unwrap();
        let attempt = AttemptRecord {
            delivery_id: &delivery,
            endpoint_id: "ep_x",
            lease_token: "123",
            decision: Decision::RetryAt(99),
            at_ms: 1_700_000_000_000,
            status: Some(503),
            duration_ms: 12,
            test: false,
            timed_out: true,
            entry: b"[]",
            notice: "{}",
        };
        let v = values(&attempt, Duration::from_secs(60));
        assert_eq!(v[3].text(), "retry");
        assert_eq!(v[4].text(), "99");
        assert_eq!(v[6].text(), "503");
        assert_eq!(v[7].text(), "attempts_5xx");
        assert_eq!(
            (&*v[8].text(), &*v[9].text(), &*v[10].text()),
            ("0", "0", "0")
        );
        assert_eq!(v[14].text(), "[]");
        assert_eq!(v[15].text(), "{}");
        assert_eq!(v[17].text(), "1");
        // The state's stored forms: the attempt time after the event's
        // creation (the same millisecond here), the token after the
        // attempt time (negative: a lease already past).
        assert_eq!(v[18].text(), "0");
        assert_eq!(v[19].text(), "-1699999999877");
        let unknown = AttemptRecord {
            delivery_id: "dlv_x",
            lease_token: "not-a-number",
            ..attempt
        };
        let v = values(&unknown, Duration::from_secs(60));
        assert_eq!((&*v[18].text(), &*v[19].text()), ("", ""));
        // A token past i64 is no number the state can count from.
        let huge = u64::MAX.to_string();
        let v = values(
            &AttemptRecord {
                lease_token: &huge,
                ..attempt
            },
            Duration::from_secs(60),
        );
        assert_eq!(v[19].text(), "");
    }

    #[test]
    fn a_flat_reply_gives_each_attempt_its_notices() {
        use redis::Value::{BulkString, Int};
        let notice = |text: &str| BulkString(text.as_bytes().to_vec());
        let reply = [
            Int(1),
            notice("1-0"),
            Int(0),
            Int(0),
            Int(1),
            notice("2-0"),
            Int(1),
            Int(2),
            notice("endpoint.disabled a"),
            notice("message.attempt.exhausted b"),
            Int(0),
            notice(""),
            Int(0),
            Int(0),
        ];
        let answers = parse_reply(&reply, 3).unwrap();
        assert_eq!(answers.len(), 3);
        assert!(answers[0].held && !answers[0].disabled && answers[0].notices.is_empty());
        assert!(answers[1].disabled);
        assert_eq!(
            answers[1].notices,
            ["endpoint.disabled a", "message.attempt.exhausted b"]
        );
        assert!(!answers[2].held);
        // Too few or too many answers, or a count past the end, are errors.
        assert!(parse_reply(&reply, 2).is_err());
        assert!(parse_reply(&reply, 4).is_err());
        assert!(parse_reply(&reply[..8], 2).is_err());
    }
}
