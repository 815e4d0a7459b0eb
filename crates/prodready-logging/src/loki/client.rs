//! The HTTP side: one push, and the retry policy around it. 400 (and 422) mean Loki refused the entries
//! themselves (out of order, too old, a bad label): final, because retrying such a batch forever wedges the
//! pipeline behind it. 413 means the body is too big for something on the way: the caller splits. Every
//! other failure (429, 5xx, transport errors, and 401/403/404/408 from a proxy or a wrong URL, which say
//! nothing about the entries) is retried with exponential backoff and jitter.

use std::time::Duration;

use tokio::time::Instant;

use super::Batch;
use crate::{Error, Result};

/// The body format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Encoding {
    /// Protobuf compressed with raw snappy (Loki's native format; about a fifth of JSON's size).
    #[default]
    Protobuf,
    /// JSON, for proxies and gateways that only speak JSON.
    Json,
}

/// How to reach Loki.
#[derive(Debug, Clone)]
pub struct LokiClientOptions {
    /// Base URL, e.g. `http://127.0.0.1:3100` (the push path is appended).
    pub url: String,
    /// `X-Scope-OrgID` for a multi-tenant Loki.
    pub tenant: Option<String>,
    pub encoding: Encoding,
    /// Per-request timeout.
    pub timeout: Duration,
}

impl LokiClientOptions {
    pub fn new(url: impl Into<String>) -> Self {
        Self { url: url.into(), tenant: None, encoding: Encoding::Protobuf, timeout: Duration::from_secs(10) }
    }
}

/// When and how often to retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub min_backoff: Duration,
    pub max_backoff: Duration,
    /// Attempts in all; `None` retries until the deadline (the shipping agent: its positions are not
    /// committed, so waiting loses nothing).
    pub max_attempts: Option<u32>,
}

impl Default for RetryPolicy {
    /// Promtail's: 0.5 s doubling to 5 min, 10 attempts.
    fn default() -> Self {
        Self {
            min_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(300),
            max_attempts: Some(10),
        }
    }
}

impl RetryPolicy {
    /// The wait before retry number `attempt` (1-based): exponential, capped, with jitter in [d/2, d].
    pub fn backoff(&self, attempt: u32) -> Duration {
        let exp = self.min_backoff.saturating_mul(1u32 << attempt.saturating_sub(1).min(20));
        let capped = exp.min(self.max_backoff);
        let mut seed = [0u8; 8];
        let jitter =
            if getrandom::getrandom(&mut seed).is_ok() { u64::from_le_bytes(seed) % 1_000 } else { 500 };
        capped / 2 + capped.mul_f64(jitter as f64 / 2_000.0)
    }
}

/// A push that did not land.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PushError {
    /// 429, 5xx or a transport error: worth retrying.
    #[error("loki push failed ({}): {message}", status.map_or_else(|| "no answer".to_owned(), |s| s.to_string()))]
    Retryable { status: Option<u16>, message: String },
    /// 400 or 422: the entries are refused for good (too old, out of order, too long, bad labels).
    #[error("loki rejected the batch ({status}): {message}")]
    Rejected { status: u16, message: String },
    /// 413: the body is too large for Loki or a proxy in front of it; send it in smaller batches.
    #[error("loki refused the body as too large (413): {message}")]
    TooLarge { message: String },
}

/// A Loki push client.
#[derive(Debug, Clone)]
pub struct LokiClient {
    http: reqwest::Client,
    push_url: String,
    tenant: Option<String>,
    encoding: Encoding,
}

impl LokiClient {
    pub fn new(options: &LokiClientOptions) -> Result<Self> {
        let base = options.url.trim_end_matches('/');
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(Error::Invalid(format!(
                "loki url `{}`: expected http://HOST:PORT or https://HOST:PORT",
                prodready_stdx::redact::url(&options.url)
            )));
        }
        let http = reqwest::Client::builder()
            .timeout(options.timeout)
            .user_agent(concat!("prodready-logging/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::Invalid(format!("cannot build the HTTP client: {e}")))?;
        Ok(Self {
            http,
            push_url: format!("{base}/loki/api/v1/push"),
            tenant: options.tenant.clone(),
            encoding: options.encoding,
        })
    }

    /// The encoded body and its content type.
    fn body(&self, batch: &Batch) -> (Vec<u8>, &'static str) {
        match self.encoding {
            Encoding::Protobuf => (batch.encode_protobuf(), "application/x-protobuf"),
            Encoding::Json => (batch.encode_json(), "application/json"),
        }
    }

    async fn send(&self, body: Vec<u8>, content_type: &str) -> std::result::Result<(), PushError> {
        let mut request = self.http.post(&self.push_url).header("content-type", content_type).body(body);
        if let Some(tenant) = &self.tenant {
            request = request.header("x-scope-orgid", tenant);
        }
        let response = request.send().await.map_err(|e| PushError::Retryable {
            status: None,
            message: prodready_stdx::error::chain(&e.without_url()),
        })?;
        let status = response.status().as_u16();
        if (200..300).contains(&status) {
            return Ok(());
        }
        let mut message = response.text().await.unwrap_or_default().trim().to_owned();
        message.truncate(500);
        match status {
            400 | 422 => Err(PushError::Rejected { status, message }),
            413 => Err(PushError::TooLarge { message }),
            _ => Err(PushError::Retryable { status: Some(status), message }),
        }
    }

    /// One attempt.
    pub async fn push_once(&self, batch: &Batch) -> std::result::Result<(), PushError> {
        let (body, content_type) = self.body(batch);
        self.send(body, content_type).await
    }

    /// Pushes with retries under `policy`, giving up at `deadline` (if any). `on_retry` hears about each
    /// failed attempt that will be retried.
    pub async fn push(
        &self,
        batch: &Batch,
        policy: &RetryPolicy,
        deadline: Option<Instant>,
        mut on_retry: impl FnMut(&PushError),
    ) -> std::result::Result<(), PushError> {
        let (body, content_type) = self.body(batch);
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let err = match self.send(body.clone(), content_type).await {
                Ok(()) => return Ok(()),
                Err(e @ (PushError::Rejected { .. } | PushError::TooLarge { .. })) => return Err(e),
                Err(e) => e,
            };
            if policy.max_attempts.is_some_and(|max| attempt >= max) {
                return Err(err);
            }
            let wait = policy.backoff(attempt);
            if deadline.is_some_and(|d| Instant::now() + wait > d) {
                return Err(err);
            }
            on_retry(&err);
            tokio::time::sleep(wait).await;
        }
    }
}
