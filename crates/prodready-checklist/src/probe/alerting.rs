//! Critical alerts reach the required channels, read from Alertmanager's configuration: a file, or the
//! running Alertmanager's `GET /api/v2/status`.

use prodready_stdx::redact;

use super::{Finding, http_error};
use crate::spec::AlertingSource;

/// The labels of the alert whose route is checked: a critical alert of any job.
const CRITICAL: &[(&str, &str)] =
    &[("alertname", "ProdreadyCheck"), ("severity", "critical"), ("job", "any")];

pub(super) async fn probe(http: &reqwest::Client, source: &AlertingSource, channels: &[String]) -> Finding {
    let (config, origin) = match source {
        AlertingSource::File(path) => match tokio::fs::read_to_string(path).await {
            Ok(text) => (text, path.display().to_string()),
            Err(e) => return Finding::fail(format!("{}: {e}", path.display())),
        },
        AlertingSource::Url(url) => {
            let endpoint = format!("{}/api/v2/status", url.trim_end_matches('/'));
            let shown = format!("Alertmanager at {}", redact::url(url));
            let response = match http.get(&endpoint).send().await {
                Ok(r) => r,
                Err(e) => return Finding::fail(format!("{shown}: {}", http_error(e))),
            };
            if !response.status().is_success() {
                return Finding::fail(format!("{shown}: {} from /api/v2/status", response.status()));
            }
            let status: serde_json::Value = match response.json().await {
                Ok(s) => s,
                Err(e) => return Finding::error(format!("{shown}: unexpected answer: {}", http_error(e))),
            };
            match status["config"]["original"].as_str() {
                Some(text) => (text.to_owned(), shown),
                None => return Finding::error(format!("{shown}: /api/v2/status has no config.original")),
            }
        }
    };
    let deliveries = match prodready_metrics_alerts::alertmanager::deliveries(&config, CRITICAL) {
        Ok(d) => d,
        Err(e) => return Finding::error(format!("{origin}: {e}")),
    };
    let reached: Vec<&str> = deliveries.iter().flat_map(|d| d.channels.iter().map(String::as_str)).collect();
    let receivers: Vec<&str> = deliveries.iter().map(|d| d.receiver.as_str()).collect();
    let missing: Vec<&str> = channels.iter().map(String::as_str).filter(|c| !reached.contains(c)).collect();
    let mut all = reached.clone();
    all.sort_unstable();
    all.dedup();
    let reach = if all.is_empty() { "no channel".to_owned() } else { all.join(", ") };
    if missing.is_empty() {
        Finding::pass(format!("{origin}: critical alerts reach {reach} (receiver {})", receivers.join(", ")))
    } else {
        Finding::fail(format!(
            "{origin}: critical alerts reach {reach} (receiver {}), not {}",
            receivers.join(", "),
            missing.join(", ")
        ))
    }
}
