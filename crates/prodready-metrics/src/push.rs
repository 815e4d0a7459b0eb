//! Pushing a registry to a Prometheus Pushgateway (feature `push`).
//!
//! The push is a `POST` to `/metrics/job/JOB/LABEL@base64/VALUE...`: it replaces the metrics of the same
//! names in the group and keeps the others, so two jobs reporting disjoint metrics (a backup run and a
//! verification) can share one group. Label values are sent base64url-encoded, so any value (a `/`, an
//! empty string) is a valid path segment.

use std::time::Duration;

use base64::Engine as _;
use prometheus_client::registry::Registry;

use crate::{Error, Result, exposition};

/// The grouping key of a push: the job and further labels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub job: String,
    pub labels: Vec<(String, String)>,
}

impl Group {
    pub fn new(job: impl Into<String>) -> Self {
        Self { job: job.into(), labels: Vec::new() }
    }

    /// Adds a grouping label.
    #[must_use]
    pub fn label(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.labels.push((name.into(), value.into()));
        self
    }

    /// The group's path below the Pushgateway's base URL.
    pub fn path(&self) -> String {
        let b64 = |v: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
        let mut path = format!("/metrics/job@base64/{}", b64(&self.job));
        for (name, value) in &self.labels {
            path.push_str(&format!("/{name}@base64/{}", b64(value)));
        }
        path
    }
}

/// Pushes `registry` (classic text format) into `group` at the Pushgateway `base_url`, giving up after
/// `timeout`. Errors name the URL without credentials.
pub async fn push(base_url: &str, group: &Group, registry: &Registry, timeout: Duration) -> Result<()> {
    let shown = prodready_stdx::redact::url(base_url);
    let fail = |message: String| Error::Push { url: shown.clone(), message };
    let endpoint = format!("{}{}", base_url.trim_end_matches('/'), group.path());
    let sent = reqwest::Client::new()
        .post(&endpoint)
        .header(http::header::CONTENT_TYPE, exposition::TEXT_CONTENT_TYPE)
        .body(exposition::encode_text(registry))
        .timeout(timeout)
        .send()
        .await;
    match sent {
        Ok(response) if response.status().is_success() => Ok(()),
        Ok(response) => Err(fail(format!("refused the metrics: {}", response.status()))),
        Err(e) => Err(fail(format!("cannot push: {}", prodready_stdx::error::chain(&e.without_url())))),
    }
}
