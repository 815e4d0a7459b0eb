//! The client's retry policy against the receiver's push API rules.

use std::time::Duration;

use prodready_logging::loki::{Batch, Entry, Labels, LokiClient, LokiClientOptions, PushError, RetryPolicy};
use prodready_test_support::{Failure, LokiReceiver};

fn now_ns() -> i64 {
    i64::try_from(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos())
        .unwrap()
}

fn batch(lines: &[&str]) -> Batch {
    let labels = Labels::new([("service", "api")]).unwrap();
    let mut batch = Batch::new();
    for (i, line) in lines.iter().enumerate() {
        batch.push(
            &labels,
            Entry {
                timestamp_ns: now_ns() + i64::try_from(i).unwrap(),
                line: (*line).into(),
                metadata: vec![],
            },
        );
    }
    batch
}

const FAST: RetryPolicy = RetryPolicy {
    min_backoff: Duration::from_millis(10),
    max_backoff: Duration::from_millis(40),
    max_attempts: Some(10),
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_429_and_5xx_until_they_pass() {
    let receiver = LokiReceiver::start();
    let client = LokiClient::new(&LokiClientOptions::new(receiver.url())).unwrap();
    for status in [429, 500, 502, 503] {
        receiver.set_failure(Failure::Next { status, times: 3 });
        let mut retries = 0;
        client.push(&batch(&[&format!("after {status}")]), &FAST, None, |_| retries += 1).await.unwrap();
        assert_eq!(retries, 3, "{status}");
    }
    assert_eq!(receiver.lines(), ["after 429", "after 500", "after 502", "after 503"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_400_is_final_and_never_retried() {
    let receiver = LokiReceiver::start();
    let client = LokiClient::new(&LokiClientOptions::new(receiver.url())).unwrap();
    receiver.set_failure(Failure::Next { status: 400, times: 1 });
    let mut retries = 0;
    let err = client.push(&batch(&["x"]), &FAST, None, |_| retries += 1).await.unwrap_err();
    assert!(matches!(err, PushError::Rejected { status: 400, .. }), "{err}");
    assert_eq!(retries, 0);
    assert_eq!(receiver.statuses(), [400]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_receiver_enforces_loki_limits() {
    let receiver = LokiReceiver::start();
    let client = LokiClient::new(&LokiClientOptions::new(receiver.url())).unwrap();
    // A line over 256 KB is rejected; the valid line of the same push is kept.
    let long = "x".repeat(300 * 1024);
    let err = client.push_once(&batch(&["fine", &long])).await.unwrap_err();
    assert!(
        matches!(&err, PushError::Rejected { status: 400, message } if message.contains("line too long")),
        "{err}"
    );
    assert_eq!(receiver.lines(), ["fine"]);
    // An entry more than an hour behind the newest of its stream is out of order.
    let labels = Labels::new([("service", "api")]).unwrap();
    let mut old = Batch::new();
    old.push(
        &labels,
        Entry { timestamp_ns: now_ns() - 2 * 3600 * 1_000_000_000, line: "late".into(), metadata: vec![] },
    );
    let err = client.push_once(&old).await.unwrap_err();
    assert!(
        matches!(&err, PushError::Rejected { message, .. } if message.contains("too far behind")),
        "{err}"
    );
    // Unreachable: a transport error, retryable.
    let port = prodready_test_support::free_port();
    let gone = LokiClient::new(&LokiClientOptions::new(format!("http://127.0.0.1:{port}"))).unwrap();
    assert!(matches!(gone.push_once(&batch(&["x"])).await, Err(PushError::Retryable { status: None, .. })));
}

#[test]
fn backoff_grows_exponentially_with_jitter_and_stays_capped() {
    let policy = RetryPolicy::default();
    for attempt in 1..=12 {
        let base =
            Duration::from_millis(500).saturating_mul(1 << (attempt - 1)).min(Duration::from_secs(300));
        let wait = policy.backoff(attempt);
        assert!(
            wait >= base / 2 && wait <= base,
            "attempt {attempt}: {wait:?} not in [{:?}, {base:?}]",
            base / 2
        );
    }
}

#[test]
fn labels_follow_loki_rules() {
    assert!(Labels::new([("ok_name", "v")]).is_ok());
    for bad in ["1x", "with-dash", "", "dotted.name"] {
        let err = Labels::new([(bad, "v")]).unwrap_err().to_string();
        assert!(err.contains("[a-zA-Z_][a-zA-Z0-9_]*"), "{bad}: {err}");
    }
    let many: Vec<(String, String)> = (0..16).map(|i| (format!("l{i}"), "v".to_owned())).collect();
    assert!(Labels::new(many).unwrap_err().to_string().contains("at most 15"));
    let labels = Labels::new([("b", "x\"y"), ("a", "1")]).unwrap();
    assert_eq!(labels.selector(), r#"{a="1", b="x\"y"}"#);
    assert_eq!(Labels::parse(&labels.selector()).unwrap(), labels);
}

#[test]
fn credentials_in_a_loki_url_are_never_shown() {
    let err = LokiClient::new(&LokiClientOptions::new("ftp://tenant:s3cr3t@loki")).unwrap_err().to_string();
    assert!(!err.contains("s3cr3t") && err.contains("tenant:[REDACTED]@loki"), "{err}");
}

#[tokio::test]
async fn a_failed_query_names_the_cause_and_not_the_credentials() {
    let port = prodready_test_support::free_port();
    let query = prodready_logging::query::Query {
        logql: "{a=\"b\"}".into(),
        since: Duration::from_secs(60),
        limit: 1,
    };
    let err = prodready_logging::query::query_range(&format!("http://user:s3cr3t@127.0.0.1:{port}"), &query)
        .await
        .unwrap_err()
        .to_string();
    assert!(!err.contains("s3cr3t"), "{err}");
    assert!(err.to_lowercase().contains("connect"), "the cause is named: {err}");
}
