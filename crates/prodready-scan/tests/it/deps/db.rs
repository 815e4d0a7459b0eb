//! The advisory database: the whole real RustSec snapshot, OSV files, and malformed advisories.

use std::path::Path;

use prodready_scan::deps::{Database, Ecosystem, Severity};

/// Files in the snapshot that are advisories (RUSTSEC-*.md under crates/, CVE-*.md under rust/).
fn advisory_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("readable") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            advisory_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "md")
            && path.file_name() != Some("README.md".as_ref())
        {
            out.push(path);
        }
    }
}

#[test]
fn the_whole_rustsec_snapshot_parses() {
    let dir = super::advisory_db();
    let db = Database::load(&dir).expect("the snapshot parses");
    let stats = db.stats();
    let mut files = Vec::new();
    advisory_files(&dir, &mut files);
    let withdrawn = files
        .iter()
        .filter(|f| std::fs::read_to_string(f).expect("read").lines().any(|l| l.starts_with("withdrawn =")))
        .count();
    eprintln!("advisory-db snapshot: {stats:?}");
    // Every advisory file is read; each one is either kept or withdrawn, none skipped otherwise.
    assert_eq!(stats.rustsec_files, files.len());
    assert_eq!(stats.withdrawn, withdrawn);
    assert_eq!(stats.advisories + stats.withdrawn, files.len());
    assert_eq!(stats.duplicates, 0);
    assert_eq!(stats.osv_files, 0);
    assert!(stats.advisories > 1000, "{stats:?}");
    // The toolchain's own advisories are read but belong to no lockfile ecosystem.
    assert_eq!(
        stats.by_ecosystem.get("Rust"),
        Some(&files.iter().filter(|f| f.starts_with(dir.join("rust"))).count())
    );

    let (advisory, _) = db
        .lookup(&Ecosystem::CratesIo, "smallvec")
        .find(|(a, _)| a.id == "RUSTSEC-2021-0003")
        .expect("indexed");
    assert_eq!(advisory.summary, "Buffer overflow in SmallVec::insert_many");
    assert_eq!(advisory.aliases, ["CVE-2021-25900", "GHSA-43w2-9j62-hq99"]);
    let rating = advisory.rating.as_ref().expect("rated");
    assert_eq!((rating.severity, rating.score), (Severity::Critical, Some(9.8)));
    assert_eq!(advisory.url.as_deref(), Some("https://rustsec.org/advisories/RUSTSEC-2021-0003.html"));
    // A CVSS 4.0 vector is scored too.
    let v4 = db.advisories().iter().find(|a| {
        a.rating.as_ref().is_some_and(|r| r.vector.as_deref().is_some_and(|v| v.starts_with("CVSS:4.0")))
    });
    assert!(v4.is_some_and(|a| a.rating.as_ref().and_then(|r| r.score).is_some()));
}

#[test]
fn osv_files_and_withdrawn_entries() {
    let dir = tempfile::tempdir().expect("tempdir");
    super::write(dir.path(), "npm/GHSA-aaaa.json", &osv_lodash());
    super::write(
        dir.path(),
        "npm/withdrawn.json",
        r#"{"id": "GHSA-wwww", "withdrawn": "2024-01-01T00:00:00Z", "affected": [{"package": {"ecosystem": "npm", "name": "lodash"}, "ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}]}]}]}"#,
    );
    super::write(dir.path(), "README.md", "# not an advisory\n");
    let db = Database::load(dir.path()).expect("loads");
    let stats = db.stats();
    assert_eq!((stats.osv_files, stats.advisories, stats.withdrawn, stats.other_files), (2, 1, 1, 1));
    let (advisory, affected) = db.lookup(&Ecosystem::Npm, "lodash").next().expect("indexed");
    assert_eq!(advisory.id, "GHSA-35jh-r3h4-6jhm");
    assert_eq!(affected.affects.fixed_versions(), ["4.17.21"]);
    assert_eq!(advisory.rating.as_ref().map(|r| r.severity), Some(Severity::High));
    assert_eq!(advisory.url.as_deref(), Some("https://github.com/advisories/GHSA-35jh-r3h4-6jhm"));
}

/// A GitHub-style OSV advisory for lodash's command injection (CVSS 7.2, fixed in 4.17.21).
pub(crate) fn osv_lodash() -> String {
    r#"{
  "schema_version": "1.4.0",
  "id": "GHSA-35jh-r3h4-6jhm",
  "modified": "2024-01-01T00:00:00Z",
  "published": "2021-05-06T16:05:51Z",
  "aliases": ["CVE-2021-23337"],
  "summary": "Command Injection in lodash",
  "details": "`lodash` versions prior to 4.17.21 are vulnerable to Command Injection via the template function.",
  "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:H/UI:N/S:U/C:H/I:H/A:H"}],
  "affected": [{
    "package": {"ecosystem": "npm", "name": "lodash"},
    "ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}, {"fixed": "4.17.21"}]}]
  }],
  "references": [{"type": "ADVISORY", "url": "https://github.com/advisories/GHSA-35jh-r3h4-6jhm"}],
  "database_specific": {"severity": "HIGH"}
}"#
    .to_owned()
}

#[track_caller]
fn check_error(name: &str, text: &str, expected: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = super::write(dir.path(), name, text);
    super::write(dir.path(), "npm/good.json", &osv_lodash());
    let err = Database::load(dir.path()).expect_err("refused").to_string();
    assert_eq!(err, expected.replace("{path}", &path.display().to_string()));
}

#[test]
fn a_malformed_advisory_fails_the_load_naming_file_line_and_key() {
    check_error(
        "crates/x/RUSTSEC-2099-0001.md",
        "```toml\n[advisory]\nid = \"RUSTSEC-2099-0001\"\npackage = \"x\"\ndate = \"2099-01-01\"\n\n[versions]\npatched = [\">= 1.x.3\"]\n```\n\n# Title\n",
        "advisory {path}:8: key `versions.patched`: `>= 1.x.3` is not a version requirement (expected e.g. `>= 1.2.3` or `^0.4`)",
    );
    check_error(
        "crates/x/RUSTSEC-2099-0002.md",
        "```toml\n[advisory]\npackage = \"x\"\n\n[versions]\npatched = []\n```\n",
        "advisory {path}:2: key `advisory`: missing field `id`",
    );
    check_error(
        "crates/x/RUSTSEC-2099-0003.md",
        "```toml\n[advisory]\nid = \"RUSTSEC-2099-0003\"\npackage = \"x\"\ncvss = \"CVSS:3.1/AV:X\"\n[versions]\npatched = []\n```\n",
        "advisory {path}:5: key `advisory.cvss`: invalid CVSS vector `CVSS:3.1/AV:X`: invalid CVSSv3 AV (Attack Vector) metric: `X`",
    );
    check_error(
        "crates/x/RUSTSEC-2099-0004.md",
        "# Just markdown\n",
        "advisory {path}:1: no front matter: a RustSec advisory starts with a ```toml line",
    );
    check_error(
        "npm/GHSA-bad.json",
        "{\n  \"id\": \"GHSA-bad\",\n  \"affected\": [{\"package\": {\"ecosystem\": \"npm\", \"name\": \"x\"},\n    \"ranges\": [{\"type\": \"SEMVER\", \"events\": [{\"introduced\": \"1.0\"}]}]}]\n}\n",
        "advisory {path}: advisory GHSA-bad: key `affected[0].ranges[0]`: `1.0` is not a valid SemVer version",
    );
    check_error(
        "npm/GHSA-trunc.json",
        "{\n  \"id\": \"GHSA-trunc\",\n  \"affected\": [\n",
        "advisory {path}:4: key `affected`: EOF while parsing a list at line 4 column 0",
    );
}

#[test]
fn an_empty_database_is_an_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    super::write(dir.path(), "README.md", "nothing here\n");
    let err = Database::load(dir.path()).expect_err("refused").to_string();
    assert_eq!(
        err,
        format!(
            "advisory database {}: no advisory found (expected OSV *.json files or a RustSec advisory-db checkout)",
            dir.path().display()
        )
    );
}

#[test]
fn several_directories_make_one_database() {
    let dir = tempfile::tempdir().expect("tempdir");
    super::write(dir.path(), "osv/GHSA-35jh-r3h4-6jhm.json", &osv_lodash());
    std::fs::create_dir_all(dir.path().join("empty")).expect("mkdir");
    let db = Database::load_all(&[super::advisory_db(), dir.path().join("osv")]).expect("loads");
    assert!(db.lookup(&Ecosystem::Npm, "lodash").next().is_some());
    assert!(db.lookup(&Ecosystem::CratesIo, "smallvec").next().is_some());
    // Each directory must hold something: a wrong path among several is not silently empty.
    let err = Database::load_all(&[dir.path().join("osv"), dir.path().join("empty")]).expect_err("refused");
    assert!(err.to_string().contains("no advisory found"), "{err}");
}

/// Every prefix of a real RustSec advisory and of an OSV file loads or fails with an error naming the
/// file: never a panic, never a silent empty database.
#[test]
fn truncated_advisories_never_panic() {
    let rustsec = std::fs::read_to_string(super::advisory_db().join("crates/smallvec/RUSTSEC-2021-0003.md"))
        .expect("read");
    let osv = osv_lodash();
    for (name, text) in [
        ("crates/smallvec/RUSTSEC-2021-0003.md", rustsec.as_str()),
        ("GHSA-35jh-r3h4-6jhm.json", osv.as_str()),
    ] {
        for cut in (0..text.len()).filter(|i| text.is_char_boundary(*i)).step_by(3) {
            let dir = tempfile::tempdir().expect("tempdir");
            let path = super::write(dir.path(), name, &text[..cut]);
            match Database::load(dir.path()) {
                Ok(db) => {
                    assert_eq!(
                        db.stats().advisories,
                        1,
                        "a prefix of {cut} bytes loaded as {:?}",
                        db.stats()
                    );
                }
                Err(e) => {
                    let message = e.to_string();
                    assert!(
                        message.contains(&path.display().to_string())
                            || message.starts_with("advisory database"),
                        "{message}"
                    );
                }
            }
        }
    }
}
