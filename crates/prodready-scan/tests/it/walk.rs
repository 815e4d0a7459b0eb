//! Tree scans: what is read, what is skipped and counted, where findings point, what they show.

use std::path::{Path, PathBuf};

use prodready_scan::Report;
use prodready_scan::secrets::{self, Baseline, NoProgress, Options, Ruleset};

const GITHUB: &str = "ghp_R8a2kQ0wLm3ZpX7vN1cT5yB9dF4hJ6sE2uGq";
const STRIPE: &str = "sk_live_51HvQ2mK8pZr4Tx7Yb9Nc3Wd6Fg";

fn scan(paths: &[PathBuf], options: &Options) -> Report {
    secrets::scan_paths(&Ruleset::builtin(), paths, options, &NoProgress).expect("scan")
}

/// `(path, line, column, rule)` of every finding.
fn places(report: &Report) -> Vec<(String, u32, u32, String)> {
    report.findings.iter().map(|f| (f.path.clone(), f.line, f.column, f.rule.clone())).collect()
}

fn tree(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    crate::write_tree(dir.path(), files);
    dir
}

#[test]
fn gitignore_hidden_files_binary_and_huge_files() {
    let big = format!("{}\nTOKEN={GITHUB}\n", "x".repeat(2048));
    let binary = format!("\0\x01PNG{GITHUB}");
    let dir = tree(&[
        (".gitignore", "ignored/\n*.log\n"),
        ("ignored/a.env", &format!("T={GITHUB}\n")),
        ("debug.log", &format!("T={GITHUB}\n")),
        (".env", &format!("# deploy\nGITHUB_TOKEN={GITHUB}\n")),
        ("src/app.py", &format!("import os\n\nstripe.api_key = \"{STRIPE}\"\n")),
        ("big.txt", &big),
        ("logo.png", &binary),
        (".git/config", &format!("[remote]\n  url = https://x:{GITHUB}@github.com/a/b\n")),
    ]);
    let report = scan(&[dir.path().to_owned()], &Options { max_file_size: 1024, ..Options::default() });
    assert_eq!(
        places(&report),
        [
            (".env".to_owned(), 2, 14, "github-pat".to_owned()),
            ("src/app.py".to_owned(), 3, 19, "stripe-key".to_owned()),
        ]
    );
    let stats: Vec<(&str, u64)> = report.stats.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    assert_eq!(
        stats,
        [
            ("bytes", 144),
            ("files", 3),
            ("skipped_binary", 1),
            ("skipped_large", 1),
            ("skipped_path", 0),
            ("unreadable", 0)
        ]
    );
}

#[test]
fn paths_are_relative_to_the_path_given() {
    let dir = tree(&[("svc/config/.env", &format!("GITHUB_TOKEN={GITHUB}\n"))]);
    let at = |p: &Path| scan(&[p.to_owned()], &Options::default()).findings[0].path.clone();
    assert_eq!(at(dir.path()), "svc/config/.env");
    assert_eq!(at(&dir.path().join("svc")), "config/.env");
    assert_eq!(at(&dir.path().join("svc/config/.env")), ".env");
    // several PATHs: each finding names its root
    let both = scan(&[dir.path().join("svc"), dir.path().join("svc/config")], &Options::default());
    let roots: Vec<(String, String)> =
        both.findings.iter().map(|f| (f.path.clone(), f.properties["root"].clone())).collect();
    let svc = dir.path().join("svc").display().to_string();
    let config = dir.path().join("svc/config").display().to_string();
    assert_eq!(roots, [(".env".to_owned(), config), ("config/.env".to_owned(), svc)]);
}

#[test]
fn a_missing_path_is_one_clear_error() {
    let err = secrets::scan_paths(
        &Ruleset::builtin(),
        &["/nonexistent/tree".into()],
        &Options::default(),
        &NoProgress,
    )
    .unwrap_err();
    assert_eq!(err.to_string(), "/nonexistent/tree: No such file or directory (os error 2)");
}

#[test]
fn inline_allow_silences_its_line_only() {
    let dir = tree(&[(
        "settings.py",
        &format!("TEST_TOKEN = \"{GITHUB}\"  # prodready:allow (revoked fixture)\nREAL = \"{GITHUB}\"\n"),
    )]);
    let report = scan(&[dir.path().to_owned()], &Options::default());
    assert_eq!(places(&report), [("settings.py".to_owned(), 2, 9, "github-pat".to_owned())]);
    assert_eq!(report.allowed, 1);
}

#[test]
fn excerpts_never_show_a_secret() {
    let line = format!("export GITHUB_TOKEN={GITHUB} STRIPE_KEY={STRIPE} # two on one line\n");
    let dir = tree(&[("deploy.sh", &line)]);
    let report = scan(&[dir.path().to_owned()], &Options::default());
    let excerpts: Vec<&str> = report.findings.iter().map(|f| f.excerpt.as_str()).collect();
    assert_eq!(
        excerpts,
        [
            "export GITHUB_TOKEN=ghp_**** STRIPE_KEY=sk_l**** # two on one line",
            "export GITHUB_TOKEN=ghp_**** STRIPE_KEY=sk_l**** # two on one line",
        ]
    );
    for format in prodready_scan::Format::ALL {
        let out = report.render(format);
        assert!(!out.contains(GITHUB) && !out.contains(STRIPE), "{format:?} shows a secret:\n{out}");
        assert!(!out.contains(&GITHUB[..12]), "{format:?} shows most of a secret");
    }
}

#[test]
fn a_private_key_is_one_finding_on_its_begin_line() {
    let body =
        format!("MIIE{}\n", crate::corpus::generate::pem_body(&mut crate::corpus::generate::Rng::new(3)));
    let pem = format!("# deploy key\n-----BEGIN RSA PRIVATE KEY-----\n{body}-----END RSA PRIVATE KEY-----\n");
    let json = format!(
        "{{\"private_key\": \"-----BEGIN PRIVATE KEY-----\\n{}\\n-----END PRIVATE KEY-----\\n\"}}\n",
        body.replace('\n', "\\n")
    );
    let dir = tree(&[("id_rsa", &pem), ("sa.json", &json)]);
    let report = scan(&[dir.path().to_owned()], &Options::default());
    let found: Vec<(String, u32, u32, String, String)> = report
        .findings
        .iter()
        .map(|f| (f.path.clone(), f.line, f.column, f.rule.clone(), f.excerpt.clone()))
        .collect();
    assert_eq!(
        found,
        [
            ("id_rsa".into(), 2, 1, "private-key".into(), "-----BEGIN RSA PRIVATE KEY-----".into()),
            (
                "sa.json".into(),
                1,
                18,
                "private-key".into(),
                "{\"private_key\": \"-----BEGIN PRIVATE KEY-----\\nMIIE****-----END PRIVATE KEY-----\\n\"}"
                    .into()
            ),
        ]
    );
}

#[test]
fn baseline_accepts_exactly_its_findings_after_lines_move() {
    let other = "sk_live_9QzT4mW2xK7pL1vB8nR3cY6dH0";
    let dir = tree(&[("app/.env", &format!("GITHUB_TOKEN={GITHUB}\nSTRIPE_KEY={STRIPE}\n"))]);
    let first = scan(&[dir.path().to_owned()], &Options::default());
    assert_eq!(first.findings.len(), 2);
    // accept the GitHub token only, through a JSON report like `--format json --output` writes
    let mut accepted = first.clone();
    accepted.findings.retain(|f| f.rule == "github-pat");
    let baseline = Baseline::parse(Path::new("baseline.json"), &accepted.json()).expect("baseline");

    // the file changes around them: lines inserted above, the secrets swapped, one more added
    crate::write_tree(
        dir.path(),
        &[(
            "app/.env",
            &format!("# moved\n\nSTRIPE_KEY={STRIPE}\nX=1\n   GITHUB_TOKEN={GITHUB}\nNEW_KEY={other}\n"),
        )],
    );
    let options = Options { baseline, ..Options::default() };
    let second = scan(&[dir.path().to_owned()], &options);
    assert_eq!(
        places(&second),
        [
            ("app/.env".to_owned(), 3, 12, "stripe-key".to_owned()),
            ("app/.env".to_owned(), 6, 9, "stripe-key".to_owned())
        ]
    );
    assert_eq!(second.baselined, 1);
    // the same secret under another path is a new finding
    crate::write_tree(dir.path(), &[("other/.env", &format!("GITHUB_TOKEN={GITHUB}\n"))]);
    let third = scan(&[dir.path().to_owned()], &options);
    assert!(third.findings.iter().any(|f| f.path == "other/.env" && f.rule == "github-pat"));
}

#[test]
fn bad_baselines_are_named() {
    let check = |text: &str, expected: &str| {
        let err = Baseline::parse(Path::new("b.json"), text).unwrap_err();
        assert_eq!(err.to_string(), expected);
    };
    check("{", "baseline b.json: line 1: not JSON (EOF while parsing an object at line 1 column 1)");
    check("{\"findings\": [{\"rule\": \"x\"}]}", "baseline b.json: findings[0] has no `fingerprint` string");
    check("[]", "baseline b.json: neither a JSON report (`findings`) nor a SARIF log (`runs`)");
}
