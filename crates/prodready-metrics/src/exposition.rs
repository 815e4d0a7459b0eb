//! Prometheus exposition: a registry rendered as OpenMetrics 1.0 or as the classic text format 0.0.4,
//! chosen from the scraper's `Accept` header as Prometheus' own clients do; a tower layer recording RED
//! metrics (requests, errors, latency) per method, matched route and status class; and process metrics
//! read from `/proc`.
//!
//! ```
//! use prodready_metrics::exposition::{self, RedLayer};
//! let mut registry = prometheus_client::registry::Registry::default();
//! exposition::register_process_metrics(&mut registry);
//! // For axum, take the route from `MatchedPath`; never the raw path (its cardinality is unbounded).
//! let layer = RedLayer::new(&mut registry, |req: &http::Request<()>| {
//!     req.uri().path().starts_with("/api").then(|| "/api".to_owned())
//! });
//! let body = exposition::encode(&registry);
//! assert!(body.ends_with("# EOF\n"));
//! # let _ = layer;
//! ```

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::exemplar::HistogramWithExemplars;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;

/// The content type of [`encode`]'s output.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// The content type of [`encode_text`]'s output.
pub const TEXT_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The registry in OpenMetrics text format (ends with `# EOF`).
pub fn encode(registry: &Registry) -> String {
    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, registry).expect("writing to a String cannot fail");
    out
}

/// The registry in the classic Prometheus text format 0.0.4: what `promtool check metrics`, a
/// Pushgateway and node-exporter's textfile collector read. Counters keep their `_total` name on the
/// `HELP`/`TYPE` lines, exemplars, units, `_created` samples and `# EOF` are left out.
pub fn encode_text(registry: &Registry) -> String {
    classic::from_openmetrics(&encode(registry))
}

/// An exposition format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// OpenMetrics 1.0 ([`CONTENT_TYPE`]).
    OpenMetrics,
    /// The classic text format 0.0.4 ([`TEXT_CONTENT_TYPE`]).
    Text,
}

impl Format {
    /// The format for a scrape with this `Accept` header: OpenMetrics when it names
    /// `application/openmetrics-text`, the classic format otherwise (also when there is no header).
    pub fn negotiate(accept: Option<&str>) -> Self {
        let wants_openmetrics = accept.is_some_and(|a| {
            a.split(',').any(|range| {
                let mut parts = range.split(';').map(str::trim);
                let media = parts.next().unwrap_or_default();
                let refused = parts.any(|p| p.replace(' ', "") == "q=0");
                media.eq_ignore_ascii_case("application/openmetrics-text") && !refused
            })
        });
        if wants_openmetrics { Self::OpenMetrics } else { Self::Text }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Self::OpenMetrics => CONTENT_TYPE,
            Self::Text => TEXT_CONTENT_TYPE,
        }
    }

    /// `registry` in this format.
    pub fn encode(self, registry: &Registry) -> String {
        match self {
            Self::OpenMetrics => encode(registry),
            Self::Text => encode_text(registry),
        }
    }
}

mod classic;

type Labels = Vec<(String, String)>;

/// Latency buckets (seconds) covering fast APIs to slow pages.
const BUCKETS: [f64; 12] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

/// A tower layer recording `http_requests_total` and `http_request_duration_seconds` by `method`,
/// `route` and `status` class (`2xx`, `5xx`, ...).
#[derive(Clone)]
pub struct RedLayer<F> {
    requests: Family<Labels, Counter>,
    duration: Family<Labels, HistogramWithExemplars<Labels>>,
    route_of: Arc<F>,
    exemplar: Option<fn() -> Option<String>>,
}

impl<F> std::fmt::Debug for RedLayer<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedLayer").finish_non_exhaustive()
    }
}

impl<F> RedLayer<F> {
    /// Registers the two metrics in `registry`. `route_of` names the matched route of a request; `None`
    /// is recorded as `unmatched` (the raw path is never used: its cardinality is unbounded).
    pub fn new<B>(registry: &mut Registry, route_of: F) -> Self
    where
        F: Fn(&http::Request<B>) -> Option<String>,
    {
        let requests = Family::<Labels, Counter>::default();
        let duration = Family::<Labels, HistogramWithExemplars<Labels>>::new_with_constructor(|| {
            HistogramWithExemplars::new(BUCKETS.into_iter())
        });
        let name = crate::names::HTTP_REQUESTS_TOTAL.trim_end_matches("_total");
        registry.register(
            name,
            "HTTP requests served, by method, matched route and status class",
            requests.clone(),
        );
        registry.register(
            crate::names::HTTP_REQUEST_DURATION_SECONDS,
            "HTTP request latency in seconds, by method, matched route and status class",
            duration.clone(),
        );
        Self { requests, duration, route_of: Arc::new(route_of), exemplar: None }
    }

    /// Attaches an exemplar to each latency observation: `trace_id` gives the trace id of the request
    /// being served (read when the request arrives, e.g. `prodready_tracing::current_trace_id`), shown
    /// as `trace_id` in OpenMetrics (the classic format has no exemplars).
    #[must_use]
    pub fn with_exemplars(mut self, trace_id: fn() -> Option<String>) -> Self {
        self.exemplar = Some(trace_id);
        self
    }
}

impl<S, F> tower_layer::Layer<S> for RedLayer<F> {
    type Service = RedService<S, F>;

    fn layer(&self, inner: S) -> Self::Service {
        RedService {
            inner,
            layer: RedLayer {
                requests: self.requests.clone(),
                duration: self.duration.clone(),
                route_of: self.route_of.clone(),
                exemplar: self.exemplar,
            },
        }
    }
}

/// The service [`RedLayer`] wraps around yours.
#[derive(Clone)]
pub struct RedService<S, F> {
    inner: S,
    layer: RedLayer<F>,
}

impl<S, F> std::fmt::Debug for RedService<S, F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedService").finish_non_exhaustive()
    }
}

impl<S, F, B, R> tower_service::Service<http::Request<B>> for RedService<S, F>
where
    S: tower_service::Service<http::Request<B>, Response = http::Response<R>>,
    S::Future: Send + 'static,
    F: Fn(&http::Request<B>) -> Option<String>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let method = request.method().as_str().to_owned();
        let route = (self.layer.route_of)(&request).unwrap_or_else(|| "unmatched".to_owned());
        let (requests, duration) = (self.layer.requests.clone(), self.layer.duration.clone());
        let exemplar =
            self.layer.exemplar.and_then(|trace_id| trace_id()).map(|id| vec![("trace_id".to_owned(), id)]);
        let started = Instant::now();
        let future = self.inner.call(request);
        Box::pin(async move {
            let result = future.await;
            // An error from the inner service is a failed request too.
            let class = match &result {
                Ok(response) => format!("{}xx", response.status().as_u16() / 100),
                Err(_) => "5xx".to_owned(),
            };
            let labels = vec![
                ("method".to_owned(), method),
                ("route".to_owned(), route),
                ("status".to_owned(), class),
            ];
            requests.get_or_create(&labels).inc();
            duration.get_or_create(&labels).observe(started.elapsed().as_secs_f64(), exemplar, None);
            result
        })
    }
}

/// Registers `process_cpu_seconds_total`, `process_resident_memory_bytes`, `process_open_fds`,
/// `process_max_fds` and `process_start_time_seconds`, read from `/proc/self` at each scrape (Linux).
pub fn register_process_metrics(registry: &mut Registry) {
    registry.register_collector(Box::new(ProcessCollector));
}

#[derive(Debug)]
struct ProcessCollector;

/// What /proc says about this process.
struct ProcessStats {
    cpu_seconds: f64,
    resident_bytes: f64,
    start_time_seconds: f64,
    open_fds: f64,
    max_fds: f64,
}

fn process_stats() -> Option<ProcessStats> {
    const TICKS: f64 = 100.0; // USER_HZ on Linux
    const PAGE: f64 = 4096.0;
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may contain spaces) start after the last ')'.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let num = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok());
    let (utime, stime, start_ticks, rss_pages) = (num(11)?, num(12)?, num(19)?, num(21)?);
    let boot = std::fs::read_to_string("/proc/stat")
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("btime ").and_then(|v| v.trim().parse::<f64>().ok()))?;
    #[allow(clippy::cast_precision_loss)]
    let open_fds = std::fs::read_dir("/proc/self/fd").map(|d| d.count()).unwrap_or(0) as f64;
    let max_fds = std::fs::read_to_string("/proc/self/limits")
        .ok()?
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3).and_then(|v| v.parse::<f64>().ok()))
        .unwrap_or(-1.0);
    Some(ProcessStats {
        cpu_seconds: (utime + stime) / TICKS,
        resident_bytes: rss_pages * PAGE,
        start_time_seconds: boot + start_ticks / TICKS,
        open_fds,
        max_fds,
    })
}

impl prometheus_client::collector::Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let Some(s) = process_stats() else { return Ok(()) };
        let cpu = encoder.encode_descriptor(
            "process_cpu_seconds",
            "CPU time used, user and system",
            None,
            MetricType::Counter,
        )?;
        ConstCounter::new(s.cpu_seconds).encode(cpu)?;
        let gauges = [
            ("process_resident_memory_bytes", "Resident memory in bytes", s.resident_bytes),
            (
                "process_start_time_seconds",
                "Start time of the process since the epoch, in seconds",
                s.start_time_seconds,
            ),
            ("process_open_fds", "Open file descriptors", s.open_fds),
            ("process_max_fds", "File descriptor limit", s.max_fds),
        ];
        for (name, help, value) in gauges {
            ConstGauge::new(value).encode(encoder.encode_descriptor(
                name,
                help,
                None,
                MetricType::Gauge,
            )?)?;
        }
        Ok(())
    }
}

/// The `/metrics` endpoint as a tower service: a request whose `Accept` header names
/// `application/openmetrics-text` gets OpenMetrics ([`CONTENT_TYPE`]), any other the classic text
/// format ([`TEXT_CONTENT_TYPE`]) — see [`Format::negotiate`]. Mount it with your router
/// (`axum::Router::route_service("/metrics", ...)`).
#[derive(Clone)]
pub struct MetricsService {
    registry: Arc<std::sync::Mutex<Registry>>,
}

impl std::fmt::Debug for MetricsService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsService").finish_non_exhaustive()
    }
}

impl MetricsService {
    pub fn new(registry: Arc<std::sync::Mutex<Registry>>) -> Self {
        Self { registry }
    }
}

impl<B> tower_service::Service<http::Request<B>> for MetricsService {
    type Response = http::Response<String>;
    type Error = std::convert::Infallible;
    type Future = std::future::Ready<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let accept = request.headers().get(http::header::ACCEPT).and_then(|v| v.to_str().ok());
        let format = Format::negotiate(accept);
        let body = format.encode(&self.registry.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
        let response = http::Response::builder()
            .header(http::header::CONTENT_TYPE, format.content_type())
            .body(body)
            .expect("a static header is valid");
        std::future::ready(Ok(response))
    }
}
