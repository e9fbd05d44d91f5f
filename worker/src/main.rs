//! `hookfleet-worker`: reads `HOOKFLEET_*` configuration, runs the worker
//! until SIGTERM/SIGINT, then drains and exits 0.

use hookfleet_common::{telemetry, Config};

/// mimalloc: glibc's `malloc`/`free` took about a sixth of the worker's
/// instructions per delivery (callgrind); mimalloc's fast paths cost less.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(err) => {
            eprintln!("hookfleet-worker: invalid configuration: {err}");
            return std::process::ExitCode::from(2);
        }
    };
    match hookfleet_common::runtime::build(config.worker_threads) {
        // The claim loop runs here, on the main thread, outside the
        // runtime's threads. Run as a task of the runtime it cost the worker
        // a tenth less CPU with one endpoint, but it then claimed as soon as
        // a wake-up came, and over eight tenants made smaller claims and
        // cost more in all (docs/BENCHMARKS.md, "The claim loop's thread").
        Ok(runtime) => runtime.block_on(run(config)),
        Err(err) => {
            eprintln!("hookfleet-worker: cannot start the runtime: {err}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(config: Config) -> std::process::ExitCode {
    telemetry::init(&config.log_filter, config.log_json);
    let (trigger, shutdown) = hookfleet_worker::shutdown::channel();
    tokio::spawn(async move {
        hookfleet_worker::shutdown::signal().await;
        tracing::info!("shutdown signal received");
        let _ = trigger.send(true);
    });
    match hookfleet_worker::run(config, shutdown).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(error = %err, "worker failed");
            std::process::ExitCode::FAILURE
        }
    }
}
