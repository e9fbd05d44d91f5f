//! Prometheus scrapes of the API's and the workers' metrics listeners.

/// The sum of a metric's values over all its labels (e.g. a gauge per
/// partition) in a Prometheus scrape; 0 when it is absent.
pub async fn summed(metrics_listen: &str, name: &str) -> f64 {
    let Ok(response) = reqwest::get(format!("http://{metrics_listen}/metrics")).await else {
        return 0.0;
    };
    let text = response.text().await.unwrap_or_default();
    text.lines()
        .filter(|line| {
            line.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
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
