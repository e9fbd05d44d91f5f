//! The noisy-neighbour phase: does a tenant whose receivers hang or fail
//! slow another tenant down? Tenant Q publishes at a steady rate to the fast
//! receiver, once alone and once while tenant N has thousands of
//! deliveries queued to a receiver that never answers and to one that
//! answers 500 after two seconds. The claim (per-endpoint `max_in_flight`,
//! fleet-wide) is that Q's p99 stays within 3× of its p99 alone, that every
//! one of Q's events arrives, and that N's receivers see about as many
//! requests at once as the cap, not thousands.
//!
//! `tests/tests/e2e/delivery/noisy_neighbour.rs` checks the same scenario on debug builds
//! with slack; this phase measures it on the build `scripts/bench` runs.

use std::time::Duration;

use poem::http::StatusCode;
use serde_json::{json, Value};

use crate::api_client::EVENT_TYPE;
use crate::args::Args;
use crate::phases::{open_loop, warm_up, Env, OpenLoop};
use crate::slow_receiver::SlowReceiver;

/// The hanging endpoint's `timeout_s`: the scenario. With the
/// API's default lease (60 s) it is allowed; a lease below 15 s would
/// refuse it (a lease must outlive its attempt by 5 s).
const HANG_TIMEOUT_S: u64 = 10;

/// The longest the hanging receiver holds a connection: far past the
/// timeout (the worker closes it first); [`SlowReceiver::stop`] ends the
/// holds at the end of the phase.
const HANG_HOLD: Duration = Duration::from_secs(3600);

/// How long the failing receiver takes to answer 500.
const FAIL_AFTER: Duration = Duration::from_secs(2);

/// The batch route's most events per request.
const BATCH: u64 = 1000;

/// How long N's receivers may take to be reached once N's deliveries are
/// queued; the workers claim them within a poll interval, so this is slack.
const FIRST_HIT_WITHIN: Duration = Duration::from_secs(30);

/// Runs the phase: `--rate R` (50) events/s of tenant Q for `--seconds S`
/// (20) alone, then beside tenant N's `--deliveries D` (2,000) to each of
/// its two receivers. `--workers` and `--max-in-flight` only describe the
/// run in the record (the driver started the workers with that default
/// cap). N's endpoints are deleted at the end, so that its failing work is
/// not retried under whatever runs next.
pub async fn run(env: &Env, args: &Args) -> Result<Value, String> {
    let per_s: u64 = args.num("rate", 50)?;
    let seconds: f64 = args.num("seconds", 20.0)?;
    let deliveries: u64 = args.num("deliveries", 2000)?;
    let workers: u64 = args.num("workers", 1)?;
    let default_cap: u64 = args.num("max-in-flight", 32)?;

    let q = env
        .api
        .tenant(&env.admin_key, &env.receiver.hook_url(), 1)
        .await?;
    warm_up(env, &q.key).await?;
    let alone = open_loop(env, &q.key, per_s, seconds).await?;

    let hanging = SlowReceiver::hanging(HANG_HOLD).await?;
    let failing = SlowReceiver::answering(StatusCode::INTERNAL_SERVER_ERROR, FAIL_AFTER).await?;
    let n = env.api.new_tenant(&env.admin_key).await?;
    let mut n_endpoints = Vec::new();
    let outcome = async {
        for body in [
            json!({"url": hanging.url, "events": [EVENT_TYPE], "timeout_s": HANG_TIMEOUT_S}),
            json!({"url": failing.url, "events": [EVENT_TYPE]}),
        ] {
            let endpoint = env.api.endpoint(&n.key, &body).await?;
            n_endpoints.push(endpoint);
        }
        // Each of N's events goes to both endpoints: D events, D
        // deliveries to each receiver.
        let mut queued = 0;
        while queued < deliveries {
            let size = BATCH.min(deliveries - queued);
            env.api
                .publish_batch(&n.key, size as usize, env.body_bytes)
                .await?;
            queued += size;
        }
        wait_until_hit(&[&hanging, &failing]).await?;
        let before = (hanging.requests(), failing.requests());
        let beside = open_loop(env, &q.key, per_s, seconds).await?;
        let after = (hanging.requests(), failing.requests());
        Ok::<_, String>((beside, before, after))
    }
    .await;
    // Cleaning up whatever happened above: N's work is cancelled first, so
    // that the answers the stopped receivers give go nowhere.
    let mut cleanup = Vec::new();
    for endpoint in &n_endpoints {
        let id = endpoint["id"].as_str().unwrap_or_default();
        if let Err(err) = env.api.delete_endpoint(&n.key, id).await {
            cleanup.push(err);
        }
    }
    let (hanging_most, failing_most) = (hanging.most_open(), failing.most_open());
    let (hanging_total, failing_total) = (hanging.requests(), failing.requests());
    hanging.stop().await;
    failing.stop().await;
    let (beside, before, after) = outcome?;
    if !cleanup.is_empty() {
        return Err(format!(
            "removing tenant N's endpoints: {}",
            cleanup.join("; ")
        ));
    }

    // The cap each of N's endpoints had: its own if the API reports one,
    // else the fleet's default.
    let cap = |i: usize| {
        n_endpoints
            .get(i)
            .and_then(|e| e["max_in_flight"].as_u64())
            .unwrap_or(default_cap)
    };
    let p99 = |run: &OpenLoop| run.publish_to_receipt.map_or(f64::NAN, |p| p.p99_us);
    Ok(json!({
        "phase": "noisy-neighbour",
        "rate": per_s,
        "seconds": seconds,
        "workers": workers,
        "alone": q_record(&alone),
        "beside": q_record(&beside),
        "p99_ratio": p99(&beside) / p99(&alone),
        "noisy": [
            {
                "receiver": "hanging",
                "answer": format!("none within the endpoint's timeout_s of {HANG_TIMEOUT_S}"),
                "deliveries": deliveries,
                "max_in_flight": cap(0),
                "requests_in_window": after.0 - before.0,
                "requests": hanging_total,
                "most_open": hanging_most,
            },
            {
                "receiver": "failing",
                "answer": format!("500 after {} s", FAIL_AFTER.as_secs()),
                "deliveries": deliveries,
                "max_in_flight": cap(1),
                "requests_in_window": after.1 - before.1,
                "requests": failing_total,
                "most_open": failing_most,
            },
        ],
    }))
}

fn q_record(run: &OpenLoop) -> Value {
    json!({
        "events": run.events,
        "received": run.received,
        "publish_to_receipt": run.publish_to_receipt,
        "publish_answer": run.publish_answer,
    })
}

/// Waits until every receiver has had a request: Q's second run must start
/// with N's attempts already holding their slots.
async fn wait_until_hit(receivers: &[&SlowReceiver]) -> Result<(), String> {
    let deadline = tokio::time::Instant::now() + FIRST_HIT_WITHIN;
    while receivers.iter().any(|r| r.requests() == 0) {
        if tokio::time::Instant::now() >= deadline {
            return Err(format!(
                "tenant N's receivers were not both reached within {} s of queueing",
                FIRST_HIT_WITHIN.as_secs()
            ));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}
