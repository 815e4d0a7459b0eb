//! Matching: crafted lockfiles against the real RustSec snapshot and a crafted OSV advisory, and
//! this repository's own Cargo.lock against the snapshot.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::OnceLock;

use prodready_scan::deps::{Database, Finding, Lockfile, LockfileKind, ScanOptions, Severity, scan};

fn rustsec() -> &'static Database {
    static DB: OnceLock<Database> = OnceLock::new();
    DB.get_or_init(|| Database::load(&super::advisory_db()).expect("the snapshot loads"))
}

fn findings(db: &Database, kind: LockfileKind, text: &str) -> Vec<Finding> {
    let lockfile = Lockfile::parse(Path::new("fixture"), kind, text).expect("parses");
    scan(db, &[lockfile], &ScanOptions::default())
}

/// `package version advisory severity` per finding.
fn listing(findings: &[Finding]) -> Vec<String> {
    findings
        .iter()
        .map(|f| {
            format!(
                "{} {} {} {}",
                f.package,
                f.installed_version,
                f.advisory_id,
                f.severity.map_or("unrated".into(), |s| s.to_string())
            )
        })
        .collect()
}

#[test]
fn a_cargo_lock_pinning_an_affected_version_is_flagged_and_one_outside_is_not() {
    let db = rustsec();
    // RUSTSEC-2021-0003: smallvec patched >= 0.6.14, < 1.0.0 and >= 1.6.1; unaffected < 0.6.3.
    let hit = findings(db, LockfileKind::Cargo, &super::cargo_lock(&[("smallvec", "1.6.0")]));
    let ids: Vec<&str> = hit.iter().map(|f| f.advisory_id.as_str()).collect();
    assert!(ids.contains(&"RUSTSEC-2021-0003"), "{ids:?}");
    let finding = hit.iter().find(|f| f.advisory_id == "RUSTSEC-2021-0003").expect("found");
    assert_eq!(finding.severity, Some(Severity::Critical));
    assert_eq!(finding.score, Some(9.8));
    assert_eq!(finding.fixed_versions, [">= 0.6.14, < 1.0.0", ">= 1.6.1"]);
    assert_eq!(finding.aliases, ["CVE-2021-25900", "GHSA-43w2-9j62-hq99"]);
    assert_eq!(finding.line, Some(9));
    assert!(finding.fails_at(Some(Severity::Critical)));

    for outside in ["1.6.1", "0.6.2", "0.6.14", "1.13.2"] {
        let found = findings(db, LockfileKind::Cargo, &super::cargo_lock(&[("smallvec", outside)]));
        assert!(
            !found.iter().any(|f| f.advisory_id == "RUSTSEC-2021-0003"),
            "smallvec {outside}: {:?}",
            listing(&found)
        );
    }
    // A workspace member named like a vulnerable crate is not a crates.io package.
    let member = "version = 4\n\n[[package]]\nname = \"smallvec\"\nversion = \"1.6.0\"\n";
    assert_eq!(listing(&findings(db, LockfileKind::Cargo, member)), Vec::<String>::new());
}

#[test]
fn an_npm_lockfile_against_a_crafted_osv_advisory() {
    let dir = tempfile::tempdir().expect("tempdir");
    super::write(dir.path(), "GHSA-35jh-r3h4-6jhm.json", &super::db::osv_lodash());
    let db = Database::load(dir.path()).expect("loads");
    let lock = |version: &str| {
        format!(
            r#"{{"lockfileVersion": 3, "packages": {{"": {{}}, "node_modules/lodash": {{"version": "{version}"}}}}}}"#
        )
    };
    assert_eq!(
        listing(&findings(&db, LockfileKind::Npm, &lock("4.17.20"))),
        ["lodash 4.17.20 GHSA-35jh-r3h4-6jhm high"]
    );
    assert_eq!(
        listing(&findings(&db, LockfileKind::Npm, &lock("4.17.21-rc.1"))),
        ["lodash 4.17.21-rc.1 GHSA-35jh-r3h4-6jhm high"]
    );
    assert!(findings(&db, LockfileKind::Npm, &lock("4.17.21")).is_empty());
    // The same through yarn and pnpm.
    let yarn = "# yarn lockfile v1\n\nlodash@^4.17.0:\n  version \"4.17.15\"\n";
    assert_eq!(
        listing(&findings(&db, LockfileKind::Yarn, yarn)),
        ["lodash 4.17.15 GHSA-35jh-r3h4-6jhm high"]
    );
    let pnpm =
        "lockfileVersion: '9.0'\n\npackages:\n\n  lodash@4.17.21:\n    resolution: {integrity: sha512-x}\n";
    assert!(findings(&db, LockfileKind::Pnpm, pnpm).is_empty());
}

#[test]
fn ignore_and_aliases() {
    let dir = tempfile::tempdir().expect("tempdir");
    super::write(dir.path(), "a/GHSA-35jh-r3h4-6jhm.json", &super::db::osv_lodash());
    // The same vulnerability under its CVE id, from another database: reported once.
    super::write(
        dir.path(),
        "b/CVE-2021-23337.json",
        &super::db::osv_lodash()
            .replace("\"id\": \"GHSA-35jh-r3h4-6jhm\"", "\"id\": \"CVE-2021-23337\"")
            .replace("\"aliases\": [\"CVE-2021-23337\"]", "\"aliases\": [\"GHSA-35jh-r3h4-6jhm\"]"),
    );
    let db = Database::load(dir.path()).expect("loads");
    let lock = r#"{"lockfileVersion": 3, "packages": {"node_modules/lodash": {"version": "4.17.20"}}}"#;
    let lockfile = Lockfile::parse(Path::new("package-lock.json"), LockfileKind::Npm, lock).expect("parses");
    let all = scan(&db, std::slice::from_ref(&lockfile), &ScanOptions::default());
    assert_eq!(listing(&all), ["lodash 4.17.20 GHSA-35jh-r3h4-6jhm high"]);
    let options = ScanOptions { ignore: BTreeSet::from(["CVE-2021-23337".to_owned()]) };
    assert!(scan(&db, &[lockfile], &options).is_empty(), "ignored by alias");
}

#[test]
fn severity_threshold_and_informational_advisories() {
    let db = rustsec();
    // time 0.1.44: RUSTSEC-2020-0071, CVSS 6.2 (medium).
    let time = findings(db, LockfileKind::Cargo, &super::cargo_lock(&[("time", "0.1.44")]));
    let medium = time.iter().find(|f| f.advisory_id == "RUSTSEC-2020-0071").expect("flagged");
    assert_eq!(medium.severity, Some(Severity::Medium));
    assert!(medium.fails_at(None));
    assert!(medium.fails_at(Some(Severity::Medium)));
    assert!(!medium.fails_at(Some(Severity::High)));
    // An unmaintained crate is reported but never fails.
    let unmaintained = db
        .advisories()
        .iter()
        .find(|a| {
            a.informational.as_ref().is_some_and(|i| i.as_str() == "unmaintained")
                && a.affected[0].name == "ansi_term"
        })
        .expect("ansi_term is unmaintained in the snapshot");
    let found = findings(db, LockfileKind::Cargo, &super::cargo_lock(&[("ansi_term", "0.12.1")]));
    let finding = found.iter().find(|f| f.advisory_id == unmaintained.id).expect("reported");
    assert!(!finding.fails_at(None));
}

#[test]
fn this_repositorys_cargo_lock_against_the_snapshot() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../Cargo.lock");
    let lockfile = Lockfile::read(&path).expect("our Cargo.lock parses");
    assert!(lockfile.packages.len() > 100, "{} packages", lockfile.packages.len());
    let found = scan(rustsec(), std::slice::from_ref(&lockfile), &ScanOptions::default());
    for f in &found {
        assert!(lockfile.packages.iter().any(|p| p.name == f.package && p.version == f.installed_version));
        eprintln!(
            "{} {} {} [{}{}] {}",
            f.package,
            f.installed_version,
            f.advisory_id,
            f.informational.as_ref().map_or("", |i| i.as_str()),
            f.severity.map_or(String::new(), |s| s.to_string()),
            f.summary
        );
    }
    eprintln!(
        "{} packages ({} not from crates.io), {} findings, {} failing",
        lockfile.packages.len(),
        lockfile.skipped,
        found.len(),
        found.iter().filter(|f| f.fails_at(None)).count()
    );
}
