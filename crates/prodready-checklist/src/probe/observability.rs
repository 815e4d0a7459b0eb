use std::time::Duration;

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
    // A gateway's URL may carry a token (`https://id:token@otlp-gateway/otlp`): shown masked.
    let shown = redact::url(&endpoint);
    match sent {
        Ok(r) if r.status().is_success() => Finding::pass(format!("{shown} accepted an OTLP export")),
        Ok(r) => Finding::fail(format!("{shown}: {}", r.status())),
        Err(e) => Finding::fail(format!("{shown}: {}", http_error(e))),
    }
}

/// Loki deletes logs after at least `min_days`, read from its running configuration (`GET /config`):
/// the compactor's retention is on and `limits_config.retention_period` is at least that long. Off,
/// Loki keeps every log until the disk fills; shorter, the logs an investigation needs are gone.
pub(super) async fn loki_retention(http: &reqwest::Client, url: &str, min_days: u32) -> Finding {
    let endpoint = format!("{}/config", url.trim_end_matches('/'));
    let url = redact::url(url);
    let response = match http.get(&endpoint).send().await {
        Ok(r) => r,
        Err(e) => return Finding::fail(format!("Loki at {url}: {}", http_error(e))),
    };
    if !response.status().is_success() {
        return Finding::fail(format!("Loki at {url}: {} from /config", response.status()));
    }
    let text = match response.text().await {
        Ok(t) => t,
        Err(e) => return Finding::error(format!("Loki at {url}: {}", http_error(e))),
    };
    let config: serde_yaml_ng::Value = match serde_yaml_ng::from_str(&text) {
        Ok(c) => c,
        Err(e) => return Finding::error(format!("Loki at {url}: /config is not YAML: {e}")),
    };
    let enabled = config
        .get("compactor")
        .and_then(|c| c.get("retention_enabled"))
        .and_then(serde_yaml_ng::Value::as_bool)
        .unwrap_or(false);
    let period_text = config
        .get("limits_config")
        .and_then(|l| l.get("retention_period"))
        .and_then(serde_yaml_ng::Value::as_str)
        .unwrap_or("0s");
    let Some(period) = prometheus_duration(period_text) else {
        return Finding::error(format!("Loki at {url}: retention_period `{period_text}` is not a duration"));
    };
    let days = period.as_secs() / 86_400;
    if !enabled || period.is_zero() {
        return Finding::fail(format!(
            "Loki at {url} keeps logs forever (compactor.retention_enabled: {enabled}, retention_period: \
             {period_text}): storage grows without bound"
        ));
    }
    if days < u64::from(min_days) {
        return Finding::fail(format!(
            "Loki at {url} deletes logs after {days} days ({period_text}); at least {min_days} are needed"
        ));
    }
    Finding::pass(format!("Loki at {url} keeps logs {days} days ({period_text}), then deletes them"))
}

/// A duration as Prometheus and Loki print them: `720h`, `4w2d`, `1y`, `90s`, `500ms`.
pub(crate) fn prometheus_duration(text: &str) -> Option<Duration> {
    let mut total = Duration::ZERO;
    let mut rest = text.trim();
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
        let number: u64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = if rest.starts_with("ms") { 2 } else { 1.min(rest.len()) };
        let seconds = match &rest[..unit_len] {
            "ms" => {
                total += Duration::from_millis(number);
                rest = &rest[unit_len..];
                continue;
            }
            "s" => 1,
            "m" => 60,
            "h" => 3_600,
            "d" => 86_400,
            "w" => 7 * 86_400,
            "y" => 365 * 86_400,
            _ => return None,
        };
        total += Duration::from_secs(number.checked_mul(seconds)?);
        rest = &rest[unit_len..];
    }
    Some(total)
}
