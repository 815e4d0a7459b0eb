//! `prodready scan deps`: exit codes against the real RustSec snapshot, `--min-severity`, `--ignore`,
//! report files, errors naming the file; the CI templates in deploy/ci/.

use std::path::{Path, PathBuf};

use crate::{prodready, stderr, stdout};

fn advisory_db() -> PathBuf {
    prodready_test_support::advisory_db()
}

/// A project whose Cargo.lock pins `(name, version)` from crates.io.
fn project(packages: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut lock = String::from("version = 4\n\n[[package]]\nname = \"app\"\nversion = \"0.1.0\"\n");
    for (name, version) in packages {
        lock.push_str(&format!(
            "\n[[package]]\nname = \"{name}\"\nversion = \"{version}\"\nsource = \"registry+https://github.com/rust-lang/crates.io-index\"\n"
        ));
    }
    std::fs::write(dir.path().join("Cargo.lock"), lock).expect("write");
    dir
}

fn scan(dir: &Path, extra: &[&str]) -> std::process::Output {
    let db = advisory_db();
    let mut args = vec!["scan", "deps", "--db", db.to_str().expect("utf-8")];
    args.extend_from_slice(extra);
    prodready(dir, &[], &args)
}

#[test]
fn exit_codes_and_min_severity() {
    // smallvec 1.6.0: RUSTSEC-2021-0003, critical (9.8).
    let critical = project(&[("smallvec", "1.6.0")]);
    let out = scan(critical.path(), &[]);
    assert_eq!(out.status.code(), Some(1), "{}{}", stdout(&out), stderr(&out));
    assert!(
        stdout(&out).contains("Cargo.lock:8  RUSTSEC-2021-0003  [critical]  smallvec 1.6.0"),
        "{}",
        stdout(&out)
    );
    assert_eq!(scan(critical.path(), &["--min-severity", "critical"]).status.code(), Some(1));
    assert_eq!(scan(critical.path(), &["--ignore", "CVE-2021-25900"]).status.code(), Some(0));

    // The fixed version: clean.
    let fixed = project(&[("smallvec", "1.6.1")]);
    let out = scan(fixed.path(), &[]);
    assert_eq!(out.status.code(), Some(0), "{}{}", stdout(&out), stderr(&out));
    assert!(stdout(&out).contains("0 new findings"), "{}", stdout(&out));

    // time 0.1.44: RUSTSEC-2020-0071, medium (6.2): fails by default and at medium, not at high.
    let medium = project(&[("time", "0.1.44")]);
    assert_eq!(scan(medium.path(), &[]).status.code(), Some(1));
    assert_eq!(scan(medium.path(), &["--min-severity", "medium"]).status.code(), Some(1));
    let out = scan(medium.path(), &["--min-severity", "high"]);
    assert_eq!(out.status.code(), Some(0), "{}{}", stdout(&out), stderr(&out));
    assert!(stdout(&out).contains("RUSTSEC-2020-0071"), "still reported: {}", stdout(&out));

    // An unmaintained crate is reported, and does not fail.
    let unmaintained = project(&[("ansi_term", "0.12.1")]);
    let out = scan(unmaintained.path(), &[]);
    assert_eq!(out.status.code(), Some(0), "{}{}", stdout(&out), stderr(&out));
    assert!(stdout(&out).contains("informational=unmaintained"), "{}", stdout(&out));
}

#[test]
fn reports_go_to_output_files() {
    let dir = project(&[("smallvec", "1.6.0")]);
    let out = scan(dir.path(), &["--format", "sarif", "--output", "deps.sarif"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let sarif: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("deps.sarif")).expect("written"))
            .expect("JSON");
    assert_eq!(sarif["version"], "2.1.0");
    let results = sarif["runs"][0]["results"].as_array().expect("results");
    assert!(results.iter().any(|r| r["ruleId"] == "RUSTSEC-2021-0003"), "{results:?}");
    assert_eq!(results[0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"], "Cargo.lock");

    let out = scan(dir.path(), &["--format", "junit", "--output", "deps.xml"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let junit = std::fs::read_to_string(dir.path().join("deps.xml")).expect("written");
    assert!(junit.contains("RUSTSEC-2021-0003"), "{junit}");
}

#[test]
fn bad_input_is_one_clear_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("Cargo.lock"), "version = 4\n\n[[package]]\nname = \"x\"\nversion = \n")
        .expect("write");
    let out = scan(dir.path(), &[]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("Cargo.lock:5: not a valid Cargo.lock"), "{}", stderr(&out));
    assert!(!stderr(&out).contains("panicked"), "{}", stderr(&out));

    let empty = tempfile::tempdir().expect("tempdir");
    let out = prodready(dir.path(), &[], &["scan", "deps", "--db", empty.path().to_str().expect("utf-8")]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("no advisory found"), "{}", stderr(&out));
}

#[test]
fn github_actions_template_passes_actionlint() {
    let workflow = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/ci/github-actions.yml");
    let out = std::process::Command::new(prodready_test_support::peer_bin("actionlint"))
        .arg(&workflow)
        .output()
        .expect("run actionlint");
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
}

/// deploy/ci/scan.sh run by `sh` against the built binary: both scans, both SARIF (and JUnit) files,
/// the worse exit code.
#[test]
fn plain_shell_template_runs_both_scans() {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/ci/scan.sh");
    let run = |dir: &Path, env: &[(&str, &str)]| {
        std::process::Command::new("sh")
            .arg(&script)
            .current_dir(dir)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", dir)
            .env("PRODREADY", env!("CARGO_BIN_EXE_prodready"))
            .envs(env.iter().copied())
            .output()
            .expect("run sh")
    };
    let db = advisory_db();
    let db = db.to_str().expect("utf-8");

    let vulnerable = project(&[("smallvec", "1.6.0")]);
    let out = run(vulnerable.path(), &[("ADVISORY_DB", db), ("SCAN_JUNIT", "1")]);
    assert_eq!(out.status.code(), Some(1), "{}{}", stdout(&out), stderr(&out));
    let reports = vulnerable.path().join("scan-reports");
    let deps: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(reports.join("deps.sarif")).expect("deps.sarif"))
            .expect("JSON");
    assert_eq!(deps["runs"][0]["results"][0]["ruleId"], "RUSTSEC-2021-0003");
    let secrets: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(reports.join("secrets.sarif")).expect("secrets.sarif"))
            .expect("JSON");
    assert_eq!(secrets["version"], "2.1.0");
    assert!(reports.join("deps.xml").is_file() && reports.join("secrets.xml").is_file());
    assert!(stderr(&out).contains("scan deps: exit 1"), "{}", stderr(&out));

    // Clean at the threshold: the medium time advisory below --min-severity high, with two databases.
    let medium = project(&[("time", "0.1.44")]);
    let both = format!("{db}:{db}");
    let out = run(medium.path(), &[("ADVISORY_DB", &both), ("MIN_SEVERITY", "high"), ("SCAN_OUT", "out")]);
    assert_eq!(out.status.code(), Some(0), "{}{}", stdout(&out), stderr(&out));
    assert!(medium.path().join("out/deps.sarif").is_file());

    let out = run(medium.path(), &[]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("set ADVISORY_DB"), "{}", stderr(&out));
}
