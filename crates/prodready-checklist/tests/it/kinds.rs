//! Every kind against a real peer: an axum server, a rustls server with certificates of chosen expiry,
//! PostgreSQL, Prometheus, oteltap, k6 summaries, files and commands.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use prodready_checklist::{CheckSpec, Date, RunOptions, Status};
use prodready_test_support::{Oteltap, Prometheus, TestDb, free_port, peer_bin};

/// Declares one check from the kind-specific TOML lines, runs it and returns (status, summary).
async fn probe(kind_toml: &str) -> (Status, String) {
    probe_on(kind_toml, RunOptions::now(Duration::from_secs(10))).await
}

async fn probe_on(kind_toml: &str, options: RunOptions) -> (Status, String) {
    let text = format!("id = \"probe\"\ntitle = \"Probe\"\ncategory = \"Features\"\n{kind_toml}");
    let spec: CheckSpec = toml::from_str(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let check = spec.validate().unwrap();
    let result = prodready_checklist::run(&[check], &options, Arc::new(prodready_checklist::Quiet)).await;
    (result[0].status, result[0].summary.clone())
}

async fn http_server() -> SocketAddr {
    use axum::Json;
    use axum::http::StatusCode;
    use axum::routing::get;
    let app = axum::Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/ready", get(|| async { "ready" }))
        .route(
            "/status",
            get(|| async { Json(serde_json::json!({"status": "ok", "db": {"up": true, "lag": 0}})) }),
        )
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_millis(400)).await;
                "late"
            }),
        )
        .route("/old", get(|| async { axum::response::Redirect::permanent("/healthz") }))
        .route("/broken", get(|| async { (StatusCode::INTERNAL_SERVER_ERROR, "database unavailable") }))
        .route("/created", axum::routing::post(|body: String| async move { (StatusCode::CREATED, body) }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

#[tokio::test]
async fn http_checks_status_body_json_and_latency() {
    let addr = http_server().await;
    let url = |path: &str| format!("kind = \"http\"\nurl = \"http://{addr}{path}\"\n");

    let (status, summary) = probe(&format!("{}body_contains = \"ok\"\n", url("/healthz"))).await;
    assert_eq!(status, Status::Pass, "{summary}");
    assert!(summary.starts_with("200 in "), "{summary}");

    let (status, summary) = probe(&format!("{}body_contains = \"healthy\"\n", url("/healthz"))).await;
    assert_eq!(
        (status, summary.ends_with("body does not contain \"healthy\"")),
        (Status::Fail, true),
        "{summary}"
    );

    let json = "json = { \"/status\" = \"ok\", \"/db/up\" = true }\n";
    assert_eq!(probe(&format!("{}{json}", url("/status"))).await.0, Status::Pass);
    let (status, summary) =
        probe(&format!("{}json = {{ \"/db/lag\" = 5, \"/db/missing\" = 1 }}\n", url("/status"))).await;
    assert_eq!(status, Status::Fail);
    assert!(summary.ends_with("/db/lag is 0, expected 5; /db/missing is missing"), "{summary}");

    let (status, summary) = probe(&format!("{}max_response_ms = 100\n", url("/slow"))).await;
    assert_eq!(status, Status::Fail);
    assert!(summary.contains(", over 100 ms"), "{summary}");
    assert_eq!(probe(&format!("{}max_response_ms = 5000\n", url("/slow"))).await.0, Status::Pass);

    let (status, summary) = probe(&url("/broken")).await;
    assert_eq!(status, Status::Fail);
    assert!(summary.ends_with("status 500, expected 200"), "{summary}");
    assert_eq!(probe(&format!("{}expect_status = [500, 503]\n", url("/broken"))).await.0, Status::Pass);

    let post = format!(
        "{}method = \"post\"\nbody = \"hello\"\nexpect_status = 201\nbody_contains = \"hello\"\n",
        url("/created")
    );
    assert_eq!(probe(&post).await.0, Status::Pass);

    // A redirect is judged, not followed.
    assert_eq!(probe(&format!("{}expect_status = 308\n", url("/old"))).await.0, Status::Pass);
    // Credentials in the URL never reach the report.
    let secret = format!("kind = \"http\"\nurl = \"http://ops:s3cr3t@{addr}/broken?token=abc&x=1\"\n");
    let (status, summary) = probe(&secret).await;
    assert_eq!(status, Status::Fail);
    assert!(!summary.contains("s3cr3t") && !summary.contains("abc"), "{summary}");
    assert!(
        summary.starts_with(&format!("GET http://ops:[REDACTED]@{addr}/broken?token=[REDACTED]&x=1: ")),
        "{summary}"
    );
    let closed_secret = format!("kind = \"http\"\nurl = \"http://ops:s3cr3t@127.0.0.1:{}/\"\n", free_port());
    assert!(!probe(&closed_secret).await.1.contains("s3cr3t"));

    let closed = format!("kind = \"http\"\nurl = \"http://127.0.0.1:{}/\"\n", free_port());
    let (status, summary) = probe(&closed).await;
    assert_eq!(status, Status::Fail);
    assert!(summary.contains("cannot connect"), "{summary}");
}

#[tokio::test]
async fn loki_readiness() {
    // Loki cannot be installed here: the Loki-compatible receiver answers `GET /ready` as Loki does.
    let loki = prodready_test_support::LokiReceiver::start();
    let url = loki.url();
    let (status, summary) = probe(&format!("kind = \"loki\"\nurl = \"{url}\"\n")).await;
    assert_eq!((status, summary), (Status::Pass, format!("Loki at {url} is ready")));
    let (status, summary) = probe(&format!("kind = \"loki\"\nurl = \"{url}/nope\"\n")).await;
    assert_eq!(status, Status::Fail);
    assert!(summary.contains("404 Not Found from /ready"), "{summary}");
    loki.stop();
    let (status, summary) = probe(&format!("kind = \"loki\"\nurl = \"{url}\"\n")).await;
    assert_eq!(status, Status::Fail);
    assert!(summary.contains("cannot connect"), "{summary}");
}

#[tokio::test]
async fn tcp_checks_reachability() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let open = listener.local_addr().unwrap();
    assert_eq!(probe(&format!("kind = \"tcp\"\naddress = \"{open}\"\n")).await.0, Status::Pass);
    let (status, summary) =
        probe(&format!("kind = \"tcp\"\naddress = \"127.0.0.1:{}\"\n", free_port())).await;
    assert_eq!(status, Status::Fail, "{summary}");
}

/// A TLS server on loopback presenting a self-signed certificate that expires `days` from today.
async fn tls_server(days_left: i64) -> SocketAddr {
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
    let today = RunOptions::now(Duration::ZERO).today.days_since_epoch();
    let ymd = |d: Date| rcgen::date_time_ymd(d.year, d.month, d.day);
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    params.not_before = ymd(Date::from_days_since_epoch(today - 400));
    params.not_after = ymd(Date::from_days_since_epoch(today + days_left));
    let cert = params.self_signed(&key).unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![CertificateDer::from(cert.der().to_vec())],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        )
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                if let Ok(mut tls) = acceptor.accept(stream).await {
                    let _ = tokio::io::AsyncWriteExt::shutdown(&mut tls).await;
                }
            });
        }
    });
    addr
}

#[tokio::test]
async fn tls_judges_certificate_expiry() {
    let check =
        |addr: SocketAddr| format!("kind = \"tls\"\naddress = \"{addr}\"\nserver_name = \"localhost\"\n");
    let (status, summary) = probe(&check(tls_server(200).await)).await;
    assert_eq!(status, Status::Pass, "{summary}");
    assert!(summary.starts_with("localhost: certificate valid until "), "{summary}");

    let (status, summary) = probe(&check(tls_server(20).await)).await;
    assert_eq!(status, Status::Warn, "{summary}");
    assert!(summary.contains("(renew within 30)"), "{summary}");

    let (status, summary) = probe(&check(tls_server(5).await)).await;
    assert_eq!(status, Status::Fail, "{summary}");
    assert!(summary.contains("(minimum 14)"), "{summary}");

    let (status, summary) = probe(&check(tls_server(-3).await)).await;
    assert_eq!(status, Status::Fail, "{summary}");
    assert!(summary.contains("certificate expired on"), "{summary}");

    // A plain TCP server is not TLS.
    let plain = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = plain.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = plain.accept().await {
            let _ = tokio::io::AsyncWriteExt::write_all(&mut s, b"HTTP/1.1 400 Bad Request\r\n\r\n").await;
        }
    });
    let (status, summary) = probe(&check(addr)).await;
    assert_eq!(status, Status::Fail, "{summary}");
    assert!(summary.contains("TLS handshake failed"), "{summary}");
}

#[tokio::test]
async fn postgres_reports_version_and_role_without_the_password() {
    let db = TestDb::create().await;
    let (status, summary) = probe(&format!("kind = \"postgres\"\nurl = \"{}\"\n", db.url())).await;
    assert_eq!(status, Status::Pass, "{summary}");
    assert!(summary.starts_with("PostgreSQL 1"), "{summary}");
    assert!(summary.contains(", primary,"), "{summary}");
    assert!(summary.contains(&format!("/{}", db.name())), "{summary}");

    // sslmode=require is honoured (the local Debian server has `ssl = on` with its snakeoil certificate).
    let (status, summary) =
        probe(&format!("kind = \"postgres\"\nurl = \"{}?sslmode=require\"\n", db.url())).await;
    assert_eq!(status, Status::Pass, "{summary} (does the server have `ssl = on`?)");
    assert!(summary.contains(", TLS,"), "{summary}");

    let secret = "hunter2-not-logged";
    let bad =
        format!("kind = \"postgres\"\nurl = \"postgres://nobody:{secret}@127.0.0.1:{}/x\"\n", free_port());
    let (status, summary) = probe(&bad).await;
    assert_eq!(status, Status::Fail, "{summary}");
    assert!(!summary.contains(secret), "{summary}");
}

#[tokio::test]
async fn prometheus_targets_names_the_target_that_is_down() {
    let down = free_port();
    let prometheus = Prometheus::start_with(|port| {
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: prometheus\n    static_configs:\n      - targets: ['127.0.0.1:{port}']\n  \
             - job_name: api\n    static_configs:\n      - targets: ['127.0.0.1:{down}']\n"
        )
    });
    let url = prometheus.url();
    // Targets are "unknown" until their first scrape; wait for both to have one.
    let http = reqwest::Client::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let body: serde_json::Value =
            http.get(format!("{url}/api/v1/targets")).send().await.unwrap().json().await.unwrap();
        let targets = body["data"]["activeTargets"].as_array().cloned().unwrap_or_default();
        if targets.len() == 2 && targets.iter().all(|t| t["health"] != "unknown") {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "targets never scraped: {body}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    let (status, summary) = probe(&format!("kind = \"prometheus_targets\"\nurl = \"{url}\"\n")).await;
    assert_eq!(status, Status::Fail, "{summary}");
    assert!(
        summary.starts_with(&format!("1 of 2 targets not up: api http://127.0.0.1:{down}/metrics (")),
        "{summary}"
    );

    let (status, summary) =
        probe(&format!("kind = \"prometheus_targets\"\nurl = \"{url}\"\njob = \"prometheus\"\n")).await;
    assert_eq!((status, summary.as_str()), (Status::Pass, "1 targets of job prometheus up"));

    let (status, summary) =
        probe(&format!("kind = \"prometheus_targets\"\nurl = \"{url}\"\njob = \"nope\"\n")).await;
    assert_eq!(status, Status::Fail, "{summary}");
    assert!(summary.ends_with("has no active targets of job nope"), "{summary}");
}

#[tokio::test]
async fn otlp_accepts_an_export_on_a_real_receiver() {
    let tap = Oteltap::start();
    let (status, summary) = probe(&format!("kind = \"otlp\"\nurl = \"{}\"\n", tap.endpoint())).await;
    assert_eq!(status, Status::Pass, "{summary}");
    let (status, _) = probe(&format!("kind = \"otlp\"\nurl = \"http://127.0.0.1:{}\"\n", free_port())).await;
    assert_eq!(status, Status::Fail);
    // A gateway token in the URL is never shown, whether the export is accepted or not.
    let with_token = tap.endpoint().replace("http://", "http://123456:glc-token@");
    let (status, summary) = probe(&format!("kind = \"otlp\"\nurl = \"{with_token}\"\n")).await;
    assert_eq!(status, Status::Pass, "{summary}");
    assert!(!summary.contains("glc-token") && summary.contains("123456:[REDACTED]@"), "{summary}");
}

#[tokio::test]
async fn docs_need_every_required_section() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("runbook.md");
    std::fs::write(&path, "# Runbook\n\n## Alerts\n### BackupStale\ntext\n## Restore a backup\n").unwrap();
    let docs =
        |sections: &str| format!("kind = \"docs\"\npath = \"{}\"\nsections = {sections}\n", path.display());
    assert_eq!(probe(&docs("[\"alerts\", \"Restore\"]")).await.0, Status::Pass);
    let (status, summary) = probe(&docs("[\"Alerts\", \"Rollback\", \"Postmortem\"]")).await;
    assert_eq!(status, Status::Fail);
    assert!(summary.ends_with("lacks sections: Rollback, Postmortem"), "{summary}");
    std::fs::write(&path, "# Runbook\n```sh\n# Rollback\n```\n#!/bin/sh Postmortem\n").unwrap();
    let (status, summary) = probe(&docs("[\"Rollback\", \"Postmortem\"]")).await;
    assert_eq!(status, Status::Fail, "code comments and shebangs are not headings");
    assert!(summary.ends_with("lacks sections: Rollback, Postmortem"), "{summary}");
    std::fs::write(&path, "  \n").unwrap();
    assert_eq!(probe(&docs("[]")).await.0, Status::Fail);
    let missing = format!("kind = \"docs\"\npath = \"{}\"\n", dir.path().join("nope.md").display());
    let (status, summary) = probe(&missing).await;
    assert_eq!(status, Status::Fail);
    assert!(summary.starts_with("no document at "), "{summary}");
}

#[tokio::test]
async fn coverage_reads_lcov_and_llvm_cov_json() {
    let dir = tempfile::tempdir().unwrap();
    let lcov = dir.path().join("lcov.info");
    std::fs::write(&lcov, "SF:a.rs\nLF:100\nLH:90\nend_of_record\nSF:b.rs\nLF:100\nLH:70\nend_of_record\n")
        .unwrap();
    let check = |path: &std::path::Path, min: f64| {
        format!("kind = \"coverage\"\npath = \"{}\"\nmin_percent = {min:?}\n", path.display())
    };
    assert_eq!(
        probe(&check(&lcov, 80.0)).await,
        (Status::Pass, "80.0% of lines covered (minimum 80%)".to_owned())
    );
    assert_eq!(
        probe(&check(&lcov, 85.0)).await,
        (Status::Fail, "80.0% of lines covered, below 85%".to_owned())
    );
    let json = dir.path().join("cov.json");
    std::fs::write(&json, r#"{"data":[{"totals":{"lines":{"count":10,"covered":9,"percent":90.0}}}]}"#)
        .unwrap();
    assert_eq!(probe(&check(&json, 80.0)).await.0, Status::Pass);
    std::fs::write(&json, "{}").unwrap();
    assert_eq!(probe(&check(&json, 80.0)).await.0, Status::Error);

    // Several reports, a threshold each: backend 80%, frontend 60%.
    let frontend = dir.path().join("frontend.info");
    std::fs::write(&frontend, "SF:app.ts\nLF:200\nLH:110\nend_of_record\n").unwrap();
    let both = |front_min: u32| {
        format!(
            "kind = \"coverage\"\nreports = [{{ name = \"backend\", path = \"{}\", min_percent = 80 }}, \
             {{ name = \"frontend\", path = \"{}\", min_percent = {front_min} }}]\n",
            lcov.display(),
            frontend.display()
        )
    };
    assert_eq!(
        probe(&both(55)).await,
        (
            Status::Pass,
            "backend: 80.0% of lines covered (minimum 80%); frontend: 55.0% of lines covered (minimum 55%)"
                .to_owned()
        )
    );
    assert_eq!(
        probe(&both(60)).await,
        (
            Status::Fail,
            "backend: 80.0% of lines covered (minimum 80%); frontend: 55.0% of lines covered, below 60%"
                .to_owned()
        )
    );
    std::fs::remove_file(&frontend).unwrap();
    assert_eq!(probe(&both(60)).await.0, Status::Fail, "a missing report fails as the single form does");
}

/// Runs the real k6 against `addr` with one threshold that holds and one given by `extra`, writing both
/// summary formats; returns the paths.
async fn k6(
    dir: &std::path::Path,
    addr: SocketAddr,
    extra: &str,
) -> (std::path::PathBuf, std::path::PathBuf) {
    let script = dir.join("script.js");
    let summary = dir.join("summary.json");
    let export = dir.join("export.json");
    std::fs::write(
        &script,
        format!(
            "import http from 'k6/http';\n\
             export const options = {{ iterations: 5, thresholds: {{ http_req_failed: ['rate<0.5'], {extra} }} }};\n\
             export default function () {{ http.get('http://{addr}/healthz'); }}\n\
             export function handleSummary(data) {{ return {{ '{}': JSON.stringify(data) }}; }}\n",
            summary.display()
        ),
    )
    .unwrap();
    // Async, so the test's own runtime keeps serving k6's requests.
    let out = tokio::process::Command::new(peer_bin("k6"))
        .args(["run", "--quiet", "--no-usage-report", "--summary-export"])
        .arg(&export)
        .arg(&script)
        .env("K6_NO_USAGE_REPORT", "true")
        .kill_on_drop(true)
        .output()
        .await
        .unwrap();
    assert!(summary.is_file(), "k6 wrote no summary: {}", String::from_utf8_lossy(&out.stderr));
    (summary, export)
}

#[tokio::test]
async fn loadtest_reads_real_k6_summaries() {
    let addr = http_server().await;
    let dir = tempfile::tempdir().unwrap();
    let check = |path: &std::path::Path| format!("kind = \"loadtest\"\npath = \"{}\"\n", path.display());

    let (summary, export) = k6(dir.path(), addr, "http_req_duration: ['p(95)<10000']").await;
    for path in [&summary, &export] {
        assert_eq!(
            probe(&check(path)).await,
            (Status::Pass, "all 2 thresholds held".to_owned()),
            "{}",
            path.display()
        );
    }
    let (summary, export) = k6(dir.path(), addr, "'http_req_duration{status:200}': ['max<0.0001']").await;
    for path in [&summary, &export] {
        let (status, text) = probe(&check(path)).await;
        assert_eq!(status, Status::Fail, "{}", path.display());
        assert_eq!(text, "1 of 2 thresholds failed: http_req_duration{status:200} max<0.0001");
    }
    // A passing summary from 40 days ago is too old under the default 30 days, fine under 60.
    let (summary, _) = k6(dir.path(), addr, "http_req_duration: ['p(95)<10000']").await;
    let old = std::time::SystemTime::now() - Duration::from_secs(40 * 86_400);
    std::fs::File::options().write(true).open(&summary).unwrap().set_modified(old).unwrap();
    let (status, text) = probe(&check(&summary)).await;
    assert_eq!(status, Status::Fail);
    assert!(text.contains(" old (at most 30days allowed): run the load test again"), "{text}");
    let (status, _) = probe(&format!("{}max_age = \"60d\"\n", check(&summary))).await;
    assert_eq!(status, Status::Pass);
}

#[tokio::test]
async fn command_passes_on_exit_zero() {
    assert_eq!(probe("kind = \"command\"\nrun = [\"true\"]\n").await.0, Status::Pass);
    let (status, summary) = probe("kind = \"command\"\nrun = [\"prodready-no-such-program\"]\n").await;
    assert_eq!(
        (status, summary.as_str()),
        (Status::Fail, "`prodready-no-such-program` is not installed or not on PATH")
    );
}

#[tokio::test]
async fn manual_attestations_pending_valid_expired() {
    // Fixed "today": 2026-11-29.
    let today = Date { year: 2026, month: 11, day: 29 };
    let options = || RunOptions { today, ..RunOptions::now(Duration::from_secs(1)) };
    let check = |rest: &str| format!("kind = \"manual\"\nowner = \"ops@example.com\"\n{rest}");
    let cases = [
        (
            "",
            Status::ManualPending,
            "not attested yet (owner: ops@example.com); set attested_at and evidence",
        ),
        (
            "attested_at = 2026-10-01\nexpires_after = \"90d\"\nevidence = \"https://wiki/drill\"\n",
            Status::Pass,
            "attested 2026-10-01 (owner: ops@example.com), valid until 2026-12-30, evidence: https://wiki/drill",
        ),
        (
            "attested_at = 2026-06-01\nexpires_after = \"90d\"\nevidence = \"https://wiki/drill\"\n",
            Status::ManualExpired,
            "attested 2026-06-01, expired 2026-08-30 (owner: ops@example.com); redo it and update attested_at",
        ),
        (
            "attested_at = 2026-11-01\n",
            Status::Warn,
            "attested 2026-11-01 (owner: ops@example.com), but no evidence link",
        ),
        (
            "attested_at = 2027-01-01\nevidence = \"x\"\n",
            Status::Error,
            "attested_at 2027-01-01 is in the future",
        ),
        // Tomorrow in UTC is today east of it (Sydney's morning): accepted; the day after is not.
        (
            "attested_at = 2026-11-30\nevidence = \"x\"\n",
            Status::Pass,
            "attested 2026-11-30 (owner: ops@example.com), evidence: x",
        ),
        (
            "attested_at = 2026-12-01\nevidence = \"x\"\n",
            Status::Error,
            "attested_at 2026-12-01 is in the future",
        ),
    ];
    for (rest, status, summary) in cases {
        assert_eq!(probe_on(&check(rest), options()).await, (status, summary.to_owned()), "{rest}");
    }
}

/// Moves a backup (and its verifications) `days` into the past, as if it had been taken then.
fn age_backup(store_dir: &std::path::Path, id: &str, days: u64) {
    let then = |rfc: &str| {
        let t = humantime::parse_rfc3339(rfc).unwrap() - Duration::from_secs(days * 86_400);
        humantime::format_rfc3339_seconds(t).to_string()
    };
    for entry in std::fs::read_dir(store_dir.join(id)).unwrap().flatten() {
        let name = entry.file_name().into_string().unwrap();
        if name == "manifest.json" || name.starts_with("verify-") {
            let mut doc: serde_json::Value =
                serde_json::from_slice(&std::fs::read(entry.path()).unwrap()).unwrap();
            for key in ["created_at", "verified_at"] {
                if let Some(at) = doc.get(key).and_then(|v| v.as_str()).map(then) {
                    doc[key] = serde_json::Value::String(at);
                }
            }
            std::fs::write(entry.path(), serde_json::to_vec(&doc).unwrap()).unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_freshness_and_proof_from_a_real_store() {
    let db = TestDb::create().await;
    db.connect()
        .await
        .batch_execute("CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t SELECT generate_series(1, 100)")
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store_dir = dir.path().join("store");
    let check = format!("kind = \"backup\"\nstore = \"{}\"\n", store_dir.display());

    let (status, summary) = probe(&check).await;
    assert_eq!((status, summary.starts_with("no backup in ")), (Status::Fail, true), "{summary}");

    let store = prodready_backup::Store::open(store_dir.to_str().unwrap()).unwrap();
    let quiet: Arc<dyn prodready_backup::Progress> = Arc::new(prodready_backup::NoProgress);
    let fresh =
        prodready_backup::backup(&store, &prodready_backup::BackupOptions::new(db.url()), quiet.clone())
            .await
            .unwrap();
    let (status, summary) = probe(&check).await;
    assert_eq!(status, Status::Fail);
    assert!(summary.ends_with("but no backup has passed a restore verification"), "{summary}");

    let verify = prodready_backup::VerifyOptions {
        scratch_url: db.url().to_owned(),
        smoke_sql: vec![],
        jobs: 1,
        identity_files: vec![],
        tools: prodready_backup::Tools::default(),
    };
    assert!(prodready_backup::verify(&store, &fresh, &verify).await.unwrap().ok);
    let (status, summary) = probe(&check).await;
    assert_eq!(status, Status::Pass, "{summary}");
    assert!(summary.starts_with(&format!("newest backup {} is ", fresh.id)), "{summary}");

    // A stale store: the only backup, and its verification, are ten days old.
    age_backup(&store_dir, &fresh.id, 10);
    let (status, summary) = probe(&check).await;
    assert_eq!(status, Status::Fail);
    assert!(summary.contains("is 10days old (limit 1day 2h)"), "{summary}");
    let lenient = format!("{check}max_age = \"30d\"\n");
    let (status, summary) = probe(&lenient).await;
    assert_eq!(status, Status::Fail);
    assert!(
        summary.contains("the last restore verification (backup") && summary.ends_with("(limit 8days)"),
        "{summary}"
    );

    // Scoped to another database, the store holds nothing.
    let (status, _) = probe(&format!("{check}database = \"other\"\n")).await;
    assert_eq!(status, Status::Fail);
}

/// With a WAL archive in the store, the backup check reports the recovery point it reaches (the newest
/// archived WAL file's age), and fails on a gap in it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_check_reports_the_wal_archives_recovery_point() {
    let cluster = prodready_test_support::Cluster::builder().start();
    cluster.psql("CREATE TABLE t AS SELECT g FROM generate_series(1, 1000) g");
    let mut segments = Vec::new();
    for _ in 0..3 {
        cluster.psql("INSERT INTO t SELECT g FROM generate_series(1, 1000) g");
        segments.push(cluster.psql("SELECT pg_walfile_name(pg_current_wal_lsn())"));
        cluster.psql("SELECT pg_switch_wal()");
    }
    let dir = tempfile::tempdir().unwrap();
    let store_dir = dir.path().join("store");
    let store = prodready_backup::Store::open(store_dir.to_str().unwrap()).unwrap();
    let archive = prodready_backup::wal::WalArchive::new(store.clone());
    for name in &segments {
        let path = cluster.data_dir().join("pg_wal").join(name);
        archive.push(&path, &prodready_backup::wal::PushOptions::default()).unwrap();
    }
    let check = format!("kind = \"backup\"\nstore = \"{}\"\n", store_dir.display());
    let (status, summary) = probe(&check).await;
    assert_eq!(status, Status::Fail, "no backup yet: {summary}");
    let last = segments.last().unwrap();
    assert!(
        summary.ends_with(&format!(
            "; WAL archived up to under a minute ago ({last}); no recovery drill has passed yet"
        )),
        "{summary}"
    );

    let middle = store
        .list(prodready_backup::wal::WAL_DIR, "")
        .unwrap()
        .into_iter()
        .find(|o| o.name.contains(&segments[1]))
        .unwrap();
    store.delete(prodready_backup::wal::WAL_DIR, &middle.name).unwrap();
    let (status, summary) = probe(&check).await;
    assert_eq!(status, Status::Fail);
    assert!(
        summary.contains(&format!("but 1 WAL segments are missing (first {})", segments[1])),
        "{summary}"
    );
}

#[tokio::test]
async fn alert_rules_pass_the_linter_and_real_promtool() {
    let dir = tempfile::tempdir().unwrap();
    let pack = prodready_metrics_alerts::pack::rule_file(&Default::default());
    std::fs::write(dir.path().join("pack.yml"), pack.to_yaml("pack")).unwrap();
    let promtool = peer_bin("promtool");
    let check = |extra: &str| format!("kind = \"alert_rules\"\npath = \"{}\"\n{extra}", dir.path().display());
    let with_promtool = check(&format!("promtool = \"{}\"\n", promtool.display()));
    let (status, summary) = probe(&with_promtool).await;
    assert_eq!(
        (status, summary.as_str()),
        (Status::Pass, "1 files, 29 alerts: offline checks and promtool --lint=all pass")
    );

    let (status, summary) = probe(&check("promtool = \"/nonexistent/promtool\"\n")).await;
    assert_eq!(status, Status::Warn, "{summary}");
    assert!(summary.ends_with("promtool is not installed"), "{summary}");

    std::fs::write(
        dir.path().join("bad.yml"),
        "groups:\n- name: g\n  rules:\n  - alert: X\n    expr: up\n    for: 1m\n",
    )
    .unwrap();
    let (status, summary) = probe(&with_promtool).await;
    assert_eq!(status, Status::Fail);
    assert!(summary.starts_with("5 problems: bad.yml: g / X: comparison:"), "{summary}");

    let (status, _) =
        probe(&format!("kind = \"alert_rules\"\npath = \"{}\"\n", dir.path().join("none").display())).await;
    assert_eq!(status, Status::Fail);
}

#[tokio::test]
async fn env_files_fail_while_they_hold_values_and_never_show_one() {
    let dir = tempfile::tempdir().unwrap();
    let check = format!("kind = \"env_files\"\npath = \"{}\"\n", dir.path().display());
    assert_eq!(probe(&check).await.0, Status::Pass, "no .env at all");
    std::fs::write(dir.path().join(".env.example"), "DATABASE_URL=postgres://user:changeme@db/app\n")
        .unwrap();
    std::fs::write(
        dir.path().join(".env"),
        "# keys only, values come from the store\nDATABASE_URL=\nAPI_TOKEN=\n",
    )
    .unwrap();
    assert_eq!(probe(&check).await.0, Status::Pass, "templates and empty values are fine");
    std::fs::write(
        dir.path().join(".env"),
        "DATABASE_URL=postgres://app:s3cr3t@db/app\nexport API_TOKEN='tok-live-42'\nEMPTY=\n",
    )
    .unwrap();
    std::fs::write(dir.path().join(".env.production"), "STRIPE_KEY=\"sk_live_9\"\n").unwrap();
    let (status, summary) = probe(&check).await;
    assert_eq!(status, Status::Fail);
    assert!(summary.contains(".env (2 values: DATABASE_URL, API_TOKEN)"), "{summary}");
    assert!(summary.contains(".env.production (1 value: STRIPE_KEY)"), "{summary}");
    for secret in ["s3cr3t", "tok-live-42", "sk_live_9", "changeme"] {
        assert!(!summary.contains(secret), "{summary}");
    }
    std::fs::write(dir.path().join(".env.production"), "STRIPE_KEY=\"sk_live_9\n").unwrap();
    let (status, summary) = probe(&check).await;
    assert_eq!(status, Status::Fail);
    assert!(
        summary.contains("unparsable") && summary.contains(":1:") && !summary.contains("sk_live_9"),
        "{summary}"
    );
}

/// A service's own folder is searched (a few levels down); dependencies and build output are not.
#[tokio::test]
async fn env_files_in_service_folders_count_and_dependencies_do_not() {
    let dir = tempfile::tempdir().unwrap();
    let check = format!("kind = \"env_files\"\npath = \"{}\"\n", dir.path().display());
    for (folder, value) in [
        ("node_modules/some-package", "NPM_TOKEN=npm_dependency_value\n"),
        ("target/debug", "KEY=build_output_value\n"),
        ("a/b/c/d", "DEEP=too_deep_value\n"),
    ] {
        std::fs::create_dir_all(dir.path().join(folder)).unwrap();
        std::fs::write(dir.path().join(folder).join(".env"), value).unwrap();
    }
    assert_eq!(probe(&check).await.0, Status::Pass, "only skipped folders hold .env files");
    std::fs::create_dir_all(dir.path().join("services/api")).unwrap();
    std::fs::write(dir.path().join("services/api/.env"), "SESSION_KEY=svc_secret_value\n").unwrap();
    let (status, summary) = probe(&check).await;
    assert_eq!(status, Status::Fail);
    assert!(summary.contains("services/api/.env (1 value: SESSION_KEY)"), "{summary}");
    for hidden in ["node_modules", "target", "a/b/c/d", "svc_secret_value"] {
        assert!(!summary.contains(hidden), "{hidden}: {summary}");
    }
}

/// With `scans`, the reports must cover a secret scan and a dependency scan: told apart by the run's
/// automation id (prodready's) or its tool (gitleaks, osv-scanner...). A clean secret scan alone fails.
#[tokio::test]
async fn scan_reports_must_cover_the_scans_named() {
    let dir = tempfile::tempdir().unwrap();
    let check = format!(
        "kind = \"scan_report\"\npath = \"{}\"\nscans = [\"secrets\", \"dependencies\"]\n",
        dir.path().display()
    );
    let run = |tool: &str, id: &str| {
        format!(
            r#"{{"version":"2.1.0","runs":[{{"tool":{{"driver":{{"name":"{tool}"}}}},"automationDetails":{{"id":"{id}"}},"results":[]}}]}}"#
        )
    };
    std::fs::write(dir.path().join("secrets.sarif"), run("prodready", "prodready/scan/secrets/")).unwrap();
    let (status, summary) = probe(&check).await;
    assert_eq!(status, Status::Fail);
    assert!(summary.starts_with("no dependencies scan among the reports"), "{summary}");
    std::fs::write(dir.path().join("semgrep.sarif"), run("semgrep", "")).unwrap();
    assert_eq!(probe(&check).await.0, Status::Fail, "a code scan is not a dependency scan");
    std::fs::write(dir.path().join("deps.sarif"), run("osv-scanner", "")).unwrap();
    assert_eq!(probe(&check).await.0, Status::Pass);
    std::fs::remove_file(dir.path().join("secrets.sarif")).unwrap();
    std::fs::write(dir.path().join("deps.sarif"), run("prodready", "prodready/scan/deps/")).unwrap();
    std::fs::write(dir.path().join("leaks.sarif"), run("gitleaks", "")).unwrap();
    assert_eq!(probe(&check).await.0, Status::Pass);
    // A name the kind does not know is one clear error.
    let bad = format!(
        "id = \"probe\"\ntitle = \"Probe\"\ncategory = \"Features\"\n{}",
        check.replace("\"dependencies\"", "\"licenses\"")
    );
    let err = toml::from_str::<CheckSpec>(&bad).unwrap().validate().unwrap_err().to_string();
    assert!(err.contains("`licenses` is not one of secrets, dependencies"), "{err}");
}

#[tokio::test]
async fn loki_retention_reads_the_running_configuration() {
    // The receiver answers `GET /config` as Loki does (retention on, 30 days printed as 4w2d).
    let loki = prodready_test_support::LokiReceiver::start();
    let url = loki.url();
    let check =
        |min_days: u32| format!("kind = \"loki_retention\"\nurl = \"{url}\"\nmin_days = {min_days}\n");
    let (status, summary) = probe(&check(30)).await;
    assert_eq!(
        (status, summary.as_str()),
        (Status::Pass, &*format!("Loki at {url} keeps logs 30 days (4w2d), then deletes them"))
    );
    let (status, summary) = probe(&check(31)).await;
    assert_eq!(
        (status, summary.as_str()),
        (Status::Fail, &*format!("Loki at {url} deletes logs after 30 days (4w2d); at least 31 are needed"))
    );
    for (config, expected) in [
        (
            "compactor:\n  retention_enabled: false\nlimits_config:\n  retention_period: 4w2d\n",
            "keeps logs forever (compactor.retention_enabled: false, retention_period: 4w2d)",
        ),
        (
            "compactor:\n  retention_enabled: true\nlimits_config:\n  retention_period: 0s\n",
            "keeps logs forever (compactor.retention_enabled: true, retention_period: 0s)",
        ),
        (
            "limits_config:\n  retention_period: 1y\n",
            "keeps logs forever (compactor.retention_enabled: false",
        ),
        (
            "compactor:\n  retention_enabled: true\nlimits_config:\n  retention_period: 1y\n",
            "keeps logs 365 days (1y)",
        ),
        (
            "compactor:\n  retention_enabled: true\nlimits_config:\n  retention_period: 2160h\n",
            "keeps logs 90 days (2160h)",
        ),
        (
            "compactor:\n  retention_enabled: true\nlimits_config:\n  retention_period: 3 weeks\n",
            "retention_period `3 weeks` is not a duration",
        ),
    ] {
        loki.set_config(config);
        let (_, summary) = probe(&check(30)).await;
        assert!(summary.contains(expected), "{config}: {summary}");
    }
    loki.stop();
    let (status, summary) = probe(&check(30)).await;
    assert_eq!(status, Status::Fail);
    assert!(summary.contains("cannot connect"), "{summary}");
}

const SLACK_ONLY: &str = "route:\n  receiver: default\n  routes:\n  - receiver: pager\n    matchers: ['severity=\"critical\"']\nreceivers:\n- name: default\n  slack_configs: [{channel: '#a', api_url: 'http://x'}]\n- name: pager\n  slack_configs: [{channel: '#b', api_url: 'http://x'}]\n";

#[tokio::test]
async fn alerting_follows_alertmanagers_routing_for_a_critical_alert() {
    let dir = tempfile::tempdir().unwrap();
    let file = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        format!("kind = \"alerting\"\npath = \"{}\"\n", path.display())
    };
    // The generated configuration with email: critical alerts reach email and Slack (and PagerDuty).
    let generated = prodready_metrics_alerts::alertmanager::config(
        &prodready_metrics_alerts::alertmanager::AlertmanagerOptions {
            email: Some(prodready_metrics_alerts::alertmanager::EmailOptions {
                to: vec!["oncall@example.com".into()],
                from: "a@example.com".into(),
                smarthost: "smtp.example.com:587".into(),
                username: None,
                password_file: None,
                require_tls: true,
            }),
            pagerduty: Some(prodready_metrics_alerts::alertmanager::PagerDutyOptions {
                routing_key_file: "/etc/prodready/pd".into(),
                url: None,
            }),
            ..prodready_metrics_alerts::alertmanager::AlertmanagerOptions::slack(
                "/etc/prodready/hook".into(),
                "#c",
                "#w",
            )
        },
    );
    let (status, summary) = probe(&file("full.yml", &generated)).await;
    assert_eq!(status, Status::Pass, "{summary}");
    assert!(
        summary.ends_with("critical alerts reach email, pagerduty, slack (receiver critical)"),
        "{summary}"
    );
    let (status, summary) =
        probe(&format!("{}channels = [\"pagerduty\"]\n", file("full.yml", &generated))).await;
    assert_eq!(status, Status::Pass, "{summary}");

    // Slack only (the generated file without email): not enough, and the missing channel is named.
    let slack = prodready_metrics_alerts::alertmanager::config(
        &prodready_metrics_alerts::alertmanager::AlertmanagerOptions::slack("/etc/h".into(), "#c", "#w"),
    );
    let (status, summary) = probe(&file("slack.yml", &slack)).await;
    assert_eq!(status, Status::Fail);
    assert!(summary.ends_with("critical alerts reach slack (receiver critical), not email"), "{summary}");

    // Routing is followed: `continue` adds a sibling's receiver; a non-matching route is skipped.
    let routed = "route:\n  receiver: default\n  routes:\n  - receiver: mail\n    match: {severity: critical}\n    continue: true\n  - receiver: chat\n    matchers: ['severity=~\"crit.*\"']\n  - receiver: never\n    matchers: ['severity!=\"critical\"']\nreceivers:\n- name: default\n- name: mail\n  email_configs: [{to: a@example.com}]\n- name: chat\n  slack_configs: [{channel: '#c'}]\n- name: never\n  pagerduty_configs: [{routing_key: x}]\n";
    let (status, summary) = probe(&file("routed.yml", routed)).await;
    assert_eq!(status, Status::Pass, "{summary}");
    assert!(summary.ends_with("critical alerts reach email, slack (receiver mail, chat)"), "{summary}");

    let (status, summary) = probe(&file("slack-only.yml", SLACK_ONLY)).await;
    assert_eq!(status, Status::Fail, "{summary}");
    let (status, summary) = probe(&file("broken.yml", "route:\n  receiver: ghost\nreceivers: []\n")).await;
    assert_eq!(status, Status::Error, "{summary}");
    assert!(summary.contains("receiver `ghost`, which is not defined"), "{summary}");

    // From a running Alertmanager: its /api/v2/status.
    let am = prodready_test_support::Alertmanager::start(&generated);
    let (status, summary) = probe(&format!("kind = \"alerting\"\nurl = \"{}\"\n", am.url())).await;
    assert_eq!(status, Status::Pass, "{summary}");
    assert!(summary.starts_with("Alertmanager at http://127.0.0.1:"), "{summary}");
}

/// `attestations` passes when every manual check of the same run is current, and names the others.
#[tokio::test]
async fn attestations_sum_up_the_runs_manual_checks() {
    let today = Date::from_days_since_epoch(20_000);
    let options = RunOptions { today, ..RunOptions::now(Duration::from_secs(5)) };
    // Checks c0, c1... of these bodies.
    let checks = |bodies: &[&str]| -> Vec<prodready_checklist::Check> {
        bodies
            .iter()
            .enumerate()
            .map(|(i, body)| {
                let text = format!("id = \"c{i}\"\ntitle = \"C\"\ncategory = \"Documentation\"\n{body}");
                toml::from_str::<CheckSpec>(&text).unwrap().validate().unwrap()
            })
            .collect()
    };
    let run = |bodies: &[&str]| {
        let options = options.clone();
        let specs = checks(bodies);
        async move {
            let results =
                prodready_checklist::run(&specs, &options, Arc::new(prodready_checklist::Quiet)).await;
            let last = results.last().unwrap();
            (last.status, last.summary.clone())
        }
    };
    let fresh = format!("kind = \"manual\"\nattested_at = {today}\nevidence = \"https://wiki/drill\"\n");
    let pending = "kind = \"manual\"\n";
    let expired = "kind = \"manual\"
attested_at = 2020-01-01
expires_after = \"90d\"
evidence = \"x\"
";
    let na = "kind = \"manual\"\nnot_applicable = \"no on-call needed for an internal tool\"\n";
    let all = "kind = \"attestations\"\n";
    assert_eq!(
        run(&[&fresh, na, all]).await,
        (Status::Pass, "all 1 manual attestations are current".to_owned())
    );
    assert_eq!(
        run(&[&fresh, pending, expired, all]).await,
        (
            Status::Fail,
            "2 of 3 manual attestations not current: c1 (manual-pending), c2 (manual-expired)".to_owned()
        )
    );
    assert_eq!(run(&[all]).await.0, Status::Warn);
    // A selection (`--only attestations`) still judges the whole checklist's manual checks.
    let whole = checks(&[&fresh, pending, all]);
    let selected = vec![whole[2].clone()];
    let options = RunOptions { checklist: Some(whole), ..options.clone() };
    let results = prodready_checklist::run(&selected, &options, Arc::new(prodready_checklist::Quiet)).await;
    assert_eq!(
        (results[0].status, results[0].summary.as_str()),
        (Status::Fail, "1 of 2 manual attestations not current: c1 (manual-pending)")
    );
}

#[tokio::test]
async fn scan_report_reads_sarif_and_wants_it_recent_and_clean() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("scan.sarif");
    let check = format!("kind = \"scan_report\"\npath = \"{}\"\nmax_age = \"2d\"\n", path.display());
    let sarif = |results: &str| {
        format!(
            r#"{{"version":"2.1.0","runs":[{{"tool":{{"driver":{{"name":"gitleaks"}}}},"results":[{results}]}}]}}"#
        )
    };
    let (status, summary) = probe(&check).await;
    assert_eq!(status, Status::Fail);
    assert!(summary.starts_with("no scan report at"), "{summary}");
    std::fs::write(&path, sarif("")).unwrap();
    assert_eq!(probe(&check).await, (Status::Pass, "gitleaks: no findings".to_owned()));
    std::fs::write(&path, sarif(r#"{"ruleId":"todo","level":"note","message":{"text":"x"}}"#)).unwrap();
    assert_eq!(probe(&check).await, (Status::Pass, "gitleaks: no findings (1 notes)".to_owned()));
    let leak = r#"{"ruleId":"aws-access-token","message":{"text":"AWS key"},"locations":[{"physicalLocation":{"artifactLocation":{"uri":"src/config.rs"},"region":{"startLine":12}}}]}"#;
    std::fs::write(&path, sarif(&format!("{leak},{leak}"))).unwrap();
    assert_eq!(
        probe(&check).await,
        (
            Status::Fail,
            "gitleaks: 2 findings: aws-access-token at src/config.rs:12, aws-access-token at src/config.rs:12".to_owned()
        )
    );
    // A clean report from three days ago is stale.
    std::fs::write(&path, sarif("")).unwrap();
    let old = std::time::SystemTime::now() - Duration::from_secs(3 * 86_400);
    std::fs::File::options().write(true).open(&path).unwrap().set_modified(old).unwrap();
    let (status, summary) = probe(&check).await;
    assert_eq!(status, Status::Fail);
    assert!(summary.contains("is 3days old (at most 2days allowed): run gitleaks again"), "{summary}");
    std::fs::write(&path, "{\"not\": \"sarif\"}").unwrap();
    assert_eq!(probe(&check).await.0, Status::Error);
    // No run, or a run that did not finish, proves nothing.
    std::fs::write(&path, r#"{"version":"2.1.0","runs":[]}"#).unwrap();
    let (status, summary) = probe(&check).await;
    assert_eq!(status, Status::Error);
    assert!(summary.ends_with("scan.sarif: the SARIF log holds no run: no scan ran"), "{summary}");
    std::fs::write(
        &path,
        r#"{"version":"2.1.0","runs":[{"tool":{"driver":{"name":"gitleaks"}},"invocations":[{"executionSuccessful":false}],"results":[]}]}"#,
    )
    .unwrap();
    let (status, summary) = probe(&check).await;
    assert_eq!(status, Status::Fail);
    assert!(
        summary.ends_with("gitleaks did not finish (executionSuccessful is false): run it again"),
        "{summary}"
    );
}

/// A directory of reports, as a CI job writes one per scan: every `*.sarif` in it is judged.
#[tokio::test]
async fn scan_report_reads_every_sarif_of_a_directory() {
    let dir = tempfile::tempdir().unwrap();
    let reports = dir.path().join("scan-reports");
    std::fs::create_dir(&reports).unwrap();
    let check = format!("kind = \"scan_report\"\npath = \"{}\"\nmax_age = \"2d\"\n", reports.display());
    let sarif = |tool: &str, results: &str| {
        format!(
            r#"{{"version":"2.1.0","runs":[{{"tool":{{"driver":{{"name":"{tool}"}}}},"results":[{results}]}}]}}"#
        )
    };
    let (status, summary) = probe(&check).await;
    assert_eq!(status, Status::Fail);
    assert!(summary.starts_with("no *.sarif scan report in"), "{summary}");
    std::fs::write(reports.join("secrets.sarif"), sarif("prodready-scan", "")).unwrap();
    std::fs::write(reports.join("notes.txt"), "not a report").unwrap();
    assert_eq!(probe(&check).await, (Status::Pass, "prodready-scan: no findings".to_owned()));
    let vulnerable = r#"{"ruleId":"RUSTSEC-2021-0003","level":"error","message":{"text":"smallvec"},"locations":[{"physicalLocation":{"artifactLocation":{"uri":"Cargo.lock"},"region":{"startLine":40}}}]}"#;
    let below = r#"{"ruleId":"RUSTSEC-2020-0071","level":"note","message":{"text":"time"}}"#;
    std::fs::write(reports.join("deps.sarif"), sarif("prodready-scan", below)).unwrap();
    assert_eq!(
        probe(&check).await,
        (Status::Pass, "prodready-scan: no findings (1 notes) (2 reports)".to_owned())
    );
    std::fs::write(reports.join("deps.sarif"), sarif("osv-scanner", vulnerable)).unwrap();
    assert_eq!(
        probe(&check).await,
        (
            Status::Fail,
            "osv-scanner, prodready-scan: 1 findings: RUSTSEC-2021-0003 at Cargo.lock:40 (2 reports)"
                .to_owned()
        )
    );
    // One stale report fails the check, whatever the others say.
    std::fs::write(reports.join("deps.sarif"), sarif("osv-scanner", "")).unwrap();
    let old = std::time::SystemTime::now() - Duration::from_secs(3 * 86_400);
    std::fs::File::options()
        .write(true)
        .open(reports.join("secrets.sarif"))
        .unwrap()
        .set_modified(old)
        .unwrap();
    let (status, summary) = probe(&check).await;
    assert_eq!(status, Status::Fail);
    assert!(
        summary.ends_with("secrets.sarif is 3days old (at most 2days allowed): run prodready-scan again"),
        "{summary}"
    );
}

#[tokio::test]
async fn dashboards_wants_a_grafana_dashboard_with_panels() {
    let dir = tempfile::tempdir().unwrap();
    let boards = dir.path().join("dashboards");
    let check = format!("kind = \"dashboards\"\npath = \"{}\"\n", boards.display());
    let (status, summary) = probe(&check).await;
    assert_eq!((status, summary.starts_with("no dashboard directory at")), (Status::Fail, true), "{summary}");
    std::fs::create_dir(&boards).unwrap();
    std::fs::write(boards.join("empty.json"), r#"{"title": "Empty", "panels": []}"#).unwrap();
    std::fs::write(boards.join("notes.md"), "not a dashboard").unwrap();
    let (status, summary) = probe(&check).await;
    assert_eq!(status, Status::Fail);
    assert!(
        summary.starts_with("no Grafana dashboard (a JSON file with a title and panels) in"),
        "{summary}"
    );
    // A provisioned dashboard, with a collapsed row holding two panels, and a UI export.
    std::fs::write(
        boards.join("api.json"),
        r#"{"title": "API", "panels": [{"type": "timeseries"}, {"type": "row", "panels": [{"type": "stat"}, {"type": "table"}]}]}"#,
    )
    .unwrap();
    std::fs::write(
        boards.join("db.json"),
        r#"{"dashboard": {"title": "Database", "panels": [{"type": "gauge"}]}}"#,
    )
    .unwrap();
    assert_eq!(probe(&check).await, (Status::Pass, "2 dashboards, 4 panels: API, Database".to_owned()));
    std::fs::write(boards.join("broken.json"), "{").unwrap();
    let (status, summary) = probe(&check).await;
    assert_eq!(status, Status::Fail);
    assert!(summary.contains("broken.json: not JSON"), "{summary}");
}

#[tokio::test]
async fn ci_workflow_finds_test_scan_coverage_and_deploy_steps() {
    let dir = tempfile::tempdir().unwrap();
    let workflows = dir.path().join(".github/workflows");
    std::fs::create_dir_all(&workflows).unwrap();
    std::fs::write(
        workflows.join("ci.yml"),
        "jobs:\n  test:\n    steps:\n      - run: cargo nextest run\n      - run: gitleaks detect\n",
    )
    .unwrap();
    let check = |steps: &str| format!("kind = \"ci_workflow\"\npath = \"{}\"\n{steps}", workflows.display());
    let (status, summary) = probe(&check("")).await;
    assert_eq!(status, Status::Fail);
    assert!(
        summary.ends_with("(1 files) runs no coverage step (it runs test (cargo nextest), scan (gitleaks))"),
        "{summary}"
    );
    std::fs::write(
        workflows.join("coverage.yaml"),
        "steps:\n  - run: cargo llvm-cov --lcov --output-path lcov.info\n",
    )
    .unwrap();
    let (status, summary) = probe(&check("")).await;
    assert_eq!(status, Status::Pass, "{summary}");
    assert!(
        summary.ends_with("(2 files) runs test (cargo nextest), scan (gitleaks), coverage (llvm-cov)"),
        "{summary}"
    );
    assert_eq!(probe(&check("steps = [\"deploy\"]\n")).await.0, Status::Fail);
    std::fs::write(workflows.join("deploy.yml"), "steps:\n  - run: helm upgrade --install api ./chart\n")
        .unwrap();
    assert_eq!(probe(&check("steps = [\"deploy\"]\n")).await.0, Status::Pass);
    let missing = format!("kind = \"ci_workflow\"\npath = \"{}\"\n", dir.path().join("nope").display());
    assert_eq!(probe(&missing).await.0, Status::Fail);

    // Words that are not deployment steps: a release build, a comment, a file that is not a workflow.
    std::fs::remove_file(workflows.join("deploy.yml")).unwrap();
    std::fs::write(
        workflows.join("build.yml"),
        "name: deploy-docs\nsteps:\n  - run: cargo build --release # then deploy by hand\n# TODO: helm upgrade\n",
    )
    .unwrap();
    std::fs::write(workflows.join("NOTES.md"), "run: helm upgrade --install api ./chart\n").unwrap();
    let (status, summary) = probe(&check("steps = [\"deploy\"]\n")).await;
    assert_eq!(status, Status::Fail, "{summary}");
}
