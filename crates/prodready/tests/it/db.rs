//! `prodready db top / exporter` against real PostgreSQL clusters.

use std::io::{Read as _, Write as _};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use prodready_test_support::{Cluster, TestDb};

use crate::{prodready, stderr, stdout};

fn get(port: u16, path: &str) -> Option<String> {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(20))).ok()?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    Some(response.split_once("\r\n\r\n")?.1.to_owned())
}

/// `prodready db exporter` with `config` on a free port, its stderr piped.
fn start_exporter(home: &Path, config: &Path) -> (Child, u16) {
    let port = prodready_test_support::free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_prodready"))
        .args([
            "--config",
            &config.display().to_string(),
            "db",
            "exporter",
            "--listen",
            &format!("127.0.0.1:{port}"),
        ])
        .env_clear()
        .envs(crate::coverage_env())
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    (child, port)
}

/// Stops the exporter with SIGTERM, as systemd does, and returns its log: it shuts down cleanly (and,
/// under `cargo xtask coverage`, writes its profile, which a SIGKILL would lose).
fn stop_exporter(mut child: Child) -> String {
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap()),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let stopped = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > stopped {
            let _ = child.kill();
            panic!("db exporter still running 10 s after SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut log = String::new();
    let _ = child.stderr.take().unwrap().read_to_string(&mut log);
    assert!(status.success(), "db exporter exited with {status} on SIGTERM:\n{log}");
    log
}

#[test]
fn the_exporter_serves_every_database_bounds_statements_and_passes_promtool() {
    let cluster = Cluster::builder().pg_stat_statements().start();
    let url = cluster.url("127.0.0.1", "");
    // Many distinct statements (their select lists differ); one slow.
    cluster.psql(
        "SELECT pg_sleep(0.2); \
         DO $$ BEGIN FOR i IN 1..400 LOOP \
           EXECUTE 'SELECT ' || array_to_string(array_fill(1, ARRAY[i]), ', '); END LOOP; END $$;",
    );
    // A server that accepts connections and never answers: only the scrape timeout ends its scrape.
    let hung = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let hung_port = hung.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in hung.incoming().flatten() {
            held.push(stream);
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("prodready.toml");
    std::fs::write(
        &config,
        format!(
            "[database_monitoring]\ndatabases = [\"{url}\", \"postgres://postgres@127.0.0.1:1/gone?connect_timeout=1\", \
             \"postgres://postgres@127.0.0.1:{hung_port}/hung\"]\n\
             top_n = 5\nscrape_timeout = \"3s\"\n"
        ),
    )
    .unwrap();
    let (child, port) = start_exporter(dir.path(), &config);
    let deadline = Instant::now() + Duration::from_secs(30);
    let metrics = loop {
        if let Some(body) = get(port, "/metrics").filter(|b| b.contains("prodready_pg_up")) {
            break body;
        }
        assert!(Instant::now() < deadline, "no metrics within 30 s");
        std::thread::sleep(Duration::from_millis(200));
    };
    let log = stop_exporter(child);

    let server = format!("127.0.0.1:{}", cluster.port());
    // The failing database is named in the log, without waiting for anyone to read its metrics.
    assert!(log.contains("scrape failed: cannot connect to 127.0.0.1:1/gone"), "{log}");
    assert!(log.contains("no answer within 3000 ms"), "{log}");
    for expected in [
        format!("prodready_pg_up{{server=\"{server}\",database=\"postgres\"}} 1"),
        "prodready_pg_up{server=\"127.0.0.1:1\",database=\"gone\"} 0".to_owned(),
        "prodready_pg_scrape_errors_total{server=\"127.0.0.1:1\",database=\"gone\"} 1".to_owned(),
        format!("prodready_pg_up{{server=\"127.0.0.1:{hung_port}\",database=\"hung\"}} 0"),
        format!("prodready_pg_max_connections{{server=\"{server}\",database=\"postgres\"}} 100"),
        "queryid=\"other\"".to_owned(),
    ] {
        assert!(metrics.contains(&expected), "{expected} missing:\n{metrics}\n{log}");
    }
    // Bounded: five statements and `other` per family, whatever the server tracks.
    let calls = metrics.lines().filter(|l| l.starts_with("prodready_pg_statement_calls_total{")).count();
    assert_eq!(calls, 6, "{metrics}");
    let tracked = metrics
        .lines()
        .find(|l| l.starts_with("prodready_pg_statements_tracked{"))
        .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .unwrap();
    assert!(tracked > 400.0, "{tracked}");
    // No literal reaches a label.
    assert!(!metrics.contains("pg_sleep(0.2)"), "{metrics}");
    assert!(metrics.contains("pg_sleep($1)"), "{metrics}");

    let path = dir.path().join("metrics.prom");
    std::fs::write(&path, &metrics).unwrap();
    let promtool = Command::new(prodready_test_support::peer_bin("promtool"))
        .args(["check", "metrics"])
        .stdin(std::fs::File::open(&path).unwrap())
        .output()
        .unwrap();
    assert!(
        promtool.status.success(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&promtool.stdout),
        String::from_utf8_lossy(&promtool.stderr)
    );
}

/// A role without pg_monitor: the log says which grant is missing, once, not at every scrape.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_exporter_logs_a_missing_grant_once() {
    let db = TestDb::create().await;
    let admin = db.connect().await;
    let role = format!("{}_exporter", db.name());
    admin.batch_execute(&format!("CREATE ROLE \"{role}\" LOGIN")).await.unwrap();
    let url = db.url().replacen("postgres@", &format!("{role}@"), 1);
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("prodready.toml");
    std::fs::write(&config, format!("[database_monitoring]\ndatabases = [\"{url}\"]\n")).unwrap();
    let (child, port) = start_exporter(dir.path(), &config);
    let deadline = Instant::now() + Duration::from_secs(30);
    let first = loop {
        if let Some(body) = get(port, "/metrics").filter(|b| b.contains("prodready_pg_up")) {
            break body;
        }
        assert!(Instant::now() < deadline, "no metrics within 30 s");
        std::thread::sleep(Duration::from_millis(200));
    };
    let second = get(port, "/metrics").unwrap_or_default();
    let log = stop_exporter(child);
    admin.batch_execute(&format!("DROP ROLE \"{role}\"")).await.unwrap();

    let down = format!("prodready_pg_up{{server=\"127.0.0.1:5432\",database=\"{}\"}} 0", db.name());
    for metrics in [&first, &second] {
        assert!(metrics.contains(&down), "{down} missing:\n{metrics}");
    }
    assert_eq!(log.matches("pg_monitor").count(), 1, "{log}");
    let warning = log.lines().find(|l| l.contains("pg_monitor")).unwrap_or_default();
    assert!(warning.contains(&format!("GRANT pg_monitor TO {role}")), "{log}");
    assert!(warning.contains(&format!("127.0.0.1:5432/{}", db.name())), "{log}");
}

#[test]
fn db_top_shows_the_slowest_statement_first() {
    let cluster = Cluster::builder().pg_stat_statements().start();
    cluster.psql("SELECT pg_sleep(0.3); SELECT 1; SELECT 1; SELECT 1;");
    let dir = tempfile::tempdir().unwrap();
    let url = cluster.url("127.0.0.1", "");
    let out = prodready(dir.path(), &[], &["db", "top", "--by", "mean", "--database", &url]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let table = stdout(&out);
    let first = table.lines().nth(1).unwrap_or_default();
    assert!(first.contains("pg_sleep($1)"), "{table}");
    let out = prodready(
        dir.path(),
        &[],
        &["db", "top", "--by", "calls", "--limit", "1", "--database", &url, "--json"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["statements"].as_array().unwrap().len(), 1);
    assert!(json["statements"][0]["calls"].as_f64().unwrap() >= 3.0, "{json}");
}

#[tokio::test]
async fn db_top_without_pg_stat_statements_says_how_to_add_it() {
    let db = TestDb::create().await;
    let dir = tempfile::tempdir().unwrap();
    let out = prodready(dir.path(), &[], &["db", "top", "--database", db.url()]);
    assert_eq!(out.status.code(), Some(1));
    expect_test::expect![[r#"
        error: 127.0.0.1:5432/DB: pg_stat_statements is not installed in this database: add it to shared_preload_libraries and run CREATE EXTENSION pg_stat_statements
    "#]]
    .assert_eq(&stderr(&out).replace(db.name(), "DB"));
}
