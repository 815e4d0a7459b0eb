//! The HTTP half of the exporters of our own (OTLP http/protobuf, Zipkin): one POST per batch with a
//! blocking client on the batch processor's thread, retried as OTLP/HTTP says (429, 502, 503, 504 and
//! connection failures; `Retry-After` honoured) with exponential backoff, all within the export timeout.

use std::time::{Duration, Instant};

use http::{HeaderMap, HeaderName, HeaderValue};
use opentelemetry_sdk::error::OTelSdkError;

use crate::Error;

/// Retries after the first attempt, and the backoff (doubled each time, capped), as opentelemetry-otlp's
/// recommended policy.
const RETRIES: u32 = 3;
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_millis(1600);
/// The most of a collector's answer that is read (its error text, a partial-success message).
const MAX_ANSWER: u64 = 64 * 1024;

#[derive(Debug)]
pub(crate) struct Transport {
    endpoint: String,
    client: reqwest::blocking::Client,
    headers: HeaderMap,
    timeout: Duration,
}

/// Why an attempt failed, and whether another may succeed.
struct Failure {
    message: String,
    retry: bool,
    /// What the collector asked for (`Retry-After` in seconds).
    after: Option<Duration>,
}

impl Transport {
    /// `exporter` names the exporter in errors; header names and values are checked here (a value is
    /// never quoted: it may be a credential).
    pub(crate) fn new(
        endpoint: &str,
        headers: &[(String, String)],
        timeout: Duration,
        exporter: &'static str,
    ) -> crate::Result<Self> {
        let mut map = HeaderMap::new();
        for (key, value) in headers {
            let name = HeaderName::from_bytes(key.as_bytes())
                .map_err(|_| Error::Invalid(format!("`{key}` is not a valid HTTP header name")))?;
            let mut value = HeaderValue::from_str(value).map_err(|_| {
                Error::Invalid(format!("the value of header `{key}` is not a valid header value"))
            })?;
            value.set_sensitive(true);
            map.append(name, value);
        }
        let client = blocking_client(timeout, exporter)?;
        Ok(Self { endpoint: endpoint.to_owned(), client, headers: map, timeout })
    }

    /// Posts `body`; the collector's answer (at most 64 KiB of it) when it says 2xx.
    pub(crate) fn post(&self, content_type: &'static str, body: Vec<u8>) -> Result<Vec<u8>, OTelSdkError> {
        // Shared between attempts without a copy.
        let body = bytes::Bytes::from(body);
        let start = Instant::now();
        let mut backoff = FIRST_BACKOFF;
        let mut attempt = 0;
        loop {
            let remaining = self.timeout.saturating_sub(start.elapsed());
            let failure = match self.once(content_type, body.clone(), remaining) {
                Ok(answer) => return Ok(answer),
                Err(failure) => failure,
            };
            // The wait before the next attempt: what the collector asked for, else the backoff with up to
            // a tenth of it as jitter (so exporters that failed together do not retry together).
            let wait = failure.after.unwrap_or_else(|| backoff + jitter(backoff / 10));
            if !failure.retry || attempt == RETRIES || start.elapsed() + wait >= self.timeout {
                return Err(OTelSdkError::InternalFailure(failure.message));
            }
            std::thread::sleep(wait);
            attempt += 1;
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    fn once(
        &self,
        content_type: &'static str,
        body: bytes::Bytes,
        timeout: Duration,
    ) -> Result<Vec<u8>, Failure> {
        let response = self
            .client
            .post(&self.endpoint)
            .headers(self.headers.clone())
            .header(http::header::CONTENT_TYPE, content_type)
            .timeout(timeout)
            .body(body)
            .send()
            .map_err(|e| {
                // The cause ("connection refused", "timed out") is in the error's sources.
                let e = prodready_stdx::error::chain(&e);
                Failure { message: format!("cannot reach {}: {e}", self.endpoint), retry: true, after: None }
            })?;
        let status = response.status();
        let after = response
            .headers()
            .get(http::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(|s| Duration::from_secs(s.min(600)));
        let mut answer = Vec::new();
        let read = std::io::Read::read_to_end(&mut std::io::Read::take(response, MAX_ANSWER), &mut answer);
        if status.is_success() {
            return read.map(|_| answer).map_err(|e| Failure {
                message: format!("{} answered {status} but its answer could not be read: {e}", self.endpoint),
                retry: false,
                after: None,
            });
        }
        // An OTLP error answer is a protobuf `google.rpc.Status`; others are text.
        let text = if is_binary(&answer) {
            crate::otlp::status_message(&answer).unwrap_or_default()
        } else {
            String::from_utf8_lossy(&answer).chars().take(300).collect()
        };
        let message = match text.trim() {
            "" => format!("{} answered {status}", self.endpoint),
            text => format!("{} answered {status}: {text}", self.endpoint),
        };
        Err(Failure { message, retry: matches!(status.as_u16(), 429 | 502 | 503 | 504), after })
    }
}

/// Control characters other than white space: not text.
fn is_binary(answer: &[u8]) -> bool {
    answer.iter().any(|&b| b < 0x09 || (0x0e..0x20).contains(&b))
}

/// Up to `max`, from the clock's nanoseconds (no random number generator needed for this).
fn jitter(max: Duration) -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::from(d.subsec_nanos()));
    let max = u64::try_from(max.as_nanos()).unwrap_or(u64::MAX).max(1);
    Duration::from_nanos(nanos % max)
}

/// A blocking HTTP client, built on a thread of its own: reqwest's blocking client starts a runtime of its
/// own, which panics when built inside an async context (`init` called from `#[tokio::main]`).
pub(crate) fn blocking_client(
    timeout: Duration,
    exporter: &'static str,
) -> crate::Result<reqwest::blocking::Client> {
    let fail = |message: String| Error::Exporter { exporter, message };
    std::thread::Builder::new()
        .name("otel-http-client".to_owned())
        .spawn(move || reqwest::blocking::Client::builder().timeout(timeout).build())
        .map_err(|e| fail(e.to_string()))?
        .join()
        .map_err(|_| fail("building the HTTP client panicked".to_owned()))?
        .map_err(|e| fail(e.to_string()))
}
