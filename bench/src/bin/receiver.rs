//! `hookfleet-bench-receiver`: the benchmark's webhook receiver. It answers
//! every POST with 200 at once (no body, no verification: a fast receiver
//! is the point) and records when each request arrived and, for bodies that
//! carry a publish time, the publish→receipt latency.
//!
//! `GET /stats` returns [`ReceiverStats`] as JSON (`?latency=1` adds the
//! latency percentiles); `POST /reset` clears them
//! between phases. Any other path is a webhook.
//!
//! Usage: `hookfleet-bench-receiver [--listen 127.0.0.1:9000]`

use std::sync::{Arc, Mutex};

use hookfleet_bench::{sent_ns_of, unix_nanos, Percentiles, ReceiverStats};
use poem::http::{Method, StatusCode};
use poem::listener::TcpListener;
use poem::{Request, Response};

#[derive(Default)]
struct Recorder {
    count: u64,
    first_ns: u64,
    last_ns: u64,
    latencies_ns: Vec<u64>,
}

impl Recorder {
    fn record(&mut self, now: u64, sent: Option<u64>) {
        self.count += 1;
        if self.first_ns == 0 {
            self.first_ns = now;
        }
        self.last_ns = self.last_ns.max(now);
        if let Some(sent) = sent {
            self.latencies_ns.push(now.saturating_sub(sent));
        }
    }

    /// Percentiles sort a copy of every latency: only when asked for.
    fn stats(&self, with_latency: bool) -> ReceiverStats {
        let latency = if with_latency {
            Percentiles::of_nanos(&mut self.latencies_ns.clone())
        } else {
            None
        };
        ReceiverStats {
            count: self.count,
            first_ns: self.first_ns,
            last_ns: self.last_ns,
            latency,
        }
    }
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let mut listen = "127.0.0.1:9000".to_string();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match (arg.as_str(), args.next()) {
            ("--listen", Some(value)) => listen = value,
            _ => {
                eprintln!("usage: hookfleet-bench-receiver [--listen ADDR]");
                return std::process::ExitCode::from(2);
            }
        }
    }
    let recorder: Arc<Mutex<Recorder>> = Arc::default();
    let endpoint = poem::endpoint::make(move |mut req: Request| {
        let recorder = recorder.clone();
        async move {
            match (req.method().clone(), req.uri().path()) {
                (Method::GET, "/stats") => {
                    let with_latency = req.uri().query() == Some("latency=1");
                    let stats = match recorder.lock() {
                        Ok(recorder) => recorder.stats(with_latency),
                        Err(_) => ReceiverStats::default(),
                    };
                    Response::builder()
                        .content_type("application/json")
                        .body(serde_json::to_string(&stats).unwrap_or_default())
                }
                (Method::POST, "/reset") => {
                    if let Ok(mut recorder) = recorder.lock() {
                        *recorder = Recorder::default();
                    }
                    Response::builder().status(StatusCode::NO_CONTENT).finish()
                }
                _ => {
                    let body = req.take_body().into_bytes().await.unwrap_or_default();
                    let now = unix_nanos();
                    if let Ok(mut recorder) = recorder.lock() {
                        recorder.record(now, sent_ns_of(&body));
                    }
                    Response::builder().status(StatusCode::OK).finish()
                }
            }
        }
    });
    let server = poem::Server::new(TcpListener::bind(listen.clone()));
    let stop = async {
        #[cfg(unix)]
        if let Ok(mut term) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
            return;
        }
        let _ = tokio::signal::ctrl_c().await;
    };
    match server
        .run_with_graceful_shutdown(endpoint, stop, None)
        .await
    {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("hookfleet-bench-receiver: {listen}: {err}");
            std::process::ExitCode::FAILURE
        }
    }
}
