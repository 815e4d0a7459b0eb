//! The `two_services` example, run as it is (its own functions, from `examples/two_services.rs`) against
//! real receivers: oteltap over OTLP/HTTP, fake-opentelemetry-collector over OTLP/gRPC and the Zipkin v2
//! receiver of test support. Each receives one trace of A's and B's spans with the links across the
//! hop, and the services' JSON log lines carry that trace's id.

#[allow(dead_code)]
#[path = "../../examples/two_services.rs"]
mod two_services;

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use prodready_test_support::{Oteltap, ZipkinReceiver};
use serde_json::Value;
use two_services::{Answer, Args};

/// An attribute as a receiver holds it: OTLP keeps the type, Zipkin's tags are all strings.
#[derive(Debug, Clone, PartialEq)]
enum Attr {
    Str(String),
    Int(i64),
}

impl Attr {
    fn text(&self) -> String {
        match self {
            Self::Str(s) => s.clone(),
            Self::Int(i) => i.to_string(),
        }
    }
}

/// A span, whichever receiver it came from.
#[derive(Debug, Clone)]
struct Span {
    name: String,
    /// `server`, `client` or `internal`.
    kind: &'static str,
    trace_id: String,
    id: String,
    parent: Option<String>,
    attributes: BTreeMap<String, Attr>,
    /// Zipkin's `localEndpoint.serviceName` (the OTLP receivers do not show the resource).
    service: Option<String>,
}

impl Span {
    fn attr(&self, key: &str) -> String {
        self.attributes.get(key).map(Attr::text).unwrap_or_else(|| panic!("no {key} on {self:#?}"))
    }
}

/// The JSON log lines both services write.
#[derive(Debug, Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

struct LogWriter(Arc<Mutex<Vec<u8>>>);

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Logs {
    type Writer = LogWriter;

    fn make_writer(&'a self) -> LogWriter {
        LogWriter(self.0.clone())
    }
}

impl Logs {
    fn lines(&self) -> Vec<Value> {
        let bytes = self.0.lock().unwrap().clone();
        String::from_utf8(bytes)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect()
    }
}

/// Runs the example's demo (both services, one order, both stopped and flushed) exporting as `exporter`
/// to `endpoint`, with no `OTEL_*` variables. Checks the answer and the log lines; returns the trace id.
fn run(exporter: &str, endpoint: String) -> String {
    let logs = Logs::default();
    let args = Args { exporter: Some(exporter.to_owned()), endpoint: Some(endpoint), serve: false };
    let Answer { status, body, trace_id } = two_services::run(&args, |_| None, logs.clone()).unwrap();
    assert_eq!((status, body.as_str()), (200, "ordered item 7 (10 in stock)\n"));
    let trace_id = trace_id.expect("A answers with its trace id");
    assert_eq!(trace_id.len(), 32, "{trace_id}");

    // Every line written inside a request, in A and in B, carries the one trace id.
    let lines = logs.lines();
    let line = |message: &str, route: &str| {
        lines
            .iter()
            .find(|l| l["message"] == message && l["route"] == route)
            .unwrap_or_else(|| panic!("no `{message}` line for {route} in {lines:#?}"))
            .clone()
    };
    for (message, route) in [
        ("order placed", "/order/{item}"),
        ("request", "/order/{item}"),
        ("stock looked up", "/stock/{item}"),
        ("request", "/stock/{item}"),
    ] {
        let l = line(message, route);
        assert_eq!(l["trace_id"], trace_id.as_str(), "{l}");
        assert_eq!(l["span_id"].as_str().map(str::len), Some(16), "{l}");
    }
    assert_eq!(line("request", "/order/{item}")["status"], 200);
    trace_id
}

/// A's and B's spans of `trace_id` as one trace: A's server span (the root) → the request log layer's
/// span → A's client span → B's server span → B's request log span, with routes, methods and statuses.
/// Returns the spans by role, for receiver-specific checks.
fn check_trace(all: &[Span], trace_id: &str) -> BTreeMap<&'static str, Span> {
    let spans: Vec<&Span> = all.iter().filter(|s| s.trace_id == trace_id).collect();
    assert_eq!(spans.len(), 5, "one trace of five spans: {spans:#?}");
    let find = |name: &str, kind: &str, parent: Option<&str>| -> Span {
        spans
            .iter()
            .find(|s| s.name == name && s.kind == kind && s.parent.as_deref() == parent)
            .map(|s| (*s).clone())
            .unwrap_or_else(|| panic!("no {kind} span `{name}` with parent {parent:?} in {spans:#?}"))
    };
    let a_server = find("GET /order/{item}", "server", None);
    let a_request = find("request", "internal", Some(&a_server.id));
    let a_client = find("GET /stock/{item}", "client", Some(&a_request.id));
    let b_server = find("GET /stock/{item}", "server", Some(&a_client.id));
    let b_request = find("request", "internal", Some(&b_server.id));

    for (span, route, path) in
        [(&a_server, "/order/{item}", "/order/7"), (&b_server, "/stock/{item}", "/stock/7")]
    {
        assert_eq!(span.attr("http.route"), route);
        assert_eq!(span.attr("url.path"), path);
        assert_eq!(span.attr("http.request.method"), "GET");
        assert_eq!(span.attr("http.response.status_code"), "200");
        assert_eq!(span.attr("server.address"), "127.0.0.1");
        assert!(span.attr("server.port").parse::<u16>().is_ok(), "{span:#?}");
        assert!(!span.attributes.contains_key("otel.status_code"), "a 200 is no error: {span:#?}");
    }
    assert_eq!(a_client.attr("http.response.status_code"), "200");
    assert_eq!(
        a_client.attr("url.full"),
        format!("http://127.0.0.1:{}/stock/7", b_server.attr("server.port"))
    );
    assert_eq!(a_client.attr("url.template"), "/stock/{item}");
    BTreeMap::from([
        ("a_server", a_server),
        ("a_request", a_request),
        ("a_client", a_client),
        ("b_server", b_server),
        ("b_request", b_request),
    ])
}

fn otlp_kind(kind: i64) -> &'static str {
    match kind {
        1 => "internal",
        2 => "server",
        3 => "client",
        other => panic!("unexpected span kind {other}"),
    }
}

/// A span as oteltap prints it (OTLP's JSON mapping: hex ids, `intValue` as a string).
fn from_oteltap(line: &str) -> Span {
    let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
    let text = |key: &str| v[key].as_str().unwrap_or_else(|| panic!("no {key} in {line}")).to_owned();
    let attributes = v["attributes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|kv| {
            let value = &kv["value"];
            let attr = if let Some(s) = value["stringValue"].as_str() {
                Attr::Str(s.to_owned())
            } else if let Some(i) = value["intValue"].as_str() {
                Attr::Int(i.parse().unwrap())
            } else {
                Attr::Str(value.to_string())
            };
            (kv["key"].as_str().unwrap().to_owned(), attr)
        })
        .collect();
    Span {
        name: text("name"),
        kind: otlp_kind(v["kind"].as_i64().unwrap()),
        trace_id: text("traceId"),
        id: text("spanId"),
        parent: Some(text("parentSpanId")).filter(|p| !p.is_empty()),
        attributes,
        service: None,
    }
}

/// The HTTP attributes the conventions define as integers arrived as integers.
fn assert_integers(spans: &BTreeMap<&'static str, Span>) {
    for role in ["a_server", "b_server", "a_client"] {
        assert!(
            matches!(spans[role].attributes.get("http.response.status_code"), Some(Attr::Int(200))),
            "{role}: {:#?}",
            spans[role]
        );
    }
    for role in ["a_server", "b_server"] {
        assert!(
            matches!(spans[role].attributes.get("server.port"), Some(Attr::Int(_))),
            "{:#?}",
            spans[role]
        );
    }
}

#[test]
fn one_trace_through_both_services_over_otlp_http_into_oteltap() {
    let tap = Oteltap::start();
    let trace_id = run("otlp", tap.endpoint());
    let deadline = Instant::now() + Duration::from_secs(10);
    let spans = loop {
        let spans: Vec<Span> = tap.span_lines().iter().map(|l| from_oteltap(l)).collect();
        if spans.iter().filter(|s| s.trace_id == trace_id).count() >= 5 || Instant::now() > deadline {
            break spans;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let spans = check_trace(&spans, &trace_id);
    assert_integers(&spans);
}

#[test]
fn one_trace_through_both_services_over_otlp_grpc_into_the_collector() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let mut collector = runtime.block_on(fake_opentelemetry_collector::FakeCollectorServer::start()).unwrap();
    let trace_id = run("grpc", collector.endpoint());
    let exported = runtime.block_on(collector.exported_spans(5, Duration::from_secs(30)));
    let spans: Vec<Span> = exported
        .into_iter()
        .map(|s| Span {
            kind: match s.kind.as_str() {
                "SPAN_KIND_INTERNAL" => "internal",
                "SPAN_KIND_SERVER" => "server",
                "SPAN_KIND_CLIENT" => "client",
                other => panic!("unexpected span kind {other}"),
            },
            name: s.name,
            trace_id: s.trace_id,
            id: s.span_id,
            parent: Some(s.parent_span_id).filter(|p| !p.is_empty()),
            // The collector shows each value as its protobuf Debug text.
            attributes: s
                .attributes
                .into_iter()
                .map(|(k, v)| {
                    let inner = |tag: &str| {
                        v.split_once(&format!("{tag}("))
                            .and_then(|(_, rest)| rest.split_once(')'))
                            .map(|(inner, _)| inner.to_owned())
                    };
                    let attr = match (inner("StringValue"), inner("IntValue")) {
                        (Some(s), _) => Attr::Str(serde_json::from_str(&s).unwrap_or(s)),
                        (None, Some(i)) => Attr::Int(i.parse().unwrap()),
                        (None, None) => Attr::Str(v),
                    };
                    (k, attr)
                })
                .collect(),
            service: None,
        })
        .collect();
    let spans = check_trace(&spans, &trace_id);
    assert_integers(&spans);
}

#[test]
fn one_trace_through_both_services_with_the_zipkin_exporter() {
    let receiver = ZipkinReceiver::start();
    let trace_id = run("zipkin", receiver.url());
    let received = receiver.wait_for(5, Duration::from_secs(10));
    assert!(receiver.rejected().is_empty(), "the receiver refused: {:?}", receiver.rejected());
    let spans: Vec<Span> = received
        .iter()
        .map(|s| Span {
            name: s["name"].as_str().unwrap().to_owned(),
            kind: match s["kind"].as_str() {
                None => "internal",
                Some("SERVER") => "server",
                Some("CLIENT") => "client",
                Some(other) => panic!("unexpected span kind {other}"),
            },
            trace_id: s["traceId"].as_str().unwrap().to_owned(),
            id: s["id"].as_str().unwrap().to_owned(),
            parent: s["parentId"].as_str().map(str::to_owned),
            attributes: s["tags"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), Attr::Str(v.as_str().unwrap().to_owned())))
                .collect(),
            service: s["localEndpoint"]["serviceName"].as_str().map(str::to_owned),
        })
        .collect();
    let spans = check_trace(&spans, &trace_id);
    // Each service's spans carry its own name; A's client span names B's address as the remote endpoint.
    for (role, service) in [
        ("a_server", "orders"),
        ("a_request", "orders"),
        ("a_client", "orders"),
        ("b_server", "stock"),
        ("b_request", "stock"),
    ] {
        assert_eq!(spans[role].service.as_deref(), Some(service), "{role}");
    }
    let a_client = received.iter().find(|s| s["id"] == spans["a_client"].id.as_str()).unwrap();
    assert_eq!(a_client["kind"], "CLIENT");
    assert_eq!(a_client["remoteEndpoint"]["ipv4"], "127.0.0.1", "{a_client}");
}
