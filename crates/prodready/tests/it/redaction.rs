//! Credentials in URLs never reach any output: every command that takes a URL (flags, environment and
//! configuration) gets one with a password, succeeding and failing, and every output stream is searched.

use std::process::{Command, Stdio};
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use prodready_test_support::TestDb;

use crate::{prodready, stderr, stdout};

const PASSWORD: &str = "pw-9c41e7d2";
const TOKEN: &str = "tk-51b0aa3f";

/// Asserts that no output of `what` holds the password, the token or a `user:password@` form.
#[track_caller]
fn assert_clean(what: &str, out: &std::process::Output) {
    for stream in [stdout(out), stderr(out)] {
        for secret in [PASSWORD, TOKEN] {
            assert!(!stream.contains(secret), "{what} printed a credential:\n{stream}");
        }
    }
}

/// What a run is called, its environment and its arguments.
type Run<'a> = (&'a str, Vec<(&'a str, &'a str)>, Vec<&'a str>);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_command_prints_a_credential_from_a_url() {
    let db = TestDb::create().await;
    db.connect()
        .await
        .batch_execute("CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1)")
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let store = store.to_str().unwrap();
    // Trust auth ignores the password: these URLs work against the test server.
    let good = db.url().replacen("postgres@", &format!("postgres:{PASSWORD}@"), 1);
    assert!(good.contains(PASSWORD), "{good}");
    let refused = format!("postgres://app:{PASSWORD}@127.0.0.1:1/app?sslmode=disable");
    let missing = good.replacen(db.name(), "prodready_no_such_database", 1);
    let http = format!("http://app:{PASSWORD}@127.0.0.1:1/?token={TOKEN}");
    let pushgateway = format!("http://app:{PASSWORD}@127.0.0.1:1");
    std::fs::write(dir.path().join("empty.log"), "").unwrap();
    // Load-test scenarios: one whose URL carries credentials (refused, naming it), one with a token in
    // the query against a closed port (the request's default name is the URL).
    let scenario = |url: &str| {
        format!(
            "[scenarios.s]\nexecutor = \"shared-iterations\"\niterations = 2\n[[scenarios.s.requests]]\nurl = \"{url}\"\nchecks = {{ status = 200 }}\n"
        )
    };
    std::fs::write(dir.path().join("credentials.toml"), scenario(&http)).unwrap();
    std::fs::write(
        dir.path().join("token.toml"),
        scenario(&format!("http://127.0.0.1:1/items?access_token={TOKEN}")),
    )
    .unwrap();
    let collector = format!("http://app:{PASSWORD}@127.0.0.1:1/v1/traces?token={TOKEN}");

    let runs: Vec<Run<'_>> = vec![
        (
            "backup run",
            vec![],
            vec!["backup", "run", "--store", store, "--database", &good, "--pushgateway", &pushgateway],
        ),
        (
            "backup run (env)",
            vec![("DATABASE_URL", &good)],
            vec!["backup", "run", "--store", store, "--json"],
        ),
        ("backup run refused", vec![], vec!["backup", "run", "--store", store, "--database", &refused]),
        ("backup run no database", vec![], vec!["backup", "run", "--store", store, "--database", &missing]),
        ("backup list", vec![], vec!["backup", "list", "--store", store, "--json"]),
        ("backup status", vec![], vec!["backup", "status", "--store", store, "--database", &good]),
        (
            "backup status (json)",
            vec![("DATABASE_URL", &good)],
            vec!["backup", "status", "--store", store, "--json"],
        ),
        (
            "backup verify",
            vec![],
            vec!["backup", "verify", "--store", store, "--database", &good, "--pushgateway", &pushgateway],
        ),
        (
            "backup verify bad scratch",
            vec![],
            vec!["backup", "verify", "--store", store, "--database", &good, "--scratch", &refused],
        ),
        (
            "backup restore refused",
            vec![],
            vec!["backup", "restore", "latest", "--store", store, "--database", &good, "--into", &refused],
        ),
        (
            "backup restore missing",
            vec![],
            vec!["backup", "restore", "latest", "--store", store, "--database", &good, "--into", &missing],
        ),
        ("backup prune", vec![], vec!["backup", "prune", "--store", store, "--database", &good]),
        ("logs query", vec![], vec!["logs", "query", "{a=\"b\"}", "--loki", &http]),
        ("backup base refused", vec![], vec!["backup", "base", "--store", store, "--database", &refused]),
        ("db top refused", vec![], vec!["db", "top", "--database", &refused]),
        ("db top (env)", vec![("DATABASE_URL", &missing)], vec!["db", "top", "--json"]),
        ("trace ping", vec![], vec!["trace", "ping", "--endpoint", &collector, "--timeout", "2s"]),
        ("load validate", vec![], vec!["load", "validate", "credentials.toml"]),
        (
            "load run",
            vec![],
            vec!["load", "run", "token.toml", "--out", "json", "--summary-export", "summary.json"],
        ),
        (
            "config show (env)",
            vec![("DATABASE_URL", &good), ("PRODREADY_LOGGING__LOKI_URL", &http)],
            vec!["config", "show"],
        ),
        (
            "config show --json (env)",
            vec![("DATABASE_URL", &good), ("PRODREADY_LOGGING__LOKI_URL", &http)],
            vec!["config", "show", "--json"],
        ),
        (
            "check",
            vec![("DATABASE_URL", &refused), ("PRODREADY_ALERTS__PROMETHEUS_URL", &http)],
            vec!["check", "--format", "json"],
        ),
        (
            "check (text)",
            vec![("DATABASE_URL", &missing), ("PRODREADY_ALERTS__PROMETHEUS_URL", &http)],
            vec!["check"],
        ),
    ];
    let mut outputs = std::collections::BTreeMap::new();
    for (what, env, args) in &runs {
        let out = prodready(dir.path(), env, args);
        assert_clean(what, &out);
        outputs.insert(*what, format!("exit {:?}\n{}{}", out.status.code(), stdout(&out), stderr(&out)));
    }
    // The paths searched are the ones meant: the push failed after a good backup, connections failed,
    // and the URL itself was shown (redacted) where a command shows it.
    let expect = [
        ("backup run", "127.0.0.1:1"),
        ("backup run", "exit Some(0)"),
        ("backup verify", "127.0.0.1:1"),
        ("backup run refused", "exit Some(1)"),
        ("backup run no database", "prodready_no_such_database"),
        ("backup restore refused", "127.0.0.1:1"),
        ("logs query", "127.0.0.1:1"),
        ("config show (env)", "[REDACTED]"),
        ("check", "127.0.0.1:1"),
        ("backup base refused", "127.0.0.1:1"),
        ("db top refused", "127.0.0.1:1"),
        ("trace ping", "127.0.0.1:1"),
        ("load validate", "credentials in the URL are not supported"),
        ("load run", "access_token=[REDACTED]"),
    ];
    for (what, needle) in expect {
        assert!(outputs[what].contains(needle), "{what}: expected `{needle}` in\n{}", outputs[what]);
    }
    let summary = std::fs::read_to_string(dir.path().join("summary.json")).unwrap();
    assert!(!summary.contains(TOKEN) && summary.contains("http_reqs"), "{summary}");
    // A connection error is said once, not once per wrapper.
    let refused = &outputs["backup run refused"];
    assert_eq!(refused.matches("Connection refused").count(), 1, "{refused}");

    // The shipping agent, failing to reach Loki, then stopped.
    let child = Command::new(env!("CARGO_BIN_EXE_prodready"))
        .args(["logs", "ship", "--loki", &http, "--path"])
        .arg(dir.path().join("*.log"))
        .arg("--positions")
        .arg(dir.path().join("positions.json"))
        .current_dir(dir.path())
        .env_clear()
        .envs(crate::coverage_env())
        .env("HOME", dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::fs::write(dir.path().join("app.log"), "{\"message\":\"one line\"}\n").unwrap();
    std::thread::sleep(Duration::from_secs(2));
    kill(Pid::from_raw(i32::try_from(child.id()).unwrap()), Signal::SIGTERM).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(stderr(&out).contains("loki push failing"), "{}", stderr(&out));
    assert_clean("logs ship", &out);

    // The long-running ones against a database that refuses: the daemon (its lock database) and the
    // database exporter (scraped once), each stopped after a while.
    let port = || std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let (daemon_port, exporter_port) = (port(), port());
    let refused = format!("postgres://app:{PASSWORD}@127.0.0.1:1/app?sslmode=disable");
    let spawn = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_prodready"))
            .args(args)
            .current_dir(dir.path())
            .env_clear()
            .envs(crate::coverage_env())
            .env("HOME", dir.path())
            .env("DATABASE_URL", &refused)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let daemon = spawn(&["daemon", "--listen", &format!("127.0.0.1:{daemon_port}")]);
    let exporter = spawn(&["db", "exporter", "--listen", &format!("127.0.0.1:{exporter_port}")]);
    let get = |port: u16, path: &str| -> String {
        for _ in 0..50 {
            if let Ok(mut socket) = std::net::TcpStream::connect(("127.0.0.1", port)) {
                use std::io::{Read as _, Write as _};
                let _ = write!(socket, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n");
                let mut answer = String::new();
                let _ = socket.read_to_string(&mut answer);
                return answer;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("nothing listens on {port}");
    };
    let scraped = get(exporter_port, "/metrics");
    assert!(scraped.contains("prodready_pg_up") && !scraped.contains(PASSWORD), "{scraped}");
    let status = get(daemon_port, "/status.json");
    assert!(!status.contains(PASSWORD), "{status}");
    std::thread::sleep(Duration::from_secs(2));
    for (what, child) in [("daemon", daemon), ("db exporter", exporter)] {
        kill(Pid::from_raw(i32::try_from(child.id()).unwrap()), Signal::SIGTERM).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            stderr(&out).contains("127.0.0.1:1"),
            "{what} said nothing of the database:\n{}",
            stderr(&out)
        );
        assert_clean(what, &out);
    }
}
