//! The built-in rule pack: one entry per alert, each with the series that make it fire and the series
//! that keep it quiet, so every alert ships with `promtool test rules` unit tests.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

use crate::names;
use crate::rules::{Group, Rule, RuleFile};

/// How the pack is rendered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackOptions {
    /// The scrape interval the rules are written for: rate() ranges are at least 4 of these (and 5m).
    pub scrape_interval: Duration,
    /// Base of every `runbook_url`; `#<alert name, lowercased>` is appended.
    pub runbook_base_url: String,
}

impl Default for PackOptions {
    fn default() -> Self {
        Self { scrape_interval: Duration::from_secs(15), runbook_base_url: "docs/runbook.md".to_owned() }
    }
}

/// Input series and the expected outcome at one evaluation time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Case {
    /// (series selector, promtool values notation)
    pub series: Vec<(String, String)>,
    pub eval_time: &'static str,
    /// Labels of the expected alert (besides `severity`); `None` means the alert must not fire.
    pub fires_with: Option<Vec<(&'static str, &'static str)>>,
}

/// One built-in alert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alert {
    pub name: &'static str,
    pub severity: &'static str,
    pub expr: String,
    pub for_: &'static str,
    /// Templates may use `{{ $labels.NAME }}` only, so expected annotations are computable.
    pub summary: &'static str,
    pub description: &'static str,
    pub fires: Case,
    pub quiet: Case,
}

fn series(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(s, v)| ((*s).to_owned(), (*v).to_owned())).collect()
}

/// A Prometheus duration for the rate() window: 5m, or 4 scrape intervals when that is longer.
pub fn rate_range(scrape_interval: Duration) -> String {
    let secs = (scrape_interval.as_secs() * 4).max(300);
    if secs.is_multiple_of(3600) {
        format!("{}h", secs / 3600)
    } else if secs.is_multiple_of(60) {
        format!("{}m", secs / 60)
    } else {
        format!("{secs}s")
    }
}

/// Every built-in alert.
pub fn alerts(options: &PackOptions) -> Vec<Alert> {
    let r = rate_range(options.scrape_interval);
    let requests = names::HTTP_REQUESTS_TOTAL;
    let duration = names::HTTP_REQUEST_DURATION_SECONDS;
    let job_api = vec![("job", "api")];
    let target = vec![("job", "api"), ("instance", "api:8080")];
    let pg = vec![("job", "postgres"), ("instance", "db:9187")];
    let backup = vec![("job", "prodready-backup"), ("database", "app")];
    // The scheduler daemon, scraped as job `prodready-daemon`: its per-job series name the scheduled job
    // `daemon_job`; every replica exports the same shared state, so rules take the max across replicas.
    let leader = names::DAEMON_LEADER;
    let last_run_success = names::DAEMON_JOB_LAST_RUN_SUCCESS;
    let last_success = names::DAEMON_JOB_LAST_SUCCESS;
    let interval = names::DAEMON_JOB_INTERVAL;
    let last_duration = names::DAEMON_JOB_LAST_DURATION;
    let daemon_job = vec![("job", "prodready-daemon")];
    let scheduled = vec![("daemon_job", "backup")];
    vec![
        Alert {
            name: "InstanceDown",
            severity: "critical",
            expr: "up == 0".to_owned(),
            for_: "2m",
            summary: "{{ $labels.job }} target {{ $labels.instance }} is down",
            description: "Prometheus has not been able to scrape {{ $labels.instance }} (job {{ $labels.job }}) for 2 minutes.",
            fires: Case { series: series(&[(r#"up{job="api",instance="api:8080"}"#, "0x10")]), eval_time: "5m", fires_with: Some(target.clone()) },
            quiet: Case { series: series(&[(r#"up{job="api",instance="api:8080"}"#, "1x10")]), eval_time: "5m", fires_with: None },
        },
        Alert {
            name: "HighErrorRate",
            severity: "critical",
            expr: format!(
                r#"sum by (job) (rate({requests}{{status="5xx"}}[{r}])) / sum by (job) (rate({requests}[{r}])) > 0.05"#
            ),
            for_: "5m",
            summary: "{{ $labels.job }} answers more than 5% of requests with a server error",
            description: "More than 5% of the requests to {{ $labels.job }} have failed with a 5xx status for 5 minutes.",
            fires: Case {
                series: series(&[
                    (&format!(r#"{requests}{{job="api",method="GET",route="/orders",status="5xx"}}"#), "0+10x20"),
                    (&format!(r#"{requests}{{job="api",method="GET",route="/orders",status="2xx"}}"#), "0+10x20"),
                ]),
                eval_time: "15m",
                fires_with: Some(job_api.clone()),
            },
            quiet: Case {
                series: series(&[
                    (&format!(r#"{requests}{{job="api",method="GET",route="/orders",status="5xx"}}"#), "0+0x20"),
                    (&format!(r#"{requests}{{job="api",method="GET",route="/orders",status="2xx"}}"#), "0+100x20"),
                ]),
                eval_time: "15m",
                fires_with: None,
            },
        },
        Alert {
            name: "HighLatency",
            severity: "warning",
            expr: format!(r#"histogram_quantile(0.99, sum by (job, le) (rate({duration}_bucket[{r}]))) > 1"#),
            for_: "10m",
            summary: "{{ $labels.job }} is slow: p99 latency above 1s",
            description: "The 99th percentile of request latency of {{ $labels.job }} has been above 1 second for 10 minutes.",
            fires: Case {
                series: series(&[
                    (&format!(r#"{duration}_bucket{{job="api",le="0.5"}}"#), "0+0x30"),
                    (&format!(r#"{duration}_bucket{{job="api",le="1"}}"#), "0+0x30"),
                    (&format!(r#"{duration}_bucket{{job="api",le="5"}}"#), "0+10x30"),
                    (&format!(r#"{duration}_bucket{{job="api",le="+Inf"}}"#), "0+10x30"),
                ]),
                eval_time: "20m",
                fires_with: Some(job_api.clone()),
            },
            quiet: Case {
                series: series(&[
                    (&format!(r#"{duration}_bucket{{job="api",le="0.5"}}"#), "0+10x30"),
                    (&format!(r#"{duration}_bucket{{job="api",le="1"}}"#), "0+10x30"),
                    (&format!(r#"{duration}_bucket{{job="api",le="5"}}"#), "0+10x30"),
                    (&format!(r#"{duration}_bucket{{job="api",le="+Inf"}}"#), "0+10x30"),
                ]),
                eval_time: "20m",
                fires_with: None,
            },
        },
        Alert {
            name: "HighCpuSaturation",
            severity: "warning",
            expr: format!("rate({}[{r}]) > 0.9", names::PROCESS_CPU_SECONDS_TOTAL),
            for_: "15m",
            summary: "{{ $labels.instance }} uses more than 90% of a CPU",
            description: "The process behind {{ $labels.instance }} (job {{ $labels.job }}) has used more than 0.9 CPU cores for 15 minutes.",
            fires: Case {
                series: series(&[(r#"process_cpu_seconds_total{job="api",instance="api:8080"}"#, "0+60x40")]),
                eval_time: "25m",
                fires_with: Some(target.clone()),
            },
            quiet: Case {
                series: series(&[(r#"process_cpu_seconds_total{job="api",instance="api:8080"}"#, "0+30x40")]),
                eval_time: "25m",
                fires_with: None,
            },
        },
        Alert {
            name: "FileDescriptorsExhausted",
            severity: "warning",
            expr: format!("{} / {} > 0.8", names::PROCESS_OPEN_FDS, names::PROCESS_MAX_FDS),
            for_: "10m",
            summary: "{{ $labels.instance }} has used more than 80% of its file descriptors",
            description: "The process behind {{ $labels.instance }} (job {{ $labels.job }}) holds more than 80% of its file descriptor limit.",
            fires: Case {
                series: series(&[
                    (r#"process_open_fds{job="api",instance="api:8080"}"#, "900x30"),
                    (r#"process_max_fds{job="api",instance="api:8080"}"#, "1000x30"),
                ]),
                eval_time: "20m",
                fires_with: Some(target.clone()),
            },
            quiet: Case {
                series: series(&[
                    (r#"process_open_fds{job="api",instance="api:8080"}"#, "100x30"),
                    (r#"process_max_fds{job="api",instance="api:8080"}"#, "1000x30"),
                ]),
                eval_time: "20m",
                fires_with: None,
            },
        },
        Alert {
            name: "PostgresDown",
            severity: "critical",
            expr: "pg_up == 0".to_owned(),
            for_: "1m",
            summary: "PostgreSQL behind {{ $labels.instance }} is down",
            description: "postgres_exporter at {{ $labels.instance }} cannot reach its PostgreSQL server.",
            fires: Case { series: series(&[(r#"pg_up{job="postgres",instance="db:9187"}"#, "0x10")]), eval_time: "5m", fires_with: Some(pg.clone()) },
            quiet: Case { series: series(&[(r#"pg_up{job="postgres",instance="db:9187"}"#, "1x10")]), eval_time: "5m", fires_with: None },
        },
        Alert {
            name: "PostgresTooManyConnections",
            severity: "warning",
            expr: "sum by (job, instance) (pg_stat_activity_count) / sum by (job, instance) (pg_settings_max_connections) > 0.8"
                .to_owned(),
            for_: "5m",
            summary: "PostgreSQL behind {{ $labels.instance }} uses more than 80% of max_connections",
            description: "Connections to the PostgreSQL server behind {{ $labels.instance }} have been above 80% of max_connections for 5 minutes.",
            fires: Case {
                series: series(&[
                    (r#"pg_stat_activity_count{job="postgres",instance="db:9187",datname="app",state="active"}"#, "90x20"),
                    (r#"pg_settings_max_connections{job="postgres",instance="db:9187"}"#, "100x20"),
                ]),
                eval_time: "10m",
                fires_with: Some(pg.clone()),
            },
            quiet: Case {
                series: series(&[
                    (r#"pg_stat_activity_count{job="postgres",instance="db:9187",datname="app",state="active"}"#, "10x20"),
                    (r#"pg_settings_max_connections{job="postgres",instance="db:9187"}"#, "100x20"),
                ]),
                eval_time: "10m",
                fires_with: None,
            },
        },
        Alert {
            name: "BackupFailed",
            severity: "critical",
            expr: format!("{} == 0", names::BACKUP_LAST_RUN_SUCCESS),
            for_: "1m",
            summary: "The last backup of {{ $labels.database }} failed",
            description: "The last backup run of {{ $labels.database }} failed; no new backup was published.",
            fires: Case {
                series: series(&[(r#"prodready_backup_last_run_success{job="prodready-backup",database="app"}"#, "0x10")]),
                eval_time: "5m",
                fires_with: Some(backup.clone()),
            },
            quiet: Case {
                series: series(&[(r#"prodready_backup_last_run_success{job="prodready-backup",database="app"}"#, "1x10")]),
                eval_time: "5m",
                fires_with: None,
            },
        },
        Alert {
            name: "BackupCorrupt",
            severity: "warning",
            expr: format!("{} > 0", names::BACKUP_CORRUPT),
            for_: "5m",
            summary: "The backup store of {{ $labels.database }} holds backups with unreadable manifests",
            description: "Backups in the store of {{ $labels.database }} have a manifest that cannot be read; they are left out of listings, verification and restore, and never pruned.",
            fires: Case {
                series: series(&[(r#"prodready_backup_corrupt_backups{job="prodready-backup",database="app"}"#, "1x20")]),
                eval_time: "10m",
                fires_with: Some(backup.clone()),
            },
            quiet: Case {
                series: series(&[(r#"prodready_backup_corrupt_backups{job="prodready-backup",database="app"}"#, "0x20")]),
                eval_time: "10m",
                fires_with: None,
            },
        },
        Alert {
            name: "BackupStale",
            severity: "critical",
            expr: format!("time() - {} > 93600", names::BACKUP_LAST_SUCCESS),
            for_: "10m",
            summary: "No successful backup of {{ $labels.database }} for 26 hours",
            description: "The newest successful backup of {{ $labels.database }} is more than 26 hours old.",
            fires: Case {
                series: series(&[(r#"prodready_backup_last_success_timestamp_seconds{job="prodready-backup",database="app"}"#, "-100000x40")]),
                eval_time: "20m",
                fires_with: Some(backup.clone()),
            },
            quiet: Case {
                series: series(&[(r#"prodready_backup_last_success_timestamp_seconds{job="prodready-backup",database="app"}"#, "0x40")]),
                eval_time: "20m",
                fires_with: None,
            },
        },
        Alert {
            name: "BackupNotVerified",
            severity: "warning",
            expr: format!("time() - {} > 691200", names::BACKUP_LAST_VERIFY_SUCCESS),
            for_: "10m",
            summary: "No backup of {{ $labels.database }} proven by restore for 8 days",
            description: "No backup of {{ $labels.database }} has passed a verification by restore in 8 days.",
            fires: Case {
                series: series(&[(r#"prodready_backup_last_verify_success_timestamp_seconds{job="prodready-backup",database="app"}"#, "-700000x40")]),
                eval_time: "20m",
                fires_with: Some(backup.clone()),
            },
            quiet: Case {
                series: series(&[(r#"prodready_backup_last_verify_success_timestamp_seconds{job="prodready-backup",database="app"}"#, "0x40")]),
                eval_time: "20m",
                fires_with: None,
            },
        },
        Alert {
            name: "CertificateExpiring",
            severity: "warning",
            expr: "probe_ssl_earliest_cert_expiry - time() < 1209600".to_owned(),
            for_: "1h",
            summary: "The TLS certificate of {{ $labels.instance }} expires within 14 days",
            description: "The earliest-expiring certificate served by {{ $labels.instance }} expires in less than 14 days.",
            fires: Case {
                series: series(&[(r#"probe_ssl_earliest_cert_expiry{job="blackbox",instance="https://example.com"}"#, "86400x100")]),
                eval_time: "90m",
                fires_with: Some(vec![("job", "blackbox"), ("instance", "https://example.com")]),
            },
            quiet: Case {
                series: series(&[(r#"probe_ssl_earliest_cert_expiry{job="blackbox",instance="https://example.com"}"#, "100000000x100")]),
                eval_time: "90m",
                fires_with: None,
            },
        },
        Alert {
            name: "DiskWillFillIn4Hours",
            severity: "warning",
            expr: r#"predict_linear(node_filesystem_avail_bytes{fstype!~"tmpfs|overlay|squashfs"}[1h], 4 * 3600) < 0"#.to_owned(),
            for_: "30m",
            summary: "{{ $labels.mountpoint }} on {{ $labels.instance }} will be full within 4 hours",
            description: "At the rate of the last hour, {{ $labels.mountpoint }} ({{ $labels.device }}) on {{ $labels.instance }} runs out of space within 4 hours.",
            fires: Case {
                series: series(&[(
                    r#"node_filesystem_avail_bytes{job="node",instance="host:9100",device="/dev/vda1",fstype="ext4",mountpoint="/"}"#,
                    "1000000000-10000000x120",
                )]),
                eval_time: "90m",
                fires_with: Some(vec![
                    ("job", "node"),
                    ("instance", "host:9100"),
                    ("device", "/dev/vda1"),
                    ("fstype", "ext4"),
                    ("mountpoint", "/"),
                ]),
            },
            quiet: Case {
                series: series(&[(
                    r#"node_filesystem_avail_bytes{job="node",instance="host:9100",device="/dev/vda1",fstype="ext4",mountpoint="/"}"#,
                    "1000000000x120",
                )]),
                eval_time: "90m",
                fires_with: None,
            },
        },
        Alert {
            name: "LogShipperBehind",
            severity: "warning",
            expr: format!("{} > 104857600", names::LOGS_SHIP_LAG_BYTES),
            for_: "15m",
            summary: "Log shipping on {{ $labels.instance }} is more than 100 MiB behind",
            description: "The log shipping agent on {{ $labels.instance }} has more than 100 MiB of log lines Loki has not acknowledged: Loki is down, refusing, or too slow. Nothing is lost while the files stay on disk.",
            fires: Case {
                series: series(&[(r#"prodready_logs_ship_lag_bytes{job="prodready-logs-ship",instance="host:9080"}"#, "200000000x30")]),
                eval_time: "20m",
                fires_with: Some(vec![("job", "prodready-logs-ship"), ("instance", "host:9080")]),
            },
            quiet: Case {
                series: series(&[(r#"prodready_logs_ship_lag_bytes{job="prodready-logs-ship",instance="host:9080"}"#, "1000000x30")]),
                eval_time: "20m",
                fires_with: None,
            },
        },
        Alert {
            name: "LogLinesDropped",
            severity: "warning",
            expr: format!("rate({}[{r}]) > 0", names::LOGS_SHIP_LINES_DROPPED_TOTAL),
            for_: "5m",
            summary: "Loki is rejecting log lines from {{ $labels.instance }}",
            description: "The log shipping agent on {{ $labels.instance }} drops lines Loki rejects ({{ $labels.reason }}): out of order, too old, too long or bad labels. Those lines will not be in Loki.",
            fires: Case {
                series: series(&[(r#"prodready_logs_ship_lines_dropped_total{job="prodready-logs-ship",instance="host:9080",reason="rejected"}"#, "0+100x30")]),
                eval_time: "20m",
                fires_with: Some(vec![("job", "prodready-logs-ship"), ("instance", "host:9080"), ("reason", "rejected")]),
            },
            quiet: Case {
                series: series(&[(r#"prodready_logs_ship_lines_dropped_total{job="prodready-logs-ship",instance="host:9080",reason="rejected"}"#, "0x30")]),
                eval_time: "20m",
                fires_with: None,
            },
        },
        Alert {
            name: "ProdreadyDaemonNoLeader",
            severity: "critical",
            expr: format!("max by (job) ({leader}) < 1"),
            for_: "5m",
            summary: "No replica of {{ $labels.job }} holds the leader lock",
            description: "Replicas of the scheduler daemon ({{ $labels.job }}) are up but none has held the leader lock for 5 minutes: no scheduled job runs. The database that holds the lock is unreachable, or a dead session still holds it.",
            fires: Case {
                series: series(&[
                    (&format!(r#"{leader}{{job="prodready-daemon",instance="daemon-a:9187"}}"#), "1x2 0x20"),
                    (&format!(r#"{leader}{{job="prodready-daemon",instance="daemon-b:9187"}}"#), "0x22"),
                ]),
                eval_time: "15m",
                fires_with: Some(daemon_job.clone()),
            },
            // A failover: the leader goes away and a standby takes the lock a minute later.
            quiet: Case {
                series: series(&[
                    (&format!(r#"{leader}{{job="prodready-daemon",instance="daemon-a:9187"}}"#), "1x5 0x16"),
                    (&format!(r#"{leader}{{job="prodready-daemon",instance="daemon-b:9187"}}"#), "0x6 1x15"),
                ]),
                eval_time: "15m",
                fires_with: None,
            },
        },
        Alert {
            name: "ProdreadyDaemonJobFailing",
            severity: "warning",
            expr: format!("max by (daemon_job) ({last_run_success}) == 0"),
            for_: "5m",
            summary: "The last run of scheduled job {{ $labels.daemon_job }} failed",
            description: "The last run of the scheduled job {{ $labels.daemon_job }} failed, timed out or was cancelled, and no later run has succeeded for 5 minutes.",
            fires: Case {
                series: series(&[
                    (&format!(r#"{last_run_success}{{job="prodready-daemon",daemon_job="backup",instance="daemon-a:9187"}}"#), "1x2 0x20"),
                    (&format!(r#"{last_run_success}{{job="prodready-daemon",daemon_job="backup",instance="daemon-b:9187"}}"#), "1x2 0x20"),
                ]),
                eval_time: "10m",
                fires_with: Some(scheduled.clone()),
            },
            // One failed run, and the next run, three minutes later, succeeds.
            quiet: Case {
                series: series(&[
                    (&format!(r#"{last_run_success}{{job="prodready-daemon",daemon_job="backup",instance="daemon-a:9187"}}"#), "1x2 0x2 1x16"),
                    (&format!(r#"{last_run_success}{{job="prodready-daemon",daemon_job="backup",instance="daemon-b:9187"}}"#), "1x2 0x2 1x16"),
                ]),
                eval_time: "10m",
                fires_with: None,
            },
        },
        Alert {
            name: "ProdreadyDaemonJobOverdue",
            severity: "warning",
            expr: format!(
                "time() - max by (daemon_job) ({last_success}) > 2 * max by (daemon_job) ({interval}) + max by (daemon_job) ({last_duration}) + 300 \
                 and max by (daemon_job) ({last_success}) > 0"
            ),
            for_: "10m",
            summary: "Scheduled job {{ $labels.daemon_job }} has not succeeded for two of its intervals",
            description: "The scheduled job {{ $labels.daemon_job }} has had no successful run for more than twice its schedule's interval (plus its last run's duration and 5 minutes): runs are failing, not starting, or hanging.",
            // A job every 10 minutes (runs of 1 minute) whose last success started at 5m: overdue after
            // 5m + 20m + 1m + 5m = 31m, firing 10 minutes later.
            fires: Case {
                series: series(&[
                    (&format!(r#"{last_success}{{job="prodready-daemon",daemon_job="backup",instance="daemon-a:9187"}}"#), "300x60"),
                    (&format!(r#"{last_success}{{job="prodready-daemon",daemon_job="backup",instance="daemon-b:9187"}}"#), "300x60"),
                    (&format!(r#"{interval}{{job="prodready-daemon",daemon_job="backup",instance="daemon-a:9187"}}"#), "600x60"),
                    (&format!(r#"{interval}{{job="prodready-daemon",daemon_job="backup",instance="daemon-b:9187"}}"#), "600x60"),
                    (&format!(r#"{last_duration}{{job="prodready-daemon",daemon_job="backup",instance="daemon-a:9187"}}"#), "60x60"),
                    (&format!(r#"{last_duration}{{job="prodready-daemon",daemon_job="backup",instance="daemon-b:9187"}}"#), "60x60"),
                ]),
                eval_time: "45m",
                fires_with: Some(scheduled.clone()),
            },
            // One failed run (at 35m) is within the margin, and a replica with an older view of the shared
            // state does not count: the newest success across replicas started at 25m.
            quiet: Case {
                series: series(&[
                    (&format!(r#"{last_success}{{job="prodready-daemon",daemon_job="backup",instance="daemon-a:9187"}}"#), "300x60"),
                    (&format!(r#"{last_success}{{job="prodready-daemon",daemon_job="backup",instance="daemon-b:9187"}}"#), "1500x60"),
                    (&format!(r#"{interval}{{job="prodready-daemon",daemon_job="backup",instance="daemon-a:9187"}}"#), "600x60"),
                    (&format!(r#"{interval}{{job="prodready-daemon",daemon_job="backup",instance="daemon-b:9187"}}"#), "600x60"),
                    (&format!(r#"{last_duration}{{job="prodready-daemon",daemon_job="backup",instance="daemon-a:9187"}}"#), "60x60"),
                    (&format!(r#"{last_duration}{{job="prodready-daemon",daemon_job="backup",instance="daemon-b:9187"}}"#), "60x60"),
                ]),
                eval_time: "45m",
                fires_with: None,
            },
        },
    ]
}

/// The runbook link of an alert.
pub fn runbook_url(base: &str, alert: &str) -> String {
    format!("{base}#{}", alert.to_lowercase())
}

/// The pack as a rule file.
pub fn rule_file(options: &PackOptions) -> RuleFile {
    let rules = alerts(options)
        .into_iter()
        .map(|a| Rule {
            alert: Some(a.name.to_owned()),
            expr: a.expr,
            for_: Some(a.for_.to_owned()),
            labels: BTreeMap::from([("severity".to_owned(), a.severity.to_owned())]),
            annotations: BTreeMap::from([
                ("summary".to_owned(), a.summary.to_owned()),
                ("description".to_owned(), a.description.to_owned()),
                ("runbook_url".to_owned(), runbook_url(&options.runbook_base_url, a.name)),
            ]),
            ..Rule::default()
        })
        .collect();
    RuleFile { groups: vec![Group { name: "prodready".to_owned(), interval: None, rules }] }
}

#[derive(Serialize)]
struct TestFile {
    rule_files: Vec<String>,
    evaluation_interval: &'static str,
    tests: Vec<TestGroup>,
}

#[derive(Serialize)]
struct TestGroup {
    name: String,
    interval: &'static str,
    input_series: Vec<InputSeries>,
    alert_rule_test: Vec<AlertTest>,
}

#[derive(Serialize)]
struct InputSeries {
    series: String,
    values: String,
}

#[derive(Serialize)]
struct AlertTest {
    eval_time: &'static str,
    alertname: String,
    exp_alerts: Vec<ExpAlert>,
}

#[derive(Serialize)]
struct ExpAlert {
    exp_labels: BTreeMap<String, String>,
    exp_annotations: BTreeMap<String, String>,
}

/// Expands `{{ $labels.NAME }}` the way Prometheus would for these labels.
fn expand(template: &str, labels: &BTreeMap<String, String>) -> String {
    let mut out = template.to_owned();
    for (k, v) in labels {
        out = out.replace(&format!("{{{{ $labels.{k} }}}}"), v);
    }
    out
}

/// `promtool test rules` unit tests for the pack: for every alert, one case where it fires and one where
/// it stays quiet. `rules_path` is the rule file as the test file should name it.
pub fn unit_tests(options: &PackOptions, rules_path: &str) -> String {
    let mut tests = Vec::new();
    for alert in alerts(options) {
        for (kind, case) in [("fires", &alert.fires), ("quiet", &alert.quiet)] {
            let exp_alerts = match &case.fires_with {
                None => Vec::new(),
                Some(labels) => {
                    let mut labels: BTreeMap<String, String> =
                        labels.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
                    labels.insert("severity".to_owned(), alert.severity.to_owned());
                    let exp_annotations = BTreeMap::from([
                        ("summary".to_owned(), expand(alert.summary, &labels)),
                        ("description".to_owned(), expand(alert.description, &labels)),
                        ("runbook_url".to_owned(), runbook_url(&options.runbook_base_url, alert.name)),
                    ]);
                    vec![ExpAlert { exp_labels: labels, exp_annotations }]
                }
            };
            tests.push(TestGroup {
                name: format!("{} {kind}", alert.name),
                interval: "1m",
                input_series: case
                    .series
                    .iter()
                    .map(|(s, v)| InputSeries { series: s.clone(), values: v.clone() })
                    .collect(),
                alert_rule_test: vec![AlertTest {
                    eval_time: case.eval_time,
                    alertname: alert.name.to_owned(),
                    exp_alerts,
                }],
            });
        }
    }
    let file = TestFile { rule_files: vec![rules_path.to_owned()], evaluation_interval: "1m", tests };
    format!(
        "# promtool test rules for the built-in pack.\n{}",
        serde_yaml_ng::to_string(&file).expect("a test file serializes")
    )
}
