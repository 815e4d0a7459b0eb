//! prodready-tracing against real receivers: oteltap (OTLP/HTTP) and a Zipkin v2 receiver that checks
//! the schema; options from `OTEL_*` variables as data; shutdown bounded when the collector is gone;
//! parent-based sampling keeps whole traces.

mod delivery;
mod env;
mod example;
mod layers;
mod otlp_http;
mod services;
mod zipkin_model;

use std::collections::{HashMap, HashSet};
use std::net::TcpListener;
use std::time::{Duration, Instant};

use expect_test::{Expect, expect};
use opentelemetry::trace::{TraceContextExt as _, Tracer as _};
use prodready_test_support::{Oteltap, ZipkinReceiver};
use prodready_tracing::{Exporter, Options, Protocol, Sampler};

fn check(vars: &[(&str, &str)], expected: Expect) {
    let vars: HashMap<String, String> =
        vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    let out = match Options::new("svc").from_env(|name| vars.get(name).cloned()) {
        Ok(o) => format!(
            "service={} version={:?} env={:?} resource={:?}\nexporter={:?}\nsampler={:?} timeout={:?}",
            o.service_name,
            o.service_version,
            o.environment,
            o.resource,
            o.exporter,
            o.sampler,
            o.export_timeout
        ),
        Err(e) => format!("error: {e}"),
    };
    expected.assert_eq(&out);
}

#[test]
fn otel_variables_apply_as_the_specification_reads_them() {
    check(
        &[],
        expect![[r#"
            service=svc version=None env=None resource=[]
            exporter=Otlp { endpoint: "http://localhost:4318", protocol: HttpProtobuf, headers: [] }
            sampler=ParentBasedRatio(1.0) timeout=10s"#]],
    );
    check(
        &[
            ("OTEL_SERVICE_NAME", "orders"),
            (
                "OTEL_RESOURCE_ATTRIBUTES",
                "service.name=ignored,service.version=1.2,deployment.environment.name=prod,team=a%20b",
            ),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318"),
            ("OTEL_EXPORTER_OTLP_HEADERS", "api-key=s%3Dcret"),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "2500"),
            ("OTEL_TRACES_SAMPLER", "parentbased_traceidratio"),
            ("OTEL_TRACES_SAMPLER_ARG", "0.25"),
        ],
        expect![[r#"
            service=orders version=Some("1.2") env=Some("prod") resource=[("team", "a b")]
            exporter=Otlp { endpoint: "http://collector:4318", protocol: HttpProtobuf, headers: [("api-key", "s=cret")] }
            sampler=ParentBasedRatio(0.25) timeout=2.5s"#]],
    );
    // The per-signal endpoint wins and is used as is; gRPC moves the default to port 4317.
    check(
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://a:4318"),
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://b:9999/traces"),
        ],
        expect![[r#"
            service=svc version=None env=None resource=[]
            exporter=Otlp { endpoint: "http://b:9999/traces", protocol: HttpProtobuf, headers: [] }
            sampler=ParentBasedRatio(1.0) timeout=10s"#]],
    );
    check(
        &[("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"), ("OTEL_TRACES_SAMPLER", "always_off")],
        expect![[r#"
            service=svc version=None env=None resource=[]
            exporter=Otlp { endpoint: "http://localhost:4317", protocol: Grpc, headers: [] }
            sampler=AlwaysOff timeout=10s"#]],
    );
    check(
        &[
            ("OTEL_TRACES_EXPORTER", "zipkin"),
            ("OTEL_EXPORTER_ZIPKIN_ENDPOINT", "http://z:9411/api/v2/spans"),
        ],
        expect![[r#"
            service=svc version=None env=None resource=[]
            exporter=Zipkin { endpoint: "http://z:9411/api/v2/spans" }
            sampler=ParentBasedRatio(1.0) timeout=10s"#]],
    );
    check(
        &[("OTEL_SDK_DISABLED", "true")],
        expect![[r#"
            service=svc version=None env=None resource=[]
            exporter=None
            sampler=ParentBasedRatio(1.0) timeout=10s"#]],
    );
}

#[test]
fn bad_settings_get_one_clear_error() {
    check(
        &[("OTEL_TRACES_EXPORTER", "jaeger")],
        expect!["error: OTEL_TRACES_EXPORTER: `jaeger` is not supported (otlp, zipkin or none)"],
    );
    check(
        &[("OTEL_TRACES_SAMPLER", "traceidratio"), ("OTEL_TRACES_SAMPLER_ARG", "1.5")],
        expect!["error: the sampling ratio must be from 0 to 1, not 1.5"],
    );
    check(
        &[("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4318")],
        expect![
            "error: the endpoint `collector:4318` needs an http:// or https:// scheme and a host (write e.g. http://127.0.0.1:4318)"
        ],
    );
    check(
        &[("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")],
        expect!["error: OTEL_EXPORTER_OTLP_PROTOCOL: `http/json` is not supported (http/protobuf or grpc)"],
    );
}

fn zipkin_options(receiver: &ZipkinReceiver) -> Options {
    let mut options = Options::new("ping-test");
    options.exporter = Exporter::Zipkin { endpoint: receiver.url() };
    options
}

#[test]
fn ping_sends_one_trace_of_two_spans_to_zipkin_in_its_schema() {
    let receiver = ZipkinReceiver::start();
    let trace_id = prodready_tracing::ping(&zipkin_options(&receiver)).unwrap().to_string();
    let spans = receiver.wait_for(2, Duration::from_secs(5));
    assert!(receiver.rejected().is_empty(), "{:?}", receiver.rejected());
    assert_eq!(spans.len(), 2, "{spans:?}");
    assert!(spans.iter().all(|s| s["traceId"] == trace_id.as_str()));
    let root = spans.iter().find(|s| s.get("parentId").is_none()).expect("a root span");
    let child = spans.iter().find(|s| s.get("parentId").is_some()).expect("a child span");
    assert_eq!(child["parentId"], root["id"]);
    assert_eq!(root["localEndpoint"]["serviceName"], "ping-test");
    assert_eq!(root["tags"]["otel.status_code"], "OK");
}

#[test]
fn ping_over_otlp_http_reaches_oteltap() {
    let tap = Oteltap::start();
    let mut options = Options::new("ping-test");
    options.exporter =
        Exporter::Otlp { endpoint: tap.endpoint(), protocol: Protocol::HttpProtobuf, headers: Vec::new() };
    let trace_id = prodready_tracing::ping(&options).unwrap().to_string();
    let deadline = Instant::now() + Duration::from_secs(10);
    while tap.span_lines().iter().filter(|l| l.contains(&trace_id)).count() < 2 {
        assert!(
            Instant::now() < deadline,
            "oteltap did not print both spans of {trace_id}: {:?}",
            tap.span_lines()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn ping_names_the_endpoint_it_could_not_reach() {
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut options = Options::new("ping-test");
    options.exporter = Exporter::Zipkin { endpoint: format!("http://127.0.0.1:{port}/api/v2/spans") };
    options.export_timeout = Duration::from_secs(2);
    let err = prodready_tracing::ping(&options).unwrap_err().to_string();
    assert!(
        err.starts_with(&format!(
            "the collector at http://127.0.0.1:{port}/api/v2/spans did not accept the trace"
        )),
        "{err}"
    );
}

/// A port that accepts connections and never answers.
fn black_hole() -> (TcpListener, String) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    (listener, url)
}

fn dead_collector_guard() -> (TcpListener, prodready_tracing::Guard) {
    let (listener, url) = black_hole();
    let mut options = Options::new("shutdown-test");
    options.exporter =
        Exporter::Otlp { endpoint: url, protocol: Protocol::HttpProtobuf, headers: Vec::new() };
    options.shutdown_timeout = Duration::from_secs(1);
    options.export_timeout = Duration::from_secs(30);
    let guard = prodready_tracing::init(&options).unwrap();
    guard.tracer("test").in_span("lost", |_| {});
    (listener, guard)
}

fn assert_quick(started: Instant) {
    let took = started.elapsed();
    // 1 s deadline, 30 s export timeout: loose, since a loaded machine is slow and a hang is 30 s.
    assert!(took < Duration::from_secs(10), "dropping the guard took {took:?} with a dead collector");
}

#[test]
fn a_dead_collector_cannot_hold_the_process_outside_a_runtime() {
    let (_hole, guard) = dead_collector_guard();
    let started = Instant::now();
    drop(guard);
    assert_quick(started);
}

#[test]
fn a_dead_collector_cannot_hold_a_current_thread_runtime() {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let (_hole, guard) = dead_collector_guard();
        let started = Instant::now();
        drop(guard);
        assert_quick(started);
    });
}

#[test]
fn a_dead_collector_cannot_hold_a_multi_thread_runtime() {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async {
        let (_hole, guard) = dead_collector_guard();
        let started = Instant::now();
        drop(guard);
        assert_quick(started);
    });
}

#[test]
fn spans_ended_just_before_the_guard_drops_are_delivered() {
    let receiver = ZipkinReceiver::start();
    let guard = prodready_tracing::init(&zipkin_options(&receiver)).unwrap();
    guard.tracer("test").in_span("last words", |_| {});
    drop(guard);
    let spans = receiver.spans();
    assert!(spans.iter().any(|s| s["name"] == "last words"), "{spans:?}");
}

#[test]
fn parent_based_sampling_keeps_whole_traces() {
    let receiver = ZipkinReceiver::start();
    let mut options = zipkin_options(&receiver);
    options.sampler = Sampler::ParentBasedRatio(0.1);
    let guard = prodready_tracing::init(&options).unwrap();
    let tracer = guard.tracer("test");
    for _ in 0..1000 {
        tracer.in_span("request", |cx| {
            let _child = tracer.start_with_context("query", &cx);
            assert!(cx.span().span_context().is_valid());
        });
    }
    drop(guard);
    let spans = receiver.spans();
    let roots: HashSet<String> = spans
        .iter()
        .filter(|s| s.get("parentId").is_none())
        .map(|s| s["id"].as_str().unwrap().to_owned())
        .collect();
    let children: Vec<&serde_json::Value> = spans.iter().filter(|s| s.get("parentId").is_some()).collect();
    assert!((40..=200).contains(&roots.len()), "{} of 1000 traces kept", roots.len());
    assert_eq!(children.len(), roots.len(), "every kept trace has its child, and only those");
    let orphans = children.iter().filter(|c| !roots.contains(c["parentId"].as_str().unwrap())).count();
    assert_eq!(orphans, 0);
}

#[tokio::test(flavor = "current_thread")]
async fn otlp_over_grpc_delivers_through_ping_and_through_the_guard_on_a_current_thread_runtime() {
    // The collector serves from a runtime of its own, as a real collector is another process: on the
    // test's current-thread runtime it could not answer while dropping the guard blocks that thread, and
    // the last batch timed out whenever it had not gone out before the drop.
    let collector_runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let handle = collector_runtime.handle().clone();
    let mut collector = std::thread::spawn(move || {
        handle.block_on(fake_opentelemetry_collector::FakeCollectorServer::start()).unwrap()
    })
    .join()
    .unwrap();
    let mut options = Options::new("grpc-test");
    options.exporter =
        Exporter::Otlp { endpoint: collector.endpoint(), protocol: Protocol::Grpc, headers: Vec::new() };
    let ping_options = options.clone();
    let trace_id =
        tokio::task::spawn_blocking(move || prodready_tracing::ping(&ping_options)).await.unwrap().unwrap();
    let spans = collector.exported_spans(2, Duration::from_secs(30)).await;
    assert_eq!(spans.iter().filter(|s| s.trace_id == trace_id.to_string()).count(), 2, "{spans:?}");

    // init on a current-thread runtime (the case that hangs with a plain tonic exporter): the guard's own
    // runtime carries the channel, and dropping the guard delivers and returns within its deadline.
    // The bound is loose on purpose (a loaded machine is slow): it tells a deadline kept from a hang.
    // 5 s to deliver over a new gRPC channel (a loaded machine needed more than 2).
    options.shutdown_timeout = Duration::from_secs(5);
    let guard = prodready_tracing::init(&options).unwrap();
    guard.tracer("test").in_span("over grpc", |_| {});
    let started = Instant::now();
    drop(guard);
    assert!(started.elapsed() < Duration::from_secs(30), "shutdown took {:?}", started.elapsed());
    let spans = collector.exported_spans(1, Duration::from_secs(30)).await;
    assert!(spans.iter().any(|s| s.name == "over grpc"), "{spans:?}");
    collector_runtime.shutdown_background();
}
