//! Receivers that misbehave on purpose, for the noisy-neighbour phase: one
//! that accepts deliveries and never answers, one that answers 500 after
//! two seconds. They run inside `hookfleet-bench` on `127.0.0.1:0` for the
//! length of the phase, because what they must report (how many requests
//! reached them, and how many were open at once) is two counters the driver
//! can read directly.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use poem::http::StatusCode;
use poem::listener::{Acceptor, Listener, TcpListener};
use poem::Response;
use tokio::sync::watch;

/// What a slow receiver counts, shared with its handler.
#[derive(Default)]
struct Counters {
    requests: AtomicU64,
    open: AtomicU64,
    most_open: AtomicU64,
}

/// Counts a request as open until it ends: answered, or given up on by the
/// worker (which closes the connection).
struct OpenGuard(Arc<Counters>);

impl OpenGuard {
    fn enter(counters: Arc<Counters>) -> Self {
        counters.requests.fetch_add(1, Ordering::Relaxed);
        let now = counters.open.fetch_add(1, Ordering::Relaxed) + 1;
        counters.most_open.fetch_max(now, Ordering::Relaxed);
        OpenGuard(counters)
    }
}

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// One running slow receiver.
pub struct SlowReceiver {
    /// Where an endpoint should point.
    pub url: String,
    counters: Arc<Counters>,
    stop: watch::Sender<bool>,
    server: tokio::task::JoinHandle<()>,
}

impl SlowReceiver {
    /// Starts a receiver that reads each request and never answers: plain
    /// TCP, not an HTTP server, so that a request counts as open exactly
    /// while its connection is (an HTTP server would keep a handler alive
    /// after the worker gave up). Each connection carries one request, since
    /// a client sends no second request before the first is answered. A
    /// hold ends when the worker closes the connection, after `hold` at
    /// the latest, or at [`stop`].
    ///
    /// [`stop`]: SlowReceiver::stop
    pub async fn hanging(hold: Duration) -> Result<Self, String> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| format!("hanging receiver: binding 127.0.0.1:0: {e}"))?;
        let addr = listener
            .local_addr()
            .map_err(|e| format!("hanging receiver: its address: {e}"))?;
        let counters: Arc<Counters> = Arc::default();
        let (stop, mut stopped) = watch::channel(false);
        let server = {
            let counters = counters.clone();
            tokio::spawn(async move {
                // Dropped with the server, which ends every hold.
                let mut holds = tokio::task::JoinSet::new();
                loop {
                    let socket = tokio::select! {
                        accepted = listener.accept() => match accepted {
                            Ok((socket, _)) => socket,
                            Err(_) => continue,
                        },
                        _ = stopped.wait_for(|stop| *stop) => return,
                    };
                    holds.spawn(hold_open(socket, counters.clone(), hold));
                    // Reap the holds that ended, so the set stays small.
                    while holds.try_join_next().is_some() {}
                }
            })
        };
        Ok(SlowReceiver {
            url: format!("http://{addr}/hook"),
            counters,
            stop,
            server,
        })
    }

    /// Starts an HTTP receiver that holds each request for `delay`, then
    /// answers `status`; [`stop`] answers every held request at once.
    ///
    /// [`stop`]: SlowReceiver::stop
    pub async fn answering(status: StatusCode, delay: Duration) -> Result<Self, String> {
        let acceptor = TcpListener::bind("127.0.0.1:0")
            .into_acceptor()
            .await
            .map_err(|e| format!("slow receiver: binding 127.0.0.1:0: {e}"))?;
        let addr = acceptor
            .local_addr()
            .first()
            .and_then(|a| a.as_socket_addr().copied())
            .ok_or("slow receiver: the listener has no socket address")?;
        let counters: Arc<Counters> = Arc::default();
        let (stop, stopped) = watch::channel(false);
        let endpoint = {
            let (counters, stopped) = (counters.clone(), stopped.clone());
            poem::endpoint::make(move |_req: poem::Request| {
                let counters = counters.clone();
                let mut stopped = stopped.clone();
                async move {
                    let _open = OpenGuard::enter(counters);
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {}
                        _ = stopped.wait_for(|stop| *stop) => {}
                    }
                    Response::builder().status(status).finish()
                }
            })
        };
        let server = tokio::spawn(async move {
            let mut stopped = stopped;
            let signal = async move {
                let _ = stopped.wait_for(|stop| *stop).await;
            };
            // Handlers return as soon as `stop` is sent; a second is ample
            // for their answers to go out.
            let _ = poem::Server::new_with_acceptor(acceptor)
                .run_with_graceful_shutdown(endpoint, signal, Some(Duration::from_secs(1)))
                .await;
        });
        Ok(SlowReceiver {
            url: format!("http://{addr}/hook"),
            counters,
            stop,
            server,
        })
    }

    /// Requests received so far.
    pub fn requests(&self) -> u64 {
        self.counters.requests.load(Ordering::Relaxed)
    }

    /// The most requests it held open at once so far.
    pub fn most_open(&self) -> u64 {
        self.counters.most_open.load(Ordering::Relaxed)
    }

    /// Ends every held request now and stops listening.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = tokio::time::timeout(Duration::from_secs(5), self.server).await;
    }
}

/// One connection to the hanging receiver: counted as a request once its
/// first bytes arrive, read and thrown away until the peer closes it or
/// `hold` passes.
async fn hold_open(mut socket: tokio::net::TcpStream, counters: Arc<Counters>, hold: Duration) {
    use tokio::io::AsyncReadExt;
    let deadline = tokio::time::Instant::now() + hold;
    let mut buf = vec![0u8; 16 * 1024];
    let mut open = None;
    loop {
        match tokio::time::timeout_at(deadline, socket.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => {
                open.get_or_insert_with(|| OpenGuard::enter(counters.clone()));
            }
            // Closed by the worker, a read error, or held long enough.
            _ => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// reqwest is built without a default crypto provider (as in `main`).
    fn client() -> reqwest::Client {
        let _ = rustls::crypto::ring::default_provider().install_default();
        reqwest::Client::new()
    }

    #[tokio::test]
    async fn a_request_given_up_on_stops_counting_as_open() {
        let receiver = SlowReceiver::hanging(Duration::from_secs(3600))
            .await
            .expect("spawn");
        let client = client();
        for _ in 0..2 {
            let sent = client
                .post(&receiver.url)
                .body("{}")
                .timeout(Duration::from_millis(200))
                .send()
                .await;
            assert!(sent.is_err(), "the hanging receiver answered");
        }
        // The client closed both connections on its timeout; the receiver
        // saw two requests, never two at once, and holds none now.
        let mut open = u64::MAX;
        for _ in 0..100 {
            open = receiver.counters.open.load(Ordering::Relaxed);
            if open == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(open, 0);
        assert_eq!((receiver.requests(), receiver.most_open()), (2, 1));
        receiver.stop().await;
    }

    #[tokio::test]
    async fn a_failing_receiver_answers_its_status_after_its_delay() {
        let receiver = SlowReceiver::answering(
            StatusCode::INTERNAL_SERVER_ERROR,
            Duration::from_millis(100),
        )
        .await
        .expect("spawn");
        let started = std::time::Instant::now();
        let status = client()
            .post(&receiver.url)
            .body("{}")
            .send()
            .await
            .map(|r| r.status().as_u16());
        assert_eq!(status.ok(), Some(500));
        assert!(started.elapsed() >= Duration::from_millis(100));
        receiver.stop().await;
    }
}
