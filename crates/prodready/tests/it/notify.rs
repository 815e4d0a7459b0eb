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
                        (axum::http::StatusCode::OK, "ok")
                    } else {
                        (axum::http::StatusCode::BAD_REQUEST, "invalid_payload")
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
