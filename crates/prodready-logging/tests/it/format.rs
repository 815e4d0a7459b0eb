//! The JSON line format, trace correlation, and the Loki layer's queue.

use std::time::Duration;

use opentelemetry::trace::TracerProvider as _;
use prodready_logging::JsonLayer;
use prodready_logging::loki::{Labels, LokiLayer, LokiLayerOptions};
use prodready_test_support::{Failure, LokiReceiver, wait_until};
use tracing_subscriber::layer::SubscriberExt as _;

use crate::Captured;

fn otel_layer<S>() -> (opentelemetry_sdk::trace::SdkTracerProvider, impl tracing_subscriber::Layer<S>)
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
    let layer = tracing_opentelemetry::layer().with_tracer(provider.tracer("test"));
    (provider, layer)
}

#[test]
fn a_line_holds_level_target_message_fields_and_span_fields() {
    let captured = Captured::default();
    let subscriber = tracing_subscriber::registry().with(JsonLayer::new(captured.clone()));
    tracing::subscriber::with_default(subscriber, || {
        let outer = tracing::info_span!("job", job_id = 7, tenant = "acme");
        let _outer = outer.enter();
        let inner = tracing::info_span!("step", step = "copy", tenant = "inner-wins");
        let _inner = inner.enter();
        tracing::warn!(
            rows = 42_u64,
            ratio = 0.5,
            ok = true,
            note = "quote \" and\nnewline",
            "copied {} rows",
            42
        );
        tracing::info!(tenant = "event-wins", "override");
    });
    let lines = captured.json_lines();
    assert_eq!(lines.len(), 2);
    let first = &lines[0];
    assert_eq!(first["level"], "WARN");
    assert_eq!(first["target"], "it::format");
    assert_eq!(first["message"], "copied 42 rows");
    assert_eq!(first["rows"], 42);
    assert_eq!(first["ratio"], 0.5);
    assert_eq!(first["ok"], true);
    assert_eq!(first["note"], "quote \" and\nnewline");
    assert_eq!(first["job_id"], 7);
    assert_eq!(first["step"], "copy");
    assert_eq!(first["tenant"], "inner-wins");
    assert_eq!(first["span"], "step");
    assert!(first["timestamp"].as_str().unwrap().ends_with('Z'));
    assert!(first.get("trace_id").is_none(), "no OpenTelemetry layer, no trace id");
    assert_eq!(lines[1]["tenant"], "event-wins");
}

#[test]
fn lines_carry_trace_and_span_ids_when_a_span_context_is_set() {
    let captured = Captured::default();
    let registry = tracing_subscriber::registry();
    let (provider, otel) = otel_layer();
    let subscriber = registry.with(otel).with(JsonLayer::new(captured.clone()));
    tracing::subscriber::with_default(subscriber, || {
        tracing::info!("outside any span");
        let span = tracing::info_span!("handler");
        let _entered = span.enter();
        tracing::info!("inside");
        let child = tracing::info_span!("db");
        let _child = child.enter();
        tracing::info!("deeper");
    });
    let lines = captured.json_lines();
    assert!(lines[0].get("trace_id").is_none());
    let (inside, deeper) = (&lines[1], &lines[2]);
    let trace_id = inside["trace_id"].as_str().unwrap();
    assert_eq!(trace_id.len(), 32);
    assert_ne!(trace_id, "0".repeat(32));
    assert_eq!(deeper["trace_id"], trace_id, "one trace");
    assert_ne!(deeper["span_id"], inside["span_id"], "two spans");
    assert_eq!(inside["span_id"].as_str().unwrap().len(), 16);
    let _ = provider.shutdown();
}

#[test]
fn a_bad_filter_is_one_clear_error() {
    let err = prodready_logging::filter("info,my_crate=loud").unwrap_err().to_string();
    assert!(err.starts_with("log filter `info,my_crate=loud`:"), "{err}");
    assert!(prodready_logging::filter("warn,prodready_backup=debug").is_ok());
}

fn options(url: String) -> LokiLayerOptions {
    let mut options = LokiLayerOptions::new(url, Labels::new([("service", "checkout")]).unwrap());
    options.batch_max_wait = Duration::from_millis(50);
    options.retry.min_backoff = Duration::from_millis(10);
    options.retry.max_backoff = Duration::from_millis(50);
    options
}

#[test]
fn events_reach_loki_with_level_labels_and_ids_as_structured_metadata() {
    let receiver = LokiReceiver::start();
    let (layer, worker) = LokiLayer::new(options(receiver.url())).unwrap();
    let (provider, otel) = otel_layer();
    let subscriber = tracing_subscriber::registry().with(otel).with(layer);
    tracing::subscriber::with_default(subscriber, || {
        let span = tracing::info_span!("request", request_id = "req-42");
        let _entered = span.enter();
        tracing::info!(order = 9, "paid");
        tracing::error!("card declined");
    });
    worker.shutdown();
    let entries = receiver.entries();
    assert_eq!(entries.len(), 2);
    let paid = entries.iter().find(|e| e.line.contains("paid")).unwrap();
    assert_eq!(paid.labels.get("service").map(String::as_str), Some("checkout"));
    assert_eq!(paid.labels.get("level").map(String::as_str), Some("info"));
    assert_eq!(paid.labels.len(), 2, "labels stay low-cardinality: {:?}", paid.labels);
    let meta: std::collections::BTreeMap<_, _> = paid.metadata.iter().cloned().collect();
    assert_eq!(meta["request_id"], "req-42");
    assert_eq!(meta["trace_id"].len(), 32);
    let line: serde_json::Value = serde_json::from_str(&paid.line).unwrap();
    assert_eq!(line["order"], 9);
    let declined = entries.iter().find(|e| e.line.contains("declined")).unwrap();
    assert_eq!(declined.labels["level"], "error");
    let _ = provider.shutdown();
}

#[test]
fn a_full_queue_drops_and_counts_instead_of_blocking() {
    let receiver = LokiReceiver::start();
    receiver.set_failure(Failure::Always(503));
    let mut opts = options(receiver.url());
    opts.queue_capacity = 100;
    // The worker backs off for 5 s after the first 503: the queue takes the burst meanwhile.
    opts.retry.min_backoff = Duration::from_secs(5);
    opts.retry.max_backoff = Duration::from_secs(5);
    opts.retry.max_attempts = Some(3);
    opts.shutdown_timeout = Duration::from_millis(300);
    let (layer, worker) = LokiLayer::new(opts).unwrap();
    let stats = layer.stats().clone();
    let subscriber = tracing_subscriber::registry().with(layer);
    tracing::subscriber::with_default(subscriber, || {
        tracing::info!("first");
        assert!(wait_until(Duration::from_secs(10), || !receiver.statuses().is_empty()));
        for i in 0..5_000 {
            tracing::info!(i, "event");
        }
    });
    let load = |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed);
    assert!(load(&stats.dropped_queue_full) >= 4_900, "{stats:?}");
    // Shutting down interrupts the back-off: the worker gives up within the deadline and counts it all.
    worker.shutdown();
    let accounted = load(&stats.sent_lines) + load(&stats.dropped_queue_full) + load(&stats.dropped_failed);
    assert_eq!(accounted, 5_001, "{stats:?}");
    assert_eq!(load(&stats.sent_lines), 0);
}

#[test]
fn a_burst_of_long_lines_is_bounded_by_bytes_too() {
    let receiver = LokiReceiver::start();
    receiver.set_failure(Failure::Always(503));
    let mut opts = options(receiver.url());
    opts.queue_max_bytes = 64 * 1024;
    opts.retry.min_backoff = Duration::from_secs(2);
    opts.retry.max_backoff = Duration::from_secs(2);
    opts.retry.max_attempts = Some(2);
    opts.shutdown_timeout = Duration::from_millis(200);
    let (layer, worker) = LokiLayer::new(opts).unwrap();
    let stats = layer.stats().clone();
    let long = "y".repeat(10 * 1024);
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        // Keep the worker busy backing off from a 503, so the queue is what takes the burst.
        tracing::info!("first");
        assert!(wait_until(Duration::from_secs(10), || !receiver.statuses().is_empty()));
        for _ in 0..100 {
            tracing::info!(payload = %long, "big");
        }
    });
    worker.shutdown();
    // At most 64 KiB of 10 KiB lines fit in the queue at once; the rest was dropped, never waited for.
    assert!(stats.dropped_queue_full.load(std::sync::atomic::Ordering::Relaxed) >= 90, "{stats:?}");
}

#[test]
fn the_guard_flushes_queued_lines_on_shutdown() {
    let receiver = LokiReceiver::start();
    let mut opts = options(receiver.url());
    opts.batch_max_wait = Duration::from_secs(60);
    let (layer, worker) = LokiLayer::new(opts).unwrap();
    // The subscriber (and the layer's end of the queue) stays alive: only the guard's shutdown flushes.
    let _default = tracing::subscriber::set_default(tracing_subscriber::registry().with(layer));
    for i in 0..10 {
        tracing::info!(i, "before shutdown");
    }
    assert!(
        !wait_until(Duration::from_millis(200), || receiver.line_count() > 0),
        "sent before the batch was due"
    );
    worker.shutdown();
    assert_eq!(receiver.line_count(), 10);
}
