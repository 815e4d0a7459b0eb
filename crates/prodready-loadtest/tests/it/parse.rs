//! Scenario files: what parses, and one error naming file, line and key for what does not.

use std::path::Path;

use prodready_loadtest::{Executor, Plan, ScenarioError};

const GOOD: &str = r#"
[scenarios.browse]
executor = "constant-arrival-rate"
rate = 200
timeUnit = "1s"
duration = "10s"
preAllocatedVUs = 20
maxVUs = 100

[[scenarios.browse.requests]]
method = "GET"
url = "http://127.0.0.1:8080/api/items?page={{ page }}"
tags = { name = "items" }
checks = { status = 200, body_contains = "items" }

[vars]
page = { random_int = [1, 10] }

[thresholds]
http_req_duration = ["p(95)<300", { threshold = "p(99)<1000", abortOnFail = true }]
"http_req_duration{name:items}" = ["avg<100"]
http_req_failed = ["rate<0.01"]
"#;

fn parse(text: &str) -> Result<Plan, ScenarioError> {
    parse_with(text, &[])
}

fn parse_with(text: &str, files: &[(&str, &str)]) -> Result<Plan, ScenarioError> {
    let mut read = |p: &Path| {
        files
            .iter()
            .find(|(name, _)| Path::new("/scenarios").join(name) == p)
            .map(|(_, text)| (*text).to_owned())
            .ok_or_else(|| {
                std::io::Error::new(std::io::ErrorKind::NotFound, "No such file or directory (os error 2)")
            })
    };
    prodready_loadtest::parse(Path::new("/scenarios/load.toml"), text, &mut read)
}

fn scenario(body: &str) -> String {
    format!("[scenarios.s]\n{body}\n[[scenarios.s.requests]]\nurl = \"http://127.0.0.1:1/\"\n")
}

#[test]
fn the_product_example_parses() {
    let plan = parse(GOOD).unwrap();
    assert_eq!(plan.scenarios.len(), 1);
    let s = &plan.scenarios[0];
    assert_eq!(
        s.executor,
        Executor::ConstantArrivalRate {
            rate: 200,
            time_unit: std::time::Duration::from_secs(1),
            duration: std::time::Duration::from_secs(10),
            pre_allocated_vus: 20,
            max_vus: 100
        }
    );
    assert_eq!(s.requests[0].name, "items");
    assert_eq!(s.requests[0].checks.len(), 2);
    let thresholds: Vec<String> = plan
        .thresholds
        .iter()
        .flat_map(|(sel, ts)| {
            ts.iter().map(move |t| format!("{sel} {} abort={}", t.expr.source, t.abort_on_fail))
        })
        .collect();
    assert_eq!(
        thresholds,
        [
            "http_req_duration p(95)<300 abort=false",
            "http_req_duration p(99)<1000 abort=true",
            "http_req_duration{name:items} avg<100 abort=false",
            "http_req_failed rate<0.01 abort=false",
        ]
    );
    assert_eq!(plan.max_duration(), std::time::Duration::from_secs(40));
}

#[test]
fn every_executor_with_k6_names() {
    let text = r#"
[scenarios.a]
executor = "constant-vus"
vus = 3
duration = "1m30s"
[[scenarios.a.requests]]
url = "http://127.0.0.1:1/"

[scenarios.b]
executor = "ramping-vus"
startVUs = 0
stages = [{ duration = "10s", target = 5 }, { duration = "5s", target = 0 }]
gracefulRampDown = "0s"
startTime = "5s"
gracefulStop = "1s"
[[scenarios.b.requests]]
url = "http://127.0.0.1:1/"

[scenarios.c]
executor = "shared-iterations"
vus = 2
iterations = 10
maxDuration = "30s"
[[scenarios.c.requests]]
url = "http://127.0.0.1:1/"

[scenarios.d]
executor = "per-vu-iterations"
[[scenarios.d.requests]]
url = "http://127.0.0.1:1/"

[scenarios.e]
executor = "ramping-arrival-rate"
startRate = 10
timeUnit = "1m"
preAllocatedVUs = 2
stages = [{ duration = "1m", target = 60 }]
[[scenarios.e.requests]]
url = "http://127.0.0.1:1/"
"#;
    let plan = parse(text).unwrap();
    let got: Vec<String> = plan
        .scenarios
        .iter()
        .map(|s| format!("{} {:?} start={:?} stop={:?}", s.name, s.executor, s.start_time, s.graceful_stop))
        .collect();
    expect_test::expect![[r#"
        [
            "a ConstantVus { vus: 3, duration: 90s } start=0ns stop=30s",
            "b RampingVus { start_vus: 0, stages: [Stage { duration: 10s, target: 5 }, Stage { duration: 5s, target: 0 }], graceful_ramp_down: 0ns } start=5s stop=1s",
            "c SharedIterations { vus: 2, iterations: 10, max_duration: 30s } start=0ns stop=30s",
            "d PerVuIterations { vus: 1, iterations: 1, max_duration: 600s } start=0ns stop=30s",
            "e RampingArrivalRate { start_rate: 10, time_unit: 60s, stages: [Stage { duration: 60s, target: 60 }], pre_allocated_vus: 2, max_vus: 2 } start=0ns stop=30s",
        ]
    "#]]
    .assert_debug_eq(&got);
}

#[test]
fn errors_name_file_line_and_key() {
    let errors: Vec<String> = [
        // Syntax.
        "[scenarios.s\nexecutor = 1".to_owned(),
        "[scenarios.s]\nexecutor = \"constant-vus\"\nduration = 30s".to_owned(),
        // Unknown executor.
        scenario("executor = \"constant-vu\""),
        // A bad threshold expression, a bad metric, an aggregation of the wrong type.
        format!("{}\n[thresholds]\nhttp_req_duration = [\"p(95)<300\", \"p95<300\"]", scenario("executor = \"shared-iterations\"")),
        format!("{}\n[thresholds]\nhttp_req_duraton = [\"p(95)<300\"]", scenario("executor = \"shared-iterations\"")),
        format!("{}\n[thresholds]\n\"http_req_failed{{status:500}}\" = [\"p(95)<300\"]", scenario("executor = \"shared-iterations\"")),
        format!("{}\n[thresholds]\nchecks = [{{ threshold = \"rate>0.9\", abortOnFail = true, delayAbortEval = \"soon\" }}]", scenario("executor = \"shared-iterations\"")),
        format!("{}\n[thresholds]\nchecks = [3]", scenario("executor = \"shared-iterations\"")),
        // A window that is not whole seconds; a window on a gauge.
        format!("{}\n[thresholds]\nchecks = [{{ threshold = \"rate>0.9\", window = \"1500ms\" }}]", scenario("executor = \"shared-iterations\"")),
        format!("{}\n[thresholds]\nvus = [{{ threshold = \"value<10\", window = \"10s\" }}]", scenario("executor = \"shared-iterations\"")),
        // Options an executor does not take, missing ones, bad values.
        scenario("executor = \"shared-iterations\"\nduration = \"10s\""),
        scenario("executor = \"constant-vus\"\nvus = 2"),
        scenario("executor = \"constant-vus\"\nvus = 0\nduration = \"1s\""),
        scenario("executor = \"constant-vus\"\nduration = \"ten seconds\""),
        scenario("executor = \"constant-vus\"\nduration = \"300000000000y\""),
        scenario("executor = \"constant-arrival-rate\"\nrate = 10\nduration = \"1s\""),
        scenario("executor = \"constant-arrival-rate\"\nrate = 10\nduration = \"1s\"\npreAllocatedVUs = 5\nmaxVUs = 2"),
        scenario("executor = \"ramping-vus\"\nstages = []"),
        scenario("executor = \"ramping-arrival-rate\"\npreAllocatedVUs = 1\nstages = [{ duration = \"1s\", target = 1, extra = 2 }]"),
        scenario("executor = \"shared-iterations\"\nvus = 5\niterations = 2"),
        scenario("executor = \"shared-iterations\"\nexec = \"main\""),
        // Requests.
        "[scenarios.s]\nexecutor = \"shared-iterations\"\n".to_owned(),
        "[scenarios.s]\nexecutor = \"shared-iterations\"\n[[scenarios.s.requests]]\nurl = \"ftp://example.com/\"".to_owned(),
        "[scenarios.s]\nexecutor = \"shared-iterations\"\n[[scenarios.s.requests]]\nurl = \"http://h/{{ nope }}\"".to_owned(),
        "[scenarios.s]\nexecutor = \"shared-iterations\"\n[[scenarios.s.requests]]\nmethod = \"G T\"\nurl = \"http://h/\"".to_owned(),
        "[scenarios.s]\nexecutor = \"shared-iterations\"\n[[scenarios.s.requests]]\nurl = \"http://h/\"\nchecks = { status = 200, json_equals = 3 }".to_owned(),
        "[scenarios.s]\nexecutor = \"shared-iterations\"\n[[scenarios.s.requests]]\nurl = \"http://h/\"\nchecks = { json_path = \"a[x]\" }".to_owned(),
        "[scenarios.s]\nexecutor = \"shared-iterations\"\n[[scenarios.s.requests]]\nurl = \"http://h/\"\nchecks = { stauts = 200 }".to_owned(),
        "[scenarios.s]\nexecutor = \"shared-iterations\"\n[[scenarios.s.requests]]\nurl = \"http://h/\"\nthink_time = \"3s..1s\"".to_owned(),
        // Variables and data.
        format!("[vars]\npage = {{ random_int = [5, 1] }}\n{}", scenario("executor = \"shared-iterations\"")),
        format!("[vars]\npage = [1, 2]\n{}", scenario("executor = \"shared-iterations\"")),
        format!("[data.users]\nfile = \"missing.csv\"\n{}", scenario("executor = \"shared-iterations\"")),
        // No scenario at all.
        "[thresholds]\nchecks = [\"rate>0.9\"]".to_owned(),
    ]
    .iter()
    .map(|text| parse(text).map_or_else(|e| e.to_string(), |_| "parsed".to_owned()))
    .collect();
    expect_test::expect![[r#"
        [
            "/scenarios/load.toml:1:13: scenarios.s: unclosed table, expected `]`",
            "/scenarios/load.toml:3:12: scenarios.s.duration: string values must be quoted, expected literal string",
            "/scenarios/load.toml:2:12: scenarios.s.executor: unknown variant `constant-vu`, expected one of `constant-vus`, `ramping-vus`, `shared-iterations`, `per-vu-iterations`, `constant-arrival-rate`, `ramping-arrival-rate`",
            "/scenarios/load.toml:7:35: thresholds.http_req_duration[1]: bad threshold `p95<300`: unknown aggregation `p95` (write e.g. `p(95)<500` or `rate<0.01`)",
            "/scenarios/load.toml:7:20: thresholds.http_req_duraton: no metric named `http_req_duraton` (known: checks, data_received, data_sent, dropped_iterations, http_req_blocked, http_req_connecting, http_req_duration, http_req_failed, http_req_receiving, http_req_sending, http_req_service_duration, http_req_tls_handshaking, http_req_waiting, http_reqs, iteration_duration, iterations, vus, vus_max)",
            "/scenarios/load.toml:7:33: thresholds.\"http_req_failed{status:500}\": `p(95)` cannot apply to http_req_failed (a rate): use rate",
            "/scenarios/load.toml:7:74: thresholds.checks[0].delayAbortEval: `soon` is not a duration: write e.g. 500ms, 30s, 1m30s or 2h",
            "/scenarios/load.toml:7:11: thresholds.checks[0]: invalid type: integer `3`, expected a threshold expression such as \"p(95)<500\" or a table { threshold = \"...\", abortOnFail = true }",
            "/scenarios/load.toml:7:10: thresholds.checks[0].window: window `1s 500ms`: a window is a whole number of seconds, at least 1s (e.g. window = \"30s\")",
            "/scenarios/load.toml:7:7: thresholds.vus[0].window: vus is a gauge: a window applies to counters, rates and trends",
            "/scenarios/load.toml:3:12: scenarios.s.duration: shared-iterations does not take `duration` (it takes vus, iterations, maxDuration)",
            "/scenarios/load.toml:1:1: scenarios.s.duration: constant-vus needs `duration` (e.g. duration = \"30s\")",
            "/scenarios/load.toml:3:7: scenarios.s.vus: `vus` must be at least 1",
            "/scenarios/load.toml:3:12: scenarios.s.duration: `ten seconds` is not a duration: write e.g. 500ms, 30s, 1m30s or 2h",
            "/scenarios/load.toml:3:12: scenarios.s.duration: `300000000000y` is longer than the 10 years a duration may be",
            "/scenarios/load.toml:1:1: scenarios.s.preAllocatedVUs: constant-arrival-rate needs `preAllocatedVUs`",
            "/scenarios/load.toml:6:10: scenarios.s.maxVUs: `maxVUs` (2) is below `preAllocatedVUs` (5)",
            "/scenarios/load.toml:3:10: scenarios.s.stages: `stages` needs at least one stage",
            "/scenarios/load.toml:4:42: scenarios.s.stages[0].extra: unknown field `extra`, expected `duration` or `target`",
            "/scenarios/load.toml:4:14: scenarios.s.iterations: `iterations` (2) is below `vus` (5): each VU needs at least one",
            "/scenarios/load.toml:3:1: scenarios.s.exec: unknown field `exec`, expected one of `executor`, `startTime`, `gracefulStop`, `vus`, `iterations`, `duration`, `maxDuration`, `startVUs`, `stages`, `gracefulRampDown`, `rate`, `startRate`, `timeUnit`, `preAllocatedVUs`, `maxVUs`, `tags`, `think_time`, `requests`",
            "/scenarios/load.toml:1:1: scenarios.s.requests: the scenario sends nothing: add [[scenarios.s.requests]] with a url",
            "/scenarios/load.toml:4:7: scenarios.s.requests[0].url: `ftp://example.com/`: unsupported scheme `ftp` (write http://HOST/PATH or https://HOST/PATH)",
            "/scenarios/load.toml:4:7: scenarios.s.requests[0].url: unknown variable `nope` (defined: __VU, __ITER, __SCENARIO)",
            "/scenarios/load.toml:4:10: scenarios.s.requests[0].method: `G T` is not an HTTP method",
            "/scenarios/load.toml:5:10: scenarios.s.requests[0].checks.json_equals: json_equals needs json_path beside it",
            "/scenarios/load.toml:5:24: scenarios.s.requests[0].checks.json_path: bad JSON path `a[x]`: an index is a number (write e.g. items[0].id)",
            "/scenarios/load.toml:5:12: scenarios.s.requests[0].checks.stauts: unknown field `stauts`, expected one of `status`, `body_contains`, `json_path`, `json_equals`, `header`, `max_duration`",
            "/scenarios/load.toml:5:14: scenarios.s.requests[0].think_time: `3s..1s`: the lower bound is above the upper one",
            "/scenarios/load.toml:2:8: vars.page: random_int = [5, 1]: the lower bound is above the upper one",
            "/scenarios/load.toml:2:8: vars.page: a variable is a string, a number, { random_int = [1, 10] } or { one_of = [...] }",
            "/scenarios/load.toml:1:1: data.users.file: cannot read /scenarios/missing.csv: No such file or directory (os error 2)",
            "/scenarios/load.toml: scenarios: no scenario: add a [scenarios.NAME] table with an executor and [[scenarios.NAME.requests]]",
        ]
    "#]].assert_debug_eq(&errors);
}

mod properties {
    use super::parse;
    use prodready_loadtest::{Aggregation, Expr, Op, Selector};
    use proptest::prelude::*;

    fn aggregation() -> impl Strategy<Value = Aggregation> {
        prop_oneof![
            Just(Aggregation::Avg),
            Just(Aggregation::Min),
            Just(Aggregation::Med),
            Just(Aggregation::Max),
            Just(Aggregation::Count),
            Just(Aggregation::Rate),
            Just(Aggregation::Value),
            (0u32..=1000).prop_map(|p| Aggregation::Percentile(f64::from(p) / 10.0)),
        ]
    }

    fn op() -> impl Strategy<Value = (Op, &'static str)> {
        prop_oneof![
            Just((Op::Lt, "<")),
            Just((Op::Le, "<=")),
            Just((Op::Gt, ">")),
            Just((Op::Ge, ">=")),
            Just((Op::Eq, "==")),
            Just((Op::Eq, "===")),
            Just((Op::Ne, "!=")),
        ]
    }

    proptest! {
        /// Every well-formed expression parses back to what was written, blanks or not.
        #[test]
        fn expressions_round_trip(agg in aggregation(), (op, token) in op(), value in -1e9f64..1e9, pad in 0usize..3) {
            let blank = " ".repeat(pad);
            let text = format!("{blank}{agg}{blank}{token}{blank}{value}{blank}");
            let e = Expr::parse(&text).unwrap();
            prop_assert_eq!(e.aggregation, agg);
            prop_assert_eq!(e.op, op);
            prop_assert_eq!(e.value, value);
            prop_assert_eq!(e.source, text);
        }

        /// Any text is an expression or one error naming it; never a panic.
        #[test]
        fn any_expression_text_is_judged(text in "\\PC{0,24}") {
            if let Err(e) = Expr::parse(&text) {
                prop_assert!(e.starts_with("bad threshold `"), "{}", e);
            }
            let _ = Selector::parse(&text);
        }

        /// Sub-metric selectors round-trip through their display form.
        #[test]
        fn selectors_round_trip(tags in proptest::collection::vec(("[a-z_]{1,8}", "[A-Za-z0-9_ /-]{0,8}"), 0..4)) {
            let filter: Vec<String> = tags.iter().map(|(k, v)| format!("{k}:{}", v.trim())).collect();
            let text = if filter.is_empty() { "http_req_duration".to_owned() } else { format!("http_req_duration{{{}}}", filter.join(",")) };
            let s = Selector::parse(&text).unwrap();
            prop_assert_eq!(s.to_string(), text);
        }

        /// Every generated executor with valid k6 options parses to its own numbers.
        #[test]
        fn generated_scenarios_parse(vus in 1u64..500, extra in 0u64..500, secs in 1u64..3600, rate in 1u64..100_000, kind in 0usize..6) {
            let body = match kind {
                0 => format!("executor = \"constant-vus\"\nvus = {vus}\nduration = \"{secs}s\""),
                1 => format!("executor = \"ramping-vus\"\nstartVUs = {vus}\nstages = [{{ duration = \"{secs}s\", target = {extra} }}]"),
                2 => format!("executor = \"shared-iterations\"\nvus = {vus}\niterations = {}", vus + extra),
                3 => format!("executor = \"per-vu-iterations\"\nvus = {vus}\niterations = {extra}\nmaxDuration = \"{secs}s\"").replace("iterations = 0", "iterations = 1"),
                4 => format!("executor = \"constant-arrival-rate\"\nrate = {rate}\nduration = \"{secs}s\"\npreAllocatedVUs = {vus}\nmaxVUs = {}", vus + extra),
                _ => format!("executor = \"ramping-arrival-rate\"\nstartRate = {rate}\ntimeUnit = \"1m\"\npreAllocatedVUs = {vus}\nstages = [{{ duration = \"{secs}s\", target = {extra} }}]"),
            };
            let plan = parse(&super::scenario(&body)).unwrap();
            let e = &plan.scenarios[0].executor;
            prop_assert!(e.max_vus() >= vus);
            prop_assert_eq!(e.max_duration().as_secs(), if kind == 2 { 600 } else { secs });
        }

        /// Any line of a valid file removed or garbled: it parses, or one error names this file and a
        /// line inside it; never a panic.
        #[test]
        fn broken_files_get_located_errors(line in 0usize..24, garbage in "\\PC{0,12}", drop in any::<bool>()) {
            let mut lines: Vec<String> = super::GOOD.lines().map(str::to_owned).collect();
            let line = line % lines.len();
            if drop { lines.remove(line); } else { lines[line] = garbage; }
            let text = lines.join("\n");
            if let Err(e) = parse(&text) {
                prop_assert_eq!(e.file.to_str(), Some("/scenarios/load.toml"));
                if let Some(l) = e.line {
                    prop_assert!(l >= 1 && l <= text.lines().count().max(1), "{}", e);
                }
                prop_assert!(!e.message.is_empty());
            }
        }
    }
}
