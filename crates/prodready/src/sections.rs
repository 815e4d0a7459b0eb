//! The sections of `prodready.toml`, with every default. The binary owns the file's schema: libraries
//! take typed options (`BackupOptions`, `ShipOptions`, `PackOptions`...) that the commands build from
//! these sections, and where a library has a default of its own, the section's default is that value.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Where the default checklist looks for Loki when `[logging] loki_url` is not set.
pub const LOCAL_LOKI_URL: &str = "http://127.0.0.1:3100";
/// Where the default checklist looks for an OTLP collector when `[tracing] otlp_endpoint` is not set.
pub const LOCAL_OTLP_ENDPOINT: &str = "http://127.0.0.1:4318";

/// The `[backup]` section of `prodready.toml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BackupConfig {
    /// Where backups live: a directory path or `s3://BUCKET/PREFIX`. `None` means the caller's local
    /// data directory (the binary uses `<data_dir>/backups`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub store: Option<String>,
    /// Connections that copy table data in parallel, all sharing one snapshot.
    #[serde(deserialize_with = "range::jobs")]
    pub jobs: u16,
    /// zstd compression level (1-19).
    #[serde(deserialize_with = "range::zstd_level")]
    pub zstd_level: i32,
    /// age X25519 recipients (`age1...`) that backups are encrypted to; empty means unencrypted.
    pub encrypt_to: Vec<String>,
    /// A custom S3 endpoint (MinIO, moto); implies path-style addressing unless `s3_path_style = false`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub s3_endpoint: Option<String>,
    /// Force path-style (`true`) or virtual-host-style (`false`) S3 addressing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub s3_path_style: Option<bool>,
    /// SQL statements run against the scratch database after a verification restore; each must succeed.
    pub smoke_sql: Vec<String>,
    /// Tables a recovery drill (`backup pitr --verify`) counts, `DATABASE:TABLE` or `DATABASE:TABLE=ROWS`.
    #[serde(deserialize_with = "range::drill_tables")]
    pub drill_tables: Vec<String>,
    /// Retention policy applied by `backup prune`.
    pub retention: prodready_backup::Retention,
    /// WAL archiving (`backup wal-push`, `backup wal-fetch`).
    pub wal: WalConfig,
    /// When `backup cron` schedules a backup (cron syntax).
    pub schedule: String,
    /// When it schedules a restore verification.
    pub verify_schedule: String,
    /// When it schedules pruning.
    pub prune_schedule: String,
}

impl Default for BackupConfig {
    fn default() -> Self {
        Self {
            store: None,
            jobs: prodready_backup::DEFAULT_JOBS,
            zstd_level: prodready_backup::DEFAULT_ZSTD_LEVEL,
            encrypt_to: Vec::new(),
            s3_endpoint: None,
            s3_path_style: None,
            smoke_sql: Vec::new(),
            drill_tables: Vec::new(),
            retention: prodready_backup::Retention::default(),
            wal: WalConfig::default(),
            schedule: "17 2 * * *".to_owned(),
            verify_schedule: "47 3 * * *".to_owned(),
            prune_schedule: "30 5 * * *".to_owned(),
        }
    }
}

/// The `[backup.wal]` section: WAL archiving.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WalConfig {
    /// Files `wal-push` sends at once: the one PostgreSQL asks for and others it has marked ready.
    #[serde(deserialize_with = "range::wal_jobs")]
    pub push_jobs: usize,
    /// Push in the background: PostgreSQL's call only waits until its file is in the store.
    pub async_push: bool,
    /// How long an asynchronous push waits for its file before failing (PostgreSQL then retries).
    #[serde(with = "humantime_serde")]
    pub async_timeout: Duration,
    /// Where pushed-ahead files are recorded; `None` means `<pg_wal>/prodready_archive_status`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spool_dir: Option<PathBuf>,
}

impl Default for WalConfig {
    fn default() -> Self {
        Self { push_jobs: 2, async_push: false, async_timeout: Duration::from_secs(60), spool_dir: None }
    }
}

/// Which store holds the secrets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Backend {
    /// A local encrypted file (the embedded default: works with no configuration).
    #[default]
    File,
    /// AWS Secrets Manager.
    Aws,
    /// The process environment, read-only.
    Env,
}

/// The `[secrets]` section of `prodready.toml`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SecretsConfig {
    pub backend: Backend,
    /// The encrypted store file; `None` means `<data_dir>/secrets.enc`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<PathBuf>,
    /// The key file for the encrypted store (must be mode 0600; created on first write); `None` means
    /// `<data_dir>/secrets.key`. The `prodready` binary takes `$PRODREADY_SECRETS_KEY` instead when set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_file: Option<PathBuf>,
    /// Default `--prefix` of `secrets list`, `secrets migrate` and `secrets exec`, e.g. `prod/app/`.
    pub prefix: String,
    /// AWS region for the `aws` backend; `None` means the SDK's own resolution.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aws_region: Option<String>,
    /// A custom Secrets Manager endpoint (moto, LocalStack).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aws_endpoint: Option<String>,
}

/// The `[scan]` section of `prodready.toml`: what `prodready scan` adds to its built-in rules.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScanConfig {
    /// Accepted findings of `scan secrets` (a JSON report of an earlier scan), used when `--baseline` is
    /// not given; relative to the working directory.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub baseline: Option<PathBuf>,
    /// A TOML file of extra secret rules and allowlists, in the format of the built-in rules
    /// (`[[rules]]` with id, regex, keywords, entropy...; `[allow]` secrets and paths).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rules: Option<PathBuf>,
    /// Regexes: a secret matching one is a placeholder, never a finding.
    pub allow_secrets: Vec<String>,
    /// Regexes over `/`-separated relative paths never scanned for secrets, e.g. `^testdata/`.
    pub allow_paths: Vec<String>,
    /// Built-in secret rules turned off, by id (`prodready scan secrets --list-rules` lists them).
    pub disable_rules: Vec<String>,
    /// Files larger than this many bytes are skipped (and counted).
    pub max_file_size: u64,
}

impl Default for ScanConfig {
    fn default() -> Self {
        Self {
            baseline: None,
            rules: None,
            allow_secrets: Vec::new(),
            allow_paths: Vec::new(),
            disable_rules: Vec::new(),
            max_file_size: prodready_scan::secrets::DEFAULT_MAX_FILE_SIZE,
        }
    }
}

/// The `[logging]` section of `prodready.toml`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LoggingConfig {
    /// `tracing-subscriber` env-filter directives, e.g. `info,prodready_backup=debug`.
    pub filter: String,
    pub format: prodready_logging::LogFormat,
    /// Loki base URL, e.g. `http://127.0.0.1:3100`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub loki_url: Option<String>,
    /// Static, low-cardinality labels attached to every stream.
    pub labels: BTreeMap<String, String>,
    /// The `logs ship` agent.
    pub ship: ShipConfig,
    /// How long Loki keeps logs (the generated stack's compactor deletes older ones).
    #[serde(with = "humantime_serde")]
    pub retention: Duration,
}

impl Default for LoggingConfig {
    fn default() -> Self {
        Self {
            filter: "info".to_owned(),
            format: prodready_logging::LogFormat::Json,
            loki_url: None,
            labels: BTreeMap::new(),
            ship: ShipConfig::default(),
            retention: Duration::from_secs(30 * 86_400),
        }
    }
}

/// The `[logging.ship]` section: what the shipping agent tails.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ShipConfig {
    /// File globs to tail.
    pub paths: Vec<String>,
    /// Positions file; `None` means `<data_dir>/positions.json`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub positions: Option<PathBuf>,
    /// Address of the agent's own metrics endpoint, e.g. `127.0.0.1:9080`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metrics_addr: Option<String>,
    /// Fields of JSON lines that become stream labels, e.g. `["level"]` (keep them low-cardinality).
    pub json_labels: Vec<String>,
    /// Descriptors held for files being read; other files wait their turn (keep it well under the
    /// process's open-file limit, `ulimit -n`).
    #[serde(deserialize_with = "range::open_files")]
    pub max_open_files: usize,
}

impl Default for ShipConfig {
    fn default() -> Self {
        Self {
            paths: Vec::new(),
            positions: None,
            metrics_addr: None,
            json_labels: Vec::new(),
            max_open_files: prodready_logging::ship::DEFAULT_MAX_OPEN_FILES,
        }
    }
}

/// The `[database_monitoring]` section: what `db exporter` and `db top` watch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseMonitoringConfig {
    /// The databases to watch (libpq URLs); empty means `[database] url`.
    pub databases: Vec<String>,
    /// Statements reported per database (the rest are summed as `other`); also the tables reported (the
    /// largest N and the N with the most dead tuples) and the indexes (the largest N).
    #[serde(deserialize_with = "range::top_n")]
    pub top_n: usize,
    /// Read table sizes, tuples and vacuum times (`pg_total_relation_size` of every table per scrape).
    pub collect_tables: bool,
    /// Read index sizes.
    pub collect_indexes: bool,
    /// Read pg_stat_statements (when the extension is there).
    pub collect_statements: bool,
    /// A database that has not answered a scrape within this long counts as down for that scrape.
    #[serde(with = "humantime_serde")]
    pub scrape_timeout: Duration,
    /// The address `db exporter` serves `/metrics` on.
    pub listen: std::net::SocketAddr,
}

impl Default for DatabaseMonitoringConfig {
    fn default() -> Self {
        Self {
            databases: Vec::new(),
            top_n: prodready_pg::monitor::DEFAULT_TOP_N,
            collect_tables: true,
            collect_indexes: true,
            collect_statements: true,
            scrape_timeout: Duration::from_secs(5),
            listen: std::net::SocketAddr::from(([127, 0, 0, 1], 9188)),
        }
    }
}

/// The `[daemon]` section: what `prodready daemon` runs and where it listens.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DaemonConfig {
    /// The HTTP address of `/metrics`, `/healthz`, `/readyz` and the status page.
    pub listen: std::net::SocketAddr,
    /// The PostgreSQL database holding the leader lock and the table of runs; `None` means `[database]
    /// url`. Every replica must name the same database.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lock_database: Option<String>,
    /// The time zone of schedules that name none (an IANA name).
    #[serde(deserialize_with = "range::zone")]
    pub timezone: String,
    /// How long a leader may go without reaching the lock database before it steps down (and a standby
    /// can take over). At least 1 s.
    #[serde(serialize_with = "humantime_serde::serialize", deserialize_with = "range::lease")]
    pub lease: Duration,
    /// How long SIGTERM waits for running jobs before cancelling them.
    #[serde(with = "humantime_serde")]
    pub shutdown_timeout: Duration,
    /// The jobs; none means the default ones (backup, verify, prune on the `[backup]` schedules, and a
    /// daily check).
    #[serde(deserialize_with = "range::unique_jobs")]
    pub jobs: Vec<DaemonJob>,
}

impl Default for DaemonConfig {
    fn default() -> Self {
        Self {
            listen: std::net::SocketAddr::from(([127, 0, 0, 1], 9187)),
            lock_database: None,
            timezone: "UTC".to_owned(),
            lease: prodready_daemon::DEFAULT_LEASE,
            shutdown_timeout: prodready_daemon::DEFAULT_SHUTDOWN_TIMEOUT,
            jobs: Vec::new(),
        }
    }
}

/// What a daemon job runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum JobKind {
    /// `backup run`
    BackupRun,
    /// `backup verify` (full: by restore)
    BackupVerify,
    /// `backup prune`
    BackupPrune,
    /// `backup base`: a physical base backup for point-in-time recovery
    BackupBase,
    /// `check` (history and a JSON report)
    Check,
    /// `db top`: the costliest statements, kept for the status page
    DbCollect,
}

impl JobKind {
    pub fn name(self) -> &'static str {
        match self {
            Self::BackupRun => "backup-run",
            Self::BackupVerify => "backup-verify",
            Self::BackupPrune => "backup-prune",
            Self::BackupBase => "backup-base",
            Self::Check => "check",
            Self::DbCollect => "db-collect",
        }
    }

    /// How long a run may take unless the job says otherwise.
    pub fn default_timeout(self) -> Duration {
        match self {
            Self::BackupRun | Self::BackupVerify | Self::BackupBase => Duration::from_secs(6 * 3600),
            Self::BackupPrune => Duration::from_secs(30 * 60),
            Self::Check => Duration::from_secs(15 * 60),
            Self::DbCollect => Duration::from_secs(60),
        }
    }
}

/// One `[[daemon.jobs]]` entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DaemonJob {
    /// Unique; the `job` label of the daemon's metrics.
    pub name: String,
    /// `backup-run`, `backup-verify`, `backup-prune`, `backup-base`, `check` or `db-collect`.
    pub run: JobKind,
    /// Cron: 5 fields, or 6 with seconds first, or `@hourly`, `@daily`, `@weekly`, `@monthly`, `@yearly`.
    #[serde(deserialize_with = "range::cron")]
    pub schedule: String,
    /// The schedule's time zone [default: `[daemon] timezone`].
    #[serde(default, deserialize_with = "range::zone_opt", skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    /// A run still going after this long is stopped [default: 6h for backups, base backups and
    /// verifications, 30m for pruning, 15m for checks].
    #[serde(default, with = "humantime_serde", skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Duration>,
    /// A random delay up to this long after the scheduled time.
    #[serde(default, with = "humantime_serde")]
    pub jitter: Duration,
    /// A run missed while no daemon was up: `run-once` (as soon as a leader is elected) or `skip`.
    #[serde(default)]
    pub missed: prodready_daemon::Missed,
    /// Backup jobs: the database (a URL or a name; `backup-base`: a URL of the server) [default:
    /// `[database] url`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database: Option<String>,
    /// Backup jobs: the store [default: `[backup] store`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store: Option<String>,
}

/// The `[stack]` section: the monitoring stack `stack generate` writes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StackConfig {
    /// Scrape jobs for the platform's services: job name -> targets as Prometheus reaches them
    /// (`api = ["api.internal:8080"]`).
    pub scrape: BTreeMap<String, Vec<String>>,
    /// The address the stack's ports are published on (`127.0.0.1`: this host only).
    pub bind: String,
    /// How long Prometheus keeps metrics.
    #[serde(with = "humantime_serde")]
    pub metrics_retention: Duration,
    /// Container images, pinned.
    pub images: StackImages,
}

impl Default for StackConfig {
    fn default() -> Self {
        Self {
            scrape: BTreeMap::new(),
            bind: "127.0.0.1".to_owned(),
            metrics_retention: Duration::from_secs(15 * 86_400),
            images: StackImages::default(),
        }
    }
}

/// The `[stack.images]` section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StackImages {
    pub prometheus: String,
    pub alertmanager: String,
    pub grafana: String,
    pub loki: String,
}

impl Default for StackImages {
    fn default() -> Self {
        Self {
            prometheus: "prom/prometheus:v2.53.2".to_owned(),
            alertmanager: "prom/alertmanager:v0.27.0".to_owned(),
            grafana: "grafana/grafana:11.2.0".to_owned(),
            loki: "grafana/loki:3.1.1".to_owned(),
        }
    }
}

/// The `[alerts]` section of `prodready.toml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AlertsConfig {
    /// Prometheus scrape interval the rules are written for (rate() ranges are at least 4 of these).
    #[serde(with = "humantime_serde")]
    pub scrape_interval: Duration,
    /// Where `alerts generate` writes rule files.
    pub rules_dir: PathBuf,
    /// Base of every alert's `runbook_url`; the alert's anchor is appended.
    pub runbook_base_url: String,
    /// The Prometheus server that scrapes the platform (the checklist asks it which targets are up).
    pub prometheus_url: String,
    /// The Alertmanager that routes the platform's alerts (the checklist reads its routing).
    pub alertmanager_url: String,
    /// Slack receivers of the generated Alertmanager configuration.
    pub slack: SlackConfig,
    /// Email for every alert (off while `to` is empty).
    pub email: EmailConfig,
    /// PagerDuty for critical alerts (off while neither `routing_key_file` nor `routing_key_secret` is set).
    pub pagerduty: PagerDutyConfig,
    /// Service level objectives turned into burn-rate alerts.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub slos: Vec<prodready_metrics_alerts::slo::SloSpec>,
}

/// The `[alerts.slack]` section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SlackConfig {
    /// A file holding the Slack incoming-webhook URL (never the URL itself).
    pub webhook_file: PathBuf,
    pub critical_channel: String,
    pub warning_channel: String,
}

impl Default for SlackConfig {
    fn default() -> Self {
        Self {
            webhook_file: PathBuf::from("/etc/prodready/slack-webhook"),
            critical_channel: "#alerts-critical".to_owned(),
            warning_channel: "#alerts".to_owned(),
        }
    }
}

/// The `[alerts.email]` section: alerts by email through an SMTP smarthost.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EmailConfig {
    /// Recipients of every alert; empty turns email off.
    pub to: Vec<String>,
    pub from: String,
    /// The SMTP relay, `host:port`.
    pub smarthost: String,
    /// SMTP login, when the relay asks for one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// A file holding the SMTP password (mode 0600; never the password itself).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password_file: Option<PathBuf>,
    /// The name of the secret holding the SMTP password in the `[secrets]` store, instead of
    /// `password_file`: `notify email` reads it there, and `alerts generate` / `stack generate` write it
    /// into `OUT/secrets/` (mode 0600, git-ignored) for Alertmanager.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password_secret: Option<String>,
    /// Refuse to send without STARTTLS (turn off only for a relay on loopback).
    pub require_tls: bool,
}

impl Default for EmailConfig {
    fn default() -> Self {
        Self {
            to: Vec::new(),
            from: "prodready@localhost".to_owned(),
            smarthost: "localhost:587".to_owned(),
            username: None,
            password_file: None,
            password_secret: None,
            require_tls: true,
        }
    }
}

impl EmailConfig {
    /// The Alertmanager options, when email is on.
    pub fn options(&self) -> Option<prodready_metrics_alerts::alertmanager::EmailOptions> {
        (!self.to.is_empty()).then(|| prodready_metrics_alerts::alertmanager::EmailOptions {
            to: self.to.clone(),
            from: self.from.clone(),
            smarthost: self.smarthost.clone(),
            username: self.username.clone(),
            password_file: self.password_file.clone(),
            require_tls: self.require_tls,
        })
    }
}

/// The `[alerts.pagerduty]` section: critical alerts page through PagerDuty's Events API v2.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PagerDutyConfig {
    /// A file holding the integration's routing key (mode 0600); PagerDuty is off while neither this nor
    /// `routing_key_secret` is set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub routing_key_file: Option<PathBuf>,
    /// The name of the secret holding the routing key in the `[secrets]` store, instead of
    /// `routing_key_file` (read by `notify pagerduty`, written into `OUT/secrets/` by the generators).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub routing_key_secret: Option<String>,
    /// The Events API endpoint.
    pub url: String,
}

impl Default for PagerDutyConfig {
    fn default() -> Self {
        Self {
            routing_key_file: None,
            routing_key_secret: None,
            url: prodready_metrics_alerts::alertmanager::PAGERDUTY_EVENTS_URL.to_owned(),
        }
    }
}

impl PagerDutyConfig {
    /// The Alertmanager options, when PagerDuty is on.
    pub fn options(&self) -> Option<prodready_metrics_alerts::alertmanager::PagerDutyOptions> {
        self.routing_key_file.as_ref().map(|file| prodready_metrics_alerts::alertmanager::PagerDutyOptions {
            routing_key_file: file.clone(),
            url: Some(self.url.clone()),
        })
    }
}

impl Default for AlertsConfig {
    fn default() -> Self {
        Self {
            scrape_interval: prodready_metrics_alerts::pack::PackOptions::default().scrape_interval,
            rules_dir: PathBuf::from("deploy/prometheus/rules"),
            runbook_base_url: "docs/runbook.md".to_owned(),
            prometheus_url: "http://127.0.0.1:9090".to_owned(),
            alertmanager_url: "http://127.0.0.1:9093".to_owned(),
            slack: SlackConfig::default(),
            email: EmailConfig::default(),
            pagerduty: PagerDutyConfig::default(),
            slos: Vec::new(),
        }
    }
}

/// OTLP transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Protocol {
    /// OTLP over HTTP with protobuf bodies (the default: no async runtime needed for export).
    #[default]
    HttpProtobuf,
    /// OTLP over gRPC.
    Grpc,
}

/// Where `[tracing]` sends spans.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum TraceExporter {
    /// OTLP (http/protobuf or gRPC, as `protocol` says).
    #[default]
    Otlp,
    /// Zipkin's v2 JSON API.
    Zipkin,
}

/// The `[tracing]` section of `prodready.toml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TracingConfig {
    /// Where spans go: `otlp` (the default) or `zipkin`.
    pub exporter: TraceExporter,
    /// OTLP collector endpoint, e.g. `http://127.0.0.1:4318`; `None` means tracing is off.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub otlp_endpoint: Option<String>,
    /// Zipkin's spans URL, e.g. `http://127.0.0.1:9411/api/v2/spans`, for `exporter = "zipkin"`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub zipkin_endpoint: Option<String>,
    pub protocol: Protocol,
    /// `service.name` resource attribute.
    pub service_name: String,
    /// Deployment environment resource attribute, e.g. `production`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    /// Share of root traces sampled (0.0-1.0); children follow their parent's decision.
    #[serde(deserialize_with = "range::ratio")]
    pub sample_ratio: f64,
}

impl Default for TracingConfig {
    fn default() -> Self {
        Self {
            exporter: TraceExporter::Otlp,
            otlp_endpoint: None,
            zipkin_endpoint: None,
            protocol: Protocol::HttpProtobuf,
            service_name: "prodready".to_owned(),
            environment: None,
            sample_ratio: 1.0,
        }
    }
}

/// The `[loadtest]` section of `prodready.toml`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LoadtestConfig {
    /// The scenario file `load run` uses when none is given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scenario: Option<PathBuf>,
    /// Where the last run's JSON summary is written (and where the checklist reads it); `None` means
    /// `<data_dir>/loadtest-summary.json`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub summary: Option<PathBuf>,
}

/// The `[checklist]` section of `prodready.toml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ChecklistConfig {
    /// The overall score (0-10) a launch needs, on top of every must-have check passing.
    #[serde(deserialize_with = "range::score")]
    pub min_score: f64,
    /// How long one check may run before it counts as an error.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// Keep the embedded default checklist even when checks are declared.
    pub include_defaults: bool,
    /// History of runs, for the trend; `None` means `<data_dir>/check-history.jsonl`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub history_file: Option<PathBuf>,
    /// Folder with runbook.md, incident-response.md and deployment.md, for the default checks.
    pub docs_dir: PathBuf,
    /// Coverage report (lcov or llvm-cov JSON), for the default checks: at least 80% of lines.
    pub coverage_report: PathBuf,
    /// The security scans' SARIF reports, for the default checks: a directory whose `*.sarif` files
    /// are all read (the CI template in deploy/ci writes `secrets.sarif` and `deps.sarif` there), or one file.
    pub scan_report: PathBuf,
    /// The CI configuration the default CI/CD checks read: a file, or a directory of workflow files.
    pub ci_path: PathBuf,
    /// The platform's Grafana dashboards (JSON), for the default checks (`alerts generate` writes them there).
    pub dashboards_dir: PathBuf,
    /// A frontend's coverage report (lcov), held to 60% beside `coverage_report`'s 80%.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub frontend_coverage_report: Option<PathBuf>,
    /// A TOML file of `[[checks]]` tables, added to the checks declared here; a relative path is taken from
    /// the configuration file's directory.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<PathBuf>,
    /// Declared checks; they replace the embedded defaults unless `include_defaults = true`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<prodready_checklist::CheckSpec>,
}

impl Default for ChecklistConfig {
    fn default() -> Self {
        Self {
            min_score: 7.0,
            timeout: Duration::from_secs(10),
            include_defaults: false,
            history_file: None,
            docs_dir: PathBuf::from("docs"),
            coverage_report: PathBuf::from("coverage/lcov.info"),
            frontend_coverage_report: None,
            scan_report: PathBuf::from("scan-reports"),
            ci_path: PathBuf::from(".github/workflows"),
            dashboards_dir: PathBuf::from("deploy/grafana/dashboards"),
            file: None,
            checks: Vec::new(),
        }
    }
}

/// A checklist file named by `[checklist] file`: just `[[checks]]`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChecklistFile {
    #[serde(default)]
    pub checks: Vec<prodready_checklist::CheckSpec>,
}

/// Ranges checked while the file is read, so a bad value is reported with its file, line and key.
mod range {
    use std::fmt::Display;
    use std::ops::RangeInclusive;

    use serde::{Deserialize, Deserializer, de::Error as _};

    /// `T` from the file, refused with `what` when outside `range`.
    fn within<'de, D, T>(
        d: D,
        range: RangeInclusive<T>,
        what: impl FnOnce(&T) -> String,
    ) -> Result<T, D::Error>
    where
        D: Deserializer<'de>,
        T: Deserialize<'de> + PartialOrd,
    {
        let value = T::deserialize(d)?;
        if range.contains(&value) { Ok(value) } else { Err(D::Error::custom(what(&value))) }
    }

    fn not_a<T: Display>(kind: &'static str) -> impl FnOnce(&T) -> String {
        move |v| format!("{v} is not {kind}")
    }

    pub(super) fn cron<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
        let expression = String::deserialize(d)?;
        prodready_daemon::check_expression(&expression).map_err(D::Error::custom)?;
        Ok(expression)
    }

    pub(super) fn drill_tables<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
        let tables = Vec::<String>::deserialize(d)?;
        for table in &tables {
            table.parse::<prodready_backup::drill::TableCheck>().map_err(D::Error::custom)?;
        }
        Ok(tables)
    }

    pub(super) fn zone<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
        let zone = String::deserialize(d)?;
        prodready_daemon::check_zone(&zone).map_err(D::Error::custom)?;
        Ok(zone)
    }

    pub(super) fn lease<'de, D: Deserializer<'de>>(d: D) -> Result<std::time::Duration, D::Error> {
        let lease: std::time::Duration = humantime_serde::deserialize(d)?;
        if lease < std::time::Duration::from_secs(1) {
            return Err(D::Error::custom(format!(
                "{} is too short: a lease must be at least 1s (the leader renews it every fifth of it)",
                humantime::format_duration(lease)
            )));
        }
        Ok(lease)
    }

    pub(super) fn top_n<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
        within(d, 1..=10_000, |_| "must be from 1 to 10000 (series per database)".to_owned())
    }

    pub(super) fn unique_jobs<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<super::DaemonJob>, D::Error> {
        let jobs = Vec::<super::DaemonJob>::deserialize(d)?;
        let mut seen = std::collections::HashSet::new();
        for job in &jobs {
            if job.name.trim().is_empty() {
                return Err(D::Error::custom("a job has an empty name"));
            }
            if !seen.insert(job.name.as_str()) {
                return Err(D::Error::custom(format!(
                    "two jobs are named `{}`; job names must be unique (they label the metrics)",
                    job.name
                )));
            }
        }
        Ok(jobs)
    }

    pub(super) fn zone_opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
        zone(d).map(Some)
    }

    pub(super) fn jobs<'de, D: Deserializer<'de>>(d: D) -> Result<u16, D::Error> {
        within(d, 1..=u16::MAX, |_| "must be at least 1 (connections copying in parallel)".to_owned())
    }

    pub(super) fn wal_jobs<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
        within(d, 1..=64, |_| "must be from 1 to 64 (files pushed at once)".to_owned())
    }

    pub(super) fn zstd_level<'de, D: Deserializer<'de>>(d: D) -> Result<i32, D::Error> {
        within(d, 1..=19, not_a("a zstd level from 1 to 19"))
    }

    pub(super) fn ratio<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        within(d, 0.0..=1.0, not_a("a ratio from 0.0 to 1.0"))
    }

    pub(super) fn open_files<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
        within(d, 1..=1_000_000, |_| "must be at least 1 (descriptors held for files being read)".to_owned())
    }

    pub(super) fn score<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        within(d, 0.0..=10.0, not_a("a score from 0 to 10"))
    }
}
