//! Redis outages, said once: one line when Redis stops answering, a
//! reminder every [`REMINDER_EVERY`] while it stays away (saying for how
//! long), and one line when it is back.
//!
//! A worker calls Redis from several loops at once (the claim loop, once
//! per partition; the heartbeat; the fan-out and notice recovery sweeps;
//! the queue sampler; the wake-up subscription), each retrying with its own
//! back-off. Logging each failure where it happens printed about a hundred
//! lines in the first five seconds of an outage and buried everything else.
//! Instead every loop reports to the process's one [`RedisOutage`], which
//! logs only the transitions, so an outage reads as two lines however many
//! loops noticed it.
//!
//! An outage starts when the loops' calls have failed for [`OUTAGE_AFTER`]
//! and [`OUTAGE_AFTER_CALLS`] calls with no success in between (or one
//! loop's calls have, while others succeed: a Redis Cluster node away), and
//! is dated from the first failure. Failures between successes are not
//! one: right after Redis comes back, each pooled connection that was not
//! used while it was away fails once (a broken pipe) and is replaced, and
//! calling each of those an outage would be the flood this type exists to
//! stop; they are logged at debug level. An outage is over when every loop that failed has succeeded
//! again; a partial one (some partitions failing while the others work) is
//! still an outage, and is reminded of.
//!
//! Calls that are not repeated on a schedule (recording one attempt,
//! reading one event) report with [`Source::once`]. Their failures are
//! counted in an outage but neither start nor hold one: the scheduled loops
//! (the heartbeat runs every 2 s, the subscription notices at once) always
//! find an outage, while a one-off call may retry on one stale connection
//! after another, or never run again to say it is over. Their successes
//! count like any other.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How often a continuing outage is logged again: often enough that a
/// reader of the log's tail knows it is still going on, rarely enough not to
/// flood it.
pub const REMINDER_EVERY: Duration = Duration::from_secs(30);

/// How long, and for how many calls, the loops' calls must keep failing
/// with no success in between to be an outage. While Redis answers, an
/// idle worker still claims every partition at least once per poll
/// interval (1 s by default), so a success comes well within this; a loop
/// that lands on one stale pooled connection after another (see the module
/// documentation) rarely does so three times in a row.
pub const OUTAGE_AFTER: Duration = Duration::from_secs(1);
pub const OUTAGE_AFTER_CALLS: u64 = 3;

/// Which loop a report comes from: the outage ends when every loop that
/// failed has succeeded since.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Source {
    task: &'static str,
    partition: Option<u16>,
    repeats: bool,
}

impl Source {
    /// A loop that calls Redis on a schedule (the heartbeat, say).
    pub const fn task(task: &'static str) -> Self {
        Source {
            task,
            partition: None,
            repeats: true,
        }
    }

    /// A loop's calls for one partition (a claim): partitions can live on
    /// different cluster nodes, so each one's recovery counts on its own.
    pub const fn partition(task: &'static str, partition: u16) -> Self {
        Source {
            task,
            partition: Some(partition),
            repeats: true,
        }
    }

    /// A call made once, not on a schedule (recording an attempt): see the
    /// module documentation.
    pub const fn once(task: &'static str) -> Self {
        Source {
            task,
            partition: None,
            repeats: false,
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.partition {
            Some(p) => write!(f, "{} (partition {p})", self.task),
            None => f.write_str(self.task),
        }
    }
}

/// What a report made the tracker say; returned so tests can check the
/// decisions without reading logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Said {
    /// Nothing new: Redis answers, a failure is not (yet) an outage, or the
    /// outage was already said.
    Nothing,
    /// Redis just became unreachable.
    Down,
    /// Still unreachable, this long after the first failure.
    StillDown { down_for: Duration, failures: u64 },
    /// Answering again: calls failed for `down_for` (first failure to
    /// last), `failures` of them.
    Back { down_for: Duration, failures: u64 },
}

/// The state of Redis as one process sees it. Share it (`Arc`) between
/// every loop that calls Redis.
#[derive(Debug)]
pub struct RedisOutage {
    /// True when a success has nothing to change (Redis up, no failure
    /// since the last success): lets [`succeeded`](Self::succeeded),
    /// called after every claim, return without taking the lock.
    clear: AtomicBool,
    state: Mutex<State>,
    reminder_every: Duration,
}

#[derive(Debug, Default)]
struct State {
    /// When the outage began (its first failure); `None` while Redis
    /// answers.
    since: Option<Instant>,
    /// The outage's last failure: it lasted from `since` to here.
    last_failure: Option<Instant>,
    /// When the outage was last logged, for the reminder.
    last_said: Option<Instant>,
    /// Calls failed since the outage began.
    failures: u64,
    /// While Redis answers: the failures of the loops since the last
    /// success of any call.
    streak: Option<Run>,
    /// Scheduled loops whose last call failed, with their own run of
    /// failures.
    failing: Vec<(Source, Run)>,
}

/// Failures in a row: since when, and how many.
#[derive(Debug, Clone, Copy)]
struct Run {
    since: Instant,
    calls: u64,
}

impl Run {
    fn start(now: Instant) -> Self {
        Run {
            since: now,
            calls: 0,
        }
    }

    /// Long enough, and of enough calls, to be an outage.
    fn is_outage(&self, now: Instant) -> bool {
        self.calls >= OUTAGE_AFTER_CALLS
            && now.saturating_duration_since(self.since) >= OUTAGE_AFTER
    }
}

impl Default for RedisOutage {
    fn default() -> Self {
        RedisOutage::new()
    }
}

impl RedisOutage {
    /// Reminds every [`REMINDER_EVERY`].
    pub fn new() -> Self {
        RedisOutage::with_reminder_every(REMINDER_EVERY)
    }

    pub fn with_reminder_every(reminder_every: Duration) -> Self {
        RedisOutage {
            clear: AtomicBool::new(true),
            state: Mutex::new(State::default()),
            reminder_every,
        }
    }

    /// True between the start of an outage and its end.
    pub fn is_down(&self) -> bool {
        self.lock().since.is_some()
    }

    /// Reports a failed Redis call; logs the start of an outage, or a
    /// reminder when the last line is [`REMINDER_EVERY`] old. Failures that
    /// are not (yet) an outage are logged at debug level.
    pub fn failed(&self, source: Source, error: &dyn fmt::Display) {
        match self.on_failure(source, Instant::now()) {
            Said::Down => tracing::warn!(
                %source,
                %error,
                "Redis unreachable or failing; retrying until it answers"
            ),
            Said::StillDown { down_for, failures } => tracing::warn!(
                down_for = %seconds(down_for),
                failed_calls = failures,
                %source,
                %error,
                "Redis still unreachable or failing"
            ),
            Said::Nothing if !self.is_down() => {
                tracing::debug!(%source, %error, "a Redis call failed");
            }
            Said::Nothing | Said::Back { .. } => {}
        }
    }

    /// Reports a successful Redis call; logs the end of an outage when this
    /// was the last failing loop. Cheap when nothing failed (one atomic
    /// load).
    pub fn succeeded(&self, source: Source) {
        if let Said::Back { down_for, failures } = self.on_success(source) {
            // At the level of the line it closes: a log filtered to
            // warnings must not show an outage that never ends.
            tracing::warn!(
                down_for = %seconds(down_for),
                failed_calls = failures,
                "Redis is back"
            );
        }
    }

    /// [`failed`](Self::failed) at `now`, without logging.
    pub fn on_failure(&self, source: Source, now: Instant) -> Said {
        let mut state = self.lock();
        self.clear.store(false, Ordering::Release);
        let own = if source.repeats {
            let at = match state.failing.iter().position(|(s, _)| *s == source) {
                Some(at) => at,
                None => {
                    state.failing.push((source, Run::start(now)));
                    state.failing.len() - 1
                }
            };
            state.failing[at].1.calls += 1;
            Some(state.failing[at].1)
        } else {
            None
        };
        let Some(since) = state.since else {
            // One-off calls neither start an outage nor count toward one.
            let Some(own) = own else {
                return Said::Nothing;
            };
            let streak = state.streak.get_or_insert(Run::start(now));
            streak.calls += 1;
            let streak = *streak;
            // All loops failing, or this one failing while others succeed.
            let began = if streak.is_outage(now) {
                streak.since
            } else if own.is_outage(now) {
                own.since
            } else {
                return Said::Nothing;
            };
            state.since = Some(began);
            state.last_failure = Some(now);
            state.last_said = Some(now);
            state.failures = streak.calls.max(own.calls);
            state.streak = None;
            return Said::Down;
        };
        state.failures = state.failures.saturating_add(1);
        state.last_failure = Some(now);
        let last = state.last_said.unwrap_or(since);
        if now.saturating_duration_since(last) < self.reminder_every {
            return Said::Nothing;
        }
        state.last_said = Some(now);
        Said::StillDown {
            down_for: now.saturating_duration_since(since),
            failures: state.failures,
        }
    }

    /// [`succeeded`](Self::succeeded), without logging. The outage ended
    /// with its last failure; it is said when every loop that failed has
    /// confirmed it (some run only every few seconds).
    pub fn on_success(&self, source: Source) -> Said {
        if self.clear.load(Ordering::Acquire) {
            return Said::Nothing;
        }
        let mut state = self.lock();
        state.failing.retain(|(failing, _)| *failing != source);
        let said = match state.since {
            None => {
                state.streak = None;
                Said::Nothing
            }
            Some(_) if !state.failing.is_empty() => Said::Nothing,
            Some(since) => {
                state.since = None;
                state.last_said = None;
                let last = state.last_failure.take().unwrap_or(since);
                Said::Back {
                    down_for: last.saturating_duration_since(since),
                    failures: std::mem::take(&mut state.failures),
                }
            }
        };
        let clear = state.since.is_none() && state.streak.is_none() && state.failing.is_empty();
        self.clear.store(clear, Ordering::Release);
        said
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// `12.3s`: short enough for a log field, precise enough for an outage.
fn seconds(duration: Duration) -> String {
    format!("{:.1}s", duration.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLAIM_0: Source = Source::partition("claim", 0);
    const CLAIM_1: Source = Source::partition("claim", 1);
    const HEARTBEAT: Source = Source::task("heartbeat");
    const RECORD: Source = Source::once("recording an attempt");

    fn at(start: Instant, ms: u64) -> Instant {
        start + Duration::from_millis(ms)
    }

    #[test]
    fn an_outage_is_said_once_however_many_loops_fail() {
        let outage = RedisOutage::with_reminder_every(Duration::from_secs(30));
        let t0 = Instant::now();
        assert_eq!(outage.on_success(CLAIM_0), Said::Nothing);
        // Every partition and loop failing, round after round, for 5 s:
        // an outage once they have failed for a second, dated from the
        // first failure, and nothing more. One-off calls count in it.
        let mut said = Vec::new();
        for round in 0..100 {
            for source in [CLAIM_0, CLAIM_1, HEARTBEAT, RECORD] {
                match outage.on_failure(source, at(t0, 50 * round)) {
                    Said::Nothing => {}
                    other => said.push((round, other)),
                }
            }
        }
        assert_eq!(said, [(20, Said::Down)]);
        assert!(outage.is_down());
        // Back only when every failing loop has succeeded since.
        assert_eq!(outage.on_success(CLAIM_0), Said::Nothing);
        assert_eq!(outage.on_success(HEARTBEAT), Said::Nothing);
        assert_eq!(
            outage.on_success(CLAIM_1),
            Said::Back {
                down_for: Duration::from_millis(4_950),
                failures: 400 - 20
            }
        );
        assert!(!outage.is_down());
        assert_eq!(outage.on_success(CLAIM_1), Said::Nothing);
        // The next outage is a new one, with its own count.
        assert_eq!(outage.on_failure(HEARTBEAT, at(t0, 9_000)), Said::Nothing);
        assert_eq!(outage.on_failure(HEARTBEAT, at(t0, 11_000)), Said::Nothing);
        assert_eq!(outage.on_failure(HEARTBEAT, at(t0, 13_000)), Said::Down);
        assert_eq!(
            outage.on_success(HEARTBEAT),
            Said::Back {
                down_for: Duration::from_secs(4),
                failures: 3
            }
        );
    }

    #[test]
    fn failures_between_successes_are_not_an_outage() {
        // Redis just came back: each stale pooled connection fails once (a
        // broken pipe, several attempts of one batch sharing it) and is
        // replaced, between successful calls, over a few seconds.
        let outage = RedisOutage::new();
        let t0 = Instant::now();
        for n in 0..40 {
            for source in [RECORD, RECORD, CLAIM_1, HEARTBEAT] {
                assert_eq!(outage.on_failure(source, at(t0, 100 * n)), Said::Nothing);
            }
            for source in [CLAIM_0, CLAIM_1, HEARTBEAT] {
                assert_eq!(outage.on_success(source), Said::Nothing);
            }
            assert!(!outage.is_down());
        }
    }

    #[test]
    fn a_long_outage_is_reminded_of_every_period_with_its_length() {
        let outage = RedisOutage::with_reminder_every(Duration::from_secs(30));
        let t0 = Instant::now();
        let mut said = Vec::new();
        // A failure every 2 s for 95 s.
        for s in (0..=95).step_by(2) {
            match outage.on_failure(HEARTBEAT, at(t0, s * 1_000)) {
                Said::Nothing => {}
                other => said.push(other),
            }
        }
        assert_eq!(said.first(), Some(&Said::Down), "at 4 s: {said:?}");
        let reminders: Vec<Duration> = said[1..]
            .iter()
            .map(|s| match s {
                Said::StillDown { down_for, .. } => *down_for,
                other => panic!("unexpected {other:?}"),
            })
            .collect();
        assert_eq!(
            reminders,
            [34, 64, 94].map(Duration::from_secs),
            "one reminder per 30 s, each saying how long since the first failure"
        );
    }

    #[test]
    fn one_off_calls_neither_start_nor_hold_an_outage() {
        let outage = RedisOutage::new();
        let t0 = Instant::now();
        // An attempt retrying its recording for seconds, one stale pooled
        // connection after another, is not an outage on its own.
        for ms in [0, 100, 300, 700, 1_500, 3_100] {
            assert_eq!(outage.on_failure(RECORD, at(t0, ms)), Said::Nothing);
        }
        assert!(!outage.is_down());
        // A real one: the heartbeat fails too. The recordings count in it.
        assert_eq!(outage.on_failure(HEARTBEAT, at(t0, 4_000)), Said::Nothing);
        assert_eq!(outage.on_failure(RECORD, at(t0, 4_500)), Said::Nothing);
        assert_eq!(outage.on_failure(HEARTBEAT, at(t0, 6_000)), Said::Nothing);
        assert_eq!(outage.on_failure(HEARTBEAT, at(t0, 8_000)), Said::Down);
        assert_eq!(outage.on_failure(RECORD, at(t0, 8_500)), Said::Nothing);
        // Back when the heartbeat is, whatever the one-off calls did.
        assert_eq!(outage.on_success(RECORD), Said::Nothing);
        assert_eq!(
            outage.on_success(HEARTBEAT),
            Said::Back {
                down_for: Duration::from_millis(4_500),
                failures: 4
            }
        );
    }

    #[test]
    fn one_partition_failing_while_the_others_work_is_an_outage_until_it_recovers() {
        // A cluster node away: its partition fails every time while the
        // others succeed in between.
        let outage = RedisOutage::with_reminder_every(Duration::from_secs(30));
        let t0 = Instant::now();
        let mut said = Vec::new();
        for ms in (0..=40_000).step_by(500) {
            assert_eq!(outage.on_success(CLAIM_0), Said::Nothing);
            match outage.on_failure(CLAIM_1, at(t0, ms + 10)) {
                Said::Nothing => {}
                other => said.push((ms, other)),
            }
        }
        assert_eq!(
            said,
            [
                (1_000, Said::Down),
                (
                    31_000,
                    Said::StillDown {
                        down_for: Duration::from_secs(31),
                        failures: 63
                    }
                )
            ]
        );
        assert!(matches!(outage.on_success(CLAIM_1), Said::Back { .. }));
        assert!(!outage.is_down());
    }
}
