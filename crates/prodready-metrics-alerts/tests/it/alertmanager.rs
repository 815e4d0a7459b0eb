use std::process::Command;

use prodready_metrics_alerts::alertmanager::{self, AlertmanagerOptions, CRITICAL, WARNING};

use crate::write;

fn amtool() -> std::path::PathBuf {
    prodready_test_support::peer_bin("amtool")
}

#[test]
fn the_config_passes_amtool_and_routes_each_severity() {
    let dir = tempfile::tempdir().unwrap();
    let webhook = write(dir.path(), "slack-webhook", "http://127.0.0.1:9/hook\n");
    let config = alertmanager::config(&AlertmanagerOptions {
        slack_webhook_file: webhook,
        critical_channel: "#alerts-critical".into(),
        warning_channel: "#alerts".into(),
    });
    assert!(!config.contains("127.0.0.1:9"), "the webhook URL is never inlined");
    let path = write(dir.path(), "alertmanager.yml", &config);
    let check = Command::new(amtool()).arg("check-config").arg(&path).output().unwrap();
    assert!(
        check.status.success(),
        "{}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );

    for (labels, receiver) in [
        (vec!["alertname=InstanceDown", "severity=critical", "job=api"], CRITICAL),
        (vec!["alertname=HighLatency", "severity=warning", "job=api"], WARNING),
        (vec!["alertname=SloErrorBudgetBurn", "severity=critical", "sloth_severity=page"], CRITICAL),
        (vec!["alertname=Unlabelled"], WARNING),
    ] {
        let out = Command::new(amtool())
            .args(["config", "routes", "test", "--config.file"])
            .arg(&path)
            .args(&labels)
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            receiver,
            "{labels:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
