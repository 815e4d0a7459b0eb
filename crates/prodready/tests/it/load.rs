//! `prodready load run / validate` against a real local server, and our summary's keys beside the real
//! k6's for the same scenario.

use std::collections::BTreeSet;
use std::path::Path;

use axum::Router;
use axum::http::header;
use axum::routing::get;

use crate::{prodready, stderr, stdout};

/// A server on 127.0.0.1:0 (on its own runtime, alive as long as the returned runtime).
fn server() -> (tokio::runtime::Runtime, String) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let base = rt.block_on(async {
        let app = Router::new()
            .route(
                "/items",
                get(|| async { ([(header::CONTENT_TYPE, "application/json")], r#"{"items":[1,2]}"#) }),
            )
            .route("/echo", axum::routing::post(|body: String| async move { body }))
            .route(
                "/slow",
                get(|| async {
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                    "slow"
                }),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        base
    });
    (rt, base)
}

fn scenario(dir: &Path, base: &str, thresholds: &str) -> String {
    let text = format!(
        r#"
[scenarios.browse]
executor = "shared-iterations"
vus = 2
iterations = 10

[[scenarios.browse.requests]]
url = "{base}/items"
tags = {{ name = "items" }}
checks = {{ status = 200, body_contains = "items" }}

[[scenarios.browse.requests]]
url = "{base}/slow"

[thresholds]
{thresholds}
"#
    );
    std::fs::write(dir.join("load.toml"), text).unwrap();
    "load.toml".to_owned()
}

#[test]
fn run_exits_0_when_thresholds_hold_and_99_when_one_fails() {
    let dir = tempfile::tempdir().unwrap();
    let (_rt, base) = server();
    let file = scenario(
        dir.path(),
        &base,
        "http_req_failed = [\"rate<0.01\"]\n\"http_req_duration{name:items}\" = [\"p(95)<5000\"]\nchecks = [\"rate==1\"]",
    );
    let out = prodready(dir.path(), &[], &["load", "run", &file, "--summary-export", "summary.json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("✓ 'rate<0.01'"), "{}", stdout(&out));
    let export: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("summary.json")).unwrap()).unwrap();
    assert_eq!(export["metrics"]["http_reqs"]["count"], 20);
    assert_eq!(export["metrics"]["http_req_failed"]["thresholds"]["rate<0.01"], false);
    assert_eq!(export["root_group"]["checks"]["items: status is 200"]["passes"], 10);

    // A threshold that cannot hold: exit 99, the failed one named; --out json prints handleSummary data.
    let file = scenario(dir.path(), &base, "\"http_req_duration{name:items}\" = [\"max<0\"]");
    let out =
        prodready(dir.path(), &[], &["load", "run", &file, "--out", "json", "--summary-export", "s.json"]);
    assert_eq!(out.status.code(), Some(99), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("thresholds failed: http_req_duration{name:items} max<0"),
        "{}",
        stderr(&out)
    );
    let data: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(data["metrics"]["http_req_duration{name:items}"]["thresholds"]["max<0"]["ok"], false);
    assert_eq!(data["metrics"]["iterations"]["values"]["count"], 10);
}

/// A run stopped by an abortOnFail threshold exits 99 (k6's exit code for thresholds) with that threshold
/// failed in its summary; so does the merge of a result that records such a stop (as a segment stopped by
/// its own threshold writes one), even though the counts in it pass every threshold.
/// SIGINT in the middle of a run, as Ctrl-C: the run stops, the summary of what ran is printed and
/// exported, and the exit code is k6's for an interrupted run, 105.
#[test]
fn an_interrupted_run_writes_its_summary_and_exits_105() {
    let (_rt, base) = server();
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        r#"
[scenarios.long]
executor = "constant-vus"
vus = 1
duration = "60s"
[[scenarios.long.requests]]
url = "{base}/slow"
"#
    );
    std::fs::write(dir.path().join("long.toml"), text).unwrap();
    let out =
        interrupted_after_2s(dir.path(), &["load", "run", "long.toml", "--summary-export", "long.json"]);
    assert_eq!(out.status.code(), Some(105), "{}", stderr(&out));
    assert!(stderr(&out).contains("interrupted"), "{}", stderr(&out));
    assert!(stdout(&out).contains("http_reqs"), "{}", stdout(&out));
    let export: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("long.json")).unwrap()).unwrap();
    let requests = export["metrics"]["http_reqs"]["count"].as_u64().unwrap();
    assert!(requests > 10, "two seconds of 20 ms requests: {requests}");

    // Without --summary-export the summary would go where the checklist reads it ([loadtest] summary,
    // under the data directory): an interrupted run proves nothing there and leaves nothing.
    let out = interrupted_after_2s(dir.path(), &["load", "run", "long.toml"]);
    assert_eq!(out.status.code(), Some(105), "{}", stderr(&out));
    assert!(stderr(&out).contains("not written for the checklist"), "{}", stderr(&out));
    assert!(!dir.path().join(".local/share/prodready/loadtest-summary.json").exists());
}

/// `prodready ARGS` in `dir`, sent SIGINT (as Ctrl-C) two seconds in.
fn interrupted_after_2s(dir: &Path, args: &[&str]) -> std::process::Output {
    let child = crate::prodready_command(dir, &[], args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_secs(2));
    let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap());
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn an_aborted_run_exits_99() {
    let dir = tempfile::tempdir().unwrap();
    let closed = prodready_test_support::free_port();
    let text = format!(
        r#"
[scenarios.down]
executor = "constant-vus"
vus = 1
duration = "60s"
[[scenarios.down.requests]]
url = "http://127.0.0.1:{closed}/"
think_time = "5ms"

[thresholds]
http_req_failed = [{{ threshold = "rate<0.01", abortOnFail = true }}]
"#
    );
    std::fs::write(dir.path().join("down.toml"), text).unwrap();
    let out = prodready(dir.path(), &[], &["load", "run", "down.toml", "--summary-export", "down.json"]);
    assert_eq!(out.status.code(), Some(99), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("aborted: the threshold http_req_failed rate<0.01 failed (abortOnFail)"),
        "{}",
        stderr(&out)
    );
    let read = |name: &str| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(dir.path().join(name)).unwrap()).unwrap()
    };
    assert_eq!(read("down.json")["metrics"]["http_req_failed"]["thresholds"]["rate<0.01"], true);

    let (_rt, base) = server();
    let file =
        scenario(dir.path(), &base, "http_req_failed = [{ threshold = \"rate<0.01\", abortOnFail = true }]");
    let out = prodready(dir.path(), &[], &["load", "run", &file, "--result", "part.json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let mut result = read("part.json");
    assert_eq!(result["aborted_by"], serde_json::Value::Null);
    result["aborted_by"] = "http_req_failed rate<0.01".into();
    std::fs::write(dir.path().join("part.json"), result.to_string()).unwrap();
    let out = prodready(dir.path(), &[], &["load", "merge", "part.json", "--summary-export", "merged.json"]);
    assert_eq!(out.status.code(), Some(99), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("aborted: the threshold http_req_failed rate<0.01 failed (abortOnFail)"),
        "{}",
        stderr(&out)
    );
    assert!(stderr(&out).contains("thresholds failed: http_req_failed rate<0.01"), "{}", stderr(&out));
    let merged = read("merged.json");
    assert_eq!(merged["metrics"]["http_req_failed"]["value"], 0);
    assert_eq!(merged["metrics"]["http_req_failed"]["thresholds"]["rate<0.01"], true);
}

#[test]
fn the_summary_goes_where_the_checklist_reads_it_by_default() {
    let dir = tempfile::tempdir().unwrap();
    let (_rt, base) = server();
    let file = scenario(dir.path(), &base, "http_req_failed = [\"rate<0.01\"]");
    std::fs::write(
        dir.path().join("prodready.toml"),
        format!("[loadtest]\nscenario = \"{file}\"\nsummary = \"out/last.json\"\n"),
    )
    .unwrap();
    let out = prodready(dir.path(), &[], &["load", "run"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let export: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("out/last.json")).unwrap()).unwrap();
    assert_eq!(export["metrics"]["http_req_failed"]["thresholds"]["rate<0.01"], false);
}

#[test]
fn invalid_scenarios_exit_2_naming_file_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let check = |text: &str, expected: &str| {
        std::fs::write(dir.path().join("bad.toml"), text).unwrap();
        for command in ["validate", "run"] {
            let out = prodready(dir.path(), &[], &["load", command, "bad.toml"]);
            assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
            assert!(stderr(&out).contains(expected), "{command}: {}", stderr(&out));
        }
    };
    let head = "[scenarios.s]\nexecutor = \"shared-iterations\"\n[[scenarios.s.requests]]\nurl = \"http://127.0.0.1:9/\"\n";
    check("[scenarios.s\n", "bad.toml:1:13: scenarios.s: unclosed table");
    check(
        &head.replace("shared-iterations", "shared-iteration"),
        "bad.toml:2:12: scenarios.s.executor: unknown variant `shared-iteration`",
    );
    check(
        &format!("{head}[thresholds]\nhttp_req_duration = [\"p(95) < fast\"]\n"),
        "bad.toml:6:22: thresholds.http_req_duration[0]: bad threshold `p(95) < fast`",
    );
    let out = prodready(dir.path(), &[], &["load", "validate", "missing.toml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("missing.toml: cannot read the scenario file"), "{}", stderr(&out));
    std::fs::write(dir.path().join("good.toml"), head).unwrap();
    let out = prodready(dir.path(), &[], &["load", "validate", "good.toml"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

/// `k6 run --quiet --summary-export EXPORT SCRIPT` in `dir`.
fn k6_run(k6: &Path, dir: &Path, script: &str, export: &str) -> std::process::Output {
    std::process::Command::new(k6)
        .args(["run", "--quiet", "--summary-export", export, script])
        .current_dir(dir)
        .env("K6_NO_USAGE_REPORT", "true")
        .output()
        .unwrap()
}

fn keys(summary: &serde_json::Value) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    fn walk(v: &serde_json::Value, path: String, out: &mut BTreeSet<String>) {
        if let Some(map) = v.as_object() {
            for (k, v) in map {
                let p = if path.is_empty() { k.clone() } else { format!("{path}.{k}") };
                // Metric and check names are data, not shape: keep the first level of each.
                out.insert(p.clone());
                walk(v, p, out);
            }
        }
    }
    walk(summary, String::new(), &mut out);
    out
}

/// The same scenario through the real k6 and through `prodready load run`: every key k6's
/// --summary-export file has, ours has too, with the same request count and threshold verdicts.
#[test]
fn our_summary_has_every_key_of_k6s() {
    let k6 = prodready_test_support::peer_bin("k6");
    let dir = tempfile::tempdir().unwrap();
    let (_rt, base) = server();
    let file = scenario(
        dir.path(),
        &base,
        "http_req_failed = [\"rate<0.01\"]\n\"http_req_duration{name:items}\" = [\"p(95)<5000\"]",
    );
    let script = format!(
        r#"
import http from 'k6/http';
import {{ check }} from 'k6';
export const options = {{
  scenarios: {{ browse: {{ executor: 'shared-iterations', vus: 2, iterations: 10 }} }},
  thresholds: {{ http_req_failed: ['rate<0.01'], 'http_req_duration{{name:items}}': ['p(95)<5000'] }},
}};
export default function () {{
  const r = http.get('{base}/items', {{ tags: {{ name: 'items' }} }});
  check(r, {{ 'items: status is 200': (r) => r.status === 200, 'items: body contains "items"': (r) => r.body.includes('items') }});
  http.get('{base}/slow');
}}
"#
    );
    std::fs::write(dir.path().join("script.js"), script).unwrap();
    let out = k6_run(&k6, dir.path(), "script.js", "k6.json");
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let out = prodready(dir.path(), &[], &["load", "run", &file, "--summary-export", "ours.json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let read = |name: &str| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(dir.path().join(name)).unwrap()).unwrap()
    };
    let (theirs, ours) = (read("k6.json"), read("ours.json"));
    // k6 samples vus once a second: a short run may lack them; we always report them.
    let missing: Vec<String> = keys(&theirs).difference(&keys(&ours)).cloned().collect();
    assert!(missing.is_empty(), "keys k6 has and we lack: {missing:?}");
    // And the other way: what we have beyond k6 is our own service-time metric and the VU gauges k6
    // samples only once a second.
    let extra: Vec<String> = keys(&ours)
        .difference(&keys(&theirs))
        .filter(|k| {
            !["metrics.http_req_service_duration", "metrics.vus", "metrics.vus_max"]
                .iter()
                .any(|m| k.starts_with(m))
        })
        .cloned()
        .collect();
    assert!(extra.is_empty(), "keys we have and k6 lacks: {extra:?}");
    for (metric, stat) in [("http_reqs", "count"), ("iterations", "count"), ("checks", "passes")] {
        assert_eq!(theirs["metrics"][metric][stat], ours["metrics"][metric][stat], "{metric} {stat}");
    }
    assert_eq!(
        theirs["metrics"]["http_req_duration{name:items}"]["thresholds"],
        ours["metrics"]["http_req_duration{name:items}"]["thresholds"]
    );
    assert_eq!(
        theirs["metrics"]["http_req_failed"]["thresholds"],
        ours["metrics"]["http_req_failed"]["thresholds"]
    );
}

/// Every threshold verdict of a `--summary-export` file: `metric expression` -> failed.
fn verdicts(export: &serde_json::Value) -> BTreeSet<(String, String, bool)> {
    let mut out = BTreeSet::new();
    for (metric, body) in export["metrics"].as_object().unwrap() {
        if let Some(thresholds) = body["thresholds"].as_object() {
            for (expr, failed) in thresholds {
                out.insert((metric.clone(), expr.clone(), failed.as_bool().unwrap()));
            }
        }
    }
    out
}

/// `load export-k6` turns a scenario with two executors, headers, a templated body, tags, a random
/// variable, CSV data, every kind of check, think times and thresholds into a script that the real k6
/// runs against the same server with the same counts, checks and threshold verdicts as ours.
#[test]
fn the_exported_k6_script_runs_like_ours() {
    let k6 = prodready_test_support::peer_bin("k6");
    let dir = tempfile::tempdir().unwrap();
    let (_rt, base) = server();
    std::fs::write(dir.path().join("users.csv"), "name,team\nada,\"core, infra\"\ngrace,web\n").unwrap();
    let text = format!(
        r#"
[scenarios.browse]
executor = "shared-iterations"
vus = 2
iterations = 10
tags = {{ team = "web" }}
think_time = "10ms"

[[scenarios.browse.requests]]
url = "{base}/items?page={{{{ page }}}}"
headers = {{ Accept = "application/json", X-User = "{{{{ users.name }}}}" }}
tags = {{ name = "items", kind = "list" }}
checks = {{ status = 200, body_contains = "items", json_path = "items[1]", json_equals = 2, header = {{ content-type = "json" }}, max_duration = "5s" }}

[[scenarios.browse.requests]]
method = "POST"
url = "{base}/echo"
body = "user={{{{ users.name }}}}&team={{{{ users.team }}}}&vu={{{{ __VU }}}}&scenario={{{{ __SCENARIO }}}}"
tags = {{ name = "echo" }}
checks = {{ status = [200, 201], body_contains = "scenario=browse" }}
think_time = "1ms..5ms"

[scenarios.each-vu]
executor = "per-vu-iterations"
vus = 2
iterations = 3
startTime = "100ms"

[[scenarios.each-vu.requests]]
url = "{base}/slow"
checks = {{ json_path = "$.nothing" }}

[vars]
page = {{ random_int = [1, 3] }}

[data.users]
file = "users.csv"

[thresholds]
http_req_failed = ["rate<0.01"]
"http_req_duration{{name:items}}" = ["p(95)<5000", {{ threshold = "max<60000", abortOnFail = true, delayAbortEval = "10s" }}]
"http_reqs{{scenario:each-vu}}" = ["count==6"]
"http_reqs{{name:echo}}" = ["count<5"]
"checks{{check:items: status is 200}}" = ["rate==1"]
checks = ["rate>0.99"]
"#
    );
    std::fs::write(dir.path().join("load.toml"), text).unwrap();
    let out = prodready(dir.path(), &[], &["load", "export-k6", "load.toml"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    std::fs::write(dir.path().join("load.js"), stdout(&out)).unwrap();

    // Both fail the same two thresholds (10 echo requests; the /slow check never passes): exit 99.
    let out = k6_run(&k6, dir.path(), "load.js", "k6.json");
    assert_eq!(out.status.code(), Some(99), "{}", String::from_utf8_lossy(&out.stderr));
    let out = prodready(dir.path(), &[], &["load", "run", "load.toml", "--summary-export", "ours.json"]);
    assert_eq!(out.status.code(), Some(99), "{}", stderr(&out));
    let read = |name: &str| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(dir.path().join(name)).unwrap()).unwrap()
    };
    let (theirs, ours) = (read("k6.json"), read("ours.json"));
    for (metric, stat) in [
        ("http_reqs", "count"),
        ("iterations", "count"),
        ("http_reqs{scenario:each-vu}", "count"),
        ("http_reqs{name:echo}", "count"),
        ("checks", "passes"),
        ("checks", "fails"),
    ] {
        assert_eq!(theirs["metrics"][metric][stat], ours["metrics"][metric][stat], "{metric} {stat}");
    }
    assert_eq!(ours["metrics"]["http_reqs"]["count"], 26);
    assert_eq!(verdicts(&theirs), verdicts(&ours));
    assert!(verdicts(&ours).contains(&("checks".to_owned(), "rate>0.99".to_owned(), true)));
    assert!(verdicts(&ours).contains(&("http_reqs{name:echo}".to_owned(), "count<5".to_owned(), true)));
    // Every check by name, with the same passes and fails: templates, CSV rows and tags reached k6.
    assert_eq!(theirs["root_group"]["checks"], ours["root_group"]["checks"]);
}

/// The pinned export of every executor (prodready-loadtest's k6 snapshot) is a script the real k6 takes:
/// `k6 inspect` reads all six executors' options and plans the same VUs and length as we do.
#[test]
fn k6_reads_the_exported_options_of_every_executor() {
    let k6 = prodready_test_support::peer_bin("k6");
    let dir = tempfile::tempdir().unwrap();
    let script = include_str!("../../../prodready-loadtest/tests/it/k6_export.js");
    std::fs::write(dir.path().join("load.js"), script).unwrap();
    std::fs::write(dir.path().join("users.csv"), "name\nada\n").unwrap();
    let out = std::process::Command::new(&k6)
        .args(["inspect", "--execution-requirements", "load.js"])
        .current_dir(dir.path())
        .env("K6_NO_USAGE_REPORT", "true")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let options: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    // 50 + 3 + 2 + 1 + 1 + 2 VUs; the longest scenario is per-vu-iterations' 10m maxDuration + 30s.
    assert_eq!(options["maxVUs"], 59);
    assert_eq!(options["totalDuration"], "10m30s");
    assert_eq!(options["scenarios"]["browse"]["stages"][1]["duration"], "1m30s");
    assert_eq!(options["thresholds"]["http_req_duration"].as_array().unwrap().len(), 3);
}

/// `load run --segment I/N --result FILE` three times at once (as on three machines) and `load merge`:
/// the same request counts and threshold verdicts as the whole run, exit 99 from the merge for the
/// threshold that fails, and clear refusals for a segment without VUs and for an incomplete set.
#[test]
fn three_segments_merge_into_the_whole_runs_summary() {
    let dir = tempfile::tempdir().unwrap();
    let (_rt, base) = server();
    let text = format!(
        r#"
[scenarios.browse]
executor = "shared-iterations"
vus = 3
iterations = 10

[[scenarios.browse.requests]]
url = "{base}/items"
tags = {{ name = "items" }}
checks = {{ status = 200, body_contains = "items" }}

[[scenarios.browse.requests]]
method = "POST"
url = "{base}/echo"
body = "hi"

[scenarios.open]
executor = "constant-arrival-rate"
rate = 20
duration = "1s"
preAllocatedVUs = 3

[[scenarios.open.requests]]
url = "{base}/items"

[thresholds]
http_reqs = ["count==40"]
http_req_failed = ["rate<0.01"]
"http_req_duration{{name:items}}" = ["p(95)<5000", "max<0"]
checks = ["rate==1"]
"#
    );
    std::fs::write(dir.path().join("load.toml"), &text).unwrap();
    let whole = prodready(dir.path(), &[], &["load", "run", "load.toml", "--summary-export", "whole.json"]);
    assert_eq!(whole.status.code(), Some(99), "{}", stderr(&whole));

    let outs: Vec<_> = std::thread::scope(|s| {
        let runs: Vec<_> = (1..=3)
            .map(|i| {
                let (segment, result) = (format!("{i}/3"), format!("part-{i}.json"));
                let dir = dir.path();
                s.spawn(move || {
                    prodready(
                        dir,
                        &[],
                        &["load", "run", "load.toml", "--segment", &segment, "--result", &result],
                    )
                })
            })
            .collect();
        runs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for out in &outs {
        // A segment judges nothing by itself: the merge does.
        assert_eq!(out.status.code(), Some(0), "{}", stderr(out));
        assert!(stderr(out).contains("thresholds are judged by `prodready load merge`"), "{}", stderr(out));
    }
    // Shared iterations 4 + 3 + 3 (two requests each), arrivals 7 + 7 + 6.
    let counts: Vec<String> = outs
        .iter()
        .map(|o| stdout(o).lines().find(|l| l.trim_start().starts_with("http_reqs.")).unwrap().to_owned())
        .collect();
    assert!(
        counts[0].contains(": 15 ") && counts[1].contains(": 13 ") && counts[2].contains(": 12 "),
        "{counts:?}"
    );
    assert!(!dir.path().join("summary.json").exists());

    let merge = prodready(
        dir.path(),
        &[],
        &["load", "merge", "part-3.json", "part-1.json", "part-2.json", "--summary-export", "merged.json"],
    );
    assert_eq!(merge.status.code(), Some(99), "{}", stderr(&merge));
    assert!(
        stderr(&merge).contains("thresholds failed: http_req_duration{name:items} max<0"),
        "{}",
        stderr(&merge)
    );
    let read = |name: &str| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(dir.path().join(name)).unwrap()).unwrap()
    };
    let (whole, merged) = (read("whole.json"), read("merged.json"));
    for (metric, stat) in
        [("http_reqs", "count"), ("iterations", "count"), ("checks", "passes"), ("vus_max", "value")]
    {
        assert_eq!(whole["metrics"][metric][stat], merged["metrics"][metric][stat], "{metric} {stat}");
    }
    assert_eq!(merged["metrics"]["http_reqs"]["count"], 40);
    assert_eq!(verdicts(&whole), verdicts(&merged));
    assert_eq!(whole["root_group"]["checks"], merged["root_group"]["checks"]);

    // An incomplete set, a foreign file and a segment without VUs are refused (exit 2).
    let out = prodready(dir.path(), &[], &["load", "merge", "part-1.json", "part-2.json"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("segments 3/3 are missing"), "{}", stderr(&out));
    let out = prodready(dir.path(), &[], &["load", "merge", "part-1.json", "whole.json"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("whole.json: not a load result"), "{}", stderr(&out));
    let out =
        prodready(dir.path(), &[], &["load", "run", "load.toml", "--segment", "4/4", "--result", "x.json"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("load.toml: segment 4/4 of scenario `browse` gets none of its 3 VU(s)"),
        "{}",
        stderr(&out)
    );
    let out = prodready(dir.path(), &[], &["load", "run", "load.toml", "--segment", "2/3"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("--result"), "{}", stderr(&out));
    // A windowed threshold cannot be judged across segments: refused, by name (a whole run keeps it).
    let windowed =
        text.replace(r#"checks = ["rate==1"]"#, r#"checks = [{ threshold = "rate==1", window = "30s" }]"#);
    std::fs::write(dir.path().join("windowed.toml"), windowed).unwrap();
    let out = prodready(
        dir.path(),
        &[],
        &["load", "run", "windowed.toml", "--segment", "1/3", "--result", "w.json"],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(
            "windowed.toml: the threshold `checks rate==1 over 30s` has a window, which a run cut into 3 segments cannot judge"
        ),
        "{}",
        stderr(&out)
    );
    let out = prodready(dir.path(), &[], &["load", "validate", "windowed.toml"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

/// deploy/kubernetes/loadtest-job.yaml passes Kubernetes' own schemas (kubernetes-validate --strict,
/// which refuses a misspelt field), and its pods' commands, run here with what Kubernetes would give
/// them (the completion index, the mounted scenario and the shared results volume), carry out the
/// whole run: the merge waits for every segment, merges them into the whole run's counts and verdict,
/// and files the parts away.
#[test]
fn the_loadtest_job_passes_the_schema_and_its_pods_run_the_whole_test() {
    let validate = prodready_test_support::peer_bin("kubernetes-validate");
    let dir = tempfile::tempdir().unwrap();
    let text = prodready::deploy::loadtest_job();
    let check = |name: &str, text: &str| {
        std::fs::write(dir.path().join(name), text).unwrap();
        std::process::Command::new(&validate)
            .args(["--strict", name])
            .current_dir(dir.path())
            .output()
            .unwrap()
    };
    let out = check("loadtest-job.yaml", &text);
    assert_eq!(out.status.code(), Some(0), "{}{}", stdout(&out), stderr(&out));
    assert_eq!(stdout(&out).matches("passed for resource").count(), 4, "{}", stdout(&out));
    let out = check("misspelt.yaml", &text.replacen("parallelism:", "paralelism:", 1));
    assert_ne!(out.status.code(), Some(0), "{}{}", stdout(&out), stderr(&out));

    let docs: Vec<serde_yaml_ng::Value> =
        text.split("\n---\n").skip(1).map(|d| serde_yaml_ng::from_str(d).unwrap()).collect();
    let kind = |kind: &str, name: &str| {
        docs.iter().find(|d| d["kind"] == kind && d["metadata"]["name"] == name).unwrap().clone()
    };
    let segments = kind("Job", "prodready-loadtest");
    let merge = kind("Job", "prodready-loadtest-merge");
    assert_eq!(segments["spec"]["completionMode"], "Indexed");
    let n = segments["spec"]["completions"].as_u64().unwrap();
    assert_eq!(segments["spec"]["parallelism"].as_u64(), Some(n));
    let claim = kind("PersistentVolumeClaim", "prodready-loadtest-results");
    assert_eq!(claim["spec"]["accessModes"][0], "ReadWriteMany");

    // What the pods see, here: the scenario aimed at a local server for one second, deterministic
    // thresholds, the results volume as a directory, `prodready` on PATH.
    let (_rt, base) = server();
    let scenario =
        kind("ConfigMap", "prodready-loadtest")["data"]["loadtest.toml"].as_str().unwrap().to_owned();
    let mut scenario = scenario.split("[thresholds]").next().unwrap().to_owned();
    for (from, to) in [
        ("http://app.default.svc.cluster.local:8080/healthz", format!("{base}/items")),
        ("duration = \"2m\"", "duration = \"1s\"".to_owned()),
    ] {
        assert!(scenario.contains(from), "{from} is not in the ConfigMap's scenario:\n{scenario}");
        scenario = scenario.replace(from, &to);
    }
    scenario.push_str("[thresholds]\nhttp_reqs = [\"count==300\"]\nhttp_req_failed = [\"rate<0.01\"]\n");
    let scenario_file = dir.path().join("loadtest.toml");
    std::fs::write(&scenario_file, scenario).unwrap();
    let results = dir.path().join("results");
    std::fs::create_dir(&results).unwrap();
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_prodready"), bin.join("prodready")).unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    let pod = |job: &serde_yaml_ng::Value, index: Option<u64>| {
        let container = &job["spec"]["template"]["spec"]["containers"][0];
        let command: Vec<String> = container["command"]
            .as_sequence()
            .unwrap()
            .iter()
            .map(|a| {
                a.as_str()
                    .unwrap()
                    .replace("/etc/prodready-loadtest/loadtest.toml", scenario_file.to_str().unwrap())
                    .replace("/results", results.to_str().unwrap())
            })
            .collect();
        assert_eq!(command[..2], ["/bin/sh", "-c"]);
        let mut cmd = std::process::Command::new(&command[0]);
        cmd.args(&command[1..]).current_dir(dir.path()).env("PATH", &path).env("HOME", dir.path());
        cmd.envs(crate::coverage_env());
        if let Some(i) = index {
            cmd.env("JOB_COMPLETION_INDEX", i.to_string());
        }
        cmd.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
        cmd.spawn().unwrap()
    };
    // The merge pod starts first and waits for the segments.
    let merger = pod(&merge, None);
    let parts: Vec<_> = (0..n).map(|i| pod(&segments, Some(i))).collect();
    for part in parts {
        let out = part.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    }
    let out = merger.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}{}", stdout(&out), stderr(&out));
    assert!(stderr(&out).contains(&format!("merged {n} segment result(s)")), "{}", stderr(&out));
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(results.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["metrics"]["http_reqs"]["count"], 300);
    assert_eq!(summary["metrics"]["http_reqs"]["thresholds"]["count==300"], false);
    let filed = std::fs::read_dir(results.join("merged")).unwrap().count();
    assert_eq!(u64::try_from(filed).unwrap(), n);
    assert!(!results.join("part-0.json").exists());
}
