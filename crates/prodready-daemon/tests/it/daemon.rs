//! The whole daemon in process: real jobs, the real table of runs in a fresh database, real endpoints.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};

use expect_test::expect;
use prodready_daemon::{Missed, Schedule};
use prodready_test_support::TestDb;

use crate::cable::Cable;
use crate::{
    Daemon, Run, alive, create_runs_table, eventually, get, lines, options, runs, secs, sh, wait_for_runs,
};

/// The value of the sample `series` (name and labels) in an exposition.
fn sample(exposition: &str, series: &str) -> f64 {
    exposition
        .lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no sample `{series}` in:\n{exposition}"))
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

/// Scheduled times are whole seconds, and no second runs twice: `lines` (what the runs did) are as many
/// as the distinct seconds in the table.
fn assert_each_scheduled_second_ran_once(runs: &[Run], lines: &[String]) {
    let seconds: BTreeSet<i64> = runs.iter().map(|r| r.scheduled_at as i64).collect();
    for run in runs {
        assert_eq!(run.scheduled_at.fract(), 0.0, "a scheduled time with a fraction of a second: {run:?}");
    }
    assert_eq!(seconds.len(), runs.len(), "a scheduled second claimed twice: {runs:#?}");
    assert_eq!(
        lines.len(),
        seconds.len(),
        "runs did {} things for {} scheduled seconds",
        lines.len(),
        seconds.len()
    );
}

fn read_pids(path: &std::path::Path) -> Vec<u32> {
    lines(path).iter().map(|l| l.parse().unwrap()).collect()
}

#[tokio::test]
async fn a_job_runs_on_its_schedule_and_every_endpoint_shows_it() {
    let db = TestDb::create().await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("ticks");
    let job =
        sh("tick", "*/1 * * * * *", r#"echo tick >> "$OUT"; echo "appended to $OUT""#, &[("OUT", &out)]);
    let daemon = Daemon::start(options(db.url(), "replica-1", vec![job]));
    daemon.wait_ready("leader").await;
    let pg = db.connect().await;
    wait_for_runs(&pg, "tick", "success", 2).await;

    let health = daemon.get("/healthz").await;
    assert_eq!((health.status, health.body.as_str()), (200, "ok\n"));
    let ready = daemon.get("/readyz").await;
    assert_eq!((ready.status, ready.body.as_str()), (200, "ready: leader\n"));

    let metrics = daemon.get("/metrics").await;
    assert_eq!(metrics.status, 200);
    assert!(metrics.header("content-type").starts_with("text/plain"), "{:?}", metrics.headers);
    let m = &metrics.body;
    assert_eq!(sample(m, "prodready_daemon_leader"), 1.0);
    assert!(
        sample(m, r#"prodready_daemon_job_runs_total{daemon_job="tick",result="success"}"#) >= 1.0,
        "{m}"
    );
    assert_eq!(sample(m, r#"prodready_daemon_job_runs_total{daemon_job="tick",result="timeout"}"#), 0.0);
    assert_eq!(sample(m, r#"prodready_daemon_job_last_run_success{daemon_job="tick"}"#), 1.0);
    assert_eq!(sample(m, r#"prodready_daemon_job_interval_seconds{daemon_job="tick"}"#), 1.0);
    let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs_f64();
    let last_success = sample(m, r#"prodready_daemon_job_last_success_timestamp_seconds{daemon_job="tick"}"#);
    assert!((now - 60.0..=now).contains(&last_success), "last success {last_success}, now {now}");
    // Every second: the second run after the last success is two seconds after it (a view refreshed
    // since that success, at the latest).
    let overdue_after =
        sample(m, r#"prodready_daemon_job_overdue_after_timestamp_seconds{daemon_job="tick"}"#);
    assert!(
        overdue_after > last_success && overdue_after <= last_success.floor() + 2.0,
        "overdue after {overdue_after}, last success {last_success}"
    );
    let next = sample(m, r#"prodready_daemon_job_next_run_timestamp_seconds{daemon_job="tick"}"#);
    assert!((now - 5.0..=now + 5.0).contains(&next), "next run {next}, now {now}");
    assert!(m.contains("# TYPE prodready_daemon_job_runs_total counter\n"), "{m}");
    assert!(m.contains("\nprocess_cpu_seconds_total "), "{m}");

    let open =
        get(daemon.addr, "/metrics", Some("application/openmetrics-text; version=1.0.0")).await.unwrap();
    assert!(open.header("content-type").starts_with("application/openmetrics-text"), "{:?}", open.headers);
    assert!(open.body.contains("# TYPE prodready_daemon_job_runs counter\n"), "{}", open.body);
    assert!(
        sample(&open.body, r#"prodready_daemon_job_runs_total{daemon_job="tick",result="success"}"#) >= 1.0
    );
    assert!(open.body.ends_with("# EOF\n"), "{}", open.body);

    let status = daemon.get("/status.json").await;
    assert_eq!(status.header("cache-control"), "no-store");
    let status: serde_json::Value = serde_json::from_str(&status.body).unwrap();
    assert_eq!(
        (&status["replica"], &status["role"], &status["problem"]),
        (&"replica-1".into(), &"leader".into(), &serde_json::Value::Null)
    );
    let job = &status["jobs"][0];
    assert_eq!(status["jobs"].as_array().unwrap().len(), 1);
    assert_eq!(
        (
            &job["name"],
            &job["kind"],
            &job["schedule"],
            &job["zone"],
            &job["timeout_seconds"],
            &job["interval_seconds"]
        ),
        (&"tick".into(), &"shell".into(), &"*/1 * * * * *".into(), &"UTC".into(), &3600.into(), &1.0.into())
    );
    assert_eq!(job["last"]["result"], "success", "{job:#}");
    assert_eq!(job["last"]["replica"], "replica-1", "{job:#}");
    let detail = job["last"]["detail"].as_str().unwrap();
    assert_eq!(detail, format!("exited with code 0\nappended to {}", out.display()));
    assert!(!job["recent"].as_array().unwrap().is_empty(), "{job:#}");
    assert!(job["next_run"].is_f64(), "{job:#}");

    let page = daemon.get("/").await;
    assert_eq!(page.status, 200);
    assert_eq!(page.header("content-type"), "text/html; charset=utf-8");
    assert_eq!(
        page.header("content-security-policy"),
        "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    );
    assert_eq!(page.header("x-content-type-options"), "nosniff");
    assert!(page.body.starts_with("<!doctype html>"), "{}", page.body);
    assert!(
        page.body.contains("<tr><td>tick</td><td>shell</td><td><code>*/1 * * * * *</code> (UTC)</td>"),
        "{}",
        page.body
    );
    assert!(page.body.contains("<h2>Recent runs of tick</h2>"), "{}", page.body);

    daemon.stop().await;
    let runs = runs(&pg).await;
    assert!(
        runs.iter().all(|r| r.result.as_deref() == Some("success") && r.replica == "replica-1"),
        "{runs:#?}"
    );
    assert_each_scheduled_second_ran_once(&runs, &lines(&out));
}

#[tokio::test]
async fn failures_and_timeouts_are_recorded_and_a_stopped_job_leaves_no_process_behind() {
    let db = TestDb::create().await;
    let dir = tempfile::tempdir().unwrap();
    let fails = sh("fails", "*/1 * * * * *", r#"echo "about to fail" >&2; exit 3"#, &[]);
    // Each of these writes the pid of the tool it starts to `NAME.pids`, and outlives its timeout.
    let stopped = [
        // Dies of SIGTERM, and so does its tool.
        ("hangs", "sleep 30 & echo $! >> \"$PIDS\"; wait"),
        // Ignores SIGTERM, and so does its tool: SIGKILL after the grace period.
        ("stubborn", "trap '' TERM; sleep 30 & echo $! >> \"$PIDS\"; wait"),
        // Dies of SIGTERM, but its tool ignores it: the group gets SIGKILL all the same.
        ("orphaning", "(trap '' TERM; exec sleep 30) & echo $! >> \"$PIDS\"; wait"),
    ];
    let pid_file = |name: &str| dir.path().join(format!("{name}.pids"));
    let mut jobs = vec![fails];
    for (name, script) in stopped {
        let mut job = sh(name, "*/2 * * * * *", script, &[("PIDS", &pid_file(name))]);
        job.timeout = secs(1);
        jobs.push(job);
    }
    let daemon = Daemon::start(options(db.url(), "replica-1", jobs));
    daemon.wait_ready("leader").await;
    let pg = db.connect().await;
    wait_for_runs(&pg, "fails", "failure", 1).await;
    for (name, _) in stopped {
        wait_for_runs(&pg, name, "timeout", 1).await;
    }
    let metrics = daemon.get("/metrics").await.body;
    assert!(
        sample(&metrics, r#"prodready_daemon_job_runs_total{daemon_job="fails",result="failure"}"#) >= 1.0
    );
    assert!(
        sample(&metrics, r#"prodready_daemon_job_runs_total{daemon_job="hangs",result="timeout"}"#) >= 1.0
    );
    assert_eq!(sample(&metrics, r#"prodready_daemon_job_last_run_success{daemon_job="fails"}"#), 0.0);
    daemon.stop().await;

    for run in &runs(&pg).await {
        let expected = match run.job.as_str() {
            "fails" => ("failure", "exited with code 3\nabout to fail"),
            _ => ("timeout", "timed out after 1s"),
        };
        assert_eq!((run.result.as_deref(), run.detail.as_str()), (Some(expected.0), expected.1), "{run:#?}");
    }
    // Signals take a moment to land; a survivor would live 30 s.
    eventually("the end of every tool the stopped jobs started", secs(5), async || {
        let mut living = Vec::new();
        for (name, _) in stopped {
            let pids = read_pids(&pid_file(name));
            assert!(!pids.is_empty(), "`{name}` recorded no pid");
            living
                .extend(pids.into_iter().filter(|p| alive(*p)).map(|p| format!("{p} (started by `{name}`)")));
        }
        if living.is_empty() { Ok(()) } else { Err(format!("still alive: {living:?}")) }
    })
    .await;
}

#[tokio::test]
async fn shutdown_cancels_a_job_still_running_after_the_shutdown_timeout() {
    let db = TestDb::create().await;
    let dir = tempfile::tempdir().unwrap();
    let pids = dir.path().join("pids");
    let long = sh("long", "*/1 * * * * *", r#"sleep 60 & echo $! >> "$PIDS"; wait"#, &[("PIDS", &pids)]);
    let mut options = options(db.url(), "replica-1", vec![long]);
    options.shutdown_timeout = secs(1);
    let daemon = Daemon::start(options);
    daemon.wait_ready("leader").await;
    eventually("`long` running", secs(20), async || {
        let status = daemon.status().await;
        if status["jobs"][0]["running_since"].is_f64() && !lines(&pids).is_empty() {
            Ok(())
        } else {
            Err(format!("{status:#}"))
        }
    })
    .await;
    let stopping = Instant::now();
    daemon.stop().await;
    let took = stopping.elapsed();
    assert!((Duration::from_secs(1)..Duration::from_secs(15)).contains(&took), "shutdown took {took:?}");

    let pg = db.connect().await;
    let runs = runs(&pg).await;
    assert_eq!(runs.len(), 1, "a running job's later times are skipped, not queued: {runs:#?}");
    assert_eq!((runs[0].result.as_deref(), runs[0].detail.as_str()), (Some("cancelled"), "cancelled"));
    let started = read_pids(&pids);
    eventually("the end of the cancelled job's process", secs(5), async || {
        if started.iter().any(|p| alive(*p)) { Err(format!("{started:?}")) } else { Ok(()) }
    })
    .await;
}

#[tokio::test]
async fn shutdown_waits_for_a_job_that_finishes_within_the_shutdown_timeout() {
    let db = TestDb::create().await;
    let dir = tempfile::tempdir().unwrap();
    let started = dir.path().join("started");
    let job = sh(
        "brief",
        "*/1 * * * * *",
        r#"echo > "$STARTED"; sleep 2; echo finished"#,
        &[("STARTED", &started)],
    );
    let daemon = Daemon::start(options(db.url(), "replica-1", vec![job]));
    daemon.wait_ready("leader").await;
    eventually("`brief` started", secs(20), async || {
        if started.exists() { Ok(()) } else { Err("no file".to_owned()) }
    })
    .await;
    daemon.stop().await;

    let pg = db.connect().await;
    let runs = runs(&pg).await;
    assert_eq!(runs.len(), 1, "{runs:#?}");
    assert_eq!(
        (runs[0].result.as_deref(), runs[0].detail.as_str()),
        (Some("success"), "exited with code 0\nfinished")
    );
}

/// A run claimed but still waiting out its jitter when the daemon stops never starts: it is recorded as
/// cancelled, not started, and its command never runs.
#[tokio::test]
async fn a_run_waiting_out_its_jitter_does_not_start_once_the_daemon_stops() {
    let db = TestDb::create().await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let mut job = sh("jittery", "*/1 * * * * *", r#"echo ran >> "$OUT""#, &[("OUT", &out)]);
    job.jitter = secs(3600);
    let daemon = Daemon::start(options(db.url(), "replica-1", vec![job]));
    daemon.wait_ready("leader").await;
    let pg = db.connect().await;
    eventually("a claimed run", secs(20), async || {
        let runs = runs(&pg).await;
        if runs.is_empty() { Err("no run claimed".to_owned()) } else { Ok(()) }
    })
    .await;
    daemon.stop().await;

    let runs = runs(&pg).await;
    assert_eq!(runs.len(), 1, "{runs:#?}");
    assert_eq!(
        (runs[0].result.as_deref(), runs[0].detail.as_str()),
        (Some("cancelled"), "not started: the daemon is stopping")
    );
    assert!(lines(&out).is_empty(), "the job ran: {:?}", lines(&out));
}

/// A run cancelled by a shutdown says nothing of whether the job works: the last run's success on
/// `/metrics` (what ProdreadyDaemonJobFailing reads) comes from the last run that ran to an end.
#[tokio::test]
async fn a_cancelled_run_leaves_the_last_verdict_on_the_metrics() {
    let db = TestDb::create().await;
    let daemon =
        Daemon::start(options(db.url(), "replica-1", vec![sh("j", "*/1 * * * * *", "echo ok", &[])]));
    daemon.wait_ready("leader").await;
    let pg = db.connect().await;
    wait_for_runs(&pg, "j", "success", 1).await;
    let mut waiting = sh("j", "*/1 * * * * *", "echo ok", &[]);
    waiting.jitter = secs(3600);
    daemon.reload(vec![waiting]);
    eventually("a run waiting out its jitter", secs(20), async || {
        let runs = runs(&pg).await;
        if runs.iter().any(|r| r.result.is_none()) { Ok(()) } else { Err(format!("{runs:#?}")) }
    })
    .await;
    daemon.stop().await;
    let last = runs(&pg).await.pop().unwrap();
    assert_eq!(last.result.as_deref(), Some("cancelled"), "{last:#?}");

    // The next replica reads the table: the newest run was cancelled, the one before it succeeded.
    let daemon = Daemon::start(options(db.url(), "replica-2", vec![sh("j", "0 0 1 1 *", "echo ok", &[])]));
    daemon.wait_ready("leader").await;
    eventually("the runs on /metrics", secs(20), async || {
        let metrics = daemon.get("/metrics").await.body;
        match metrics.contains(r#"prodready_daemon_job_last_run_timestamp_seconds{daemon_job="j"}"#) {
            true => Ok(metrics),
            false => Err(metrics),
        }
    })
    .await;
    let metrics = daemon.get("/metrics").await.body;
    assert_eq!(
        sample(&metrics, r#"prodready_daemon_job_last_run_success{daemon_job="j"}"#),
        1.0,
        "{metrics}"
    );
    daemon.stop().await;
}

/// A leader cut off from the lock database stops the job it is running: a standby may take the lock
/// and run the same job.
#[tokio::test]
async fn a_leader_that_steps_down_stops_its_running_job() {
    let db = TestDb::create().await;
    let dir = tempfile::tempdir().unwrap();
    let pids = dir.path().join("pids");
    let cable = Cable::to(db.url()).await;
    let long = sh("long", "*/1 * * * * *", r#"sleep 60 & echo $! >> "$PIDS"; wait"#, &[("PIDS", &pids)]);
    let mut options = options(cable.url(), "replica-1", vec![long]);
    options.lease = secs(2);
    let daemon = Daemon::start(options);
    daemon.wait_ready("leader").await;
    eventually("`long` running", secs(20), async || {
        if lines(&pids).is_empty() { Err("no pid yet".to_owned()) } else { Ok(()) }
    })
    .await;
    let started = read_pids(&pids);

    cable.partition();
    eventually("the leader stepping down", secs(20), async || {
        let ready = daemon.get("/readyz").await;
        if ready.status == 503 { Ok(()) } else { Err(ready.body) }
    })
    .await;
    eventually("the end of the running job's process", secs(10), async || {
        if started.iter().any(|p| alive(*p)) { Err(format!("{started:?} still alive")) } else { Ok(()) }
    })
    .await;
    eventually("the run ended on the status page", secs(10), async || {
        let status = daemon.status().await;
        if status["jobs"][0]["running_since"].is_null() { Ok(()) } else { Err(format!("{status:#}")) }
    })
    .await;
    cable.heal();
    daemon.stop().await;
}

#[tokio::test]
async fn reload_switches_to_the_new_jobs_and_refuses_duplicate_names() {
    let db = TestDb::create().await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let env = [("OUT", out.as_path())];
    let daemon = Daemon::start(options(
        db.url(),
        "replica-1",
        vec![sh("old", "*/1 * * * * *", r#"echo old >> "$OUT""#, &env)],
    ));
    daemon.wait_ready("leader").await;
    let count = |name: &str| lines(&out).iter().filter(|l| *l == name).count();
    eventually("a run of `old`", secs(20), async || {
        if count("old") > 0 { Ok(()) } else { Err(format!("{:?}", lines(&out))) }
    })
    .await;

    daemon.reload(vec![sh("new", "*/1 * * * * *", r#"echo new >> "$OUT""#, &env)]);
    eventually("a run of `new`", secs(20), async || {
        if count("new") > 0 { Ok(()) } else { Err(format!("{:?}", lines(&out))) }
    })
    .await;
    let old_runs = count("old");
    let status = daemon.status().await;
    let names: Vec<&str> =
        status["jobs"].as_array().unwrap().iter().map(|j| j["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["new"]);

    // Two jobs of one name: the reload is refused and the jobs stay as they were.
    daemon.reload(vec![
        sh("twin", "*/1 * * * * *", r#"echo twin >> "$OUT""#, &env),
        sh("twin", "*/1 * * * * *", r#"echo twin >> "$OUT""#, &env),
    ]);
    let new_runs = count("new");
    eventually("two more runs of `new`", secs(20), async || {
        if count("new") >= new_runs + 2 { Ok(()) } else { Err(format!("{:?}", lines(&out))) }
    })
    .await;
    assert_eq!(count("old"), old_runs, "`old` ran after the reload: {:?}", lines(&out));
    assert_eq!(count("twin"), 0, "{:?}", lines(&out));
    let status = daemon.status().await;
    assert_eq!(status["jobs"][0]["name"], "new");
    daemon.stop().await;
}

/// Issue 15: a reload (what SIGHUP does in the binary) while a job runs lets that run finish as it
/// would have, recorded as a success, and the new schedules apply from then on: the job, moved from every
/// second to once a year, does not start again, and a job the reload adds runs.
#[tokio::test]
async fn a_reload_while_a_job_runs_lets_it_finish_and_the_new_schedules_apply_after() {
    let db = TestDb::create().await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let env = [("OUT", out.as_path())];
    let script = r#"echo started >> "$OUT"; sleep 2; echo finished >> "$OUT"; echo finished"#;
    let every_second = sh("long", "*/1 * * * * *", script, &env);
    let daemon = Daemon::start(options(db.url(), "replica-1", vec![every_second]));
    daemon.wait_ready("leader").await;
    let count = |line: &str| lines(&out).iter().filter(|l| *l == line).count();
    eventually("`long` running", secs(20), async || {
        let status = daemon.status().await;
        if status["jobs"][0]["running_since"].is_f64() && count("started") == 1 {
            Ok(())
        } else {
            Err(format!("{status:#}\n{:?}", lines(&out)))
        }
    })
    .await;

    daemon.reload(vec![
        sh("long", "0 0 1 1 *", script, &env),
        sh("tick", "*/1 * * * * *", r#"echo tick >> "$OUT""#, &env),
    ]);
    let status = eventually("the reloaded jobs on the status page", secs(20), async || {
        let status = daemon.status().await;
        let names: Vec<&str> =
            status["jobs"].as_array().unwrap().iter().filter_map(|j| j["name"].as_str()).collect();
        if names == ["long", "tick"] { Ok(status.clone()) } else { Err(format!("{status:#}")) }
    })
    .await;
    let long = &status["jobs"][0];
    assert!(long["running_since"].is_f64(), "the reload came after the run ended: {status:#}");
    assert_eq!(long["schedule"], "0 0 1 1 *", "{status:#}");

    let pg = db.connect().await;
    wait_for_runs(&pg, "long", "success", 1).await;
    // Two seconds more: on its old schedule `long` would have started again meanwhile.
    let ticks = count("tick");
    eventually("two more runs of `tick`", secs(20), async || {
        if count("tick") >= ticks + 2 { Ok(()) } else { Err(format!("{:?}", lines(&out))) }
    })
    .await;
    let runs = wait_for_runs(&pg, "tick", "success", 1).await;
    let of_long: Vec<&Run> = runs.iter().filter(|r| r.job == "long").collect();
    assert_eq!(of_long.len(), 1, "{runs:#?}");
    assert_eq!(
        (of_long[0].result.as_deref(), of_long[0].detail.as_str()),
        (Some("success"), "exited with code 0\nfinished")
    );
    assert_eq!((count("started"), count("finished")), (1, 1), "{:?}", lines(&out));

    let metrics = eventually("the run's verdict on /metrics", secs(10), async || {
        let metrics = daemon.get("/metrics").await.body;
        let series = r#"prodready_daemon_job_last_run_success{daemon_job="long"}"#;
        if metrics.contains(series) { Ok(metrics) } else { Err(metrics) }
    })
    .await;
    let m = &metrics;
    assert_eq!(sample(m, r#"prodready_daemon_job_runs_total{daemon_job="long",result="success"}"#), 1.0);
    assert_eq!(sample(m, r#"prodready_daemon_job_runs_total{daemon_job="long",result="cancelled"}"#), 0.0);
    assert_eq!(sample(m, r#"prodready_daemon_job_last_run_success{daemon_job="long"}"#), 1.0);
    assert!(sample(m, r#"prodready_daemon_job_runs_total{daemon_job="tick",result="success"}"#) >= 1.0);
    daemon.stop().await;
}

/// A replica whose job appends the replica's name to `out` every second.
fn replica(lock_url: &str, name: &str, out: &std::path::Path, lease: Duration) -> Daemon {
    let mut job = sh("tick", "*/1 * * * * *", r#"echo "$REPLICA" >> "$OUT""#, &[("OUT", out)]);
    job.env.push(("REPLICA".to_owned(), name.to_owned()));
    let mut options = options(lock_url, name, vec![job]);
    options.lease = lease;
    Daemon::start(options)
}

/// The role each of `daemons` names on `/readyz`, once every one is ready.
async fn roles(daemons: &[&Daemon]) -> Vec<String> {
    eventually("every replica ready", secs(20), async || {
        let mut roles = Vec::new();
        for daemon in daemons {
            match get(daemon.addr, "/readyz", None).await {
                Ok(r) if r.status == 200 => {
                    roles.push(r.body.trim().trim_start_matches("ready: ").to_owned());
                }
                other => return Err(format!("{}: {other:?}", daemon.addr)),
            }
        }
        Ok(roles)
    })
    .await
}

#[tokio::test]
async fn two_replicas_elect_one_leader_and_each_scheduled_time_runs_once_across_a_handover() {
    let db = TestDb::create().await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let a = replica(db.url(), "a", &out, secs(2));
    a.wait_ready("leader").await;
    let b = replica(db.url(), "b", &out, secs(2));
    b.wait_ready("standby").await;
    assert_eq!(roles(&[&a, &b]).await, ["leader", "standby"]);
    assert_eq!(sample(&a.get("/metrics").await.body, "prodready_daemon_leader"), 1.0);
    assert_eq!(sample(&b.get("/metrics").await.body, "prodready_daemon_leader"), 0.0);
    let pg = db.connect().await;
    wait_for_runs(&pg, "tick", "success", 3).await;
    // Both pages show the runs: the table is shared.
    eventually("the runs on the standby's status", secs(10), async || {
        let status = b.status().await;
        if status["jobs"][0]["last"]["replica"] == "a" { Ok(()) } else { Err(format!("{status:#}")) }
    })
    .await;

    a.stop().await;
    b.wait_ready("leader").await;
    eventually("three runs by the new leader", secs(20), async || {
        let runs = runs(&pg).await;
        if runs.iter().filter(|r| r.replica == "b" && r.finished).count() >= 3 {
            Ok(())
        } else {
            Err(format!("{runs:#?}"))
        }
    })
    .await;
    b.stop().await;

    let runs = runs(&pg).await;
    assert!(runs.iter().all(|r| r.result.as_deref() == Some("success")), "{runs:#?}");
    let lines = lines(&out);
    assert_each_scheduled_second_ran_once(&runs, &lines);
    for name in ["a", "b"] {
        let ran = lines.iter().filter(|l| *l == name).count();
        let claimed = runs.iter().filter(|r| r.replica == name).count();
        assert_eq!(ran, claimed, "replica {name} ran {ran} times and claimed {claimed} runs");
    }
    let last_of_a = runs.iter().filter(|r| r.replica == "a").map(|r| r.scheduled_at).fold(0.0, f64::max);
    let first_of_b =
        runs.iter().filter(|r| r.replica == "b").map(|r| r.scheduled_at).fold(f64::MAX, f64::min);
    assert!(last_of_a < first_of_b, "the replicas' runs interleave: {runs:#?}");
}

#[tokio::test]
async fn a_partitioned_leader_steps_down_before_its_lock_goes_to_a_standby() {
    let db = TestDb::create().await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let cable = Cable::to(db.url()).await;
    // A lease long enough that a busy test machine keeps the margin between the leader stepping down
    // (after at most four fifths of it) and the server letting go (after all of it).
    let lease = secs(5);
    let a = replica(cable.url(), "a", &out, lease);
    a.wait_ready("leader").await;
    let b = replica(db.url(), "b", &out, lease);
    b.wait_ready("standby").await;
    let pg = db.connect().await;
    wait_for_runs(&pg, "tick", "success", 2).await;

    // The leader's queries now go nowhere: it steps down; the server ends its idle session after a
    // lease, and the standby takes the lock. Never are both leaders.
    cable.partition();
    let mut seen = Vec::new();
    eventually("the standby leading", secs(20), async || {
        let (of_a, of_b) = (a.get("/readyz").await, b.get("/readyz").await);
        let both = of_a.body == "ready: leader\n" && of_b.body == "ready: leader\n";
        seen.push(format!("a: {} {}b: {} {}", of_a.status, of_a.body, of_b.status, of_b.body));
        assert!(!both, "two leaders at once after:\n{}", seen.join(""));
        if of_b.body == "ready: leader\n" { Ok(()) } else { Err(seen.join("")) }
    })
    .await;
    let of_a = a.get("/readyz").await;
    assert_eq!(of_a.status, 503, "{}", of_a.body);
    assert!(of_a.body.starts_with("not ready: lock database unreachable: "), "{}", of_a.body);
    assert_eq!(sample(&a.get("/metrics").await.body, "prodready_daemon_leader"), 0.0);
    eventually("two runs by the new leader", secs(20), async || {
        let runs = runs(&pg).await;
        if runs.iter().filter(|r| r.replica == "b" && r.finished).count() >= 2 {
            Ok(())
        } else {
            Err(format!("{runs:#?}"))
        }
    })
    .await;

    // Back on the network, the old leader stands by.
    cable.heal();
    a.wait_ready("standby").await;
    assert_eq!(roles(&[&a, &b]).await, ["standby", "leader"]);
    b.stop().await;
    a.stop().await;

    let runs = runs(&pg).await;
    let lines = lines(&out);
    assert_each_scheduled_second_ran_once(&runs, &lines);
    let last_of_a = runs.iter().filter(|r| r.replica == "a").map(|r| r.scheduled_at).fold(0.0, f64::max);
    let first_of_b =
        runs.iter().filter(|r| r.replica == "b").map(|r| r.scheduled_at).fold(f64::MAX, f64::min);
    assert!(last_of_a < first_of_b, "the replicas' runs interleave: {runs:#?}");
}

#[tokio::test]
async fn without_its_lock_database_a_replica_is_unready_and_runs_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let job = sh("tick", "*/1 * * * * *", r#"echo tick >> "$OUT""#, &[("OUT", &out)]);
    let daemon = Daemon::start(options("postgres://postgres@127.0.0.1:1/postgres", "replica-1", vec![job]));
    let ready = eventually("/readyz naming the unreachable database", secs(20), async || {
        match get(daemon.addr, "/readyz", None).await {
            Ok(r) if r.status == 503 && r.body.contains("unreachable") => Ok(r.body),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    expect![[r#"
        not ready: lock database unreachable: cannot connect to 127.0.0.1:1/postgres: error connecting to server: Connection refused (os error 111)
    "#]].assert_eq(&ready);
    let health = daemon.get("/healthz").await;
    assert_eq!((health.status, health.body.as_str()), (200, "ok\n"));
    let status = daemon.status().await;
    assert_eq!(status["role"], "unreachable");
    assert_eq!(
        status["problem"].as_str(),
        ready.trim_end().strip_prefix("not ready: lock database unreachable: ")
    );
    assert_eq!(sample(&daemon.get("/metrics").await.body, "prodready_daemon_leader"), 0.0);
    let page = daemon.get("/").await.body;
    assert!(page.contains("<span class=\"badge unreachable\">lock database</span>"), "{page}");
    // A scheduled second passes with nobody leading: nothing runs.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    daemon.stop().await;
    assert!(!out.exists(), "a job ran without the lock: {:?}", lines(&out));
}

#[tokio::test]
async fn a_new_leader_runs_a_missed_run_once_unless_told_to_skip() {
    let db = TestDb::create().await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    create_runs_table(db.url()).await;
    let pg = db.connect().await;
    pg.batch_execute(
        "INSERT INTO prodready_daemon_runs (job, scheduled_at, started_at, finished_at, result, replica)
         SELECT job, '2020-01-01T00:00:00Z', '2020-01-01T00:00:00Z', '2020-01-01T00:00:01Z', 'success', 'old'
         FROM unnest(ARRAY['catches-up', 'skips']) AS job",
    )
    .await
    .unwrap();
    let yearly = |name: &str, missed: Missed| {
        let mut job = sh(name, "0 0 1 1 *", r#"echo "$NAME" >> "$OUT""#, &[("OUT", &out)]);
        job.env.push(("NAME".to_owned(), name.to_owned()));
        job.missed = missed;
        job
    };
    let jobs = vec![
        yearly("catches-up", Missed::RunOnce),
        yearly("skips", Missed::Skip),
        // Never ran: nothing was missed.
        yearly("new", Missed::RunOnce),
    ];
    let daemon = Daemon::start(options(db.url(), "replica-2", jobs));
    // Every missed run is decided at the election: once `catches-up` has run, so would the others have.
    let runs = wait_for_runs(&pg, "catches-up", "success", 2).await;
    let this_year =
        Schedule::parse("0 0 1 1 *", "UTC").unwrap().last_at_or_before(SystemTime::now()).unwrap();
    let this_year = this_year.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs_f64();
    let table: Vec<(&str, f64, &str)> =
        runs.iter().map(|r| (r.job.as_str(), r.scheduled_at, r.replica.as_str())).collect();
    let start_of_2020 = 1_577_836_800.0;
    assert_eq!(
        table,
        [
            ("catches-up", start_of_2020, "old"),
            ("skips", start_of_2020, "old"),
            ("catches-up", this_year, "replica-2")
        ]
    );
    daemon.stop().await;
    assert_eq!(lines(&out), ["catches-up"]);
}

#[tokio::test]
async fn run_refuses_options_it_cannot_start_with() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let job = || sh("tick", "@daily", "true", &[]);
    let refuse = async |options: prodready_daemon::Options| {
        let (_control, received) = tokio::sync::mpsc::unbounded_channel();
        let result =
            tokio::time::timeout(secs(10), prodready_daemon::run(options, std::sync::Arc::new(()), received))
                .await
                .expect("run returns at once when it cannot start");
        result.expect_err("run cannot start").to_string()
    };
    let mut short_lease = options("postgres://127.0.0.1:1/x", "r", vec![job()]);
    short_lease.lease = Duration::from_millis(500);
    let twins = options("postgres://127.0.0.1:1/x", "r", vec![job(), job()]);
    let mut busy = options("postgres://127.0.0.1:1/x", "r", vec![job()]);
    busy.listen = taken.local_addr().unwrap();
    let busy_addr: SocketAddr = busy.listen;
    let messages = [
        refuse(short_lease).await,
        refuse(twins).await,
        refuse(busy).await.replace(&busy_addr.to_string(), "ADDR"),
    ];
    expect![[r#"
        [
            "the lease must be at least 1 s, not 500ms",
            "two jobs are named `tick`; job names must be unique",
            "cannot listen on ADDR: Address already in use (os error 98)",
        ]
    "#]]
    .assert_debug_eq(&messages);
}

/// Jitter: each run starts a random moment within `jitter` after its scheduled time (so that replicas
/// of many services do not all hit the database on the second), never before it.
#[tokio::test]
async fn jitter_spreads_each_start_within_its_bound() {
    let db = TestDb::create().await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("ticks");
    let mut job = sh("spread", "*/2 * * * * *", r#"echo tick >> "$OUT""#, &[("OUT", &out)]);
    job.jitter = Duration::from_millis(1500);
    let daemon = Daemon::start(options(db.url(), "replica-1", vec![job]));
    daemon.wait_ready("leader").await;
    let pg = db.connect().await;
    wait_for_runs(&pg, "spread", "success", 4).await;
    let delays: Vec<f64> = pg
        .query(
            "SELECT extract(epoch FROM started_at - scheduled_at)::float8 FROM prodready_daemon_runs
             WHERE job = 'spread' AND result = 'success'",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(delays.len() >= 4, "{delays:?}");
    // Never early, never later than the jitter (and some slack for claiming the run).
    assert!(delays.iter().all(|d| (0.0..2.0).contains(d)), "{delays:?}");
    // Spread, not all at once: four starts all within the first 100 ms of 1.5 s has odds of 2e-5.
    assert!(delays.iter().any(|d| *d > 0.1), "{delays:?}");
    daemon.stop().await;
}
