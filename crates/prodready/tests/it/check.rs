use std::path::Path;

use crate::{prodready, stderr, stdout};

const PASSING: &str = r#"
[[checklist.checks]]
id = "true"
title = "True is true"
category = "Testing"
kind = "command"
must_have = true
run = ["true"]

[[checklist.checks]]
id = "runbook"
title = "Runbook present"
category = "Documentation"
kind = "docs"
path = "runbook.md"
sections = ["Alerts"]
remediation = "Write runbook.md"
"#;

const FAILING: &str = r#"
[[checklist.checks]]
id = "false"
title = "False is true"
category = "Security"
kind = "command"
run = ["false"]
remediation = "Make false true"
"#;

fn setup(config: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("prodready.toml"), config).unwrap();
    std::fs::write(dir.path().join("runbook.md"), "# Runbook\n## Alerts\n").unwrap();
    dir
}

fn check(dir: &Path, args: &[&str]) -> std::process::Output {
    let mut all = vec!["check"];
    all.extend_from_slice(args);
    prodready(dir, &[], &all)
}

#[test]
fn with_no_configuration_the_defaults_score_the_local_machine_and_show_every_fix() {
    let dir = tempfile::tempdir().unwrap();
    let out = check(dir.path(), &[]);
    let text = stdout(&out);
    // The roadmap's must-haves gate the launch; on a fresh machine none of the platform's parts runs and
    // nobody has attested anything.
    assert_eq!(out.status.code(), Some(3), "{text}{}", stderr(&out));
    assert!(
        text.contains(
            "NOT READY: must-have checks failed: backup-fresh, log-retention, alerting, prometheus-targets, \
             coverage, runbook, incident-response, pre-launch-checklist, security-scans"
        ),
        "{text}"
    );
    for category in ["Features", "Backups", "Logging", "Monitoring", "Testing", "Documentation"] {
        assert!(text.lines().any(|l| l.starts_with(&format!("  {category} "))), "{category} row: {text}");
    }
    // Every check that is not passing is followed by its fix.
    let lines: Vec<&str> = text.lines().collect();
    let mut not_passing = 0;
    for (i, line) in lines.iter().enumerate() {
        let status = line.split_whitespace().next().unwrap_or("");
        if line.starts_with("  ")
            && ["FAIL", "ERROR", "MANUAL-PENDING", "MANUAL-EXPIRED"].contains(&status)
            && line.ends_with(')')
        {
            not_passing += 1;
            assert!(lines[i + 2].trim_start().starts_with("fix: "), "no fix after {line}:\n{text}");
        }
    }
    assert!(not_passing >= 3, "{text}");
}

#[test]
fn ready_when_every_check_passes() {
    let dir = setup(PASSING);
    let out = check(dir.path(), &[]);
    assert_eq!(out.status.code(), Some(0), "{}{}", stdout(&out), stderr(&out));
    assert!(stdout(&out).contains("READY: every must-have check passed"), "{}", stdout(&out));
}

#[test]
fn a_failed_must_have_exits_3_and_a_low_score_exits_4() {
    let dir = setup(&PASSING.replace("run = [\"true\"]", "run = [\"false\"]"));
    assert_eq!(check(dir.path(), &[]).status.code(), Some(3));

    let dir = setup(&format!("{PASSING}{FAILING}"));
    let out = check(dir.path(), &["--min-score", "9"]);
    assert_eq!(out.status.code(), Some(4), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("NOT READY: overall score 6.6 is below the minimum 9.0"),
        "{}",
        stdout(&out)
    );
    assert!(stdout(&out).contains("fix: Make false true"));
    assert_eq!(check(dir.path(), &["--min-score", "6"]).status.code(), Some(0));
    assert_eq!(check(dir.path(), &["--min-score", "11"]).status.code(), Some(2));
}

#[test]
fn json_is_one_document_with_stable_ids() {
    let dir = setup(&format!("{PASSING}{FAILING}"));
    let out = check(dir.path(), &["--json", "--min-score", "5"]);
    assert_eq!(out.status.code(), Some(0));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("stdout is one JSON document");
    assert_eq!(report["schema_version"], 1);
    let ids: Vec<&str> =
        report["results"].as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["true", "runbook", "false"]);
    assert_eq!(report["scorecard"]["verdict"], "ready");
    assert_eq!(report["scorecard"]["overall"], 6.6);
}

#[test]
fn reports_go_to_a_file_and_the_history_shows_the_trend() {
    let dir = setup(&format!("{PASSING}{FAILING}"));
    let out = check(dir.path(), &["--format", "junit", "--output", "check.xml"]);
    assert_eq!(out.status.code(), Some(4));
    assert!(stdout(&out).is_empty());
    assert!(stderr(&out).contains("wrote check.xml; NOT READY"), "{}", stderr(&out));
    let xml = std::fs::read_to_string(dir.path().join("check.xml")).unwrap();
    assert!(xml.contains("<testcase name=\"False is true\" classname=\"Security.false\""), "{xml}");

    // The first run went into the history; fix the failing check and the second run shows the change.
    std::fs::write(
        dir.path().join("prodready.toml"),
        format!("{PASSING}{}", FAILING.replace("[\"false\"]", "[\"true\"]")),
    )
    .unwrap();
    let out = check(dir.path(), &[]);
    assert_eq!(out.status.code(), Some(0));
    let text = stdout(&out);
    assert!(text.lines().any(|l| l.starts_with("  overall") && l.ends_with("was 6.6 (+3.4)")), "{text}");
    let history = dir.path().join(".local/share/prodready/check-history.jsonl");
    assert_eq!(std::fs::read_to_string(history).unwrap().lines().count(), 2);

    // --no-history and --only leave the history alone.
    assert_eq!(check(dir.path(), &["--no-history"]).status.code(), Some(0));
    assert_eq!(check(dir.path(), &["--only", "true"]).status.code(), Some(0));
    let history = dir.path().join(".local/share/prodready/check-history.jsonl");
    assert_eq!(std::fs::read_to_string(history).unwrap().lines().count(), 2);
}

#[test]
fn html_and_markdown_render() {
    let dir = setup(PASSING);
    let html = check(dir.path(), &["--format", "html"]);
    assert!(stdout(&html).starts_with("<!DOCTYPE html>"));
    let md = check(dir.path(), &["--format", "markdown"]);
    assert!(stdout(&md).starts_with("# Readiness scorecard"));
}

#[test]
fn a_bad_check_is_a_usage_error_naming_file_line_and_key() {
    let config = "# checks\n\n[[checklist.checks]]\nid = \"api\"\ntitle = \"API\"\ncategory = \"Features\"\nkind = \"http\"\n";
    let dir = setup(config);
    let out = check(dir.path(), &[]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        stderr(&out).trim(),
        "error: prodready.toml:4: checklist.checks: check `api`: url: is required for kind `http`"
    );

    let dir = setup(&format!(
        "{PASSING}[[checklist.checks]]\nid = \"x\"\ntitle = \"X\"\ncategory = \"Feature\"\nkind = \"tcp\"\n"
    ));
    let out = check(dir.path(), &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).starts_with(
            "error: prodready.toml:21:12: checklist.checks[2].category: unknown variant `Feature`"
        ),
        "{}",
        stderr(&out)
    );

    let out = check(setup(PASSING).path(), &["--only", "nope"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("--only nope: no such check; the checks are: true, runbook"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn declared_checks_replace_defaults_unless_included() {
    let dir = setup(&format!("[checklist]\ninclude_defaults = true\n{PASSING}"));
    let out = check(dir.path(), &["--json"]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let ids: Vec<&str> =
        report["results"].as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap()).collect();
    // The declared `runbook` replaces the default one of the same id.
    assert_eq!(ids.iter().filter(|id| **id == "runbook").count(), 1);
    assert!(ids.contains(&"postgres") && ids.contains(&"true"), "{ids:?}");
    let runbook = report["results"].as_array().unwrap().iter().find(|r| r["id"] == "runbook").unwrap();
    assert_eq!(runbook["title"], "Runbook present");
}

#[test]
fn a_malformed_endpoint_is_a_usage_error_naming_its_key() {
    let dir = tempfile::tempdir().unwrap();
    let out = prodready(dir.path(), &[("PRODREADY_TRACING__OTLP_ENDPOINT", "localhost:4318")], &["check"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).starts_with("error: [tracing] otlp_endpoint: check `otlp`: url:"),
        "{}",
        stderr(&out)
    );
    let out = prodready(dir.path(), &[("PRODREADY_CHECKLIST__MIN_SCORE", "70")], &["check"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out)
            .contains("PRODREADY_CHECKLIST__MIN_SCORE: checklist.min_score: 70 is not a score from 0 to 10"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn an_unwritable_history_warns_and_keeps_the_verdict() {
    let dir = setup(PASSING);
    std::fs::write(dir.path().join("blocker"), "a file where a directory should be").unwrap();
    let out =
        prodready(dir.path(), &[("PRODREADY_CHECKLIST__HISTORY_FILE", "blocker/history.jsonl")], &["check"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stderr(&out).contains("warning: cannot record this run in the history"), "{}", stderr(&out));
}

#[test]
fn checks_can_live_in_a_file_the_config_names() {
    let dir = setup("[checklist]\nfile = \"checks/launch.toml\"\n");
    std::fs::create_dir(dir.path().join("checks")).unwrap();
    std::fs::write(
        dir.path().join("checks/launch.toml"),
        PASSING.replace("[[checklist.checks]]", "[[checks]]"),
    )
    .unwrap();
    let out = check(dir.path(), &["--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["results"].as_array().unwrap().len(), 2);

    // A type error in the named file is located in that file.
    std::fs::write(dir.path().join("checks/launch.toml"), "[[checks]]\nid = \"x\"\ntitle = \"X\"\ncategory = \"Features\"\nkind = \"tcp\"\nweight = \"heavy\"\n").unwrap();
    let out = check(dir.path(), &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).starts_with("error: checks/launch.toml:6:10: checks[0].weight: invalid type"),
        "{}",
        stderr(&out)
    );

    // A check missing its keys is named with the file and line.
    std::fs::write(
        dir.path().join("checks/launch.toml"),
        "\n[[checks]]\nid = \"api\"\ntitle = \"API\"\ncategory = \"Features\"\nkind = \"http\"\n",
    )
    .unwrap();
    let out = check(dir.path(), &[]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        stderr(&out).trim(),
        "error: checks/launch.toml:3: checklist.checks: check `api`: url: is required for kind `http`"
    );

    std::fs::remove_file(dir.path().join("checks/launch.toml")).unwrap();
    let out = check(dir.path(), &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("[checklist] file = checks/launch.toml: cannot read it"),
        "{}",
        stderr(&out)
    );
}

/// On a terminal the scorecard run draws a progress bar (escape codes on stderr), also with an empty
/// `NO_COLOR` (no-color.org: only a non-empty value counts); with a non-empty `NO_COLOR` or `TERM=dumb`,
/// or when the output is not a terminal, no escape code is printed at all.
#[test]
fn escape_codes_only_on_a_terminal_without_no_color() {
    let dir = setup(PASSING);
    let script = "/usr/bin/script";
    assert!(Path::new(script).exists(), "{script} is missing; install it with `apt-get install bsdutils`");
    let on_tty = |env: &[(&str, &str)]| {
        let command = format!("'{}' check", env!("CARGO_BIN_EXE_prodready"));
        let out = std::process::Command::new(script)
            .args(["-qec", &command, "/dev/null"])
            .current_dir(dir.path())
            .env_clear()
            .envs(crate::coverage_env())
            .env("HOME", dir.path())
            .envs(env.iter().copied())
            .output()
            .unwrap();
        format!("{}{}", stdout(&out), stderr(&out))
    };
    let escapes = |text: &str| text.matches('\u{1b}').count();
    for env in [&[("TERM", "xterm")][..], &[("TERM", "xterm"), ("NO_COLOR", "")]] {
        let text = on_tty(env);
        assert!(text.contains("scorecard"), "{text}");
        assert!(escapes(&text) > 0, "no progress bar on a terminal with {env:?}:\n{text}");
    }
    for env in [[("TERM", "xterm"), ("NO_COLOR", "1")], [("TERM", "dumb"), ("NO_COLOR", "")]] {
        let text = on_tty(&env);
        assert!(text.contains("scorecard"), "{text}");
        assert_eq!(escapes(&text), 0, "{env:?}:\n{text}");
    }
    let piped = check(dir.path(), &[]);
    assert_eq!(escapes(&stdout(&piped)) + escapes(&stderr(&piped)), 0);
}

/// The acceptance of the default scorecard: with the platform's parts running (PostgreSQL, a verified
/// backup, Loki with 30-day retention, Prometheus, Alertmanager routing criticals to email and Slack, an
/// OTLP collector), the documents written and the attestations made, the defaults pass and exit 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_platform_running_and_attestations_made_the_defaults_pass() {
    use prodready_metrics_alerts::alertmanager::{self, AlertmanagerOptions, EmailOptions};
    use prodready_test_support::{Alertmanager, LokiReceiver, Oteltap, Prometheus, TestDb};

    let db = TestDb::create().await;
    db.connect()
        .await
        .batch_execute("CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1)")
        .await
        .unwrap();
    let loki = LokiReceiver::start();
    let prometheus = Prometheus::self_scraping();
    let oteltap = Oteltap::start();
    let am = Alertmanager::start(&alertmanager::config(&AlertmanagerOptions {
        email: Some(EmailOptions {
            to: vec!["oncall@example.com".into()],
            from: "alerts@example.com".into(),
            smarthost: "smtp.example.com:587".into(),
            username: None,
            password_file: None,
            require_tls: true,
        }),
        ..AlertmanagerOptions::slack("/etc/prodready/slack-webhook".into(), "#alerts-critical", "#alerts")
    }));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path();
    std::fs::create_dir_all(path.join("docs")).unwrap();
    std::fs::write(
        path.join("docs/runbook.md"),
        "# Runbook\n## Alerts\n### InstanceDown\n## Backups\n## Restore\n",
    )
    .unwrap();
    std::fs::write(
        path.join("docs/incident-response.md"),
        "# Incidents\n## Severity\n## Roles\n## Communication\n## Postmortem\n",
    )
    .unwrap();
    std::fs::write(path.join("docs/deployment.md"), "# Deploying\n## Deploy\n## Rollback\n").unwrap();
    std::fs::create_dir_all(path.join("coverage")).unwrap();
    std::fs::write(path.join("coverage/lcov.info"), "SF:a.rs\nLF:100\nLH:85\nend_of_record\n").unwrap();
    std::fs::create_dir_all(path.join("scan-reports")).unwrap();
    // As `prodready scan secrets|deps --format sarif` write them: the automation id tells the scans apart.
    for scan in ["secrets", "deps"] {
        std::fs::write(
            path.join(format!("scan-reports/{scan}.sarif")),
            format!(
                r#"{{"version":"2.1.0","runs":[{{"tool":{{"driver":{{"name":"prodready"}}}},"automationDetails":{{"id":"prodready/scan/{scan}/"}},"results":[]}}]}}"#
            ),
        )
        .unwrap();
    }
    let today = {
        let days =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() / 86_400;
        prodready_checklist::Date::from_days_since_epoch(i64::try_from(days).unwrap()).to_string()
    };
    let attested = |id: &str, title: &str, category: &str| {
        format!(
            "[[checklist.checks]]\nid = \"{id}\"\ntitle = \"{title}\"\ncategory = \"{category}\"\nkind = \"manual\"\n\
             must_have = true\nattested_at = {today}\nowner = \"ops\"\nevidence = \"https://wiki.example.com/{id}\"\n\n"
        )
    };
    let store = path.join("backups");
    let config = format!(
        "[database]\nurl = \"{db}\"\n[backup]\nstore = \"{store}\"\n[logging]\nloki_url = \"{loki}\"\n\
         [alerts]\nprometheus_url = \"{prometheus}\"\nalertmanager_url = \"{am}\"\n\
         [tracing]\notlp_endpoint = \"{otlp}\"\n\
         [checklist]\ninclude_defaults = true\n\n{drill}{oncall}",
        db = db.url(),
        store = store.display(),
        loki = loki.url(),
        prometheus = prometheus.url(),
        am = am.url(),
        otlp = oteltap.endpoint(),
        drill = attested("restore-drill", "A backup was restored and checked this quarter", "Backups"),
        oncall = attested("on-call", "An on-call rota covers the launch", "Monitoring"),
    );
    std::fs::write(path.join("prodready.toml"), config).unwrap();
    let root = path.to_path_buf();
    let run = move |args: &'static [&'static str]| {
        let root = root.clone();
        tokio::task::spawn_blocking(move || prodready(&root, &[], args))
    };
    for args in [&["backup", "run"][..], &["backup", "verify"][..]] {
        let out = run(args).await.unwrap();
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
    }
    // Prometheus has scraped itself at least once.
    let targets = format!("{}/api/v1/targets", prometheus.url());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !reqwest::get(&targets).await.unwrap().text().await.unwrap().contains("\"health\":\"up\"") {
        assert!(std::time::Instant::now() < deadline, "Prometheus never scraped itself");
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    }

    let out = run(&["check", "--format", "json"]).await.unwrap();
    let report: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", stderr(&out)));
    let not_passed: Vec<String> = report["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["status"] != "pass" && c["status"] != "warn")
        .map(|c| format!("{} {}: {}", c["id"], c["status"], c["summary"]))
        .collect();
    assert_eq!(out.status.code(), Some(0), "not passing:\n{}", not_passed.join("\n"));
    let must_haves: Vec<&str> = report["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["must_have"] == true)
        .filter_map(|c| c["id"].as_str())
        .collect();
    // The roadmap's ten (the attestations declared above are must-haves of this file's own).
    for id in [
        "backup-fresh",
        "security-scans",
        "no-plaintext-secrets",
        "log-retention",
        "prometheus-targets",
        "alerting",
        "coverage",
        "runbook",
        "incident-response",
        "pre-launch-checklist",
    ] {
        assert!(must_haves.contains(&id), "{id} is not a must-have: {must_haves:?}");
    }
}
