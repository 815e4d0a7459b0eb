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
            ["service-red.json", "backups.json", "slo-burn.json", "postgres.json"]
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
                    .replace("$server", ".*")
                    .replace("$service", ".*");
                promql_parser::parser::parse(&concrete).unwrap_or_else(|e| panic!("{name}: {expr}: {e}"));
            }
            assert_eq!(dashboard["uid"].as_str().map(|u| u.starts_with("prodready-")), Some(true));
        }
    }

    /// The database dashboard reads only what `prodready db exporter` emits, named by `names::PG_*`.
    #[test]
    fn the_postgres_dashboard_names_only_metrics_our_exporter_emits() {
        let dashboards = grafana::dashboards();
        let (_, postgres) = dashboards.iter().find(|(name, _)| *name == "postgres.json").unwrap();
        let (constants, export_rs) = crate::pack::pg_constants();
        let exprs = grafana::expressions(postgres);
        assert!(exprs.len() >= 12, "{exprs:?}");
        for expr in exprs {
            let concrete =
                expr.replace("$__rate_interval", "5m").replace("$server", ".*").replace("$database", ".*");
            for metric in crate::pack::metric_names(&concrete) {
                let constant = constants
                    .get(&metric)
                    .unwrap_or_else(|| panic!("{expr}: {metric} is not a names::PG_* constant"));
                assert!(
                    export_rs.contains(&format!("names::{constant}")),
                    "{expr}: the exporter does not emit {metric}"
                );
            }
        }
        for title in [
            "Connections",
            "Cache hit ratio",
            "Replication lag",
            "WAL retained",
            "Top statements by execution time",
        ] {
            assert!(
                postgres["panels"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|p| p["title"].as_str().unwrap().contains(title)),
                "{title}"
            );
        }
    }
}
