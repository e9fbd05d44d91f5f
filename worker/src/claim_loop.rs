//! The claim loop: scan the partitions, lease due deliveries while this
//! worker has free slots, start one attempt task per delivery, and sleep
//! only when nothing is due, waking at once when a publisher says so.
//!
//! [`PartitionSchedule`] decides which partitions a scan claims: one whose
//! last claim took everything due is set aside until its next due time
//! (at most one poll interval), a failing one backs off on its own, and a
//! wake-up brings a partition back and puts it first.

use std::sync::Arc;
use std::time::Duration;

use hookfleet_common::ids::Partition;
use hookfleet_common::outage::Source;
use hookfleet_common::time_util::now_ms;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;
use tracing::Instrument;

use crate::claim::{self, Claimed};
use crate::context::Context;
use crate::pipeline;

/// The claim loop's Redis calls, one outage source per partition.
const CLAIMING: &str = "claiming deliveries";

/// When each partition is claimed next.
#[derive(Debug)]
pub struct PartitionSchedule {
    partitions: Vec<Partition>,
    /// Where the next scan starts; it moves on every round, so no
    /// partition is always scanned last.
    start: usize,
    /// Per partition (by index): until when (epoch ms) not to claim it;
    /// 0 = claim it. With one busy partition of 16 this saves 15 empty
    /// claims per round, which cost more than the busy one's own claim.
    idle_until: Vec<u64>,
    /// Claims failed in a row, per partition: a failing partition (its
    /// cluster node away) is set aside with its own back-off while the
    /// others go on.
    failures: Vec<u32>,
    poll_ms: u64,
}

impl PartitionSchedule {
    /// A schedule over `partitions`, every one due, the first scan starting
    /// at `start` (workers start at random places, so they spread out).
    pub fn new(partitions: Vec<Partition>, poll_interval: Duration, start: usize) -> Self {
        let n = partitions.len().max(1);
        Self {
            idle_until: vec![0; partitions.len()],
            failures: vec![0; partitions.len()],
            partitions,
            start: start % n,
            poll_ms: poll_interval.as_millis() as u64,
        }
    }

    /// Partitions that just got work (wake.rs) are due again, unless they
    /// are backing off; the first of them starts the next scan.
    pub fn woken(&mut self, partitions: impl IntoIterator<Item = u16>) {
        for (n, p) in partitions.into_iter().enumerate() {
            if let Some(at) = self.partitions.iter().position(|q| q.0 == p) {
                if self.failures[at] == 0 {
                    self.idle_until[at] = 0;
                }
                if n == 0 {
                    self.start = at;
                }
            }
        }
    }

    /// This round's scan order: (index, partition) from `start` on.
    pub fn scan(&self) -> Vec<(usize, Partition)> {
        let n = self.partitions.len();
        (0..n)
            .map(|offset| {
                let at = (self.start + offset) % n;
                (at, self.partitions[at])
            })
            .collect()
    }

    /// Whether partition `at` is to be claimed at `now`.
    pub fn is_due(&self, at: usize, now: u64) -> bool {
        self.idle_until[at] <= now
    }

    /// A claim of `asked` at `now` got `got`. Fewer than asked: nothing else
    /// was due (or what was is deferred), so the partition is set aside
    /// until its next due time, at most one poll interval.
    pub fn claimed(
        &mut self,
        at: usize,
        got: usize,
        asked: usize,
        next_due_ms: Option<u64>,
        now: u64,
    ) {
        self.failures[at] = 0;
        self.idle_until[at] = if got < asked {
            let recheck = now + self.poll_ms.max(1);
            next_due_ms.map_or(recheck, |due| due.clamp(now + 1, recheck))
        } else {
            0
        };
    }

    /// A claim failed at `now`: the partition backs off (50 ms, doubling,
    /// at most 5 s), whatever wakes it meanwhile.
    pub fn failed(&mut self, at: usize, now: u64) {
        self.failures[at] = self.failures[at].saturating_add(1);
        self.idle_until[at] = now + backoff_ms(self.failures[at]);
    }

    /// Moves the next scan's start on by one.
    pub fn rotate(&mut self) {
        self.start = (self.start + 1) % self.partitions.len().max(1);
    }

    /// How long to sleep at `now` when nothing was claimed: until the first
    /// partition is due again, at most `poll_interval` (and at least 1 ms
    /// when none is due yet, so a zero poll interval is no busy loop).
    pub fn sleep_for(&self, now: u64, poll_interval: Duration) -> Duration {
        let first = self.idle_until.iter().copied().min().unwrap_or(0);
        Duration::from_millis(first.saturating_sub(now))
            .min(poll_interval.max(Duration::from_millis(1)))
    }
}

/// How long a partition whose claim failed `failures` times in a row is
/// set aside: 50 ms, doubling, at most 5 s.
fn backoff_ms(failures: u32) -> u64 {
    50u64
        .saturating_mul(1 << failures.saturating_sub(1).min(7))
        .min(5_000)
}

/// Claims and starts attempts until `shutdown` turns true; attempt tasks
/// go into `tasks`, each holding one of `slots`' permits.
pub async fn run(
    ctx: &Arc<Context>,
    slots: &Arc<Semaphore>,
    tasks: &mut JoinSet<()>,
    shutdown: &mut watch::Receiver<bool>,
    mut schedule: PartitionSchedule,
) {
    while !*shutdown.borrow() {
        // Taken before claiming, so a wake-up that arrives while we scan is
        // not lost: `notified()` then returns at once.
        let woken = ctx.notify.notified();
        tokio::pin!(woken);
        woken.as_mut().enable();
        schedule.woken(ctx.woken.take());

        let mut claimed_any = false;
        for (at, p) in schedule.scan() {
            let free = slots.available_permits();
            if free == 0 {
                break;
            }
            let now = now_ms();
            if !schedule.is_due(at, now) {
                continue;
            }
            let asked = free.min(ctx.store.config.claim_batch);
            match claim_partition(ctx, p, asked).await {
                Ok(claimed) => {
                    schedule.claimed(at, claimed.jobs.len(), asked, claimed.next_due_ms, now);
                    claimed_any |= !claimed.jobs.is_empty();
                    start_attempts(ctx, slots, tasks, claimed);
                }
                Err(()) => schedule.failed(at, now),
            }
        }
        schedule.rotate();
        while let Some(done) = tasks.try_join_next() {
            if let Err(err) = done {
                tracing::error!(error = %err, "attempt task failed");
            }
        }

        // (A failed claim set its partition aside with its own back-off, so
        // with Redis away the loop below sleeps until the first partition's
        // back-off ends, still listening for wake-ups: no spinning, and no
        // stall of the partitions that work.)
        if slots.available_permits() == 0 {
            // Full: wait until an attempt finishes before claiming more.
            tokio::select! {
                permit = slots.clone().acquire_owned() => drop(permit),
                _ = crate::shutdown::wait(shutdown) => {}
            }
            continue;
        }
        if claimed_any {
            continue;
        }
        let sleep_for = schedule.sleep_for(now_ms(), ctx.store.config.poll_interval);
        if sleep_for.is_zero() {
            continue;
        }
        tokio::select! {
            _ = woken => {}
            _ = tokio::time::sleep(sleep_for) => {}
            _ = crate::shutdown::wait(shutdown) => {}
        }
    }
}

/// One claim of up to `asked` deliveries of `p`, counted in the metrics;
/// `Err(())` when it failed (logged: an outage once, a bad reply as a bug).
async fn claim_partition(ctx: &Context, p: Partition, asked: usize) -> Result<Claimed, ()> {
    ctx.metrics.claims.inc();
    let slots = ctx.share.slots();
    match claim::claim(
        &ctx.store.pool,
        &ctx.store.keys,
        p,
        asked,
        ctx.claim_settings,
        &slots,
    )
    .await
    {
        Ok(claimed) => {
            ctx.outage.succeeded(Source::partition(CLAIMING, p.0));
            let metrics = &ctx.metrics;
            metrics.claimed.inc_by(claimed.jobs.len() as u64);
            metrics.rate_limited.inc_by(claimed.rate_limited);
            metrics.at_capacity.inc_by(claimed.at_capacity);
            metrics.share_skips.inc_by(claimed.skipped_for_share);
            if claimed.jobs.is_empty() {
                metrics.empty_claims.inc();
            }
            Ok(claimed)
        }
        Err(err) => {
            ctx.metrics.redis_errors.inc();
            if let claim::ClaimError::Reply(_) = err {
                // Redis answered, with something claim.lua never returns: a
                // bug to see, not an outage.
                tracing::error!(partition = p.0, error = %err, "claim failed");
            } else {
                ctx.outage.failed(Source::partition(CLAIMING, p.0), &err);
            }
            Err(())
        }
    }
}

/// Starts one attempt task per claimed job, each holding a slot.
fn start_attempts(
    ctx: &Arc<Context>,
    slots: &Arc<Semaphore>,
    tasks: &mut JoinSet<()>,
    claimed: Claimed,
) {
    for job in claimed.jobs {
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            // Cannot happen (we claimed at most the free slots), but if it
            // did, the lease simply expires and the delivery is claimed
            // again.
            break;
        };
        // At debug level: a span per attempt costs a few percent of the
        // worker's CPU at full speed, so the attempt's own warnings carry
        // its ids as fields instead (`pipeline.rs`, `deliver.rs`).
        let span = tracing::debug_span!(
            "attempt",
            delivery_id = %job.delivery_id,
            event_id = %job.event_id,
            endpoint_id = %job.endpoint_id,
        );
        // Counted in its tenant's share from now (not when the task first
        // runs: the next claim, a moment later, must see it).
        let held = ctx.share.start(&job.endpoint.tenant_id);
        tasks.spawn(pipeline::process(ctx.clone(), job, permit, held).instrument(span));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schedule(n: u16) -> PartitionSchedule {
        PartitionSchedule::new(
            (0..n).map(Partition).collect(),
            Duration::from_millis(500),
            0,
        )
    }

    #[test]
    fn a_partition_that_gave_less_than_asked_waits_for_its_next_due_time() {
        let mut s = schedule(4);
        let now = 1_000_000;
        s.claimed(1, 3, 10, Some(now + 200), now);
        assert!(!s.is_due(1, now + 199));
        assert!(s.is_due(1, now + 200));
        // Never longer than the poll interval, never in the past.
        s.claimed(2, 0, 10, Some(now + 60_000), now);
        assert!(s.is_due(2, now + 500));
        s.claimed(3, 0, 10, None, now);
        assert!(!s.is_due(3, now) && s.is_due(3, now + 500));
        // A full claim keeps the partition due.
        s.claimed(0, 10, 10, Some(now + 60_000), now);
        assert!(s.is_due(0, now));
    }

    #[test]
    fn a_wake_up_brings_a_partition_back_and_scans_it_first() {
        let mut s = schedule(4);
        let now = 1_000_000;
        s.claimed(2, 0, 10, None, now);
        s.woken([2]);
        assert!(s.is_due(2, now));
        assert_eq!(s.scan()[0], (2, Partition(2)));
        s.rotate();
        assert_eq!(s.scan()[0], (3, Partition(3)));
        assert_eq!(s.scan().len(), 4);
    }

    #[test]
    fn a_failing_partition_backs_off_and_a_wake_up_does_not_cut_it_short() {
        let mut s = schedule(2);
        let now = 1_000_000;
        s.failed(0, now);
        assert!(!s.is_due(0, now + 49) && s.is_due(0, now + 50));
        s.failed(0, now);
        s.failed(0, now);
        assert!(!s.is_due(0, now + 199) && s.is_due(0, now + 200));
        s.woken([0]);
        assert!(!s.is_due(0, now + 1));
        for _ in 0..20 {
            s.failed(0, now);
        }
        assert!(s.is_due(0, now + 5_000), "at most 5 s");
        // A success ends the back-off.
        s.claimed(0, 1, 1, None, now);
        assert!(s.is_due(0, now));
    }

    #[test]
    fn the_loop_sleeps_until_the_first_partition_is_due() {
        let mut s = schedule(3);
        let now = 1_000_000;
        for at in 0..3 {
            s.claimed(at, 0, 1, Some(now + 100 * (at as u64 + 1)), now);
        }
        let poll = Duration::from_millis(500);
        assert_eq!(s.sleep_for(now, poll), Duration::from_millis(100));
        assert_eq!(s.sleep_for(now + 1_000, poll), Duration::ZERO);
        s.claimed(0, 1, 1, None, now);
        assert_eq!(s.sleep_for(now, poll), Duration::ZERO, "one is due now");
    }
}
