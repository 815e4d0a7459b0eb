//! The embedded default checklist: what a small web platform on PostgreSQL needs before launch, checked
//! against the local machine. The roadmap's ten must-haves gate the launch (daily backups verified
//! weekly, secrets out of plain-text files, centralized logs kept 30 days, metrics collection, alerting by
//! email and Slack, test coverage, a runbook, incident response, security scans, the pre-launch checklist
//! completed); everything else is scored without gating. The restore drill and the on-call rota are
//! manual items: they gate through the pre-launch checklist, which passes when every attestation is
//! current. Every item says how to fix it, in the binary's terms (its commands and
//! configuration keys), which is why it lives here and not in prodready-checklist.

use std::path::PathBuf;
use std::time::Duration;

use prodready_checklist::{Category, Check, CheckSpec, CoverageReport, KindName};

/// Where the platform's parts are, as the caller's configuration says.
#[derive(Debug, Clone, PartialEq)]
pub struct Platform {
    pub database_url: String,
    /// The prodready backup store (a directory).
    pub backup_store: String,
    pub prometheus_url: String,
    /// The Alertmanager that routes the platform's alerts.
    pub alertmanager_url: String,
    /// How long logs must be kept, in days.
    pub log_retention_days: u32,
    /// Where the platform's Prometheus rule files are.
    pub rules_dir: PathBuf,
    pub loki_url: String,
    pub otlp_endpoint: String,
    /// Folder holding runbook.md, incident-response.md and deployment.md.
    pub docs_dir: PathBuf,
    pub coverage_report: PathBuf,
    /// The security scan's SARIF report.
    pub scan_report: PathBuf,
    /// The CI configuration (a file, or a directory of workflow files).
    pub ci_path: PathBuf,
    /// The platform's Grafana dashboards (JSON files).
    pub dashboards_dir: PathBuf,
    /// A second lcov report, for a frontend, held to 60%.
    pub frontend_coverage_report: Option<PathBuf>,
    pub loadtest_summary: PathBuf,
}

fn spec(id: &str, title: &str, category: Category, kind: KindName, remediation: &str) -> CheckSpec {
    CheckSpec {
        id: id.to_owned(),
        title: title.to_owned(),
        category: Some(category),
        kind: Some(kind),
        weight: 1.0,
        remediation: Some(remediation.to_owned()),
        ..CheckSpec::default()
    }
}

/// The default checks for `platform`. Fails when the platform's endpoints are malformed (the error
/// names the check, e.g. `loki` and key `url`).
pub fn checks(platform: &Platform) -> prodready_checklist::Result<Vec<Check>> {
    let docs = |file: &str| Some(platform.docs_dir.join(file));
    let sections = |list: &[&str]| Some(list.iter().map(|s| (*s).to_owned()).collect());
    let specs = vec![
        CheckSpec {
            url: Some(platform.database_url.clone()),
            weight: 3.0,
            ..spec(
                "postgres",
                "PostgreSQL answers",
                Category::Features,
                KindName::Postgres,
                "Start PostgreSQL (Debian: `pg_ctlcluster --skip-systemctl-redirect 15 main start`) or point \
                 [database] url / DATABASE_URL at it",
            )
        },
        CheckSpec {
            store: Some(platform.backup_store.clone()),
            must_have: true,
            weight: 3.0,
            ..spec(
                "backup-fresh",
                "A backup from the last day exists and one was proven by restore this week",
                Category::Backups,
                KindName::Backup,
                "Schedule `prodready backup run` daily and `prodready backup verify` at least weekly (see \
                 docs/backups.md); run both now",
            )
        },
        CheckSpec {
            weight: 2.0,
            expires_after: Some(Duration::from_secs(90 * 86_400)),
            ..spec(
                "restore-drill",
                "A backup was restored and checked this quarter",
                Category::Backups,
                KindName::Manual,
                "Restore the newest backup into a scratch database and check it (`prodready backup verify`), then \
                 record the drill: set [checklist] include_defaults = true and declare a [[checklist.checks]] \
                 with id = \"restore-drill\", kind = \"manual\", attested_at, owner and evidence (it replaces \
                 this default)",
            )
        },
        CheckSpec {
            url: Some(platform.loki_url.clone()),
            weight: 2.0,
            ..spec(
                "loki",
                "Logs reach Loki",
                Category::Logging,
                KindName::Loki,
                "Start Loki with the generated stack (`prodready stack generate --out deploy/stack`, then \
                 `docker compose -f deploy/stack/compose.yaml up -d loki`) and set [logging] loki_url to it",
            )
        },
        CheckSpec {
            url: Some(platform.loki_url.clone()),
            min_days: Some(platform.log_retention_days),
            must_have: true,
            weight: 2.0,
            ..spec(
                "log-retention",
                &format!("Centralized logs are kept {} days, then deleted", platform.log_retention_days),
                Category::Logging,
                KindName::LokiRetention,
                "Turn Loki's retention on: compactor.retention_enabled: true and limits_config.retention_period \
                 of at least [logging] retention (`prodready stack generate` writes loki/loki.yml so), and set \
                 [logging] loki_url",
            )
        },
        CheckSpec {
            url: Some(platform.alertmanager_url.clone()),
            must_have: true,
            weight: 3.0,
            ..spec(
                "alerting",
                "Critical alerts reach email and Slack",
                Category::Monitoring,
                KindName::Alerting,
                "Set [alerts.slack] webhook_file and [alerts.email] to, smarthost and password_secret (`prodready \
                 secrets put NAME`), run `prodready stack generate --out deploy/stack` (or `prodready alerts \
                 generate`), load alertmanager.yml into Alertmanager and set [alerts] alertmanager_url to it",
            )
        },
        CheckSpec {
            url: Some(platform.prometheus_url.clone()),
            must_have: true,
            weight: 3.0,
            ..spec(
                "prometheus-targets",
                "Prometheus scrapes every target",
                Category::Monitoring,
                KindName::PrometheusTargets,
                "Start Prometheus with the platform's scrape targets ([stack.scrape], then `prodready stack \
                 generate --out deploy/stack` and `docker compose -f deploy/stack/compose.yaml up -d prometheus`) \
                 and set [alerts] prometheus_url; fix each \
                 target listed as down",
            )
        },
        CheckSpec {
            url: Some(platform.prometheus_url.clone()),
            job: Some(DB_EXPORTER_JOB.to_owned()),
            ..spec(
                "database-monitoring",
                "Database monitoring is scraped",
                Category::Monitoring,
                KindName::PrometheusTargets,
                "Run `prodready db exporter` (its role needs pg_monitor) and give Prometheus a scrape job named \
                 prodready-db for it (docs/monitoring.md)",
            )
        },
        CheckSpec {
            url: Some(platform.alertmanager_url.clone()),
            channels: Some(vec!["pagerduty".to_owned()]),
            ..spec(
                "pagerduty",
                "Critical alerts page the on-call engineer through PagerDuty",
                Category::Monitoring,
                KindName::Alerting,
                "Store the Events API v2 integration key (`prodready secrets put prod/alerting/pagerduty-key`), \
                 set [alerts.pagerduty] routing_key_secret to its name, run `prodready stack generate --out \
                 deploy/stack` (or `prodready alerts generate`) and load alertmanager.yml into Alertmanager",
            )
        },
        CheckSpec {
            path: Some(platform.dashboards_dir.clone()),
            ..spec(
                "dashboards",
                "The platform has its own Grafana dashboards",
                Category::Monitoring,
                KindName::Dashboards,
                "Write the dashboards with `prodready alerts generate` (service RED, SLO burn, PostgreSQL, \
                 backups) or export your own from Grafana into [checklist] dashboards_dir, and provision them \
                 (`prodready stack generate` does)",
            )
        },
        CheckSpec {
            path: Some(platform.rules_dir.clone()),
            weight: 2.0,
            ..spec(
                "alert-rules",
                "Alert rules are valid and carry severity and runbook links",
                Category::Monitoring,
                KindName::AlertRules,
                "Generate the rules with `prodready alerts generate`, fix what `prodready alerts check` reports, \
                 and install promtool (Debian package `prometheus`)",
            )
        },
        CheckSpec {
            url: Some(platform.otlp_endpoint.clone()),
            ..spec(
                "otlp",
                "Traces reach an OTLP collector",
                Category::Monitoring,
                KindName::Otlp,
                "Run an OTLP/HTTP collector, set [tracing] otlp_endpoint to it and prove the path with \
                 `prodready trace ping`",
            )
        },
        CheckSpec {
            weight: 2.0,
            expires_after: Some(Duration::from_secs(30 * 86_400)),
            ..spec(
                "on-call",
                "An on-call rota covers the launch",
                Category::Monitoring,
                KindName::Manual,
                "Publish the on-call rota and escalation path, then set [checklist] include_defaults = true and \
                 declare a [[checklist.checks]] with id = \"on-call\", kind = \"manual\", attested_at, owner \
                 and evidence (it replaces this default)",
            )
        },
        match &platform.frontend_coverage_report {
            None => CheckSpec {
                path: Some(platform.coverage_report.clone()),
                min_percent: Some(80.0),
                must_have: true,
                ..spec(
                    "coverage",
                    "Tests cover at least 80% of lines",
                    Category::Testing,
                    KindName::Coverage,
                    "Write an lcov report (`cargo llvm-cov --lcov --output-path coverage/lcov.info`) and add tests \
                     until it reaches 80%",
                )
            },
            Some(frontend) => CheckSpec {
                reports: Some(vec![
                    CoverageReport {
                        name: Some("backend".to_owned()),
                        path: platform.coverage_report.clone(),
                        min_percent: 80.0,
                    },
                    CoverageReport {
                        name: Some("frontend".to_owned()),
                        path: frontend.clone(),
                        min_percent: 60.0,
                    },
                ]),
                must_have: true,
                ..spec(
                    "coverage",
                    "Tests cover at least 80% of backend and 60% of frontend lines",
                    Category::Testing,
                    KindName::Coverage,
                    "Write both lcov reports ([checklist] coverage_report and frontend_coverage_report, e.g. \
                     `cargo llvm-cov --lcov` and `vitest --coverage --coverage.reporter=lcov`) and add tests until \
                     they reach 80% and 60%",
                )
            },
        },
        CheckSpec {
            path: Some(platform.loadtest_summary.clone()),
            weight: 2.0,
            ..spec(
                "loadtest",
                "The last load test met its thresholds",
                Category::Testing,
                KindName::Loadtest,
                "Run the load test against staging with thresholds: `prodready load run SCENARIO` (it writes \
                 the k6-format JSON summary to [loadtest] summary)",
            )
        },
        CheckSpec {
            path: docs("runbook.md"),
            sections: sections(&["Alerts", "Backups", "Restore"]),
            must_have: true,
            weight: 2.0,
            ..spec(
                "runbook",
                "A production runbook covers alerts, backups and restores",
                Category::Documentation,
                KindName::Docs,
                "Write docs/runbook.md with sections Alerts (one per alert), Backups and Restore",
            )
        },
        CheckSpec {
            path: docs("incident-response.md"),
            sections: sections(&["Severity", "Roles", "Communication", "Postmortem"]),
            must_have: true,
            weight: 2.0,
            ..spec(
                "incident-response",
                "An incident response guide exists",
                Category::Documentation,
                KindName::Docs,
                "Write docs/incident-response.md with sections Severity, Roles, Communication and Postmortem",
            )
        },
        CheckSpec {
            must_have: true,
            weight: 2.0,
            ..spec(
                "pre-launch-checklist",
                "The pre-launch checklist is complete: every attestation is current",
                Category::Documentation,
                KindName::Attestations,
                "Do each manual item listed (the restore drill, the on-call rota, and any you declared) and record \
                 it with attested_at, owner and evidence in [[checklist.checks]]",
            )
        },
        CheckSpec {
            path: docs("deployment.md"),
            sections: sections(&["Deploy", "Rollback"]),
            ..spec(
                "deployment-guide",
                "A deployment guide covers deploy and rollback",
                Category::Documentation,
                KindName::Docs,
                "Write docs/deployment.md with sections Deploy and Rollback",
            )
        },
        CheckSpec {
            path: Some(platform.scan_report.clone()),
            scans: Some(["secrets", "dependencies"].map(str::to_owned).to_vec()),
            must_have: true,
            weight: 2.0,
            ..spec(
                "security-scans",
                "Security scans pass: a secret and a dependency scan from the last week found nothing",
                Category::Security,
                KindName::ScanReport,
                "Scan for secrets and vulnerable dependencies in CI into [checklist] scan_report: `prodready scan \
                 secrets . --format sarif --output scan-reports/secrets.sarif` and `prodready scan deps . --db \
                 ADVISORY_DB --format sarif --output scan-reports/deps.sarif` (deploy/ci has the CI steps); fix, \
                 baseline or allowlist each finding",
            )
        },
        CheckSpec {
            path: Some(platform.ci_path.clone()),
            steps: Some(["test", "scan", "coverage"].map(str::to_owned).to_vec()),
            weight: 2.0,
            ..spec(
                "ci-pipeline",
                "CI runs the tests, the security scans and the coverage gate",
                Category::CiCd,
                KindName::CiWorkflow,
                "Add CI steps that run the tests, a secret and dependency scan writing [checklist] scan_report, and \
                 the coverage report with its threshold (see [checklist] ci_path)",
            )
        },
        CheckSpec {
            path: Some(platform.ci_path.clone()),
            steps: Some(vec!["deploy".to_owned()]),
            ..spec(
                "deployment-pipeline",
                "Deployment is automated by a pipeline",
                Category::CiCd,
                KindName::CiWorkflow,
                "Declare the deployment as a pipeline job (a deploy step after the tests) in [checklist] ci_path",
            )
        },
        CheckSpec {
            path: Some(PathBuf::from(".")),
            must_have: true,
            weight: 2.0,
            ..spec(
                "no-plaintext-secrets",
                "No secrets in plain-text .env files",
                Category::Security,
                KindName::EnvFiles,
                "Move them into the secret store (`prodready secrets migrate --from .env --prefix prod/app/`), \
                 delete the file, and start the service under `prodready secrets exec` (see docs/secrets.md)",
            )
        },
    ];
    specs.iter().map(CheckSpec::validate).collect()
}

/// The Prometheus scrape job of `prodready db exporter` that the rule pack and this check expect.
pub const DB_EXPORTER_JOB: &str = "prodready-db";
