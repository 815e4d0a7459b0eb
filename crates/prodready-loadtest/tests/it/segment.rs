//! Execution segments: a plan run as N segments against a real server, each segment's result written
//! to JSON and read back, merged into what the whole run reports.

use std::path::Path;
use std::sync::Arc;

use prodready_loadtest::{Plan, Report, RunOptions, RunResult, Segment, Summary};

use crate::server::Server;

fn plan(text: &str) -> Plan {
    let mut read = |_: &Path| Err(std::io::Error::from(std::io::ErrorKind::NotFound));
    prodready_loadtest::parse(Path::new("/t/load.toml"), text, &mut read).expect("the scenario parses")
}

async fn run(plan: &Plan, segment: Segment) -> Report {
    prodready_loadtest::run(Arc::new(plan.clone()), RunOptions { segment, ..RunOptions::default() }).await
}

/// Every threshold verdict of a summary: `(metric, expression, ok)`.
fn verdicts(s: &Summary) -> Vec<(String, String, bool)> {
    s.metrics
        .iter()
        .flat_map(|(m, body)| body.thresholds.iter().map(move |(e, r)| (m.clone(), e.clone(), r.ok)))
        .collect()
}

fn count(s: &Summary, metric: &str) -> Option<f64> {
    s.value(metric, "count")
}

fn scenario(base: &str) -> String {
    format!(
        r#"
[scenarios.shared]
executor = "shared-iterations"
vus = 3
iterations = 20
[[scenarios.shared.requests]]
url = "{base}/items"
tags = {{ name = "items" }}
checks = {{ status = 200, json_path = "items[1].id" }}

[scenarios.each]
executor = "per-vu-iterations"
vus = 4
iterations = 3
[[scenarios.each.requests]]
method = "POST"
url = "{base}/echo"
body = "hello"

[scenarios.open]
executor = "constant-arrival-rate"
rate = 40
duration = "1s"
preAllocatedVUs = 3
[[scenarios.open.requests]]
url = "{base}/echo"

[scenarios.ramp]
executor = "ramping-arrival-rate"
startRate = 0
stages = [{{ duration = "1s", target = 20 }}]
preAllocatedVUs = 3
[[scenarios.ramp.requests]]
url = "{base}/items"

[thresholds]
http_reqs = ["count==82"]
"http_reqs{{scenario:open}}" = ["count==40"]
"http_req_duration{{name:items}}" = ["p(95)<5000", "max<0"]
http_req_failed = ["rate<0.1"]
"checks{{check:items: status is 200}}" = ["rate==1"]
iterations = ["count>=82"]
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_segments_merge_into_the_whole_run() {
    let server = Server::start().await;
    let plan = plan(&scenario(&server.base));
    let whole = run(&plan, Segment::WHOLE).await;
    assert_eq!(server.requests(), 82);

    let segments: Vec<Segment> = (1..=3).map(|i| Segment::new(i, 3).unwrap()).collect();
    // The three segments at once, as on three machines.
    let handles: Vec<_> = segments
        .iter()
        .map(|s| {
            let (plan, segment) = (plan.clone(), *s);
            tokio::spawn(async move { run(&plan, segment).await })
        })
        .collect();
    let mut reports = Vec::new();
    for h in handles {
        reports.push(h.await.unwrap());
    }
    assert_eq!(server.requests(), 2 * 82);
    // shared: 20 iterations as 7 + 7 + 6; each: 4 VUs as 2 + 1 + 1 (x3); open: 40 arrivals as 14 + 13 + 13;
    // ramp: 10 arrivals as 4 + 3 + 3.
    let per_segment: Vec<f64> = reports.iter().map(|r| count(&r.summary, "http_reqs").unwrap()).collect();
    assert_eq!(per_segment, [7.0 + 6.0 + 14.0 + 4.0, 7.0 + 3.0 + 13.0 + 3.0, 6.0 + 3.0 + 13.0 + 3.0]);

    // Through JSON, as files, in any order.
    let results: Vec<(String, RunResult)> = reports
        .iter()
        .rev()
        .map(|r| {
            let name = format!("segment-{}.json", r.result.segment().replace('/', "-of-"));
            let text = serde_json::to_string(&r.result.to_json()).unwrap();
            (name.clone(), RunResult::from_json(&name, &text).unwrap())
        })
        .collect();
    let merged = prodready_loadtest::merge(&results).unwrap();
    let (w, m) = (&whole.summary, &merged.summary);
    for metric in ["http_reqs", "iterations", "http_reqs{scenario:open}", "dropped_iterations"] {
        assert_eq!(count(w, metric), count(m, metric), "{metric}");
    }
    assert_eq!(count(m, "http_reqs"), Some(82.0));
    assert_eq!(w.value("http_req_failed", "passes"), m.value("http_req_failed", "passes"));
    assert_eq!(verdicts(w), verdicts(m));
    assert!(!m.thresholds_ok() && m.failed_thresholds() == ["http_req_duration{name:items} max<0"]);
    let checks = |s: &Summary| {
        s.root_group.checks.iter().map(|c| (c.name.clone(), c.passes, c.fails)).collect::<Vec<_>>()
    };
    assert_eq!(checks(w), checks(m));
    assert_eq!(m.value("vus_max", "value"), w.value("vus_max", "value"));

    // The slowest request of the merged run is the slowest of any segment.
    let max =
        reports.iter().map(|r| r.summary.value("http_req_duration", "max").unwrap()).fold(0.0, f64::max);
    assert_eq!(m.value("http_req_duration", "max"), Some(max));
}

/// Duration-bound executors split their VUs the same way: constant-vus by count, ramping-vus by the
/// levels of the whole ramp, so the segments' VUs add up to the whole run's at every moment.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vus_of_duration_executors_add_up() {
    let server = Server::start().await;
    let base = &server.base;
    let plan = plan(&format!(
        r#"
[scenarios.steady]
executor = "constant-vus"
vus = 5
duration = "300ms"
think_time = "20ms"
[[scenarios.steady.requests]]
url = "{base}/items"

[scenarios.ramp]
executor = "ramping-vus"
startVUs = 0
stages = [{{ duration = "300ms", target = 4 }}]
think_time = "20ms"
[[scenarios.ramp.requests]]
url = "{base}/items"
"#
    ));
    let whole = run(&plan, Segment::WHOLE).await;
    assert_eq!(whole.summary.value("vus_max", "value"), Some(9.0));
    let mut results = Vec::new();
    for (i, vus_max) in [(1, 2.0 + 2.0), (2, 2.0 + 1.0), (3, 1.0 + 1.0)] {
        let report = run(&plan, Segment::new(i, 3).unwrap()).await;
        assert_eq!(report.summary.value("vus_max", "value"), Some(vus_max), "segment {i}/3");
        results.push((format!("{i}.json"), report.result));
    }
    let merged = prodready_loadtest::merge(&results).unwrap();
    assert_eq!(merged.summary.value("vus_max", "value"), Some(9.0));
    let requests = merged.summary.value("http_reqs", "count").unwrap();
    assert_eq!(Some(requests), merged.summary.value("iterations", "count"));
    assert!(requests >= 5.0, "{requests}");
}

/// A whole run's result read back and "merged" alone gives the same trend statistics to the microsecond:
/// the histogram's buckets and its exact count, sum, minimum and maximum survive the file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_result_file_keeps_every_histogram_exactly() {
    let server = Server::start().await;
    let plan = plan(&scenario(&server.base));
    let whole = run(&plan, Segment::WHOLE).await;
    let text = serde_json::to_string_pretty(&whole.result.to_json()).unwrap();
    let back = RunResult::from_json("whole.json", &text).unwrap();
    assert_eq!(back, whole.result);
    let merged = prodready_loadtest::merge(&[("whole.json".to_owned(), back)]).unwrap();
    for (name, metric) in &whole.summary.metrics {
        if metric.kind == "trend" {
            assert_eq!(metric.values, merged.summary.metrics[name].values, "{name}");
        }
    }
    assert_eq!(verdicts(&whole.summary), verdicts(&merged.summary));
}

#[test]
fn results_that_are_not_one_run_do_not_merge() {
    let a = plan(
        "[scenarios.s]\nexecutor = \"shared-iterations\"\nvus = 3\niterations = 3\n[[scenarios.s.requests]]\nurl = \"http://127.0.0.1:9/\"\n",
    );
    let b = plan(
        "[scenarios.s]\nexecutor = \"shared-iterations\"\nvus = 3\niterations = 4\n[[scenarios.s.requests]]\nurl = \"http://127.0.0.1:9/\"\n",
    );
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    // Nothing listens on port 9: every request fails at once, which is all a result needs here.
    let result = |p: &Plan, s: &str| rt.block_on(run(p, s.parse().unwrap())).result;
    let check = |files: Vec<(&str, RunResult)>, expected: &str| {
        let files: Vec<(String, RunResult)> = files.into_iter().map(|(n, r)| (n.to_owned(), r)).collect();
        let err = prodready_loadtest::merge(&files).unwrap_err().to_string();
        assert!(err.contains(expected), "{err}");
    };
    check(
        vec![("1.json", result(&a, "1/2")), ("2.json", result(&b, "2/2"))],
        "2.json comes from another scenario file than 1.json",
    );
    check(vec![("1.json", result(&a, "1/3")), ("3.json", result(&a, "3/3"))], "segments 2/3 are missing");
    check(
        vec![("1.json", result(&a, "1/2")), ("x.json", result(&a, "1/2"))],
        "x.json and 1.json are both segment 1/2",
    );
    check(
        vec![("1.json", result(&a, "1/2")), ("2.json", result(&a, "2/3"))],
        "every segment of one run has the same N",
    );
    check(vec![], "no result to merge");
    let err = RunResult::from_json("k6.json", r#"{"metrics": {}}"#).unwrap_err().to_string();
    assert!(err.contains("k6.json: not a load result"), "{err}");
    // A segment that owns iterations but no VU cannot run them.
    assert_eq!("3/3".parse::<Segment>().unwrap().check(&b), Ok(()));
    let four = "4/4".parse::<Segment>().unwrap();
    let err = four.check(&b).unwrap_err();
    assert!(err.contains("segment 4/4 of scenario `s` gets none of its 3 VU(s) (vus)"), "{err}");
}

/// A windowed threshold cannot be judged across segments: each segment sees only its share of every window
/// and a merge gets the segments' verdicts, not the windows' samples. A run cut into N > 1 segments refuses
/// one, naming it (a whole run keeps it), and so does a merge of segment results that carry one.
#[test]
fn windowed_thresholds_are_refused_across_segments() {
    let windowed = plan(
        r#"
[scenarios.s]
executor = "shared-iterations"
vus = 3
iterations = 3
[[scenarios.s.requests]]
url = "http://127.0.0.1:9/"

[thresholds]
http_req_duration = ["p(95)<300"]
http_reqs = ["count>0", { threshold = "count>=30", window = "10s" }]
"#,
    );
    let refusal = "the threshold `http_reqs count>=30 over 10s` has a window, which a run cut into 2 segments \
                   cannot judge: each segment sees only 1/2 of every window's samples";
    assert_eq!(Segment::WHOLE.check(&windowed), Ok(()));
    for segment in ["1/2", "2/2"] {
        let err = segment.parse::<Segment>().unwrap().check(&windowed).unwrap_err();
        assert!(err.starts_with(refusal), "{segment}: {err}");
    }
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    // Nothing listens on port 9: every request fails at once, which is all a result needs here.
    let result = |s: &str| rt.block_on(run(&windowed, s.parse().unwrap())).result;
    let files = vec![("1.json".to_owned(), result("1/2")), ("2.json".to_owned(), result("2/2"))];
    let err = prodready_loadtest::merge(&files).unwrap_err().to_string();
    assert!(err.starts_with(&format!("1.json: {refusal}")), "{err}");
    // A whole run's result still merges alone, its window verdicts its own.
    let whole = vec![("whole.json".to_owned(), result("1/1"))];
    assert!(prodready_loadtest::merge(&whole).is_ok());
}

/// A data file read in order: the segments of one run read different rows (segment I of N rows I-1,
/// I-1+N, ...), so 6 iterations over 2 segments use each of the 6 rows once, as one whole run would.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn segments_read_different_rows_of_a_data_file() {
    let server = Server::start().await;
    let base = &server.base;
    let text = format!(
        r#"
[data.users]
file = "users.csv"

[scenarios.s]
executor = "shared-iterations"
vus = 2
iterations = 6
[[scenarios.s.requests]]
url = "{base}/echo?user={{{{ users.name }}}}"
"#
    );
    let mut read = |path: &Path| {
        assert!(path.ends_with("users.csv"), "{}", path.display());
        Ok("name\nu0\nu1\nu2\nu3\nu4\nu5\n".to_owned())
    };
    let plan =
        prodready_loadtest::parse(Path::new("/t/load.toml"), &text, &mut read).expect("the scenario parses");
    for i in 1..=2 {
        run(&plan, Segment::new(i, 2).unwrap()).await;
    }
    let mut users = server.stats.queries.lock().unwrap().clone();
    users.sort();
    assert_eq!(users, ["user=u0", "user=u1", "user=u2", "user=u3", "user=u4", "user=u5"]);
}
