//! The delivery-semantics phases: ordered (FIFO) endpoints and content
//! filters, each measured against the same thing without it in the same
//! run, so that what is reported is a ratio on one machine.
//!
//! `fifo`: (a) one FIFO endpoint draining N queued events against a
//! receiver answering after 1 ms (its bound is one round trip per
//! delivery), beside an unordered endpoint doing the same; (b) another
//! tenant's publish→receipt latency at R events/s, alone and then beside
//! FIFO endpoints, some draining a backlog and most held by a failing head
//! (their lines wait an hour for a retry).
//!
//! `filter`: (a) the publish answer of a fan-out to E endpoints each with a
//! filter, against E without, published alternately; (b) single-event
//! publishing (C clients, closed loop) to one endpoint with a filter and to
//! one without, in rounds (each round both, which goes first alternating).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hookfleet_bench::{unix_nanos, Percentiles};
use poem::http::StatusCode;
use serde_json::{json, Value};

use crate::api_client::{Api, Tenant, EVENT_TYPE};
use crate::args::Args;
use crate::phases::{open_loop, warm_up, Env};
use crate::slow_receiver::SlowReceiver;

/// The filters of these phases read two fields of the benchmark's event
/// data and pass it; each endpoint's differs (by `n`), so each is compiled
/// and evaluated on its own, as distinct tenants' filters would be.
pub fn filter_text(n: usize) -> String {
    format!(r#"data.sent_ns > {n} && data.pad.startsWith("x")"#)
}

fn rate(count: u64, ns: u64) -> f64 {
    if ns == 0 {
        0.0
    } else {
        count as f64 * 1e9 / ns as f64
    }
}

/// Queues `events` to the tenant's one endpoint while it is paused, then
/// resumes it and times the drain at `receiver`: deliveries/s.
async fn drain_rate(
    api: &Api,
    tenant: &Tenant,
    receiver: &SlowReceiver,
    events: usize,
    body_bytes: usize,
    timeout: Duration,
) -> Result<f64, String> {
    let id = tenant.endpoints.first().ok_or("no endpoint")?;
    api.patch_endpoint(&tenant.key, id, &json!({"paused": true}))
        .await?;
    let mut left = events;
    while left > 0 {
        let n = left.min(500);
        api.publish_batch(&tenant.key, n, body_bytes).await?;
        left -= n;
    }
    let before = receiver.requests();
    let start = unix_nanos();
    api.patch_endpoint(&tenant.key, id, &json!({"paused": false}))
        .await?;
    let deadline = tokio::time::Instant::now() + timeout;
    while receiver.requests() < before + events as u64 {
        if tokio::time::Instant::now() >= deadline {
            return Err(format!(
                "only {} of {events} deliveries arrived",
                receiver.requests() - before
            ));
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    Ok(rate(events as u64, unix_nanos() - start))
}

pub async fn fifo(env: &Env, args: &Args) -> Result<Value, String> {
    let events: usize = args.num("events", 2000)?;
    let per_s: u64 = args.num("rate", 200)?;
    let seconds: f64 = args.num("seconds", 10.0)?;
    let draining: usize = args.num("draining", 10)?;
    let held: usize = args.num("held", 40)?;
    let api = &env.api;
    let answering = SlowReceiver::answering(StatusCode::OK, Duration::from_millis(1)).await?;
    let failing =
        SlowReceiver::answering(StatusCode::INTERNAL_SERVER_ERROR, Duration::ZERO).await?;
    let endpoint = |ordering: &str, url: &str| json!({"url": url, "events": [EVENT_TYPE], "ordering": ordering});

    // (a) One endpoint draining a queue, FIFO and not.
    let ordered = api
        .tenant_with(&env.admin_key, vec![endpoint("fifo", &answering.url)])
        .await?;
    let unordered = api
        .tenant_with(&env.admin_key, vec![endpoint("none", &answering.url)])
        .await?;
    // The bound measured: one request at a time from the driver's own
    // client to the same receiver, with a body of the same size.
    let body = json!({"data": "x".repeat(env.body_bytes)}).to_string();
    let client = reqwest::Client::new();
    let sequential = 500;
    let loop_start = unix_nanos();
    for _ in 0..sequential {
        client
            .post(&answering.url)
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await
            .map_err(|e| format!("sequential loop: {e}"))?;
    }
    let sequential_per_s = rate(sequential, unix_nanos() - loop_start);
    // Warm: connections and scripts.
    drain_rate(api, &ordered, &answering, 20, env.body_bytes, env.timeout).await?;
    let fifo_per_s = drain_rate(
        api,
        &ordered,
        &answering,
        events,
        env.body_bytes,
        env.timeout,
    )
    .await?;
    let none_per_s = drain_rate(
        api,
        &unordered,
        &answering,
        events,
        env.body_bytes,
        env.timeout,
    )
    .await?;

    // (b) Another tenant's latency, alone and beside FIFO endpoints.
    let quiet = api
        .tenant(&env.admin_key, &env.receiver.hook_url(), 1)
        .await?;
    warm_up(env, &quiet.key).await?;
    let alone = open_loop(env, &quiet.key, per_s, seconds).await?;
    let mut bodies: Vec<Value> = (0..draining)
        .map(|_| endpoint("fifo", &answering.url))
        .collect();
    bodies.extend((0..held).map(|_| {
        json!({"url": failing.url, "events": [EVENT_TYPE], "ordering": "fifo",
               "retry_schedule": ["0s", "1h"]})
    }));
    let busy = api.tenant_with(&env.admin_key, bodies).await?;
    // A backlog for every one of them: the draining ones work through it
    // (one at a time each), the held ones keep theirs behind a failed head.
    let backlog_per_endpoint = (events / 4).max(10);
    let mut left = backlog_per_endpoint;
    while left > 0 {
        let n = left.min(100);
        api.publish_batch(&busy.key, n, env.body_bytes).await?;
        left -= n;
    }
    let beside = open_loop(env, &quiet.key, per_s, seconds).await?;
    let failing_requests = failing.requests();
    for id in &busy.endpoints {
        api.delete_endpoint(&busy.key, id).await?;
    }
    answering.stop().await;
    failing.stop().await;
    Ok(json!({
        "phase": "fifo",
        "events": events,
        "fifo_per_s": fifo_per_s,
        "sequential_per_s": sequential_per_s,
        "none_per_s": none_per_s,
        "receiver_delay_ms": 1,
        "rate": per_s,
        "seconds": seconds,
        "draining": draining,
        "held": held,
        "backlog_per_endpoint": backlog_per_endpoint,
        "held_attempts": failing_requests,
        "alone": alone.publish_to_receipt,
        "beside": beside.publish_to_receipt,
    }))
}

/// C clients publishing `events` single events to `key` as fast as they
/// are answered: events/s accepted.
async fn publish_rate(
    api: &Api,
    key: &str,
    events: u64,
    clients: usize,
    body_bytes: usize,
) -> Result<f64, String> {
    let next = Arc::new(AtomicU64::new(0));
    let start = unix_nanos();
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..clients {
        let (api, key, next) = (api.clone(), key.to_string(), next.clone());
        set.spawn(async move {
            while next.fetch_add(1, Ordering::Relaxed) < events {
                api.publish(&key, body_bytes).await?;
            }
            Ok::<(), String>(())
        });
    }
    while let Some(done) = set.join_next().await {
        done.map_err(|e| e.to_string())??;
    }
    Ok(rate(events, unix_nanos() - start))
}

pub async fn filter(env: &Env, args: &Args) -> Result<Value, String> {
    let endpoints: usize = args.num("endpoints", 1000)?;
    let repeat: usize = args.num("repeat", 10)?;
    let events: u64 = args.num("events", 10_000)?;
    let clients: usize = args.num("clients", 16)?;
    let rounds: usize = args.num("rounds", 8)?;
    let api = &env.api;
    let hook = env.receiver.hook_url();
    let plain = json!({"url": hook, "events": [EVENT_TYPE]});
    let filtered =
        |n: usize| json!({"url": hook, "events": [EVENT_TYPE], "filter": filter_text(n)});

    // (a) Fan-out, E endpoints with a filter each against E without.
    let wide_plain = api
        .tenant_with(&env.admin_key, vec![plain.clone(); endpoints])
        .await?;
    let wide_filtered = api
        .tenant_with(&env.admin_key, (0..endpoints).map(filtered).collect())
        .await?;
    let mut answers_plain = Vec::with_capacity(repeat);
    let mut answers_filtered = Vec::with_capacity(repeat);
    for round in 0..=repeat {
        for (tenant, answers) in [
            (&wide_plain, &mut answers_plain),
            (&wide_filtered, &mut answers_filtered),
        ] {
            env.receiver.reset().await?;
            let sent = unix_nanos();
            api.publish(&tenant.key, env.body_bytes).await?;
            // Round 0 warms the caches (and compiles the filter once).
            if round > 0 {
                answers.push(unix_nanos() - sent);
            }
            env.receiver
                .wait_for(endpoints as u64, env.timeout, Duration::from_millis(2))
                .await?;
        }
    }
    // The wide tenants' endpoints go: the throughput rounds must not fan
    // out to them.
    for tenant in [&wide_plain, &wide_filtered] {
        for id in &tenant.endpoints {
            api.delete_endpoint(&tenant.key, id).await?;
        }
    }

    // (b) Single-event publishing to one endpoint, with and without.
    let one_plain = api.tenant_with(&env.admin_key, vec![plain]).await?;
    let one_filtered = api.tenant_with(&env.admin_key, vec![filtered(0)]).await?;
    let per_round = (events / rounds.max(1) as u64).max(1);
    // One warm-up each first, not measured (as in (a)): it compiles the
    // filter and warms the new tenants' caches.
    for tenant in [&one_plain, &one_filtered] {
        env.receiver.reset().await?;
        let warm_up = per_round.min(1000);
        publish_rate(api, &tenant.key, warm_up, clients, env.body_bytes).await?;
        env.receiver
            .wait_for(warm_up, env.timeout, Duration::from_millis(10))
            .await?;
    }
    let mut plain_rates = Vec::new();
    let mut filtered_rates = Vec::new();
    for round in 0..rounds {
        // Which goes first alternates, so neither side always meets what
        // the other left behind (plain, filtered, filtered, plain, ...).
        let mut order = [
            (&one_plain, &mut plain_rates),
            (&one_filtered, &mut filtered_rates),
        ];
        if round % 2 == 1 {
            order.reverse();
        }
        for (tenant, rates) in order {
            env.receiver.reset().await?;
            rates.push(publish_rate(api, &tenant.key, per_round, clients, env.body_bytes).await?);
            env.receiver
                .wait_for(per_round, env.timeout, Duration::from_millis(10))
                .await?;
        }
    }
    let mean = |rates: &[f64]| rates.iter().sum::<f64>() / rates.len().max(1) as f64;
    Ok(json!({
        "phase": "filter",
        "filter": filter_text(0).replace(" > 0 ", " > <n> "),
        "endpoints": endpoints,
        "repeat": repeat,
        "fanout_answer_plain": Percentiles::of_nanos(&mut answers_plain),
        "fanout_answer_filtered": Percentiles::of_nanos(&mut answers_filtered),
        "events_per_round": per_round,
        "rounds": rounds,
        "clients": clients,
        "publish_plain_per_s": mean(&plain_rates),
        "publish_filtered_per_s": mean(&filtered_rates),
        "publish_plain_rounds": plain_rates,
        "publish_filtered_rounds": filtered_rates,
    }))
}
