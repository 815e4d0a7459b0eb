//! The whole path: a service instrumented with the RED layer, scraped by a real Prometheus that loads the
//! generated rules, an alert fired to a real Alertmanager with the generated configuration, and
//! Alertmanager posting to a local Slack-compatible receiver.

use std::time::Duration;

use prodready_metrics_alerts::alertmanager::{self, AlertmanagerOptions};
use prodready_metrics_alerts::pack::{self, PackOptions};
use prodready_test_support::{Alertmanager, Prometheus, free_port, instrumented_service, slack_receiver};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alert_travels_from_prometheus_through_alertmanager_to_slack() {
    let (slack, mut received) = slack_receiver().await;
    let service = instrumented_service().await;
    let dead = free_port();

    let dir = tempfile::tempdir().unwrap();
    let webhook = dir.path().join("slack-webhook");
    std::fs::write(&webhook, format!("http://{slack}/hook\n")).unwrap();
    let am = Alertmanager::start(&alertmanager::config(&AlertmanagerOptions::slack(
        webhook,
        "#alerts-critical",
        "#alerts",
    )));

    let options = PackOptions {
        runbook_base_url: "https://runbooks.example.com/runbook.md".into(),
        ..PackOptions::default()
    };
    let rules = dir.path().join("prodready.rules.yml");
    std::fs::write(&rules, pack::rule_file(&options).to_yaml("pack")).unwrap();
    let am_port = am.process.port();
    let prometheus = Prometheus::start_with(|port| {
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files: ['{}']\n\
             alerting:\n  alertmanagers:\n    - static_configs:\n        - targets: ['127.0.0.1:{am_port}']\n\
             scrape_configs:\n  - job_name: prometheus\n    static_configs:\n      - targets: ['127.0.0.1:{port}']\n  \
             - job_name: api\n    static_configs:\n      - targets: ['{service}']\n  \
             - job_name: payments\n    static_configs:\n      - targets: ['127.0.0.1:{dead}']\n",
            rules.display()
        )
    });

    // The instrumented service is scraped: its RED metrics are queryable in Prometheus.
    let http = reqwest::Client::new();
    http.get(format!("http://{service}/fail")).send().await.unwrap();
    prometheus
        .query_until(
            r#"http_requests_total{job="api",route="/fail",status="5xx"}"#,
            "the service's metrics never reached Prometheus",
            |s| !s.is_empty(),
        )
        .await;

    // InstanceDown (for: 2m) fires for the dead `payments` target and reaches Slack through Alertmanager.
    let message = tokio::time::timeout(Duration::from_secs(240), async {
        loop {
            let message = received.recv().await.expect("the receiver stays up");
            if message.to_string().contains("InstanceDown") {
                return message;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no InstanceDown reached Slack; Alertmanager log:\n{}", am.process.log()));

    let attachment = &message["attachments"][0];
    let title = attachment["title"].as_str().unwrap_or_default();
    let text = attachment["text"].as_str().unwrap_or_default();
    assert!(title.contains("InstanceDown") && title.contains("(critical)"), "{message}");
    assert_eq!(
        message["channel"], "#alerts-critical",
        "critical alerts go to the critical channel: {message}"
    );
    assert!(text.contains("payments target 127.0.0.1:"), "{message}");
    assert!(text.contains("Runbook: https://runbooks.example.com/runbook.md#instancedown"), "{message}");
    drop(prometheus);
}
