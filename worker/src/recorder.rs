//! Recording attempts in batches. Attempt tasks hand what happened to the
//! worker's one recorder task and wait for its answer; the recorder sends
//! what has gathered for a partition as one `record.lua` call, at most one
//! call in flight per partition, then answers each attempt.
//!
//! Nothing waits to fill a batch: under light load every call carries one
//! attempt, as soon as it arrives; under heavy load attempts gather while
//! the previous call runs, so Redis runs one script, one counter update per
//! endpoint and field, and one stream trim per endpoint for the whole batch
//! instead of per attempt (see `record.lua`).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use hookfleet_common::ids::Partition;
use hookfleet_common::store::Store;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;

use crate::record::{self, Attempted, Recorded};

/// Attempts per `record.lua` call at most.
pub const MAX_BATCH: usize = 256;

struct Request {
    attempt: Arc<Attempted>,
    reply: oneshot::Sender<Result<Recorded, String>>,
}

/// The handle attempt tasks record through. Cheap to clone.
#[derive(Clone)]
pub struct Recorder {
    tx: mpsc::UnboundedSender<Request>,
}

impl Recorder {
    /// Starts the recorder task; it ends when every handle is dropped.
    pub fn spawn(store: Store) -> (Self, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(run(rx, store));
        (Recorder { tx }, task)
    }

    /// Records one attempt (batched with whatever else is waiting). An error
    /// is Redis trouble, or the recorder gone: the caller may try again.
    pub async fn record(&self, attempt: Arc<Attempted>) -> Result<Recorded, String> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(Request { attempt, reply })
            .map_err(|_| "the recorder has stopped".to_string())?;
        answer
            .await
            .map_err(|_| "the recorder dropped the attempt".to_string())?
    }
}

/// Gathers attempts by partition and keeps at most one `record.lua` call in
/// flight per partition: what arrives while a partition's call runs waits
/// for it and goes in the next one (so batches grow with load), while other
/// partitions' calls go ahead (a slow node of a cluster holds up only its
/// own partitions).
async fn run(mut rx: mpsc::UnboundedReceiver<Request>, store: Store) {
    let mut waiting: BTreeMap<Partition, Vec<Request>> = BTreeMap::new();
    // Partitions with a call in flight.
    let mut busy: BTreeSet<Partition> = BTreeSet::new();
    let mut calls: JoinSet<()> = JoinSet::new();
    let mut in_flight: HashMap<tokio::task::Id, Partition> = HashMap::new();
    let mut received = Vec::with_capacity(MAX_BATCH);
    let mut open = true;
    while open || !calls.is_empty() {
        tokio::select! {
            n = rx.recv_many(&mut received, MAX_BATCH), if open => {
                if n == 0 {
                    open = false;
                }
                for request in received.drain(..) {
                    waiting
                        .entry(request.attempt.job.partition)
                        .or_default()
                        .push(request);
                }
            }
            Some(done) = calls.join_next_with_id(), if !calls.is_empty() => {
                let id = match done {
                    Ok((id, _)) => id,
                    Err(err) => {
                        // A panicked call dropped its replies: its attempts
                        // see an error and try again.
                        tracing::error!(error = %err, "record call failed");
                        err.id()
                    }
                };
                if let Some(p) = in_flight.remove(&id) {
                    busy.remove(&p);
                }
            }
        }
        let ready: Vec<Partition> = waiting
            .keys()
            .filter(|p| !busy.contains(p))
            .copied()
            .collect();
        for p in ready {
            let Some(mut requests) = waiting.remove(&p) else {
                continue;
            };
            if requests.len() > MAX_BATCH {
                let rest = requests.split_off(MAX_BATCH);
                waiting.insert(p, rest);
            }
            busy.insert(p);
            let store = store.clone();
            let call = calls.spawn(async move {
                record_partition(&store, p, requests).await;
            });
            in_flight.insert(call.id(), p);
        }
    }
}

/// One `record.lua` call for the attempts of partition `p`, and the answers.
async fn record_partition(store: &Store, p: Partition, requests: Vec<Request>) {
    let attempted: Vec<&Attempted> = requests.iter().map(|r| &*r.attempt).collect();
    match record::record_many(&store.pool, &store.keys, &store.config, p, &attempted).await {
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
