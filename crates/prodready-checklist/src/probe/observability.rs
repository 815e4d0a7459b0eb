use serde::Deserialize;

use prodready_stdx::redact;

use super::{Finding, http_error};

#[derive(Debug, Deserialize)]
struct Targets {
    data: TargetsData,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct TargetsData {
    active_targets: Vec<Target>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Target {
    scrape_pool: String,
    scrape_url: String,
    health: String,
    #[serde(default)]
    last_error: String,
}

/// Every active target of Prometheus (or of one job) is up.
pub(super) async fn prometheus_targets(http: &reqwest::Client, url: &str, job: Option<&str>) -> Finding {
    let endpoint = format!("{}/api/v1/targets?state=active", url.trim_end_matches('/'));
    let url = redact::url(url);
    let response = match http.get(&endpoint).send().await {
        Ok(r) => r,
        Err(e) => return Finding::fail(format!("Prometheus at {url}: {}", http_error(e))),
    };
    if !response.status().is_success() {
        return Finding::fail(format!("Prometheus at {url}: {} from /api/v1/targets", response.status()));
    }
    let targets: Targets = match response.json().await {
        Ok(t) => t,
        Err(e) => {
            return Finding::error(format!("Prometheus at {url}: unexpected answer: {}", http_error(e)));
        }
    };
    let targets: Vec<Target> =
        targets.data.active_targets.into_iter().filter(|t| job.is_none_or(|j| t.scrape_pool == j)).collect();
    let scope = job.map(|j| format!(" of job {j}")).unwrap_or_default();
    if targets.is_empty() {
        return Finding::fail(format!("Prometheus at {url} has no active targets{scope}"));
    }
    let down: Vec<String> = targets
        .iter()
        .filter(|t| t.health != "up")
        .map(|t| {
            let why = if t.last_error.is_empty() { t.health.clone() } else { t.last_error.clone() };
            format!("{} {} ({why})", t.scrape_pool, t.scrape_url)
        })
        .collect();
    if down.is_empty() {
        Finding::pass(format!("{} targets{scope} up", targets.len()))
    } else {
        Finding::fail(format!(
            "{} of {} targets{scope} not up: {}",
            down.len(),
            targets.len(),
            down.join("; ")
        ))
    }
}

/// Loki answers `/ready`.
pub(super) async fn loki(http: &reqwest::Client, url: &str) -> Finding {
    let endpoint = format!("{}/ready", url.trim_end_matches('/'));
    let url = redact::url(url);
    match http.get(&endpoint).send().await {
        Ok(r) if r.status().is_success() => Finding::pass(format!("Loki at {url} is ready")),
        Ok(r) => Finding::fail(format!("Loki at {url}: {} from /ready", r.status())),
        Err(e) => Finding::fail(format!("Loki at {url}: {}", http_error(e))),
    }
}

/// An OTLP/HTTP receiver accepts an empty trace export (a valid, empty ExportTraceServiceRequest).
pub(super) async fn otlp(http: &reqwest::Client, url: &str) -> Finding {
    let base = url.trim_end_matches('/');
    let endpoint = if base.ends_with("/v1/traces") { base.to_owned() } else { format!("{base}/v1/traces") };
    let sent =
        http.post(&endpoint).header("content-type", "application/x-protobuf").body(Vec::new()).send().await;
    match sent {
        Ok(r) if r.status().is_success() => Finding::pass(format!("{endpoint} accepted an OTLP export")),
        Ok(r) => Finding::fail(format!("{endpoint}: {}", r.status())),
        Err(e) => Finding::fail(format!("{endpoint}: {}", http_error(e))),
    }
}
