use std::os::unix::fs::PermissionsExt as _;
use std::process::Command;
use std::time::{Duration, Instant};

use prodready_metrics_alerts::alertmanager::{
    self, AlertmanagerOptions, CRITICAL, EmailOptions, PagerDutyOptions, WARNING,
};
use prodready_test_support::{Alertmanager, Mail, PagerDutyReceiver, SmtpSink};

use crate::write;

fn amtool() -> std::path::PathBuf {
    prodready_test_support::peer_bin("amtool")
}

const SMTP_PASSWORD: &str = "smtp-pw-4f1c9a";
const ROUTING_KEY: &str = "rk-0b7e22d5c3";
const WEBHOOK_SECRET: &str = "wh-secret-81aa";

/// The credential files, mode 0600, and options routing to Slack, email and PagerDuty.
fn options(dir: &std::path::Path, slack: &str, smtp: &str, pagerduty: &str) -> AlertmanagerOptions {
    let secret = |name: &str, text: &str| {
        let path = write(dir, name, text);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        path
    };
    AlertmanagerOptions {
        email: Some(EmailOptions {
            to: vec!["oncall@example.com".into(), "lead@example.com".into()],
            from: "alerts@example.com".into(),
            smarthost: smtp.to_owned(),
            username: Some("alerts".into()),
            // As `prodready secrets get NAME > FILE` writes it: Alertmanager 0.25 takes the file's bytes
            // as the password, so a trailing newline would become part of it.
            password_file: Some(secret("smtp-password", SMTP_PASSWORD)),
            require_tls: false,
        }),
        pagerduty: Some(PagerDutyOptions {
            routing_key_file: secret("pagerduty-routing-key", ROUTING_KEY),
            url: Some(pagerduty.to_owned()),
        }),
        ..AlertmanagerOptions::slack(
            secret("slack-webhook", &format!("http://{slack}/hook?k={WEBHOOK_SECRET}\n")),
            "#alerts-critical",
            "#alerts",
        )
    }
}

#[test]
fn the_config_passes_amtool_and_routes_each_severity() {
    let dir = tempfile::tempdir().unwrap();
    for options in [
        AlertmanagerOptions::slack(
            write(dir.path(), "slack-webhook", "http://127.0.0.1:9/hook\n"),
            "#c",
            "#w",
        ),
        options(dir.path(), "127.0.0.1:9", "127.0.0.1:25", "http://127.0.0.1:9/v2/enqueue"),
    ] {
        let config = alertmanager::config(&options);
        for secret in ["127.0.0.1:9/hook", SMTP_PASSWORD, ROUTING_KEY, WEBHOOK_SECRET] {
            assert!(!config.contains(secret), "a credential is inlined: {secret}\n{config}");
        }
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
}

/// POSTs alerts to Alertmanager's API v2.
async fn post_alerts(am: &Alertmanager, alerts: serde_json::Value) {
    let response = reqwest::Client::new()
        .post(format!("{}/api/v2/alerts", am.url()))
        .json(&alerts)
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success(), "{}", response.text().await.unwrap_or_default());
}

/// Now, as Alertmanager's API writes times.
fn now() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}

/// An alert that started at `starts_at` (RFC 3339): Alertmanager flushes the group of an alert that started
/// longer than `group_wait` ago at once, so a test that relies on the wait must give the current time.
fn alert(name: &str, severity: &str, job: &str, starts_at: &str, ends_at: Option<&str>) -> serde_json::Value {
    let mut alert = serde_json::json!({
        "labels": { "alertname": name, "severity": severity, "job": job },
        "annotations": {
            "summary": format!("{name} on {job}"),
            "description": format!("{job}: {name} needs a look"),
            "runbook_url": format!("https://runbooks.example.com/runbook.md#{}", name.to_lowercase()),
        },
        "startsAt": starts_at,
    });
    if let Some(end) = ends_at {
        alert["endsAt"] = serde_json::Value::String(end.to_owned());
    }
    alert
}

async fn wait_for<T>(what: &str, am: &Alertmanager, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(found) = probe() {
            return found;
        }
        assert!(Instant::now() < deadline, "{what} never arrived; Alertmanager log:\n{}", am.process.log());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The real Alertmanager, with the generated configuration, delivers a critical alert to PagerDuty, email
/// and Slack, a warning to email and Slack, holds back a warning of the same job as the critical
/// (inhibition), and sends the resolution to PagerDuty (same dedup key) and email.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_reach_email_pagerduty_and_slack_by_severity_and_resolve() {
    let (slack, mut slack_messages) = prodready_test_support::slack_receiver().await;
    let smtp = SmtpSink::start();
    let pagerduty = PagerDutyReceiver::start();
    let dir = tempfile::tempdir().unwrap();
    let options = options(dir.path(), &slack.to_string(), &smtp.addr().to_string(), &pagerduty.url());
    // The generated timings wait 30 s to group and 5 m between groups; a test waits a few seconds. The
    // wait leaves Alertmanager's inhibitor time to see the critical before the warnings' group is due
    // (with 1 s, a loaded machine delivered the inhibited warning).
    let config = alertmanager::config(&options)
        .replace("group_wait: 30s", "group_wait: 3s")
        .replace("group_interval: 5m", "group_interval: 1s");
    let am = Alertmanager::start(&config);

    // Started now: alerts that started long ago would skip the group wait the inhibitor needs.
    let started = now();
    post_alerts(
        &am,
        serde_json::json!([
            alert("DiskFull", "critical", "db", &started, None),
            alert("ReplicationLag", "warning", "db", &started, None),
            alert("HighLatency", "warning", "api", &started, None),
        ]),
    )
    .await;

    let trigger = wait_for("the PagerDuty trigger", &am, || pagerduty.events().into_iter().next()).await;
    assert_eq!(trigger["routing_key"], ROUTING_KEY, "{trigger}");
    assert_eq!(trigger["event_action"], "trigger", "{trigger}");
    assert_eq!(trigger["payload"]["severity"], "critical", "{trigger}");
    let summary = trigger["payload"]["summary"].as_str().unwrap_or_default();
    assert!(summary.contains("DiskFull") && summary.contains("(critical)"), "{trigger}");
    let dedup = trigger["dedup_key"].as_str().unwrap_or_default().to_owned();
    assert!(!dedup.is_empty(), "{trigger}");

    let firing = |mail: &Mail, name: &str| {
        mail.header("Subject").is_some_and(|s| s.contains("[FIRING:1]") && s.contains(name))
    };
    let mails = wait_for("both emails", &am, || {
        let mails = smtp.mails();
        (mails.iter().any(|m| firing(m, "DiskFull")) && mails.iter().any(|m| firing(m, "HighLatency")))
            .then_some(mails)
    })
    .await;
    let critical = mails.iter().find(|m| firing(m, "DiskFull")).unwrap();
    assert_eq!(critical.auth, Some(("alerts".to_owned(), SMTP_PASSWORD.to_owned())));
    assert_eq!(critical.from, "alerts@example.com");
    assert_eq!(critical.to, ["oncall@example.com", "lead@example.com"]);
    assert!(critical.header("Subject").unwrap().contains("DiskFull (critical)"), "{critical:?}");
    let body = critical.body().replace("=\n", "").replace("=3D", "=");
    assert!(body.contains("db: DiskFull needs a look"), "{body}");
    assert!(body.contains("Runbook: https://runbooks.example.com/runbook.md#diskfull"), "{body}");
    // Only criticals page.
    assert!(
        pagerduty.events().iter().all(|e| e.to_string().contains("DiskFull")),
        "{:?}",
        pagerduty.events()
    );

    let mut slack_seen = Vec::new();
    while slack_seen.len() < 2 {
        let message = tokio::time::timeout(Duration::from_secs(30), slack_messages.recv())
            .await
            .expect("Slack got both alerts")
            .unwrap();
        slack_seen.push(message.to_string());
    }
    assert!(
        slack_seen.iter().any(|m| m.contains("DiskFull") && m.contains("#alerts-critical")),
        "{slack_seen:?}"
    );
    assert!(
        slack_seen.iter().any(|m| m.contains("HighLatency") && m.contains("\"#alerts\"")),
        "{slack_seen:?}"
    );

    // The warning of the critical's own job is inhibited everywhere (its group was due with the others:
    // two more group intervals pass to be sure).
    tokio::time::sleep(Duration::from_secs(3)).await;
    let everything = format!("{:?}{:?}{slack_seen:?}", smtp.mails(), pagerduty.events());
    assert!(!everything.contains("ReplicationLag"), "an inhibited warning was delivered");

    // The resolution: PagerDuty resolves the same incident; email says so.
    post_alerts(&am, serde_json::json!([alert("DiskFull", "critical", "db", &started, Some(&now()))])).await;
    let resolve = wait_for("the PagerDuty resolve", &am, || {
        pagerduty.events().into_iter().find(|e| e["event_action"] == "resolve")
    })
    .await;
    assert_eq!(resolve["dedup_key"], dedup.as_str(), "{resolve}");
    wait_for("the resolved email", &am, || {
        smtp.mails()
            .into_iter()
            .find(|m| m.header("Subject").is_some_and(|s| s.contains("[RESOLVED]") && s.contains("DiskFull")))
    })
    .await;

    // With the critical resolved, the inhibition lifts: the warning arrives (by email; never paged).
    wait_for("the warning once no longer inhibited", &am, || {
        smtp.mails().into_iter().find(|m| firing(m, "ReplicationLag"))
    })
    .await;
    assert!(!format!("{:?}", pagerduty.events()).contains("ReplicationLag"));
    // Alertmanager's own log never shows a credential.
    let log = am.process.log();
    for secret in [SMTP_PASSWORD, ROUTING_KEY, WEBHOOK_SECRET] {
        assert!(!log.contains(secret), "Alertmanager logged a credential:\n{log}");
    }
}
