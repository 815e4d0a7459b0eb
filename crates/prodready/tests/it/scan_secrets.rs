//! `prodready scan secrets` end to end: exit codes, formats, paths relative to the PATH given, the
//! baseline across line moves, git history, `[scan]` rules and allowlists, errors naming the file.

use std::path::Path;
use std::process::Command;

use crate::{prodready, stderr, stdout};

const GITHUB: &str = "ghp_R8a2kQ0wLm3ZpX7vN1cT5yB9dF4hJ6sE2uGq";
const DB_PASSWORD: &str = "Zq8vL2mN5xR1tY7w";

fn write(dir: &Path, path: &str, text: &str) {
    let path = dir.join(path);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

fn project() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "src/app.py", &format!("import os\n\nGITHUB_TOKEN = \"{GITHUB}\"\n"));
    write(
        dir.path(),
        "deploy/.env",
        &format!("PORT=8080\nDATABASE_URL=postgres://app:{DB_PASSWORD}@db:5432/app\n"),
    );
    write(dir.path(), "README.md", "# app\n");
    dir
}

fn scan(dir: &Path, args: &[&str]) -> std::process::Output {
    let mut all = vec!["scan", "secrets"];
    all.extend_from_slice(args);
    let out = prodready(dir, &[], &all);
    for secret in [GITHUB, DB_PASSWORD] {
        assert!(!stdout(&out).contains(secret) && !stderr(&out).contains(secret), "a secret was printed");
    }
    out
}

fn json(out: &std::process::Output) -> serde_json::Value {
    serde_json::from_str(&stdout(out)).unwrap_or_else(|e| panic!("{e}: {}", stdout(out)))
}

/// `(path, line, rule)` of each finding in a JSON report.
fn places(doc: &serde_json::Value) -> Vec<(String, u64, String)> {
    doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["path"].as_str().unwrap().to_owned(),
                f["line"].as_u64().unwrap(),
                f["rule"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[test]
fn findings_exit_1_with_redacted_text() {
    let dir = project();
    let out = scan(dir.path(), &[]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        "deploy/.env:2:29  database-url-password  [high]  DATABASE_URL=postgres://app:Zq****@db:5432/app"
    );
    assert_eq!(lines[1], "src/app.py:3:17  github-pat  [critical]  GITHUB_TOKEN = \"ghp_****\"");
    assert!(lines[2].starts_with("2 new findings; "), "{text}");

    // a clean tree exits 0
    let clean = tempfile::tempdir().unwrap();
    write(clean.path(), "main.rs", "fn main() { let key = std::env::var(\"API_KEY\"); }\n");
    let out = scan(clean.path(), &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(stdout(&out).starts_with("0 new findings; "));
}

#[test]
fn json_paths_are_relative_to_the_path_given() {
    let dir = project();
    let doc = json(&scan(dir.path(), &[".", "--format", "json"]));
    assert_eq!(
        places(&doc),
        [
            ("deploy/.env".into(), 2, "database-url-password".into()),
            ("src/app.py".into(), 3, "github-pat".into())
        ]
    );
    let f = &doc["findings"][1];
    for key in ["rule", "path", "line", "column", "fingerprint", "excerpt"] {
        assert!(f.get(key).is_some(), "no {key} in {f}");
    }
    assert_eq!(f["excerpt"], "GITHUB_TOKEN = \"ghp_****\"");
    let doc = json(&scan(dir.path(), &["src", "--format", "json"]));
    assert_eq!(places(&doc), [("app.py".into(), 3, "github-pat".into())]);
    let doc = json(&scan(dir.path(), &["./src/app.py", "--format", "json"]));
    assert_eq!(places(&doc), [("app.py".into(), 3, "github-pat".into())]);
}

#[test]
fn output_files_sarif_and_junit() {
    let dir = project();
    let out = scan(dir.path(), &["--format", "sarif", "--output", "reports/secrets.sarif"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stdout(&out), "");
    assert!(
        stderr(&out).starts_with("2 new findings;")
            && stderr(&out).contains("(report in reports/secrets.sarif)"),
        "{}",
        stderr(&out)
    );
    let sarif: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("reports/secrets.sarif")).unwrap())
            .unwrap();
    assert_eq!(sarif["version"], "2.1.0");
    assert_eq!(sarif["runs"][0]["results"].as_array().unwrap().len(), 2);
    let out = scan(dir.path(), &["--format", "junit", "--output", "secrets.xml"]);
    assert_eq!(out.status.code(), Some(1));
    let xml = std::fs::read_to_string(dir.path().join("secrets.xml")).unwrap();
    assert!(xml.contains("failures=\"2\"") && !xml.contains(GITHUB), "{xml}");
}

#[test]
fn baseline_accepts_known_findings_after_lines_move() {
    let dir = project();
    let out = scan(dir.path(), &["--format", "json", "--output", ".prodready-baseline.json"]);
    assert_eq!(out.status.code(), Some(1));
    let out = scan(dir.path(), &["--baseline", ".prodready-baseline.json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(stdout(&out).starts_with("0 new findings (2 in the baseline)"), "{}", stdout(&out));

    // the token moves down; a new one appears
    write(
        dir.path(),
        "src/app.py",
        &format!(
            "import os\nimport sys\n\n\nGITHUB_TOKEN = \"{GITHUB}\"\nOTHER = \"ghp_Z9b3kQ0wLm3ZpX7vN1cT5yB9dF4hJ6sE2uGq\"\n"
        ),
    );
    let doc = json(&scan(dir.path(), &["--baseline", ".prodready-baseline.json", "--format", "json"]));
    assert_eq!(places(&doc), [("src/app.py".into(), 6, "github-pat".into())]);
    assert_eq!(doc["baselined"], 2);

    // [scan] baseline is the default
    write(dir.path(), "prodready.toml", "[scan]\nbaseline = \".prodready-baseline.json\"\n");
    let doc = json(&scan(dir.path(), &["--format", "json"]));
    assert_eq!(doc["baselined"], 2);
    // Regenerating the baseline with [scan] baseline set (the documented command): every finding goes
    // into it, the accepted ones too, and the next run accepts all three.
    let out = scan(dir.path(), &["--format", "json", "--output", ".prodready-baseline.json"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("none taken as accepted"), "{}", stderr(&out));
    let out = scan(dir.path(), &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(stdout(&out).starts_with("0 new findings (3 in the baseline)"), "{}", stdout(&out));
}

#[test]
fn git_history_finds_a_deleted_secret() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path();
    let git = |args: &[&str]| {
        let out = Command::new("git")
            .args(["-c", "user.name=T", "-c", "user.email=t@example.com", "-c", "commit.gpgsign=false"])
            .args(args)
            .current_dir(repo)
            .env("HOME", repo)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    git(&["init", "-q", "-b", "main"]);
    write(repo, "config.py", &format!("TOKEN = \"{GITHUB}\"\n"));
    git(&["add", "."]);
    git(&["commit", "-q", "-m", "add"]);
    let added = git(&["rev-parse", "HEAD"]);
    write(repo, "config.py", "TOKEN = os.environ[\"TOKEN\"]\n");
    git(&["commit", "-q", "-am", "remove"]);

    assert_eq!(scan(repo, &[]).status.code(), Some(0));
    let out = scan(repo, &["--git", "--format", "json"]);
    assert_eq!(out.status.code(), Some(1));
    let doc = json(&out);
    assert_eq!(places(&doc), [("config.py".into(), 1, "github-pat".into())]);
    assert_eq!(doc["findings"][0]["commit"], added.as_str());
    let out = scan(repo, &["--git", "--since", &added]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
}

#[test]
fn scan_section_rules_and_allowlists() {
    let dir = project();
    write(dir.path(), "vendor/acme.cfg", "acme_key = acme_4kq9z2m7x1c8v5b3n6t0w2ya\n");
    write(
        dir.path(),
        "acme-rules.toml",
        "[[rules]]\nid = \"acme-key\"\ntitle = \"ACME key\"\nkeywords = [\"acme_\"]\nregex = '''\\b(acme_[a-z0-9]{24})\\b'''\n",
    );
    write(
        dir.path(),
        "prodready.toml",
        "[scan]\nrules = \"acme-rules.toml\"\nallow_paths = [\"^deploy/\"]\ndisable_rules = [\"github-pat\", \"generic-api-key\"]\n",
    );
    let doc = json(&scan(dir.path(), &["--format", "json"]));
    assert_eq!(places(&doc), [("vendor/acme.cfg".into(), 1, "acme-key".into())]);
    let out = scan(dir.path(), &["--list-rules"]);
    assert!(stdout(&out).contains("acme-key") && !stdout(&out).contains("github-pat"));
}

#[test]
fn bad_input_is_one_clear_error() {
    let dir = project();
    let check = |args: &[&str], expected: &str| {
        let out = scan(dir.path(), args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(expected), "{args:?}: {}", stderr(&out));
    };
    check(&["missing-dir"], "missing-dir: no such file or directory");
    check(&["--since", "HEAD"], "--git");
    write(dir.path(), "broken.json", "{\"findings\": 3}");
    check(&["--baseline", "broken.json"], "baseline broken.json: `findings` is not an array");
    write(dir.path(), "rules.toml", "[[rules]]\nid = \"x\"\nregex = '(a'\n");
    write(dir.path(), "prodready.toml", "[scan]\nrules = \"rules.toml\"\n");
    check(&[], "rules.toml: rule `x`: regex does not compile");
    write(dir.path(), "prodready.toml", "[scan]\nallow_pathz = []\n");
    check(&[], "allow_pathz");
}
