//! The HTTP half of the exporters of our own (OTLP http/protobuf, Zipkin): one POST per batch with a
//! blocking client on the batch processor's thread, retried as OTLP/HTTP says (429, 502, 503, 504 and
//! connection failures; `Retry-After` honoured on 429 and 503) with exponential backoff, all within the
//! export timeout. Redirects are not followed. Errors show the endpoint without its credentials and
//! never a header's value, also where a collector's answer echoes one.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use http::{HeaderMap, HeaderName, HeaderValue};
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};

use crate::Error;
use crate::options::Tls;

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
    /// The endpoint as errors show it (its credentials masked).
    shown: String,
    client: reqwest::blocking::Client,
    headers: HeaderMap,
    timeout: Duration,
    /// Whether the exporter was shut down: later exports are refused, as the SDK's contract says.
    shut_down: AtomicBool,
}

/// Why an attempt failed, and whether another may succeed.
struct Failure {
    message: String,
    retry: bool,
    /// What the collector asked for (`Retry-After` on a 429 or 503).
    after: Option<Duration>,
}

impl Transport {
    /// `exporter` names the exporter in errors; header names and values are checked here (a value is
    /// never quoted: it may be a credential).
    pub(crate) fn new(
        endpoint: &str,
        headers: &[(String, String)],
        timeout: Duration,
        tls: &Tls,
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
        let client = blocking_client(timeout, tls_parts(tls)?, exporter)?;
        Ok(Self {
            endpoint: endpoint.to_owned(),
            shown: prodready_stdx::redact::url(endpoint),
            client,
            headers: map,
            timeout,
            shut_down: AtomicBool::new(false),
        })
    }

    /// Refuses exports from now on; a second call says it was already done.
    pub(crate) fn shut_down(&self) -> OTelSdkResult {
        if self.shut_down.swap(true, Ordering::SeqCst) { Err(OTelSdkError::AlreadyShutdown) } else { Ok(()) }
    }

    /// Posts `body` (compressed as `encoding` says, if it says); the collector's answer (at most 64 KiB
    /// of it) when it says 2xx.
    pub(crate) fn post(
        &self,
        content_type: &'static str,
        encoding: Option<&'static str>,
        body: Vec<u8>,
    ) -> Result<Vec<u8>, OTelSdkError> {
        if self.shut_down.load(Ordering::SeqCst) {
            return Err(OTelSdkError::AlreadyShutdown);
        }
        // Shared between attempts without a copy.
        let body = bytes::Bytes::from(body);
        let start = Instant::now();
        let mut backoff = FIRST_BACKOFF;
        let mut attempt = 0;
        loop {
            let remaining = self.timeout.saturating_sub(start.elapsed());
            let failure = match self.once(content_type, encoding, body.clone(), remaining) {
                Ok(answer) => return Ok(answer),
                Err(failure) => failure,
            };
            // The backoff with up to a tenth of it as jitter (so exporters that failed together do not
            // retry together), or longer when the collector asked for longer.
            let wait = (backoff + jitter(backoff / 10)).max(failure.after.unwrap_or_default());
            if !failure.retry || attempt == RETRIES || start.elapsed() + wait >= self.timeout {
                return Err(OTelSdkError::InternalFailure(self.scrub(&failure.message)));
            }
            std::thread::sleep(wait);
            attempt += 1;
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    /// A message fit to show: the endpoint's credentials and every header value (an API key a collector
    /// may echo back) masked.
    fn scrub(&self, message: &str) -> String {
        let mut out = prodready_stdx::redact::quoted(message, &self.endpoint);
        for value in self.headers.values() {
            if let Ok(value) = value.to_str()
                && value.len() >= 4
            {
                out = out.replace(value, prodready_stdx::redact::MASK);
            }
        }
        out
    }

    fn once(
        &self,
        content_type: &'static str,
        encoding: Option<&'static str>,
        body: bytes::Bytes,
        timeout: Duration,
    ) -> Result<Vec<u8>, Failure> {
        let shown = &self.shown;
        let mut request = self.client.post(&self.endpoint).header(http::header::CONTENT_TYPE, content_type);
        if let Some(encoding) = encoding {
            request = request.header(http::header::CONTENT_ENCODING, encoding);
        }
        let response = request
            // The caller's headers replace the default content type (reqwest's `headers` replaces).
            .headers(self.headers.clone())
            .timeout(timeout)
            .body(body)
            .send()
            .map_err(|e| {
                // The cause ("connection refused", "timed out") is in the error's sources; the URL is
                // the one shown, without its credentials.
                let e = prodready_stdx::error::chain(&e.without_url());
                Failure { message: format!("cannot reach {shown}: {e}"), retry: true, after: None }
            })?;
        let status = response.status();
        if status.is_redirection() {
            let location = response.headers().get(http::header::LOCATION).and_then(|v| v.to_str().ok());
            let location = prodready_stdx::redact::url(location.unwrap_or("nowhere"));
            return Err(Failure {
                message: format!(
                    "{shown} answered {status}, redirecting to {location}: spans are not posted to a redirect \
                     (set the endpoint to the final URL)"
                ),
                retry: false,
                after: None,
            });
        }
        let after = match status.as_u16() {
            429 | 503 => response.headers().get(http::header::RETRY_AFTER).and_then(retry_after),
            _ => None,
        };
        let mut answer = Vec::new();
        let read = std::io::Read::read_to_end(&mut std::io::Read::take(response, MAX_ANSWER), &mut answer);
        if status.is_success() {
            // Accepted: what could be read of the answer is all that is needed (a partial success).
            let _ = read;
            return Ok(answer);
        }
        // An OTLP error answer is a protobuf `google.rpc.Status`; others are text.
        let text = if is_binary(&answer) {
            crate::otlp::status_message(&answer).unwrap_or_default()
        } else {
            String::from_utf8_lossy(&answer).chars().take(300).collect()
        };
        let message = match text.trim() {
            "" => format!("{shown} answered {status}"),
            text => format!("{shown} answered {status}: {text}"),
        };
        Err(Failure { message, retry: matches!(status.as_u16(), 429 | 502 | 503 | 504), after })
    }
}

/// A `Retry-After` value: seconds or an HTTP date, at most ten minutes away.
fn retry_after(value: &HeaderValue) -> Option<Duration> {
    let value = value.to_str().ok()?.trim();
    let wait = match value.parse::<u64>() {
        Ok(seconds) => Duration::from_secs(seconds),
        Err(_) => {
            httpdate::parse_http_date(value).ok()?.duration_since(SystemTime::now()).unwrap_or_default()
        }
    };
    Some(wait.min(Duration::from_secs(600)))
}

/// Control characters other than white space: not text.
fn is_binary(answer: &[u8]) -> bool {
    answer.iter().any(|&b| b < 0x09 || (0x0e..0x20).contains(&b))
}

/// Up to `max`, from the clock's nanoseconds (no random number generator needed for this).
fn jitter(max: Duration) -> Duration {
    let nanos =
        SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| u64::from(d.subsec_nanos()));
    let max = u64::try_from(max.as_nanos()).unwrap_or(u64::MAX).max(1);
    Duration::from_nanos(nanos % max)
}

/// The trusted roots (none: the system's) and the client identity `tls` names, read from their files.
fn tls_parts(tls: &Tls) -> crate::Result<(Vec<reqwest::Certificate>, Option<reqwest::Identity>)> {
    let read = |path: &std::path::Path, what: &str| {
        std::fs::read(path)
            .map_err(|e| Error::Invalid(format!("{}: cannot read the {what}: {e}", path.display())))
    };
    let roots = match &tls.certificate {
        Some(path) => {
            let pem = read(path, "collector's CA certificate")?;
            let roots = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
                Error::Invalid(format!(
                    "{}: not a PEM certificate bundle (the collector's CA certificate): {}",
                    path.display(),
                    prodready_stdx::error::chain(&e)
                ))
            })?;
            if roots.is_empty() {
                return Err(Error::Invalid(format!(
                    "{}: no PEM certificate in it (the collector's CA certificate: -----BEGIN CERTIFICATE-----)",
                    path.display()
                )));
            }
            roots
        }
        None => Vec::new(),
    };
    let identity = match (&tls.client_certificate, &tls.client_key) {
        (Some(certificate), Some(key)) => {
            // reqwest takes the key and the certificate chain as one PEM.
            let mut pem = read(key, "client key")?;
            pem.push(b'\n');
            pem.extend(read(certificate, "client certificate")?);
            let identity = reqwest::Identity::from_pem(&pem).map_err(|e| {
                Error::Invalid(format!(
                    "{} and {}: not a PEM certificate and its private key: {}",
                    certificate.display(),
                    key.display(),
                    prodready_stdx::error::chain(&e)
                ))
            })?;
            Some(identity)
        }
        _ => None,
    };
    Ok((roots, identity))
}

/// A blocking HTTP client, built on a thread of its own: reqwest's blocking client starts a runtime of its
/// own, which panics when built inside an async context (`init` called from `#[tokio::main]`).
fn blocking_client(
    timeout: Duration,
    (roots, identity): (Vec<reqwest::Certificate>, Option<reqwest::Identity>),
    exporter: &'static str,
) -> crate::Result<reqwest::blocking::Client> {
    let fail = |message: String| Error::Exporter { exporter, message };
    std::thread::Builder::new()
        .name("otel-http-client".to_owned())
        .spawn(move || {
            // rustls, whatever else the dependency graph enables: the identity is a rustls one.
            let mut builder = reqwest::blocking::Client::builder().tls_backend_rustls();
            // The given roots only, as the OTLP exporters of other languages read the variable.
            if !roots.is_empty() {
                builder = builder.tls_certs_only(roots);
            }
            if let Some(identity) = identity {
                builder = builder.identity(identity);
            }
            builder
                .timeout(timeout)
                // A POST redirected becomes a GET without the spans, and the headers (an API key) would
                // go to wherever the collector points.
                .redirect(reqwest::redirect::Policy::none())
                .user_agent(concat!("prodready-tracing/", env!("CARGO_PKG_VERSION")))
                .build()
        })
        .map_err(|e| fail(e.to_string()))?
        .join()
        .map_err(|_| fail("building the HTTP client panicked".to_owned()))?
        .map_err(|e| fail(prodready_stdx::error::chain(&e)))
}
