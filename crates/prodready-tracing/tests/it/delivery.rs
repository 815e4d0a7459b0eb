//! Delivery against real receivers: `ping`'s two-span trace as each receiver holds it (oteltap over
//! OTLP/HTTP, fake-opentelemetry-collector over gRPC, a tonic trace service for gzip over gRPC), failures that name the endpoint, spans made through
//! `Guard::layer` right before the guard drops delivered in every runtime context, a dead collector
//! unable to hold the guard's drop past its deadline, and parent-based sampling through the layer.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use expect_test::expect;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prodready_test_support::{Oteltap, ZipkinAnswer, ZipkinReceiver};
use prodready_tracing::{Exporter, Guard, Options, Protocol, Sampler};
use serde_json::Value;
use tonic::codec::CompressionEncoding;
use tracing_subscriber::layer::SubscriberExt as _;

fn otlp(endpoint: String) -> Exporter {
    Exporter::Otlp { endpoint, protocol: Protocol::HttpProtobuf, headers: Vec::new() }
}

fn options(exporter: Exporter) -> Options {
    let mut options = Options::new("delivery-test");
    options.exporter = exporter;
    options
}

/// The spans oteltap printed for `trace_id`, waiting (at most 10 s) until there are `n`.
fn oteltap_spans(tap: &Oteltap, trace_id: &str, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let spans: Vec<Value> = tap
            .span_lines()
            .iter()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .filter(|s| s["traceId"] == trace_id)
            .collect();
        if spans.len() >= n || Instant::now() > deadline {
            return spans;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Root and child of a two-span trace: (root, child) by their parent ids, asserting the link.
fn root_and_child<'a>(spans: &'a [Value], id: &str, parent: &str, none: &Value) -> (&'a Value, &'a Value) {
    assert_eq!(spans.len(), 2, "{spans:#?}");
    let root = spans.iter().find(|s| s.get(parent).unwrap_or(&Value::Null) == none).expect("a root span");
    let child = spans.iter().find(|s| s.get(parent).unwrap_or(&Value::Null) != none).expect("a child span");
    assert_eq!(child[parent], root[id], "the child's parent is the root: {spans:#?}");
    (root, child)
}

#[test]
fn ping_over_otlp_http_is_one_trace_root_and_child_in_oteltap() {
    let tap = Oteltap::start();
    let trace_id = prodready_tracing::ping(&options(otlp(tap.endpoint()))).unwrap().to_string();
    let spans = oteltap_spans(&tap, &trace_id, 2);
    let (root, child) = root_and_child(&spans, "spanId", "parentSpanId", &Value::from(""));
    assert_eq!((root["name"].as_str(), child["name"].as_str()), (Some("ping"), Some("ping child")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_over_grpc_is_one_trace_root_and_child_in_the_collector() {
    let mut collector = fake_opentelemetry_collector::FakeCollectorServer::start().await.unwrap();
    let mut grpc = options(otlp(collector.endpoint()));
    grpc.exporter =
        Exporter::Otlp { endpoint: collector.endpoint(), protocol: Protocol::Grpc, headers: Vec::new() };
    let trace_id = tokio::task::spawn_blocking(move || prodready_tracing::ping(&grpc))
        .await
        .unwrap()
        .unwrap()
        .to_string();
    let spans: Vec<Value> = collector
        .exported_spans(2, Duration::from_secs(30))
        .await
        .iter()
        .filter(|s| s.trace_id == trace_id)
        .map(|s| serde_json::to_value(s).unwrap())
        .collect();
    let (root, _) = root_and_child(&spans, "span_id", "parent_span_id", &Value::from(""));
    assert_eq!(root["name"], "ping");
}

/// What [`GzipCollector`] saw of a request: its `grpc-encoding`, its metadata's names, the spans.
type Seen = (Option<String>, Vec<String>, ExportTraceServiceRequest);

/// A gRPC trace service that takes gzip-compressed messages and hands each request over.
struct GzipCollector(tokio::sync::mpsc::UnboundedSender<Seen>);

#[tonic::async_trait]
impl TraceService for GzipCollector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let encoding =
            request.metadata().get("grpc-encoding").and_then(|v| v.to_str().ok()).map(str::to_owned);
        let names = request
            .metadata()
            .iter()
            .map(|entry| match entry {
                tonic::metadata::KeyAndValueRef::Ascii(key, _) => key.as_str().to_owned(),
                tonic::metadata::KeyAndValueRef::Binary(key, _) => key.as_str().to_owned(),
            })
            .collect();
        let _ = self.0.send((encoding, names, request.into_inner()));
        Ok(tonic::Response::new(ExportTraceServiceResponse { partial_success: None }))
    }
}

/// A [`GzipCollector`] on loopback: its endpoint, and what it receives.
async fn gzip_collector() -> (String, tokio::sync::mpsc::UnboundedReceiver<Seen>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let service = TraceServiceServer::new(GzipCollector(tx)).accept_compressed(CompressionEncoding::Gzip);
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    (endpoint, rx)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gzip_over_grpc_compresses_the_messages() {
    let (endpoint, mut rx) = gzip_collector().await;
    let mut grpc = options(Exporter::Otlp {
        endpoint,
        protocol: Protocol::Grpc,
        headers: vec![("x-tenant".to_owned(), "t1".to_owned())],
    });
    grpc.compression = prodready_tracing::Compression::Gzip;
    tokio::task::spawn_blocking(move || prodready_tracing::ping(&grpc)).await.unwrap().expect("accepted");
    let (encoding, names, request) = rx.recv().await.expect("a request");
    assert_eq!(encoding.as_deref(), Some("gzip"));
    assert!(names.iter().any(|n| n == "x-tenant"), "{names:?}");
    let names: Vec<&str> =
        request.resource_spans[0].scope_spans[0].spans.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["ping child", "ping"]);
}

/// What `ping` says about a collector that is not there or does not take the trace (the port shown as
/// PORT), and how long it took.
fn ping_error(exporter: Exporter, port: u16) -> (String, Duration) {
    let mut options = options(exporter);
    options.export_timeout = Duration::from_secs(1);
    let started = Instant::now();
    let err = prodready_tracing::ping(&options).unwrap_err().to_string();
    (err.replace(&port.to_string(), "PORT"), started.elapsed())
}

#[test]
fn ping_failures_name_the_endpoint() {
    let closed = prodready_test_support::free_port();
    let (refused, _) = ping_error(otlp(format!("http://127.0.0.1:{closed}")), closed);
    assert!(
        refused.starts_with("the collector at http://127.0.0.1:PORT/v1/traces did not accept the trace: "),
        "{refused}"
    );
    let (refused, _) =
        ping_error(Exporter::Zipkin { endpoint: format!("http://127.0.0.1:{closed}/api/v2/spans") }, closed);
    expect!["the collector at http://127.0.0.1:PORT/api/v2/spans did not accept the trace: Operation failed: cannot reach http://127.0.0.1:PORT/api/v2/spans: error sending request: client error (Connect): tcp connect error: Connection refused (os error 111)"]
        .assert_eq(&refused);

    let failing = ZipkinReceiver::answering(ZipkinAnswer::Status(500));
    let (error, _) = ping_error(Exporter::Zipkin { endpoint: failing.url() }, failing.port());
    expect!["the collector at http://127.0.0.1:PORT/api/v2/spans did not accept the trace: Operation failed: http://127.0.0.1:PORT/api/v2/spans answered 500 Internal Server Error: injected failure"]
        .assert_eq(&error);
    // OTLP/HTTP to something that is not an OTLP receiver (404 at /v1/traces).
    let (error, _) = ping_error(otlp(format!("http://127.0.0.1:{}", failing.port())), failing.port());
    assert!(
        error.starts_with("the collector at http://127.0.0.1:PORT/v1/traces did not accept the trace: "),
        "{error}"
    );
    assert!(error.contains("404"), "{error}");

    // A collector that never answers: the export timeout ends the wait.
    let silent = ZipkinReceiver::answering(ZipkinAnswer::Never);
    let (error, took) = ping_error(Exporter::Zipkin { endpoint: silent.url() }, silent.port());
    assert!(
        error.starts_with("the collector at http://127.0.0.1:PORT/api/v2/spans did not accept the trace: "),
        "{error}"
    );
    // Loose bounds throughout: a loaded machine is slow, and a hang is forever.
    assert!(took < Duration::from_secs(10), "the 1 s export timeout took {took:?}");
    assert_eq!(silent.posts(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_over_grpc_to_a_closed_port_names_the_endpoint() {
    let closed = prodready_test_support::free_port();
    let exporter = Exporter::Otlp {
        endpoint: format!("http://127.0.0.1:{closed}"),
        protocol: Protocol::Grpc,
        headers: Vec::new(),
    };
    let (error, took) = tokio::task::spawn_blocking(move || ping_error(exporter, closed)).await.unwrap();
    assert!(
        error.starts_with("the collector at http://127.0.0.1:PORT did not accept the trace: "),
        "{error}"
    );
    assert!(took < Duration::from_secs(10), "{took:?}");
}

/// Where a test runs the guard: outside any runtime, or inside either tokio flavour.
#[derive(Debug, Clone, Copy)]
enum Context {
    NoRuntime,
    CurrentThread,
    MultiThread,
}

const CONTEXTS: [Context; 3] = [Context::NoRuntime, Context::CurrentThread, Context::MultiThread];

impl Context {
    fn run<T>(self, f: impl FnOnce() -> T) -> T {
        let runtime = match self {
            Context::NoRuntime => return f(),
            Context::CurrentThread => tokio::runtime::Builder::new_current_thread().enable_all().build(),
            Context::MultiThread => {
                tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()
            }
        };
        runtime.unwrap().block_on(async { f() })
    }
}

/// Inits tracing, records a request span with a child through `Guard::layer` and drops the guard at
/// once, in `context`; returns how long the drop took.
fn request_then_drop(options: &Options, context: Context, name: &str) -> Duration {
    context.run(|| {
        let guard = prodready_tracing::init(options).unwrap();
        let subscriber = tracing_subscriber::registry().with(guard.layer("delivery-test"));
        tracing::subscriber::with_default(subscriber, || {
            tracing::info_span!("request", otel.name = name).in_scope(|| {
                tracing::info_span!("query", db.system.name = "postgresql").in_scope(|| {});
            });
        });
        let started = Instant::now();
        drop(guard);
        started.elapsed()
    })
}

#[test]
fn spans_made_right_before_the_guard_drops_are_delivered_in_every_context() {
    let zipkin = ZipkinReceiver::start();
    let tap = Oteltap::start();
    for context in CONTEXTS {
        let name = format!("last request {context:?}");
        request_then_drop(&options(Exporter::Zipkin { endpoint: zipkin.url() }), context, &name);
        // Delivered by the time the drop returned: no waiting.
        let spans = zipkin.spans();
        let root =
            spans.iter().find(|s| s["name"] == name.as_str()).unwrap_or_else(|| panic!("{name}: {spans:#?}"));
        let child =
            spans.iter().find(|s| s["parentId"] == root["id"]).unwrap_or_else(|| panic!("{spans:#?}"));
        assert_eq!(
            (child["name"].as_str(), child["traceId"].as_str()),
            (Some("query"), root["traceId"].as_str())
        );
        assert_eq!(root["localEndpoint"]["serviceName"], "delivery-test");

        request_then_drop(&options(otlp(tap.endpoint())), context, &name);
        // oteltap prints what it received on its stdout, read by a thread here: wait for the line. The
        // exporter was shut down when the drop returned, so whatever arrives was sent during the drop.
        let deadline = Instant::now() + Duration::from_secs(10);
        let root = loop {
            let found = tap
                .span_lines()
                .iter()
                .map(|l| serde_json::from_str::<Value>(l).unwrap())
                .find(|s| s["name"] == name.as_str());
            match found {
                Some(root) => break root,
                None if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
                None => panic!("oteltap has no {name}: {:?}", tap.span_lines()),
            }
        };
        let spans = oteltap_spans(&tap, root["traceId"].as_str().unwrap(), 2);
        root_and_child(&spans, "spanId", "parentSpanId", &Value::from(""));
    }
    assert!(zipkin.rejected().is_empty(), "{:?}", zipkin.rejected());
}

#[test]
fn a_dead_collector_cannot_hold_the_guard_past_its_deadline() {
    const DEADLINE: Duration = Duration::from_millis(500);
    let closed = prodready_test_support::free_port();
    let silent = ZipkinReceiver::answering(ZipkinAnswer::Never);
    let failing = ZipkinReceiver::answering(ZipkinAnswer::Status(500));
    let collectors = [
        ("closed port, OTLP/HTTP", otlp(format!("http://127.0.0.1:{closed}"))),
        (
            "closed port, Zipkin",
            Exporter::Zipkin { endpoint: format!("http://127.0.0.1:{closed}/api/v2/spans") },
        ),
        ("never answers, Zipkin", Exporter::Zipkin { endpoint: silent.url() }),
        ("never answers, OTLP/HTTP", otlp(silent.url())),
        ("answers 500, Zipkin", Exporter::Zipkin { endpoint: failing.url() }),
    ];
    let mut slow = Vec::new();
    for (collector, exporter) in collectors {
        for context in CONTEXTS {
            let mut options = options(exporter.clone());
            options.shutdown_timeout = DEADLINE;
            options.export_timeout = Duration::from_secs(30);
            let took = request_then_drop(&options, context, "lost");
            // Far under the 30 s export timeout it would otherwise wait (loose: a loaded machine is slow).
            if took > DEADLINE + Duration::from_secs(8) {
                slow.push(format!("{collector}, {context:?}: {took:?}"));
            }
        }
    }
    assert!(slow.is_empty(), "dropping the guard outlasted its {DEADLINE:?} deadline: {slow:#?}");
    assert!(silent.posts() >= 1, "the silent collector was reached");
    assert!(failing.posts() >= 1, "the failing collector was reached");
}

#[test]
fn shutdown_says_which_collector_did_not_take_the_spans() {
    let failing = ZipkinReceiver::answering(ZipkinAnswer::Status(500));
    let mut options = options(Exporter::Zipkin { endpoint: failing.url() });
    options.shutdown_timeout = Duration::from_secs(2);
    let guard: Guard = prodready_tracing::init(&options).unwrap();
    let subscriber = tracing_subscriber::registry().with(guard.layer("delivery-test"));
    tracing::subscriber::with_default(subscriber, || tracing::info_span!("refused").in_scope(|| {}));
    let error = guard.shutdown().unwrap_err().to_string();
    assert!(error.contains(&failing.url()), "{error}");
}

#[test]
fn parent_based_sampling_through_the_layer_keeps_whole_traces() {
    let zipkin = ZipkinReceiver::start();
    let mut options = options(Exporter::Zipkin { endpoint: zipkin.url() });
    options.sampler = Sampler::ParentBasedRatio(0.1);
    let guard = prodready_tracing::init(&options).unwrap();
    let subscriber = tracing_subscriber::registry().with(guard.layer("delivery-test"));
    tracing::subscriber::with_default(subscriber, || {
        for i in 0..1000 {
            tracing::info_span!("request", request = i).in_scope(|| {
                tracing::info_span!("query").in_scope(|| {});
            });
        }
    });
    drop(guard);
    assert!(zipkin.rejected().is_empty(), "{:?}", zipkin.rejected());
    let spans = zipkin.spans();
    let roots: HashSet<&str> =
        spans.iter().filter(|s| s.get("parentId").is_none()).map(|s| s["id"].as_str().unwrap()).collect();
    let children: Vec<&Value> = spans.iter().filter(|s| s.get("parentId").is_some()).collect();
    assert!((40..=200).contains(&roots.len()), "{} of 1000 traces kept", roots.len());
    let orphans: Vec<&&Value> =
        children.iter().filter(|c| !roots.contains(c["parentId"].as_str().unwrap())).collect();
    assert!(orphans.is_empty(), "children whose parent was dropped: {orphans:#?}");
    assert_eq!(children.len(), roots.len(), "each kept request kept its query");
}

/// A gRPC exporter that cannot be built (a header name with a space in it), asked for inside a runtime
/// of either flavour: an error naming the problem, not a panic from dropping the exporter's own runtime
/// there.
#[test]
fn a_grpc_exporter_that_cannot_be_built_is_an_error_inside_a_runtime() {
    for multi_thread in [false, true] {
        let runtime = if multi_thread {
            tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()
        } else {
            tokio::runtime::Builder::new_current_thread().enable_all().build()
        }
        .unwrap();
        let result = runtime.block_on(async {
            let options = options(Exporter::Otlp {
                endpoint: "http://127.0.0.1:4317".to_owned(),
                protocol: Protocol::Grpc,
                headers: vec![("x-api key".to_owned(), "v".to_owned())],
            });
            prodready_tracing::init(&options).map(drop)
        });
        let err = result.expect_err("a header name with a space is refused").to_string();
        assert!(err.contains("`x-api key` is not a valid gRPC header name"), "{err}");
    }
}

/// `init` reads no variable: the SDK's defaults would take the queue size, the span limits and the
/// sampler from the process environment, and `init` gives it every value instead (a caller who wants
/// the variables applies `Options::from_env`). The spans are made in child processes (this test binary
/// running the two tests below, which alone are ordinary delivery checks) started with those variables
/// set.
#[test]
fn init_ignores_otel_variables_it_was_not_given() {
    for child in [
        "delivery::spans_under_hostile_otel_variables",
        "delivery::grpc_headers_under_hostile_otel_variables",
    ] {
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", child, "--nocapture"])
            .env("OTEL_BSP_MAX_QUEUE_SIZE", "1")
            .env("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "1")
            .env("OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT", "1")
            .env("OTEL_TRACES_SAMPLER", "always_off")
            .env("OTEL_EXPORTER_OTLP_HEADERS", "x-from-env=1")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && text.contains("1 passed"),
            "{child}: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Over gRPC, the headers are the options' own; run again by the test above with
/// OTEL_EXPORTER_OTLP_HEADERS set (which opentelemetry-otlp would merge in from the environment).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_headers_under_hostile_otel_variables() {
    let (endpoint, mut rx) = gzip_collector().await;
    let grpc = options(Exporter::Otlp {
        endpoint,
        protocol: Protocol::Grpc,
        headers: vec![("x-tenant".to_owned(), "t1".to_owned())],
    });
    tokio::task::spawn_blocking(move || prodready_tracing::ping(&grpc)).await.unwrap().expect("accepted");
    let (_, names, _) = rx.recv().await.expect("a request");
    assert!(names.iter().any(|n| n == "x-tenant"), "{names:?}");
    assert!(!names.iter().any(|n| n == "x-from-env"), "{names:?}");
}

/// 200 spans of three attributes each, every one delivered whole; run again by the test above with
/// hostile variables set.
#[test]
fn spans_under_hostile_otel_variables() {
    let zipkin = ZipkinReceiver::start();
    let guard = prodready_tracing::init(&options(Exporter::Zipkin { endpoint: zipkin.url() })).unwrap();
    let subscriber = tracing_subscriber::registry().with(guard.layer("delivery-test"));
    tracing::subscriber::with_default(subscriber, || {
        for i in 0..200 {
            tracing::info_span!("request", request = i, route = "/r", method = "GET").in_scope(|| {});
        }
    });
    drop(guard);
    let spans = zipkin.spans();
    assert_eq!(spans.len(), 200, "every span sampled and queued: {:?}", zipkin.rejected());
    for span in &spans {
        for tag in ["request", "route", "method"] {
            assert!(span["tags"].get(tag).is_some(), "{tag} kept: {span}");
        }
    }
}
