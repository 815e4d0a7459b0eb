use std::collections::BTreeMap;

use expect_test::expect_file;
use prodready_checklist::history::Entry;
use prodready_checklist::{Category, Report, Status, Verdict, score};

use crate::result;

/// One result in every status, with a previous run to compare against.
fn report() -> Report {
    let mut results = vec![
        result("postgres", Category::Features, Status::Pass, 3.0, true),
        result("tls-expiry", Category::Security, Status::Warn, 1.0, false),
        result("restore-drill", Category::Backups, Status::ManualExpired, 2.0, true),
        result("backup-fresh", Category::Backups, Status::Pass, 2.0, false),
        result("loki", Category::Logging, Status::Fail, 2.0, false),
        result("on-call", Category::Monitoring, Status::ManualPending, 1.0, false),
        result("targets", Category::Monitoring, Status::Error, 1.0, false),
        result("loadtest", Category::Testing, Status::Skip, 1.0, false),
        result("sbom", Category::CiCd, Status::NotApplicable, 1.0, false),
    ];
    results[4].summary = "Loki at http://127.0.0.1:3100: cannot connect <refused> & | piped".to_owned();
    results[4].meta.docs = Some("docs/runbook.md#logging".to_owned());
    let scorecard = score(&results, 7.0);
    let previous = Entry {
        generated_at: "2026-11-01T09:00:00Z".to_owned(),
        overall: Some(3.0),
        verdict: Verdict::MustHaveFailed,
        categories: BTreeMap::from([("Features".to_owned(), Some(10.0)), ("Backups".to_owned(), Some(2.5))]),
    };
    Report::new("2026-11-29T12:00:00Z".to_owned(), scorecard, Some(previous), results)
}

#[test]
fn text() {
    expect_file!["golden/report.txt"].assert_eq(&report().text());
}

#[test]
fn markdown() {
    expect_file!["golden/report.md"].assert_eq(&report().markdown());
}

#[test]
fn json_has_a_schema_version_and_stable_ids() {
    let json = report().json();
    expect_file!["golden/report.json"].assert_eq(&json);
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(value["schema_version"], 1);
    assert_eq!(value["results"][2]["id"], "restore-drill");
    assert_eq!(value["results"][2]["status"], "manual-expired");
    assert_eq!(value["scorecard"]["counts"]["skip"], 1);
    let back: Report = serde_json::from_str(&json).unwrap();
    assert_eq!(back, report());
}

#[test]
fn junit_parses_with_one_suite_per_category_and_titles_as_names() {
    let xml = report().junit("prodready check");
    expect_file!["golden/report.junit.xml"].assert_eq(&xml);
    let parsed = junit_parser::from_reader(std::io::Cursor::new(xml.as_bytes())).expect("valid JUnit XML");
    let suites: Vec<&str> = parsed.suites.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(suites, ["Features", "Security", "Backups", "Logging", "Monitoring", "Testing", "CI/CD"]);
    let backups = &parsed.suites[2];
    let names: Vec<&str> = backups.cases.iter().map(|c| c.original_name.as_str()).collect();
    assert_eq!(names, ["Title of restore-drill", "Title of backup-fresh"]);
    assert_eq!(backups.cases[0].classname.as_deref(), Some("Backups.restore-drill"));
    assert!(backups.cases[0].status.is_failure());
    assert!(backups.cases[1].status.is_success());
    assert!(parsed.suites[4].cases[1].status.is_error());
    assert!(parsed.suites[5].cases[0].status.is_skipped());
    assert_eq!((parsed.tests, parsed.failures, parsed.errors, parsed.skipped), (9, 3, 1, 2));
}

#[test]
fn html_is_self_contained_and_escaped() {
    let html = report().html();
    expect_file!["golden/report.html"].assert_eq(&html);
    for external in ["src=", "href=", "<link", "<script", "@import", "url("] {
        assert!(
            !html.contains(external),
            "the report must not reference anything outside itself: {external}"
        );
    }
    assert!(html.contains("cannot connect &lt;refused&gt; &amp; | piped"));
}
