//! `prodready daemon` end to end: real PostgreSQL, real backups, real signals, several processes.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use prodready_test_support::TestDb;

use crate::{prodready, stderr, stdout};

/// A `prodready daemon` process with its stderr in a file.
struct Daemon {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Daemon {
    fn start(dir: &Path, config: &Path, name: &str) -> Self {
        let port = free_port();
        let log = dir.join(format!("{name}.log"));
        let child = Command::new(env!("CARGO_BIN_EXE_prodready"))
            .args([
                "--config",
                &config.display().to_string(),
                "daemon",
                "--listen",
                &format!("127.0.0.1:{port}"),
            ])
            .current_dir(dir)
            .env_clear()
            .envs(crate::coverage_env())
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("start prodready daemon");
        let mut daemon = Self { child, port, log };
        let deadline = Instant::now() + Duration::from_secs(30);
        while daemon.get("/healthz").0 != 200 {
            if let Some(status) = daemon.child.try_wait().unwrap() {
                panic!("the daemon exited ({status}):\n{}", daemon.log());
            }
            assert!(Instant::now() < deadline, "no HTTP endpoint within 30 s:\n{}", daemon.log());
            std::thread::sleep(Duration::from_millis(100));
        }
        daemon
    }

    fn pid(&self) -> Pid {
        Pid::from_raw(i32::try_from(self.child.id()).unwrap())
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// A GET: status code and body (0 when nothing answers).
    fn get(&self, path: &str) -> (u16, String) {
        http_get(self.port, path, None)
    }

    fn role(&self) -> String {
        self.get("/readyz").1.trim().to_owned()
    }

    fn wait_for(&self, what: &str, within: Duration, mut ok: impl FnMut(&Self) -> bool) {
        let deadline = Instant::now() + within;
        while !ok(self) {
            assert!(Instant::now() < deadline, "no {what} within {within:?}; daemon log:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn signal(&self, signal: Signal) {
        kill(self.pid(), signal).unwrap();
    }

    /// SIGTERM, then the exit code (bounded).
    fn stop(mut self) -> (Option<i32>, String) {
        let _ = kill(self.pid(), Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return (status.code(), self.log());
            }
            assert!(Instant::now() < deadline, "the daemon did not stop within 60 s:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn http_get(port: u16, path: &str, accept: Option<&str>) -> (u16, String) {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else { return (0, String::new()) };
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let accept = accept.map(|a| format!("Accept: {a}\r\n")).unwrap_or_default();
    let request = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{accept}Connection: close\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return (0, String::new());
    }
    let mut response = String::new();
    if stream.read_to_string(&mut response).is_err() {
        return (0, String::new());
    }
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let code = head.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    (code, body.to_owned())
}

/// A configuration for `db` with `jobs` (TOML of `[[daemon.jobs]]` tables).
fn config(dir: &Path, db: &TestDb, jobs: &str) -> PathBuf {
    let path = dir.join("prodready.toml");
    let text = format!(
        r#"[general]
data_dir = "{data}"

[database]
url = "{url}"

[backup]
store = "{store}"

[daemon]
lease = "2s"
shutdown_timeout = "1s"

[checklist]
history_file = "{data}/history.jsonl"

[[checklist.checks]]
id = "always"
title = "Always holds"
category = "Backups"
kind = "command"
run = ["true"]

{jobs}"#,
        data = dir.join("data").display(),
        url = db.url(),
        store = dir.join("store").display(),
    );
    std::fs::write(&path, text).unwrap();
    path
}

/// One row per run: (job, scheduled, started - scheduled in seconds, result, replica).
async fn runs(db: &TestDb) -> Vec<(String, f64, f64, Option<String>, String)> {
    let client = db.connect().await;
    let Ok(rows) = client
        .query(
            "SELECT job, extract(epoch FROM scheduled_at)::float8,
                    extract(epoch FROM started_at - scheduled_at)::float8, result, replica
             FROM prodready_daemon_runs ORDER BY scheduled_at",
            &[],
        )
        .await
    else {
        return Vec::new();
    };
    rows.iter().map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4))).collect()
}

async fn wait_runs(
    db: &TestDb,
    what: &str,
    within: Duration,
    logs: impl Fn() -> String,
    ok: impl Fn(&[(String, f64, f64, Option<String>, String)]) -> bool,
) -> Vec<(String, f64, f64, Option<String>, String)> {
    let deadline = Instant::now() + within;
    loop {
        let found = runs(db).await;
        if ok(&found) {
            return found;
        }
        assert!(Instant::now() < deadline, "no {what} within {within:?}; runs: {found:#?}\n{}", logs());
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

fn successes(runs: &[(String, f64, f64, Option<String>, String)], job: &str) -> usize {
    runs.iter().filter(|r| r.0 == job && r.3.as_deref() == Some("success")).count()
}

/// The committed backups in the store.
fn backups(dir: &Path, config: &Path) -> Vec<serde_json::Value> {
    let out = prodready(dir, &[], &["--config", &config.display().to_string(), "backup", "list", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    serde_json::from_slice::<Vec<serde_json::Value>>(&out.stdout).unwrap()
}

async fn small_table(db: &TestDb) {
    db.connect()
        .await
        .batch_execute("CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t SELECT generate_series(1, 100)")
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_jobs_run_on_time_and_the_endpoints_say_so() {
    let db = TestDb::create().await;
    small_table(&db).await;
    let dir = tempfile::tempdir().unwrap();
    let config = config(
        dir.path(),
        &db,
        r#"[[daemon.jobs]]
name = "backup"
run = "backup-run"
schedule = "*/4 * * * * *"

[[daemon.jobs]]
name = "prune"
run = "backup-prune"
schedule = "2-59/4 * * * * *"

[[daemon.jobs]]
name = "check"
run = "check"
schedule = "1-59/5 * * * * *"
timezone = "Europe/Berlin"
"#,
    );
    let daemon = Daemon::start(dir.path(), &config, "one");
    daemon.wait_for("leadership", Duration::from_secs(30), |d| d.role() == "ready: leader");
    let found = wait_runs(
        &db,
        "two successful runs of each job",
        Duration::from_secs(90),
        || daemon.log(),
        |r| ["backup", "prune", "check"].iter().all(|job| successes(r, job) >= 2),
    )
    .await;
    // On time: each run started within two seconds of its scheduled time, and scheduled times are the
    // schedule's (multiples of 4 s for the backup).
    for (job, scheduled, late, result, _) in &found {
        if result.is_some() {
            assert!((0.0..2.0).contains(late), "{job} at {scheduled} started {late} s late");
        }
        if job == "backup" {
            #[allow(clippy::cast_possible_truncation)]
            let second = (*scheduled as i64) % 60;
            assert_eq!(second % 4, 0, "{job} scheduled at second {second}");
        }
    }
    // The backup job's backups are in the store, one per successful run at least so far.
    assert!(backups(dir.path(), &config).len() >= 2);

    let (code, metrics) = daemon.get("/metrics");
    assert_eq!(code, 200);
    for expected in [
        "prodready_daemon_leader 1",
        "prodready_daemon_job_last_run_success{daemon_job=\"backup\"} 1",
        "prodready_daemon_job_runs_total{daemon_job=\"check\",result=\"success\"}",
        "prodready_daemon_job_next_run_timestamp_seconds{daemon_job=\"prune\"}",
        "prodready_daemon_job_interval_seconds{daemon_job=\"backup\"} 4",
    ] {
        assert!(metrics.contains(expected), "{expected} missing from:\n{metrics}");
    }
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
    let (code, openmetrics) = http_get(daemon.port, "/metrics", Some("application/openmetrics-text"));
    assert_eq!(code, 200);
    assert!(openmetrics.trim_end().ends_with("# EOF"), "{openmetrics}");

    let (code, status) = daemon.get("/status.json");
    assert_eq!(code, 200);
    let status: serde_json::Value = serde_json::from_str(&status).unwrap();
    assert_eq!(status["role"], "leader");
    assert_eq!(status["jobs"][2]["zone"], "Europe/Berlin");

    // The status page in a real browser: no console error, nothing fetched from elsewhere.
    let screenshot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("daemon-status-page.png");
    let page =
        prodready_test_support::check_page_async(&format!("http://127.0.0.1:{}/", daemon.port), &screenshot)
            .await;
    page.assert_clean();
    for expected in ["backup", "prune", "check", "Last scorecard", "Always holds", "Backups in"] {
        assert!(page.text.contains(expected), "{expected} missing from the page:\n{}", page.text);
    }

    // The backup metrics the rule pack watches come from the store, refreshed in the background.
    let last_backup =
        format!("prodready_backup_last_success_timestamp_seconds{{database=\"{}\"}}", db.name());
    daemon
        .wait_for("backup metrics", Duration::from_secs(40), |d| d.get("/metrics").1.contains(&last_backup));

    let (code, log) = daemon.stop();
    assert_eq!(code, Some(0), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_daemons_back_up_once_per_scheduled_time_and_a_standby_takes_over_a_killed_leader() {
    let db = TestDb::create().await;
    small_table(&db).await;
    let dir = tempfile::tempdir().unwrap();
    let config = config(
        dir.path(),
        &db,
        r#"[[daemon.jobs]]
name = "backup"
run = "backup-run"
schedule = "*/3 * * * * *"
"#,
    );
    let a = Daemon::start(dir.path(), &config, "a");
    let b = Daemon::start(dir.path(), &config, "b");
    let both = || format!("a:\n{}\nb:\n{}", a.log(), b.log());
    let deadline = Instant::now() + Duration::from_secs(30);
    let (leader, standby) = loop {
        match (a.role().as_str(), b.role().as_str()) {
            ("ready: leader", "ready: standby") => break (a, b),
            ("ready: standby", "ready: leader") => break (b, a),
            (ra, rb) => assert!(Instant::now() < deadline, "no single leader: a {ra}, b {rb}\n{}", both()),
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let found = wait_runs(
        &db,
        "three backups",
        Duration::from_secs(60),
        || leader.log(),
        |r| successes(r, "backup") >= 3,
    )
    .await;
    assert!(found.iter().all(|r| r.4.ends_with(&format!(":{}", leader.child.id()))), "{found:#?}");

    // The leader dies without a word; the standby takes over within a few leases.
    let killed_at = Instant::now();
    leader.signal(Signal::SIGKILL);
    standby.wait_for("a takeover", Duration::from_secs(30), |d| d.role() == "ready: leader");
    let took = killed_at.elapsed();
    let before = successes(&runs(&db).await, "backup");
    let standby_id = format!(":{}", standby.child.id());
    wait_runs(
        &db,
        "two backups by the new leader",
        Duration::from_secs(60),
        || standby.log(),
        |r| r.iter().filter(|x| x.4.ends_with(&standby_id) && x.3.as_deref() == Some("success")).count() >= 2,
    )
    .await;
    let (code, log) = standby.stop();
    assert_eq!(code, Some(0), "{log}");
    drop(leader);

    // Every scheduled time ran once: one row per time (the table's key), and exactly one committed
    // backup per successful run; a run cut short by the kill left no backup behind.
    let found_after = runs(&db).await;
    let successful = successes(&found_after, "backup");
    assert!(successful > before);
    let committed = backups(dir.path(), &config);
    assert_eq!(committed.len(), successful, "backups {committed:#?}\nruns {found_after:#?}");
    assert!(took < Duration::from_secs(30), "took over after {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_a_backup_publishes_nothing_and_exits_0() {
    let db = TestDb::create().await;
    small_table(&db).await;
    let dir = tempfile::tempdir().unwrap();
    let config = config(
        dir.path(),
        &db,
        r#"[[daemon.jobs]]
name = "backup"
run = "backup-run"
schedule = "*/2 * * * * *"
"#,
    );
    // The backup cannot read t while this transaction holds it: the run hangs until cancelled.
    let blocker = db.connect().await;
    blocker.batch_execute("BEGIN; LOCK TABLE t IN ACCESS EXCLUSIVE MODE").await.unwrap();
    let daemon = Daemon::start(dir.path(), &config, "one");
    wait_runs(&db, "a running backup", Duration::from_secs(30), || daemon.log(), |r| !r.is_empty()).await;
    daemon.wait_for("a running job", Duration::from_secs(30), |d| {
        d.get("/metrics").1.contains("prodready_daemon_job_running{daemon_job=\"backup\"} 1")
    });
    std::thread::sleep(Duration::from_millis(500));
    let (code, log) = daemon.stop();
    assert_eq!(code, Some(0), "{log}");
    assert!(log.contains("cancelling"), "{log}");
    blocker.batch_execute("ROLLBACK").await.unwrap();
    assert_eq!(backups(dir.path(), &config), Vec::<serde_json::Value>::new());
    let found = runs(&db).await;
    assert_eq!(found.last().and_then(|r| r.3.clone()).as_deref(), Some("cancelled"), "{found:#?}");
    // No backup process is left behind.
    let leftover =
        Command::new("pgrep").args(["-f", &format!("--config {}", dir.path().display())]).output().unwrap();
    assert!(leftover.stdout.is_empty(), "processes left: {}", String::from_utf8_lossy(&leftover.stdout));
}

/// `[checklist] file` is relative to the configuration file; the check job reads a copy of the
/// configuration kept elsewhere and still finds the checklist beside the original.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_check_job_finds_a_checklist_file_relative_to_the_configuration() {
    let db = TestDb::create().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("list.toml"),
        "[[checks]]\nid = \"from-file\"\ntitle = \"From the file\"\ncategory = \"Backups\"\nkind = \"command\"\nrun = [\"true\"]\n",
    )
    .unwrap();
    let config = config(
        dir.path(),
        &db,
        "[[daemon.jobs]]\nname = \"check\"\nrun = \"check\"\nschedule = \"*/2 * * * * *\"\n",
    );
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("[checklist]\n", "[checklist]\nfile = \"list.toml\"\n");
    std::fs::write(&config, text).unwrap();
    let daemon = Daemon::start(dir.path(), &config, "one");
    daemon.wait_for("leadership", Duration::from_secs(30), |d| d.role() == "ready: leader");
    wait_runs(
        &db,
        "a successful check",
        Duration::from_secs(60),
        || daemon.log(),
        |r| successes(r, "check") >= 1,
    )
    .await;
    let report = std::fs::read_to_string(dir.path().join("data/daemon/check-report.json")).unwrap();
    assert!(report.contains("\"from-file\""), "{report}");
    let (code, log) = daemon.stop();
    assert_eq!(code, Some(0), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_with_a_broken_file_keeps_the_old_schedules_and_a_good_one_applies() {
    let db = TestDb::create().await;
    small_table(&db).await;
    let dir = tempfile::tempdir().unwrap();
    let config_path = config(
        dir.path(),
        &db,
        r#"[[daemon.jobs]]
name = "prune"
run = "backup-prune"
schedule = "*/2 * * * * *"
"#,
    );
    let good = std::fs::read_to_string(&config_path).unwrap();
    let daemon = Daemon::start(dir.path(), &config_path, "one");
    wait_runs(&db, "a prune", Duration::from_secs(30), || daemon.log(), |r| successes(r, "prune") >= 1).await;

    std::fs::write(&config_path, good.replace("*/2 * * * * *", "61 * * * *")).unwrap();
    daemon.signal(Signal::SIGHUP);
    daemon.wait_for("the reload error", Duration::from_secs(20), |d| {
        d.log().contains("configuration not reloaded")
    });
    assert!(daemon.log().contains("daemon.jobs"), "{}", daemon.log());
    // Still running on the old schedule; its jobs read the configuration as it was loaded.
    let before = successes(&runs(&db).await, "prune");
    wait_runs(
        &db,
        "prunes after the bad reload",
        Duration::from_secs(30),
        || daemon.log(),
        |r| successes(r, "prune") >= before + 2,
    )
    .await;

    std::fs::write(
        &config_path,
        good.replace("name = \"prune\"", "name = \"nightly\"").replace("backup-prune", "backup-run"),
    )
    .unwrap();
    daemon.signal(Signal::SIGHUP);
    wait_runs(
        &db,
        "a backup under the new configuration",
        Duration::from_secs(30),
        || daemon.log(),
        |r| successes(r, "nightly") >= 1,
    )
    .await;
    let (code, log) = daemon.stop();
    assert_eq!(code, Some(0), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_turns_unready_when_the_lock_database_is_unreachable() {
    let db = TestDb::create().await;
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), &db, "");
    let text = std::fs::read_to_string(&config).unwrap().replace(
        "lease = \"2s\"",
        "lease = \"2s\"\nlock_database = \"postgres://postgres@127.0.0.1:1/nowhere?connect_timeout=2\"",
    );
    std::fs::write(&config, text).unwrap();
    let daemon = Daemon::start(dir.path(), &config, "one");
    daemon.wait_for("an unready answer naming the database", Duration::from_secs(30), |d| {
        let (code, body) = d.get("/readyz");
        code == 503 && body.contains("unreachable") && body.contains("127.0.0.1:1")
    });
    assert_eq!(daemon.get("/healthz").0, 200);
    assert!(daemon.get("/metrics").1.contains("prodready_daemon_leader 0"));
    let (code, log) = daemon.stop();
    assert_eq!(code, Some(0), "{log}");
}

#[test]
fn bad_schedules_and_job_kinds_name_the_file_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let check = |jobs: &str, expected: expect_test::Expect| {
        let path = dir.path().join("prodready.toml");
        std::fs::write(&path, format!("[daemon]\nlisten = \"127.0.0.1:1\"\n\n{jobs}")).unwrap();
        let out = prodready(dir.path(), &[], &["config", "show"]);
        assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
        expected.assert_eq(&stderr(&out).replace(&dir.path().display().to_string(), "DIR"));
    };
    check(
        "[[daemon.jobs]]\nname = \"x\"\nrun = \"backup-run\"\nschedule = \"61 * * * *\"\n",
        expect_test::expect![[r#"
            error: prodready.toml:7:12: daemon.jobs[0].schedule: invalid cron expression `61 * * * *`: Component error: Number out of bounds (expected minute hour day-of-month month day-of-week, optionally with seconds first, or @hourly, @daily, @weekly, @monthly, @yearly)
        "#]],
    );
    check(
        "[[daemon.jobs]]\nname = \"x\"\nrun = \"backup-everything\"\nschedule = \"@daily\"\n",
        expect_test::expect![[r#"
            error: prodready.toml:6:7: daemon.jobs[0].run: unknown variant `backup-everything`, expected one of `backup-run`, `backup-verify`, `backup-prune`, `backup-base`, `check`, `db-collect`
        "#]],
    );
    check(
        "[[daemon.jobs]]\nname = \"x\"\nrun = \"check\"\nschedule = \"@daily\"\n\n\
         [[daemon.jobs]]\nname = \"x\"\nrun = \"backup-run\"\nschedule = \"@hourly\"\n",
        expect_test::expect![[r#"
            error: prodready.toml:4:1: daemon.jobs: two jobs are named `x`; job names must be unique (they label the metrics)
        "#]],
    );
    check(
        "[[daemon.jobs]]\nname = \"x\"\nrun = \"check\"\nschedule = \"@daily\"\ntimezone = \"Mars/Olympus\"\n",
        expect_test::expect![[r#"
            error: prodready.toml:8:12: daemon.jobs[0].timezone: unknown time zone `Mars/Olympus` (an IANA name such as UTC or Europe/Berlin)
        "#]],
    );
    check(
        "lease = \"500ms\"\n",
        expect_test::expect![[r#"
        error: prodready.toml:4:9: daemon.lease: 500ms is too short: a lease must be at least 1s (the leader renews it every fifth of it)
    "#]],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_db_collect_job_puts_the_costliest_statements_on_the_status_page() {
    let cluster = prodready_test_support::Cluster::builder().pg_stat_statements().start();
    cluster.psql("SELECT pg_sleep(0.2)");
    let url = cluster.url("127.0.0.1", "");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("prodready.toml");
    std::fs::write(
        &path,
        format!(
            "[general]\ndata_dir = \"{}\"\n\n[database]\nurl = \"{url}\"\n\n[database_monitoring]\n\
             databases = [\"postgres://postgres@127.0.0.1:1/elsewhere\"]\n\n[daemon]\nlease = \"2s\"\n\n\
             [[daemon.jobs]]\nname = \"statements\"\nrun = \"db-collect\"\nschedule = \"*/2 * * * * *\"\n\
             database = \"{url}\"\n",
            dir.path().join("data").display()
        ),
    )
    .unwrap();
    let daemon = Daemon::start(dir.path(), &path, "one");
    daemon.wait_for("collected statements on the page", Duration::from_secs(30), |d| {
        let (_, page) = d.get("/");
        page.contains("Costliest statements") && page.contains("pg_sleep($1)")
    });
    let (code, log) = daemon.stop();
    assert_eq!(code, Some(0), "{log}");
}

/// A `backup-base` job takes physical base backups of a throwaway cluster on its schedule (the server's
/// URL handed over in the environment), and a base job given a database name instead of a URL is refused
/// when the daemon starts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_base_job_takes_base_backups_on_schedule() {
    // A base backup is kept only when its WAL is archived into the same store: the server's user pushes
    // it there with a copy of this binary it can run.
    let dir = tempfile::tempdir().unwrap();
    let exe = prodready_test_support::ServerExecutable::new(Path::new(env!("CARGO_BIN_EXE_prodready")));
    let store = prodready_test_support::server_dir();
    let archive_command = format!(
        "env HOME=/tmp {} backup wal-push %p --store {}",
        exe.path().display(),
        store.path().display()
    );
    let cluster = prodready_test_support::Cluster::builder()
        .setting("archive_mode", "on")
        .setting("archive_command", &archive_command)
        .start();
    cluster.psql("CREATE TABLE t (id int); INSERT INTO t SELECT generate_series(1, 100)");
    let url = cluster.url("127.0.0.1", "");
    let path = dir.path().join("prodready.toml");
    let write = |database: &str| {
        std::fs::write(
            &path,
            format!(
                "[general]\ndata_dir = \"{}\"\n\n[database]\nurl = \"{url}\"\n\n[backup]\nstore = \"{}\"\n\n\
                 [daemon]\nlease = \"2s\"\n\n[[daemon.jobs]]\nname = \"base\"\nrun = \"backup-base\"\n\
                 schedule = \"*/3 * * * * *\"\ndatabase = \"{database}\"\n",
                dir.path().join("data").display(),
                store.path().display(),
            ),
        )
        .unwrap();
    };
    write("postgres");
    let refused = prodready(
        dir.path(),
        &[],
        &["--config", &path.display().to_string(), "daemon", "--listen", "127.0.0.1:0"],
    );
    assert_eq!(refused.status.code(), Some(2), "{}", stderr(&refused));
    assert!(
        stderr(&refused)
            .contains("daemon.jobs `base`: database `postgres`: a backup-base job takes the server's URL"),
        "{}",
        stderr(&refused)
    );

    write(&url);
    let daemon = Daemon::start(dir.path(), &path, "one");
    daemon.wait_for("a base backup in the store", Duration::from_secs(60), |_| {
        backups(dir.path(), &path).iter().any(|b| b["kind"] == "base")
    });
    let (code, log) = daemon.stop();
    assert_eq!(code, Some(0), "{log}");
}
