//! `prodready logs ship` as a process: SIGKILL and restart, SIGTERM, bounded memory while Loki is down,
//! its metrics endpoint; and `prodready logs query`.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use prodready_test_support::{Failure, LokiReceiver, free_port, http_status, wait_until};

use crate::{prodready, stderr, stdout};

/// A `logs ship` process, killed when the test ends (also when it fails).
struct Agent(Option<Child>);

impl Agent {
    fn child(&self) -> &Child {
        self.0.as_ref().expect("the agent is running")
    }

    fn id(&self) -> u32 {
        self.child().id()
    }

    fn wait(mut self) -> std::process::Output {
        self.0.take().expect("the agent is running").wait_with_output().unwrap()
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn agent(dir: &Path, loki: &str, metrics_port: Option<u16>) -> Agent {
    agent_with(dir, loki, metrics_port, &dir.join("app.log*"), None, &[])
}

/// An agent tailing `glob`, under `ulimit -n` when `max_fds` is given.
fn agent_with(
    dir: &Path,
    loki: &str,
    metrics_port: Option<u16>,
    glob: &Path,
    max_fds: Option<u32>,
    extra: &[&str],
) -> Agent {
    let bin = env!("CARGO_BIN_EXE_prodready");
    let mut cmd = match max_fds {
        Some(n) => {
            let mut sh = Command::new("/bin/sh");
            sh.args(["-c", &format!("ulimit -n {n} && exec \"$0\" \"$@\""), bin]);
            sh
        }
        None => Command::new(bin),
    };
    cmd.args(["logs", "ship", "--loki", loki, "--path"])
        .arg(glob)
        .arg("--positions")
        .arg(dir.join("positions.json"))
        .current_dir(dir)
        .env_clear()
        .envs(crate::coverage_env())
        .env("HOME", dir)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    if let Some(port) = metrics_port {
        cmd.args(["--metrics-addr", &format!("127.0.0.1:{port}")]);
    }
    cmd.args(extra);
    Agent(Some(cmd.spawn().unwrap()))
}

fn signal(agent: &Agent, signal: Signal) {
    kill(Pid::from_raw(i32::try_from(agent.id()).unwrap()), signal).unwrap();
}

/// Stops the agent with SIGTERM and returns its `stopped` log line.
fn terminate(agent: Agent) -> serde_json::Value {
    signal(&agent, Signal::SIGTERM);
    let out = agent.wait();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let log = String::from_utf8_lossy(&out.stderr).into_owned();
    let stopped = log
        .lines()
        .rev()
        .find(|l| l.contains("\"stopped\""))
        .unwrap_or_else(|| panic!("no stopped line:\n{log}"));
    serde_json::from_str(stopped).unwrap()
}

fn write_lines(path: &Path, range: std::ops::Range<usize>) {
    let mut file = std::fs::OpenOptions::new().create(true).append(true).open(path).unwrap();
    let mut buf = String::new();
    for n in range {
        buf.push_str(&format!(
            "{{\"level\":\"info\",\"n\":{n},\"message\":\"order {n} paid\",\"pad\":\"{}\"}}\n",
            "x".repeat(40)
        ));
        if buf.len() > 1 << 20 {
            file.write_all(buf.as_bytes()).unwrap();
            buf.clear();
        }
    }
    file.write_all(buf.as_bytes()).unwrap();
}

/// How often each line number arrived.
fn arrivals(receiver: &LokiReceiver) -> BTreeMap<u64, u32> {
    let mut seen = BTreeMap::new();
    for line in receiver.lines() {
        let value: serde_json::Value = serde_json::from_str(&line).unwrap();
        *seen.entry(value["n"].as_u64().unwrap()).or_insert(0) += 1;
    }
    seen
}

fn committed(dir: &Path) -> u64 {
    std::fs::read(dir.join("positions.json"))
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .map_or(0, |p| {
            p["files"].as_object().map_or(0, |f| f.values().map(|v| v["offset"].as_u64().unwrap_or(0)).sum())
        })
}

#[test]
fn sigkill_mid_stream_then_restart_delivers_every_line_and_counts_the_resent() {
    const TOTAL: usize = 200_000;
    let dir = tempfile::tempdir().unwrap();
    let receiver = LokiReceiver::start();
    let log = dir.path().join("app.log");
    write_lines(&log, 0..TOTAL / 2);
    let first = agent(dir.path(), &receiver.url(), None);
    // Kill while lines are flowing: some batches acknowledged, more still to read.
    assert!(wait_until(Duration::from_secs(60), || receiver.line_count() > 20_000));
    write_lines(&log, TOTAL / 2..TOTAL);
    signal(&first, Signal::SIGKILL);
    let _ = first.wait();
    let before_restart = receiver.line_count();
    assert!(before_restart < TOTAL as u64, "the kill came too late to be mid-stream");
    let second = agent(dir.path(), &receiver.url(), None);
    assert!(
        wait_until(Duration::from_secs(120), || arrivals(&receiver).len() == TOTAL),
        "not every line arrived"
    );
    let stopped = terminate(second);
    let seen = arrivals(&receiver);
    let duplicates: u64 = seen.values().map(|c| u64::from(c - 1)).sum();
    let resent = stopped["lines_resent"].as_u64().unwrap();
    assert!(duplicates <= resent, "{duplicates} duplicates but only {resent} reported as resent");
    assert_eq!(receiver.line_count(), TOTAL as u64 + duplicates);
}

#[test]
fn sigkill_between_batches_then_restart_sends_nothing_twice() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = LokiReceiver::start();
    let log = dir.path().join("app.log");
    write_lines(&log, 0..20_000);
    let first = agent(dir.path(), &receiver.url(), None);
    let size = std::fs::metadata(&log).unwrap().len();
    // Every batch acknowledged and committed: the agent is between batches.
    assert!(wait_until(Duration::from_secs(60), || committed(dir.path()) == size));
    signal(&first, Signal::SIGKILL);
    let _ = first.wait();
    let second = agent(dir.path(), &receiver.url(), None);
    write_lines(&log, 20_000..21_000);
    assert!(wait_until(Duration::from_secs(60), || arrivals(&receiver).len() == 21_000));
    let stopped = terminate(second);
    assert_eq!(stopped["lines_resent"], 0);
    assert!(arrivals(&receiver).values().all(|c| *c == 1), "duplicates after a kill between batches");
}

/// 5,000 files under a limit of 256 descriptors: every line arrives once, at most `max_open_files`
/// descriptors are held, and idle files that grow later are reopened and read.
#[test]
fn five_thousand_files_under_ulimit_256_all_arrive() {
    const FILES: usize = 5_000;
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    std::fs::create_dir(&logs).unwrap();
    let file = |i: usize| logs.join(format!("svc-{i:04}.log"));
    for i in 0..FILES {
        write_lines(&file(i), 2 * i..2 * i + 2);
    }
    let receiver = LokiReceiver::start();
    let metrics = free_port();
    let child = agent_with(dir.path(), &receiver.url(), Some(metrics), &logs.join("*.log*"), Some(256), &[]);
    let total = 2 * FILES;
    let count = || usize::try_from(receiver.line_count()).unwrap();
    assert!(wait_until(Duration::from_secs(120), || count() >= total), "{} of {total} lines", count());
    // Files read to their end long ago grow again: their readers reopen them.
    for i in [0, FILES / 2, FILES - 1] {
        write_lines(&file(i), total + i..total + i + 1);
    }
    assert!(wait_until(Duration::from_secs(30), || count() >= total + 3), "{} lines", count());
    let text = reqwest::blocking_get(metrics);
    let open = metric(&text, "prodready_logs_ship_files_open");
    assert!(open <= 128, "{open} descriptors held for files");
    assert_eq!(metric(&text, "prodready_logs_ship_files_watched"), FILES as u64, "{text}");
    let stopped = terminate(child);
    assert_eq!(stopped["lines_sent"], total as u64 + 3);
    let seen = arrivals(&receiver);
    assert_eq!(seen.len(), total + 3);
    assert!(
        seen.values().all(|n| *n == 1),
        "duplicates: {:?}",
        seen.iter().filter(|(_, n)| **n > 1).take(5).collect::<Vec<_>>()
    );
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn memory_stays_bounded_while_loki_is_down_and_nothing_is_lost_after() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = LokiReceiver::start();
    receiver.set_failure(Failure::Always(503));
    let log = dir.path().join("app.log");
    let metrics = free_port();
    let child = agent(dir.path(), &receiver.url(), Some(metrics));
    // ~100 MiB of lines while every push fails.
    write_lines(&log, 0..1_000_000);
    let size_mib = std::fs::metadata(&log).unwrap().len() / (1 << 20);
    assert!(wait_until(Duration::from_secs(30), || receiver.statuses().len() >= 3));
    std::thread::sleep(Duration::from_secs(2));
    let rss = rss_kib(child.id()) / 1024;
    assert!(rss < 64, "the agent holds {rss} MiB while Loki is down ({size_mib} MiB unsent): not bounded");
    assert_eq!(committed(dir.path()), 0);
    // Its own metrics show the lag and the retries.
    let text = reqwest::blocking_get(metrics);
    assert!(text.contains("prodready_logs_ship_retries_total"), "{text}");
    let lag: u64 = metric(&text, "prodready_logs_ship_lag_bytes");
    assert!(lag > 90 * (1 << 20), "lag {lag}");
    receiver.set_failure(Failure::None);
    assert!(wait_until(Duration::from_secs(120), || receiver.line_count() >= 1_000_000));
    // The agent counts a batch once Loki's answer reaches it, a moment after the receiver stored it.
    let sent = || metric(&reqwest::blocking_get(metrics), "prodready_logs_ship_lines_sent_total");
    assert!(wait_until(Duration::from_secs(10), || sent() == 1_000_000), "sent {}", sent());
    let stopped = terminate(child);
    assert_eq!(stopped["lines_sent"], 1_000_000);
    assert_eq!(receiver.line_count(), 1_000_000);
}

fn metric(text: &str, name: &str) -> u64 {
    text.lines()
        .find(|l| l.starts_with(name) && !l.starts_with('#'))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in\n{text}"))
}

/// A tiny blocking GET of the agent's /metrics (no extra HTTP client in this test binary).
mod reqwest {
    use std::io::{Read as _, Write as _};

    pub(super) fn blocking_get(port: u16) -> String {
        assert_eq!(super::http_status(port, "/metrics"), Some(200));
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        write!(stream, "GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").unwrap();
        let mut out = String::new();
        stream.read_to_string(&mut out).unwrap();
        out.split_once("\r\n\r\n").map(|(_, body)| body.to_owned()).unwrap_or(out)
    }
}

/// `--label KEY=VALUE` puts a label on every stream without a configuration file (PRODUCT.md 3.1).
#[test]
fn label_flags_label_every_stream() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = LokiReceiver::start();
    std::fs::write(dir.path().join("app.log"), "{\"message\":\"one\"}\n").unwrap();
    let glob = dir.path().join("app.log*");
    let child = agent_with(
        dir.path(),
        &receiver.url(),
        None,
        &glob,
        None,
        &["--label", "service=api", "--label", "env=prod"],
    );
    assert!(wait_until(Duration::from_secs(30), || receiver.line_count() == 1));
    terminate(child);
    let labels = &receiver.entries()[0].labels;
    assert_eq!((labels["service"].as_str(), labels["env"].as_str()), ("api", "prod"), "{labels:?}");
    let out = prodready(dir.path(), &[], &["logs", "ship", "--label", "oops", "--path", "x"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("`oops` is not KEY=VALUE"), "{}", stderr(&out));
}

#[test]
fn logs_query_prints_matching_lines_oldest_first() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = LokiReceiver::start();
    let log = dir.path().join("app.log");
    std::fs::write(&log, "{\"message\":\"payment ok\"}\n{\"message\":\"payment error: card declined\"}\n{\"message\":\"refund error\"}\n").unwrap();
    let child = agent(dir.path(), &receiver.url(), None);
    assert!(wait_until(Duration::from_secs(30), || receiver.line_count() == 3));
    terminate(child);
    let out = prodready(
        dir.path(),
        &[],
        &["logs", "query", "{job!=\"x\"} |= \"error\" != \"refund\"", "--loki", &receiver.url()],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(text.contains("payment error: card declined") && text.contains("filename="), "{text}");
    let out = prodready(dir.path(), &[], &["logs", "query", "{unterminated", "--loki", &receiver.url()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("Loki refused the query (400"), "{}", stderr(&out));
    let out = prodready(
        dir.path(),
        &[],
        &["logs", "query", "{job!=\"x\"}", "--since", "5m", "--json", "--loki", &receiver.url()],
    );
    let lines: Vec<serde_json::Value> =
        stdout(&out).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 3);
    assert!(lines[0]["line"].as_str().unwrap().contains("payment ok"));
    let out = prodready(dir.path(), &[], &["logs", "query", "{a=\"b\"}"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("no Loki URL"), "{}", stderr(&out));
}

/// While Loki fails, the agent says so once (not once per retry), and says when it recovered.
#[test]
fn loki_failures_are_logged_once_and_the_recovery_too() {
    outage_is_logged_once_then_the_recovery(503);
}

/// Loki's rate limit answers 429: retried like a 5xx, and said the same way.
#[test]
fn a_rate_limited_push_is_logged_once_and_the_recovery_too() {
    outage_is_logged_once_then_the_recovery(429);
}

fn outage_is_logged_once_then_the_recovery(status: u16) {
    let dir = tempfile::tempdir().unwrap();
    let receiver = LokiReceiver::start();
    receiver.set_failure(Failure::Always(status));
    let child = agent(dir.path(), &receiver.url(), None);
    write_lines(&dir.path().join("app.log"), 0..1_000);
    assert!(wait_until(Duration::from_secs(30), || receiver.statuses().len() >= 3));
    receiver.set_failure(Failure::None);
    assert!(wait_until(Duration::from_secs(60), || receiver.line_count() >= 1_000));
    signal(&child, Signal::SIGTERM);
    let out = child.wait();
    assert_eq!(out.status.code(), Some(0));
    let log = String::from_utf8_lossy(&out.stderr).into_owned();
    let failing: Vec<&str> = log.lines().filter(|l| l.contains("loki push failing")).collect();
    assert_eq!(failing.len(), 1, "one line for the whole outage, not one per retry:\n{log}");
    assert!(failing[0].contains(&status.to_string()) && failing[0].contains("backlog_bytes"), "{log}");
    let recovered =
        log.lines().find(|l| l.contains("loki push recovered")).unwrap_or_else(|| panic!("{log}"));
    let line: serde_json::Value = serde_json::from_str(recovered).unwrap();
    assert!(line["failures"].as_u64().unwrap() >= 2, "{recovered}");
}

/// A Loki that accepts connections and never answers: each push times out (10 s), and the agent says
/// so once, while it keeps the lines for later.
#[test]
fn a_loki_that_never_answers_is_logged_as_failing() {
    let dir = tempfile::tempdir().unwrap();
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", silent.local_addr().unwrap());
    let held = std::thread::spawn(move || {
        // Accept and hold every connection, answering nothing.
        let mut open = Vec::new();
        silent.set_nonblocking(true).unwrap();
        let until = std::time::Instant::now() + Duration::from_secs(20);
        while std::time::Instant::now() < until {
            if let Ok((socket, _)) = silent.accept() {
                open.push(socket);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    });
    let child = agent(dir.path(), &url, None);
    write_lines(&dir.path().join("app.log"), 0..10);
    std::thread::sleep(Duration::from_secs(13));
    signal(&child, Signal::SIGTERM);
    let out = child.wait();
    let log = String::from_utf8_lossy(&out.stderr).into_owned();
    let failing: Vec<&str> = log.lines().filter(|l| l.contains("loki push failing")).collect();
    assert_eq!(failing.len(), 1, "the silent server is reported once:\n{log}");
    assert!(failing[0].contains("no answer") || failing[0].contains("timed out"), "{log}");
    drop(held);
}
