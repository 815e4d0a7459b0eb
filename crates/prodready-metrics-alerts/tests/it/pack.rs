use prodready_metrics_alerts::pack::{self, PackOptions};
use prodready_metrics_alerts::{lint, promtool};

use crate::write;

#[test]
fn the_pack_passes_promtool_lint_and_our_linter() {
    let dir = tempfile::tempdir().unwrap();
    let options = PackOptions::default();
    let file = pack::rule_file(&options);
    let path = write(dir.path(), "prodready.rules.yml", &file.to_yaml("built-in pack"));
    let outcome = promtool::check_rules(&crate::promtool(), &[&path]).unwrap();
    assert!(outcome.ok, "{}", outcome.output);
    assert!(outcome.output.contains("SUCCESS: 29 rules found"), "{}", outcome.output);
    assert_eq!(lint::lint(&file, options.scrape_interval), vec![]);
}

#[test]
fn every_alert_carries_severity_summary_description_and_runbook() {
    let file = pack::rule_file(&PackOptions {
        runbook_base_url: "https://wiki/runbook".into(),
        ..PackOptions::default()
    });
    let names: Vec<&str> = file.alerts().map(|a| a.name()).collect();
    assert_eq!(
        names,
        [
            "InstanceDown",
            "HighErrorRate",
            "HighLatency",
            "HighCpuSaturation",
            "FileDescriptorsExhausted",
            "PostgresDown",
            "PostgresTooManyConnections",
            "PostgresLongRunningTransaction",
            "PostgresIdleInTransaction",
            "PostgresDeadlocks",
            "PostgresReplicationLag",
            "PostgresReplicationSlotInactive",
            "PostgresLowCacheHitRatio",
            "PostgresQueryMeanTimeJumped",
            "BackupFailed",
            "BackupCorrupt",
            "BackupStale",
            "BackupNotVerified",
            "RecoveryDrillOverdue",
            "WalArchiveFailing",
            "WalArchiveLagging",
            "WalArchiveGap",
            "CertificateExpiring",
            "DiskWillFillIn4Hours",
            "LogShipperBehind",
            "LogLinesDropped",
            "ProdreadyDaemonNoLeader",
            "ProdreadyDaemonJobFailing",
            "ProdreadyDaemonJobOverdue",
        ]
    );
    for alert in file.alerts() {
        assert!(["critical", "warning"].contains(&alert.labels["severity"].as_str()), "{}", alert.name());
        assert!(!alert.annotations["summary"].is_empty() && !alert.annotations["description"].is_empty());
        assert_eq!(
            alert.annotations["runbook_url"],
            format!("https://wiki/runbook#{}", alert.name().to_lowercase())
        );
    }
}

#[test]
fn each_alert_has_a_firing_and_a_quiet_case_and_promtool_passes_them() {
    let options = PackOptions::default();
    for alert in pack::alerts(&options) {
        assert!(alert.fires.fires_with.is_some(), "{} needs a case where it fires", alert.name);
        assert!(alert.quiet.fires_with.is_none(), "{} needs a case where it stays quiet", alert.name);
    }
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "prodready.rules.yml", &pack::rule_file(&options).to_yaml("pack"));
    let tests = write(dir.path(), "prodready.test.yml", &pack::unit_tests(&options, "prodready.rules.yml"));
    let outcome = promtool::test_rules(&crate::promtool(), &[&tests]).unwrap();
    assert!(outcome.ok, "{}", outcome.output);
    assert!(outcome.output.contains("SUCCESS"), "{}", outcome.output);
}

#[test]
fn the_unit_tests_catch_a_broken_rule() {
    let options = PackOptions::default();
    let mut file = pack::rule_file(&options);
    let rule = file.groups[0].rules.iter_mut().find(|r| r.name() == "BackupStale").unwrap();
    rule.expr = rule.expr.replace("93600", "9360000");
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "prodready.rules.yml", &file.to_yaml("pack"));
    let tests = write(dir.path(), "prodready.test.yml", &pack::unit_tests(&options, "prodready.rules.yml"));
    let outcome = promtool::test_rules(&crate::promtool(), &[&tests]).unwrap();
    assert!(!outcome.ok);
    assert!(outcome.output.contains("BackupStale"), "{}", outcome.output);
}

#[test]
fn rate_ranges_follow_the_scrape_interval() {
    assert_eq!(pack::rate_range(std::time::Duration::from_secs(15)), "5m");
    assert_eq!(pack::rate_range(std::time::Duration::from_secs(120)), "8m");
    let slow = PackOptions { scrape_interval: std::time::Duration::from_secs(120), ..PackOptions::default() };
    let file = pack::rule_file(&slow);
    assert!(file.alerts().any(|a| a.expr.contains("[8m]")));
    assert_eq!(lint::lint(&file, slow.scrape_interval), vec![]);
}

#[test]
fn every_alert_has_a_section_in_the_runbook() {
    let runbook =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/runbook.md")).unwrap();
    let headings: Vec<&str> = runbook.lines().filter_map(|l| l.strip_prefix("### ")).map(str::trim).collect();
    let slo = prodready_metrics_alerts::slo::rule_file(
        &[prodready_metrics_alerts::slo::SloSpec {
            service: "api".into(),
            name: "availability".into(),
            objective: 99.9,
            kind: prodready_metrics_alerts::slo::SloKind::Availability,
            window: "30d".into(),
            threshold_seconds: None,
            errors: None,
            total: None,
            labels: Default::default(),
        }],
        "docs/runbook.md",
    )
    .unwrap();
    let pack = pack::rule_file(&PackOptions::default());
    for alert in pack.alerts().chain(slo.alerts()) {
        // The runbook_url anchor is the heading, lowercased (GitHub's anchor for a one-word heading).
        assert!(headings.contains(&alert.name()), "docs/runbook.md has no `### {}` section", alert.name());
        assert!(alert.annotations["runbook_url"].ends_with(&format!("#{}", alert.name().to_lowercase())));
    }
}

/// The daemon's replicas export one shared state, so its rules aggregate across replicas with `max`: a
/// replica that lost the lock during a failover, or that still shows an older success, must not make
/// them fire. The quiet cases prove it: with `min` instead, promtool fails them.
#[test]
fn the_daemon_rules_take_the_newest_view_across_replicas() {
    let options = PackOptions::default();
    let mut file = pack::rule_file(&options);
    for rule in &mut file.groups[0].rules {
        if ["ProdreadyDaemonNoLeader", "ProdreadyDaemonJobOverdue"].contains(&rule.name()) {
            // NoLeader groups by the scrape job, the per-job rules by `daemon_job`.
            assert!(rule.expr.contains("max by ("), "{}", rule.expr);
            rule.expr = rule.expr.replace("max by (", "min by (");
        }
    }
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "prodready.rules.yml", &file.to_yaml("pack"));
    let tests = write(dir.path(), "prodready.test.yml", &pack::unit_tests(&options, "prodready.rules.yml"));
    let outcome = promtool::test_rules(&crate::promtool(), &[&tests]).unwrap();
    assert!(!outcome.ok);
    for name in ["ProdreadyDaemonNoLeader", "ProdreadyDaemonJobOverdue"] {
        assert!(outcome.output.contains(name), "{name}: {}", outcome.output);
    }
    assert!(!outcome.output.contains("ProdreadyDaemonJobFailing"), "{}", outcome.output);
}

/// The metric names of an expression (every vector and range selector).
pub(crate) fn metric_names(expr: &str) -> Vec<String> {
    use promql_parser::parser::{self, Expr};
    fn walk(expr: &Expr, out: &mut Vec<String>) {
        match expr {
            Expr::VectorSelector(v) => out.extend(v.name.clone()),
            Expr::MatrixSelector(m) => out.extend(m.vs.name.clone()),
            Expr::Binary(b) => {
                walk(&b.lhs, out);
                walk(&b.rhs, out);
            }
            Expr::Paren(p) => walk(&p.expr, out),
            Expr::Aggregate(a) => {
                walk(&a.expr, out);
                if let Some(p) = &a.param {
                    walk(p, out);
                }
            }
            Expr::Unary(u) => walk(&u.expr, out),
            Expr::Subquery(s) => walk(&s.expr, out),
            Expr::Call(c) => c.args.args.iter().for_each(|a| walk(a, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(&parser::parse(expr).unwrap_or_else(|e| panic!("{expr}: {e}")), &mut out);
    out
}

/// Every `names::PG_*` constant as (value, constant name), read from names.rs, and the source of the
/// exporter (prodready-pg's monitor/export.rs), which emits a metric by naming its constant.
pub(crate) fn pg_constants() -> (std::collections::BTreeMap<String, String>, String) {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../");
    let names_rs = std::fs::read_to_string(format!("{root}prodready-metrics/src/names.rs")).unwrap();
    let export_rs = std::fs::read_to_string(format!("{root}prodready-pg/src/monitor/export.rs")).unwrap();
    // `pub const PG_X: &str = "value";` -> (value, PG_X)
    let constants: std::collections::BTreeMap<String, String> =
        regex::Regex::new(r#"pub const (PG_[A-Z0-9_]+): &str = "([a-z0-9_]+)";"#)
            .unwrap()
            .captures_iter(&names_rs)
            .map(|c| (c[2].to_owned(), c[1].to_owned()))
            .collect();
    // The reading of names.rs agrees with the constants themselves.
    assert_eq!(constants.get(prodready_metrics_alerts::names::PG_UP).map(String::as_str), Some("PG_UP"));
    assert_eq!(
        constants.get(prodready_metrics_alerts::names::PG_STATEMENT_SECONDS_TOTAL).map(String::as_str),
        Some("PG_STATEMENT_SECONDS_TOTAL")
    );
    (constants, export_rs)
}

/// The PostgreSQL rules watch what `prodready db exporter` emits, and nothing else: every metric they name
/// is the value of a `names::PG_*` constant, and the exporter (prodready-pg's monitor/export.rs) emits
/// that constant. No rule names postgres_exporter's metrics (`pg_up`, `pg_stat_activity_count`...).
#[test]
fn the_postgres_rules_name_only_metrics_our_exporter_emits() {
    let (constants, export_rs) = pg_constants();
    let alerts = pack::alerts(&PackOptions::default());
    let postgres: Vec<_> = alerts.iter().filter(|a| a.name.starts_with("Postgres")).collect();
    assert_eq!(postgres.len(), 9);
    for alert in &postgres {
        let used = metric_names(&alert.expr);
        assert!(!used.is_empty(), "{}", alert.name);
        for metric in used {
            let constant = constants
                .get(&metric)
                .unwrap_or_else(|| panic!("{}: {metric} is not a names::PG_* constant", alert.name));
            assert!(
                export_rs.contains(&format!("names::{constant}")),
                "{}: the exporter does not emit names::{constant} ({metric})",
                alert.name
            );
        }
        // The test cases feed the same metrics.
        for (selector, _) in alert.fires.series.iter().chain(&alert.quiet.series) {
            let metric = selector.split('{').next().unwrap();
            assert!(constants.contains_key(metric), "{}: test series {metric}", alert.name);
        }
    }
    for alert in &alerts {
        for metric in metric_names(&alert.expr) {
            assert!(!metric.starts_with("pg_"), "{}: {metric} is postgres_exporter's", alert.name);
        }
    }
}
