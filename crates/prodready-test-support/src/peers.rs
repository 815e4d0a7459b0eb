//! Launchers for the real peers. Each starts on a free loopback port in its own temporary directory.

use std::process::Command;
use std::time::Duration;

use crate::process::{PeerProcess, Ready, free_port, peer_bin};

fn tempdir(name: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("prodready-{name}-"))
        .tempdir()
        .expect("create a temporary directory")
}

/// A moto server: S3 and Secrets Manager (and the rest of AWS) on loopback.
#[derive(Debug)]
pub struct Moto {
    pub process: PeerProcess,
}

impl Moto {
    pub fn start() -> Self {
        let port = free_port();
        let mut cmd = Command::new(peer_bin("moto_server"));
        cmd.args(["-H", "127.0.0.1", "-p", &port.to_string()]);
        Self {
            process: PeerProcess::start("moto_server", cmd, tempdir("moto"), port, Ready::Http("/moto-api/")),
        }
    }

    /// The endpoint URL for every AWS service.
    pub fn endpoint(&self) -> String {
        self.process.url()
    }

    /// Environment for an AWS SDK client (or a `prodready` child process) pointed at this server, with
    /// dummy static credentials.
    pub fn aws_env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.endpoint()),
            ("AWS_ACCESS_KEY_ID", "testing".to_owned()),
            ("AWS_SECRET_ACCESS_KEY", "testing".to_owned()),
            ("AWS_REGION", "us-east-1".to_owned()),
            ("AWS_EC2_METADATA_DISABLED", "true".to_owned()),
        ]
    }
}

/// A Prometheus server with a configuration of the caller's choosing.
#[derive(Debug)]
pub struct Prometheus {
    pub process: PeerProcess,
}

impl Prometheus {
    /// Starts Prometheus with the YAML that `config` returns for the port it will listen on; extra files
    /// (rules) can be written into `dir` first by `prepare`.
    pub fn start_with(config: impl FnOnce(u16) -> String) -> Self {
        let port = free_port();
        let dir = tempdir("prometheus");
        let file = dir.path().join("prometheus.yml");
        std::fs::write(&file, config(port)).expect("write prometheus.yml");
        let mut cmd = Command::new(peer_bin("prometheus"));
        cmd.arg(format!("--config.file={}", file.display()))
            .arg(format!("--storage.tsdb.path={}", dir.path().join("data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--web.enable-lifecycle");
        Self { process: PeerProcess::start("prometheus", cmd, dir, port, Ready::Http("/-/ready")) }
    }

    /// The samples of an instant query (`/api/v1/query`).
    pub async fn query(&self, promql: &str) -> Vec<serde_json::Value> {
        let body: serde_json::Value = reqwest::Client::new()
            .get(format!("{}/api/v1/query", self.url()))
            .query(&[("query", promql)])
            .send()
            .await
            .expect("Prometheus answers")
            .json()
            .await
            .expect("Prometheus answers JSON");
        assert_eq!(body["status"], "success", "{promql}: {body}");
        body["data"]["result"].as_array().cloned().unwrap_or_default()
    }

    /// Runs `promql` until `done` holds for its samples (60 s at most, then panics naming `what` with
    /// Prometheus's log); returns those samples.
    pub async fn query_until(
        &self,
        promql: &str,
        what: &str,
        done: impl Fn(&[serde_json::Value]) -> bool,
    ) -> Vec<serde_json::Value> {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            let samples = self.query(promql).await;
            if done(&samples) {
                return samples;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{what} within 60 s ({promql}: {samples:?}); Prometheus log:\n{}",
                self.process.log()
            );
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }

    /// Prometheus scraping itself every second.
    pub fn self_scraping() -> Self {
        Self::start_with(|port| {
            format!(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: prometheus\n    \
                 static_configs:\n      - targets: ['127.0.0.1:{port}']\n"
            )
        })
    }

    pub fn url(&self) -> String {
        self.process.url()
    }
}

/// An Alertmanager with clustering off and a configuration of the caller's choosing.
#[derive(Debug)]
pub struct Alertmanager {
    pub process: PeerProcess,
}

impl Alertmanager {
    pub fn start(config_yaml: &str) -> Self {
        let port = free_port();
        let dir = tempdir("alertmanager");
        let file = dir.path().join("alertmanager.yml");
        std::fs::write(&file, config_yaml).expect("write alertmanager.yml");
        let mut cmd = Command::new(peer_bin("alertmanager"));
        cmd.arg(format!("--config.file={}", file.display()))
            .arg(format!("--storage.path={}", dir.path().join("data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--cluster.listen-address=");
        Self { process: PeerProcess::start("alertmanager", cmd, dir, port, Ready::Http("/-/ready")) }
    }

    pub fn url(&self) -> String {
        self.process.url()
    }
}

/// A Prometheus Pushgateway.
#[derive(Debug)]
pub struct Pushgateway {
    pub process: PeerProcess,
}

impl Pushgateway {
    pub fn start() -> Self {
        let port = free_port();
        let mut cmd = Command::new(peer_bin("pushgateway"));
        // Debian's build persists to /var/lib by default; keep everything in memory.
        cmd.arg(format!("--web.listen-address=127.0.0.1:{port}")).arg("--persistence.file=");
        Self {
            process: PeerProcess::start(
                "pushgateway",
                cmd,
                tempdir("pushgateway"),
                port,
                Ready::Http("/-/ready"),
            ),
        }
    }

    pub fn url(&self) -> String {
        self.process.url()
    }
}

/// oteltap: an OTLP/HTTP receiver (protobuf; `/v1/traces`, `/v1/logs`, `/v1/metrics`) that prints every
/// span it receives as one JSON line.
#[derive(Debug)]
pub struct Oteltap {
    pub process: PeerProcess,
}

impl Oteltap {
    pub fn start() -> Self {
        let port = free_port();
        let mut cmd = Command::new(peer_bin("oteltap"));
        cmd.args(["--port", &port.to_string()]).env("PYTHONUNBUFFERED", "1");
        Self { process: PeerProcess::start("oteltap", cmd, tempdir("oteltap"), port, Ready::Listening) }
    }

    /// The OTLP/HTTP base endpoint, e.g. `http://127.0.0.1:4318`.
    pub fn endpoint(&self) -> String {
        self.process.url()
    }

    /// The spans received so far, one JSON object per span as oteltap prints them.
    pub fn span_lines(&self) -> Vec<String> {
        self.process.stdout().lines().filter(|l| l.starts_with('{')).map(str::to_owned).collect()
    }
}

/// Debian's `prometheus-postgres-exporter` (postgres_exporter 0.11), the peer the database monitoring is
/// benchmarked against, pointed at one server.
#[derive(Debug)]
pub struct PostgresExporter {
    pub process: PeerProcess,
}

impl PostgresExporter {
    /// Starts the exporter for `data_source_url` (`postgres://user@host:port/db?sslmode=disable`, passed as
    /// `DATA_SOURCE_NAME`) and waits until `/metrics` answers.
    pub fn start(data_source_url: &str) -> Self {
        let port = free_port();
        let mut cmd = Command::new(peer_bin("prometheus-postgres-exporter"));
        cmd.arg(format!("--web.listen-address=127.0.0.1:{port}")).env("DATA_SOURCE_NAME", data_source_url);
        Self {
            process: PeerProcess::start(
                "prometheus-postgres-exporter",
                cmd,
                tempdir("postgres-exporter"),
                port,
                Ready::Http("/metrics"),
            ),
        }
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        self.process.url()
    }

    /// One scrape of `/metrics` (the text format); panics with the exporter's log when it fails.
    pub async fn scrape(&self) -> String {
        let answer = reqwest::get(format!("{}/metrics", self.url()))
            .await
            .unwrap_or_else(|e| panic!("scraping the exporter: {e}; its log:\n{}", self.process.log()));
        assert!(
            answer.status().is_success(),
            "the exporter answered {}; its log:\n{}",
            answer.status(),
            self.process.log()
        );
        answer.text().await.expect("the exporter's body")
    }
}
