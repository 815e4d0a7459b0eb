use prodready_test_support::{
    Alertmanager, Cluster, Moto, Oteltap, PostgresExporter, Prometheus, Pushgateway, http_status, peer_bin,
};

/// A fake SigV4 header: moto routes by the credential scope and checks no signature.
fn aws_auth(service: &str) -> String {
    format!(
        "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/{service}/aws4_request, SignedHeaders=host, \
         Signature=0"
    )
}

/// Asserts that a dropped peer took its process and directory with it.
fn assert_cleaned_up(port: u16, dir: std::path::PathBuf, pid: u32) {
    assert_eq!(http_status(port, "/"), None, "nothing answers on {port} after drop");
    assert!(!dir.exists(), "{} removed after drop", dir.display());
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    assert!(status.is_empty() || status.contains("State:\tZ"), "process {pid} is gone");
}

#[tokio::test]
async fn moto_serves_s3_and_secrets_manager_and_cleans_up() {
    let moto = Moto::start();
    let (port, dir, pid) = (moto.process.port(), moto.process.dir().to_path_buf(), moto.process.pid());
    let http = reqwest::Client::new();
    let s3 = moto.endpoint();

    let created = http
        .put(format!("{s3}/prodready-test"))
        .header("authorization", aws_auth("s3"))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 200);
    let put = http
        .put(format!("{s3}/prodready-test/hello.txt"))
        .header("authorization", aws_auth("s3"))
        .header("content-type", "application/octet-stream")
        .body("hello moto")
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 200);
    let got = http
        .get(format!("{s3}/prodready-test/hello.txt"))
        .header("authorization", aws_auth("s3"))
        .send()
        .await
        .unwrap();
    assert_eq!(got.status(), 200);
    assert_eq!(got.text().await.unwrap(), "hello moto");

    let sm = |target: &str, body: serde_json::Value| {
        http.post(&s3)
            .header("x-amz-target", format!("secretsmanager.{target}"))
            .header("content-type", "application/x-amz-json-1.1")
            .header("authorization", aws_auth("secretsmanager"))
            .body(body.to_string())
            .send()
    };
    let created = sm("CreateSecret", serde_json::json!({"Name": "prod/app/db", "SecretString": "s3cr3t"}))
        .await
        .unwrap();
    assert_eq!(created.status(), 200, "{}", created.text().await.unwrap());
    let value: serde_json::Value = sm("GetSecretValue", serde_json::json!({"SecretId": "prod/app/db"}))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(value["SecretString"], "s3cr3t");
    assert!(moto.aws_env().iter().any(|(k, v)| *k == "AWS_ENDPOINT_URL" && *v == s3));

    drop(moto);
    assert_cleaned_up(port, dir, pid);
}

#[tokio::test]
async fn prometheus_scrapes_itself_answers_queries_and_cleans_up() {
    let prometheus = Prometheus::self_scraping();
    let (port, dir, pid) =
        (prometheus.process.port(), prometheus.process.dir().to_path_buf(), prometheus.process.pid());
    let samples = prometheus.query_until("up{job=\"prometheus\"}", "no scrape", |s| !s.is_empty()).await;
    let up = samples[0]["value"][1].as_str().unwrap().to_owned();
    assert_eq!(up, "1");

    drop(prometheus);
    assert_cleaned_up(port, dir, pid);
}

#[tokio::test]
async fn alertmanager_accepts_an_alert_and_pushgateway_a_metric() {
    let am = Alertmanager::start("route:\n  receiver: blackhole\nreceivers:\n  - name: blackhole\n");
    let http = reqwest::Client::new();
    let posted = http
        .post(format!("{}/api/v2/alerts", am.url()))
        .json(&serde_json::json!([{"labels": {"alertname": "ProdreadyProbe"}}]))
        .send()
        .await
        .unwrap();
    assert_eq!(posted.status(), 200);
    let alerts: serde_json::Value =
        http.get(format!("{}/api/v2/alerts", am.url())).send().await.unwrap().json().await.unwrap();
    assert_eq!(alerts[0]["labels"]["alertname"], "ProdreadyProbe", "{alerts}");

    let pgw = Pushgateway::start();
    let pushed =
        http.post(format!("{}/metrics/job/probe", pgw.url())).body("probe_metric 42\n").send().await.unwrap();
    assert_eq!(pushed.status(), 200);
    let metrics = http.get(format!("{}/metrics", pgw.url())).send().await.unwrap().text().await.unwrap();
    assert!(metrics.lines().any(|l| l.starts_with("probe_metric{") && l.ends_with(" 42")), "{metrics}");
}

#[tokio::test]
async fn oteltap_accepts_otlp_http() {
    let tap = Oteltap::start();
    let answer = reqwest::Client::new()
        .post(format!("{}/v1/traces", tap.endpoint()))
        .header("content-type", "application/x-protobuf")
        .body(Vec::new())
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    assert!(tap.span_lines().is_empty(), "an empty export carries no spans");
}

#[tokio::test]
async fn postgres_exporter_scrapes_a_throwaway_cluster_and_cleans_up() {
    let cluster = Cluster::builder().start();
    let exporter = PostgresExporter::start(&cluster.url("127.0.0.1", "?sslmode=disable"));
    let (port, dir, pid) =
        (exporter.process.port(), exporter.process.dir().to_path_buf(), exporter.process.pid());
    let metrics = exporter.scrape().await;
    assert!(
        metrics.lines().any(|l| l == "pg_up 1"),
        "pg_up 1 in:\n{metrics}\nexporter log:\n{}",
        exporter.process.log()
    );
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("pg_stat_database_xact_commit{") && l.contains("datname=\"postgres\"")),
        "{metrics}"
    );

    drop(exporter);
    assert_cleaned_up(port, dir, pid);
}

#[test]
fn the_cli_tools_run_from_the_cache() {
    for (tool, arg) in [
        ("promtool", "--version"),
        ("amtool", "--version"),
        ("k6", "version"),
        ("prometheus-postgres-exporter", "--version"),
    ] {
        let out = std::process::Command::new(peer_bin(tool)).arg(arg).output().unwrap();
        assert!(out.status.success(), "{tool} {arg}: {}", String::from_utf8_lossy(&out.stderr));
    }
}

#[test]
#[should_panic(expected = "cargo xtask peers")]
fn a_missing_peer_fails_with_the_install_step() {
    peer_bin("prodready-no-such-peer");
}
