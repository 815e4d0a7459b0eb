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

/// A series of `prodready db exporter` (scraped as job `prodready-db`) about the server `db:5432`;
/// `labels` are the rest of its labels, `database` first.
fn pg(metric: &str, labels: &str, values: &str) -> (String, String) {
    (
        format!(r#"{metric}{{job="prodready-db",instance="db-exporter:9188",server="db:5432",{labels}}}"#),
        values.to_owned(),
    )
}

/// A Prometheus duration for the rate() window: 5m, or 4 scrape intervals when that is longer.
pub fn rate_range(scrape_interval: Duration) -> String {
    range_at_least(scrape_interval, 300)
}

/// A Prometheus duration of `min_secs`, or 4 scrape intervals when that is longer.
fn range_at_least(scrape_interval: Duration, min_secs: u64) -> String {
    let secs = (scrape_interval.as_secs() * 4).max(min_secs);
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
    // PostgreSQL, from `prodready db exporter` scraped as job `prodready-db`: every series carries `server`
    // (host:port) and `database`. Server-wide series (connections, replication, slots) repeat under every
    // database of a server, so those rules take the max per server.
    let pg_up = names::PG_UP;
    let server_connections = names::PG_SERVER_CONNECTIONS;
    let max_connections = names::PG_MAX_CONNECTIONS;
    let longest_transaction = names::PG_LONGEST_TRANSACTION;
    let longest_idle = names::PG_LONGEST_IDLE_IN_TRANSACTION;
    let deadlocks = names::PG_DEADLOCKS_TOTAL;
    let lag_bytes = names::PG_REPLICATION_LAG_BYTES;
    let lag_seconds = names::PG_REPLICATION_LAG_SECONDS;
    let slot_active = names::PG_SLOT_ACTIVE;
    let slot_retained = names::PG_SLOT_RETAINED_WAL;
    let blocks_hit = names::PG_BLOCKS_HIT_TOTAL;
    let blocks_read = names::PG_BLOCKS_READ_TOTAL;
    let statement_seconds = names::PG_STATEMENT_SECONDS_TOTAL;
    let statement_calls = names::PG_STATEMENT_CALLS_TOTAL;
    let deadlock_range = range_at_least(options.scrape_interval, 600);
    let cache_range = range_at_least(options.scrape_interval, 900);
    let pg_exporter = vec![
        ("job", "prodready-db"),
        ("instance", "db-exporter:9188"),
        ("server", "db:5432"),
        ("database", "app"),
    ];
    let pg_server = vec![("job", "prodready-db"), ("server", "db:5432")];
    let pg_database = vec![("job", "prodready-db"), ("server", "db:5432"), ("database", "app")];
    let standby = vec![
        ("job", "prodready-db"),
        ("server", "db:5432"),
        ("application_name", "replica1"),
        ("client_addr", "10.0.0.2"),
    ];
    let per_standby = "job, server, application_name, client_addr";
    let per_slot = "job, server, slot, slot_type";
    let per_database = "job, server, database";
    let per_statement = "job, server, database, queryid";
    // The mean execution time of each top statement (never the `other` bucket) over `range`, `offset`
    // back; statements without calls in the range have no mean rather than a division by zero.
    let mean = |range: &str, offset: &str| {
        format!(
            r#"sum by ({per_statement}) (rate({statement_seconds}{{queryid!="other"}}[{range}]{offset})) / (sum by ({per_statement}) (rate({statement_calls}{{queryid!="other"}}[{range}]{offset})) > 0)"#
        )
    };
    let backup = vec![("job", "prodready-backup"), ("database", "app")];
    // The scheduler daemon, scraped as job `prodready-daemon`: its per-job series name the scheduled job
    // `daemon_job`; every replica exports the same shared state, so rules take the max across replicas.
    let leader = names::DAEMON_LEADER;
    let last_run_success = names::DAEMON_JOB_LAST_RUN_SUCCESS;
    let overdue_after = names::DAEMON_JOB_OVERDUE_AFTER;
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
            expr: format!("{pg_up} == 0"),
            for_: "1m",
            summary: "PostgreSQL database {{ $labels.database }} on {{ $labels.server }} is down",
            description: "The database exporter at {{ $labels.instance }} has not been able to query the database {{ $labels.database }} on {{ $labels.server }} for 1 minute: the server is down or unreachable, refuses the exporter's role, or does not answer within the scrape timeout.",
            fires: Case { series: vec![pg(pg_up, r#"database="app""#, "1x2 0x10")], eval_time: "8m", fires_with: Some(pg_exporter.clone()) },
            // One failed scrape (a restart, a timeout) is not an outage.
            quiet: Case { series: vec![pg(pg_up, r#"database="app""#, "1x4 0 1x5")], eval_time: "5m", fires_with: None },
        },
        Alert {
            name: "PostgresTooManyConnections",
            severity: "warning",
            expr: format!("max by (job, server) ({server_connections}) / max by (job, server) ({max_connections}) > 0.8"),
            for_: "5m",
            summary: "PostgreSQL server {{ $labels.server }} uses more than 80% of max_connections",
            description: "Client connections to the PostgreSQL server {{ $labels.server }} have been above 80% of max_connections for 5 minutes; at 100% new connections fail.",
            // Two databases of one server report the same server-wide counts: one alert, for the server.
            fires: Case {
                series: vec![
                    pg(server_connections, r#"database="app""#, "90x20"),
                    pg(max_connections, r#"database="app""#, "100x20"),
                    pg(server_connections, r#"database="postgres""#, "90x20"),
                    pg(max_connections, r#"database="postgres""#, "100x20"),
                ],
                eval_time: "10m",
                fires_with: Some(pg_server.clone()),
            },
            quiet: Case {
                series: vec![
                    pg(server_connections, r#"database="app""#, "50x20"),
                    pg(max_connections, r#"database="app""#, "100x20"),
                    pg(server_connections, r#"database="postgres""#, "50x20"),
                    pg(max_connections, r#"database="postgres""#, "100x20"),
                ],
                eval_time: "10m",
                fires_with: None,
            },
        },
        Alert {
            name: "PostgresLongRunningTransaction",
            severity: "warning",
            expr: format!("max by ({per_database}) ({longest_transaction}) > 3600"),
            for_: "5m",
            summary: "A transaction in {{ $labels.database }} on {{ $labels.server }} has been open for over an hour",
            description: "The oldest open transaction in {{ $labels.database }} on {{ $labels.server }} started more than an hour ago, for 5 minutes now: it keeps its locks and holds back vacuum on the whole server. A stuck job, a huge migration, or a forgotten session.",
            // Open since 10 minutes before the start: over an hour at 50m, firing 5 minutes later.
            fires: Case { series: vec![pg(longest_transaction, r#"database="app""#, "600+60x60")], eval_time: "58m", fires_with: Some(pg_database.clone()) },
            // Reports of 40 minutes, one after the other.
            quiet: Case { series: vec![pg(longest_transaction, r#"database="app""#, "0+60x40 0+60x40")], eval_time: "80m", fires_with: None },
        },
        Alert {
            name: "PostgresIdleInTransaction",
            severity: "warning",
            expr: format!("max by ({per_database}) ({longest_idle}) > 300"),
            for_: "2m",
            summary: "A session has sat idle in a transaction in {{ $labels.database }} on {{ $labels.server }} for over 5 minutes",
            description: "A session of {{ $labels.database }} on {{ $labels.server }} opened a transaction and has done nothing in it for more than 5 minutes: it holds its locks and a connection, and holds back vacuum. Usually an application that neither commits nor rolls back, or an open psql session.",
            fires: Case { series: vec![pg(longest_idle, r#"database="app""#, "0+60x20")], eval_time: "10m", fires_with: Some(pg_database.clone()) },
            // Sessions idle in a transaction for 2 minutes at most, again and again.
            quiet: Case { series: vec![pg(longest_idle, r#"database="app""#, "0+60x2 0+60x2 0+60x2 0+60x2 0+60x2")], eval_time: "12m", fires_with: None },
        },
        Alert {
            name: "PostgresDeadlocks",
            severity: "warning",
            expr: format!("sum by ({per_database}) (increase({deadlocks}[{deadlock_range}])) > 0"),
            for_: "1m",
            summary: "Deadlocks in {{ $labels.database }} on {{ $labels.server }}",
            description: "PostgreSQL detected deadlocks in {{ $labels.database }} on {{ $labels.server }} in the last 10 minutes and cancelled a transaction of each: the application got `deadlock detected` errors.",
            fires: Case { series: vec![pg(deadlocks, r#"database="app""#, "0x10 1x10")], eval_time: "13m", fires_with: Some(pg_database.clone()) },
            // Deadlocks long ago, none since.
            quiet: Case { series: vec![pg(deadlocks, r#"database="app""#, "5x30")], eval_time: "20m", fires_with: None },
        },
        Alert {
            name: "PostgresReplicationLag",
            severity: "warning",
            expr: format!(
                "max by ({per_standby}) ({lag_bytes}) > 1073741824 or max by ({per_standby}) ({lag_seconds}) > 300"
            ),
            for_: "5m",
            summary: "Standby {{ $labels.application_name }} ({{ $labels.client_addr }}) lags behind {{ $labels.server }}",
            description: "The standby {{ $labels.application_name }} at {{ $labels.client_addr }} has been more than 1 GiB of WAL or 5 minutes of replay behind the primary {{ $labels.server }} for 5 minutes: reads there are stale, and a failover to it would wait for the replay or lose what it has not received.",
            // Replay paused on the standby: the WAL it has not replayed grows by 100 MB a minute.
            fires: Case {
                series: vec![
                    pg(lag_bytes, r#"database="app",application_name="replica1",client_addr="10.0.0.2""#, "0+100000000x30"),
                    pg(lag_seconds, r#"database="app",application_name="replica1",client_addr="10.0.0.2""#, "0x30"),
                    pg(lag_bytes, r#"database="postgres",application_name="replica1",client_addr="10.0.0.2""#, "0+100000000x30"),
                    pg(lag_seconds, r#"database="postgres",application_name="replica1",client_addr="10.0.0.2""#, "0x30"),
                ],
                eval_time: "20m",
                fires_with: Some(standby.clone()),
            },
            // A standby that keeps up, a few MB and a second behind.
            quiet: Case {
                series: vec![
                    pg(lag_bytes, r#"database="app",application_name="replica1",client_addr="10.0.0.2""#, "5000000x30"),
                    pg(lag_seconds, r#"database="app",application_name="replica1",client_addr="10.0.0.2""#, "1x30"),
                ],
                eval_time: "20m",
                fires_with: None,
            },
        },
        Alert {
            name: "PostgresReplicationSlotInactive",
            severity: "warning",
            expr: format!(
                "max by ({per_slot}) ({slot_active}) == 0 and max by ({per_slot}) ({slot_retained}) > 1073741824"
            ),
            for_: "15m",
            summary: "Inactive replication slot {{ $labels.slot }} on {{ $labels.server }} retains over 1 GiB of WAL",
            description: "No consumer has been connected to the {{ $labels.slot_type }} replication slot {{ $labels.slot }} on {{ $labels.server }} for 15 minutes, and the slot keeps more than 1 GiB of WAL: the WAL grows until the disk is full and PostgreSQL stops.",
            fires: Case {
                series: vec![
                    pg(slot_active, r#"database="app",slot="standby_b",slot_type="physical""#, "0x40"),
                    pg(slot_retained, r#"database="app",slot="standby_b",slot_type="physical""#, "2000000000+10000000x40"),
                ],
                eval_time: "30m",
                fires_with: Some(vec![("job", "prodready-db"), ("server", "db:5432"), ("slot", "standby_b"), ("slot_type", "physical")]),
            },
            // A connected consumer that is behind: the slot is doing its job (PostgresReplicationLag's concern).
            quiet: Case {
                series: vec![
                    pg(slot_active, r#"database="app",slot="standby_b",slot_type="physical""#, "1x40"),
                    pg(slot_retained, r#"database="app",slot="standby_b",slot_type="physical""#, "5000000000x40"),
                ],
                eval_time: "30m",
                fires_with: None,
            },
        },
        Alert {
            name: "PostgresLowCacheHitRatio",
            severity: "warning",
            expr: format!(
                "sum by ({per_database}) (rate({blocks_hit}[{cache_range}])) / (sum by ({per_database}) (rate({blocks_hit}[{cache_range}])) + sum by ({per_database}) (rate({blocks_read}[{cache_range}]))) < 0.9 \
                 and sum by ({per_database}) (rate({blocks_read}[{cache_range}])) > 100"
            ),
            for_: "15m",
            summary: "Cache hit ratio of {{ $labels.database }} on {{ $labels.server }} is below 90%",
            description: "Over the last 15 minutes fewer than 90% of the blocks {{ $labels.database }} on {{ $labels.server }} needed were in shared buffers, with more than 100 blocks a second read from outside them, for 15 minutes: queries wait on disk. The working set outgrew shared_buffers or memory, or a query scans a large table.",
            // 800 blocks a second from shared buffers, 200 from outside: 80%.
            fires: Case {
                series: vec![pg(blocks_hit, r#"database="app""#, "0+48000x60"), pg(blocks_read, r#"database="app""#, "0+12000x60")],
                eval_time: "40m",
                fires_with: Some(pg_database.clone()),
            },
            // A poor ratio on an almost idle database (20 blocks a second read) is not worth anyone's time.
            quiet: Case {
                series: vec![pg(blocks_hit, r#"database="app""#, "0+600x60"), pg(blocks_read, r#"database="app""#, "0+1200x60")],
                eval_time: "40m",
                fires_with: None,
            },
        },
        Alert {
            name: "PostgresQueryMeanTimeJumped",
            severity: "warning",
            expr: format!(
                "({now} > 2 * ({before})) > 0.01 and sum by ({per_statement}) (increase({statement_calls}{{queryid!=\"other\"}}[{r}])) >= 20",
                now = mean(&r, ""),
                before = mean("1d", &format!(" offset {r}")),
            ),
            for_: "10m",
            summary: "Statement {{ $labels.queryid }} in {{ $labels.database }} on {{ $labels.server }} got more than twice as slow",
            description: "The mean execution time of statement {{ $labels.queryid }} in {{ $labels.database }} on {{ $labels.server }} over the last 5 minutes has been more than twice its mean over the day before (and above 10 ms, with at least 20 calls) for 10 minutes. Its text is in prodready_pg_statement_info.",
            // A statement called once a second takes 50 ms for a day, then 500 ms.
            fires: Case {
                series: vec![
                    pg(statement_calls, r#"database="app",queryid="42""#, "0+60x1500"),
                    pg(statement_seconds, r#"database="app",queryid="42""#, "0+3x1440 4350+30x60"),
                ],
                eval_time: "1460m",
                fires_with: Some(vec![("job", "prodready-db"), ("server", "db:5432"), ("database", "app"), ("queryid", "42")]),
            },
            // Steady (42); the `other` bucket, a new mix of statements, ten times slower; no calls for a day
            // (7); 100 times slower but 5 calls in 5 minutes (9); five times slower but still 5 ms (11).
            quiet: Case {
                series: vec![
                    pg(statement_calls, r#"database="app",queryid="42""#, "0+60x1500"),
                    pg(statement_seconds, r#"database="app",queryid="42""#, "0+3x1500"),
                    pg(statement_calls, r#"database="app",queryid="other""#, "0+600x1500"),
                    pg(statement_seconds, r#"database="app",queryid="other""#, "0+30x1440 43500+300x60"),
                    pg(statement_calls, r#"database="app",queryid="7""#, "100x1500"),
                    pg(statement_seconds, r#"database="app",queryid="7""#, "5x1500"),
                    pg(statement_calls, r#"database="app",queryid="9""#, "0+1x1500"),
                    pg(statement_seconds, r#"database="app",queryid="9""#, "0+0.01x1440 15.4+1x60"),
                    pg(statement_calls, r#"database="app",queryid="11""#, "0+600x1500"),
                    pg(statement_seconds, r#"database="app",queryid="11""#, "0+0.6x1440 867+3x60"),
                ],
                eval_time: "1460m",
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
            description: "No backup of {{ $labels.database }} has passed a verification by restore in 8 days (or ever: the metric is 0 until the first one passes).",
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
            name: "RecoveryDrillOverdue",
            severity: "warning",
            expr: format!("time() - {} > 691200", names::BACKUP_LAST_DRILL_SUCCESS),
            for_: "10m",
            summary: "Point-in-time recovery of cluster {{ $labels.cluster }} not proven for 8 days",
            description: "No recovery drill (base backup plus archived WAL, started and checked) of cluster {{ $labels.cluster }} has passed in 8 days (or ever: the metric is 0 until the first one passes).",
            fires: Case {
                series: series(&[(r#"prodready_backup_last_recovery_drill_success_timestamp_seconds{job="prodready-backup",cluster="7301"}"#, "-700000x40")]),
                eval_time: "20m",
                fires_with: Some(vec![("job", "prodready-backup"), ("cluster", "7301")]),
            },
            quiet: Case {
                series: series(&[(r#"prodready_backup_last_recovery_drill_success_timestamp_seconds{job="prodready-backup",cluster="7301"}"#, "0x40")]),
                eval_time: "20m",
                fires_with: None,
            },
        },
        Alert {
            name: "WalArchiveFailing",
            severity: "critical",
            expr: format!(
                "{failure} > ({success} or {failure} * 0)",
                failure = names::WAL_PUSH_LAST_FAILURE,
                success = names::WAL_PUSH_LAST_SUCCESS
            ),
            for_: "5m",
            summary: "WAL archiving on {{ $labels.instance }} is failing",
            description: "The last WAL push on {{ $labels.instance }} failed and none has succeeded since: PostgreSQL keeps the unarchived WAL in pg_wal (the disk fills) and point-in-time recovery stops at the last archived file.",
            fires: Case {
                series: series(&[
                    (r#"prodready_wal_push_last_failure_timestamp_seconds{job="prodready-wal",instance="db-1"}"#, "100x20"),
                    (r#"prodready_wal_push_last_success_timestamp_seconds{job="prodready-wal",instance="db-1"}"#, "50x20"),
                ]),
                eval_time: "10m",
                fires_with: Some(vec![("job", "prodready-wal"), ("instance", "db-1")]),
            },
            quiet: Case {
                series: series(&[
                    (r#"prodready_wal_push_last_failure_timestamp_seconds{job="prodready-wal",instance="db-1"}"#, "50x20"),
                    (r#"prodready_wal_push_last_success_timestamp_seconds{job="prodready-wal",instance="db-1"}"#, "100x20"),
                ]),
                eval_time: "10m",
                fires_with: None,
            },
        },
        Alert {
            name: "WalArchiveLagging",
            severity: "warning",
            // Quiet while PostgreSQL (through `prodready db exporter`) shows nothing can be waiting: no
            // finished segment waits for the archiver, and archive_timeout (at most an hour) switches
            // out any write. That is an idle database, whose archive ages without losing anything.
            expr: format!(
                "(time() - {newest} > 3600) unless on() (max({ready}) == 0 and on() min({timeout}) > 0 \
                 and on() max({timeout}) <= 3600)",
                newest = names::WAL_ARCHIVE_NEWEST,
                ready = names::PG_WAL_READY_SEGMENTS,
                timeout = names::PG_ARCHIVE_TIMEOUT,
            ),
            for_: "15m",
            summary: "Nothing reached the WAL archive of {{ $labels.instance }} for an hour",
            description: "The newest file in the WAL archive is more than an hour old, and PostgreSQL has segments waiting for the archiver, an archive_timeout that lets writes wait longer, or no database exporter to tell: a point-in-time recovery would lose everything written since.",
            fires: Case {
                series: vec![
                    (r#"prodready_wal_archive_newest_timestamp_seconds{job="prodready-daemon",instance="daemon-a:9187"}"#.to_owned(), "-4000x60".to_owned()),
                    pg(names::PG_WAL_READY_SEGMENTS, r#"database="app""#, "3x60"),
                    pg(names::PG_ARCHIVE_TIMEOUT, r#"database="app""#, "60x60"),
                ],
                eval_time: "30m",
                fires_with: Some(vec![("job", "prodready-daemon"), ("instance", "daemon-a:9187")]),
            },
            // An idle database: the archive is as old, but nothing waits and archive_timeout is 60 s.
            quiet: Case {
                series: vec![
                    (r#"prodready_wal_archive_newest_timestamp_seconds{job="prodready-daemon",instance="daemon-a:9187"}"#.to_owned(), "-4000x60".to_owned()),
                    pg(names::PG_WAL_READY_SEGMENTS, r#"database="app""#, "0x60"),
                    pg(names::PG_ARCHIVE_TIMEOUT, r#"database="app""#, "60x60"),
                ],
                eval_time: "30m",
                fires_with: None,
            },
        },
        Alert {
            name: "WalArchiveGap",
            severity: "critical",
            expr: format!("{} > 0", names::WAL_ARCHIVE_MISSING_SEGMENTS),
            for_: "10m",
            summary: "The WAL archive of {{ $labels.instance }} is missing segments",
            description: "Segments are missing between the first and last archived WAL of a timeline: no point-in-time recovery can cross the gap.",
            fires: Case {
                series: series(&[(r#"prodready_wal_archive_missing_segments{job="prodready-daemon",instance="daemon-a:9187"}"#, "2x30")]),
                eval_time: "20m",
                fires_with: Some(vec![("job", "prodready-daemon"), ("instance", "daemon-a:9187")]),
            },
            quiet: Case {
                series: series(&[(r#"prodready_wal_archive_missing_segments{job="prodready-daemon",instance="daemon-a:9187"}"#, "0x30")]),
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
            description: "The last run of the scheduled job {{ $labels.daemon_job }} that ran to an end failed or timed out, and no later run has succeeded for 5 minutes (cancelled and abandoned runs are left out).",
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
                "time() - max by (daemon_job) ({overdue_after}) \
                 - (max by (daemon_job) ({last_duration}) or max by (daemon_job) ({overdue_after}) * 0) > 300"
            ),
            for_: "10m",
            summary: "Scheduled job {{ $labels.daemon_job }} has not succeeded in its last two scheduled runs",
            description: "The scheduled job {{ $labels.daemon_job }} has had no successful run since two of its scheduled runs came (and its last run's duration and 5 minutes passed): runs are failing, not starting, or hanging. A job that never succeeded counts from when the daemon began scheduling it; gaps in the schedule (a weekday job's weekend) are not counted as missed runs.",
            // A job every 10 minutes whose last success started at 5m: its second run after that was due
            // at 25m; overdue past 25m + 5m (no run duration recorded: a replica that saw none finish),
            // firing 10 minutes later.
            fires: Case {
                series: series(&[
                    (&format!(r#"{overdue_after}{{job="prodready-daemon",daemon_job="backup",instance="daemon-a:9187"}}"#), "1500x60"),
                    (&format!(r#"{overdue_after}{{job="prodready-daemon",daemon_job="backup",instance="daemon-b:9187"}}"#), "1500x60"),
                ]),
                eval_time: "45m",
                fires_with: Some(scheduled.clone()),
            },
            // One failed run (at 35m) is within the margin, and a replica with an older view of the shared
            // state does not count: the newest success across replicas started at 25m, so the second run
            // after it is due at 45m; with runs of a minute, 45m is not overdue.
            quiet: Case {
                series: series(&[
                    (&format!(r#"{overdue_after}{{job="prodready-daemon",daemon_job="backup",instance="daemon-a:9187"}}"#), "1500x60"),
                    (&format!(r#"{overdue_after}{{job="prodready-daemon",daemon_job="backup",instance="daemon-b:9187"}}"#), "2700x60"),
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
