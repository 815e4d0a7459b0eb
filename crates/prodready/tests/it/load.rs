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
    check("[scenarios.s\n", "bad.toml:1:13: unclosed table");
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
    let out = std::process::Command::new(&k6)
        .args(["run", "--quiet", "--summary-export", "k6.json", "script.js"])
        .current_dir(dir.path())
        .env("K6_NO_USAGE_REPORT", "true")
        .output()
        .unwrap();
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
