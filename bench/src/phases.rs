//! The benchmark's phases. Each one sets up what it needs through the API
//! (its own tenant, so phases never see each other's deliveries), runs,
//! and returns one JSON record for the report.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hookfleet_bench::{cpu_ticks, event_data, status_kb, unix_nanos, Percentiles};
use hookfleet_common::ids::{self, IdKind, Partition};
use hookfleet_common::net_policy::AddressPolicy;
use hookfleet_common::signing::SigningSecret;
use hookfleet_common::time_util::rfc3339_ms;
use hookfleet_worker::claim::{ClaimedEndpoint, Job};
use serde_json::{json, Value};

use crate::api_client::{Api, ReceiverControl, EVENT_TYPE};
use crate::args::Args;

/// What every phase gets: the API, the receiver and the admin key.
pub struct Env {
    pub api: Api,
    pub receiver: ReceiverControl,
    pub admin_key: String,
    pub body_bytes: usize,
    pub timeout: Duration,
}

fn secs(ns: u64) -> f64 {
    ns as f64 / 1e9
}

fn rate(count: u64, ns: u64) -> f64 {
    if ns == 0 {
        0.0
    } else {
        count as f64 / secs(ns)
    }
}

/// Processes to watch: `name=pid,name=pid`.
fn parse_pids(text: &str) -> Vec<(String, u32)> {
    text.split(',')
        .filter_map(|pair| {
            let (name, pid) = pair.split_once('=')?;
            Some((name.trim().to_string(), pid.trim().parse().ok()?))
        })
        .collect()
}

/// CPU time of watched processes over a phase: `--pids name=pid,...`,
/// and `--pid-files name=path,...` for processes that may start during
/// the phase (read at the end; counted from 0 when absent at the start);
/// and this process's own, apart ([`CpuWatch::own_seconds`]).
struct CpuWatch {
    pids: Vec<(String, u32)>,
    before: Vec<Option<u64>>,
    files: Vec<(String, String, u64)>,
    own_before: Option<u64>,
    clk_tck: f64,
}

fn pid_in(file: &str) -> Option<u32> {
    std::fs::read_to_string(file).ok()?.trim().parse().ok()
}

impl CpuWatch {
    fn start(args: &Args) -> Result<Self, String> {
        let pids = parse_pids(&args.opt("pids").unwrap_or_default());
        let before = pids.iter().map(|(_, pid)| cpu_ticks(*pid)).collect();
        let files = args
            .opt("pid-files")
            .unwrap_or_default()
            .split(',')
            .filter_map(|pair| {
                let (name, file) = pair.split_once('=')?;
                let before = pid_in(file).and_then(cpu_ticks).unwrap_or(0);
                Some((name.to_string(), file.to_string(), before))
            })
            .collect();
        Ok(CpuWatch {
            pids,
            before,
            files,
            own_before: cpu_ticks(std::process::id()),
            clk_tck: args.num("clk-tck", 100.0)?,
        })
    }

    /// This process's CPU seconds since `start` (the driver's: the load
    /// generator, or the bare loop's clients); null when unreadable.
    fn own_seconds(&self) -> Value {
        match (self.own_before, cpu_ticks(std::process::id())) {
            (Some(before), Some(after)) => json!((after - before) as f64 / self.clk_tck),
            _ => Value::Null,
        }
    }

    /// CPU seconds per process since `start`.
    fn seconds(&self) -> serde_json::Map<String, Value> {
        let mut cpu = serde_json::Map::new();
        for ((name, pid), before) in self.pids.iter().zip(&self.before) {
            if let (Some(before), Some(after)) = (before, cpu_ticks(*pid)) {
                cpu.insert(name.clone(), json!((after - before) as f64 / self.clk_tck));
            }
        }
        for (name, file, before) in &self.files {
            if let Some(after) = pid_in(file).and_then(cpu_ticks) {
                let ticks = after.saturating_sub(*before);
                cpu.insert(name.clone(), json!(ticks as f64 / self.clk_tck));
            }
        }
        cpu
    }
}

/// Phase 1: N events from C concurrent clients (batch size B, 0 for one
/// event per request; over HTTP/2 with `--http2 1`, else HTTP/1.1
/// keep-alive) to one endpoint; accepted events/s, deliveries/s from the
/// first publish to the last receipt, CPU seconds and peak RSS of the
/// watched processes.
pub async fn throughput(env: &Env, args: &Args) -> Result<Value, String> {
    let events: u64 = args.num("events", 20_000)?;
    let clients: usize = args.num("clients", 16)?;
    let batch: usize = args.num("batch", 0)?;
    let http2 = args.num::<u8>("http2", 0)? == 1;
    let api = if http2 {
        env.api.http2()?
    } else {
        env.api.clone()
    };
    // Tenants of one endpoint each, published to in turn: their
    // deliveries spread over partitions (and a cluster's masters), where
    // one endpoint's all go through one.
    let tenants: usize = args.num("tenants", 1)?;
    let pids = parse_pids(&args.opt("pids").unwrap_or_default());
    let mut redis = match args.opt("redis") {
        Some(url) => Some(redis_conn(&url).await?),
        None => None,
    };
    let mut keys = Vec::with_capacity(tenants.max(1));
    for _ in 0..tenants.max(1) {
        let tenant = env
            .api
            .tenant(&env.admin_key, &env.receiver.hook_url(), 1)
            .await?;
        keys.push(tenant.key);
    }
    let keys = Arc::new(keys);
    env.receiver.reset().await?;
    let commands_before = match &mut redis {
        Some(conn) => command_stats(conn).await?,
        None => Vec::new(),
    };
    let cpu = CpuWatch::start(args)?;

    let start = unix_nanos();
    let next = Arc::new(AtomicU64::new(0));
    let step = batch.max(1) as u64;
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..clients {
        let api = api.clone();
        let keys = keys.clone();
        let next = next.clone();
        let body_bytes = env.body_bytes;
        set.spawn(async move {
            loop {
                let first = next.fetch_add(step, Ordering::Relaxed);
                if first >= events {
                    return Ok::<(), String>(());
                }
                let n = step.min(events - first) as usize;
                let key = &keys[(first / step) as usize % keys.len()];
                if batch == 0 {
                    api.publish(key, body_bytes).await?;
                } else {
                    api.publish_batch(key, n, body_bytes).await?;
                }
            }
        });
    }
    while let Some(done) = set.join_next().await {
        done.map_err(|e| e.to_string())??;
    }
    let accepted = unix_nanos();
    let stats = env
        .receiver
        .wait_for(events, env.timeout, Duration::from_millis(20))
        .await?;
    let stats_latency = env.receiver.stats(true).await?;

    let generator_cpu = cpu.own_seconds();
    let cpu = cpu.seconds();
    let mut peak_rss = serde_json::Map::new();
    for (name, pid) in &pids {
        if let Some(kb) = status_kb(*pid, "VmHWM") {
            peak_rss.insert(name.clone(), json!(kb as f64 / 1024.0));
        }
    }
    let delivered_ns = stats.last_ns.saturating_sub(start);
    let redis_profile = match &mut redis {
        Some(conn) => {
            let after = command_stats(conn).await?;
            command_profile(&commands_before, &after, stats.count.max(1))
        }
        None => Value::Null,
    };
    Ok(json!({
        "phase": "throughput",
        "redis_commands": redis_profile,
        "events": events,
        "tenants": tenants.max(1),
        "clients": clients,
        "batch": batch,
        "http2": http2,
        "received": stats.count,
        "publish_s": secs(accepted - start),
        "accepted_per_s": rate(events, accepted - start),
        "end_to_end_s": secs(delivered_ns),
        "deliveries_per_s": rate(stats.count, delivered_ns),
        "cpu_s": cpu,
        "generator_cpu_s": generator_cpu,
        "peak_rss_mb": peak_rss,
        "latency_under_load": stats_latency.latency,
    }))
}

/// Phase 2: an open-loop publisher (the schedule does not wait for
/// answers) at R events/s for S seconds; publish→receipt percentiles.
pub async fn latency(env: &Env, args: &Args) -> Result<Value, String> {
    let per_s: u64 = args.num("rate", 200)?;
    let seconds: f64 = args.num("seconds", 30.0)?;
    let tenant = env
        .api
        .tenant(&env.admin_key, &env.receiver.hook_url(), 1)
        .await?;
    warm_up(env, &tenant.key).await?;
    let run = open_loop(env, &tenant.key, per_s, seconds).await?;
    Ok(json!({
        "phase": "latency",
        "rate": per_s,
        "seconds": seconds,
        "events": run.events,
        "received": run.received,
        "publish_to_receipt": run.publish_to_receipt,
        "publish_answer": run.publish_answer,
    }))
}

/// Publishes 20 events and waits for them, so that the connections and the
/// scripts' cache are warm before anything is timed; then clears the
/// receiver's statistics.
pub async fn warm_up(env: &Env, key: &str) -> Result<(), String> {
    env.receiver.reset().await?;
    for _ in 0..20 {
        env.api.publish(key, env.body_bytes).await?;
    }
    env.receiver
        .wait_for(20, env.timeout, Duration::from_millis(10))
        .await?;
    env.receiver.reset().await
}

/// What one open-loop run measured.
pub struct OpenLoop {
    pub events: u64,
    pub received: u64,
    pub publish_to_receipt: Option<Percentiles>,
    pub publish_answer: Option<Percentiles>,
}

/// Publishes at `per_s` events/s for `seconds`, one event per request, on a
/// schedule that does not wait for answers (a slow answer must not lower
/// the rate it is measured at), then waits until the receiver has every
/// event. Only `key`'s tenant may point at the receiver meanwhile: its
/// statistics are cleared at the start and read at the end.
pub async fn open_loop(env: &Env, key: &str, per_s: u64, seconds: f64) -> Result<OpenLoop, String> {
    let total = ((per_s as f64) * seconds).round().max(1.0) as u64;
    env.receiver.reset().await?;
    let mut ticker = tokio::time::interval(Duration::from_nanos(1_000_000_000 / per_s.max(1)));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..total {
        ticker.tick().await;
        let api = env.api.clone();
        let key = key.to_string();
        let body_bytes = env.body_bytes;
        set.spawn(async move {
            let sent = unix_nanos();
            api.publish(&key, body_bytes).await?;
            Ok::<u64, String>(unix_nanos() - sent)
        });
    }
    let mut answers = Vec::with_capacity(total as usize);
    while let Some(done) = set.join_next().await {
        answers.push(done.map_err(|e| e.to_string())??);
    }
    env.receiver
        .wait_for(total, env.timeout, Duration::from_millis(20))
        .await?;
    let stats = env.receiver.stats(true).await?;
    Ok(OpenLoop {
        events: total,
        received: stats.count,
        publish_to_receipt: stats.latency,
        publish_answer: Percentiles::of_nanos(&mut answers),
    })
}

/// Phase 3: the physical limit. The worker's own `deliver::send` (the same
/// client, signing and header rules) POSTs the same kind of body to the
/// same receiver with the worker's concurrency, and nothing else: no Redis,
/// no API. With `--relay 1` (phase `relay`), `--concurrency` publishers
/// send the throughput phase's publish request (client, headers and body)
/// to the receiver, which answers at once, and each answered publish is
/// handed to `--deliver-concurrency` delivery tasks (32, the default limit
/// of attempts in flight to one endpoint) that send its signed delivery
/// as the bare loop does: the two HTTP exchanges an event published one
/// per request costs end to end, at once as in the real path, with no API
/// logic, no Redis and no worker bookkeeping between them. CPU seconds of
/// this process (`client`: both clients) and of the `--pids` given (the
/// receiver).
pub async fn bare(env: &Env, args: &Args) -> Result<Value, String> {
    let requests: u64 = args.num("requests", 20_000)?;
    let concurrency: usize = args.num("concurrency", 256)?;
    let relay = args.num("relay", 0u8)? == 1;
    let deliverers: usize = args.num("deliver-concurrency", 32)?;
    let policy = AddressPolicy::new(
        AddressPolicy::parse_allow_list("127.0.0.0/8").map_err(|e| format!("allow list: {e}"))?,
        false,
    );
    let client = hookfleet_worker::deliver::build_client(&policy)
        .map_err(|e| format!("http client: {e}"))?;
    let secret = SigningSecret::generate().expose();
    let sender = Arc::new(Deliverer {
        client,
        policy,
        endpoint: Arc::new(ClaimedEndpoint::new(
            "ep_bare",
            "ten_bare",
            &env.receiver.hook_url(),
            &secret,
        )),
        body_bytes: env.body_bytes,
    });
    env.receiver.reset().await?;
    let cpu = CpuWatch::start(args)?;
    let start = unix_nanos();
    let next = Arc::new(AtomicU64::new(0));
    let failures = Arc::new(AtomicU64::new(0));
    let mut set = tokio::task::JoinSet::new();
    let mut publish_failures = None;
    if relay {
        let publisher = Arc::new(Api::new(&env.receiver.base, concurrency)?);
        let refused = Arc::new(AtomicU64::new(0));
        let (handoff, queue) = tokio::sync::mpsc::channel::<()>(4096);
        let queue = Arc::new(tokio::sync::Mutex::new(queue));
        for _ in 0..concurrency {
            let (next, refused, publisher) = (next.clone(), refused.clone(), publisher.clone());
            let handoff = handoff.clone();
            let body_bytes = env.body_bytes;
            set.spawn(async move {
                while next.fetch_add(1, Ordering::Relaxed) < requests {
                    match publisher
                        .publish_status("/publish", "relay", body_bytes)
                        .await
                    {
                        Ok(200) => {
                            if handoff.send(()).await.is_err() {
                                return;
                            }
                        }
                        _ => {
                            refused.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            });
        }
        // The queue closes once every publisher is done.
        drop(handoff);
        for _ in 0..deliverers {
            let (queue, sender, failures) = (queue.clone(), sender.clone(), failures.clone());
            set.spawn(async move {
                loop {
                    let published = queue.lock().await.recv().await;
                    if published.is_none() {
                        return;
                    }
                    if !sender.deliver().await {
                        failures.fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
        }
        publish_failures = Some(refused);
    } else {
        for _ in 0..concurrency {
            let (next, failures, sender) = (next.clone(), failures.clone(), sender.clone());
            set.spawn(async move {
                while next.fetch_add(1, Ordering::Relaxed) < requests {
                    if !sender.deliver().await {
                        failures.fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
        }
    }
    while set.join_next().await.is_some() {}
    let end = unix_nanos();
    let client = cpu.own_seconds();
    let mut cpu = cpu.seconds();
    if !client.is_null() {
        cpu.insert("client".to_string(), client);
    }
    // Every request reached the receiver once (bare), or twice when its
    // publish was answered (relay); a refused publish sends no delivery.
    let refused = publish_failures.map_or(0, |r| r.load(Ordering::Relaxed));
    let expected = if relay {
        2 * requests - refused
    } else {
        requests
    };
    let stats = env
        .receiver
        .wait_for(expected, env.timeout, Duration::from_millis(20))
        .await?;
    Ok(json!({
        "phase": if relay { "relay" } else { "bare" },
        "requests": requests,
        "concurrency": concurrency,
        "deliver_concurrency": if relay { json!(deliverers) } else { Value::Null },
        "received": stats.count,
        "failures": failures.load(Ordering::Relaxed) + refused,
        "seconds": secs(end - start),
        "requests_per_s": rate(requests - refused, end - start),
        "cpu_s": cpu,
    }))
}

/// What the bare loop's tasks share: the worker's client, its address
/// policy and an endpoint signing as a claimed one does.
struct Deliverer {
    client: reqwest::Client,
    policy: AddressPolicy,
    endpoint: Arc<ClaimedEndpoint>,
    body_bytes: usize,
}

impl Deliverer {
    /// Sends one signed delivery of a fresh event, as the worker does;
    /// true when the receiver answered 200.
    async fn deliver(&self) -> bool {
        let now_ms = unix_nanos() / 1_000_000;
        let event_id = ids::new_id(IdKind::Event, Partition(0), now_ms);
        let body = json!({
            "id": event_id,
            "type": EVENT_TYPE,
            "timestamp": rfc3339_ms(now_ms),
            "data": event_data(unix_nanos(), self.body_bytes),
        })
        .to_string();
        let job = Job::first_attempt("", &event_id, self.endpoint.clone());
        let result = hookfleet_worker::deliver::send(
            &self.client,
            &self.policy,
            &job,
            &body,
            Duration::from_secs(30),
            now_ms,
            1024,
        )
        .await;
        result.status == Some(200)
    }
}

/// Phase 4: one event to E endpoints, R times: how long publishing takes
/// to answer and until the last endpoint received it.
pub async fn fanout(env: &Env, args: &Args) -> Result<Value, String> {
    let endpoints: usize = args.num("endpoints", 1000)?;
    let repeat: usize = args.num("repeat", 5)?;
    let tenant = env
        .api
        .tenant(&env.admin_key, &env.receiver.hook_url(), endpoints)
        .await?;
    let mut answers = Vec::new();
    let mut all_received = Vec::new();
    let mut complete = 0;
    for _ in 0..repeat {
        env.receiver.reset().await?;
        let sent = unix_nanos();
        env.api.publish(&tenant.key, env.body_bytes).await?;
        answers.push(unix_nanos() - sent);
        let stats = env
            .receiver
            .wait_for(endpoints as u64, env.timeout, Duration::from_millis(2))
            .await?;
        if stats.count >= endpoints as u64 {
            complete += 1;
            all_received.push(stats.last_ns.saturating_sub(sent));
        }
    }
    Ok(json!({
        "phase": "fanout",
        "endpoints": tenant.endpoints.len(),
        "repeat": repeat,
        "complete": complete,
        "publish_answer": Percentiles::of_nanos(&mut answers),
        "all_received": Percentiles::of_nanos(&mut all_received),
    }))
}

/// Phase 5a: queue N deliveries with no worker running (batches of 1,000
/// from C clients) and read Redis `used_memory` before and after.
pub async fn backlog(env: &Env, args: &Args) -> Result<Value, String> {
    let deliveries: u64 = args.num("deliveries", 100_000)?;
    let clients: usize = args.num("clients", 4)?;
    let batch: usize = args.num("batch", 1000)?;
    let redis_url = args.string("redis")?;
    let prefix = args.opt("prefix").unwrap_or_else(|| "hf".into());
    let mut conn = redis_conn(&redis_url).await?;
    let tenant = env
        .api
        .tenant(&env.admin_key, &env.receiver.hook_url(), 1)
        .await?;
    env.receiver.reset().await?;
    let before = used_memory(&mut conn).await?;
    let cpu = CpuWatch::start(args)?;
    let start = unix_nanos();
    let next = Arc::new(AtomicU64::new(0));
    let sample: Arc<std::sync::Mutex<Option<String>>> = Arc::default();
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..clients {
        let (api, key, next, sample) = (
            env.api.clone(),
            tenant.key.clone(),
            next.clone(),
            sample.clone(),
        );
        let body_bytes = env.body_bytes;
        set.spawn(async move {
            loop {
                let first = next.fetch_add(batch as u64, Ordering::Relaxed);
                if first >= deliveries {
                    return Ok::<(), String>(());
                }
                let n = (batch as u64).min(deliveries - first) as usize;
                let ids = api.publish_batch(&key, n, body_bytes).await?;
                if let (Ok(mut sample), Some(id)) = (sample.lock(), ids.first()) {
                    sample.get_or_insert_with(|| id.clone());
                }
            }
        });
    }
    while let Some(done) = set.join_next().await {
        done.map_err(|e| e.to_string())??;
    }
    let queued = unix_nanos();
    let cpu = cpu.seconds();
    let after = used_memory(&mut conn).await?;
    // The stored body of one event: every benchmark body has the same size.
    let sample_id = sample
        .lock()
        .ok()
        .and_then(|s| s.clone())
        .unwrap_or_default();
    // (The body as sent. The record stores less: not the envelope, which
    // reads rebuild, and the data compressed when that pays; so for data
    // that compresses this subtracts more than is stored, and the figure
    // beyond the payload is that much lower than the indexes' own cost.)
    let body_len: u64 = hookfleet_common::store::events::load(
        &mut conn,
        &hookfleet_common::Keys::new(prefix),
        &sample_id,
        Duration::from_secs(86_400),
    )
    .await
    .map_err(|e| format!("redis HGET: {e}"))?
    .map_or(0, |record| record.body().len() as u64);
    let growth = after.saturating_sub(before);
    Ok(json!({
        "phase": "backlog",
        "deliveries": deliveries,
        "batch": batch,
        "clients": clients,
        "queue_s": secs(queued - start),
        "accepted_per_s": rate(deliveries, queued - start),
        "cpu_s": cpu,
        "used_memory_before": before,
        "used_memory_after": after,
        "body_bytes": body_len,
        "bytes_per_delivery": growth as f64 / deliveries as f64,
        "bytes_per_delivery_beyond_payload":
            growth.saturating_sub(body_len * deliveries) as f64 / deliveries as f64,
    }))
}

async fn redis_conn(url: &str) -> Result<redis::aio::MultiplexedConnection, String> {
    let client = redis::Client::open(url).map_err(|e| format!("redis: {e}"))?;
    client
        .get_multiplexed_async_connection()
        .await
        .map_err(|e| format!("redis: {e}"))
}

/// `INFO commandstats`: (command, calls, µs spent) per command.
async fn command_stats(
    conn: &mut redis::aio::MultiplexedConnection,
) -> Result<Vec<(String, u64, u64)>, String> {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(conn)
        .await
        .map_err(|e| format!("redis INFO: {e}"))?;
    // cmdstat_evalsha:calls=12,usec=345,usec_per_call=28.75,...
    Ok(info
        .lines()
        .filter_map(|line| {
            let (name, fields) = line.strip_prefix("cmdstat_")?.split_once(':')?;
            let field = |key: &str| -> Option<u64> {
                fields
                    .split(',')
                    .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))?
                    .parse()
                    .ok()
            };
            Some((name.to_string(), field("calls")?, field("usec")?))
        })
        .collect())
}

/// What Redis did per delivery between two `INFO commandstats` readings:
/// calls and µs per delivery of each command, busiest first. Time inside
/// a script counts for EVALSHA, not for the commands the script runs.
fn command_profile(before: &[(String, u64, u64)], after: &[(String, u64, u64)], per: u64) -> Value {
    let mut rows: Vec<(String, f64, f64)> = after
        .iter()
        .map(|(name, calls, usec)| {
            let (c0, u0) = before
                .iter()
                .find(|(n, _, _)| n == name)
                .map(|(_, c, u)| (*c, *u))
                .unwrap_or((0, 0));
            (
                name.clone(),
                calls.saturating_sub(c0) as f64 / per as f64,
                usec.saturating_sub(u0) as f64 / per as f64,
            )
        })
        .filter(|(_, calls, _)| *calls > 0.0)
        .collect();
    rows.sort_by(|a, b| b.2.total_cmp(&a.2));
    Value::Array(
        rows.into_iter()
            .map(|(name, calls, usec)| json!({"command": name, "calls": calls, "usec": usec}))
            .collect(),
    )
}

async fn used_memory(conn: &mut redis::aio::MultiplexedConnection) -> Result<u64, String> {
    let info: String = redis::cmd("INFO")
        .arg("memory")
        .query_async(conn)
        .await
        .map_err(|e| format!("redis INFO: {e}"))?;
    info.lines()
        .find_map(|line| line.strip_prefix("used_memory:"))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| "redis INFO has no used_memory".to_string())
}

/// Phase 5b: once workers are started on a queued backlog, wait until the
/// receiver has all of it; the drain rate runs from first to last receipt.
pub async fn drain(env: &Env, args: &Args) -> Result<Value, String> {
    let expect: u64 = args.num("expect", 100_000)?;
    let workers: u64 = args.num("workers", 1)?;
    let cpu = CpuWatch::start(args)?;
    let stats = env
        .receiver
        .wait_for(expect, env.timeout, Duration::from_millis(100))
        .await?;
    let span = stats.last_ns.saturating_sub(stats.first_ns);
    Ok(json!({
        "phase": "drain",
        "cpu_s": cpu.seconds(),
        "workers": workers,
        "expect": expect,
        "received": stats.count,
        "seconds": secs(span),
        "deliveries_per_s": rate(stats.count.saturating_sub(1), span),
    }))
}
