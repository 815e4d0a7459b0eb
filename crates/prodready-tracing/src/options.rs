//! What [`crate::init`] sets up, and how the `OTEL_*` variables change it.

use std::path::PathBuf;
use std::time::Duration;

use crate::{Error, Result};

/// Where OTLP goes when nothing says otherwise (http/protobuf; `/v1/traces` is appended).
pub const DEFAULT_OTLP_ENDPOINT: &str = "http://localhost:4318";
/// The gRPC default.
pub const DEFAULT_OTLP_GRPC_ENDPOINT: &str = "http://localhost:4317";
/// Where Zipkin spans go when nothing says otherwise.
pub const DEFAULT_ZIPKIN_ENDPOINT: &str = "http://localhost:9411/api/v2/spans";

/// The OTLP transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Protocol {
    /// `http/protobuf` (the default): a blocking HTTP client on the batch thread.
    #[default]
    HttpProtobuf,
    /// `grpc` (feature `grpc`).
    Grpc,
}

/// Where spans go.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Exporter {
    /// OTLP. For http/protobuf, an `endpoint` without a path (`http://collector:4318`) gets `/v1/traces`;
    /// one with a path, `/` included (`http://collector:4318/`, `https://gw/otlp/traces`), is used as is.
    /// [`Options::from_env`] resolves `OTEL_EXPORTER_OTLP_ENDPOINT` (a base: `v1/traces` goes below its
    /// path) and `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` (used as is, `/` when it has no path) to that form.
    Otlp { endpoint: String, protocol: Protocol, headers: Vec<(String, String)> },
    /// Zipkin's v2 JSON API: the full spans URL (`http://host:9411/api/v2/spans`).
    Zipkin { endpoint: String },
    /// No export (tracing off: spans still carry ids for log correlation).
    None,
}

/// How OTLP request bodies are compressed (`OTEL_EXPORTER_OTLP_COMPRESSION`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Compression {
    #[default]
    None,
    /// `Content-Encoding: gzip` over http/protobuf, gzip message compression over gRPC.
    Gzip,
}

/// PEM files for a collector behind TLS, read by [`crate::init`] and [`crate::ping`]: for OTLP over
/// http/protobuf ([`Options::from_env`] takes them from `OTEL_EXPORTER_OTLP_CERTIFICATE`,
/// `..._CLIENT_CERTIFICATE`, `..._CLIENT_KEY` for that exporter only) and for Zipkin when set in code;
/// refused with gRPC.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Tls {
    /// The certificates trusted to sign the collector's certificate, instead of the system's roots.
    pub certificate: Option<PathBuf>,
    /// This client's certificate (chain), for a collector that asks for one (mutual TLS).
    pub client_certificate: Option<PathBuf>,
    /// The private key of `client_certificate`.
    pub client_key: Option<PathBuf>,
}

/// The largest span queue [`Options::validate`] accepts (the SDK allocates it whole at start).
pub const MAX_QUEUE_SIZE: usize = 1 << 20;

/// The batch span processor (`OTEL_BSP_*`): spans wait in a queue of `max_queue_size` (dropped, and
/// counted, when it is full) and leave in batches of at most `max_export_batch_size`, at least every
/// `schedule_delay`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Batch {
    pub max_queue_size: usize,
    pub schedule_delay: Duration,
    pub max_export_batch_size: usize,
}

impl Default for Batch {
    /// The specification's defaults: 2,048 spans, 5 s, 512 spans.
    fn default() -> Self {
        Self { max_queue_size: 2048, schedule_delay: Duration::from_secs(5), max_export_batch_size: 512 }
    }
}

/// How much one span keeps (`OTEL_SPAN_*_COUNT_LIMIT`, `OTEL_EVENT_ATTRIBUTE_COUNT_LIMIT`,
/// `OTEL_LINK_ATTRIBUTE_COUNT_LIMIT`, `OTEL_ATTRIBUTE_COUNT_LIMIT`); what is over is dropped and counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    pub attributes_per_span: u32,
    pub events_per_span: u32,
    pub links_per_span: u32,
    pub attributes_per_event: u32,
    pub attributes_per_link: u32,
}

impl Default for Limits {
    /// The specification's defaults: 128 of each.
    fn default() -> Self {
        Self {
            attributes_per_span: 128,
            events_per_span: 128,
            links_per_span: 128,
            attributes_per_event: 128,
            attributes_per_link: 128,
        }
    }
}

/// How root spans are sampled; children always follow their parent's decision unless `ParentBased` is
/// off (the `always_*`/`traceidratio` samplers of the specification).
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum Sampler {
    /// Keep this share (0.0–1.0) of new traces; children follow their parent.
    ParentBasedRatio(f64),
    /// Keep this share of every span's trace id, ignoring the parent.
    Ratio(f64),
    AlwaysOn,
    AlwaysOff,
}

/// The propagators [`crate::init`] installs globally (what [`crate::inject`] writes and [`crate::extract`]
/// reads): W3C trace context and W3C baggage, one of them, or none (`OTEL_PROPAGATORS`). [`crate::layer`]'s
/// server layer reads `traceparent` itself, whatever is installed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Propagators {
    pub trace_context: bool,
    pub baggage: bool,
}

impl Default for Propagators {
    /// Both, as the specification's default `tracecontext,baggage`.
    fn default() -> Self {
        Self { trace_context: true, baggage: true }
    }
}

/// Everything [`crate::init`] needs.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Options {
    pub service_name: String,
    pub service_version: Option<String>,
    /// `deployment.environment.name` (`production`, `staging`).
    pub environment: Option<String>,
    /// More resource attributes.
    pub resource: Vec<(String, String)>,
    pub exporter: Exporter,
    pub sampler: Sampler,
    /// How long one export may take.
    pub export_timeout: Duration,
    /// How long dropping the [`crate::Guard`] may take to flush and shut down.
    pub shutdown_timeout: Duration,
    /// OTLP body compression.
    pub compression: Compression,
    /// Certificates for a collector behind TLS.
    pub tls: Tls,
    /// The batch span processor's queue and batches.
    pub batch: Batch,
    /// What one span keeps.
    pub limits: Limits,
    /// The propagators installed globally.
    pub propagators: Propagators,
}

impl Options {
    /// A service exporting OTLP over http/protobuf to [`DEFAULT_OTLP_ENDPOINT`], all traces sampled.
    pub fn new(service_name: impl Into<String>) -> Self {
        Self {
            service_name: service_name.into(),
            service_version: None,
            environment: None,
            resource: Vec::new(),
            exporter: Exporter::Otlp {
                endpoint: DEFAULT_OTLP_ENDPOINT.to_owned(),
                protocol: Protocol::HttpProtobuf,
                headers: Vec::new(),
            },
            sampler: Sampler::ParentBasedRatio(1.0),
            export_timeout: Duration::from_secs(10),
            shutdown_timeout: Duration::from_secs(5),
            compression: Compression::None,
            tls: Tls::default(),
            batch: Batch::default(),
            limits: Limits::default(),
            propagators: Propagators::default(),
        }
    }

    /// Applies the `OTEL_*` variables the specification defines for traces, read through `lookup` (pass
    /// `|name| std::env::var(name).ok()` to use the process environment): `OTEL_SDK_DISABLED`,
    /// `OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_TRACES_EXPORTER` (`otlp`, `zipkin`, `none`),
    /// `OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT`, `..._PROTOCOL` (`http/protobuf`, `grpc`), `..._HEADERS`,
    /// `..._TIMEOUT` (milliseconds), `..._COMPRESSION` (`gzip`, `none`), `..._CERTIFICATE`,
    /// `..._CLIENT_CERTIFICATE`, `..._CLIENT_KEY` (paths of PEM files), `OTEL_EXPORTER_ZIPKIN_ENDPOINT`, `OTEL_EXPORTER_ZIPKIN_TIMEOUT`,
    /// `OTEL_TRACES_SAMPLER`, `OTEL_TRACES_SAMPLER_ARG`, `OTEL_BSP_MAX_QUEUE_SIZE`,
    /// `OTEL_BSP_SCHEDULE_DELAY` (milliseconds), `OTEL_BSP_MAX_EXPORT_BATCH_SIZE`, the count limits
    /// of [`Limits`] and `OTEL_PROPAGATORS` (`tracecontext`, `baggage`, `none`; another propagator is
    /// left out with a warning, as the specification asks). A variable that is set wins over `self`. Nothing else reads them: [`crate::init`]
    /// gives the SDK every value, so the SDK's own reading of the environment changes nothing.
    pub fn from_env(mut self, lookup: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let get = |name: &str| lookup(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        if let Some(attributes) = get("OTEL_RESOURCE_ATTRIBUTES") {
            for pair in attributes.split(',').filter(|p| !p.trim().is_empty()) {
                let Some((key, value)) = pair.split_once('=') else {
                    return Err(Error::Invalid(format!(
                        "OTEL_RESOURCE_ATTRIBUTES: `{pair}` is not key=value (write key1=value1,key2=value2)"
                    )));
                };
                let (key, value) = (key.trim(), prodready_stdx::text::percent_decode(value.trim()));
                match key {
                    "service.name" => self.service_name = value,
                    "service.version" => self.service_version = Some(value),
                    "deployment.environment.name" | "deployment.environment" => {
                        self.environment = Some(value);
                    }
                    _ => self.resource.push((key.to_owned(), value)),
                }
            }
        }
        if let Some(name) = get("OTEL_SERVICE_NAME") {
            self.service_name = name;
        }
        if let Some(list) = get("OTEL_PROPAGATORS") {
            let mut propagators = Propagators { trace_context: false, baggage: false };
            for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
                match name {
                    "tracecontext" => propagators.trace_context = true,
                    "baggage" => propagators.baggage = true,
                    "none" => {}
                    // As the specification asks of an unknown value: a warning, and the others still apply.
                    other => tracing::warn!(
                        propagator = other,
                        "OTEL_PROPAGATORS: `{other}` is not supported here (tracecontext, baggage, none); left out"
                    ),
                }
            }
            self.propagators = propagators;
        }
        let exporter = get("OTEL_TRACES_EXPORTER");
        // The per-signal variable wins over the general one, as for every OTLP setting; with its name, for
        // the error about its value.
        let otlp = |name: &str| {
            let signal = format!("OTEL_EXPORTER_OTLP_TRACES_{name}");
            let general = format!("OTEL_EXPORTER_OTLP_{name}");
            get(&signal).map(|v| (signal, v)).or_else(|| get(&general).map(|v| (general, v)))
        };
        let protocol = otlp("PROTOCOL");
        let otlp_signal = get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT");
        let otlp_base = get("OTEL_EXPORTER_OTLP_ENDPOINT");
        let headers = otlp("HEADERS");
        let otlp_timeout = otlp("TIMEOUT");
        if let Some((name, compression)) = otlp("COMPRESSION") {
            self.compression = match compression.as_str() {
                "gzip" => Compression::Gzip,
                "none" => Compression::None,
                other => {
                    return Err(Error::Invalid(format!("{name}: `{other}` is not supported (gzip or none)")));
                }
            };
        }
        let tls_files = [otlp("CERTIFICATE"), otlp("CLIENT_CERTIFICATE"), otlp("CLIENT_KEY")];
        match exporter.as_deref() {
            None => {}
            Some("otlp") if !matches!(self.exporter, Exporter::Otlp { .. }) => {
                self.exporter = Options::new("").exporter;
            }
            Some("otlp") => {}
            Some("zipkin") => {
                self.exporter = Exporter::Zipkin { endpoint: DEFAULT_ZIPKIN_ENDPOINT.to_owned() };
            }
            Some("none") => self.exporter = Exporter::None,
            Some(other) => {
                return Err(Error::Invalid(format!(
                    "OTEL_TRACES_EXPORTER: `{other}` is not supported (otlp, zipkin or none)"
                )));
            }
        }
        if let Exporter::Otlp { endpoint, protocol: current, headers: current_headers } = &mut self.exporter {
            if let Some((name, p)) = protocol {
                *current = match p.as_str() {
                    "http/protobuf" => Protocol::HttpProtobuf,
                    "grpc" => Protocol::Grpc,
                    other => {
                        return Err(Error::Invalid(format!(
                            "{name}: `{other}` is not supported (http/protobuf or grpc)"
                        )));
                    }
                };
                if *current == Protocol::Grpc && *endpoint == DEFAULT_OTLP_ENDPOINT {
                    DEFAULT_OTLP_GRPC_ENDPOINT.clone_into(endpoint);
                }
            }
            match (otlp_signal, otlp_base) {
                // The per-signal variable is the full URL, used as is.
                (Some(url), _) => *endpoint = signal_url(&url),
                (None, Some(url)) => *endpoint = base_url(&url, *current),
                (None, None) => {}
            }
            if let Some((name, headers)) = headers {
                for pair in headers.split(',').filter(|p| !p.trim().is_empty()) {
                    let Some((key, value)) = pair.split_once('=') else {
                        return Err(Error::Invalid(format!(
                            "{name}: write key1=value1,key2=value2 (the value is not shown)"
                        )));
                    };
                    current_headers
                        .push((key.trim().to_owned(), prodready_stdx::text::percent_decode(value.trim())));
                }
            }
        }
        // The OTLP TLS files configure the OTLP exporter over http/protobuf only: not Zipkin (they would
        // trust only the OTLP collector's CA and show its client certificate to another server), not
        // gRPC (set for other signals, they must not stop a plaintext gRPC exporter from starting).
        if matches!(self.exporter, Exporter::Otlp { protocol: Protocol::HttpProtobuf, .. }) {
            let tls = &mut self.tls;
            let files = [&mut tls.certificate, &mut tls.client_certificate, &mut tls.client_key];
            for (value, file) in tls_files.into_iter().zip(files) {
                if let Some((_, path)) = value {
                    *file = Some(PathBuf::from(path));
                }
            }
        }
        if let Exporter::Zipkin { endpoint } = &mut self.exporter
            && let Some(url) = get("OTEL_EXPORTER_ZIPKIN_ENDPOINT")
        {
            *endpoint = url;
        }
        let timeout = match &self.exporter {
            Exporter::Zipkin { .. } => {
                get("OTEL_EXPORTER_ZIPKIN_TIMEOUT").map(|t| ("OTEL_EXPORTER_ZIPKIN_TIMEOUT".to_owned(), t))
            }
            _ => otlp_timeout,
        };
        if let Some((name, ms)) = timeout {
            let ms: u64 = ms
                .parse()
                .map_err(|_| Error::Invalid(format!("{name}: `{ms}` is not a number of milliseconds")))?;
            self.export_timeout = Duration::from_millis(ms);
        }
        let arg = get("OTEL_TRACES_SAMPLER_ARG");
        let ratio = |default: f64| -> Result<f64> {
            match &arg {
                None => Ok(default),
                Some(a) => a.parse::<f64>().map_err(|_| {
                    Error::Invalid(format!("OTEL_TRACES_SAMPLER_ARG: `{a}` is not a number from 0 to 1"))
                }),
            }
        };
        if let Some(sampler) = get("OTEL_TRACES_SAMPLER") {
            self.sampler = match sampler.as_str() {
                "always_on" => Sampler::AlwaysOn,
                "always_off" => Sampler::AlwaysOff,
                "traceidratio" => Sampler::Ratio(ratio(1.0)?),
                "parentbased_always_on" => Sampler::ParentBasedRatio(1.0),
                "parentbased_always_off" => Sampler::ParentBasedRatio(0.0),
                "parentbased_traceidratio" => Sampler::ParentBasedRatio(ratio(1.0)?),
                other => {
                    return Err(Error::Invalid(format!(
                        "OTEL_TRACES_SAMPLER: `{other}` is not supported (always_on, always_off, traceidratio, \
                         parentbased_always_on, parentbased_always_off, parentbased_traceidratio)"
                    )));
                }
            };
        }
        let number = |name: &str| -> Result<Option<u64>> {
            get(name)
                .map(|v| {
                    v.parse::<u64>()
                        .map_err(|_| Error::Invalid(format!("{name}: `{v}` is not a whole number")))
                })
                .transpose()
        };
        let size = |name: &str| number(name).map(|n| n.map(|n| usize::try_from(n).unwrap_or(usize::MAX)));
        let count = |name: &str, fallback: Option<u32>| -> Result<Option<u32>> {
            Ok(number(name)?.map(|n| u32::try_from(n).unwrap_or(u32::MAX)).or(fallback))
        };
        if let Some(n) = size("OTEL_BSP_MAX_QUEUE_SIZE")? {
            self.batch.max_queue_size = n;
        }
        if let Some(n) = size("OTEL_BSP_MAX_EXPORT_BATCH_SIZE")? {
            self.batch.max_export_batch_size = n;
        }
        // A batch is never larger than the queue (the specification's rule, as the SDKs apply it): a
        // small queue alone brings the batch size down with it.
        self.batch.max_export_batch_size = self.batch.max_export_batch_size.min(self.batch.max_queue_size);
        if let Some(ms) = number("OTEL_BSP_SCHEDULE_DELAY")? {
            self.batch.schedule_delay = Duration::from_millis(ms);
        }
        let general = count("OTEL_ATTRIBUTE_COUNT_LIMIT", None)?;
        let limits = &mut self.limits;
        for (name, fallback, limit) in [
            ("OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT", general, &mut limits.attributes_per_span),
            ("OTEL_SPAN_EVENT_COUNT_LIMIT", None, &mut limits.events_per_span),
            ("OTEL_SPAN_LINK_COUNT_LIMIT", None, &mut limits.links_per_span),
            ("OTEL_EVENT_ATTRIBUTE_COUNT_LIMIT", general, &mut limits.attributes_per_event),
            ("OTEL_LINK_ATTRIBUTE_COUNT_LIMIT", general, &mut limits.attributes_per_link),
        ] {
            if let Some(n) = count(name, fallback)? {
                *limit = n;
            }
        }
        if get("OTEL_SDK_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
            self.exporter = Exporter::None;
        }
        self.validate()?;
        Ok(self)
    }

    /// Checks the endpoint URL and the sampling ratio.
    pub fn validate(&self) -> Result<()> {
        if let Sampler::ParentBasedRatio(r) | Sampler::Ratio(r) = self.sampler
            && !(0.0..=1.0).contains(&r)
        {
            return Err(Error::Invalid(format!("the sampling ratio must be from 0 to 1, not {r}")));
        }
        if self.service_name.trim().is_empty() {
            return Err(Error::Invalid("the service name is empty".to_owned()));
        }
        if matches!(self.exporter, Exporter::Otlp { protocol: Protocol::Grpc, .. })
            && self.tls != Tls::default()
        {
            return Err(Error::Invalid(
                "OTEL_EXPORTER_OTLP_CERTIFICATE and the client certificate and key are supported over \
                 http/protobuf, not gRPC (use http/protobuf, port 4318, or a collector without TLS)"
                    .to_owned(),
            ));
        }
        let Batch { max_queue_size, max_export_batch_size, schedule_delay } = self.batch;
        // The SDK allocates the whole queue at start: a bound keeps a typo from taking the memory.
        if !(1..=MAX_QUEUE_SIZE).contains(&max_queue_size) {
            return Err(Error::Invalid(format!(
                "the span queue size ({max_queue_size}, OTEL_BSP_MAX_QUEUE_SIZE) must be from 1 to {MAX_QUEUE_SIZE}"
            )));
        }
        if max_export_batch_size == 0 || max_export_batch_size > max_queue_size {
            return Err(Error::Invalid(format!(
                "the batch size ({max_export_batch_size}, OTEL_BSP_MAX_EXPORT_BATCH_SIZE) must be from 1 to the \
                 queue size ({max_queue_size}, OTEL_BSP_MAX_QUEUE_SIZE)"
            )));
        }
        // A zero delay would make the batch thread spin.
        if schedule_delay < Duration::from_millis(1) {
            return Err(Error::Invalid(
                "the batch delay (OTEL_BSP_SCHEDULE_DELAY) must be at least 1 millisecond".to_owned(),
            ));
        }
        if self.tls.client_certificate.is_some() != self.tls.client_key.is_some() {
            return Err(Error::Invalid(
                "a client certificate needs its key, and a key its certificate \
                 (OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE with OTEL_EXPORTER_OTLP_CLIENT_KEY)"
                    .to_owned(),
            ));
        }
        match &self.exporter {
            Exporter::Otlp { endpoint, .. } => check_url(endpoint, "http://127.0.0.1:4318"),
            Exporter::Zipkin { endpoint } => check_url(endpoint, "http://127.0.0.1:9411/api/v2/spans"),
            Exporter::None => Ok(()),
        }
    }

    /// The URL spans are sent to (for messages): `/v1/traces` added to a bare OTLP/HTTP base URL.
    pub fn export_url(&self) -> Option<String> {
        match &self.exporter {
            Exporter::Otlp { endpoint, protocol: Protocol::HttpProtobuf, .. } => {
                Some(otlp_traces_url(endpoint))
            }
            Exporter::Otlp { endpoint, .. } | Exporter::Zipkin { endpoint } => Some(endpoint.clone()),
            Exporter::None => None,
        }
    }
}

/// A per-signal endpoint, used as is: without a path, its path is `/` (as the specification says), which
/// [`otlp_traces_url`] leaves alone.
fn signal_url(url: &str) -> String {
    if has_path(url) { url.to_owned() } else { format!("{}/", url.trim_end_matches('/')) }
}

/// `OTEL_EXPORTER_OTLP_ENDPOINT` is a base URL: for http/protobuf `v1/traces` goes below its path, also
/// when it has one (`http://c:4318/mycollector/` sends to `http://c:4318/mycollector/v1/traces`); gRPC
/// takes it as is.
fn base_url(url: &str, protocol: Protocol) -> String {
    if protocol == Protocol::HttpProtobuf && has_path(url) {
        format!("{}/v1/traces", url.trim_end_matches('/'))
    } else {
        url.to_owned()
    }
}

/// `/v1/traces` appended when the URL has no path (as `OTEL_EXPORTER_OTLP_ENDPOINT` is read).
pub(crate) fn otlp_traces_url(endpoint: &str) -> String {
    if has_path(endpoint) {
        endpoint.to_owned()
    } else {
        format!("{}/v1/traces", endpoint.trim_end_matches('/'))
    }
}

/// Whether the URL has a path, `/` included.
fn has_path(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    rest.contains('/')
}

/// Checks an endpoint URL; `example` is one for its exporter, shown in the error.
fn check_url(url: &str, example: &str) -> Result<()> {
    let parsed: http::Uri = url.parse().map_err(|e| {
        Error::Invalid(format!("the endpoint `{url}` is not a URL: {e} (write e.g. {example})"))
    })?;
    match parsed.scheme_str() {
        Some("http" | "https") if parsed.host().is_some() => Ok(()),
        _ => Err(Error::Invalid(format!(
            "the endpoint `{url}` needs an http:// or https:// scheme and a host (write e.g. {example})"
        ))),
    }
}
