//! Single publishes that arrive together share `publish.lua` calls.
//!
//! A `publish.lua` call costs Redis about 20 µs before it does anything
//! (the `EVALSHA`, the script's arguments, the interpreter, the reply), more
//! than storing one event and queuing its deliveries. The batch route
//! spreads that over up to 40 events; this does the same for requests that
//! each publish one event: the API sends every single publish's call
//! through a [`Coalescer`], which runs at most [`IN_FLIGHT`] call (or
//! pipeline of calls) at a time. A publish that finds a free slot goes at
//! once, alone, so a quiet API adds no wait; the publishes that arrive while
//! the slots are taken are sent together as soon as one frees, their events
//! grouped by tenant and home partition into shared calls (each event is
//! atomic on its own, as in the batch route, and so is each call). What a
//! call answers for an event goes back to its request, which settles it
//! (the fan-out to other partitions) as it would alone. A failed call or
//! pipeline fails each of its events with the same 503-style error a lone
//! call would give: each may or may not be stored, and a retry with its
//! idempotency key is safe.

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot, Semaphore};

use super::{invocation, Prepared, PublishError, PublishReply, Store, EVENTS_PER_CALL};
use crate::ids::Partition;
use crate::store::publish::PublishCall;

/// Calls (or pipelines of calls) in flight at a time, per API process.
/// One shares the most: in the benchmark's one-event row (16 clients) two
/// slots left about three events per call and one about four, and one
/// cost the least CPU. A slow call (a large fan-out) holds up the
/// publishes behind it for its duration, which one Redis would make them
/// wait anyway; at 200 events per round trip the slot is no ceiling.
pub const IN_FLIGHT: usize = 1;

/// Most publishes sent together (one pipeline when they make more than
/// one call).
const MAX_GATHERED: usize = 200;

/// What a publish's call answered: its event back with `publish.lua`'s
/// reply for it, or why there is none.
pub(super) type Answer = Result<(Prepared, PublishReply), PublishError>;

/// A publish waiting for its call: the event, and where its answer goes.
struct Waiting {
    tenant_id: String,
    prepared: Prepared,
    answer: oneshot::Sender<Answer>,
}

/// The handle requests send their `publish.lua` calls through (cheap to
/// clone; the task behind it ends when the last handle is dropped).
#[derive(Clone)]
pub struct Coalescer {
    queue: mpsc::UnboundedSender<Waiting>,
}

impl Coalescer {
    /// Starts the task that sends the calls (on the current tokio runtime).
    pub fn start(store: Store) -> Self {
        let (queue, waiting) = mpsc::unbounded_channel();
        tokio::spawn(run(store, waiting));
        Coalescer { queue }
    }

    /// Runs `prepared`'s `publish.lua` call, shared with the publishes
    /// waiting beside it.
    pub(super) async fn call(&self, tenant_id: &str, prepared: Prepared) -> Answer {
        let (answer, answered) = oneshot::channel();
        let waiting = Waiting {
            tenant_id: tenant_id.to_string(),
            prepared,
            answer,
        };
        if self.queue.send(waiting).is_err() {
            // The task is gone: the runtime is shutting down.
            return Err(PublishError::Reply("the publish queue is closed"));
        }
        // Dropped unanswered only when the runtime shuts down mid-call; the
        // event may or may not be stored then, as after a lost reply.
        answered
            .await
            .unwrap_or(Err(PublishError::Reply("the publish call was dropped")))
    }
}

/// Takes waiting publishes as slots free up and sends them.
async fn run(store: Store, mut waiting: mpsc::UnboundedReceiver<Waiting>) {
    let slots = Arc::new(Semaphore::new(IN_FLIGHT));
    while let Some(first) = waiting.recv().await {
        // Publishes that come in while every slot is taken queue up behind
        // this one, and go with it.
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let mut gathered = vec![first];
        while gathered.len() < MAX_GATHERED {
            match waiting.try_recv() {
                Ok(next) => gathered.push(next),
                Err(_) => break,
            }
        }
        let store = store.clone();
        tokio::spawn(async move {
            send(&store, gathered).await;
            drop(slot);
        });
    }
}

/// Sends gathered publishes as calls grouped by tenant, home partition and
/// the configuration version they were matched at (in arrival order within
/// a group, [`EVENTS_PER_CALL`] per call): one call alone, or a pipeline
/// of them (either reloads the script if Redis lost it). Answers each
/// publish.
async fn send(store: &Store, gathered: Vec<Waiting>) {
    let state = store;
    let mut groups: BTreeMap<(&str, Partition, Option<u64>), Vec<usize>> = BTreeMap::new();
    for (position, waiting) in gathered.iter().enumerate() {
        let prepared = &waiting.prepared;
        groups
            .entry((waiting.tenant_id.as_str(), prepared.home, prepared.checked))
            .or_default()
            .push(position);
    }
    let calls: Vec<Vec<usize>> = groups
        .into_values()
        .flat_map(|positions| {
            positions
                .chunks(EVENTS_PER_CALL)
                .map(<[usize]>::to_vec)
                .collect::<Vec<_>>()
        })
        .collect();
    let invocations: Vec<PublishCall> = calls
        .iter()
        .map(|positions| {
            let group: Vec<&Prepared> = positions.iter().map(|&i| &gathered[i].prepared).collect();
            let tenant_id = positions
                .first()
                .map_or("", |&i| gathered[i].tenant_id.as_str());
            invocation(state, tenant_id, &group)
        })
        .collect();
    let replies: Result<Vec<Vec<PublishReply>>, PublishError> = async {
        let mut conn = state.conn().await?;
        if let [only] = invocations.as_slice() {
            Ok(vec![only.invoke(&mut conn).await?])
        } else {
            Ok(PublishCall::invoke_all(&invocations, &mut conn).await?)
        }
    }
    .await;
    // Each publish's reply, by its position.
    let mut by_position: Vec<Option<PublishReply>> = (0..gathered.len()).map(|_| None).collect();
    let failure = match replies {
        Ok(replies) => {
            for (positions, call_replies) in calls.iter().zip(replies) {
                for (&position, reply) in positions.iter().zip(call_replies) {
                    by_position[position] = Some(reply);
                }
            }
            None
        }
        Err(err) => Some(err),
    };
    for (waiting, reply) in gathered.into_iter().zip(by_position) {
        let answer = match (reply, &failure) {
            (Some(reply), _) => Ok((waiting.prepared, reply)),
            (None, Some(err)) => Err(err.clone_kind()),
            (None, None) => Err(PublishError::Reply("no answer for the event")),
        };
        // A request that went away no longer waits; its event is stored
        // or not, as the call went.
        let _ = waiting.answer.send(answer);
    }
}
