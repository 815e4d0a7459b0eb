use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use prodready_checklist::{CheckResult, CheckSpec, Meta, Observer, RunOptions, Status, run};

fn command(id: &str, run: &[&str], timeout: Option<Duration>) -> CheckSpec {
    CheckSpec {
        id: id.to_owned(),
        title: id.to_owned(),
        category: Some(prodready_checklist::Category::Testing),
        kind: Some(prodready_checklist::KindName::Command),
        weight: 1.0,
        run: Some(run.iter().map(|s| (*s).to_owned()).collect()),
        timeout,
        ..CheckSpec::default()
    }
}

#[derive(Default)]
struct Count {
    started: AtomicUsize,
    finished: AtomicUsize,
}

impl Observer for Count {
    fn started(&self, _: &Meta) {
        self.started.fetch_add(1, Ordering::SeqCst);
    }
    fn finished(&self, _: &CheckResult) {
        self.finished.fetch_add(1, Ordering::SeqCst);
    }
}

#[tokio::test]
async fn a_slow_check_times_out_without_delaying_the_others() {
    let checks: Vec<_> = [
        command("slow", &["sleep", "30"], None),
        command("fast", &["true"], None),
        command("own-timeout", &["sleep", "30"], Some(Duration::from_millis(500))),
        command("failing", &["sh", "-c", "echo broken >&2; exit 3"], None),
    ]
    .iter()
    .map(|s| s.validate().unwrap())
    .collect();
    let observer = Arc::new(Count::default());
    let started = Instant::now();
    let results = run(&checks, &RunOptions::now(Duration::from_secs(2)), observer.clone()).await;
    let elapsed = started.elapsed();
    // Not a performance assertion: 30 s would mean the timeout did not apply.
    assert!(elapsed < Duration::from_secs(20), "took {elapsed:?}");
    let seen: Vec<(&str, Status, &str)> =
        results.iter().map(|r| (r.meta.id.as_str(), r.status, r.summary.as_str())).collect();
    assert_eq!(seen[0], ("slow", Status::Error, "timed out after 2s"));
    assert_eq!((seen[1].0, seen[1].1), ("fast", Status::Pass));
    assert_eq!(seen[2], ("own-timeout", Status::Error, "timed out after 500ms"));
    assert_eq!((seen[3].0, seen[3].1), ("failing", Status::Fail));
    assert!(seen[3].2.contains("exited 3") && seen[3].2.ends_with(": broken"), "{}", seen[3].2);
    assert_eq!(observer.started.load(Ordering::SeqCst), 4);
    assert_eq!(observer.finished.load(Ordering::SeqCst), 4);
}

#[tokio::test]
async fn a_timed_out_command_is_killed_with_everything_it_started() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("marker");
    // The marker comes from a grandchild: killing only the shell would leave it running.
    let script = format!("(sleep 3; touch {}) & wait", marker.display());
    let checks = vec![command("slow", &["sh", "-c", &script], None).validate().unwrap()];
    let results =
        run(&checks, &RunOptions::now(Duration::from_millis(300)), Arc::new(prodready_checklist::Quiet))
            .await;
    assert_eq!(results[0].status, Status::Error);
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert!(!marker.exists(), "the command went on running after its timeout");
}

#[tokio::test]
async fn a_not_applicable_check_does_not_run() {
    let mut spec = command("n-a", &["false"], None);
    spec.not_applicable = Some("no TLS on this internal service".to_owned());
    let results = run(
        &[spec.validate().unwrap()],
        &RunOptions::now(Duration::from_secs(2)),
        Arc::new(prodready_checklist::Quiet),
    )
    .await;
    assert_eq!(
        (results[0].status, results[0].summary.as_str()),
        (Status::NotApplicable, "no TLS on this internal service")
    );
}

#[tokio::test]
async fn a_command_that_leaves_a_background_process_still_finishes() {
    let checks = vec![command("daemonish", &["sh", "-c", "sleep 30 & exit 0"], None).validate().unwrap()];
    let results =
        run(&checks, &RunOptions::now(Duration::from_secs(10)), Arc::new(prodready_checklist::Quiet)).await;
    assert_eq!(results[0].status, Status::Pass, "{}", results[0].summary);
}
