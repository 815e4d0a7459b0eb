//! `ping`: a two-span trace sent straight through an exporter, so the answer is the collector's.

use std::borrow::Cow;
use std::future::Future;
use std::time::{Duration, SystemTime};

use opentelemetry::trace::{SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState};
use opentelemetry::{InstrumentationScope, KeyValue};
use opentelemetry_sdk::trace::{
    IdGenerator as _, RandomIdGenerator, SpanData, SpanEvents, SpanExporter as _, SpanLinks,
};

use crate::options::{Exporter, Options, Protocol};
use crate::{Error, Result};

/// Sends a trace of two spans (a root and a child) and returns its id once the collector accepted it;
/// an error names the endpoint and what went wrong (unreachable, refused, timed out after
/// [`Options::export_timeout`]). Call it outside an async runtime (it blocks).
pub fn ping(options: &Options) -> Result<TraceId> {
    options.validate()?;
    let endpoint = options.export_url().unwrap_or_default();
    let ids = RandomIdGenerator::default();
    let trace_id = ids.new_trace_id();
    let (root_id, child_id) = (ids.new_span_id(), ids.new_span_id());
    let now = SystemTime::now();
    let scope =
        InstrumentationScope::builder("prodready-tracing").with_version(env!("CARGO_PKG_VERSION")).build();
    let span = |id: SpanId,
                parent: SpanId,
                name: &'static str,
                kind: SpanKind,
                start: Duration,
                end: Duration| SpanData {
        span_context: SpanContext::new(trace_id, id, TraceFlags::SAMPLED, false, TraceState::default()),
        parent_span_id: parent,
        parent_span_is_remote: false,
        span_kind: kind,
        name: Cow::Borrowed(name),
        start_time: now + start,
        end_time: now + end,
        attributes: vec![KeyValue::new("prodready.ping", true)],
        dropped_attributes_count: 0,
        events: SpanEvents::default(),
        links: SpanLinks::default(),
        status: Status::Ok,
        instrumentation_scope: scope.clone(),
    };
    let batch = vec![
        span(
            child_id,
            root_id,
            "ping child",
            SpanKind::Internal,
            Duration::from_millis(1),
            Duration::from_millis(2),
        ),
        span(root_id, SpanId::INVALID, "ping", SpanKind::Internal, Duration::ZERO, Duration::from_millis(3)),
    ];
    let resource = crate::guard::resource(options);
    let rejected = |message: String| crate::guard::rejected(&endpoint, message);
    let result = match &options.exporter {
        Exporter::None => {
            return Err(Error::Invalid("tracing is off (no exporter): nothing to ping".to_owned()));
        }
        Exporter::Zipkin { endpoint } => {
            let mut exporter =
                crate::zipkin::ZipkinExporter::with_tls(endpoint, options.export_timeout, &options.tls)?;
            exporter.set_resource(&resource);
            block_on(exporter.export(batch))
        }
        Exporter::Otlp { protocol: Protocol::HttpProtobuf, .. } => {
            let mut exporter = crate::otlp::OtlpHttpExporter::from_options(options)?;
            exporter.set_resource(&resource);
            block_on(exporter.export(batch))
        }
        Exporter::Otlp { protocol: Protocol::Grpc, .. } => grpc(options, &resource, batch)?,
    };
    result.map_err(|e| rejected(e.to_string()))?;
    Ok(trace_id)
}

#[cfg(feature = "grpc")]
fn grpc(
    options: &Options,
    resource: &opentelemetry_sdk::Resource,
    batch: Vec<SpanData>,
) -> Result<opentelemetry_sdk::error::OTelSdkResult> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Exporter { exporter: "OTLP/gRPC", message: e.to_string() })?;
    runtime.block_on(async {
        let mut exporter = crate::guard::otlp_grpc(options)?;
        exporter.set_resource(resource);
        let timed_out = Err(opentelemetry_sdk::error::OTelSdkError::Timeout(options.export_timeout));
        Ok(tokio::time::timeout(options.export_timeout, exporter.export(batch)).await.unwrap_or(timed_out))
    })
}

#[cfg(not(feature = "grpc"))]
fn grpc(
    _: &Options,
    _: &opentelemetry_sdk::Resource,
    _: Vec<SpanData>,
) -> Result<opentelemetry_sdk::error::OTelSdkResult> {
    Err(crate::guard::no_grpc())
}

/// Runs a future to completion on this thread (the exporters' futures do their work synchronously or
/// need no reactor).
fn block_on<F: Future>(future: F) -> F::Output {
    use std::sync::Arc;
    use std::task::{Context, Poll, Wake, Waker};
    struct Thread(std::thread::Thread);
    impl Wake for Thread {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Thread(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
        std::thread::park();
    }
}
