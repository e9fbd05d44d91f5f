//! `hookfleet-bench`: the load driver of `scripts/bench`. It talks to a
//! running Hookfleet (API, workers, Redis) and to `hookfleet-bench-receiver`
//! over HTTP, one phase per invocation, and appends one JSON record per
//! phase to a results file; `report` turns the records into
//! `docs/BENCHMARKS.md`.
//!
//! ```text
//! hookfleet-bench throughput --events N --clients C [--batch B] [--pids api=1,worker=2]
//! hookfleet-bench latency    --rate R --seconds S
//! hookfleet-bench bare       --requests N [--concurrency K] [--relay 1 [--deliver-concurrency D]] [--pids receiver=3]
//! hookfleet-bench fanout     --endpoints E [--repeat R]
//! hookfleet-bench backlog    --deliveries N --redis URL [--prefix hf]
//! hookfleet-bench drain      --expect N --workers W
//! hookfleet-bench noisy-neighbour --rate R --seconds S --deliveries D [--workers W]
//! hookfleet-bench fifo       --events N --rate R --seconds S [--draining F] [--held H]
//! hookfleet-bench filter     --endpoints E --repeat R --events N --clients C [--rounds K]
//! hookfleet-bench report     --results FILE --out FILE [--meta key=value]... [--only PHASES]
//! ```
//!
//! Every phase takes `--api URL --admin-key KEY --receiver URL --results
//! FILE`, and optionally `--body-bytes` (200) and `--timeout-s` (300), the
//! longest wait for deliveries to arrive. `report --only a,b` rewrites only
//! those phases' sections and target rows of an existing page (a run of
//! some phases must not blank out the others' figures).

mod api_client;
mod args;
mod noisy_neighbour;
mod phases;
mod report;
mod semantics;
mod slow_receiver;

use std::io::Write;
use std::time::Duration;

use api_client::{Api, ReceiverControl};
use args::Args;
use phases::Env;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    // reqwest is built without a default crypto provider (as in the worker).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut raw = std::env::args().skip(1);
    let Some(command) = raw.next() else {
        eprintln!("usage: hookfleet-bench <throughput|latency|bare|fanout|backlog|drain|noisy-neighbour|fifo|filter|report> --flag value ...");
        return std::process::ExitCode::from(2);
    };
    let outcome = match Args::parse(raw) {
        Ok(args) => run(&command, &args).await,
        Err(err) => Err(err),
    };
    match outcome {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("hookfleet-bench {command}: {err}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(command: &str, args: &Args) -> Result<(), String> {
    if command == "report" {
        return write_report(args);
    }
    let clients: usize = args.num("clients", 16)?;
    let env = Env {
        api: Api::new(&args.string("api")?, clients.max(64))?,
        receiver: ReceiverControl::new(&args.string("receiver")?),
        admin_key: args.string("admin-key")?,
        body_bytes: args.num("body-bytes", 200)?,
        timeout: Duration::from_secs(args.num("timeout-s", 300)?),
    };
    let record = match command {
        "throughput" => phases::throughput(&env, args).await?,
        "latency" => phases::latency(&env, args).await?,
        "bare" => phases::bare(&env, args).await?,
        "fanout" => phases::fanout(&env, args).await?,
        "backlog" => phases::backlog(&env, args).await?,
        "drain" => phases::drain(&env, args).await?,
        "noisy-neighbour" => noisy_neighbour::run(&env, args).await?,
        "fifo" => semantics::fifo(&env, args).await?,
        "filter" => semantics::filter(&env, args).await?,
        other => return Err(format!("unknown phase `{other}`")),
    };
    println!("{record}");
    let path = args.string("results")?;
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(|e| format!("{path}: {e}"))?;
    writeln!(file, "{record}").map_err(|e| format!("{path}: {e}"))?;
    Ok(())
}

fn write_report(args: &Args) -> Result<(), String> {
    let results = args.string("results")?;
    let out = args.string("out")?;
    let text = std::fs::read_to_string(&results).map_err(|e| format!("{results}: {e}"))?;
    let records: Vec<serde_json::Value> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{results}: {e}"))?;
    let meta: Vec<(String, String)> = args
        .all("meta")
        .into_iter()
        .map(|kv| match kv.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (kv, String::new()),
        })
        .collect();
    let old = std::fs::read_to_string(&out).ok();
    let page = match (args.opt("only"), old) {
        // A run of some phases: the rest of the page keeps its figures.
        (Some(only), Some(old)) => {
            let only: Vec<&str> = only.split(',').map(str::trim).collect();
            report::merge(&old, &records, &meta, &only)
        }
        // Keep the hand-written notes of the page being replaced.
        (_, old) => {
            let notes = old
                .as_deref()
                .and_then(|old| old.split_once(report::NOTES_MARKER))
                .map(|(_, notes)| notes.to_string())
                .unwrap_or_else(|| "\n".to_string());
            report::render(&records, &meta, &notes)
        }
    };
    std::fs::write(&out, page).map_err(|e| format!("{out}: {e}"))?;
    eprintln!("wrote {out}");
    Ok(())
}
