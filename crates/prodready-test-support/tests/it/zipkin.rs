//! The Zipkin receiver: Zipkin's own example span is accepted, each rule of the v2 schema refuses with
//! its reason, and the failure answers (a status, or none at all) behave.

use std::time::{Duration, Instant};

use expect_test::expect;
use prodready_test_support::{ZipkinAnswer, ZipkinReceiver};
use serde_json::{Value, json};

/// The span of Zipkin's documentation ("Data model"), as a tracer sends it.
fn documented_span() -> Value {
    json!({
        "id": "352bff9a74ca9ad2",
        "traceId": "5af7183fb1d4cf5f",
        "parentId": "6b221d5bc9e6496c",
        "name": "get /api",
        "timestamp": 1_556_604_172_355_737_u64,
        "duration": 1431,
        "kind": "SERVER",
        "localEndpoint": { "serviceName": "backend", "ipv4": "192.168.99.1", "port": 3306 },
        "remoteEndpoint": { "ipv4": "172.19.0.2", "port": 58648 },
        "tags": { "http.method": "GET", "http.path": "/api" }
    })
}

async fn post(receiver: &ZipkinReceiver, body: impl Into<reqwest::Body>) -> (u16, String) {
    let answer = reqwest::Client::new()
        .post(receiver.url())
        .header("content-type", "application/json")
        .body(body)
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .unwrap();
    (answer.status().as_u16(), answer.text().await.unwrap())
}

#[tokio::test]
async fn zipkins_documented_span_and_a_full_one_are_accepted_and_kept() {
    let receiver = ZipkinReceiver::start();
    let full = json!({
        "traceId": "4bf92f3577b34da6a3ce929d0e0e4736",
        "id": "00f067aa0ba902b7",
        "name": "get",
        "kind": "CLIENT",
        "timestamp": 1,
        "duration": 1,
        "debug": false,
        "shared": true,
        "localEndpoint": { "serviceName": "a", "ipv6": "2001:db8::c001" },
        "remoteEndpoint": { "serviceName": "b" },
        "annotations": [{ "timestamp": 2, "value": "ws" }],
        "tags": {},
        "parentId": null,
        "somethingZipkinIgnores": [1, 2]
    });
    let body = serde_json::to_vec(&json!([documented_span(), full])).unwrap();
    assert_eq!(post(&receiver, body).await, (202, String::new()));
    assert_eq!(post(&receiver, "[]").await, (202, String::new()));
    let spans = receiver.spans();
    assert_eq!(spans, vec![documented_span(), full]);
    assert_eq!(receiver.posts(), 2);
    assert!(receiver.rejected().is_empty());
    assert_eq!(receiver.wait_for(2, Duration::ZERO).len(), 2);
}

/// Posts the documented span with each change (a `/`-separated path set to a value, `-path` removed, the
/// empty path the whole span) and lists the answers: status and the reason's first line (the second
/// echoes the span).
async fn answers(receiver: &ZipkinReceiver, changes: &[(&str, Value)]) -> String {
    let mut out = String::new();
    for (path, value) in changes {
        let mut span = documented_span();
        if let Some(path) = path.strip_prefix('-') {
            span.as_object_mut().unwrap().remove(path);
        } else if path.is_empty() {
            span = value.clone();
        } else {
            *path.split('/').fold(&mut span, |at, key| &mut at[key]) = value.clone();
        }
        let (status, text) = post(receiver, serde_json::to_vec(&json!([span])).unwrap()).await;
        let change = match *path {
            "" => format!("span = {value}"),
            _ if path.starts_with('-') => (*path).to_owned(),
            _ => format!("{path} = {value}"),
        };
        out += &format!("{change} => {status} {}\n", text.lines().next().unwrap_or_default());
    }
    out
}

#[tokio::test]
async fn each_rule_of_the_schema_refuses_with_its_reason() {
    let receiver = ZipkinReceiver::start();
    let changes = [
        ("traceId", json!("5AF7183FB1D4CF5F")),
        ("traceId", json!("5af7183fb1d4cf5f0")),
        ("traceId", json!("0000000000000000")),
        ("traceId", json!(12)),
        ("-traceId", Value::Null),
        ("-id", Value::Null),
        ("id", json!("4bf92f3577b34da6a3ce929d0e0e4736")),
        ("id", json!("0x2bff9a74ca9ad2")),
        ("parentId", json!("6b221d5bc9e6496")),
        ("name", json!(["get"])),
        ("kind", json!("INTERNAL")),
        ("kind", json!("server")),
        ("timestamp", json!(1.5e15)),
        ("timestamp", json!("1556604172355737")),
        ("duration", json!(0)),
        ("duration", json!(-5)),
        ("shared", json!("true")),
        ("localEndpoint", json!("backend")),
        ("localEndpoint/serviceName", json!(7)),
        ("remoteEndpoint/ipv4", json!("172.19.0")),
        ("remoteEndpoint/ipv6", json!("172.19.0.2")),
        ("remoteEndpoint/port", json!(65536)),
        ("remoteEndpoint/port", json!("58648")),
        ("annotations", json!({ "ws": 1 })),
        ("annotations", json!([{ "timestamp": 1 }])),
        ("annotations", json!([{ "timestamp": 1.5, "value": "ws" }])),
        ("tags", json!([["http.method", "GET"]])),
        ("tags/http.status_code", json!(200)),
        ("", json!("span")),
    ];
    expect![[r#"
        traceId = "5AF7183FB1D4CF5F" => 400 span 0: traceId should be lower-hex encoded with no prefix
        traceId = "5af7183fb1d4cf5f0" => 400 span 0: traceId must be 16 or 32 hex characters, not 17
        traceId = "0000000000000000" => 400 span 0: traceId is all zeros
        traceId = 12 => 400 span 0: traceId must be a string
        -traceId => 400 span 0: traceId is required
        -id => 400 span 0: id is required
        id = "4bf92f3577b34da6a3ce929d0e0e4736" => 400 span 0: id must be 16 hex characters, not 32
        id = "0x2bff9a74ca9ad2" => 400 span 0: id should be lower-hex encoded with no prefix
        parentId = "6b221d5bc9e6496" => 400 span 0: parentId must be 16 hex characters, not 15
        name = ["get"] => 400 span 0: name must be a string
        kind = "INTERNAL" => 400 span 0: kind must be CLIENT, SERVER, PRODUCER or CONSUMER, not "INTERNAL"
        kind = "server" => 400 span 0: kind must be CLIENT, SERVER, PRODUCER or CONSUMER, not "server"
        timestamp = 1500000000000000.0 => 400 span 0: timestamp must be a non-negative integer of microseconds
        timestamp = "1556604172355737" => 400 span 0: timestamp must be a non-negative integer of microseconds
        duration = 0 => 400 span 0: duration must be at least 1 microsecond
        duration = -5 => 400 span 0: duration must be a non-negative integer of microseconds
        shared = "true" => 400 span 0: shared must be a boolean
        localEndpoint = "backend" => 400 span 0: localEndpoint must be an object
        localEndpoint/serviceName = 7 => 400 span 0: localEndpoint.serviceName must be a string
        remoteEndpoint/ipv4 = "172.19.0" => 400 span 0: remoteEndpoint.ipv4 must be the text of an IPv4 address, not "172.19.0"
        remoteEndpoint/ipv6 = "172.19.0.2" => 400 span 0: remoteEndpoint.ipv6 must be the text of an IPv6 address, not "172.19.0.2"
        remoteEndpoint/port = 65536 => 400 span 0: remoteEndpoint.port must be an integer from 0 to 65535, not 65536
        remoteEndpoint/port = "58648" => 400 span 0: remoteEndpoint.port must be an integer from 0 to 65535, not "58648"
        annotations = {"ws":1} => 400 span 0: annotations must be an array
        annotations = [{"timestamp":1}] => 400 span 0: an annotation must be {"timestamp": microseconds, "value": string}, not {"timestamp":1}
        annotations = [{"timestamp":1.5,"value":"ws"}] => 400 span 0: an annotation must be {"timestamp": microseconds, "value": string}, not {"timestamp":1.5,"value":"ws"}
        tags = [["http.method","GET"]] => 400 span 0: tags must be an object
        tags/http.status_code = 200 => 400 span 0: tag http.status_code must be a string, not 200
        span = "span" => 400 span 0: a span must be a JSON object
    "#]].assert_eq(&answers(&receiver, &changes).await);
    assert!(receiver.spans().is_empty(), "nothing of a refused post is kept");
    assert_eq!(receiver.rejected().len(), receiver.posts());
}

#[tokio::test]
async fn a_post_that_is_not_an_array_of_json_spans_is_refused() {
    let receiver = ZipkinReceiver::start();
    let (status, text) = post(&receiver, serde_json::to_vec(&documented_span()).unwrap()).await;
    assert_eq!(status, 400);
    assert!(text.starts_with("the body is not a JSON array of spans"), "{text}");
    // One bad span refuses the whole post, naming which.
    let two = json!([documented_span(), { "traceId": "5af7183fb1d4cf5f" }]);
    let (status, text) = post(&receiver, serde_json::to_vec(&two).unwrap()).await;
    assert_eq!((status, text.lines().next().unwrap()), (400, "span 1: id is required"));
    assert!(receiver.spans().is_empty());
    let proto = reqwest::Client::new()
        .post(receiver.url())
        .header("content-type", "application/x-protobuf")
        .body(vec![0_u8])
        .send()
        .await
        .unwrap();
    assert_eq!(proto.status(), 415);
}

#[tokio::test]
async fn it_can_answer_with_a_failure_and_recover() {
    let receiver = ZipkinReceiver::answering(ZipkinAnswer::Status(500));
    let body = serde_json::to_vec(&json!([documented_span()])).unwrap();
    assert_eq!(post(&receiver, body.clone()).await, (500, "injected failure".to_owned()));
    assert!(receiver.spans().is_empty());
    receiver.set_answer(ZipkinAnswer::Validate);
    assert_eq!(post(&receiver, body).await.0, 202);
    assert_eq!((receiver.spans().len(), receiver.posts()), (1, 2));
}

#[tokio::test]
async fn it_can_hold_a_post_unanswered_and_still_stop_promptly() {
    let receiver = ZipkinReceiver::answering(ZipkinAnswer::Never);
    let started = Instant::now();
    let held = reqwest::Client::new()
        .post(receiver.url())
        .body("[]")
        .timeout(Duration::from_millis(500))
        .send()
        .await
        .unwrap_err();
    assert!(held.is_timeout(), "{held}");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(receiver.posts(), 1);

    // A request still held when the receiver is dropped does not keep it from stopping.
    let url = receiver.url();
    let pending = tokio::spawn(async move { reqwest::Client::new().post(url).body("[]").send().await });
    while receiver.posts() < 2 {
        assert!(started.elapsed() < Duration::from_secs(10), "the second post never arrived");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let dropping = Instant::now();
    drop(receiver);
    assert!(dropping.elapsed() < Duration::from_secs(5), "stopping took {:?}", dropping.elapsed());
    let answer = tokio::time::timeout(Duration::from_secs(5), pending).await.unwrap().unwrap();
    assert!(answer.is_err() || answer.is_ok_and(|a| a.status() == 503));
}
