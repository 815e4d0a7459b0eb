use expect_test::expect_file;
use prodready_metrics_alerts::slo::{self, SloKind, SloSpec};
use prodready_metrics_alerts::{lint, promtool};

use crate::write;

fn spec(name: &str, kind: SloKind, objective: f64) -> SloSpec {
    SloSpec {
        service: "api".into(),
        name: name.into(),
        objective,
        kind,
        window: "30d".into(),
        threshold_seconds: (kind == SloKind::Latency).then_some(0.5),
        errors: None,
        total: None,
        labels: [("team".to_owned(), "platform".to_owned())].into(),
    }
}

#[test]
fn sample_specs_match_the_golden_file_and_pass_promtool() {
    let specs = [
        spec("requests-availability", SloKind::Availability, 99.9),
        spec("requests-latency", SloKind::Latency, 99.0),
    ];
    let file = slo::rule_file(&specs, "docs/runbook.md").unwrap();
    let yaml = file.to_yaml("SLO burn-rate rules");
    expect_file!["golden/slo.rules.yml"].assert_eq(&yaml);

    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "slo.rules.yml", &yaml);
    let outcome = promtool::check_rules(&crate::promtool(), &[&path]).unwrap();
    assert!(outcome.ok, "{}", outcome.output);
    assert_eq!(lint::lint(&file, std::time::Duration::from_secs(15)), vec![]);
}

#[test]
fn windows_factors_and_names_are_sloths() {
    let file = slo::rule_file(&[spec("requests-availability", SloKind::Availability, 99.9)], "r").unwrap();
    let names: Vec<&str> = file.groups.iter().map(|g| g.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "sloth-slo-sli-recordings-api-requests-availability",
            "sloth-slo-meta-recordings-api-requests-availability",
            "sloth-slo-alerts-api-requests-availability"
        ]
    );
    let windows: Vec<&str> = file.groups[0].rules.iter().map(|r| r.labels["sloth_window"].as_str()).collect();
    assert_eq!(windows, ["5m", "30m", "1h", "2h", "6h", "1d", "3d", "30d"]);
    for rule in &file.groups[0].rules {
        assert_eq!(
            rule.record.as_deref(),
            Some(format!("slo:sli_error:ratio_rate{}", rule.labels["sloth_window"]).as_str())
        );
        assert_eq!(rule.labels["sloth_id"], "api-requests-availability");
        assert_eq!(rule.labels["sloth_service"], "api");
        assert_eq!(rule.labels["sloth_slo"], "requests-availability");
    }
    let alerts = &file.groups[2].rules;
    let (page, ticket) = (&alerts[0], &alerts[1]);
    assert_eq!(page.labels["sloth_severity"], "page");
    assert_eq!(ticket.labels["sloth_severity"], "ticket");
    for (short, long, factor) in [("5m", "1h", "14.4"), ("30m", "6h", "6")] {
        assert!(
            page.expr.contains(&format!("ratio_rate{short}{{"))
                && page.expr.contains(&format!("ratio_rate{long}{{"))
        );
        assert!(page.expr.contains(&format!("> ({factor} * 0.001))")), "{}", page.expr);
    }
    for (short, long, factor) in [("2h", "1d", "3"), ("6h", "3d", "1")] {
        assert!(
            ticket.expr.contains(&format!("ratio_rate{short}{{"))
                && ticket.expr.contains(&format!("ratio_rate{long}{{"))
        );
        assert!(ticket.expr.contains(&format!("> ({factor} * 0.001))")), "{}", ticket.expr);
    }
    // No float noise: 1 - 0.999 is 0.001.
    assert_eq!(slo::ratio((100.0 - 99.9) / 100.0), "0.001");
    assert_eq!(slo::ratio(99.95 / 100.0), "0.9995");
}

#[test]
fn latency_thresholds_are_spelled_like_bucket_labels() {
    let mut whole = spec("slow", SloKind::Latency, 99.0);
    whole.threshold_seconds = Some(1.0);
    let file = slo::rule_file(&[whole], "r").unwrap();
    assert!(file.groups[0].rules[0].expr.contains(r#"le="1.0""#), "{}", file.groups[0].rules[0].expr);
}

#[test]
fn bad_specs_are_refused() {
    let mut bad = spec("x", SloKind::Availability, 100.0);
    assert_eq!(
        slo::rule_file(&[bad.clone()], "r").unwrap_err().to_string(),
        "SLO `api-x`: objective 100 must be a percentage between 0 and 100, e.g. 99.9"
    );
    bad.objective = 99.0;
    bad.window = "7d".into();
    assert!(slo::rule_file(&[bad], "r").unwrap_err().to_string().contains("window 7d is not supported"));
    let mut latency = spec("l", SloKind::Latency, 99.0);
    latency.threshold_seconds = None;
    assert!(slo::rule_file(&[latency], "r").unwrap_err().to_string().contains("threshold_seconds"));
    let mut custom = spec("c", SloKind::Custom, 99.0);
    custom.errors = Some("sum(rate(x[5m]))".into());
    custom.total = Some("sum(rate(y[5m]))".into());
    assert!(slo::rule_file(&[custom], "r").unwrap_err().to_string().contains("{{.window}}"));
    let twice = [spec("a", SloKind::Availability, 99.0), spec("a", SloKind::Availability, 99.5)];
    assert!(slo::rule_file(&twice, "r").unwrap_err().to_string().contains("declared twice"));
}
