//! Prometheus scrapes of the API's and the workers' metrics listeners.

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
