//! The Zipkin v2 mapping as data: a client span with attributes, an event and an error status, and a
//! server span, each within the receiver's schema.

use std::borrow::Cow;
use std::time::{Duration, SystemTime};

use expect_test::expect;
use opentelemetry::trace::{SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState};
use opentelemetry::{InstrumentationScope, KeyValue};
use opentelemetry_sdk::trace::{SpanData, SpanEvents, SpanLinks};
use prodready_test_support::ZipkinReceiver;

const START: Duration = Duration::from_micros(1_767_225_600_123_456);

fn span(kind: SpanKind, attributes: Vec<KeyValue>, status: Status) -> SpanData {
    let at = |micros: u64| SystemTime::UNIX_EPOCH + START + Duration::from_micros(micros);
    let mut events = SpanEvents::default();
    events.events.push(opentelemetry::trace::Event::new(
        "retry",
        at(1_500),
        vec![KeyValue::new("attempt", 2_i64), KeyValue::new("reason", "reset")],
        0,
    ));
    events.events.push(opentelemetry::trace::Event::new("gave up", at(2_000), Vec::new(), 0));
    SpanData {
        span_context: SpanContext::new(
            TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap(),
            SpanId::from_hex("00f067aa0ba902b7").unwrap(),
            TraceFlags::SAMPLED,
            false,
            TraceState::default(),
        ),
        parent_span_id: SpanId::from_hex("53995c3f42cd8ad8").unwrap(),
        parent_span_is_remote: false,
        span_kind: kind,
        name: Cow::Borrowed("GET /stock/{item}"),
        start_time: at(0),
        end_time: at(2_345),
        attributes,
        dropped_attributes_count: 0,
        events,
        links: SpanLinks::default(),
        status,
        instrumentation_scope: InstrumentationScope::builder("orders").with_version("1.4.0").build(),
    }
}

#[test]
fn a_failed_client_call_maps_to_zipkins_model() {
    let client = span(
        SpanKind::Client,
        vec![
            KeyValue::new("http.request.method", "GET"),
            KeyValue::new("server.address", "10.1.2.3"),
            KeyValue::new("server.port", 8080_i64),
            KeyValue::new("http.response.status_code", 503_i64),
            KeyValue::new("retried", true),
        ],
        Status::error("upstream unavailable"),
    );
    let zipkin = prodready_tracing::zipkin::to_zipkin(&client, "orders");
    expect![[r#"
        {
          "annotations": [
            {
              "timestamp": 1767225600124956,
              "value": "retry: {\"attempt\":\"2\",\"reason\":\"reset\"}"
            },
            {
              "timestamp": 1767225600125456,
              "value": "gave up"
            }
          ],
          "duration": 2345,
          "id": "00f067aa0ba902b7",
          "kind": "CLIENT",
          "localEndpoint": {
            "serviceName": "orders"
          },
          "name": "GET /stock/{item}",
          "parentId": "53995c3f42cd8ad8",
          "remoteEndpoint": {
            "ipv4": "10.1.2.3",
            "port": 8080
          },
          "tags": {
            "error": "upstream unavailable",
            "http.request.method": "GET",
            "http.response.status_code": "503",
            "otel.scope.name": "orders",
            "otel.scope.version": "1.4.0",
            "otel.status_code": "ERROR",
            "retried": "true",
            "server.address": "10.1.2.3",
            "server.port": "8080"
          },
          "timestamp": 1767225600123456,
          "traceId": "4bf92f3577b34da6a3ce929d0e0e4736"
        }"#]]
    .assert_eq(&serde_json::to_string_pretty(&zipkin).unwrap());
    ZipkinReceiver::check(&zipkin).unwrap();
}

#[test]
fn server_and_internal_spans_map_their_kind_and_peer() {
    let server = span(
        SpanKind::Server,
        vec![KeyValue::new("client.address", "2001:db8::1"), KeyValue::new("client.port", 51234_i64)],
        Status::Ok,
    );
    let zipkin = prodready_tracing::zipkin::to_zipkin(&server, "stock");
    ZipkinReceiver::check(&zipkin).unwrap();
    expect![[r#"SERVER {"ipv6":"2001:db8::1","port":51234} {"client.address":"2001:db8::1","client.port":"51234","otel.scope.name":"orders","otel.scope.version":"1.4.0","otel.status_code":"OK"}"#]]
        .assert_eq(&format!("{} {} {}", zipkin["kind"].as_str().unwrap(), zipkin["remoteEndpoint"], zipkin["tags"]));

    // An internal span has no kind and no remote endpoint; a zero-length one lasts 1 µs, a root has no
    // parentId, and an error without a description is still an error.
    let mut internal = span(SpanKind::Internal, vec![KeyValue::new("peer", "x")], Status::error(""));
    internal.end_time = internal.start_time;
    internal.parent_span_id = SpanId::INVALID;
    let zipkin = prodready_tracing::zipkin::to_zipkin(&internal, "stock");
    ZipkinReceiver::check(&zipkin).unwrap();
    expect![[r#"kind=null remote=null parent=null duration=1 error="true""#]].assert_eq(&format!(
        "kind={} remote={} parent={} duration={} error={}",
        zipkin["kind"],
        zipkin["remoteEndpoint"],
        zipkin["parentId"],
        zipkin["duration"],
        zipkin["tags"]["error"]
    ));
}
