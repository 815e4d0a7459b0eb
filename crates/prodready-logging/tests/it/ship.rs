//! The shipping agent on real files: rotation by rename and by copytruncate, outages, rejections.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use prodready_logging::loki::Labels;
use prodready_logging::ship::{ShipOptions, ShipReport, run};
use prodready_test_support::{Failure, LokiReceiver, wait_until};

struct Agent {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<prodready_logging::Result<ShipReport>>,
}

impl Agent {
    fn start(dir: &Path, url: &str, paths: &[&str], json_labels: &[&str]) -> Self {
        let mut options = ShipOptions::new(
            paths.iter().map(|p| dir.join(p).display().to_string()).collect(),
            dir.join("positions.json"),
            url,
            Labels::new([("job", "app")]).unwrap(),
        );
        options.json_labels = json_labels.iter().map(|s| (*s).to_owned()).collect();
        options.poll_interval = Duration::from_millis(50);
        options.batch_max_wait = Duration::from_millis(100);
        options.batch_max_bytes = 16 * 1024;
        options.retry.min_backoff = Duration::from_millis(20);
        options.retry.max_backoff = Duration::from_millis(200);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(run(options, async move {
            let _ = stopped.await;
        }));
        Self { stop, task }
    }

    async fn stop(self) -> ShipReport {
        let _ = self.stop.send(());
        self.task.await.unwrap().unwrap()
    }
}

/// The lines' own time: the start of the previous hour, so it is always one Loki accepts (not older
/// than a week, not in the future), as `(RFC 3339 without fraction, Unix seconds)`.
fn base_time() -> &'static (String, u64) {
    static BASE: std::sync::OnceLock<(String, u64)> = std::sync::OnceLock::new();
    BASE.get_or_init(|| {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
        let secs = now / 3600 * 3600 - 3600;
        // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
        let days = i64::try_from(secs / 86_400).unwrap() + 719_468;
        let era = days.div_euclid(146_097);
        let doe = days.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        let year = yoe + era * 400 + i64::from(month <= 2);
        let hour = secs % 86_400 / 3600;
        (format!("{year:04}-{month:02}-{day:02}T{hour:02}:00:00"), secs)
    })
}

fn line(n: usize) -> String {
    let level = if n.is_multiple_of(10) { "ERROR" } else { "info" };
    let ts = &base_time().0;
    format!(r#"{{"ts":"{ts}.{n:06}Z","level":"{level}","n":{n},"message":"line {n}"}}"#)
}

fn append(path: &Path, range: std::ops::Range<usize>) {
    let mut file = std::fs::OpenOptions::new().create(true).append(true).open(path).unwrap();
    for n in range {
        writeln!(file, "{}", line(n)).unwrap();
    }
}

/// How often each line number arrived.
fn arrivals(receiver: &LokiReceiver) -> BTreeMap<usize, usize> {
    let mut seen = BTreeMap::new();
    for line in receiver.lines() {
        let value: serde_json::Value = serde_json::from_str(&line).unwrap();
        *seen.entry(usize::try_from(value["n"].as_u64().unwrap()).unwrap()).or_insert(0) += 1;
    }
    seen
}

fn wait_for_all(receiver: &LokiReceiver, total: usize) {
    let done = wait_until(Duration::from_secs(60), || arrivals(receiver).len() >= total);
    let seen = arrivals(receiver);
    let missing: Vec<usize> = (0..total).filter(|n| !seen.contains_key(n)).take(10).collect();
    assert!(done, "{} of {total} lines arrived; missing e.g. {missing:?}", seen.len());
}

fn assert_exactly_once(receiver: &LokiReceiver, total: usize) {
    let seen = arrivals(receiver);
    assert_eq!(seen.len(), total);
    let twice: Vec<_> = seen.iter().filter(|(_, c)| **c > 1).take(5).collect();
    assert!(twice.is_empty(), "duplicates: {twice:?}");
}

async fn paced(path: PathBuf, range: std::ops::Range<usize>) {
    for chunk in range.clone().step_by(500) {
        append(&path, chunk..(chunk + 500).min(range.end));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_line_arrives_once_with_its_labels_and_timestamp() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = LokiReceiver::start();
    append(&dir.path().join("app.log"), 0..2_000);
    let agent = Agent::start(dir.path(), &receiver.url(), &["*.log"], &["level"]);
    paced(dir.path().join("app.log"), 2_000..4_000).await;
    wait_for_all(&receiver, 4_000);
    let report = agent.stop().await;
    assert_exactly_once(&receiver, 4_000);
    assert_eq!(report.lines_sent, 4_000);
    let entries = receiver.entries();
    let first = entries.iter().find(|e| e.line.contains(r#""n":0,"#)).unwrap();
    assert_eq!(first.labels["job"], "app");
    assert_eq!(first.labels["level"], "error");
    assert_eq!(first.labels["filename"], dir.path().join("app.log").display().to_string());
    assert_eq!(
        first.timestamp_ns,
        i64::try_from(base_time().1).unwrap() * 1_000_000_000,
        "the line's own timestamp ({})",
        base_time().0
    );
    let positions: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("positions.json")).unwrap()).unwrap();
    let (_, position) = positions["files"].as_object().unwrap().iter().next().unwrap();
    assert_eq!(position["offset"], std::fs::metadata(dir.path().join("app.log")).unwrap().len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_by_rename_loses_nothing() {
    for glob in ["app.log*", "app.log"] {
        let dir = tempfile::tempdir().unwrap();
        let receiver = LokiReceiver::start();
        let log = dir.path().join("app.log");
        let agent = Agent::start(dir.path(), &receiver.url(), &[glob], &[]);
        paced(log.clone(), 0..5_000).await;
        std::fs::rename(&log, dir.path().join("app.log.1")).unwrap();
        paced(log.clone(), 5_000..10_000).await;
        std::fs::rename(dir.path().join("app.log.1"), dir.path().join("app.log.2")).unwrap();
        std::fs::rename(&log, dir.path().join("app.log.1")).unwrap();
        paced(log.clone(), 10_000..12_000).await;
        wait_for_all(&receiver, 12_000);
        agent.stop().await;
        assert_exactly_once(&receiver, 12_000);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_by_copytruncate_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = LokiReceiver::start();
    let log = dir.path().join("app.log");
    let agent = Agent::start(dir.path(), &receiver.url(), &["app.log*"], &[]);
    for round in 0..3 {
        paced(log.clone(), round * 4_000..round * 4_000 + 4_000).await;
        // What logrotate's copytruncate does: copy, then truncate the original in place.
        let rotated = dir.path().join(format!("app.log.{}", round + 1));
        std::fs::copy(&log, &rotated).unwrap();
        std::fs::OpenOptions::new().write(true).open(&log).unwrap().set_len(0).unwrap();
    }
    paced(log.clone(), 12_000..13_000).await;
    wait_for_all(&receiver, 13_000);
    agent.stop().await;
    assert_exactly_once(&receiver, 13_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_of_429s_and_500s_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = LokiReceiver::start();
    let agent = Agent::start(dir.path(), &receiver.url(), &["app.log"], &[]);
    receiver.set_failure(Failure::Always(429));
    paced(dir.path().join("app.log"), 0..3_000).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    receiver.set_failure(Failure::Always(500));
    paced(dir.path().join("app.log"), 3_000..6_000).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(receiver.line_count(), 0);
    receiver.set_failure(Failure::None);
    wait_for_all(&receiver, 6_000);
    let report = agent.stop().await;
    assert_exactly_once(&receiver, 6_000);
    assert!(report.retries >= 4, "{report:?}");
    let statuses = receiver.statuses();
    assert!(statuses.contains(&429) && statuses.contains(&500) && statuses.contains(&204));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_batch_is_dropped_and_counted_and_shipping_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = LokiReceiver::start();
    receiver.set_failure(Failure::Next { status: 400, times: 1 });
    append(&dir.path().join("app.log"), 0..100);
    let agent = Agent::start(dir.path(), &receiver.url(), &["app.log"], &[]);
    assert!(wait_until(Duration::from_secs(20), || receiver.statuses().contains(&400)));
    append(&dir.path().join("app.log"), 100..200);
    assert!(wait_until(Duration::from_secs(20), || arrivals(&receiver).contains_key(&199)));
    let report = agent.stop().await;
    let seen = arrivals(&receiver);
    assert!(report.lines_rejected > 0, "{report:?}");
    assert_eq!(report.lines_rejected + report.lines_sent, 200, "{report:?}");
    assert_eq!(seen.len() as u64, report.lines_sent);
    assert!((100..200).all(|n| seen.contains_key(&n)), "lines after the rejected batch arrive");
    assert_eq!(receiver.statuses().iter().filter(|s| **s == 400).count(), 1, "a 400 is never retried");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graceful_stop_pushes_what_was_read_and_a_restart_sends_nothing_twice() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = LokiReceiver::start();
    append(&dir.path().join("app.log"), 0..3_000);
    let agent = Agent::start(dir.path(), &receiver.url(), &["app.log"], &[]);
    wait_for_all(&receiver, 3_000);
    agent.stop().await;
    let agent = Agent::start(dir.path(), &receiver.url(), &["app.log"], &[]);
    append(&dir.path().join("app.log"), 3_000..3_500);
    wait_for_all(&receiver, 3_500);
    let report = agent.stop().await;
    assert_exactly_once(&receiver, 3_500);
    assert_eq!(report.lines_resent, 0);
}

#[tokio::test]
async fn bad_settings_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let none = ShipOptions::new(vec![], dir.path().join("p.json"), "http://127.0.0.1:1", Labels::default());
    let err = run(none, async {}).await.unwrap_err().to_string();
    assert!(err.contains("no files to ship: give at least one path glob"), "{err}");
    let bad = ShipOptions::new(
        vec!["[".into()],
        dir.path().join("p.json"),
        "http://127.0.0.1:1",
        Labels::default(),
    );
    assert!(run(bad, async {}).await.unwrap_err().to_string().contains("`[`"));
    std::fs::write(dir.path().join("p.json"), "garbage").unwrap();
    let corrupt = ShipOptions::new(
        vec!["*.log".into()],
        dir.path().join("p.json"),
        "http://127.0.0.1:1",
        Labels::default(),
    );
    assert!(run(corrupt, async {}).await.unwrap_err().to_string().contains("not a positions file"));
    // A file written by a newer version is refused, not guessed at nor overwritten.
    let future = r#"{"version":2,"files":{}}"#;
    std::fs::write(dir.path().join("p.json"), future).unwrap();
    let newer = ShipOptions::new(
        vec!["*.log".into()],
        dir.path().join("p.json"),
        "http://127.0.0.1:1",
        Labels::default(),
    );
    let err = run(newer, async {}).await.unwrap_err().to_string();
    assert!(err.contains("p.json: key `version`: positions file version 2 is not supported"), "{err}");
    assert_eq!(std::fs::read_to_string(dir.path().join("p.json")).unwrap(), future);
    // 14 static labels, filename and a JSON label make 16: Loki would refuse every push.
    let labels = Labels::new((0..14).map(|i| (format!("l{i}"), "v"))).unwrap();
    let mut crowded =
        ShipOptions::new(vec!["*.log".into()], dir.path().join("q.json"), "http://127.0.0.1:1", labels);
    crowded.json_labels = vec!["level".into()];
    let err = run(crowded, async {}).await.unwrap_err().to_string();
    assert!(err.contains("a stream would carry 16 labels"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_413_splits_the_batch_and_a_404_is_retried_not_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = LokiReceiver::start();
    receiver.set_failure(Failure::Next { status: 413, times: 2 });
    append(&dir.path().join("app.log"), 0..100);
    let agent = Agent::start(dir.path(), &receiver.url(), &["app.log"], &[]);
    wait_for_all(&receiver, 100);
    receiver.set_failure(Failure::Next { status: 404, times: 3 });
    append(&dir.path().join("app.log"), 100..200);
    wait_for_all(&receiver, 200);
    let report = agent.stop().await;
    assert_exactly_once(&receiver, 200);
    assert_eq!(report.lines_rejected, 0, "{report:?}");
    assert!(report.retries >= 3, "{report:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lines_without_a_usable_time_follow_the_files_last_time() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = LokiReceiver::start();
    let ten_minutes_ago = std::time::SystemTime::now() - Duration::from_secs(600);
    let stamp = humantime::format_rfc3339_seconds(ten_minutes_ago).to_string();
    let local = stamp.trim_end_matches('Z').to_owned() + "+00:30";
    std::fs::write(
        dir.path().join("app.log"),
        format!(
            "{{\"ts\":\"{stamp}\",\"n\":0}}\nplain text line\n{{\"ts\":\"2001-01-01T00:00:00Z\",\"n\":2}}\n{{\"time\":\"{local}\",\"n\":3}}\n"
        ),
    )
    .unwrap();
    let agent = Agent::start(dir.path(), &receiver.url(), &["app.log"], &[]);
    assert!(wait_until(Duration::from_secs(20), || receiver.line_count() == 4));
    agent.stop().await;
    let entries = receiver.entries();
    let at = |needle: &str| entries.iter().find(|e| e.line.contains(needle)).unwrap().timestamp_ns;
    let first = at("\"n\":0");
    let expected = i64::try_from(ten_minutes_ago.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs())
        .unwrap()
        * 1_000_000_000;
    assert_eq!(first, expected);
    assert_eq!(at("plain text line"), first, "a line without a time follows the last one");
    assert_eq!(at("\"n\":2"), first, "a time Loki would refuse (years old) is not used");
    assert_eq!(at("\"n\":3"), first - 1800 * 1_000_000_000, "+00:30 is half an hour ahead of UTC");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_sharing_its_first_line_with_another_is_read_once_the_other_is_gone() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = LokiReceiver::start();
    std::fs::write(dir.path().join("a.log"), "starting server\nfrom a 1\nfrom a 2\n").unwrap();
    std::fs::write(dir.path().join("b.log"), "starting server\nfrom b 1\n").unwrap();
    let agent = Agent::start(dir.path(), &receiver.url(), &["*.log"], &[]);
    assert!(wait_until(Duration::from_secs(20), || receiver.lines().contains(&"from a 2".to_owned())));
    // a.log goes (rotated away and deleted): b.log, which waited, is read from its start.
    std::fs::remove_file(dir.path().join("a.log")).unwrap();
    assert!(
        wait_until(Duration::from_secs(20), || receiver.lines().contains(&"from b 1".to_owned())),
        "{:?}",
        receiver.lines()
    );
    agent.stop().await;
    assert_eq!(receiver.lines().iter().filter(|l| *l == "starting server").count(), 2);
}
