//! The Loki receiver's own `/metrics`: rendered through a registry, in the format the scraper asks for.

use std::time::{Duration, SystemTime};

use expect_test::expect;
use prodready_test_support::LokiReceiver;
use serde_json::json;

async fn scrape(receiver: &LokiReceiver, accept: Option<&str>) -> (String, String) {
    let mut request = reqwest::Client::new().get(format!("{}/metrics", receiver.url()));
    if let Some(accept) = accept {
        request = request.header("accept", accept);
    }
    let answer = request.timeout(Duration::from_secs(10)).send().await.unwrap();
    assert_eq!(answer.status().as_u16(), 200);
    let content_type = answer.headers()["content-type"].to_str().unwrap().to_owned();
    (content_type, answer.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_receivers_line_counter_is_served_in_both_exposition_formats() {
    let receiver = LokiReceiver::start();
    let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().as_nanos().to_string();
    let body = json!({ "streams": [{ "stream": { "job": "app" }, "values": [[now, "one"], [now, "two"]] }] });
    let answer = reqwest::Client::new()
        .post(format!("{}/loki/api/v1/push", receiver.url()))
        .json(&body)
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status().as_u16(), 204);

    let (content_type, text) = scrape(&receiver, None).await;
    assert_eq!(content_type, "text/plain; version=0.0.4; charset=utf-8");
    expect![[r#"
        # HELP loki_receiver_lines_received_total Lines the receiver accepted.
        # TYPE loki_receiver_lines_received_total counter
        loki_receiver_lines_received_total 2
    "#]]
    .assert_eq(&text);

    let (content_type, text) = scrape(&receiver, Some("application/openmetrics-text; version=1.0.0")).await;
    assert_eq!(content_type, "application/openmetrics-text; version=1.0.0; charset=utf-8");
    expect![[r#"
        # HELP loki_receiver_lines_received Lines the receiver accepted.
        # TYPE loki_receiver_lines_received counter
        loki_receiver_lines_received_total 2
        # EOF
    "#]]
    .assert_eq(&text);
}
