//! Playing a worker by hand: the worker library's own claim and record
//! calls, for tests that need a worker to stop at a chosen point (claimed
//! but never recorded, recorded then gone) before a real one takes over.

use hookfleet_common::Config;

/// Records one attempt the way the worker's recorder does (a `record.lua`
/// call carrying it alone), as of now: a test can then play a worker that
/// dies right after recording.
pub async fn record_one(
    pool: &hookfleet_common::redis_pool::RedisPool,
    keys: &hookfleet_common::Keys,
    config: &Config,
    job: &hookfleet_worker::claim::Job,
    result: &hookfleet_worker::deliver::AttemptResult,
    decision: hookfleet_worker::record::Decision,
) -> hookfleet_worker::record::Recorded {
    let attempted = hookfleet_worker::record::Attempted {
        job: job.clone(),
        result: result.clone(),
        decision,
        at_ms: hookfleet_common::time_util::now_ms(),
    };
    hookfleet_worker::record::record_many(pool, keys, config, job.partition, &[&attempted])
        .await
        .unwrap()
        .remove(0)
}

/// Claim settings for tests that call `claim.lua` directly: a `lease_ms`
/// lease, no initial delay, a day's retention, the default concurrency cap.
pub fn claim_settings(lease_ms: u64) -> hookfleet_worker::claim::ClaimSettings {
    hookfleet_worker::claim::ClaimSettings {
        lease_ms,
        initial_delay_ms: 0,
        retention_ms: 86_400_000,
        max_in_flight: 32,
    }
}

/// Claims up to 10 due deliveries of partition `p` the way a worker does,
/// under a 30 s lease and no tenant share: the jobs a test then plays.
pub async fn claim_jobs(
    pool: &hookfleet_common::redis_pool::RedisPool,
    keys: &hookfleet_common::Keys,
    p: hookfleet_common::ids::Partition,
) -> Vec<hookfleet_worker::claim::Job> {
    hookfleet_worker::claim::claim(
        pool,
        keys,
        p,
        10,
        claim_settings(30_000),
        &hookfleet_worker::claim::TenantSlots::unlimited(),
    )
    .await
    .expect("claim")
    .jobs
}
