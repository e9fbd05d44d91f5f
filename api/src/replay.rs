//! A replay at work: the background task that walks an endpoint's
//! delivery log over a window and queues each delivery again through
//! `store::retry`, writing its progress to the replay's record after every
//! chunk and keeping the endpoint's one-replay hold alive while it runs.
//! The routes that start and read a replay are in
//! `routes/webhooks/replay.rs`; the job runs in the API process that
//! accepted the request, and one whose process stops reads `interrupted`.

use hookfleet_common::ids::Partition;
use hookfleet_common::store::reads;
use hookfleet_common::store::replay::{self, HoldAction, Progress};
use hookfleet_common::store::retry::{RetryOutcome, Retryable};
use hookfleet_common::time_util::now_ms;

use crate::delivery_view::{self, DeliveryRef};
use crate::error::ApiError;
use crate::routes::deliveries;
use crate::state::AppState;

/// A running replay that has not reported progress for this long is shown
/// as `interrupted` (its API process stopped); post it again to finish it.
/// It is also how long the endpoint's one-replay hold lasts unless renewed,
/// so a replay whose process died frees the endpoint when it reads
/// `interrupted`.
pub const REPLAY_STALE_MS: u64 = 30_000;

/// A replay running in the background of the API process that started it.
/// The route builds it once the replay's record is written and the
/// endpoint's hold taken, then [`spawn`](Self::spawn)s it.
pub struct ReplayJob {
    pub state: AppState,
    pub tenant_id: String,
    pub p: Partition,
    pub endpoint_id: String,
    pub replay_id: String,
    /// The window, creation times in ms, both ends included.
    pub since: u64,
    pub until: u64,
    /// The states a delivery of the window may be queued again from.
    pub allowed: &'static [Retryable],
}

impl ReplayJob {
    /// Runs the replay in a task of its own; the request that started it
    /// answers at once.
    pub fn spawn(self) {
        tokio::spawn(async move {
            if let Err(err) = self.run().await {
                tracing::warn!(error = ?err, "replay stopped early");
            }
        });
    }

    /// Renews or releases this replay's hold on its endpoint, only while
    /// it still holds it; false when it does not.
    async fn hold(
        &self,
        conn: &mut hookfleet_common::redis_pool::RedisConn,
        action: HoldAction,
    ) -> Result<bool, ApiError> {
        Ok(replay::hold(
            conn,
            &self.state.store.keys,
            self.p,
            &self.endpoint_id,
            &self.replay_id,
            action,
        )
        .await?)
    }

    /// Runs the replay, then lets the endpoint have another.
    async fn run(self) -> Result<(), ApiError> {
        let result = self.scan().await;
        let mut conn = self.state.conn().await?;
        self.hold(&mut conn, HoldAction::Release).await?;
        result
    }

    /// Queues the window's deliveries again, oldest first, a chunk at a
    /// time; after each chunk it writes its progress and renews the hold,
    /// and stops if another replay of the endpoint has taken it meanwhile.
    async fn scan(&self) -> Result<(), ApiError> {
        const CHUNK: usize = 200;
        let keys = &self.state.store.keys;
        let (mut scanned, mut queued, mut offset) = (0u64, 0u64, 0usize);
        loop {
            // The log's scores are microseconds.
            let event_ids = {
                let mut conn = self.state.conn().await?;
                let window = (self.since, self.until);
                reads::log_window(
                    &mut conn,
                    keys,
                    self.p,
                    &self.endpoint_id,
                    window,
                    offset,
                    CHUNK,
                )
                .await?
            };
            offset += event_ids.len();
            let refs: Vec<DeliveryRef> = event_ids
                .iter()
                .filter_map(|(event_id, score)| {
                    DeliveryRef::new(event_id, &self.endpoint_id, Some(*score))
                })
                .collect();
            // Their events' test flags (a replay re-sends real deliveries).
            let loaded = delivery_view::load(&self.state, &self.tenant_id, &refs).await?;
            for (delivery, loaded) in refs.iter().zip(loaded) {
                scanned += 1;
                let Some(loaded) = loaded else { continue };
                let (code, _) = deliveries::retry_one(
                    &self.state,
                    &self.tenant_id,
                    delivery,
                    self.allowed,
                    loaded.summary.test,
                )
                .await?;
                if code == RetryOutcome::Queued {
                    queued += 1;
                }
            }
            let ids = event_ids;
            let done = ids.len() < CHUNK;
            let mut conn = self.state.conn().await?;
            let progress = Progress {
                scanned,
                queued,
                now_ms: now_ms(),
                done,
            };
            replay::progress(&mut conn, keys, self.p, &self.replay_id, progress).await?;
            let renew = HoldAction::Renew {
                hold_ms: REPLAY_STALE_MS,
            };
            if !done && !self.hold(&mut conn, renew).await? {
                // Stalled past its hold, and another replay of the endpoint
                // has started: leave the rest to that one.
                replay::interrupted(&mut conn, keys, self.p, &self.replay_id).await?;
                tracing::warn!(endpoint_id = %self.endpoint_id, "replay lost its hold; stopped");
                return Ok(());
            }
            if done {
                tracing::info!(endpoint_id = %self.endpoint_id, scanned, queued, "replay completed");
                return Ok(());
            }
        }
    }
}
