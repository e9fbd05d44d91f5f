//! The Redis the tests run against. By default one `redis-server` this test
//! binary starts for itself on a free port (once, for every test; it stops
//! when the binary exits, however it exits); `HOOKFLEET_TEST_REDIS_URL`
//! points the suite at another (scripts/test starts one), and
//! `HOOKFLEET_TEST_REDIS_CLUSTER_NODES` at a Redis Cluster. Each test
//! isolates itself by a key prefix of its own, so they share the server.
//!
//! Tests that stop, restart or crash Redis start private servers here
//! ([`OwnRedis`], [`OwnCluster`]).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use rand::Rng;

use super::{free_port, random_suffix};

/// How to get a Redis, for every message that finds none.
const HOW_TO_GET_REDIS: &str = "install redis-server (Debian/Ubuntu: \
    `apt-get install redis-server redis-tools`) or set \
    HOOKFLEET_TEST_REDIS_SERVER to its path, and the tests start their own; \
    or set HOOKFLEET_TEST_REDIS_URL to a Redis they may write to (under \
    random key prefixes); or run `scripts/test`, which sets everything up";

/// The Redis every test uses (unless it brings its own):
/// `HOOKFLEET_TEST_REDIS_URL`, or else one started for this test binary.
pub fn redis_url() -> String {
    static URL: OnceLock<String> = OnceLock::new();
    URL.get_or_init(|| match std::env::var("HOOKFLEET_TEST_REDIS_URL") {
        Ok(url) if !url.is_empty() => url,
        _ => start_shared_redis(),
    })
    .clone()
}

/// The Redis Cluster nodes `scripts/test` started, when the suite (or part
/// of it) runs in cluster mode; empty for a single Redis.
pub fn cluster_nodes() -> String {
    std::env::var("HOOKFLEET_TEST_REDIS_CLUSTER_NODES").unwrap_or_default()
}

/// `redis-server` (`HOOKFLEET_TEST_REDIS_SERVER`, or from PATH); panics with
/// how to get one when there is none.
pub fn redis_server_binary() -> String {
    let binary =
        std::env::var("HOOKFLEET_TEST_REDIS_SERVER").unwrap_or_else(|_| "redis-server".into());
    let found = Command::new(&binary)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    assert!(
        found,
        "no Redis for the tests: `{binary}` does not run. To get one, {HOW_TO_GET_REDIS}"
    );
    binary
}

/// `redis-cli`, next to the `redis-server` in use or from PATH (only the
/// cluster tests need it, to create their cluster).
fn redis_cli_binary() -> PathBuf {
    let server = PathBuf::from(redis_server_binary());
    match server.parent() {
        Some(dir) if !dir.as_os_str().is_empty() && dir.join("redis-cli").exists() => {
            dir.join("redis-cli")
        }
        _ => PathBuf::from("redis-cli"),
    }
}

/// Starts the binary's shared `redis-server` (no persistence) on a free
/// port and returns its URL. The server runs under `sh`, which waits for
/// its stdin to close and then stops it: the pipe's other end belongs to
/// this process, so the server goes when the test binary does, even when
/// it is killed — and no test has to remember to stop it.
fn start_shared_redis() -> String {
    let binary = redis_server_binary();
    let port = free_port();
    let child = Command::new("sh")
        .arg("-c")
        .arg(r#""$0" "$@" & pid=$!; cat >/dev/null; kill "$pid""#)
        .arg(&binary)
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .arg("--dir")
        .arg(std::env::temp_dir())
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|err| {
            panic!("could not start `{binary}` ({err}). To get a Redis, {HOW_TO_GET_REDIS}")
        });
    // Held open for the life of the process: dropping it stops the server.
    Box::leak(Box::new(child));
    let url = format!("redis://127.0.0.1:{port}");
    wait_for_ping(&url, port);
    url
}

/// Waits up to 10 s until the Redis at `url` answers PING.
fn wait_for_ping(url: &str, port: u16) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(client) = redis::Client::open(url) {
            if let Ok(mut conn) = client.get_connection() {
                if redis::cmd("PING").query::<String>(&mut conn).is_ok() {
                    return;
                }
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("redis-server did not start on port {port}");
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
        let status = Command::new(redis_cli_binary())
            .arg("--cluster")
            .arg("create")
            .args(nodes.iter().map(|n| format!("127.0.0.1:{}", n.port)))
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .stdout(Stdio::null())
            .status()
            .unwrap_or_else(|err| {
                panic!("could not run redis-cli ({err}). To get it, {HOW_TO_GET_REDIS}")
            });
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
        let child = Command::new(redis_server_binary())
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
        wait_for_ping(&self.url(), self.port);
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

/// `INFO commandstats` calls of `command` so far (lower case, e.g.
/// `evalsha`, `script|load`): meaningful on a private Redis, whose counts
/// are one test's alone.
pub async fn command_calls(conn: &mut impl redis::aio::ConnectionLike, command: &str) -> u64 {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(conn)
        .await
        .expect("INFO commandstats");
    info.lines()
        .find_map(|line| line.strip_prefix(&format!("cmdstat_{command}:calls=")))
        .and_then(|rest| rest.split(',').next())
        .and_then(|calls| calls.parse().ok())
        .unwrap_or(0)
}
