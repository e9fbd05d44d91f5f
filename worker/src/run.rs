//! A worker's life: start (the Redis pool, the HTTP client, the wake-up
//! listener, metrics, the recorder and the background tasks), run the
//! claim loop (`claim_loop.rs`) until told to stop, then drain: attempts in
//! flight get up to `HOOKFLEET_SHUTDOWN_GRACE` to finish and record. The
//! background tasks are here too: queue sampling and the recovery of
//! interrupted fan-outs and unpublished operational events.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::{Quota, RateLimiter};
use hookfleet_common::ids::Partition;
use hookfleet_common::outage::{RedisOutage, Source};
use hookfleet_common::store::Store;
use hookfleet_common::{redis_pool, Config, Keys};
use rand::Rng;
use tokio::sync::{watch, Notify, Semaphore};
use tokio::task::JoinSet;

use crate::claim;
use crate::claim_loop::{self, PartitionSchedule};
use crate::context::Context;
use crate::deliver;
use crate::metrics::WorkerMetrics;
use crate::operational;
use crate::recorder::Recorder;

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

/// Runs a worker until `shutdown` turns true, then drains: attempts in
/// flight get up to `HOOKFLEET_SHUTDOWN_GRACE` to finish and record.
pub async fn run(config: Config, mut shutdown: watch::Receiver<bool>) -> Result<(), WorkerError> {
    let pool = redis_pool::create_pool(&config).map_err(WorkerError::Config)?;
    let client = deliver::build_client(&config.address_policy)?;
    let keys = Keys::new(config.redis_prefix.clone());
    hookfleet_common::store::layout::check(&pool, &keys, &config)
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
    let worker_concurrency = config.worker_concurrency;
    let (worker_max_rate, lease, request_timeout, tenant_share) = (
        config.worker_max_rate,
        config.lease,
        config.request_timeout,
        config.tenant_share,
    );
    let store = Store::new(pool, keys, config);
    let (recorder, recorder_task) = Recorder::spawn(store.clone());
    // With an outbound cap, claim no more than can start before their
    // leases run short: a claimed delivery waits its turn for at most
    // concurrency / rate seconds, which must leave room for the attempt.
    let mut concurrency = worker_concurrency;
    if worker_max_rate > 0 {
        let slack = lease
            .saturating_sub(request_timeout)
            .saturating_sub(Duration::from_secs(5))
            .as_secs()
            .max(1);
        let fits = (u64::from(worker_max_rate) * slack).max(1);
        concurrency = concurrency.min(fits as usize);
    }
    let share = Arc::new(crate::tenant_share::TenantShare::new(
        concurrency,
        tenant_share,
    ));
    let ctx = Arc::new(Context {
        store,
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
    let replays = tokio::spawn(crate::replays::run(ctx.clone(), shutdown.clone()));
    let deletions = tokio::spawn(crate::tenant_deletions::run(ctx.clone(), shutdown.clone()));
    let sweep = tokio::spawn(crate::retention_sweep::run(ctx.clone(), shutdown.clone()));
    let slots = Arc::new(Semaphore::new(concurrency));
    let mut tasks = JoinSet::new();
    let partitions: Vec<Partition> = ctx.store.config.all_partitions().collect();
    let start = rand::rng().random_range(0..partitions.len().max(1));
    tracing::info!(
        partitions = partitions.len(),
        concurrency,
        metrics = %metrics_addr,
        "worker started"
    );
    let schedule = PartitionSchedule::new(partitions, ctx.store.config.poll_interval, start);
    claim_loop::run(&ctx, &slots, &mut tasks, &mut shutdown, schedule).await;

    tracing::info!(
        in_flight = tasks.len(),
        "shutting down; finishing attempts in flight"
    );
    let drained = tokio::time::timeout(ctx.store.config.shutdown_grace, async {
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
    replays.abort();
    deletions.abort();
    sweep.abort();
    recorder_task.abort();
    metrics_task.abort();
    let _ = tokio::time::timeout(Duration::from_secs(2), heartbeat).await;
    tracing::info!("worker stopped");
    Ok(())
}

/// Samples the queue gauges every few seconds (one pipelined round trip).
async fn sample_queues(ctx: Arc<Context>, mut shutdown: watch::Receiver<bool>) {
    const SAMPLING: Source = Source::task("sampling the queues");
    loop {
        match ctx
            .metrics
            .queue
            .sample(&ctx.store.pool, &ctx.store.keys, &ctx.store.config)
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
    let every = (ctx.store.config.fanout_recovery / 2)
        .clamp(Duration::from_millis(200), Duration::from_secs(5));
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = crate::shutdown::wait(&mut shutdown) => return,
        }
        for p in ctx.store.config.all_partitions() {
            let recovered = hookfleet_common::publish::recover_fanouts(
                &ctx.store,
                p,
                ctx.store.config.fanout_recovery,
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
                operational::recover_notices(&ctx.store, p, ctx.store.config.fanout_recovery, 16)
                    .await;
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
