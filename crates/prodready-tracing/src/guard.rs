//! [`init`] and the [`Guard`] that shuts tracing down.

use std::time::Duration;

use opentelemetry::KeyValue;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{BatchConfigBuilder, BatchSpanProcessor, SdkTracer, SdkTracerProvider};

use crate::options::{Batch, Exporter, Options, Protocol, Sampler};
use crate::{Error, Result};

/// Keeps tracing running; dropping it flushes what is queued and shuts the exporter down, waiting at
/// most [`Options::shutdown_timeout`] (on a thread of its own, so it cannot block a runtime's worker or
/// hang the process when the collector is gone).
#[derive(Debug)]
pub struct Guard {
    provider: SdkTracerProvider,
    /// Where spans go (as configured: messages show it through `rejected`).
    endpoint: String,
    shutdown_timeout: Duration,
    done: bool,
    /// The gRPC exporter's own runtime (its channel's tasks run there, whatever runtime the caller uses).
    runtime: Option<Runtime>,
}

#[cfg(feature = "grpc")]
type Runtime = tokio::runtime::Runtime;
#[cfg(not(feature = "grpc"))]
type Runtime = std::convert::Infallible;

/// Sets tracing up: the exporter [`Options::exporter`] names behind a batch processor, the resource, the
/// sampler, and — globally, since that is what propagation and `opentelemetry::global::tracer` read — the
/// tracer provider and the propagators of [`Options::propagators`] (W3C trace context and baggage by default).
pub fn init(options: &Options) -> Result<Guard> {
    options.validate()?;
    let (provider, runtime) = provider(options)?;
    opentelemetry::global::set_text_map_propagator(crate::propagation::propagator_for(options.propagators));
    opentelemetry::global::set_tracer_provider(provider.clone());
    let endpoint = options.export_url().unwrap_or_default();
    Ok(Guard { provider, endpoint, shutdown_timeout: options.shutdown_timeout, done: false, runtime })
}

impl Guard {
    /// A tracer of this provider.
    pub fn tracer(&self, name: &'static str) -> SdkTracer {
        self.provider.tracer(name)
    }

    /// The provider, for callers that build more on it.
    pub fn provider(&self) -> &SdkTracerProvider {
        &self.provider
    }

    /// A `tracing` layer that turns spans into OpenTelemetry spans of this provider; add it to your
    /// subscriber (with the logging crate's layer, log lines then carry the trace id).
    pub fn layer<S>(&self, name: &'static str) -> tracing_opentelemetry::OpenTelemetryLayer<S, SdkTracer>
    where
        S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    {
        tracing_opentelemetry::layer().with_tracer(self.tracer(name))
    }

    /// Exports what is queued now; an error says why the collector did not take it.
    pub fn flush(&self) -> Result<()> {
        self.provider.force_flush().map_err(|e| rejected(&self.endpoint, e))
    }

    /// Flushes and shuts down within the deadline; what [`Drop`] does, with the outcome.
    pub fn shutdown(mut self) -> Result<()> {
        self.done = true;
        let outcome = shutdown_within(self.provider.clone(), self.shutdown_timeout, &self.endpoint);
        self.stop_runtime();
        outcome
    }

    fn stop_runtime(&mut self) {
        #[cfg(feature = "grpc")]
        if let Some(runtime) = self.runtime.take() {
            // Never blocks, and is allowed inside another runtime's context.
            runtime.shutdown_background();
        }
        #[cfg(not(feature = "grpc"))]
        let _ = self.runtime.take();
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if !self.done {
            let _ = shutdown_within(self.provider.clone(), self.shutdown_timeout, &self.endpoint);
            self.stop_runtime();
        }
    }
}

/// The collector at `endpoint` did not take spans: the error shows the endpoint and the exporter's
/// message with the endpoint's credentials masked (an exporter's message may quote the URL).
pub(crate) fn rejected(endpoint: &str, message: impl std::fmt::Display) -> Error {
    Error::Rejected {
        endpoint: prodready_stdx::redact::url(endpoint),
        message: prodready_stdx::redact::quoted(&message.to_string(), endpoint),
    }
}

fn shutdown_within(provider: SdkTracerProvider, timeout: Duration, endpoint: &str) -> Result<()> {
    let (tx, rx) = std::sync::mpsc::channel();
    let spawned = std::thread::Builder::new().name("otel-shutdown".to_owned()).spawn(move || {
        // Flushing first delivers what is queued through the exporter's normal path (the gRPC
        // exporter's shutdown path alone can leave the last batch behind).
        // Its outcome is the one to report: a refused last batch leaves nothing for shutdown to fail on.
        let flushed = provider.force_flush();
        let _ = tx.send(flushed.and(provider.shutdown_with_timeout(timeout)));
    });
    if spawned.is_err() {
        return Err(rejected(endpoint, "cannot start the shutdown thread"));
    }
    // A little more than the deadline the provider was given, then the process moves on regardless.
    match rx.recv_timeout(timeout + Duration::from_millis(250)) {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(rejected(endpoint, e)),
        Err(_) => Err(rejected(endpoint, format!("spans not delivered within {} ms", timeout.as_millis()))),
    }
}

pub(crate) fn resource(options: &Options) -> Resource {
    let mut attributes = vec![KeyValue::new("service.name", options.service_name.clone())];
    if let Some(version) = &options.service_version {
        attributes.push(KeyValue::new("service.version", version.clone()));
    }
    if let Some(environment) = &options.environment {
        attributes.push(KeyValue::new("deployment.environment.name", environment.clone()));
    }
    if let Some(host) = hostname() {
        attributes.push(KeyValue::new("host.name", host));
    }
    attributes.push(KeyValue::new("process.pid", i64::from(std::process::id())));
    attributes.push(KeyValue::new("process.runtime.name", "rust"));
    attributes.extend(options.resource.iter().map(|(k, v)| KeyValue::new(k.clone(), v.clone())));
    // Not `Resource::builder()`: its detectors read OTEL_* variables behind the caller's back.
    Resource::builder_empty()
        .with_detector(Box::new(opentelemetry_sdk::resource::TelemetryResourceDetector))
        .with_attributes(attributes)
        .build()
}

fn hostname() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
}

pub(crate) fn sampler(options: &Options) -> opentelemetry_sdk::trace::Sampler {
    use opentelemetry_sdk::trace::Sampler as S;
    match options.sampler {
        Sampler::ParentBasedRatio(r) => S::ParentBased(Box::new(S::TraceIdRatioBased(r))),
        Sampler::Ratio(r) => S::TraceIdRatioBased(r),
        Sampler::AlwaysOn => S::AlwaysOn,
        Sampler::AlwaysOff => S::AlwaysOff,
    }
}

fn provider(options: &Options) -> Result<(SdkTracerProvider, Option<Runtime>)> {
    // Every setting the SDK would otherwise take from the environment is given here (its defaults
    // read OTEL_SPAN_*_LIMIT, OTEL_TRACES_SAMPLER and OTEL_BSP_*): only `Options::from_env` reads them.
    let limits = &options.limits;
    let builder = SdkTracerProvider::builder()
        .with_resource(resource(options))
        .with_sampler(sampler(options))
        .with_max_attributes_per_span(limits.attributes_per_span)
        .with_max_events_per_span(limits.events_per_span)
        .with_max_links_per_span(limits.links_per_span)
        .with_max_attributes_per_event(limits.attributes_per_event)
        .with_max_attributes_per_link(limits.attributes_per_link);
    let mut runtime = None;
    let builder = match &options.exporter {
        Exporter::None => builder,
        Exporter::Zipkin { endpoint } => builder.with_span_processor(batched(
            crate::zipkin::ZipkinExporter::with_tls(endpoint, options.export_timeout, &options.tls)?,
            options.batch,
        )),
        Exporter::Otlp { protocol: Protocol::Grpc, .. } => {
            let (exporter, rt) = grpc(options)?;
            runtime = rt;
            builder.with_span_processor(batched(exporter, options.batch))
        }
        Exporter::Otlp { .. } => builder.with_span_processor(batched(
            crate::otlp::OtlpHttpExporter::from_options(options)?,
            options.batch,
        )),
    };
    Ok((builder.build(), runtime))
}

/// `exporter` behind a batch processor sized as `batch` says.
fn batched<E: opentelemetry_sdk::trace::SpanExporter + 'static>(
    exporter: E,
    batch: Batch,
) -> BatchSpanProcessor {
    let config = BatchConfigBuilder::default()
        .with_max_queue_size(batch.max_queue_size)
        .with_max_export_batch_size(batch.max_export_batch_size)
        .with_scheduled_delay(batch.schedule_delay)
        .build();
    BatchSpanProcessor::builder(exporter).with_batch_config(config).build()
}

/// The gRPC exporter, built inside a small runtime of its own that keeps its channel's tasks running.
#[cfg(feature = "grpc")]
fn grpc(options: &Options) -> Result<(opentelemetry_otlp::SpanExporter, Option<Runtime>)> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("otel-grpc")
        .enable_all()
        .build()
        .map_err(|e| Error::Exporter { exporter: "OTLP/gRPC", message: e.to_string() })?;
    let exporter = {
        let _entered = runtime.enter();
        otlp_grpc(options)
    };
    match exporter {
        Ok(exporter) => Ok((exporter, Some(runtime))),
        Err(e) => {
            // Dropping a runtime inside another one's context panics: it is shut down without waiting.
            runtime.shutdown_background();
            Err(e)
        }
    }
}

#[cfg(not(feature = "grpc"))]
fn grpc(_: &Options) -> Result<(crate::otlp::OtlpHttpExporter, Option<Runtime>)> {
    Err(no_grpc())
}

#[cfg(not(feature = "grpc"))]
pub(crate) fn no_grpc() -> Error {
    Error::Invalid(
        "OTLP over gRPC needs this crate's `grpc` feature; use http/protobuf (port 4318)".to_owned(),
    )
}

/// The OTLP/gRPC exporter for `options` (which must name OTLP), inside a runtime's context.
#[cfg(feature = "grpc")]
pub(crate) fn otlp_grpc(options: &Options) -> Result<opentelemetry_otlp::SpanExporter> {
    use opentelemetry_otlp::{WithExportConfig as _, WithTonicConfig as _};
    let Exporter::Otlp { endpoint, headers, .. } = &options.exporter else {
        return Err(Error::Invalid("not an OTLP exporter".to_owned()));
    };
    let mut metadata = tonic::metadata::MetadataMap::new();
    for (key, value) in headers {
        let key = tonic::metadata::MetadataKey::from_bytes(key.as_bytes())
            .map_err(|_| Error::Invalid(format!("`{key}` is not a valid gRPC header name")))?;
        let value =
            value.parse().map_err(|_| Error::Invalid(format!("the value of header `{key}` is invalid")))?;
        metadata.insert(key, value);
    }
    let mut builder = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(endpoint.clone())
        .with_timeout(options.export_timeout)
        // Exactly these headers: opentelemetry-otlp would merge OTEL_EXPORTER_OTLP_HEADERS from the
        // process environment over `with_metadata`; the interceptor runs last and sets them whole.
        .with_interceptor(move |mut request: tonic::Request<()>| {
            *request.metadata_mut() = metadata.clone();
            Ok(request)
        });
    if options.compression == crate::options::Compression::Gzip {
        builder = builder.with_compression(opentelemetry_otlp::Compression::Gzip);
    }
    builder
        .build()
        // A build error may quote the endpoint: its credentials are masked.
        .map_err(|e| Error::Exporter {
            exporter: "OTLP",
            message: prodready_stdx::redact::quoted(&e.to_string(), endpoint),
        })
}
