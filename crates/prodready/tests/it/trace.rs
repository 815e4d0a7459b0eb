//! `prodready trace ping` against real receivers.

use prodready_test_support::{Oteltap, ZipkinAnswer, ZipkinReceiver};

use crate::{prodready, stderr, stdout};

fn trace_id(out: &std::process::Output) -> String {
    let id = stdout(out).trim().to_owned();
    assert!(id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()), "{id:?} {}", stderr(out));
    id
}

#[test]
fn ping_reaches_otlp_and_zipkin_and_says_the_trace_id() {
    let dir = tempfile::tempdir().unwrap();
    let tap = Oteltap::start();
    let out = prodready(dir.path(), &[], &["trace", "ping", "--endpoint", &tap.endpoint()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let id = trace_id(&out);
    assert!(stderr(&out).contains(&format!("{}/v1/traces", tap.endpoint())), "{}", stderr(&out));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !tap.span_lines().iter().any(|l| l.contains(&id)) {
        assert!(std::time::Instant::now() < deadline, "oteltap never printed {id}");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    // The OTEL_* variables stand in for the flag.
    let out = prodready(dir.path(), &[("OTEL_EXPORTER_OTLP_ENDPOINT", &tap.endpoint())], &["trace", "ping"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let id = trace_id(&out);
    while tap.span_lines().iter().filter(|l| l.contains(&id)).count() < 2 {
        assert!(std::time::Instant::now() < deadline, "oteltap never printed both spans of {id}");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }

    let zipkin = ZipkinReceiver::start();
    let out =
        prodready(dir.path(), &[], &["trace", "ping", "--exporter", "zipkin", "--endpoint", &zipkin.url()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let id = trace_id(&out);
    assert_eq!(zipkin.spans().iter().filter(|s| s["traceId"] == id.as_str()).count(), 2);
}

#[test]
fn ping_fails_naming_the_endpoint_and_refuses_a_bad_url() {
    let dir = tempfile::tempdir().unwrap();
    let port = prodready_test_support::free_port();
    let url = format!("http://127.0.0.1:{port}");
    let out = prodready(dir.path(), &[], &["trace", "ping", "--endpoint", &url, "--timeout", "2s"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains(&format!("the collector at {url}/v1/traces did not accept the trace")),
        "{}",
        stderr(&out)
    );
    let out = prodready(dir.path(), &[], &["trace", "ping", "--endpoint", "notaurl"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("`notaurl`"), "{}", stderr(&out));
    let out = prodready(dir.path(), &[("OTEL_TRACES_EXPORTER", "jaeger")], &["trace", "ping"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}

#[test]
fn ping_to_a_collector_that_refuses_the_trace_exits_1_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let zipkin = ZipkinReceiver::answering(ZipkinAnswer::Status(500));
    let out =
        prodready(dir.path(), &[], &["trace", "ping", "--exporter", "zipkin", "--endpoint", &zipkin.url()]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let expected = format!("the collector at {} did not accept the trace", zipkin.url());
    assert!(stderr(&out).contains(&expected) && stderr(&out).contains("500"), "{}", stderr(&out));
    assert!(stdout(&out).is_empty(), "no trace id for a refused trace: {}", stdout(&out));
    assert_eq!(zipkin.posts(), 1);
}
