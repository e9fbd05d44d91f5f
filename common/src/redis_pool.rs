//! The Redis connection pool both binaries use, for one Redis server or for
//! a Redis Cluster (`HOOKFLEET_REDIS_CLUSTER_NODES`).
//!
//! Callers see one [`RedisPool`] and one connection type, [`RedisConn`],
//! which implements [`redis::aio::ConnectionLike`]: commands, scripts and
//! pipelines are written once and run against either. In cluster mode (one
//! shared, multiplexed cluster connection per process) redis-rs routes each
//! command and script call by its keys (every script's keys share one hash
//! slot, invariant 4); a pipeline whose commands live in several slots
//! (reading one record from each partition, say) is sent as separate
//! concurrent commands: replies come back in order, but the commands may
//! run in any order, so no pipeline may rely on one command seeing
//! another's write (none does: they are reads, or independent writes).
//!
//! Timeouts are chosen so that a Redis outage surfaces quickly as an error
//! the API can answer with 503, instead of requests piling up behind a pool
//! that waits forever: 2 s to connect, 3 s to wait for a pooled connection.
//! The response timeout is long (10 s) on purpose: redis-rs' default of
//! 500 ms reports a slow but successful script (an AOF fsync stall, a large
//! endpoint deletion) as a failure after Redis has applied it, and the
//! caller would then do it again.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::try_join_all;
use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::cluster::{ClusterClient, ClusterClientBuilder};
use redis::cluster_async::ClusterConnection;
use redis::{AsyncConnectionConfig, Cmd, Pipeline, RedisFuture, Value};

use tokio::sync::OnceCell;

use crate::Config;

/// Why a connection could not be had: Redis unreachable, or the pool's wait
/// timed out. The same type for both modes.
pub type PoolError = deadpool_redis::PoolError;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(10);
const WAIT_TIMEOUT: Duration = Duration::from_secs(3);

/// A pool of connections to one Redis or to a Redis Cluster. Cheap to clone.
#[derive(Clone)]
pub enum RedisPool {
    Single(Arc<SharedSingle>),
    Cluster(Arc<SharedCluster>),
}

impl std::fmt::Debug for RedisPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RedisPool::Single(_) => f.write_str("RedisPool::Single"),
            RedisPool::Cluster(_) => f.write_str("RedisPool::Cluster"),
        }
    }
}

impl RedisPool {
    /// A pooled connection; fails within a few seconds when Redis is down.
    pub async fn get(&self) -> Result<RedisConn, PoolError> {
        Ok(match self {
            RedisPool::Single(shared) => RedisConn::Single(shared.get().await?),
            RedisPool::Cluster(shared) => RedisConn::Cluster(shared.get().await?),
        })
    }

    /// True in cluster mode.
    pub fn is_cluster(&self) -> bool {
        matches!(self, RedisPool::Cluster(_))
    }
}

/// A handle on one of the process's shared connections; cheap to drop.
pub enum RedisConn {
    Single(SingleConn),
    Cluster(ClusterConnection),
}

impl ConnectionLike for RedisConn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            RedisConn::Single(single) => Box::pin(async move {
                let reply = single.conn.req_packed_command(cmd).await;
                single.check(&reply).await;
                reply
            }),
            RedisConn::Cluster(conn) => conn.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            RedisConn::Single(single) => Box::pin(async move {
                let reply = single
                    .conn
                    .req_packed_commands(pipeline, offset, count)
                    .await;
                single.check(&reply).await;
                reply
            }),
            RedisConn::Cluster(conn) => {
                if pipeline.is_transaction() || pipeline.len() <= 1 {
                    return conn.req_packed_commands(pipeline, offset, count);
                }
                // Commands of a plain pipeline may belong to different
                // slots (and nodes): send each on its own, concurrently,
                // over the multiplexed cluster connection. A keyless admin
                // command (`SCRIPT LOAD` before the `EVALSHA`s that need
                // it) is a barrier: what precedes it finishes first, and
                // what follows starts after it.
                let shared: ClusterConnection = conn.clone();
                Box::pin(async move {
                    let mut replies = Vec::with_capacity(pipeline.len());
                    let mut group: Vec<&Cmd> = Vec::new();
                    for cmd in pipeline.cmd_iter() {
                        if is_barrier(cmd) {
                            run_concurrently(&shared, &mut group, &mut replies).await?;
                            let mut conn = shared.clone();
                            replies.push(conn.req_packed_command(cmd).await?);
                        } else {
                            group.push(cmd);
                        }
                    }
                    run_concurrently(&shared, &mut group, &mut replies).await?;
                    Ok(replies)
                })
            }
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            RedisConn::Single(conn) => conn.conn.get_db(),
            RedisConn::Cluster(conn) => conn.get_db(),
        }
    }
}

/// Whether a pipelined command must run alone, in order, in cluster mode:
/// `SCRIPT …` (redis-rs sends `SCRIPT LOAD` to every master).
fn is_barrier(cmd: &Cmd) -> bool {
    matches!(
        cmd.args_iter().next(),
        Some(redis::Arg::Simple(name)) if name.eq_ignore_ascii_case(b"SCRIPT")
    )
}

/// Sends the commands of `group` concurrently, appends their replies in
/// order, and empties `group`.
async fn run_concurrently(
    shared: &ClusterConnection,
    group: &mut Vec<&Cmd>,
    replies: &mut Vec<Value>,
) -> redis::RedisResult<()> {
    let done = try_join_all(group.drain(..).map(|cmd| {
        let mut conn = shared.clone();
        async move { conn.req_packed_command(cmd).await }
    }))
    .await?;
    replies.extend(done);
    Ok(())
}

/// A handle on one lane of a [`SharedSingle`]: a clone of its multiplexed
/// connection, and where to report that connection broken.
pub struct SingleConn {
    conn: MultiplexedConnection,
    lane: Arc<Lane>,
    generation: u64,
}

impl SingleConn {
    /// Gives the lane's connection up when `reply` says it is broken.
    async fn check<T>(&self, reply: &redis::RedisResult<T>) {
        if let Err(err) = reply {
            // A timeout counts too: a connection whose peer vanished without
            // closing it (a failover behind a virtual IP) only times out.
            if err.is_io_error()
                || err.is_connection_dropped()
                || err.is_unrecoverable_error()
                || err.is_timeout()
            {
                self.lane.give_up(self.generation).await;
            }
        }
    }
}

/// The connections of a process to one Redis: `HOOKFLEET_REDIS_POOL` lanes,
/// each one multiplexed connection checked out of deadpool-redis once and
/// kept. Requests take the lanes in turn and share them: a multiplexed
/// connection pipelines whatever its users send, so nobody waits for a free
/// connection, and no request pays the pool's check on checkout (an
/// `UNWATCH` + `PING` round trip per request). A lane whose connection
/// fails (I/O error, dropped connection, timeout) gives it up (`Connection::take`:
/// closed, not returned), and the next request on that lane checks a fresh
/// one out of the pool, which connects and checks it; requests arriving on
/// the lane meanwhile wait for that one instead of each asking the pool
/// (the pool has one connection per lane, so they would wait in vain).
/// Nothing here uses `WATCH`, `SELECT` or blocking commands, which a shared
/// connection could not carry (a `MULTI`/`EXEC` pipeline is sent in one
/// piece, so it can).
pub struct SharedSingle {
    pool: deadpool_redis::Pool,
    lanes: Vec<Arc<Lane>>,
    next: AtomicUsize,
}

impl SharedSingle {
    async fn get(&self) -> Result<SingleConn, PoolError> {
        let index = self.next.fetch_add(1, Ordering::Relaxed) % self.lanes.len();
        let lane = &self.lanes[index];
        // Waiting for the lane (another request may be connecting it) and
        // connecting share one deadline, so a request fails within
        // WAIT_TIMEOUT when Redis is unreachable, however many wait.
        let taken = tokio::time::timeout(WAIT_TIMEOUT, async {
            let mut slot = lane.slot.lock().await;
            if slot.conn.is_none() {
                slot.conn = Some(self.pool.get().await?);
                slot.generation += 1;
            }
            match &slot.conn {
                Some(conn) => Ok(SingleConn {
                    conn: MultiplexedConnection::clone(conn),
                    lane: lane.clone(),
                    generation: slot.generation,
                }),
                None => Err(PoolError::Closed),
            }
        })
        .await;
        taken.unwrap_or(Err(PoolError::Timeout(deadpool_redis::TimeoutType::Wait)))
    }
}

/// One lane: its connection once checked out, and how many it has had (so
/// a late error on an old connection cannot discard its replacement).
#[derive(Default)]
struct Lane {
    slot: tokio::sync::Mutex<LaneSlot>,
}

#[derive(Default)]
struct LaneSlot {
    generation: u64,
    conn: Option<deadpool_redis::Connection>,
}

impl Lane {
    async fn give_up(&self, generation: u64) {
        let mut slot = self.slot.lock().await;
        if slot.generation == generation {
            if let Some(conn) = slot.conn.take() {
                drop(deadpool_redis::Connection::take(conn));
            }
        }
    }
}

/// The one cluster connection of a process, made on first use. A
/// `ClusterConnection` multiplexes every request over one connection per
/// node, follows `MOVED`/`ASK` redirections and topology changes, and
/// reconnects to a node by itself; clones share it. (A pool of them would
/// only add connections, and a pool's health check, a `PING` that redis-rs
/// sends to every master, would make each checkout wait on the slowest or
/// failed master.)
pub struct SharedCluster {
    client: ClusterClient,
    connection: OnceCell<ClusterConnection>,
}

impl SharedCluster {
    async fn get(&self) -> Result<ClusterConnection, PoolError> {
        let connection = self
            .connection
            .get_or_try_init(|| async {
                match tokio::time::timeout(WAIT_TIMEOUT, self.client.get_async_connection()).await {
                    Ok(result) => result,
                    Err(_) => Err(redis::RedisError::from((
                        redis::ErrorKind::Io,
                        "timed out connecting to the Redis Cluster",
                    ))),
                }
            })
            .await
            .map_err(PoolError::Backend)?;
        Ok(connection.clone())
    }
}

/// The nodes of `HOOKFLEET_REDIS_CLUSTER_NODES`, empty when not in
/// cluster mode.
pub fn cluster_nodes(config: &Config) -> Vec<String> {
    config
        .redis_cluster_nodes
        .split(',')
        .map(str::trim)
        .filter(|node| !node.is_empty())
        .map(str::to_string)
        .collect()
}

/// Builds a pool; it connects lazily, so this succeeds while Redis is down.
pub fn create_pool(config: &Config) -> Result<RedisPool, String> {
    let nodes = cluster_nodes(config);
    if nodes.is_empty() {
        let connection = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(RESPONSE_TIMEOUT));
        let manager =
            deadpool_redis::Manager::new_with_config(config.redis_url.as_str(), connection)
                .map_err(|err| format!("HOOKFLEET_REDIS_URL: {err}"))?;
        let pool = deadpool_redis::Pool::builder(manager)
            .max_size(config.redis_pool)
            .runtime(deadpool_redis::Runtime::Tokio1)
            .wait_timeout(Some(WAIT_TIMEOUT))
            .create_timeout(Some(WAIT_TIMEOUT))
            .recycle_timeout(Some(Duration::from_secs(2)))
            .build()
            .map_err(|err| format!("HOOKFLEET_REDIS_URL: cannot build a Redis pool: {err}"))?;
        let lanes = (0..config.redis_pool.max(1))
            .map(|_| Arc::new(Lane::default()))
            .collect();
        return Ok(RedisPool::Single(Arc::new(SharedSingle {
            pool,
            lanes,
            next: AtomicUsize::new(0),
        })));
    }
    let client = ClusterClientBuilder::new(nodes)
        .connection_timeout(CONNECT_TIMEOUT)
        .response_timeout(RESPONSE_TIMEOUT)
        // One deadline for the whole request, retries included: a timed
        // out script is not sent again (it may have run).
        .overall_response_timeout(Some(RESPONSE_TIMEOUT))
        // A few quick retries ride out a failover or a resharding step
        // (MOVED, ASK, TRYAGAIN, CLUSTERDOWN); redis-rs' default (16,
        // backing off for minutes) would hold a request far past the point
        // where 503 is the honest answer.
        .retries(3)
        .min_retry_wait(100)
        .max_retry_wait(1000)
        .build()
        .map_err(|err| format!("HOOKFLEET_REDIS_CLUSTER_NODES: {err}"))?;
    Ok(RedisPool::Cluster(Arc::new(SharedCluster {
        client,
        connection: OnceCell::new(),
    })))
}
