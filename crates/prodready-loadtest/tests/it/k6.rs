//! `export_k6`: a scenario file as a k6 script (the script itself is run by the real k6 in the
//! binary's tests; here its text is pinned).

use std::path::Path;

fn export(text: &str, files: &[(&str, &str)]) -> String {
    let mut read = |p: &Path| {
        files
            .iter()
            .find(|(name, _)| Path::new("/t").join(name) == p)
            .map(|(_, t)| (*t).to_owned())
            .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::NotFound))
    };
    let plan =
        prodready_loadtest::parse(Path::new("/t/load.toml"), text, &mut read).expect("the scenario parses");
    prodready_loadtest::export_k6(&plan, "load.toml")
}

#[test]
fn every_executor_request_and_check_is_written_as_k6_reads_it() {
    let script = export(
        r#"
[scenarios.browse]
executor = "ramping-arrival-rate"
startRate = 10
timeUnit = "500ms"
stages = [{ duration = "30s", target = 100 }, { duration = "1m30s", target = 0 }]
preAllocatedVUs = 5
maxVUs = 50
tags = { team = "web" }
think_time = "1s..2s"

[[scenarios.browse.requests]]
url = "http://127.0.0.1:8080/items?page={{ page }}&user={{ users.name }}&vu={{ __VU }}"
headers = { Accept = "application/json", X-Color = "{{ color }}" }
tags = { name = "items" }
checks = { status = [200, 204], body_contains = "it's \"here\"", json_path = "$.items[0].id", json_equals = 1, header = { content-type = "json" }, max_duration = "250ms" }
think_time = "100ms"

[scenarios.ramp-up]
executor = "ramping-vus"
startVUs = 0
stages = [{ duration = "10s", target = 3 }]
startTime = "5s"
gracefulStop = "1s"

[[scenarios.ramp-up.requests]]
method = "post"
url = "http://127.0.0.1:8080/echo"
body = "iter={{ __ITER }} in {{ __SCENARIO }} as {{ env }}"

[scenarios.steady]
executor = "constant-vus"
vus = 2
duration = "1500ms"
[[scenarios.steady.requests]]
url = "http://127.0.0.1:8080/"

[scenarios.fixed]
executor = "constant-arrival-rate"
rate = 3
duration = "1s"
preAllocatedVUs = 1
[[scenarios.fixed.requests]]
url = "http://127.0.0.1:8080/"

[scenarios.each]
executor = "per-vu-iterations"
[[scenarios.each.requests]]
url = "http://127.0.0.1:8080/"

[scenarios.shared]
executor = "shared-iterations"
vus = 2
iterations = 4
maxDuration = "20s"
[[scenarios.shared.requests]]
url = "http://127.0.0.1:8080/"

[vars]
page = { random_int = [1, 10] }
color = { one_of = ["red", "blue"] }
env = "staging"

[data.users]
file = "users.csv"
pick = "random"

[options]
summaryTrendStats = ["avg", "p(99)"]

[thresholds]
http_req_duration = ["p(95)<300", { threshold = "p(99)<1000", abortOnFail = true, delayAbortEval = "5s" }]
http_req_service_duration = ["p(99)<500"]
"http_req_duration{name:items}" = ["avg<100"]
checks = ["rate>0.99"]
"#,
        &[("users.csv", "name\nada\n")],
    );
    expect_test::expect_file!["k6_export.js"].assert_eq(&script);
}
