//! Real HTTP receivers on 127.0.0.1:0: each records what it gets and
//! answers with scripted replies, so a test sees exactly what a tenant's
//! endpoint would.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use poem::listener::{Acceptor, Listener, TcpListener};

use super::wait_until;

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
    /// Requests being answered right now, and the most there ever were
    /// at once (counted from arrival until the reply is sent).
    pub active: Arc<std::sync::atomic::AtomicUsize>,
    pub peak: Arc<std::sync::atomic::AtomicUsize>,
}

impl Receiver {
    pub fn requests(&self) -> Vec<Received> {
        self.received.lock().expect("receiver lock").clone()
    }

    /// The most requests this receiver was answering at once.
    pub fn peak_concurrency(&self) -> usize {
        self.peak.load(std::sync::atomic::Ordering::SeqCst)
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
    let active: Arc<std::sync::atomic::AtomicUsize> = Arc::default();
    let peak: Arc<std::sync::atomic::AtomicUsize> = Arc::default();
    let (counting, peaking) = (active.clone(), peak.clone());
    let endpoint = poem::endpoint::make(move |req: poem::Request| {
        use std::sync::atomic::Ordering::SeqCst;
        let now = counting.fetch_add(1, SeqCst) + 1;
        peaking.fetch_max(now, SeqCst);
        // Counted down when the reply is made (or the request dropped).
        let leaving = LeaveGuard(counting.clone());
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
            drop(leaving);
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
        active,
        peak,
    }
}

/// Counts a request out of [`Receiver::active`] when dropped.
struct LeaveGuard(Arc<std::sync::atomic::AtomicUsize>);

impl Drop for LeaveGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}
