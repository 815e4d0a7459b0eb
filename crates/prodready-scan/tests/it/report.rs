//! The renderings of one report, as snapshots: text, JSON, SARIF, JUnit.

use std::collections::BTreeMap;

use expect_test::expect;
use prodready_scan::{Finding, Report, Rule, Severity};

fn sample() -> Report {
    let mut report = Report::new("secrets");
    report.rules = vec![Rule {
        id: "github-pat".into(),
        title: "GitHub personal access token".into(),
        description: "A classic GitHub personal access token (ghp_...).".into(),
        help: "Revoke it and read it from a secret store.".into(),
        severity: Severity::Critical,
        url: None,
    }];
    report.findings = vec![
        Finding {
            rule: "github-pat".into(),
            path: "deploy/my app.env".into(),
            line: 3,
            column: 14,
            fingerprint: "0f1e2d3c4b5a69788796a5b4c3d2e1f0".into(),
            excerpt: "GITHUB_TOKEN=ghp_****".into(),
            severity: Severity::Critical,
            commit: Some("8c5e2b1d0a9f8e7d6c5b4a39281706f5e4d3c2b1".into()),
            note: false,
            properties: BTreeMap::new(),
        },
        Finding {
            rule: "RUSTSEC-2020-0071".into(),
            path: "Cargo.lock".into(),
            line: 0,
            column: 0,
            fingerprint: "RUSTSEC-2020-0071:time@0.1.45".into(),
            excerpt: "time 0.1.45".into(),
            severity: Severity::Medium,
            commit: None,
            note: false,
            properties: [
                ("package".to_owned(), "time".to_owned()),
                ("version".to_owned(), "0.1.45".to_owned()),
            ]
            .into_iter()
            .collect(),
        },
    ];
    report.baselined = 2;
    report.allowed = 1;
    report.stats = [("files".to_owned(), 12), ("bytes".to_owned(), 3456)].into_iter().collect();
    report
}

#[test]
fn text() {
    expect![[r#"
        deploy/my app.env:3:14  github-pat  [critical]  GITHUB_TOKEN=ghp_****  (commit 8c5e2b1d0a9f)
        Cargo.lock  RUSTSEC-2020-0071  [medium]  time 0.1.45  package=time  version=0.1.45
        2 new findings (2 in the baseline, 1 allowed); 3456 bytes, 12 files
    "#]]
    .assert_eq(&sample().text());
}

#[test]
fn json_follows_the_contract() {
    let doc: serde_json::Value = serde_json::from_str(&sample().json()).unwrap();
    let first = &doc["findings"][0];
    for key in ["rule", "path", "line", "column", "fingerprint", "excerpt"] {
        assert!(first.get(key).is_some(), "no {key}");
    }
    expect![[r#"
        {"column":0,"excerpt":"time 0.1.45","fingerprint":"RUSTSEC-2020-0071:time@0.1.45","line":0,"package":"time","path":"Cargo.lock","rule":"RUSTSEC-2020-0071","severity":"medium","version":"0.1.45"}"#]]
    .assert_eq(&doc["findings"][1].to_string());
    let back: Report = serde_json::from_value(doc).unwrap();
    assert_eq!(back, sample());
}

#[test]
fn sarif() {
    expect_test::expect_file!["report/sample.sarif"].assert_eq(&sample().sarif());
}

/// A low-severity secret is a SARIF `warning`, not a `note`: it fails the secrets scan, so a gate reading
/// the log (which passes notes) must fail too. A low-severity advisory keeps its rule's level, and its
/// finding is a note only when it does not fail the scan (below the threshold, or informational).
#[test]
fn a_low_severity_secret_is_at_least_a_warning_in_sarif() {
    let levels = |scan: &str, note: bool| {
        let mut report = sample();
        report.scan = scan.to_owned();
        for rule in &mut report.rules {
            rule.severity = Severity::Low;
        }
        for finding in &mut report.findings {
            finding.severity = Severity::Low;
            finding.note = note;
        }
        let sarif: serde_json::Value = serde_json::from_str(&report.sarif()).unwrap();
        let run = &sarif["runs"][0];
        let mut levels = vec![run["tool"]["driver"]["rules"][0]["defaultConfiguration"]["level"].clone()];
        levels.extend(run["results"].as_array().unwrap().iter().map(|r| r["level"].clone()));
        levels
    };
    assert_eq!(levels("secrets", false), ["warning", "warning", "warning"]);
    assert_eq!(levels("deps", false), ["note", "warning", "warning"]);
    assert_eq!(levels("deps", true), ["note", "note", "note"]);
}

#[test]
fn junit() {
    expect_test::expect_file!["report/sample.junit.xml"].assert_eq(&sample().junit());
    let mut empty = Report::new("secrets");
    empty.stats.insert("files".into(), 3);
    let xml = empty.junit();
    assert!(
        xml.contains("tests=\"1\"")
            && xml.contains("failures=\"0\"")
            && xml.contains("no new secrets findings"),
        "{xml}"
    );
}
