//! History scans against a real git repository in a temporary directory.

use std::path::Path;
use std::process::Command;

use prodready_scan::secrets::{self, Baseline, NoProgress, Options, Ruleset};

const SLACK: &str = "xoxb-284619375028-492015736284-Qm7Zt2Kx9Lp4Wv8Rb1Nc6Hd3";
const AWS: &str = "AKIAZ7QK3M5P2W6X4RTY";

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(["-c", "user.name=Test", "-c", "user.email=test@example.com", "-c", "commit.gpgsign=false"])
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("HOME", dir)
        .output()
        .expect("git is installed (apt-get install git)");
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn commit(dir: &Path, files: &[(&str, &str)], message: &str) -> String {
    crate::write_tree(dir, files);
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-q", "-m", message]);
    git(dir, &["rev-parse", "HEAD"])
}

fn places(report: &prodready_scan::Report) -> Vec<(String, u32, String, String)> {
    report
        .findings
        .iter()
        .map(|f| (f.path.clone(), f.line, f.rule.clone(), f.commit.clone().unwrap_or_default()))
        .collect()
}

#[test]
fn a_secret_committed_then_deleted_is_found_with_its_commit() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path();
    git(repo, &["init", "-q", "-b", "main"]);
    let c1 = commit(repo, &[("README.md", "# app\n"), ("svc/config.py", "DEBUG = False\n")], "start");
    let c2 = commit(
        repo,
        &[("svc/config.py", &format!("DEBUG = False\nPORT = 80\nSLACK_TOKEN = \"{SLACK}\"\n"))],
        "add slack",
    );
    let c3 = commit(repo, &[("svc/config.py", "DEBUG = False\nPORT = 80\n")], "remove the token");
    std::fs::remove_file(repo.join("README.md")).unwrap();
    let rules = Ruleset::builtin();

    // the tree is clean now
    let tree = secrets::scan_paths(&rules, &[repo.to_owned()], &Options::default(), &NoProgress).unwrap();
    assert!(tree.findings.is_empty(), "{}", tree.text());

    let history = secrets::scan_git(&rules, repo, None, &Options::default(), &NoProgress).unwrap();
    assert_eq!(places(&history), [("svc/config.py".into(), 3, "slack-token".into(), c2.clone())]);
    assert_eq!(history.findings[0].excerpt, "SLACK_TOKEN = \"xoxb****\"");
    assert_eq!(history.stats["commits"], 3);
    assert!(history.text().contains(&format!("(commit {})", &c2[..12])));

    // paths are relative to the PATH given, also inside a repository
    let sub = secrets::scan_git(&rules, &repo.join("svc"), None, &Options::default(), &NoProgress).unwrap();
    assert_eq!(places(&sub), [("config.py".into(), 3, "slack-token".into(), c2.clone())]);

    // --since: only commits after the revision
    let since_c1 = secrets::scan_git(&rules, repo, Some(&c1), &Options::default(), &NoProgress).unwrap();
    assert_eq!(since_c1.findings.len(), 1);
    let since_c2 = secrets::scan_git(&rules, repo, Some(&c2), &Options::default(), &NoProgress).unwrap();
    assert!(since_c2.findings.is_empty());
    assert_eq!(since_c2.stats["commits"], 1);

    // a later commit on another branch is read too, and a baseline from the first scan accepts the old one
    git(repo, &["checkout", "-q", "-b", "feature"]);
    let c4 = commit(repo, &[("svc/aws.ini", &format!("[default]\n\n\naws_access_key_id = {AWS}\n"))], "aws");
    git(repo, &["checkout", "-q", "main"]);
    let options = Options {
        baseline: Baseline::parse(Path::new("b.json"), &history.json()).unwrap(),
        ..Options::default()
    };
    let again = secrets::scan_git(&rules, repo, None, &options, &NoProgress).unwrap();
    assert_eq!(places(&again), [("svc/aws.ini".into(), 4, "aws-access-key-id".into(), c4)]);
    assert_eq!(again.baselined, 1);
    let _ = c3;
}

#[test]
fn bad_revisions_and_non_repositories_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let rules = Ruleset::builtin();
    let err = secrets::scan_git(&rules, dir.path(), None, &Options::default(), &NoProgress)
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with(&format!(
            "git in {}: `git log` failed: fatal: not a git repository",
            dir.path().display()
        )),
        "{err}"
    );
    git(dir.path(), &["init", "-q", "-b", "main"]);
    commit(dir.path(), &[("a", "a\n")], "a");
    let err = secrets::scan_git(&rules, dir.path(), Some("v9.9"), &Options::default(), &NoProgress)
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        format!(
            "git in {}: unknown revision `v9.9` (give a commit, a tag or a branch)",
            dir.path().display()
        )
    );
}

/// A secret added while resolving a merge conflict (in neither parent) is found, with the merge commit;
/// a file whose name holds a space keeps its plain name (git ends such a name with a TAB).
#[test]
fn a_secret_added_in_a_merge_and_names_with_spaces_are_found() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path();
    git(repo, &["init", "-q", "-b", "main"]);
    commit(repo, &[("settings.py", "TOKEN = None\n")], "start");
    git(repo, &["checkout", "-q", "-b", "feature"]);
    commit(repo, &[("settings.py", "TOKEN = \"from-feature\"\n")], "feature");
    git(repo, &["checkout", "-q", "main"]);
    commit(repo, &[("settings.py", "TOKEN = \"from-main\"\n")], "main");
    // The merge conflicts; its resolution brings a secret neither side had.
    let merged = Command::new("git")
        .args(["-c", "user.name=Test", "-c", "user.email=test@example.com", "merge", "-q", "feature"])
        .current_dir(repo)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("HOME", repo)
        .output()
        .unwrap();
    assert!(!merged.status.success(), "the merge conflicts");
    let merge = commit(repo, &[("settings.py", &format!("SLACK_TOKEN = \"{SLACK}\"\n"))], "merge feature");
    let spaced = commit(repo, &[("my config.ini", &format!("aws_access_key_id = {AWS}\n"))], "spaced");
    let history =
        secrets::scan_git(&Ruleset::builtin(), repo, None, &Options::default(), &NoProgress).unwrap();
    let mut found = places(&history);
    found.sort();
    assert_eq!(
        found,
        [
            ("my config.ini".into(), 1, "aws-access-key-id".into(), spaced),
            ("settings.py".into(), 1, "slack-token".into(), merge),
        ]
    );
}
