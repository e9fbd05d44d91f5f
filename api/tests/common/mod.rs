//! Shared test helpers: a real API (the real router on 127.0.0.1:0) and a
//! real worker (the worker library's run loop) against the test Redis that
//! `scripts/test` starts, each test isolated by its own key prefix; real
//! HTTP receivers on port 0; and polling with deadlines instead of sleeps.

#![allow(dead_code)]

use std::collections::VecDeque;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hookfleet_common::Config;
use poem::listener::{Acceptor, Listener, TcpListener};
use rand::Rng;
use serde_json::{json, Value};
use tokio::sync::watch;

/// The Redis that `scripts/test` started.
pub fn redis_url() -> String {
    std::env::var("HOOKFLEET_TEST_REDIS_URL").unwrap_or_else(|_| {
        panic!("HOOKFLEET_TEST_REDIS_URL is not set: run the suite with scripts/test, which starts a private redis-server")
    })
}

/// The Redis Cluster nodes `scripts/test` started, when the suite (or part
/// of it) runs in cluster mode; empty for a single Redis.
pub fn cluster_nodes() -> String {
    std::env::var("HOOKFLEET_TEST_REDIS_CLUSTER_NODES").unwrap_or_default()
}

pub fn random_suffix() -> String {
    let n: u64 = rand::rng().random();
    format!("{n:016x}")
}

/// Installs the TLS crypto provider reqwest needs (once per process).
pub fn init_tls() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A configuration for tests: own key prefix, fast retry schedule.
pub fn test_config(overrides: &[(&str, &str)]) -> Config {
    let prefix = format!("test-{}", random_suffix());
    let admin = format!("admin-{}", random_suffix());
    let mut vars: Vec<(String, String)> = vec![
        ("HOOKFLEET_REDIS_URL".into(), redis_url()),
        ("HOOKFLEET_REDIS_CLUSTER_NODES".into(), cluster_nodes()),
        ("HOOKFLEET_REDIS_PREFIX".into(), prefix),
        ("HOOKFLEET_LISTEN".into(), "127.0.0.1:0".into()),
        ("HOOKFLEET_ADMIN_KEY".into(), admin),
        ("HOOKFLEET_RETRY_SCHEDULE".into(), "0s,50ms,100ms".into()),
        ("HOOKFLEET_REQUEST_TIMEOUT".into(), "5s".into()),
        ("HOOKFLEET_LEASE".into(), "10s".into()),
        ("HOOKFLEET_POLL_INTERVAL".into(), "200ms".into()),
        ("HOOKFLEET_SHUTDOWN_GRACE".into(), "5s".into()),
        ("HOOKFLEET_PARTITIONS".into(), "8".into()),
        ("HOOKFLEET_ALLOW_CIDRS".into(), "127.0.0.0/8".into()),
        ("HOOKFLEET_API_RATE_LIMIT".into(), "10000".into()),
        ("HOOKFLEET_METRICS_LISTEN".into(), "127.0.0.1:0".into()),
        (
            "HOOKFLEET_LOG".into(),
            std::env::var("HOOKFLEET_TEST_LOG").unwrap_or_else(|_| "warn".into()),
        ),
    ];
    // A test that brings its own Redis runs against that one alone.
    if overrides.iter().any(|(k, _)| *k == "HOOKFLEET_REDIS_URL") {
        vars.retain(|(name, _)| name != "HOOKFLEET_REDIS_CLUSTER_NODES");
    }
    for (k, v) in overrides {
        vars.retain(|(name, _)| name != k);
        vars.push((k.to_string(), v.to_string()));
    }
    let config =
        Config::from_lookup(|name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()))
            .expect("test configuration is valid");
    if std::env::var("HOOKFLEET_TEST_LOG").is_ok() {
        hookfleet_common::telemetry::init(&config.log_filter, false);
    }
    config
}

/// A running API (and optionally a worker) for one test.
pub struct TestApp {
    pub base: String,
    pub config: Config,
    pub http: reqwest::Client,
    shutdown: watch::Sender<bool>,
    worker: Option<tokio::task::JoinHandle<()>>,
}

impl TestApp {
    pub fn admin_key(&self) -> String {
        self.config.admin_key.clone().unwrap_or_default()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// The API's `host:port`, for tests that talk to it on a raw socket.
    pub fn authority(&self) -> &str {
        self.base.trim_start_matches("http://")
    }

    /// A Redis connection to inspect what the API wrote (to the one Redis
    /// or to the cluster, like the app's own).
    pub async fn redis(&self) -> hookfleet_common::redis_pool::RedisConn {
        self.redis_pool()
            .get()
            .await
            .expect("connect to test redis")
    }

    /// The app's key names (its prefix).
    pub fn keys(&self) -> hookfleet_common::Keys {
        hookfleet_common::Keys::new(self.config.redis_prefix.clone())
    }

    /// The number of members of one of the app's sorted sets.
    pub async fn zcard(&self, key: &str) -> u64 {
        redis::cmd("ZCARD")
            .arg(key)
            .query_async(&mut self.redis().await)
            .await
            .expect("ZCARD")
    }

    /// The score of `member` in the sorted set `key`.
    #[allow(dead_code)]
    pub async fn zscore(&self, key: &str, member: &str) -> Option<f64> {
        redis::cmd("ZSCORE")
            .arg(key)
            .arg(member)
            .query_async(&mut self.redis().await)
            .await
            .unwrap()
    }

    /// Deliveries waiting in all partitions (the scripts' `queued`
    /// counters): 0 once everything published has ended.
    #[allow(dead_code)]
    pub async fn queued_total(&self) -> i64 {
        let keys = self.keys();
        let mut pipe = redis::pipe();
        for p in self.config.all_partitions() {
            pipe.get(keys.queued(p));
        }
        let counts: Vec<Option<i64>> = pipe.query_async(&mut self.redis().await).await.unwrap();
        counts.into_iter().flatten().sum()
    }

    /// The ids of a tenant's endpoints.
    #[allow(dead_code)]
    pub async fn endpoint_ids(&self, key: &str) -> Vec<String> {
        // (A tenant has at most 1000 webhooks; the tests use fewer than
        // one page of 250.)
        let (status, list) = self.get("/api/v1/webhooks?limit=250", key).await;
        assert_eq!(status, 200, "{list}");
        assert!(list.get("next").is_none(), "more than one page: {list}");
        list["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| w["id"].as_str().unwrap().to_string())
            .collect()
    }

    /// A pool like the app's own, for polling closures that need a
    /// connection each time.
    pub fn redis_pool(&self) -> hookfleet_common::redis_pool::RedisPool {
        hookfleet_common::redis_pool::create_pool(&self.config).expect("redis pool")
    }

    /// Every key under this test's prefix with its value, so a test can prove
    /// a refused request wrote nothing. In cluster mode every node is read.
    pub async fn snapshot(&self) -> Vec<(String, String)> {
        let mut nodes = hookfleet_common::redis_pool::cluster_nodes(&self.config);
        if nodes.is_empty() {
            nodes.push(self.config.redis_url.clone());
        } else {
            nodes = cluster_masters(&nodes[0]).await;
        }
        let pattern = format!("{}:*", self.config.redis_prefix);
        let mut out = Vec::new();
        for node in nodes {
            let mut conn = redis::Client::open(node.as_str())
                .expect("redis url")
                .get_multiplexed_async_connection()
                .await
                .expect("connect to test redis");
            let keys: Vec<String> = redis::cmd("KEYS")
                .arg(&pattern)
                .query_async(&mut conn)
                .await
                .expect("KEYS");
            for key in keys {
                let dump: Option<Vec<u8>> = redis::cmd("DUMP")
                    .arg(&key)
                    .query_async(&mut conn)
                    .await
                    .expect("DUMP");
                out.push((key, format!("{:?}", dump)));
            }
        }
        out.sort();
        out
    }

    /// The keys added, changed or removed since `before` (a [`snapshot`]).
    ///
    /// [`snapshot`]: TestApp::snapshot
    pub async fn changed_since(&self, before: &[(String, String)]) -> Vec<String> {
        let after = self.snapshot().await;
        let mut changed: Vec<String> = after
            .iter()
            .filter(|entry| !before.contains(entry))
            .chain(before.iter().filter(|entry| !after.contains(entry)))
            .map(|(key, _)| key.clone())
            .collect();
        changed.sort();
        changed.dedup();
        changed
    }

    /// Starts a worker for this app's configuration (if none runs).
    pub fn start_worker(&mut self) {
        if self.worker.is_some() {
            return;
        }
        let config = self.config.clone();
        let rx = self.shutdown.subscribe();
        self.worker = Some(tokio::spawn(async move {
            hookfleet_worker::run(config, rx)
                .await
                .expect("worker runs");
        }));
    }

    /// Starts a worker with a configuration of its own (e.g. a different
    /// address policy than the API's).
    pub fn start_worker_with(&mut self, config: Config) {
        let rx = self.shutdown.subscribe();
        self.worker = Some(tokio::spawn(async move {
            hookfleet_worker::run(config, rx)
                .await
                .expect("worker runs");
        }));
    }

    /// The attempt log entries of an endpoint, as field maps.
    pub async fn attempts(
        &self,
        endpoint_id: &str,
    ) -> Vec<std::collections::HashMap<String, String>> {
        let keys = hookfleet_common::Keys::new(self.config.redis_prefix.clone());
        let p = hookfleet_common::ids::partition_of(
            hookfleet_common::ids::IdKind::Endpoint,
            endpoint_id,
        )
        .expect("endpoint id");
        let mut conn = self.redis().await;
        let reply: redis::streams::StreamRangeReply = redis::cmd("XRANGE")
            .arg(keys.attempts(p, endpoint_id))
            .arg("-")
            .arg("+")
            .query_async(&mut conn)
            .await
            .expect("XRANGE");
        reply
            .ids
            .into_iter()
            .map(|entry| {
                hookfleet_common::model::attempt_fields(
                    entry
                        .map
                        .into_iter()
                        .map(|(k, v)| (k, redis::from_redis_value::<String>(v).unwrap_or_default()))
                        .collect(),
                )
            })
            .collect()
    }

    /// Stops API and worker; returns once the worker has drained.
    pub async fn stop(mut self) {
        let _ = self.shutdown.send(true);
        if let Some(worker) = self.worker.take() {
            let _ = tokio::time::timeout(Duration::from_secs(10), worker).await;
        }
    }

    pub async fn post(&self, path: &str, key: &str, body: Value) -> (u16, Value) {
        let response = self
            .http
            .post(self.url(path))
            .bearer_auth(key)
            .json(&body)
            .send()
            .await
            .expect("request");
        read(response).await
    }

    /// Sends every body to `path` at once (each its own task and
    /// connection); the answers come back in the bodies' order.
    pub async fn post_all(&self, path: &str, key: &str, bodies: Vec<Value>) -> Vec<(u16, Value)> {
        let tasks: Vec<_> = bodies
            .into_iter()
            .map(|body| {
                let request = self.http.post(self.url(path)).bearer_auth(key).json(&body);
                tokio::spawn(async move { read(request.send().await.expect("request")).await })
            })
            .collect();
        let mut answers = Vec::with_capacity(tasks.len());
        for task in tasks {
            answers.push(task.await.expect("request task"));
        }
        answers
    }

    pub async fn post_raw(
        &self,
        path: &str,
        key: &str,
        body: Vec<u8>,
        content_type: &str,
    ) -> (u16, Value) {
        let response = self
            .http
            .post(self.url(path))
            .bearer_auth(key)
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .expect("request");
        read(response).await
    }

    pub async fn patch(&self, path: &str, key: &str, body: Value) -> (u16, Value) {
        let response = self
            .http
            .patch(self.url(path))
            .bearer_auth(key)
            .json(&body)
            .send()
            .await
            .expect("request");
        read(response).await
    }

    pub async fn get(&self, path: &str, key: &str) -> (u16, Value) {
        let response = self
            .http
            .get(self.url(path))
            .bearer_auth(key)
            .send()
            .await
            .expect("request");
        read(response).await
    }

    pub async fn delete(&self, path: &str, key: &str) -> (u16, Value) {
        let response = self
            .http
            .delete(self.url(path))
            .bearer_auth(key)
            .send()
            .await
            .expect("request");
        read(response).await
    }

    /// Creates a tenant and an API key for it: (tenant id, key).
    pub async fn tenant(&self, name: &str) -> (String, String) {
        let admin = self.admin_key();
        let (status, tenant) = self
            .post("/api/v1/tenants", &admin, json!({"name": name}))
            .await;
        assert_eq!(status, 201, "{tenant}");
        let id = tenant["id"].as_str().expect("tenant id").to_string();
        let (status, key) = self
            .post(&format!("/api/v1/tenants/{id}/api-keys"), &admin, json!({}))
            .await;
        assert_eq!(status, 201, "{key}");
        (id, key["key"].as_str().expect("key").to_string())
    }

    /// Creates an endpoint; returns its JSON (with `secret`).
    pub async fn endpoint(&self, key: &str, body: Value) -> Value {
        let (status, endpoint) = self.post("/api/v1/webhooks", key, body).await;
        assert_eq!(status, 201, "{endpoint}");
        endpoint
    }

    pub async fn publish(&self, key: &str, event_type: &str, data: Value) -> Value {
        let (status, event) = self
            .post(
                "/api/v1/events",
                key,
                json!({"event_type": event_type, "data": data}),
            )
            .await;
        assert_eq!(status, 202, "{event}");
        event
    }

    /// Polls the event until every delivery has reached one of `states`.
    pub async fn wait_for_deliveries(&self, key: &str, event_id: &str, states: &[&str]) -> Value {
        let path = format!("/api/v1/events/{event_id}");
        wait_until(Duration::from_secs(20), || async {
            let (status, event) = self.get(&path, key).await;
            if status != 200 {
                return None;
            }
            let deliveries = event["deliveries"].as_array()?;
            deliveries
                .iter()
                .all(|d| states.contains(&d["status"].as_str().unwrap_or("")))
                .then_some(event)
        })
        .await
        .unwrap_or_else(|| panic!("deliveries of {event_id} did not reach {states:?} in time"))
    }
}

async fn read(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let text = response.text().await.unwrap_or_default();
    let value = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text)
            .unwrap_or_else(|_| panic!("response is not JSON ({status}): {text}"))
    };
    (status, value)
}

/// Starts the API (and a worker when `with_worker`).
pub async fn spawn_app(with_worker: bool, overrides: &[(&str, &str)]) -> TestApp {
    init_tls();
    let config = test_config(overrides);
    let app = hookfleet_api::build(config.clone())
        .await
        .expect("api builds");
    let base = format!("http://{}", app.addr());
    let (shutdown, _) = watch::channel(false);
    let mut rx = shutdown.subscribe();
    tokio::spawn(async move {
        let stop = async move {
            let _ = rx.wait_for(|stop| *stop).await;
        };
        let _ = app.run_until(stop).await;
    });
    let mut test_app = TestApp {
        base,
        config,
        http: reqwest::Client::new(),
        shutdown,
        worker: None,
    };
    if with_worker {
        test_app.start_worker();
    }
    test_app
}

/// Polls `check` until it returns `Some`, or `None` after `deadline`.
pub async fn wait_until<T, F, Fut>(deadline: Duration, mut check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(value) = check().await {
            return Some(value);
        }
        if start.elapsed() > deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// One request a receiver got.
#[derive(Clone, Debug)]
pub struct Received {
    pub headers: Vec<(String, String)>,
    pub body: String,
    pub at: Instant,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// How a receiver answers one request.
#[derive(Clone, Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
    pub delay: Duration,
}

impl Reply {
    pub fn status(status: u16) -> Self {
        Reply {
            status,
            headers: Vec::new(),
            body: String::new(),
            delay: Duration::ZERO,
        }
    }

    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    pub fn with_body(mut self, body: &str) -> Self {
        self.body = body.into();
        self
    }

    pub fn with_delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
}

/// A real HTTP server on 127.0.0.1:0 that records what it receives and
/// answers with scripted replies (then `fallback`).
#[derive(Clone)]
pub struct Receiver {
    pub url: String,
    pub received: Arc<Mutex<Vec<Received>>>,
}

impl Receiver {
    pub fn requests(&self) -> Vec<Received> {
        self.received.lock().expect("receiver lock").clone()
    }

    pub fn count(&self) -> usize {
        self.received.lock().expect("receiver lock").len()
    }

    /// Waits until at least `n` requests arrived.
    pub async fn wait_for(&self, n: usize) -> Vec<Received> {
        wait_until(Duration::from_secs(20), || async {
            let got = self.requests();
            (got.len() >= n).then_some(got)
        })
        .await
        .unwrap_or_else(|| panic!("receiver got {} requests, expected {n}", self.count()))
    }
}

pub async fn spawn_receiver(replies: Vec<Reply>, fallback: Reply) -> Receiver {
    let received: Arc<Mutex<Vec<Received>>> = Arc::default();
    let queue = Arc::new(Mutex::new(VecDeque::from(replies)));
    let acceptor = TcpListener::bind("127.0.0.1:0")
        .into_acceptor()
        .await
        .expect("bind receiver");
    let addr = acceptor.local_addr()[0]
        .as_socket_addr()
        .copied()
        .expect("receiver addr");
    let log = received.clone();
    let endpoint = poem::endpoint::make(move |req: poem::Request| {
        let log = log.clone();
        let queue = queue.clone();
        let fallback = fallback.clone();
        async move {
            let headers = req
                .headers()
                .iter()
                .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or("").to_string()))
                .collect();
            let mut req = req;
            let body = req.take_body().into_string().await.unwrap_or_default();
            log.lock().expect("receiver lock").push(Received {
                headers,
                body,
                at: Instant::now(),
            });
            let reply = queue
                .lock()
                .expect("receiver lock")
                .pop_front()
                .unwrap_or(fallback);
            if !reply.delay.is_zero() {
                tokio::time::sleep(reply.delay).await;
            }
            let mut response = poem::Response::builder()
                .status(poem::http::StatusCode::from_u16(reply.status).expect("status"));
            for (k, v) in &reply.headers {
                response = response.header(k.as_str(), v.as_str());
            }
            response.body(reply.body)
        }
    });
    tokio::spawn(async move {
        let _ = poem::Server::new_with_acceptor(acceptor)
            .run(endpoint)
            .await;
    });
    Receiver {
        url: format!("http://{addr}/hook"),
        received,
    }
}

// ---- the real binaries as processes -----------------------------------

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

/// `hookfleet-api`, built by cargo for these tests.
pub fn api_binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_hookfleet-api"))
}

/// `hookfleet-worker`, next to `hookfleet-api` (scripts/test builds it).
pub fn worker_binary() -> PathBuf {
    let api = api_binary();
    let worker = api.with_file_name(format!("hookfleet-worker{}", std::env::consts::EXE_SUFFIX));
    assert!(
        worker.exists(),
        "{} is missing: build it first (`cargo build --bins`, as scripts/test does)",
        worker.display()
    );
    worker
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A free port for a Redis Cluster node: below 55536, with the cluster bus
/// port (the port + 10000) free too.
pub fn free_cluster_port() -> u16 {
    for _ in 0..500 {
        let port: u16 = rand::rng().random_range(20000..45000);
        let free = |p: u16| std::net::TcpListener::bind(("127.0.0.1", p)).is_ok();
        if free(port) && free(port + 10000) {
            return port;
        }
    }
    panic!("no free cluster port pair on 127.0.0.1");
}

/// A Redis Cluster of three masters on loopback, started for one test and
/// stopped when dropped (redis-server and redis-cli from PATH, or
/// HOOKFLEET_TEST_REDIS_SERVER).
pub struct OwnCluster {
    pub nodes: Vec<OwnRedis>,
}

impl OwnCluster {
    pub fn start() -> Self {
        let mut nodes: Vec<OwnRedis> = Vec::new();
        while nodes.len() < 3 {
            let port = free_cluster_port();
            if nodes.iter().any(|n| n.port == port) {
                continue;
            }
            nodes.push(OwnRedis::start_on(
                port,
                &[
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    "nodes.conf",
                    "--cluster-node-timeout",
                    "5000",
                    "--appendonly",
                    "no",
                ],
            ));
        }
        let status = Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(nodes.iter().map(|n| format!("127.0.0.1:{}", n.port)))
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .stdout(Stdio::null())
            .status()
            .expect("run redis-cli --cluster create");
        assert!(status.success(), "redis-cli --cluster create failed");
        let deadline = Instant::now() + Duration::from_secs(20);
        for node in &nodes {
            loop {
                let ok = redis::Client::open(node.url())
                    .and_then(|c| c.get_connection())
                    .and_then(|mut c| redis::cmd("CLUSTER").arg("INFO").query::<String>(&mut c))
                    .is_ok_and(|info| info.contains("cluster_state:ok"));
                if ok {
                    break;
                }
                assert!(Instant::now() < deadline, "the cluster did not become ok");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        OwnCluster { nodes }
    }

    /// The value for HOOKFLEET_REDIS_CLUSTER_NODES.
    pub fn nodes_var(&self) -> String {
        self.nodes
            .iter()
            .map(OwnRedis::url)
            .collect::<Vec<_>>()
            .join(",")
    }
}

pub fn spawn(binary: PathBuf, env: &[(&str, String)]) -> Child {
    let mut command = Command::new(binary);
    command.stdout(Stdio::null()).stderr(Stdio::inherit());
    for (k, v) in env {
        command.env(k, v);
    }
    command.spawn().expect("start binary")
}

pub fn sigterm(child: &Child) {
    let status = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .expect("run kill");
    assert!(status.success());
}

pub async fn wait_exit(child: &mut Child) -> std::process::ExitStatus {
    wait_until(Duration::from_secs(20), || {
        let status = child.try_wait().expect("try_wait");
        async move { status }
    })
    .await
    .expect("process exits after SIGTERM")
}

/// The `redis://` URLs of the masters of the cluster that `node` belongs
/// to (from `CLUSTER NODES`).
pub async fn cluster_masters(node: &str) -> Vec<String> {
    let mut conn = redis::Client::open(node)
        .expect("redis url")
        .get_multiplexed_async_connection()
        .await
        .expect("connect to a cluster node");
    let text: String = redis::cmd("CLUSTER")
        .arg("NODES")
        .query_async(&mut conn)
        .await
        .expect("CLUSTER NODES");
    let mut masters: Vec<String> = text
        .lines()
        .filter(|line| line.split(' ').nth(2).is_some_and(|f| f.contains("master")))
        .filter_map(|line| line.split(' ').nth(1))
        .map(|addr| format!("redis://{}", addr.split('@').next().unwrap_or(addr)))
        .collect();
    masters.sort();
    masters
}

/// The environment a worker process needs to join this app's fleet.
pub fn worker_env(config: &Config, extra: &[(&str, &str)]) -> Vec<(&'static str, String)> {
    let mut env = vec![
        ("HOOKFLEET_REDIS_URL", config.redis_url.clone()),
        (
            "HOOKFLEET_REDIS_CLUSTER_NODES",
            config.redis_cluster_nodes.clone(),
        ),
        ("HOOKFLEET_REDIS_PREFIX", config.redis_prefix.clone()),
        ("HOOKFLEET_PARTITIONS", config.partitions.to_string()),
        ("HOOKFLEET_ALLOW_CIDRS", "127.0.0.0/8".to_string()),
        ("HOOKFLEET_RETRY_SCHEDULE", "0s,50ms,100ms".to_string()),
        ("HOOKFLEET_POLL_INTERVAL", "200ms".to_string()),
        ("HOOKFLEET_LOG", "warn".to_string()),
        ("HOOKFLEET_METRICS_LISTEN", "127.0.0.1:0".to_string()),
    ];
    for (k, v) in extra {
        let name: &'static str = Box::leak(k.to_string().into_boxed_str());
        env.retain(|(n, _)| *n != name);
        env.push((name, v.to_string()));
    }
    env
}

/// Kills a child process when dropped, so a failing test leaves none behind.
pub struct ChildGuard(pub Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A child process whose stderr is collected, to check what it logged.
pub struct LoggedChild {
    pub child: Child,
    pub log: Arc<Mutex<String>>,
}

impl LoggedChild {
    pub fn log(&self) -> String {
        self.log.lock().expect("log lock").clone()
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for LoggedChild {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `binary` with `env`, collecting its stderr.
pub fn spawn_logged(binary: PathBuf, env: &[(&str, String)]) -> LoggedChild {
    let mut command = Command::new(binary);
    command.stdout(Stdio::null()).stderr(Stdio::piped());
    for (k, v) in env {
        command.env(k, v);
    }
    let mut child = command.spawn().expect("start binary");
    let log: Arc<Mutex<String>> = Arc::default();
    if let Some(stderr) = child.stderr.take() {
        let sink = log.clone();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                if std::env::var("HOOKFLEET_TEST_LOG").is_ok() {
                    eprintln!("{line}");
                }
                let mut log = sink.lock().expect("log lock");
                log.push_str(&line);
                log.push('\n');
            }
        });
    }
    LoggedChild { child, log }
}

/// A private redis-server on a free port with AOF on, for tests that stop
/// and restart Redis.
pub struct OwnRedis {
    pub port: u16,
    pub dir: PathBuf,
    extra: Vec<String>,
    child: Option<Child>,
}

impl OwnRedis {
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// Starts with extra `redis-server` arguments.
    pub fn start_with(extra: &[&str]) -> Self {
        Self::start_on(free_port(), extra)
    }

    /// Starts on `port` with extra `redis-server` arguments.
    pub fn start_on(port: u16, extra: &[&str]) -> Self {
        let dir = std::env::temp_dir().join(format!("hookfleet-redis-{}", random_suffix()));
        std::fs::create_dir_all(&dir).expect("redis dir");
        let mut redis = OwnRedis {
            port,
            dir,
            extra: extra.iter().map(|s| s.to_string()).collect(),
            child: None,
        };
        redis.restart();
        redis
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Starts (again) on the same port and data folder; waits for PING.
    pub fn restart(&mut self) {
        let binary =
            std::env::var("HOOKFLEET_TEST_REDIS_SERVER").unwrap_or_else(|_| "redis-server".into());
        let child = Command::new(binary)
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
            ])
            .args(["--appendonly", "yes", "--appendfsync", "everysec"])
            .args(&self.extra)
            .arg("--dir")
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(client) = redis::Client::open(self.url()) {
                if let Ok(mut conn) = client.get_connection() {
                    if redis::cmd("PING").query::<String>(&mut conn).is_ok() {
                        return;
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("redis-server did not start on port {}", self.port);
    }

    /// Kills the server at once (SIGKILL: no AOF flush), as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops gracefully (SIGTERM: Redis flushes its AOF) and waits.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(child.id().to_string())
                .status();
            let _ = child.wait();
        }
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Runs the `standardwebhooks` verifier; true when it accepts.
pub fn python_accepts(secret: &str, request: &Received) -> bool {
    let python = std::env::var("HOOKFLEET_TEST_PYTHON")
        .expect("HOOKFLEET_TEST_PYTHON (scripts/test sets it)");
    let script = r#"
import json, sys
from standardwebhooks.webhooks import Webhook
try:
    Webhook(sys.argv[1]).verify(sys.argv[2], json.loads(sys.argv[3]))
    print("valid")
except Exception as err:
    print("invalid", err)
"#;
    let headers = json!({
        "webhook-id": request.header("webhook-id"),
        "webhook-timestamp": request.header("webhook-timestamp"),
        "webhook-signature": request.header("webhook-signature"),
    });
    let output = std::process::Command::new(python)
        .args(["-c", script, secret, &request.body, &headers.to_string()])
        .output()
        .expect("run the verifier");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim() == "valid"
}

/// The value of one unlabelled counter in a Prometheus scrape.
pub async fn counter(metrics_listen: &str, name: &str) -> Option<f64> {
    let text = reqwest::get(format!("http://{metrics_listen}/metrics"))
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}

/// The partition an endpoint id names.
pub fn endpoint_partition(endpoint_id: &str) -> hookfleet_common::ids::Partition {
    hookfleet_common::ids::partition_of(hookfleet_common::ids::IdKind::Endpoint, endpoint_id)
        .expect("an endpoint id")
}

/// Records one attempt the way the worker's recorder does (a `record.lua`
/// call carrying it alone), as of now: a test can then play a worker that
/// dies right after recording.
#[allow(dead_code)]
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
