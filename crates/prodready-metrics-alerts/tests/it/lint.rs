use std::time::Duration;

use expect_test::{Expect, expect};
use prodready_metrics_alerts::lint;
use prodready_metrics_alerts::rules::RuleFile;

const GOOD: &str = r#"
- alert: Good
  expr: rate(errors_total[5m]) > 1
  for: 5m
  labels: {severity: warning}
  annotations: {summary: s, description: "{{ $labels.job }} is {{ $value }}", runbook_url: r}
"#;

/// Lints one group holding GOOD plus `rules` and renders the problems.
fn check(rules: &str, expected: Expect) {
    let yaml = format!("groups:\n- name: g\n  rules:\n{}{}", indent(GOOD), indent(rules));
    let file = RuleFile::from_yaml(&yaml).unwrap_or_else(|e| panic!("{e}\n{yaml}"));
    let problems: Vec<String> =
        lint::lint(&file, Duration::from_secs(15)).iter().map(ToString::to_string).collect();
    expected.assert_eq(&problems.join("\n"));
}

fn indent(text: &str) -> String {
    text.lines().filter(|l| !l.is_empty()).map(|l| format!("  {l}\n")).collect()
}

const TAIL: &str =
    "  for: 5m\n  labels: {severity: warning}\n  annotations: {summary: s, description: d, runbook_url: r}\n";

#[test]
fn a_good_rule_passes() {
    check("", expect![""]);
}

#[test]
fn an_alert_without_a_comparison() {
    check(
        &format!("- alert: NoCmp\n  expr: sum(rate(errors_total[5m]))\n{TAIL}"),
        expect![
            "g / NoCmp: comparison: the alert expression has no comparison, so it fires for every series it returns; add a condition such as `> 0.05`"
        ],
    );
    check(&format!("- alert: Absent\n  expr: absent(up{{job=\"api\"}})\n{TAIL}"), expect![""]);
}

#[test]
fn a_rate_range_under_four_scrapes() {
    check(
        &format!("- alert: Short\n  expr: rate(errors_total[30s]) > 1\n{TAIL}"),
        expect![
            "g / Short: rate-range: rate() over 30s spans fewer than 4 scrapes (15s each); use at least 1m"
        ],
    );
}

#[test]
fn a_missing_for() {
    check(
        "- alert: NoFor\n  expr: up == 0\n  labels: {severity: critical}\n  annotations: {summary: s, description: d, runbook_url: r}\n",
        expect!["g / NoFor: for: no `for`: a single bad scrape pages someone; set e.g. `for: 5m`"],
    );
}

#[test]
fn missing_severity_and_runbook() {
    check(
        "- alert: Bare\n  expr: up == 0\n  for: 1m\n  annotations: {summary: s, description: d}\n",
        expect![[r#"
            g / Bare: severity: no `severity` label: Alertmanager cannot route it
            g / Bare: annotations: no `runbook_url` annotation"#]],
    );
}

#[test]
fn duplicate_rules() {
    check(
        GOOD,
        expect![
            "g / Good: duplicate: the same rule (name, labels and expression) appears twice in this group"
        ],
    );
}

#[test]
fn template_errors() {
    check(
        "- alert: Tpl\n  expr: up == 0\n  for: 1m\n  labels: {severity: warning}\n  annotations: {summary: \"{{ $label.job }}\", description: \"{{ $labels.job \", runbook_url: r}\n",
        expect![[r#"
            g / Tpl: template: `description`: `{{` is never closed with `}}`
            g / Tpl: template: `summary`: unknown variable `$label` (Prometheus knows $labels, $value, $externalLabels, $externalURL)"#]],
    );
}

#[test]
fn labels_that_change_with_the_value() {
    check(
        "- alert: Flappy\n  expr: up == 0\n  for: 1m\n  labels: {severity: warning, current: \"{{ $value }}\"}\n  annotations: {summary: s, description: d, runbook_url: r}\n",
        expect![
            "g / Flappy: label-value: label `current` changes with the value: every change makes a new alert; move it to an annotation"
        ],
    );
}

#[test]
fn an_expression_that_does_not_parse() {
    check(
        &format!("- alert: Broken\n  expr: rate(errors_total[5m] > 1\n{TAIL}"),
        expect!["g / Broken: promql: the expression does not parse: unclosed left parenthesis"],
    );
}

/// Hostile files are refused at once with the line and the bound; real nesting still parses.
#[test]
fn files_too_deep_or_too_large_are_refused_before_parsing() {
    let refused = |text: &str| RuleFile::from_yaml(text).err().map(|e| e.to_string()).unwrap_or_default();
    let n = 50_000;
    let flow = format!("groups: {}{}\n", "[".repeat(n), "]".repeat(n));
    assert_eq!(refused(&flow), "line 1: nested deeper than 64 levels; a rule file needs fewer than 10");
    let dashes = format!("groups:\n{}x\n", "- ".repeat(n));
    assert!(refused(&dashes).starts_with("line 2: nested deeper"), "{}", refused(&dashes));
    let block: String = std::iter::once("groups:\n".to_owned())
        .chain((1..2_000).map(|i| format!("{}a{i}:\n", " ".repeat(i))))
        .collect();
    assert!(refused(&block).starts_with("line 514: nested deeper"), "{}", refused(&block));
    let large = format!("groups: []\n{}", "# padding\n".repeat(2 << 20));
    assert!(refused(&large).contains("is larger than the 16 MiB a rule file may be"), "{}", refused(&large));
    // Brackets inside quotes, comments and PromQL do not count as nesting.
    let fine = format!(
        "groups:\n- name: g\n  rules:\n{}  - record: r\n    expr: 'sum(rate(x{{a=\"[[[[\"}}[5m:1m]))' # {}\n",
        indent(GOOD),
        "[".repeat(100)
    );
    assert!(RuleFile::from_yaml(&fine).is_ok(), "{}", refused(&fine));
}
