//! Recording attempts in batches. Attempt tasks hand what happened to the
//! worker's one recorder task and wait for its answer; the recorder sends
//! whatever has gathered since its last call as one `record.lua` call per
//! partition (concurrently), then answers each attempt.
//!
//! Nothing waits to fill a batch: under light load every call carries one
//! attempt, as soon as it arrives; under heavy load attempts gather while
//! the previous call runs, so Redis runs one script, one counter update per
//! endpoint and field, and one stream trim per endpoint for the whole batch
//! instead of per attempt (see `record.lua`).

use std::collections::BTreeMap;
use std::sync::Arc;

use futures_util::future::join_all;
use hookfleet_common::ids::Partition;
use hookfleet_common::redis_pool::RedisPool;
use hookfleet_common::{Config, Keys};
use tokio::sync::{mpsc, oneshot};

use crate::attempt::{self, Attempted, Decision, Recorded};
use crate::claim::Job;
use crate::deliver::AttemptResult;

/// Attempts per `record.lua` call at most.
pub const MAX_BATCH: usize = 256;

/// One attempt waiting to be recorded.
pub struct Attempt {
    pub job: Job,
    pub result: AttemptResult,
    pub decision: Decision,
    pub at_ms: u64,
}

struct Request {
    attempt: Arc<Attempt>,
    reply: oneshot::Sender<Result<Recorded, String>>,
}

/// The handle attempt tasks record through. Cheap to clone.
#[derive(Clone)]
pub struct Recorder {
    tx: mpsc::UnboundedSender<Request>,
}

impl Recorder {
    /// Starts the recorder task; it ends when every handle is dropped.
    pub fn spawn(
        pool: RedisPool,
        keys: Keys,
        config: Config,
    ) -> (Self, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(run(rx, pool, keys, config));
        (Recorder { tx }, task)
    }

    /// Records one attempt (batched with whatever else is waiting). An error
    /// is Redis trouble, or the recorder gone: the caller may try again.
    pub async fn record(&self, attempt: Arc<Attempt>) -> Result<Recorded, String> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(Request { attempt, reply })
            .map_err(|_| "the recorder has stopped".to_string())?;
        answer
            .await
            .map_err(|_| "the recorder dropped the attempt".to_string())?
    }
}

async fn run(
    mut rx: mpsc::UnboundedReceiver<Request>,
    pool: RedisPool,
    keys: Keys,
    config: Config,
) {
    let mut waiting = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut waiting, MAX_BATCH).await > 0 {
        let mut by_partition: BTreeMap<Partition, Vec<Request>> = BTreeMap::new();
        for request in waiting.drain(..) {
            by_partition
                .entry(request.attempt.job.partition)
                .or_default()
                .push(request);
        }
        let calls = by_partition
            .into_iter()
            .map(|(p, requests)| record_partition(&pool, &keys, &config, p, requests));
        join_all(calls).await;
    }
}

/// One `record.lua` call for the attempts of partition `p`, and the answers.
async fn record_partition(
    pool: &RedisPool,
    keys: &Keys,
    config: &Config,
    p: Partition,
    requests: Vec<Request>,
) {
    let attempted: Vec<Attempted<'_>> = requests
        .iter()
        .map(|request| {
            let attempt = &*request.attempt;
            Attempted {
                job: &attempt.job,
                result: &attempt.result,
                decision: attempt.decision,
                at_ms: attempt.at_ms,
            }
        })
        .collect();
    match attempt::record_many(pool, keys, config, p, &attempted).await {
        Ok(answers) => {
            drop(attempted);
            for (request, answer) in requests.into_iter().zip(answers) {
                // The attempt task may be gone (shutdown); nothing to tell.
                let _ = request.reply.send(Ok(answer));
            }
        }
        Err(err) => {
            drop(attempted);
            let err = err.to_string();
            for request in requests {
                let _ = request.reply.send(Err(err.clone()));
            }
        }
    }
}
