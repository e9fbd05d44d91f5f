//! The worker's main loop: claim, attempt, record, repeat; sleep only when
//! nothing is due, and wake at once when a publisher says so.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use hookfleet_common::ids::{IdKind, Partition};
use hookfleet_common::outage::{RedisOutage, Source};
use hookfleet_common::redis_pool::RedisPool;
use hookfleet_common::stored_event::{self, EventRecord};
use hookfleet_common::time_util::now_ms;
use hookfleet_common::{ids, redis_pool, Config, Keys};
use rand::Rng;
use tokio::sync::{watch, Notify, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tracing::Instrument;

use crate::attempt::{self, Decision};
use crate::claim::{self, Job};
use crate::deliver::{self, AttemptResult};
use crate::metrics::WorkerMetrics;
use crate::operational;
use crate::recorder::{Attempt, Recorder};
use hookfleet_common::publish::Store;

/// Why the worker could not start.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error("{0}")]
    Config(String),
    #[error("building the HTTP client: {0}")]
    Client(#[from] reqwest::Error),
    #[error("metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    #[error("HOOKFLEET_METRICS_LISTEN: cannot listen: {0}")]
    MetricsListen(std::io::Error),
}

/// What every attempt task shares.
struct Context {
    config: Config,
    keys: Keys,
    pool: RedisPool,
    client: reqwest::Client,
    metrics: Arc<WorkerMetrics>,
    /// Records attempts, batched per partition (see recorder.rs).
    recorder: Recorder,
    /// The worker's own outbound budget (`HOOKFLEET_WORKER_MAX_RATE`):
    /// in-process, so governor's GCRA fits; fleet-wide per-endpoint limits
    /// live in Redis instead.
    outbound: Option<DefaultDirectRateLimiter>,
    /// Wakes the claim loop, and says for which partitions (wake.rs).
    notify: Arc<Notify>,
    woken: Arc<crate::wake::Woken>,
    /// What every claim passes claim.lua (lease, first delay, retention,
    /// default concurrency cap), worked out once.
    claim_settings: claim::ClaimSettings,
    /// The slots each tenant holds here (`HOOKFLEET_TENANT_SHARE`).
    share: Arc<crate::tenant_share::TenantShare>,
    /// Every loop's Redis failures go here, so an outage is logged once
    /// (outage.rs), not once per partition per back-off round.
    outage: Arc<RedisOutage>,
}

/// The claim loop's calls, one source per partition.
const CLAIM: &str = "claiming deliveries";
/// An attempt's own calls, made once each (see outage.rs).
const READING_EVENT: Source = Source::once("reading an event");
const RECORDING: Source = Source::once("recording an attempt");

impl Context {
    fn store(&self) -> Store<'_> {
        Store {
            pool: &self.pool,
            keys: &self.keys,
            config: &self.config,
        }
    }
}

/// Runs a worker until `shutdown` turns true, then drains: attempts in
/// flight get up to `HOOKFLEET_SHUTDOWN_GRACE` to finish and record.
pub async fn run(config: Config, mut shutdown: watch::Receiver<bool>) -> Result<(), WorkerError> {
    let pool = redis_pool::create_pool(&config).map_err(WorkerError::Config)?;
    let client = deliver::build_client(&config.address_policy)?;
    let keys = Keys::new(config.redis_prefix.clone());
    hookfleet_common::layout::check(&pool, &keys, &config)
        .await
        .map_err(WorkerError::Config)?;
    let notify = Arc::new(Notify::new());
    let woken = Arc::new(crate::wake::Woken::new());
    let outage = Arc::new(RedisOutage::new());
    let listener = tokio::spawn(crate::wake::listen(
        hookfleet_common::subscription::addresses(&config),
        keys.wake_channel(),
        config.wake_keepalive,
        notify.clone(),
        woken.clone(),
        outage.clone(),
        shutdown.clone(),
    ));
    let config_max_rate = config.worker_max_rate;
    let claim_settings = claim::ClaimSettings::from_config(&config);
    let metrics = Arc::new(WorkerMetrics::new()?);
    let (metrics_addr, metrics_server) =
        crate::metrics::bind(config.metrics_listen, metrics.clone())
            .await
            .map_err(WorkerError::MetricsListen)?;
    let metrics_task = tokio::spawn(metrics_server);
    let heartbeat = tokio::spawn(crate::registry::heartbeat(
        pool.clone(),
        keys.clone(),
        metrics.clone(),
        outage.clone(),
        shutdown.clone(),
    ));
    let (recorder, recorder_task) = Recorder::spawn(pool.clone(), keys.clone(), config.clone());
    // With an outbound cap, claim no more than can start before their
    // leases run short: a claimed delivery waits its turn for at most
    // concurrency / rate seconds, which must leave room for the attempt.
    let mut concurrency = config.worker_concurrency;
    if config.worker_max_rate > 0 {
        let slack = config
            .lease
            .saturating_sub(config.request_timeout)
            .saturating_sub(Duration::from_secs(5))
            .as_secs()
            .max(1);
        let fits = (u64::from(config.worker_max_rate) * slack).max(1);
        concurrency = concurrency.min(fits as usize);
    }
    let share = Arc::new(crate::tenant_share::TenantShare::new(
        concurrency,
        config.tenant_share,
    ));
    let ctx = Arc::new(Context {
        config,
        keys,
        pool,
        client,
        metrics,
        recorder,
        outbound: NonZeroU32::new(config_max_rate)
            .map(|rate| RateLimiter::direct(Quota::per_second(rate))),
        notify: notify.clone(),
        woken,
        claim_settings,
        share,
        outage,
    });
    let sampler = tokio::spawn(sample_queues(ctx.clone(), shutdown.clone()));
    let fanouts = tokio::spawn(recover_fanouts(ctx.clone(), shutdown.clone()));
    let semaphore = Arc::new(Semaphore::new(concurrency));
    let mut tasks = JoinSet::new();
    let partitions: Vec<Partition> = ctx.config.all_partitions().collect();
    let mut start = rand::rng().random_range(0..partitions.len());
    // Per partition (by index): until when (epoch ms) not to claim it,
    // because its last claim took everything due; 0 = claim it. Set to the
    // partition's next due time or lease deadline, at most one poll
    // interval ahead; a wake-up for the partition brings it back. With one
    // busy partition of 16 this saves 15 empty claims per round, which
    // cost more than the busy partition's own claim.
    let mut idle_until: Vec<u64> = vec![0; partitions.len()];
    let poll_ms = ctx.config.poll_interval.as_millis() as u64;
    // Claims failed in a row, per partition: a failing partition (its
    // cluster node away) is set aside with its own back-off while the
    // others go on.
    let mut failures: Vec<u32> = vec![0; partitions.len()];
    tracing::info!(
        partitions = partitions.len(),
        concurrency,
        metrics = %metrics_addr,
        "worker started"
    );

    while !*shutdown.borrow() {
        // Taken before claiming, so a wake-up that arrives while we scan is
        // not lost: `notified()` then returns at once.
        let woken = notify.notified();
        tokio::pin!(woken);
        woken.as_mut().enable();

        // A partition that just got work is claimed again, and scanned
        // first (see wake.rs).
        for (n, p) in ctx.woken.take().into_iter().enumerate() {
            if let Some(at) = partitions.iter().position(|q| q.0 == p) {
                if failures[at] == 0 {
                    idle_until[at] = 0;
                }
                if n == 0 {
                    start = at;
                }
            }
        }
        let mut claimed_any = false;
        for offset in 0..partitions.len() {
            let free = semaphore.available_permits();
            if free == 0 {
                break;
            }
            let at = (start + offset) % partitions.len();
            let p = partitions[at];
            let now = now_ms();
            if idle_until[at] > now {
                continue;
            }
            ctx.metrics.claims.inc();
            let asked = free.min(ctx.config.claim_batch);
            let slots = ctx.share.slots();
            let claimed =
                claim::claim(&ctx.pool, &ctx.keys, p, asked, ctx.claim_settings, &slots).await;
            match claimed {
                Ok(claimed) => {
                    failures[at] = 0;
                    ctx.outage.succeeded(Source::partition(CLAIM, p.0));
                    ctx.metrics.claimed.inc_by(claimed.jobs.len() as u64);
                    ctx.metrics.rate_limited.inc_by(claimed.rate_limited);
                    ctx.metrics.at_capacity.inc_by(claimed.at_capacity);
                    ctx.metrics.share_skips.inc_by(claimed.skipped_for_share);
                    if claimed.jobs.is_empty() {
                        ctx.metrics.empty_claims.inc();
                    }
                    // Fewer than asked: nothing else was due (or what was
                    // is deferred), so set the partition aside.
                    idle_until[at] = if claimed.jobs.len() < asked {
                        let recheck = now + poll_ms.max(1);
                        claimed
                            .next_due_ms
                            .map_or(recheck, |due| due.clamp(now + 1, recheck))
                    } else {
                        0
                    };
                    for job in claimed.jobs {
                        claimed_any = true;
                        let Ok(permit) = semaphore.clone().try_acquire_owned() else {
                            // Cannot happen (we claimed at most `free`), but
                            // if it did, the lease simply expires and the
                            // delivery is claimed again.
                            break;
                        };
                        let span = tracing::info_span!(
                            "attempt",
                            delivery_id = %job.delivery_id,
                            event_id = %job.event_id,
                            endpoint_id = %job.endpoint_id,
                        );
                        // Counted in its tenant's share from now (not when
                        // the task first runs: the next claim, a moment
                        // later, must see it).
                        let held = ctx.share.start(&job.endpoint.tenant_id);
                        tasks.spawn(process(ctx.clone(), job, permit, held).instrument(span));
                    }
                }
                Err(err) => {
                    ctx.metrics.redis_errors.inc();
                    if let claim::ClaimError::Reply(_) = err {
                        // Redis answered, with something claim.lua never
                        // returns: a bug to see, not an outage.
                        tracing::error!(partition = p.0, error = %err, "claim failed");
                    } else {
                        ctx.outage.failed(Source::partition(CLAIM, p.0), &err);
                    }
                    failures[at] = failures[at].saturating_add(1);
                    idle_until[at] = now + partition_backoff_ms(failures[at]);
                }
            }
        }
        start = (start + 1) % partitions.len();
        while let Some(done) = tasks.try_join_next() {
            if let Err(err) = done {
                tracing::error!(error = %err, "attempt task failed");
            }
        }

        // (A failed claim set its partition aside with its own back-off, so
        // with Redis away the loop below sleeps until the first partition's
        // back-off ends, still listening for wake-ups: no spinning, and no
        // stall of the partitions that work.)

        if semaphore.available_permits() == 0 {
            // Full: wait until an attempt finishes before claiming more.
            tokio::select! {
                permit = semaphore.clone().acquire_owned() => drop(permit),
                _ = crate::shutdown::wait(&mut shutdown) => {}
            }
            continue;
        }
        if claimed_any {
            continue;
        }
        // Until the first partition needs another look.
        let first_look = idle_until.iter().copied().min().unwrap_or(0);
        // (At least 1 ms even with a zero poll interval: set-aside
        // partitions wait at least that long, so no busy loop.)
        let sleep_for = Duration::from_millis(first_look.saturating_sub(now_ms()))
            .min(ctx.config.poll_interval.max(Duration::from_millis(1)));
        if sleep_for.is_zero() {
            continue;
        }
        tokio::select! {
            _ = woken => {}
            _ = tokio::time::sleep(sleep_for) => {}
            _ = crate::shutdown::wait(&mut shutdown) => {}
        }
    }

    tracing::info!(
        in_flight = tasks.len(),
        "shutting down; finishing attempts in flight"
    );
    let drained = tokio::time::timeout(ctx.config.shutdown_grace, async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            abandoned = tasks.len(),
            "grace period over; abandoned attempts will be retried when their leases expire"
        );
        tasks.abort_all();
    }
    listener.abort();
    sampler.abort();
    fanouts.abort();
    recorder_task.abort();
    metrics_task.abort();
    let _ = tokio::time::timeout(Duration::from_secs(2), heartbeat).await;
    tracing::info!("worker stopped");
    Ok(())
}

/// One attempt of one delivery: fetch the body if needed, POST, decide,
/// record. Holds its concurrency permit until the attempt is recorded.
/// `_held` counts the attempt in its tenant's share until it is recorded.
async fn process(
    ctx: Arc<Context>,
    job: Job,
    permit: OwnedSemaphorePermit,
    _held: crate::tenant_share::Held,
) {
    ctx.metrics.in_flight.inc();
    attempt_one(&ctx, job, permit).await;
    ctx.metrics.in_flight.dec();
}

async fn attempt_one(ctx: &Arc<Context>, mut job: Job, _permit: OwnedSemaphorePermit) {
    if job.event.is_none() {
        match Box::pin(fetch_event(ctx, &job)).await {
            Ok(event) => {
                ctx.outage.succeeded(READING_EVENT);
                job.event = event.map(Arc::new);
            }
            Err(err) => {
                // Could not read the event: give the lease back by letting
                // it expire; the delivery will be claimed again.
                ctx.outage.failed(READING_EVENT, &err);
                return;
            }
        }
    }
    let started_ms = now_ms();
    let (result, decision) = match job.event.clone() {
        Some(event) => {
            if let Some(outbound) = &ctx.outbound {
                outbound.until_ready().await;
            }
            // An attempt never outlives its lease, whatever timeout an
            // endpoint stored and however long reading the event and the
            // outbound limiter took: past the lease another worker may
            // claim the delivery and send it at the same time.
            let Some(timeout) = deliver::attempt_timeout(
                ctx.config.lease,
                job.claimed_at.elapsed(),
                job.endpoint.timeout_ms.map(Duration::from_millis),
                ctx.config.request_timeout,
            ) else {
                tracing::warn!(
                    "the lease is nearly over before sending; the delivery will be claimed again"
                );
                return;
            };
            let result = deliver::send(
                &ctx.client,
                &ctx.config.address_policy,
                &job,
                event.body(),
                timeout,
                started_ms,
            )
            .await;
            let decision = attempt::decide(
                &result,
                job.attempts_before + 1,
                job.attempt_cap(),
                &ctx.config.retry_schedule,
                ctx.config.retry_after_max,
                now_ms(),
            );
            let decision = match ids::created_ms(IdKind::Event, &job.event_id) {
                Some(created) => attempt::within_retention(
                    decision,
                    created,
                    ctx.config.retention,
                    ctx.config.lease,
                ),
                None => decision,
            };
            (result, decision)
        }
        None => {
            let result = AttemptResult {
                error: Some("the event's payload has expired (retention)".into()),
                ..AttemptResult::default()
            };
            (result, Decision::Failed)
        }
    };
    tracing::debug!(status = ?result.status, ?decision, "attempt done");
    let metrics = &ctx.metrics;
    metrics
        .attempts
        .with_label_values(&[attempt::class_field(result.status).trim_start_matches("attempts_")])
        .inc();
    metrics
        .attempt_duration
        .observe(result.duration.as_secs_f64());
    let outcome = match decision {
        Decision::Delivered => "delivered",
        Decision::RetryAt(_) => "retry",
        Decision::Failed => "failed",
    };
    metrics.outcomes.with_label_values(&[outcome]).inc();
    if decision == Decision::Delivered && !job.test() {
        if let Some(published) = ids::created_ms(IdKind::Event, &job.event_id) {
            let latency = now_ms().saturating_sub(published) as f64 / 1000.0;
            metrics.delivery_latency.observe(latency);
        }
    }

    let attempt = Arc::new(Attempt {
        job,
        result,
        decision,
        at_ms: now_ms(),
    });
    let mut backoff = Duration::from_millis(100);
    for _ in 0..6 {
        match ctx.recorder.record(attempt.clone()).await {
            Ok(recorded) => {
                ctx.outage.succeeded(RECORDING);
                if !recorded.held {
                    tracing::info!(
                        "lease was taken over or delivery cancelled; attempt logged only"
                    );
                }
                let job = &attempt.job;
                if matches!(decision, Decision::RetryAt(_)) {
                    // The retry is due in a partition the claim loop may
                    // have set aside as empty: have it look again (it then
                    // waits for the retry's due time).
                    ctx.woken.set(job.partition.0);
                    ctx.notify.notify_one();
                }
                if recorded.disabled {
                    tracing::warn!(endpoint_id = %job.endpoint_id, status = ?attempt.result.status, "endpoint disabled by the circuit breaker");
                }
                // Boxed: these rare operational sends' futures are several
                // KiB, and inline they would make every spawned attempt task
                // that large, copied a few times per spawn.
                for notice in &recorded.notices {
                    Box::pin(operational::publish_notice(
                        &ctx.store(),
                        job.partition,
                        notice,
                    ))
                    .await;
                }
                return;
            }
            Err(err) => {
                ctx.metrics.redis_errors.inc();
                // Retried below; the outage, if it is one, is said once.
                ctx.outage.failed(RECORDING, &err);
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(3));
            }
        }
    }
    tracing::error!(
        "could not record the attempt; the lease will expire and the delivery will be retried"
    );
}

/// Samples the queue gauges every few seconds (one pipelined round trip).
async fn sample_queues(ctx: Arc<Context>, mut shutdown: watch::Receiver<bool>) {
    const SAMPLING: Source = Source::task("sampling the queues");
    loop {
        match ctx
            .metrics
            .queue
            .sample(&ctx.pool, &ctx.keys, &ctx.config)
            .await
        {
            Ok(_) => ctx.outage.succeeded(SAMPLING),
            Err(err) => {
                ctx.metrics.redis_errors.inc();
                ctx.outage.failed(SAMPLING, &err);
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(5)) => {}
            _ = crate::shutdown::wait(&mut shutdown) => return,
        }
    }
}

/// Finishes fan-outs their API process left incomplete (it died between
/// answering 202 and queuing every partition's deliveries): every few
/// seconds, the events pending longer than `HOOKFLEET_FANOUT_RECOVERY` in
/// each partition. Several workers may pick the same event; finishing a
/// fan-out is idempotent (delivery ids derive from event and endpoint).
/// The same round publishes operational events whose worker left them
/// unpublished as long (see [`operational`]; idempotent too).
async fn recover_fanouts(ctx: Arc<Context>, mut shutdown: watch::Receiver<bool>) {
    let every =
        (ctx.config.fanout_recovery / 2).clamp(Duration::from_millis(200), Duration::from_secs(5));
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = crate::shutdown::wait(&mut shutdown) => return,
        }
        for p in ctx.config.all_partitions() {
            let recovered = hookfleet_common::publish::recover_fanouts(
                ctx.store(),
                p,
                ctx.config.fanout_recovery,
                16,
            )
            .await;
            let fanouts = Source::partition("finishing interrupted fan-outs", p.0);
            match recovered {
                Ok(_) => ctx.outage.succeeded(fanouts),
                Err(err) => {
                    ctx.metrics.redis_errors.inc();
                    ctx.outage.failed(fanouts, &err);
                }
            }
            let notices =
                operational::recover_notices(&ctx.store(), p, ctx.config.fanout_recovery, 16).await;
            let left_behind = Source::partition("publishing left-behind operational events", p.0);
            match notices {
                Ok(_) => ctx.outage.succeeded(left_behind),
                Err(err) => {
                    ctx.metrics.redis_errors.inc();
                    ctx.outage.failed(left_behind, &err);
                }
            }
        }
    }
}

/// Reads an event from its home partition (when it is not the delivery's
/// partition). `Ok(None)`: the event expired.
async fn fetch_event(ctx: &Context, job: &Job) -> Result<Option<EventRecord>, String> {
    let mut conn = ctx.pool.get().await.map_err(|e| e.to_string())?;
    stored_event::load(&mut conn, &ctx.keys, &job.event_id, ctx.config.retention)
        .await
        .map_err(|e| e.to_string())
}

/// How long a partition whose claim failed `failures` times in a row is
/// set aside: 50 ms, doubling, at most 5 s.
fn partition_backoff_ms(failures: u32) -> u64 {
    50u64
        .saturating_mul(1 << failures.saturating_sub(1).min(7))
        .min(5_000)
}
