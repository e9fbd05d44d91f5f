//! Polling with a deadline instead of sleeping and hoping: every wait in
//! the suite asks a question again until it is answered or time is up.

use std::future::Future;
use std::time::{Duration, Instant};

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
