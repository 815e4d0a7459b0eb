//! Runs against a real local server: every executor's counts, the open model under a stall, thresholds,
//! checks, templates and data.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use prodready_loadtest::{Progress, Report, RunOptions, Summary};
use tokio::time::Instant;

use crate::server::Server;

pub(crate) async fn load(text: &str) -> Report {
    load_with(text, &[]).await
}

async fn load_with(text: &str, files: &[(&str, &str)]) -> Report {
    load_options(text, files, RunOptions::default()).await
}

async fn load_options(text: &str, files: &[(&str, &str)], options: RunOptions) -> Report {
    let mut read = |p: &Path| {
        files
            .iter()
            .find(|(name, _)| Path::new("/t").join(name) == p)
            .map(|(_, t)| (*t).to_owned())
            .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::NotFound))
    };
    let plan =
        prodready_loadtest::parse(Path::new("/t/load.toml"), text, &mut read).expect("the scenario parses");
    prodready_loadtest::run(Arc::new(plan), options).await
}

pub(crate) fn count(s: &Summary, metric: &str) -> u64 {
    let v = s.value(metric, "count").unwrap_or(0.0);
    assert!(v.fract() == 0.0 && v >= 0.0);
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let v = v as u64;
    v
}

fn ms(s: &Summary, metric: &str, stat: &str) -> f64 {
    s.value(metric, stat).unwrap_or_else(|| panic!("{metric} has no {stat}: {:#?}", s.metrics.get(metric)))
}

/// The iteration executors run exactly their iterations; the one with `startTime = "200ms"` sends
/// nothing before then (timed at the server: a lower bound).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn iteration_executors_run_exact_counts() {
    let server = Server::start().await;
    let base = &server.base;
    let started = Instant::now();
    let report = load(&format!(
        r#"
[scenarios.shared]
executor = "shared-iterations"
vus = 3
iterations = 20
[[scenarios.shared.requests]]
url = "{base}/mark/shared"

[scenarios.each]
executor = "per-vu-iterations"
vus = 3
iterations = 4
startTime = "200ms"
[[scenarios.each.requests]]
url = "{base}/mark/each"
[[scenarios.each.requests]]
method = "POST"
url = "{base}/echo"
body = "hello"

[thresholds]
"http_reqs{{scenario:shared}}" = ["count==20"]
"http_reqs{{scenario:each}}" = ["count==24"]
"iterations{{scenario:each}}" = ["count==12"]
"#
    ))
    .await;
    let (shared, each) = (server.arrivals("shared"), server.arrivals("each"));
    assert_eq!((shared.len(), each.len()), (20, 12));
    let each_first = first(&each, started);
    assert!(
        each_first >= Duration::from_millis(200),
        "the delayed scenario's first came after {each_first:?}"
    );
    let s = &report.summary;
    assert_eq!(count(s, "http_reqs"), 20 + 12 * 2);
    assert_eq!(count(s, "iterations"), 32);
    assert_eq!(server.requests(), 44);
    assert!(report.thresholds_ok(), "{:?}", s.failed_thresholds());
    assert_eq!(s.value("http_req_failed", "rate"), Some(0.0));
    assert_eq!(s.value("vus_max", "value"), Some(6.0));
    // The busiest moment had between one and all six VUs active, even in a run shorter than a second.
    let peak = s.value("vus", "max").unwrap();
    assert!((1.0..=6.0).contains(&peak), "{peak}");
    // k6's phases add up to the time from the send: sending, waiting, receiving.
    let phases: f64 =
        ["http_req_sending", "http_req_waiting", "http_req_receiving"].iter().map(|m| ms(s, m, "avg")).sum();
    let service = ms(s, "http_req_service_duration", "avg");
    assert!((phases - service).abs() <= service * 0.05 + 0.01, "{phases} vs {service}");
    // Bytes are counted on the socket: at least the bodies went both ways.
    assert!(count(s, "data_sent") > 44 * 40, "{}", count(s, "data_sent"));
    assert!(count(s, "data_received") > 32 * 40, "{}", count(s, "data_received"));
    // Each VU keeps its connection: one connect per VU and host at most.
    let connects = s.value("http_req_connecting", "max").unwrap();
    assert!(connects > 0.0);
}

/// The duration executors run until their end, counted and timed at the server (every time bound is a
/// lower one: an executor may be late on a loaded machine, never early): constant-vus keeps sending
/// into the second half of its 700 ms and the run lasts at least that long; ramping-vus from zero VUs
/// sends nothing before its line reaches one VU (a third of the 400 ms stage up to three).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duration_executors_run_until_their_end() {
    let server = Server::start().await;
    let base = &server.base;
    let started = Instant::now();
    let report = load(&format!(
        r#"
[scenarios.steady]
executor = "constant-vus"
vus = 2
duration = "700ms"
think_time = "10ms"
[[scenarios.steady.requests]]
url = "{base}/mark/steady"

[scenarios.ramp]
executor = "ramping-vus"
startVUs = 0
stages = [{{ duration = "400ms", target = 3 }}, {{ duration = "300ms", target = 0 }}]
[[scenarios.ramp.requests]]
url = "{base}/mark/ramp"
think_time = "10ms"
"#
    ))
    .await;
    let took = started.elapsed();
    let (steady, ramp) = (server.arrivals("steady"), server.arrivals("ramp"));
    assert!(steady.len() >= 2 && !ramp.is_empty(), "steady {}, ramp {}", steady.len(), ramp.len());
    assert!(took >= Duration::from_millis(700), "the run took {took:?}");
    assert!(at_or_after(&steady, started, 350) >= 1, "constant-vus stopped sending before 350 ms");
    let ramp_first = first(&ramp, started);
    assert!(ramp_first >= Duration::from_millis(130), "the ramp's first request after {ramp_first:?}");
    let s = &report.summary;
    assert!(s.state.test_run_duration_ms >= 700.0, "{}", s.state.test_run_duration_ms);
    let requests = count(s, "http_reqs");
    assert!(requests > 4, "{requests}");
    assert_eq!(count(s, "iterations"), requests);
    assert_eq!(server.requests(), requests);
    assert_eq!(s.value("vus_max", "value"), Some(5.0));
    // Every iteration sleeps 10 ms: no iteration is shorter.
    assert!(ms(s, "iteration_duration", "min") >= 10.0);
}

/// Every scheduled iteration of both arrival-rate executors starts, counted and timed at the server. No
/// iteration starts before it is due, so from each quarter of the second on at least the iterations due
/// from then on arrive: constant-arrival-rate's 50 are due every 20 ms (37, 25 and 12 of them from 250,
/// 500 and 750 ms on); ramping-arrival-rate's, from 0 to 100/s, bunch up at the end (its first is due at
/// 141 ms, 38 from 500 ms on, 22 from 750 ms on, the last at 1 s).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arrival_rate_executors_start_every_scheduled_iteration() {
    let server = Server::start().await;
    let base = &server.base;
    let plan = format!(
        r#"
[scenarios.constant]
executor = "constant-arrival-rate"
rate = 50
timeUnit = "1s"
duration = "1s"
preAllocatedVUs = 2
maxVUs = 20
[[scenarios.constant.requests]]
url = "{base}/mark/constant"

[scenarios.ramping]
executor = "ramping-arrival-rate"
startRate = 0
timeUnit = "1s"
preAllocatedVUs = 2
maxVUs = 20
stages = [{{ duration = "1s", target = 100 }}]
[[scenarios.ramping.requests]]
url = "{base}/mark/ramping"

[thresholds]
"iterations{{scenario:constant}}" = ["count==50"]
"iterations{{scenario:ramping}}" = ["count==50"]
"#
    );
    let started = Instant::now();
    let report = load(&plan).await;
    let took = started.elapsed();
    let s = &report.summary;
    // 50 per second for 1 s; 0 to 100 per second over 1 s is 50 more. A healthy server drops none.
    assert_eq!(count(s, "dropped_iterations"), 0);
    assert_eq!(count(s, "http_reqs"), 100);
    assert!(report.thresholds_ok(), "{:?}", s.failed_thresholds());
    assert_eq!(server.requests(), 100);
    let (constant, ramping) = (server.arrivals("constant"), server.arrivals("ramping"));
    assert_eq!((constant.len(), ramping.len()), (50, 50));
    let from = |arrivals: &[Instant]| [250, 500, 750].map(|ms| at_or_after(arrivals, started, ms));
    let constant_from = from(constant.as_slice());
    assert!(
        constant_from[0] >= 35 && constant_from[1] >= 23 && constant_from[2] >= 10,
        "arrivals from 250, 500, 750 ms on: {constant_from:?}"
    );
    let ramping_from = from(ramping.as_slice());
    assert!(
        ramping_from[1] >= 35 && ramping_from[2] >= 20,
        "arrivals from 250, 500, 750 ms on: {ramping_from:?}"
    );
    let ramping_first = first(&ramping, started);
    assert!(ramping_first >= Duration::from_millis(130), "the ramp's first arrival after {ramping_first:?}");
    assert!(took >= Duration::from_millis(980), "the run took {took:?}");
}

/// How many of `arrivals` came at least `ms` milliseconds after `started`.
fn at_or_after(arrivals: &[Instant], started: Instant, ms: u64) -> usize {
    arrivals.iter().filter(|at| at.saturating_duration_since(started) >= Duration::from_millis(ms)).count()
}

/// How long after `started` the earliest of `arrivals` came.
fn first(arrivals: &[Instant], started: Instant) -> Duration {
    arrivals.first().expect("at least one arrival").saturating_duration_since(started)
}

/// 200 arrivals over 2 s with a single VU to serve them: a stall leaves no spare VU.
fn one_vu_at_100_per_second(base: &str) -> String {
    format!(
        r#"
[scenarios.open]
executor = "constant-arrival-rate"
rate = 100
duration = "2s"
preAllocatedVUs = 1
maxVUs = 1
[[scenarios.open.requests]]
url = "{base}/items"
"#
    )
}

/// The whole server pauses for one second at the 50th request of a 100/s open-model run with one VU: the
/// iterations due during the pause start late and their latency, counted from their intended start, shows
/// the pause at p99; the time from the actual send shows it only for the one request caught in it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stall_shows_in_corrected_latency() {
    let server = Server::with_stall(50).await;
    let base = &server.base;
    let report = load(&one_vu_at_100_per_second(base)).await;
    let s = &report.summary;
    assert_eq!(count(s, "http_reqs") + count(s, "dropped_iterations"), 200);
    let corrected = ms(s, "http_req_duration", "p(95)");
    assert!(corrected > 850.0, "corrected p95 {corrected} ms");
    assert!(ms(s, "http_req_duration", "max") >= 990.0);
    assert!(ms(s, "http_req_service_duration", "max") >= 990.0);
    let service = ms(s, "http_req_service_duration", "p(95)");
    assert!(service < 500.0, "service p95 {service} ms");
}

/// The pause comes near the end: the one VU is stuck past the scenario's end, so the iterations due
/// meanwhile never start and are dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stall_at_the_end_drops_iterations_when_vus_run_out() {
    let server = Server::with_stall(150).await;
    let base = &server.base;
    let report = load(&one_vu_at_100_per_second(base)).await;
    let s = &report.summary;
    let (done, dropped) = (count(s, "http_reqs"), count(s, "dropped_iterations"));
    assert_eq!(done + dropped, 200);
    assert!(dropped >= 25, "dropped {dropped}, done {done}");
    assert_eq!(server.requests(), done);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thresholds_fail_and_abort_on_fail_stops_early() {
    let server = Server::start().await;
    let base = &server.base;
    let report = load(&format!(
        r#"
[scenarios.errors]
executor = "constant-vus"
vus = 1
duration = "60s"
[[scenarios.errors.requests]]
url = "{base}/status/500"
think_time = "5ms"

[thresholds]
http_req_failed = [{{ threshold = "rate<0.01", abortOnFail = true, delayAbortEval = "1s" }}]
http_req_duration = ["p(95)<60000"]
"http_req_duration{{status:500}}" = ["max>=0"]
"http_req_duration{{status:200}}" = ["avg<1"]
"#
    ))
    .await;
    let s = &report.summary;
    assert_eq!(report.aborted_by.as_deref(), Some("http_req_failed rate<0.01"));
    assert!(s.state.test_run_duration_ms < 30_000.0, "{}", s.state.test_run_duration_ms);
    assert!(!report.thresholds_ok());
    assert_eq!(s.failed_thresholds(), ["http_req_failed rate<0.01"]);
    assert_eq!(s.value("http_req_failed", "rate"), Some(1.0));
    // A sub-metric with no sample reports zeros, as in k6.
    assert_eq!(s.value("http_req_duration{status:200}", "avg"), Some(0.0));
}

/// `count` is a trend statistic, as in k6's `summaryTrendStats` (the list its documentation shows).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn summary_trend_stats_take_count() {
    let server = Server::start().await;
    let base = &server.base;
    let report = load(&format!(
        r#"
[options]
summaryTrendStats = ["avg", "min", "med", "max", "p(95)", "p(99)", "p(99.99)", "count"]

[scenarios.s]
executor = "shared-iterations"
vus = 1
iterations = 3
[[scenarios.s.requests]]
url = "{base}/items"
"#
    ))
    .await;
    assert_eq!(report.summary.value("http_req_duration", "count"), Some(3.0));
    assert_eq!(report.summary.value("iteration_duration", "count"), Some(3.0));
}

/// An abortOnFail threshold on a metric with no sample yet is not judged (k6 skips empty sinks during
/// the run): a scenario that starts at 2 s is not aborted at 1 s for a check rate of "0%".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abort_on_fail_waits_for_a_sample() {
    let server = Server::start().await;
    let base = &server.base;
    let report = load(&format!(
        r#"
[scenarios.late]
executor = "shared-iterations"
startTime = "2s"
vus = 1
iterations = 3
[[scenarios.late.requests]]
url = "{base}/items"
checks = {{ status = 200 }}

[thresholds]
checks = [{{ threshold = "rate>0.95", abortOnFail = true }}]
http_req_duration = [{{ threshold = "p(95)<60000", abortOnFail = true }}]
"#
    ))
    .await;
    assert_eq!(report.aborted_by, None);
    assert!(report.thresholds_ok(), "{:?}", report.summary.failed_thresholds());
    assert_eq!(count(&report.summary, "http_reqs"), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checks_templates_and_data() {
    let server = Server::start().await;
    let base = &server.base;
    let report = load_with(
        &format!(
            r#"
[data.users]
file = "users.csv"

[vars]
kind = "reader"

[scenarios.s]
executor = "shared-iterations"
vus = 1
iterations = 4
[[scenarios.s.requests]]
url = "{base}/echo?user={{{{ users.name }}}}&kind={{{{ kind }}}}&vu={{{{ __VU }}}}&i={{{{ __ITER }}}}"
[[scenarios.s.requests]]
url = "{base}/items"
tags = {{ name = "items" }}
checks = {{ status = [200, 201], body_contains = "first", json_path = "items[1].id", json_equals = 2, header = {{ content-type = "json" }}, max_duration = "30s" }}
[[scenarios.s.requests]]
url = "{base}/status/404"
tags = {{ name = "missing" }}
checks = {{ status = 200, body_contains = "status 404" }}

[thresholds]
checks = ["rate>0.5"]
"checks{{check:missing: status is 200}}" = ["rate==0"]
"http_req_failed{{name:missing}}" = ["rate==1"]
"#
        ),
        &[("users.csv", "name,id\nada,1\nbob,2\n\"c,y\",3\n")],
    )
    .await;
    let s = &report.summary;
    assert_eq!(
        *server.stats.queries.lock().unwrap(),
        [
            "user=ada&kind=reader&vu=1&i=0",
            "user=bob&kind=reader&vu=1&i=1",
            "user=c,y&kind=reader&vu=1&i=2",
            "user=ada&kind=reader&vu=1&i=3"
        ]
    );
    let checks: Vec<String> =
        s.root_group.checks.iter().map(|c| format!("{} +{} -{}", c.name, c.passes, c.fails)).collect();
    expect_test::expect![[r#"
        [
            "items: status in [200, 201] +4 -0",
            "items: body contains \"first\" +4 -0",
            "items: json items[1].id == 2 +4 -0",
            "items: header content-type contains \"json\" +4 -0",
            "items: duration <= 30s +4 -0",
            "missing: status is 200 +0 -4",
            "missing: body contains \"status 404\" +4 -0",
        ]
    "#]]
    .assert_debug_eq(&checks);
    assert!(report.thresholds_ok(), "{:?}", s.failed_thresholds());
    assert_eq!(s.value("checks", "passes"), Some(24.0));
    assert_eq!(s.value("checks", "fails"), Some(4.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_port_fails_requests_without_failing_the_run() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let report = load(&format!(
        r#"
[scenarios.s]
executor = "shared-iterations"
iterations = 3
[[scenarios.s.requests]]
url = "http://{closed}/"
checks = {{ status = 200 }}
"#
    ))
    .await;
    let s = &report.summary;
    assert_eq!(count(s, "http_reqs"), 3);
    assert_eq!(s.value("http_req_failed", "rate"), Some(1.0));
    assert_eq!(s.value("checks", "rate"), Some(0.0));
    assert!(report.thresholds_ok());
}

/// Beyond k6: a threshold over a sliding window. The server pauses for a second in the middle of a 6 s
/// open-model run with one VU; the hundred iterations due meanwhile start late and finish together right
/// after it. Over the whole run they are a sixth of the samples, so the whole run's p(75) stays small;
/// some 2 s window holds all of them and at most 100 timely ones, so its p(75) is far above 100 ms.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stall_fails_a_windowed_threshold_that_the_whole_run_passes() {
    let server = Server::with_stall(300).await;
    let base = &server.base;
    let report = load(&format!(
        r#"
[scenarios.open]
executor = "constant-arrival-rate"
rate = 100
duration = "6s"
preAllocatedVUs = 1
maxVUs = 1
[[scenarios.open.requests]]
url = "{base}/items"

[thresholds]
http_req_duration = ["p(75)<100", {{ threshold = "p(75)<100", window = "2s" }}]
http_reqs = [{{ threshold = "count>0", window = "2s" }}]
http_req_failed = [{{ threshold = "rate<0.01", window = "1s" }}]
"#
    ))
    .await;
    let s = &report.summary;
    assert!(ms(s, "http_req_duration", "max") >= 990.0, "the stall did not happen");
    assert!(ms(s, "http_req_duration", "med") < 100.0);
    assert_eq!(s.failed_thresholds(), ["http_req_duration p(75)<100 over 2s"]);
    assert!(report.aborted_by.is_none());
    // The verdicts travel in the result file: a merge of this one run says the same.
    let merged = prodready_loadtest::merge(&[("whole.json".to_owned(), report.result.clone())]).unwrap();
    assert_eq!(merged.summary.failed_thresholds(), ["http_req_duration p(75)<100 over 2s"]);
    let export = s.to_export_json();
    assert_eq!(export["metrics"]["http_req_duration"]["thresholds"]["p(75)<100 over 2s"], true);
    assert_eq!(export["metrics"]["http_req_duration"]["thresholds"]["p(75)<100"], false);
}

/// A windowed threshold with abortOnFail stops the run at the first window that fails it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_windowed_abort_on_fail_stops_the_run() {
    let server = Server::start().await;
    let base = &server.base;
    let report = load(&format!(
        r#"
[scenarios.errors]
executor = "constant-vus"
vus = 1
duration = "60s"
[[scenarios.errors.requests]]
url = "{base}/status/500"
think_time = "5ms"

[thresholds]
http_req_failed = [{{ threshold = "rate<0.5", window = "1s", abortOnFail = true }}]
"#
    ))
    .await;
    let s = &report.summary;
    assert_eq!(report.aborted_by.as_deref(), Some("http_req_failed rate<0.5 over 1s"));
    assert!(s.state.test_run_duration_ms < 30_000.0, "{}", s.state.test_run_duration_ms);
    assert_eq!(s.failed_thresholds(), ["http_req_failed rate<0.5 over 1s"]);
}

/// k6's gracefulRampDown: a VU the ramp no longer wants gets that long to finish its iteration, then it
/// is interrupted and the iteration is not counted. Here the only VU's one request takes 3 s, the ramp
/// lets it go at 0.5 s and grants 200 ms, far within the 5 s gracefulStop that would let it finish.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_ramp_down_interrupts_an_iteration_the_ramp_no_longer_wants() {
    let server = Server::start().await;
    let report = load(&format!(
        r#"
[scenarios.r]
executor = "ramping-vus"
startVUs = 1
stages = [{{ duration = "500ms", target = 1 }}, {{ duration = "100ms", target = 0 }}]
gracefulRampDown = "200ms"
gracefulStop = "5s"
[[scenarios.r.requests]]
url = "{}/slow/3000"
"#,
        server.base
    ))
    .await;
    let s = &report.summary;
    assert_eq!(server.requests(), 1, "the VU sent its request");
    assert_eq!(
        (count(s, "http_reqs"), count(s, "iterations")),
        (0, 0),
        "interrupted, so not counted: {s:#?}"
    );
}

/// A request's own `timeout` (k6's request parameter) fails it after that long.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_timeout_fails_a_slow_request() {
    let server = Server::start().await;
    let report = load(&format!(
        r#"
[scenarios.s]
executor = "shared-iterations"
iterations = 2
[[scenarios.s.requests]]
url = "{base}/slow/2000"
timeout = "100ms"
[[scenarios.s.requests]]
url = "{base}/items"
checks = {{ status = 200 }}
"#,
        base = server.base
    ))
    .await;
    let s = &report.summary;
    assert_eq!(count(s, "http_reqs"), 4);
    assert_eq!(s.value("http_req_failed", "rate"), Some(0.5), "the two slow requests failed: {s:#?}");
    assert_eq!(s.value("checks", "rate"), Some(1.0));
}

/// The threshold that aborted a run failed, whatever the end of the run shows: `vus value<1` stops a
/// two-VU run at its first look; a slow live view holds the run's loop until the stopped VUs are gone, so
/// the run ends with no VU and, judged again then, the threshold would hold. The summary, the verdict and
/// a merge of the run's result all keep it failed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_threshold_that_aborted_a_run_stays_failed() {
    let server = Server::start().await;
    let slow_view = RunOptions {
        progress: Some(Box::new(|_: &Progress| std::thread::sleep(Duration::from_millis(300)))),
        ..RunOptions::default()
    };
    let report = load_options(
        &format!(
            r#"
[scenarios.busy]
executor = "constant-vus"
vus = 2
duration = "60s"
[[scenarios.busy.requests]]
url = "{}/slow/100"

[thresholds]
vus = [{{ threshold = "value<1", abortOnFail = true }}]
http_req_failed = ["rate<0.01"]
"#,
            server.base
        ),
        &[],
        slow_view,
    )
    .await;
    let s = &report.summary;
    assert_eq!(report.aborted_by.as_deref(), Some("vus value<1"));
    assert!(s.state.test_run_duration_ms < 30_000.0, "{}", s.state.test_run_duration_ms);
    assert_eq!(s.value("vus", "value"), Some(0.0), "the run ended with its VUs gone");
    assert_eq!(s.failed_thresholds(), ["vus value<1"]);
    assert!(!report.thresholds_ok());
    let merged = prodready_loadtest::merge(&[("whole.json".to_owned(), report.result.clone())]).unwrap();
    assert_eq!(merged.aborted_by.as_deref(), Some("vus value<1"));
    assert_eq!(merged.summary.failed_thresholds(), ["vus value<1"]);
    assert!(!merged.thresholds_ok());
}

/// A request that fails to connect is timed from its own send, not from its iteration's start: the first
/// request of each iteration succeeds and is followed by 500 ms of think time, the second goes to a closed
/// loopback port and fails at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_connect_is_timed_from_its_own_send() {
    let server = Server::start().await;
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let report = load(&format!(
        r#"
[scenarios.s]
executor = "shared-iterations"
iterations = 2
[[scenarios.s.requests]]
url = "{base}/items"
tags = {{ name = "up" }}
think_time = "500ms"
[[scenarios.s.requests]]
url = "http://{closed}/"
tags = {{ name = "down" }}

[thresholds]
"http_req_duration{{name:down}}" = ["max<100"]
"http_req_service_duration{{name:down}}" = ["max<100"]
"http_req_failed{{name:down}}" = ["rate==1"]
"#,
        base = server.base
    ))
    .await;
    let s = &report.summary;
    assert_eq!(count(s, "http_reqs"), 4);
    assert!(ms(s, "iteration_duration", "min") >= 500.0, "the think time happened");
    let down = ms(s, "http_req_duration{name:down}", "max");
    assert!(down < 100.0, "the failed request took {down} ms: it counted the first request and think time");
    assert!(report.thresholds_ok(), "{:?}", s.failed_thresholds());
}
