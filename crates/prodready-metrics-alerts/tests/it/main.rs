//! Rule generation and linting against the real promtool and amtool.

mod alertmanager;
mod e2e;
mod lint;
mod pack;
mod slo;

use std::path::{Path, PathBuf};

/// Writes `text` to `dir/name` and returns the path.
pub fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

pub fn promtool() -> PathBuf {
    prodready_test_support::peer_bin("promtool")
}

mod grafana {
    use prodready_metrics_alerts::grafana;

    #[test]
    fn every_dashboard_query_parses_as_promql() {
        let dashboards = grafana::dashboards();
        assert_eq!(
            dashboards.iter().map(|(name, _)| *name).collect::<Vec<_>>(),
            ["service-red.json", "backups.json", "slo-burn.json"]
        );
        for (name, dashboard) in &dashboards {
            let exprs = grafana::expressions(dashboard);
            assert!(exprs.len() >= 4, "{name}");
            for expr in exprs {
                // Grafana substitutes these before Prometheus sees the query.
                let concrete = expr
                    .replace("$__rate_interval", "5m")
                    .replace("$job", ".*")
                    .replace("$database", ".*")
                    .replace("$service", ".*");
                promql_parser::parser::parse(&concrete).unwrap_or_else(|e| panic!("{name}: {expr}: {e}"));
            }
            assert_eq!(dashboard["uid"].as_str().map(|u| u.starts_with("prodready-")), Some(true));
        }
    }
}
