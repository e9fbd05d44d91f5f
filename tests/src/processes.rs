//! The real binaries as processes: `hookfleet-api` and `hookfleet-worker`
//! from this workspace's target folder (built on first use, so they match
//! the code under test), started with an environment, stopped with SIGTERM
//! or killed when a guard drops, their logs collected.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use hookfleet_common::Config;

use super::wait_until;

/// `hookfleet-api`, as a process.
pub fn api_binary() -> PathBuf {
    binary("hookfleet-api")
}

/// `hookfleet-worker`, as a process.
pub fn worker_binary() -> PathBuf {
    binary("hookfleet-worker")
}

/// One of the workspace's binaries, next to this test binary's `deps`
/// folder. Cargo builds a package's binaries only for that package's own
/// tests, so the first call runs `cargo build --workspace --bins` (a no-op
/// after `scripts/test`'s own build): a stale binary would test old code.
fn binary(name: &str) -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    let dir = BUILT.get_or_init(|| {
        let exe = std::env::current_exe().expect("the test binary's path");
        // target/<profile>/deps/e2e-<hash> → target/<profile>
        let dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("the test binary sits in target/<profile>/deps")
            .to_path_buf();
        build_binaries(&dir);
        dir
    });
    let path = dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.exists(),
        "{} is missing: build it with `cargo build --workspace --bins` (scripts/test does)",
        path.display()
    );
    path
}

/// Builds every binary of the workspace in the profile of `dir`.
fn build_binaries(dir: &Path) {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .args(["build", "--workspace", "--bins", "--quiet"])
        .current_dir(env!("CARGO_MANIFEST_DIR"));
    match dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") | None => {}
        Some("release") => {
            command.arg("--release");
        }
        Some(profile) => {
            command.args(["--profile", profile]);
        }
    }
    let status = command
        .status()
        .expect("run cargo to build the binaries under test");
    assert!(
        status.success(),
        "`cargo build --workspace --bins` failed; the process tests need the binaries"
    );
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
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
