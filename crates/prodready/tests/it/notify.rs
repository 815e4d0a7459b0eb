use std::sync::{Arc, Mutex};

use crate::{prodready, stderr, stdout};

/// A Slack stand-in that answers like Slack: 200 "ok", or 400 "invalid_payload" for an empty text.
async fn slack() -> (std::net::SocketAddr, Arc<Mutex<Vec<serde_json::Value>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let app = {
        let seen = seen.clone();
        axum::Router::new().route(
            "/services/T000/B000/secret-token",
            axum::routing::post(move |body: String| {
                let seen = seen.clone();
                async move {
                    let json: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
                    let ok = json["text"].as_str().is_some_and(|t| !t.is_empty());
                    seen.lock().unwrap().push(json);
                    if ok {
                        (http::StatusCode::OK, "ok")
                    } else {
                        (http::StatusCode::BAD_REQUEST, "invalid_payload")
                    }
                }
            }),
        )
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notify_slack_posts_slacks_payload_and_never_shows_the_webhook() {
    let (addr, seen) = slack().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("hook"), format!("http://{addr}/services/T000/B000/secret-token\n"))
        .unwrap();
    let private = |name: &str| {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(dir.path().join(name), std::fs::Permissions::from_mode(0o600)).unwrap();
    };
    // A webhook file others can read is refused with the fix, before anything is sent.
    let open = prodready(dir.path(), &[], &["notify", "slack", "--webhook-file", "hook", "--text", "x"]);
    assert_eq!(open.status.code(), Some(2));
    assert!(
        stderr(&open).contains("readable by group or others (mode 644); run `chmod 600 hook`"),
        "{}",
        stderr(&open)
    );
    assert!(seen.lock().unwrap().is_empty());
    private("hook");
    let args =
        ["notify", "slack", "--webhook-file", "hook", "--text", "Deploy 1.4.2 finished", "--channel", "#ops"];
    let root = dir.path().to_path_buf();
    let out = tokio::task::spawn_blocking(move || prodready(&root, &[], &args)).await.unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        seen.lock().unwrap()[0],
        serde_json::json!({"text": "Deploy 1.4.2 finished", "channel": "#ops"})
    );

    // A closed port: a clear failure that does not print the webhook URL.
    std::fs::write(
        dir.path().join("dead"),
        format!("http://127.0.0.1:{}/services/T000/B000/secret-token\n", prodready_test_support::free_port()),
    )
    .unwrap();
    private("dead");
    let root = dir.path().to_path_buf();
    let out = tokio::task::spawn_blocking(move || {
        prodready(&root, &[], &["notify", "slack", "--webhook-file", "dead", "--text", "x"])
    })
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).starts_with("error: Slack did not answer"), "{}", stderr(&out));
    for stream in [stdout(&out), stderr(&out)] {
        assert!(!stream.contains("secret-token"), "{stream}");
    }

    let missing = prodready(dir.path(), &[], &["notify", "slack", "--webhook-file", "nope", "--text", "x"]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(stderr(&missing).contains("nope: cannot read the Slack webhook file"), "{}", stderr(&missing));
}

/// Writes `text` to `dir/name` with `mode`.
fn file(dir: &std::path::Path, name: &str, text: &str, mode: u32) {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::write(dir.join(name), text).unwrap();
    std::fs::set_permissions(dir.join(name), std::fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn notify_email_logs_in_with_the_password_file_and_never_shows_it() {
    let sink = prodready_test_support::SmtpSink::start();
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "[alerts.email]\nto = [\"oncall@example.com\"]\nfrom = \"alerts@example.com\"\nsmarthost = \"{}\"\n\
         username = \"alerts\"\npassword_file = \"smtp-password\"\nrequire_tls = false\n",
        sink.addr()
    );
    file(dir.path(), "prodready.toml", &config, 0o644);
    // A password file others can read is refused with the fix, before anything is sent.
    file(dir.path(), "smtp-password", "smtp-pw-77aa\n", 0o640);
    let args = ["notify", "email", "--subject", "Deploy 1.4.2", "--text", "All smoke tests passed"];
    let open = prodready(dir.path(), &[], &args);
    assert_eq!(open.status.code(), Some(2), "{}", stderr(&open));
    assert!(stderr(&open).contains("run `chmod 600 smtp-password`"), "{}", stderr(&open));
    assert!(sink.mails().is_empty());
    file(dir.path(), "smtp-password", "smtp-pw-77aa\n", 0o600);
    let out = prodready(dir.path(), &[], &args);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let mails = sink.mails();
    assert_eq!(mails.len(), 1);
    assert_eq!(mails[0].auth, Some(("alerts".to_owned(), "smtp-pw-77aa".to_owned())));
    assert_eq!(mails[0].to, ["oncall@example.com"]);
    assert_eq!(mails[0].header("Subject").as_deref(), Some("Deploy 1.4.2"));
    assert!(mails[0].body().contains("All smoke tests passed"), "{:?}", mails[0]);
    // --to overrides the configured recipients; a dead relay is one clear error.
    let out = prodready(
        dir.path(),
        &[],
        &["notify", "email", "--to", "ops@example.com", "--subject", "s", "--text", "t"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(sink.mails()[1].to, ["ops@example.com"]);
    let dead = config
        .replace(&sink.addr().to_string(), &format!("127.0.0.1:{}", prodready_test_support::free_port()));
    file(dir.path(), "prodready.toml", &dead, 0o644);
    let out = prodready(dir.path(), &[], &args);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("the SMTP relay 127.0.0.1:"), "{}", stderr(&out));
    for out in [&open, &out] {
        assert!(!format!("{}{}", stdout(out), stderr(out)).contains("smtp-pw-77aa"));
    }
    // With STARTTLS required (the default), a relay without it is refused, not sent to in clear.
    let tls = config.replace("require_tls = false\n", "");
    file(dir.path(), "prodready.toml", &tls, 0o644);
    let out = prodready(dir.path(), &[], &args);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(sink.mails().len(), 2);
}

#[test]
fn notify_pagerduty_triggers_and_resolves_one_incident() {
    let receiver = prodready_test_support::PagerDutyReceiver::start();
    let dir = tempfile::tempdir().unwrap();
    file(
        dir.path(),
        "prodready.toml",
        &format!("[alerts.pagerduty]\nrouting_key_file = \"routing-key\"\nurl = \"{}\"\n", receiver.url()),
        0o644,
    );
    file(dir.path(), "routing-key", "rk-5d0c11\n", 0o604);
    let trigger =
        ["notify", "pagerduty", "--summary", "Backups failing on db-1", "--dedup-key", "backups-db-1"];
    let open = prodready(dir.path(), &[], &trigger);
    assert_eq!(open.status.code(), Some(2), "{}", stderr(&open));
    assert!(stderr(&open).contains("run `chmod 600 routing-key`"), "{}", stderr(&open));
    file(dir.path(), "routing-key", "rk-5d0c11\n", 0o600);
    let out = prodready(dir.path(), &[], &trigger);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), "triggered (dedup key backups-db-1)");
    let mut resolve = trigger.to_vec();
    resolve.push("--resolve");
    let out = prodready(dir.path(), &[], &resolve);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let events = receiver.events();
    assert_eq!(events.len(), 2);
    assert_eq!(events[0]["routing_key"], "rk-5d0c11");
    assert_eq!(events[0]["event_action"], "trigger");
    assert_eq!(events[0]["payload"]["summary"], "Backups failing on db-1");
    assert_eq!(events[0]["payload"]["severity"], "critical");
    assert_eq!(events[1]["event_action"], "resolve");
    assert_eq!(events[1]["dedup_key"], "backups-db-1");
    // --resolve needs the incident's key; a bad severity is refused by the parser.
    let out = prodready(dir.path(), &[], &["notify", "pagerduty", "--summary", "x", "--resolve"]);
    assert_eq!(out.status.code(), Some(2));
    let out = prodready(dir.path(), &[], &["notify", "pagerduty", "--summary", "x", "--severity", "urgent"]);
    assert_eq!(out.status.code(), Some(2));
    // A refused event: the reply quotes the routing key, the error masks it.
    let refused = prodready(dir.path(), &[], &["notify", "pagerduty", "--summary", "invalid"]);
    assert_eq!(refused.status.code(), Some(1), "{}", stderr(&refused));
    assert!(
        stderr(&refused).contains("PagerDuty refused the event: 400 Bad Request"),
        "{}",
        stderr(&refused)
    );
    assert!(stderr(&refused).contains("routing_key [REDACTED] has no service"), "{}", stderr(&refused));
    for out in [&open, &out, &refused] {
        assert!(!format!("{}{}", stdout(out), stderr(out)).contains("rk-5d0c11"));
    }
}

/// The SMTP password and the routing key taken from the secret store by name: both reach their peer,
/// neither is printed, and a credential given twice (file and secret) is refused.
#[test]
fn notify_reads_credentials_from_the_secret_store_by_name() {
    let sink = prodready_test_support::SmtpSink::start();
    let receiver = prodready_test_support::PagerDutyReceiver::start();
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "[alerts.email]\nto = [\"oncall@example.com\"]\nsmarthost = \"{}\"\nusername = \"alerts\"\n\
         password_secret = \"prod/alerts/smtp\"\nrequire_tls = false\n\
         [alerts.pagerduty]\nrouting_key_secret = \"prod/alerts/pagerduty\"\nurl = \"{}\"\n",
        sink.addr(),
        receiver.url()
    );
    file(dir.path(), "prodready.toml", &config, 0o644);
    // Not stored yet: one error naming the secret and its key.
    let email = ["notify", "email", "--subject", "s", "--text", "t"];
    let missing = prodready(dir.path(), &[], &email);
    assert_eq!(missing.status.code(), Some(2), "{}", stderr(&missing));
    assert!(stderr(&missing).contains("secret `prod/alerts/smtp` ([alerts.email] password_secret)"));
    crate::put_secret(dir.path(), "prod/alerts/smtp", "smtp-pw-from-store-31");
    crate::put_secret(dir.path(), "prod/alerts/pagerduty", "rk-from-store-52");

    let sent = prodready(dir.path(), &[], &email);
    assert_eq!(sent.status.code(), Some(0), "{}", stderr(&sent));
    assert_eq!(sink.mails()[0].auth, Some(("alerts".to_owned(), "smtp-pw-from-store-31".to_owned())));
    let paged = prodready(dir.path(), &[], &["notify", "pagerduty", "--summary", "Disk full"]);
    assert_eq!(paged.status.code(), Some(0), "{}", stderr(&paged));
    assert_eq!(receiver.events()[0]["routing_key"], "rk-from-store-52");

    file(dir.path(), "smtp-password", "other\n", 0o600);
    file(
        dir.path(),
        "prodready.toml",
        &config.replace("username", "password_file = \"smtp-password\"\nusername"),
        0o644,
    );
    let twice = prodready(dir.path(), &[], &email);
    assert_eq!(twice.status.code(), Some(2), "{}", stderr(&twice));
    assert!(stderr(&twice).contains("both password_file and password_secret"), "{}", stderr(&twice));
    for out in [&missing, &sent, &paged, &twice] {
        let all = format!("{}{}", stdout(out), stderr(out));
        assert!(!all.contains("smtp-pw-from-store-31") && !all.contains("rk-from-store-52"), "{all}");
    }
}
