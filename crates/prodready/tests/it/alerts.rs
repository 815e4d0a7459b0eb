use prodready_test_support::peer_bin;

use crate::{prodready, stderr, stdout};

#[test]
fn generate_then_check_then_test_against_real_promtool() {
    let dir = tempfile::tempdir().unwrap();
    let promtool = peer_bin("promtool");
    let promtool = promtool.to_str().unwrap();
    let generate = prodready(dir.path(), &[], &["alerts", "generate", "--out", "out"]);
    assert_eq!(generate.status.code(), Some(0), "{}", stderr(&generate));
    assert!(stdout(&generate).contains("wrote out/alertmanager/alertmanager.yml"), "{}", stdout(&generate));

    let check = prodready(
        dir.path(),
        &[],
        &["alerts", "check", "out/prometheus/rules/prodready.rules.yml", "--promtool", promtool],
    );
    assert_eq!(check.status.code(), Some(0), "{}{}", stdout(&check), stderr(&check));
    assert!(
        stdout(&check).contains("promtool check rules --lint=all --lint-fatal: ok"),
        "{}",
        stdout(&check)
    );

    // The generated unit tests pass when promtool runs them from where they were written.
    let tests = std::process::Command::new(promtool)
        .args(["test", "rules", "out/prometheus/tests/prodready.test.yml"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(tests.status.success(), "{}", String::from_utf8_lossy(&tests.stdout));

    let test = prodready(dir.path(), &[], &["alerts", "test", "--promtool", promtool]);
    assert_eq!(test.status.code(), Some(0), "{}{}", stdout(&test), stderr(&test));
}

#[test]
fn check_names_each_problem_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("bad.yml"),
        "groups:\n- name: g\n  rules:\n  - alert: NoCmp\n    expr: rate(errors_total[30s])\n",
    )
    .unwrap();
    let out = prodready(
        dir.path(),
        &[],
        &["alerts", "check", "bad.yml", "--promtool", peer_bin("promtool").to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    for problem in ["comparison:", "rate-range:", "for:", "severity:", "annotations: no `runbook_url`"] {
        assert!(text.contains(&format!("bad.yml: g / NoCmp: {problem}")), "{problem}: {text}");
    }
    let missing = prodready(dir.path(), &[], &["alerts", "check", "nope.yml"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(stderr(&missing).contains("cannot read nope.yml"), "{}", stderr(&missing));
}

#[test]
fn generate_checks_the_local_runbook_has_a_section_per_alert() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("docs")).unwrap();
    std::fs::write(dir.path().join("docs/runbook.md"), "# Runbook\n## Alerts\n### InstanceDown\n").unwrap();
    let out = prodready(dir.path(), &[], &["alerts", "generate", "--out", "out"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("docs/runbook.md: no runbook section for HighErrorRate, HighLatency"),
        "{}",
        stderr(&out)
    );
    // The project's own runbook covers every alert.
    let ours =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/runbook.md")).unwrap();
    std::fs::write(dir.path().join("docs/runbook.md"), ours).unwrap();
    assert_eq!(prodready(dir.path(), &[], &["alerts", "generate", "--out", "out"]).status.code(), Some(0));
}
