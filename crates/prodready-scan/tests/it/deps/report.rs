//! Deps findings through the shared report: text, JSON, SARIF and JUnit.

use expect_test::expect;
use prodready_scan::Format;
use prodready_scan::deps::{Database, Lockfile, ScanOptions, Severity, lockfile, report, scan};

fn rendered(format: Format) -> String {
    rendered_at(format, None)
}

fn rendered_at(format: Format, min: Option<Severity>) -> String {
    let dir = tempfile::tempdir().expect("tempdir");
    let db_dir = dir.path().join("db");
    super::write(&db_dir, "GHSA-35jh-r3h4-6jhm.json", &super::db::osv_lodash());
    let unrated = super::db::osv_lodash()
        .replace("GHSA-35jh-r3h4-6jhm", "GHSA-0000-unrated")
        .replace("\"CVE-2021-23337\"", "\"CVE-0000-0001\"")
        .replace("\"severity\": [{\"type\": \"CVSS_V3\", \"score\": \"CVSS:3.1/AV:N/AC:L/PR:H/UI:N/S:U/C:H/I:H/A:H\"}],", "")
        .replace("\"database_specific\": {\"severity\": \"HIGH\"}", "\"database_specific\": {}")
        .replace("\"fixed\": \"4.17.21\"", "\"last_affected\": \"4.17.20\"")
        .replace("Command Injection in lodash", "Prototype pollution in lodash");
    super::write(&db_dir, "GHSA-0000-unrated.json", &unrated);
    let db = Database::load(&db_dir).expect("loads");
    let root = dir.path().join("repo");
    super::write(
        &root,
        "web/package-lock.json",
        "{\n  \"lockfileVersion\": 3,\n  \"packages\": {\n    \"node_modules/lodash\": {\"version\": \"4.17.20\"},\n    \"node_modules/left-pad\": {\"version\": \"1.3.0\"}\n  }\n}\n",
    );
    let found = lockfile::find(&[root]).expect("finds");
    let lockfiles: Vec<Lockfile> = found.iter().map(|f| Lockfile::read_found(f).expect("parses")).collect();
    let findings = scan(&db, &lockfiles, &ScanOptions::default());
    report(&findings, &lockfiles, &db, min).render(format)
}

#[test]
fn text() {
    expect![[r#"
        web/package-lock.json:4  GHSA-0000-unrated  [high]  lodash 4.17.20  aliases=CVE-0000-0001  cvss=unrated  ecosystem=npm  package=lodash  version=4.17.20
        web/package-lock.json:4  GHSA-35jh-r3h4-6jhm  [high]  lodash 4.17.20  aliases=CVE-2021-23337  cvss=7.2  ecosystem=npm  fixed=4.17.21  package=lodash  version=4.17.20
        2 new findings; 2 advisories, 0 informational, 1 lockfiles, 2 packages
    "#]]
    .assert_eq(&rendered(Format::Text));
}

#[test]
fn json_sarif_and_junit() {
    let json: serde_json::Value = serde_json::from_str(&rendered(Format::Json)).expect("JSON");
    assert_eq!(json["scan"], "deps");
    assert_eq!(json["findings"][1]["rule"], "GHSA-35jh-r3h4-6jhm");
    assert_eq!(json["findings"][1]["path"], "web/package-lock.json");
    assert_eq!(json["findings"][1]["fixed"], "4.17.21");

    let sarif: serde_json::Value = serde_json::from_str(&rendered(Format::Sarif)).expect("SARIF");
    let run = &sarif["runs"][0];
    let rule = &run["tool"]["driver"]["rules"][1];
    assert_eq!(rule["id"], "GHSA-35jh-r3h4-6jhm");
    assert_eq!(rule["helpUri"], "https://github.com/advisories/GHSA-35jh-r3h4-6jhm");
    assert_eq!(rule["help"]["text"], "Upgrade lodash to a fixed version (4.17.21) and refresh the lockfile.");
    let result = &run["results"][1];
    assert_eq!(result["level"], "error");
    assert_eq!(
        result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
        "web/package-lock.json"
    );
    assert_eq!(result["locations"][0]["physicalLocation"]["region"]["startLine"], 4);
    assert_eq!(result["partialFingerprints"]["prodready/v1"].as_str().map(str::len), Some(32));
    assert_eq!(
        run["tool"]["driver"]["rules"][0]["help"]["text"],
        "No fixed version of lodash is known: replace the dependency, or accept the risk after review."
    );

    let junit = rendered(Format::Junit);
    assert!(junit.contains("tests=\"2\"") && junit.contains("failures=\"2\""), "{junit}");
    assert!(junit.contains("web/package-lock.json:4 GHSA-35jh-r3h4-6jhm"), "{junit}");
}

/// A vulnerability below the caller's threshold is reported as a SARIF `note`, so that a gate
/// reading the log (the checklist's scan_report) agrees with the scan's exit code.
#[test]
fn findings_below_the_threshold_are_notes_in_sarif() {
    let levels = |min| {
        let sarif: serde_json::Value = serde_json::from_str(&rendered_at(Format::Sarif, min)).unwrap();
        sarif["runs"][0]["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| format!("{} {}", r["ruleId"].as_str().unwrap(), r["level"].as_str().unwrap()))
            .collect::<Vec<_>>()
    };
    assert_eq!(levels(None), ["GHSA-0000-unrated error", "GHSA-35jh-r3h4-6jhm error"]);
    assert_eq!(levels(Some(Severity::High)), ["GHSA-0000-unrated error", "GHSA-35jh-r3h4-6jhm error"]);
    assert_eq!(levels(Some(Severity::Critical)), ["GHSA-0000-unrated note", "GHSA-35jh-r3h4-6jhm note"]);
    // Both forms are valid SARIF 2.1.0.
    for min in [None, Some(Severity::Critical)] {
        crate::sarif::validate(&rendered_at(Format::Sarif, min)).unwrap();
    }
}
