//! The command-line surface. docs/cli.md is generated from these definitions.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

const ABOUT: &str = "Make a web platform production-ready: verified backups, secrets, logs, alerts, tracing, \
load tests and a launch checklist";

const AFTER_HELP: &str = "\
Configuration: --config FILE, else $PRODREADY_CONFIG, else ./prodready.toml, else embedded defaults.
Any key can be overridden as PRODREADY_<SECTION>__<KEY>, e.g. PRODREADY_BACKUP__JOBS=4.

Examples:
  prodready check                     score readiness and gate the launch (exit 0 = ready)
  prodready init                      write a commented starter prodready.toml
  prodready config show               print the effective configuration, secrets redacted
  prodready completions bash > /etc/bash_completion.d/prodready

Exit codes: 0 success, 1 the job failed, 2 usage or configuration error; `check` adds 3 (a must-have
failed) and 4 (score below the minimum). See docs/cli.md.";

const CHECK_AFTER_HELP: &str = "\
With no [[checklist.checks]] in the configuration, the embedded default checklist runs against the local
platform: PostgreSQL, Prometheus targets, Loki, an OTLP collector, docs, coverage, the last load test and
manual attestations (restore drill, on-call rota). Every check that does not pass shows its fix.

Examples:
  prodready check                                  scorecard on the terminal
  prodready check --min-score 8 --format junit --output check.xml
  prodready check --json | jq .scorecard.overall
  prodready check --only postgres --only runbook   run two checks, skip the rest

Exit codes: 0 ready, 1 tool error, 2 usage, 3 a must-have check failed, 4 below the minimum score.";

const DAEMON_AFTER_HELP: &str = "\
The jobs come from [[daemon.jobs]] (name, run, schedule, timezone, timeout, jitter, missed, database,
store); with none, the defaults run: backup-run, backup-verify and backup-prune on the [backup] schedules,
and a daily check. Several replicas may run against one lock database ([daemon] lock_database, else
[database] url): one is elected through a PostgreSQL advisory lock and runs the jobs; each scheduled run
happens once (a table of runs, prodready_daemon_runs, records it); a standby takes over within a lease
([daemon] lease) of the leader's death.

HTTP on [daemon] listen (127.0.0.1:9187): / status page, /metrics, /healthz, /readyz, /status.json.
Signals: SIGTERM or SIGINT stop it (no new job starts; running jobs get [daemon] shutdown_timeout, then
are cancelled; exit 0), SIGHUP reloads the configuration (a bad file keeps the old schedules).

Examples:
  prodready daemon
  prodready daemon --config /etc/prodready/prodready.toml
  prodready daemon --listen 0.0.0.0:9187
  curl -s localhost:9187/readyz";

#[derive(Debug, Parser)]
#[command(name = "prodready", version, about = ABOUT, after_help = AFTER_HELP, propagate_version = true)]
pub struct Cli {
    /// Configuration file [default: $PRODREADY_CONFIG, else ./prodready.toml if present]
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Set by `daemon` on the jobs it starts: the daemon's process id. The job asks the kernel for
    /// SIGTERM when that process dies, so a killed daemon leaves no job running unsupervised.
    #[arg(long, global = true, hide = true, value_name = "PID")]
    pub daemon_parent: Option<i32>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the readiness checklist, print the scorecard and gate the launch
    #[command(after_help = CHECK_AFTER_HELP)]
    Check(CheckArgs),

    /// Verified PostgreSQL backups: run, list, verify, restore, prune, status
    #[command(subcommand)]
    Backup(BackupCommand),

    /// Prometheus alert rules, SLO burn-rate alerts and Alertmanager routing: generate, check, test
    #[command(subcommand)]
    Alerts(AlertsCommand),

    /// Secrets in AWS Secrets Manager or a local encrypted file: get, put, migrate a .env, exec with them
    #[command(subcommand, after_help = SECRETS_AFTER_HELP)]
    Secrets(SecretsCommand),

    /// Security scans for CI: secrets in a tree or its git history, locked dependencies against advisories
    #[command(subcommand)]
    Scan(ScanCommand),

    /// Centralized logs: ship log files to Loki (a promtail-style agent), query Loki with LogQL
    #[command(subcommand)]
    Logs(LogsCommand),

    /// The monitoring stack: Prometheus, Alertmanager, Grafana, Loki and the log agent, as a compose file
    #[command(subcommand)]
    Stack(StackCommand),

    /// Run the schedules: backups, verifications, pruning and checks, on one leader among replicas
    #[command(after_help = DAEMON_AFTER_HELP)]
    Daemon(DaemonArgs),

    /// PostgreSQL query monitoring: the slowest queries now, a Prometheus exporter
    #[command(subcommand)]
    Db(DbCommand),

    /// Distributed tracing: prove the pipeline to the collector end to end
    #[command(subcommand)]
    Trace(TraceCommand),

    /// Send a one-off notification (Slack, email or PagerDuty), for scripts
    #[command(subcommand)]
    Notify(NotifyCommand),

    /// Load tests with k6's scenarios and thresholds, open-model latency without coordinated omission
    #[command(subcommand)]
    Load(LoadCommand),

    /// Write a starter prodready.toml with every section and key commented
    #[command(
        after_help = "Examples:\n  prodready init\n  prodready init --path /etc/prodready/prodready.toml --force"
    )]
    Init(InitArgs),

    /// Inspect the configuration
    #[command(subcommand)]
    Config(ConfigCommand),

    /// Print a shell completion script to stdout
    #[command(
        after_help = "Examples:\n  prodready completions bash > ~/.local/share/bash-completion/completions/prodready\n  \
                            prodready completions zsh > ~/.zfunc/_prodready"
    )]
    Completions {
        /// The shell to complete for
        shell: clap_complete::Shell,
    },

    /// Write man pages for prodready and every subcommand
    #[command(after_help = "Examples:\n  prodready man --out /usr/local/share/man/man1")]
    Man {
        /// Directory the pages are written to (created if missing)
        #[arg(long, value_name = "DIR", default_value = "man")]
        out: PathBuf,
    },
}

const SCAN_SECRETS_AFTER_HELP: &str = "\
Scans every file under each PATH (default `.`) that .gitignore does not exclude (hidden files included,
.git skipped; binary files and files over --max-file-size skipped and counted), or with --git every line
added by every commit of the repository at PATH. A line holding `prodready:allow` is never reported.
Findings show the file, line, rule and an excerpt with the secret redacted; `path` is relative to the
PATH it was found under. [scan] in prodready.toml adds rules and allowlists (see docs/security-scanning.md).

A baseline accepts known findings: write one with `--format json --output FILE`, pass it with --baseline
(or [scan] baseline); a finding stays accepted when its line moves (the fingerprint is rule, path and
secret).

Exit codes: 0 no new finding, 1 a finding not in the baseline, 2 usage or configuration error (a bad
flag, rules file or baseline).

Examples:
  prodready scan secrets
  prodready scan secrets . --format sarif --output secrets.sarif
  prodready scan secrets --git --since origin/main
  prodready scan secrets --format json --output .prodready-baseline.json   (accept what is there now)
  prodready scan secrets --baseline .prodready-baseline.json";

/// `prodready scan`.
#[derive(Debug, Subcommand)]
pub enum ScanCommand {
    /// Find secrets (cloud keys, tokens, webhooks, private keys, passwords) in files or git history
    #[command(after_help = SCAN_SECRETS_AFTER_HELP)]
    Secrets(ScanSecretsArgs),
    /// Check locked dependency versions against advisories read offline (OSV JSON, RustSec advisory-db)
    #[command(after_help = SCAN_DEPS_AFTER_HELP)]
    Deps(ScanDepsArgs),
}

const SCAN_DEPS_AFTER_HELP: &str = "\
Reads every lockfile under each PATH (default `.`; .gitignore honoured, node_modules, target and vendor
skipped): Cargo.lock, package-lock.json / npm-shrinkwrap.json, yarn.lock (classic and berry),
pnpm-lock.yaml, gradle.lockfile, pom.xml (pinned versions), mvn dependency:list output and CycloneDX JSON
SBOMs. A file named as PATH is read whatever its name. Advisories come from each --db directory: OSV JSON
files and RustSec advisory-db checkouts, read offline; a malformed advisory or lockfile stops the scan
naming the file, line and key. Versions are compared by each ecosystem's rules (SemVer, Maven).

Severity is the CVSS base score (or the database's label); an unrated vulnerability counts as high.
RustSec's informational advisories (unmaintained, unsound) are reported but never fail.

Exit codes: 0 no vulnerable version (at or above --min-severity), 1 a vulnerable version is locked, 2 a
usage error, an unreadable or malformed lockfile or advisory, or no lockfile found.

Examples:
  prodready scan deps --db advisory-db
  prodready scan deps web/ api/Cargo.lock --db advisory-db --db osv-npm/
  prodready scan deps --db advisory-db --min-severity high --format sarif --output deps.sarif
  prodready scan deps --db advisory-db --ignore RUSTSEC-2025-0141";

/// `prodready scan deps`.
#[derive(Debug, Args)]
pub struct ScanDepsArgs {
    /// Lockfiles, SBOMs, or directories to search for them
    #[arg(value_name = "PATH", default_value = ".")]
    pub paths: Vec<PathBuf>,
    /// Advisory directory: OSV JSON files or a RustSec advisory-db checkout (repeatable)
    #[arg(long, value_name = "DIR", required = true)]
    pub db: Vec<PathBuf>,
    /// Fail only for vulnerabilities at or above this severity (all are still reported)
    #[arg(long, value_enum, value_name = "LEVEL")]
    pub min_severity: Option<ScanSeverity>,
    /// Leave an advisory out, by id or alias, e.g. once reviewed (repeatable)
    #[arg(long, value_name = "ID")]
    pub ignore: Vec<String>,
    #[command(flatten)]
    pub report: ScanReportArgs,
}

/// A severity threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ScanSeverity {
    Low,
    Medium,
    High,
    Critical,
}

/// `prodready scan secrets`.
#[derive(Debug, Args)]
pub struct ScanSecretsArgs {
    /// Files or directories to scan (with --git: the repository, or a directory inside it)
    #[arg(value_name = "PATH", default_value = ".")]
    pub paths: Vec<PathBuf>,
    /// Scan git history instead of the files: every line added by every commit on every ref
    #[arg(long)]
    pub git: bool,
    /// With --git, only commits not reachable from REV (e.g. origin/main, a tag, a commit)
    #[arg(long, value_name = "REV", requires = "git")]
    pub since: Option<String>,
    /// Accepted findings: a JSON report (or SARIF) of an earlier scan [default: [scan] baseline]
    #[arg(long, value_name = "FILE")]
    pub baseline: Option<PathBuf>,
    #[command(flatten)]
    pub report: ScanReportArgs,
    /// Skip files larger than this many bytes [default: [scan] max_file_size]
    #[arg(long, value_name = "BYTES")]
    pub max_file_size: Option<u64>,
    /// Print the rules (id, severity, title) and exit
    #[arg(long)]
    pub list_rules: bool,
}

/// Where and how a scan's report goes (shared by every scan).
#[derive(Debug, Args)]
pub struct ScanReportArgs {
    /// Report format
    #[arg(long, value_enum, default_value = "text")]
    pub format: ScanFormat,
    /// Write the report to FILE instead of stdout (a summary line still goes to stderr)
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// A scan report's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ScanFormat {
    Text,
    Json,
    Sarif,
    Junit,
}

const SECRETS_AFTER_HELP: &str = "\
The backend is [secrets] backend: `file` (the default: an encrypted file under the data directory, created
with a 0600 key on first use; $PRODREADY_SECRETS_KEY may hold the key instead), `aws` (Secrets Manager; the
SDK's credentials, region and $AWS_ENDPOINT_URL) or `env` (the process environment, read-only).
Values never go on the command line: `put` reads stdin or --from-file.

Examples:
  printf %s \"$TOKEN\" | prodready secrets put prod/app/api-token
  prodready secrets migrate --from .env --prefix prod/app/ --dry-run
  prodready secrets exec --prefix prod/app/ -- ./server      (prod/app/database-url -> $DATABASE_URL)
  prodready secrets rollback prod/app/api-token";

#[derive(Debug, Subcommand)]
pub enum SecretsCommand {
    /// Print a secret's value (the current version unless --version-id or --stage)
    #[command(after_help = "Examples:\n  prodready secrets get prod/app/database-url\n  \
                            prodready secrets get prod/app/api-token --stage AWSPREVIOUS")]
    Get {
        /// The secret's full name
        name: String,
        /// Read this version id (see `history`)
        #[arg(long, value_name = "ID", conflicts_with = "stage")]
        version_id: Option<String>,
        /// Read the version carrying this stage label, e.g. AWSPREVIOUS
        #[arg(long, value_name = "STAGE")]
        stage: Option<String>,
    },
    /// Store a new value read from stdin (one trailing newline dropped) or --from-file (taken as is)
    #[command(after_help = "Writes nothing when the value equals the current one.

Examples:
  printf %s \"$TOKEN\" | prodready secrets put prod/app/api-token
  prodready secrets put prod/app/tls-key --from-file key.pem
  prodready secrets put prod/app/password      (asks, without echo, on a terminal)")]
    Put {
        /// The secret's full name: letters, digits and / _ + = . @ -
        name: String,
        /// Read the value from this file instead of stdin
        #[arg(long, value_name = "FILE")]
        from_file: Option<PathBuf>,
        /// A value on the command line is refused (and not echoed): argv is visible to every local user
        #[arg(hide = true, num_args = 0.., allow_hyphen_values = true)]
        refused_value: Vec<String>,
    },
    /// List secret names and metadata (never values)
    #[command(
        after_help = "Examples:\n  prodready secrets list\n  prodready secrets list --prefix prod/app/ --json"
    )]
    List {
        /// Only names starting with this [default: [secrets] prefix]
        #[arg(long, value_name = "PREFIX")]
        prefix: Option<String>,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Delete a secret after a recovery window (default 30 days) or at once with --force
    #[command(after_help = "Examples:\n  prodready secrets delete prod/app/old-token --recovery-days 7\n  \
                            prodready secrets delete prod/app/old-token --force")]
    Delete {
        name: String,
        /// Days during which the deletion can still be undone (7 to 30)
        #[arg(long, value_name = "N", conflicts_with = "force")]
        recovery_days: Option<u32>,
        /// Delete now, without recovery
        #[arg(long)]
        force: bool,
    },
    /// List a secret's versions and their stage labels, newest first (never values)
    #[command(after_help = "Examples:\n  prodready secrets history prod/app/api-token --json")]
    History {
        name: String,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Make the AWSPREVIOUS version current again (the current one becomes AWSPREVIOUS)
    #[command(after_help = "Examples:\n  prodready secrets rollback prod/app/api-token")]
    Rollback { name: String },
    /// Cancel a scheduled deletion (within its recovery window)
    #[command(after_help = "Examples:\n  prodready secrets restore prod/app/old-token")]
    Restore { name: String },
    /// Move the entries of a .env file into the store: KEY becomes PREFIX + key (lower case, `_` -> `-`)
    #[command(
        after_help = "The plan names every entry as added, changed or unchanged, never with its value. A \
second run writes nothing.
.env syntax: KEY=value, `export KEY=value`, # comments, 'single' (literal) and \"double\" (escapes) quoted
values spanning lines; ${VAR} is kept literally.

Examples:
  prodready secrets migrate --from .env --prefix prod/app/ --dry-run
  prodready secrets migrate --from .env --prefix prod/app/ --json"
    )]
    Migrate {
        /// The .env file
        #[arg(long, value_name = "FILE")]
        from: PathBuf,
        /// Prefix of the secret names [default: [secrets] prefix]
        #[arg(long, value_name = "PREFIX")]
        prefix: Option<String>,
        /// Show the plan, write nothing
        #[arg(long)]
        dry_run: bool,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Run a command with secrets as environment variables; exits with the command's code
    #[command(
        after_help = "Names: the prefix is stripped, letters are upper-cased, anything else becomes `_`:
prod/app/database-url -> DATABASE_URL. Two secrets mapping to one name are refused. SIGINT, SIGTERM,
SIGHUP and SIGQUIT are passed on to the command. Values travel in the environment, never on its command
line. Running `secrets exec` inside another is refused.

Examples:
  prodready secrets exec --prefix prod/app/ -- ./server --port 8080
  prodready secrets exec --only DATABASE_URL --pristine -- psql
  prodready secrets exec -- env"
    )]
    Exec {
        /// Secrets under this prefix [default: [secrets] prefix]
        #[arg(long, value_name = "PREFIX")]
        prefix: Option<String>,
        /// Only these variables (or secret names without the prefix), comma-separated
        #[arg(long, value_name = "A,B", value_delimiter = ',')]
        only: Vec<String>,
        /// Start the command with the secrets and nothing else of this environment (PATH included)
        #[arg(long)]
        pristine: bool,
        /// The command and its arguments
        #[arg(required = true, last = true, value_name = "CMD")]
        command: Vec<std::ffi::OsString>,
    },
}

#[derive(Debug, Subcommand)]
pub enum LogsCommand {
    /// Tail log files into Loki until stopped: rotation-safe, at-least-once, with its own metrics
    #[command(
        after_help = "Files come from [logging.ship] paths (globs; include rotated names such as app.log* so \
lines written just before a copytruncate are read too). A file's position is committed only after Loki
acknowledged its lines; after a crash the agent resumes there and counts what it sends again. 429, 5xx
and connection errors are retried without end (reading pauses meanwhile), and so are 401/403/404/408;
400 and 422 drop that batch, count it and go on; 413 splits the batch. SIGINT or SIGTERM: push what was read (5 s at most), commit, exit 0.

Examples:
  prodready logs ship
  prodready logs ship --path '/var/log/app/*.log*' --loki http://127.0.0.1:3100 --metrics-addr 127.0.0.1:9080
  prodready logs ship --path '/var/log/api/*.log' --label service=api --label env=prod"
    )]
    Ship {
        /// Files to tail (glob, repeatable) [default: [logging.ship] paths]
        #[arg(long = "path", value_name = "GLOB")]
        paths: Vec<String>,
        /// Loki base URL [default: [logging] loki_url]
        #[arg(long, value_name = "URL")]
        loki: Option<String>,
        /// Positions file [default: [logging.ship] positions, else <data_dir>/positions.json]
        #[arg(long, value_name = "FILE")]
        positions: Option<PathBuf>,
        /// Serve the agent's metrics here [default: [logging.ship] metrics_addr]
        #[arg(long, value_name = "ADDR")]
        metrics_addr: Option<std::net::SocketAddr>,
        /// A stream label on every line (repeatable; over [logging] labels)
        #[arg(long = "label", value_name = "KEY=VALUE", value_parser = key_value)]
        labels: Vec<(String, String)>,
    },
    /// Run a LogQL log query against Loki and print the lines, oldest first
    #[command(after_help = "Examples:
  prodready logs query '{service=\"api\"} |= \"error\"' --since 30m
  prodready logs query '{filename=\"/var/log/app/app.log\"}' --limit 20 --json")]
    Query {
        /// The LogQL query, e.g. '{service="api"} |= "timeout"'
        logql: String,
        /// How far back to look
        #[arg(long, value_name = "DURATION", default_value = "1h", value_parser = humantime::parse_duration)]
        since: std::time::Duration,
        /// At most this many lines (the newest)
        #[arg(long, value_name = "N", default_value_t = 100)]
        limit: u32,
        /// Print JSON lines (timestamp, labels, line)
        #[arg(long)]
        json: bool,
        /// Loki base URL [default: [logging] loki_url]
        #[arg(long, value_name = "URL")]
        loki: Option<String>,
    },
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Where to write [default: --config FILE if given, else ./prodready.toml]
    #[arg(long, value_name = "FILE")]
    pub path: Option<PathBuf>,
    /// Overwrite an existing file
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print the effective configuration (file, overrides and defaults) with secret values redacted
    #[command(
        after_help = "Examples:\n  prodready config show\n  PRODREADY_BACKUP__JOBS=4 prodready config show --json"
    )]
    Show {
        /// Print JSON instead of TOML
        #[arg(long)]
        json: bool,
    },
}

/// How `check` reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// The terminal scorecard
    Text,
    Markdown,
    /// One JSON document (schema_version 1)
    Json,
    /// JUnit XML: one suite per category, check titles as test names
    Junit,
    /// A self-contained HTML page
    Html,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Overall score (0-10) a launch needs [default: [checklist] min_score, 7.0]
    #[arg(long, value_name = "SCORE")]
    pub min_score: Option<f64>,
    /// Report format
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Same as --format json
    #[arg(long, conflicts_with = "format")]
    pub json: bool,
    /// Write the report to FILE instead of stdout (the verdict still goes to stderr)
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Per-check timeout, e.g. 5s [default: [checklist] timeout, 10s]
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub timeout: Option<std::time::Duration>,
    /// Run only this check (repeatable); the others are reported as skipped
    #[arg(long, value_name = "ID")]
    pub only: Vec<String>,
    /// Do not append this run to the history file
    #[arg(long)]
    pub no_history: bool,
}

#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// The statements that cost the most so far (pg_stat_statements), as a table
    #[command(
        after_help = "Needs pg_stat_statements in the database (shared_preload_libraries, then CREATE \
EXTENSION pg_stat_statements) and a role with pg_monitor (or pg_read_all_stats). Texts are shown with \
literals masked.

Examples:
  prodready db top
  prodready db top --by mean --limit 5
  prodready db top --database postgres://monitor@db.internal/app --json"
    )]
    Top {
        /// Order by total time, mean time or calls
        #[arg(long, value_enum, default_value_t = TopBy::Total)]
        by: TopBy,
        /// How many statements
        #[arg(long, value_name = "N", default_value_t = 10)]
        limit: usize,
        /// The database [default: the first of [database_monitoring] databases, else [database] url]
        #[arg(long, value_name = "URL")]
        database: Option<String>,
        /// One JSON document on stdout
        #[arg(long)]
        json: bool,
        /// Write the JSON document to FILE (atomically) instead of stdout
        #[arg(long, value_name = "FILE", requires = "json")]
        output: Option<PathBuf>,
    },
    /// Serve PostgreSQL metrics for Prometheus, for every database in [database_monitoring] databases
    #[command(
        after_help = "Each scrape reads every database concurrently, each within [database_monitoring] \
scrape_timeout; a database that fails shows prodready_pg_up 0 and hides none of the others. Statements are \
the top_n by total time plus one queryid=\"other\" series, and their counters never go backwards, \
pg_stat_statements_reset() included. The role needs pg_monitor.

Examples:
  prodready db exporter
  prodready db exporter --listen 0.0.0.0:9188
  curl -s localhost:9188/metrics | grep prodready_pg_up"
    )]
    Exporter {
        /// HTTP address [default: [database_monitoring] listen, 127.0.0.1:9188]
        #[arg(long, value_name = "ADDR")]
        listen: Option<std::net::SocketAddr>,
    },
}

/// What `db top` orders by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TopBy {
    Total,
    Mean,
    Calls,
}

#[derive(Debug, Subcommand)]
pub enum TraceCommand {
    /// Send a two-span trace and say whether the collector accepted it (prints the trace id)
    #[command(after_help = "The endpoint comes from --endpoint, else the OTEL_* variables \
(OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, OTEL_EXPORTER_ZIPKIN_ENDPOINT, \
OTEL_TRACES_EXPORTER...), else [tracing] otlp_endpoint / zipkin_endpoint, else the local default \
(http://localhost:4318, http://localhost:9411/api/v2/spans). For otlp the URL is a base URL (/v1/traces is \
appended when it has no path); for zipkin it is the full spans URL.

Exit codes: 0 accepted, 1 not accepted (the cause is named), 2 a bad URL, exporter or option.

Examples:
  prodready trace ping
  prodready trace ping --endpoint http://otel-collector:4318
  prodready trace ping --exporter otlp --protocol grpc --endpoint http://otel-collector:4317
  prodready trace ping --exporter zipkin --endpoint http://zipkin:9411/api/v2/spans")]
    Ping {
        /// The collector [default: OTEL_* variables, else [tracing], else the local default]
        #[arg(long, value_name = "URL")]
        endpoint: Option<String>,
        /// otlp or zipkin [default: OTEL_TRACES_EXPORTER, else [tracing] exporter]
        #[arg(long, value_enum)]
        exporter: Option<crate::sections::TraceExporter>,
        /// OTLP transport [default: OTEL_EXPORTER_OTLP_PROTOCOL, else [tracing] protocol]
        #[arg(long, value_enum)]
        protocol: Option<crate::sections::Protocol>,
        /// Give up after this long
        #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = humantime::parse_duration)]
        timeout: std::time::Duration,
    },
}

const LOAD_RUN_AFTER_HELP: &str = "\
The scenario file is TOML with k6's executors and option names (see docs/load-testing.md). The JSON
summary (k6's --summary-export shape) goes to --summary-export FILE, else to [loadtest] summary, where the
checklist's `loadtest` check reads it.

Exit codes: 0 every threshold held, 99 a threshold failed or an abortOnFail one stopped the run (as in
k6), 2 an invalid scenario file (file, line and key named), 1 the run could not be carried out.

With --segment I/N the run carries out one of N equal parts (every N-th VU, shared iteration and
arrival of the whole run, k6's execution segments), writes its --result for `prodready load merge`, and
exits 0 once done: thresholds are judged over the merged segments. A segment's summary is written only
with --summary-export. Thresholds with a window are refused with --segment: a segment sees only 1/N of
every window and the merge gets its verdicts, not its samples, so it could not judge them.

https targets must present a certificate that chains to the system's CA certificates or to --cacert's;
`insecureSkipTLSVerify = true` under [options] in the scenario (k6's option) checks none.

Examples:
  prodready load run loadtest.toml
  prodready load run loadtest.toml --summary-export summary.json
  prodready load run loadtest.toml --out json | jq '.metrics.http_req_duration.values'
  prodready load run loadtest.toml --segment 2/3 --result part-2.json
  prodready load run staging.toml --cacert internal-ca.pem";

#[derive(Debug, Subcommand)]
pub enum LoadCommand {
    /// Run a scenario file against its targets and judge its thresholds (exit 99 when one fails)
    #[command(after_help = LOAD_RUN_AFTER_HELP)]
    Run {
        /// The scenario file [default: [loadtest] scenario]
        #[arg(value_name = "SCENARIO")]
        scenario: Option<PathBuf>,
        /// Write the JSON summary here (k6's --summary-export shape) [default: [loadtest] summary]
        #[arg(long, value_name = "FILE")]
        summary_export: Option<PathBuf>,
        /// What goes to stdout: the text summary, or k6's handleSummary JSON data
        #[arg(long, value_enum, default_value = "text")]
        out: LoadOutput,
        /// Run only execution segment I of N (k6's segments: VUs, iterations and arrivals split exactly)
        #[arg(long, value_name = "I/N", value_parser = parse_segment, requires = "result")]
        segment: Option<prodready_loadtest::Segment>,
        /// Write the run's mergeable result (histograms, counters, checks) here, for `load merge`
        #[arg(long, value_name = "FILE")]
        result: Option<PathBuf>,
        /// Also trust these CA certificates (PEM) for https targets, beside the system's
        #[arg(long, value_name = "FILE")]
        cacert: Option<PathBuf>,
    },
    /// Merge the results of every segment of one run into its summary (exit 99 when a threshold fails)
    #[command(after_help = LOAD_MERGE_AFTER_HELP)]
    Merge {
        /// The result files written by `load run --segment I/N --result FILE`, one per segment
        #[arg(value_name = "RESULT", required = true)]
        results: Vec<PathBuf>,
        /// Write the JSON summary here (k6's --summary-export shape) [default: [loadtest] summary]
        #[arg(long, value_name = "FILE")]
        summary_export: Option<PathBuf>,
        /// What goes to stdout: the text summary, or k6's handleSummary JSON data
        #[arg(long, value_enum, default_value = "text")]
        out: LoadOutput,
    },
    /// Check a scenario file without sending anything (exit 2 naming file, line and key)
    #[command(after_help = "Examples:\n  prodready load validate loadtest.toml")]
    Validate {
        /// The scenario file [default: [loadtest] scenario]
        #[arg(value_name = "SCENARIO")]
        scenario: Option<PathBuf>,
    },
    /// Print the scenario file as a k6 script (same executors, thresholds, requests and checks)
    #[command(name = "export-k6", after_help = LOAD_EXPORT_K6_AFTER_HELP)]
    ExportK6 {
        /// The scenario file [default: [loadtest] scenario]
        #[arg(value_name = "SCENARIO")]
        scenario: Option<PathBuf>,
    },
}

fn parse_segment(text: &str) -> Result<prodready_loadtest::Segment, String> {
    text.parse()
}

const LOAD_MERGE_AFTER_HELP: &str = "\
Every segment I/N of the run must be there exactly once, from the same scenario file. Counts, rates,
checks and HDR histograms add up exactly, so the summary and threshold verdicts are the whole run's; the
run took as long as its longest segment, and the vus gauges are summed over the segments.

Exit codes: 0 every threshold held, 99 a threshold failed or an abortOnFail one stopped a segment, 2 a
result file missing, unreadable or not of this run.

Examples:
  prodready load run loadtest.toml --segment 1/3 --result part-1.json   # on each of three machines
  prodready load merge part-1.json part-2.json part-3.json --summary-export summary.json";

const LOAD_EXPORT_K6_AFTER_HELP: &str = "\
The script keeps the scenario's executors and options, thresholds, requests (headers, body, tags),
templates, CSV data (opened relative to the script: write it beside the scenario file), checks and think
times. k6's http_req_duration is the time from the actual send: thresholds on http_req_service_duration go
there, and late open-model iterations are dropped by k6 rather than timed from when they were due.

Examples:
  prodready load export-k6 loadtest.toml > loadtest.js
  k6 run loadtest.js";

/// What `load run` prints on stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LoadOutput {
    Text,
    Json,
}

/// `prodready daemon`.
#[derive(Debug, Args)]
pub struct DaemonArgs {
    /// HTTP address [default: [daemon] listen, 127.0.0.1:9187]
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<std::net::SocketAddr>,
}

/// Where backups live, for every `backup` subcommand.
#[derive(Debug, Args)]
pub struct StoreArg {
    /// Backup store: a directory [default: [backup] store, else <data_dir>/backups]
    #[arg(long, value_name = "DIR")]
    pub store: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum BackupCommand {
    /// Take a consistent backup: one snapshot, parallel COPY, zstd, SHA-256 per object, manifest last
    #[command(
        after_help = "The database comes from --database, else [database] url, else $DATABASE_URL. Prefer \
$DATABASE_URL or ~/.pgpass over a password in --database: argv is visible to every local user.

Examples:
  prodready backup run
  prodready backup run --jobs 4 --store /var/backups/pg --json"
    )]
    Run {
        #[command(flatten)]
        store: StoreArg,
        /// Database URL [default: [database] url, else $DATABASE_URL, else the local server]
        #[arg(long, value_name = "URL")]
        database: Option<String>,
        /// Connections copying data in parallel [default: [backup] jobs]
        #[arg(long, value_name = "N")]
        jobs: Option<u16>,
        /// Encrypt every object to this age recipient (repeatable; adds to [backup] encrypt_to)
        #[arg(long, value_name = "AGE_RECIPIENT")]
        encrypt_to: Vec<String>,
        #[command(flatten)]
        metrics: MetricsArgs,
        /// Print one JSON object instead of text
        #[arg(long)]
        json: bool,
    },
    /// List committed backups, newest first
    #[command(
        after_help = "Examples:\n  prodready backup list\n  prodready backup list --json | jq '.[0].id'"
    )]
    List {
        #[command(flatten)]
        store: StoreArg,
        #[arg(long)]
        json: bool,
    },
    /// Prove a backup: restore it into a scratch database and check it (or --quick: re-hash it)
    #[command(
        after_help = "The full form restores into a new scratch database on the --scratch server, compares every \
table's row count with the manifest, runs amcheck on btree indexes and [backup] smoke_sql, drops the scratch
database whatever happened, and records the result beside the backup. Exit 1 when verification fails.

Examples:
  prodready backup verify
  prodready backup verify latest --quick
  prodready backup verify 20261129T020000Z-1a2b --scratch postgres://postgres@127.0.0.1/postgres"
    )]
    Verify {
        #[command(flatten)]
        store: StoreArg,
        /// The database whose backups `latest` means: a URL or a name [default: [database] url, else
        /// $DATABASE_URL, else the only database in the store]
        #[arg(long, value_name = "URL|NAME")]
        database: Option<String>,
        /// Backup id, or `latest`
        #[arg(default_value = "latest")]
        id: String,
        /// Only re-hash every stored object
        #[arg(long)]
        quick: bool,
        /// A database on the server that hosts the scratch database [default: the configured database]
        #[arg(long, value_name = "URL")]
        scratch: Option<String>,
        /// age identity file for an encrypted backup (repeatable)
        #[arg(long, value_name = "FILE")]
        identity: Vec<PathBuf>,
        #[command(flatten)]
        metrics: MetricsArgs,
        #[arg(long)]
        json: bool,
    },
    /// Restore a backup into a database (refuses a non-empty one without --force)
    #[command(
        after_help = "Examples:\n  prodready backup restore latest --into postgres://postgres@127.0.0.1/app_restored\n  \
prodready backup restore 20261129T020000Z-1a2b --into postgres:///app --force"
    )]
    Restore {
        #[command(flatten)]
        store: StoreArg,
        /// The database whose backups `latest` means: a URL or a name [default: [database] url, else
        /// $DATABASE_URL, else the only database in the store]
        #[arg(long, value_name = "URL|NAME")]
        database: Option<String>,
        /// Backup id, or `latest`
        id: String,
        /// The target database URL (it must exist)
        #[arg(long, value_name = "URL")]
        into: String,
        /// Restore over a database that already holds tables: the backup is restored beside it and takes its
        /// name; the previous database is kept under a new name, and a failed restore leaves it untouched
        #[arg(long)]
        force: bool,
        /// age identity file for an encrypted backup (repeatable)
        #[arg(long, value_name = "FILE")]
        identity: Vec<PathBuf>,
        /// Connections loading data, and pg_restore jobs for indexes [default: [backup] jobs]
        #[arg(long, value_name = "N")]
        jobs: Option<u16>,
        #[arg(long)]
        json: bool,
    },
    /// Take a physical base backup of the whole cluster (pg_basebackup, streamed through zstd into the store)
    #[command(
        after_help = "Runs pg_basebackup -D - -F tar -X none and streams its tar through zstd (and age with
--encrypt-to) into one object of the store, SHA-256 hashed; manifest.json (backup label, start and stop LSN,
timeline, server version, system identifier) is written last. The WAL comes from the archive: the server must
archive WAL (archive_mode = on, archive_command = 'prodready backup wal-push %p ...'). The role needs the
REPLICATION attribute. Clusters with tablespaces besides pg_default are refused.

Examples:
  prodready backup base
  prodready backup base --store s3://backups/prod --database postgres://replicator@db1/postgres --json
  prodready backup base --checkpoint spread"
    )]
    Base {
        #[command(flatten)]
        store: StoreArg,
        /// The server: any database URL on it [default: [database] url, else $DATABASE_URL, else the local
        /// server]
        #[arg(long, value_name = "URL")]
        database: Option<String>,
        /// Encrypt the archive to this age recipient (repeatable; adds to [backup] encrypt_to)
        #[arg(long, value_name = "AGE_RECIPIENT")]
        encrypt_to: Vec<String>,
        /// The checkpoint that starts the backup: fast (now) or spread (as the server paces checkpoints)
        #[arg(long, value_enum, default_value = "fast")]
        checkpoint: Checkpoint,
        #[arg(long)]
        json: bool,
    },
    /// Point-in-time recovery: a data directory from a base backup and the WAL archive, or --verify a drill
    #[command(
        after_help = "Picks the newest base backup that ends before the target and lies on the history of the
newest timeline in the archive, unpacks it into --into (an empty or missing directory), and writes
recovery.signal and, in postgresql.auto.conf, restore_command (this binary's `backup wal-fetch %f %p
--store ...`), recovery_target_time or recovery_target_lsn, recovery_target_action and
recovery_target_timeline = 'latest', and archive_mode = off unless --archive. Then start it: pg_ctl -D DIR
start. --to latest replays all archived WAL. Times are RFC 3339 (offsets allowed); LSNs are X/Y. Recovery
settings an earlier recovery left in the base backup's configuration are set back to their defaults.

The recovered server archives nothing unless --archive: a copy started beside production and promoted
would otherwise push its own timeline into production's WAL archive, and a later recovery to latest would
follow that timeline instead of production's. Pass --archive when the recovered server replaces
production (or turn archive_mode back on before promoting it).

When run as root the files are given to the owner of --into, which must exist and not be root (PostgreSQL
refuses to run as root); --verify runs the server as that owner too.

--verify is a recovery drill: it starts the server on a private Unix socket (no TCP, archiving off), waits
until recovery reached the target and the server was promoted, checks every file against the base backup's
backup_manifest (pg_verifybackup), counts the rows of --table and [backup] drill_tables, runs amcheck on
every btree index of every database and [backup] smoke_sql (in the [database] url's database), stops the
server, empties --into and records the result beside the base backup (backup list, backup status, metrics).
Exit 1 when the drill fails.

Examples:
  prodready backup pitr --to '2026-12-05T10:00:00Z' --into /var/lib/postgresql/15/restore
  prodready backup pitr --to 0/3000060 --into ./restore --action promote
  prodready backup pitr --to latest --into /var/lib/postgresql/15/main --archive   # replaces production
  prodready backup pitr --to latest --into /srv/drill --verify --table app:public.orders
  prodready backup pitr --to latest --into /srv/drill --verify --textfile /var/lib/node-exporter/drill.prom"
    )]
    Pitr {
        #[command(flatten)]
        store: StoreArg,
        /// Where recovery stops: latest, an RFC 3339 time or an LSN
        #[arg(long, value_name = "TIME|LSN|latest")]
        to: String,
        /// The data directory to create (empty or missing)
        #[arg(long, value_name = "DIR")]
        into: PathBuf,
        /// Use this base backup instead of choosing one
        #[arg(long, value_name = "ID")]
        base: Option<String>,
        /// What the server does at the target: pause (read-only until pg_wal_replay_resume()), promote or
        /// shutdown
        #[arg(long, value_enum, default_value = "pause")]
        action: RecoveryAction,
        /// Keep the source's WAL archiving on the recovered server (it replaces production)
        #[arg(long, conflicts_with = "verify")]
        archive: bool,
        /// Start the recovered server, check it, stop it and remove it: a recovery drill
        #[arg(long)]
        verify: bool,
        /// With --verify: count this table's rows, DATABASE:TABLE, or require exactly ROWS with
        /// DATABASE:TABLE=ROWS (repeatable; adds to [backup] drill_tables)
        #[arg(long, value_name = "DATABASE:TABLE[=ROWS]")]
        table: Vec<prodready_backup::drill::TableCheck>,
        /// With --verify: the directory of the server binaries [default: /usr/lib/postgresql/MAJOR/bin]
        #[arg(long, value_name = "DIR")]
        pg_bin: Option<PathBuf>,
        /// With --verify: the role the checks connect as
        #[arg(long, value_name = "ROLE", default_value = "postgres")]
        superuser: String,
        /// With --verify: how long recovery may take
        #[arg(long, value_name = "DURATION", default_value = "1h", value_parser = humantime::parse_duration)]
        timeout: std::time::Duration,
        /// age identity file for an encrypted base backup (repeatable)
        #[arg(long, value_name = "FILE")]
        identity: Vec<PathBuf>,
        #[command(flatten)]
        metrics: MetricsArgs,
        #[arg(long)]
        json: bool,
    },
    /// Delete backups outside the retention policy (never the newest verified one)
    #[command(
        after_help = "Keeps the newest backup of each of the last N days, ISO weeks and months, the --min-keep \
newest, and always the newest backup whose restore verification passed. Deletes the manifest first, so a
half-deleted backup is visibly incomplete; also removes leftovers of interrupted runs (no manifest) that
nothing has written to for --incomplete-older-than.

Examples:
  prodready backup prune --dry-run
  prodready backup prune --keep-daily 7 --keep-weekly 4 --keep-monthly 12 --min-keep 3"
    )]
    Prune {
        #[command(flatten)]
        store: StoreArg,
        /// Judge only this database's backups (a URL or a name) [default: every database in the store]
        #[arg(long, value_name = "URL|NAME")]
        database: Option<String>,
        #[arg(long, value_name = "N")]
        keep_daily: Option<u32>,
        #[arg(long, value_name = "N")]
        keep_weekly: Option<u32>,
        #[arg(long, value_name = "N")]
        keep_monthly: Option<u32>,
        #[arg(long, value_name = "N")]
        min_keep: Option<u32>,
        /// Show the plan, delete nothing
        #[arg(long)]
        dry_run: bool,
        /// Remove leftovers of interrupted runs once untouched this long
        #[arg(long, value_name = "DURATION", default_value = "1h", value_parser = humantime::parse_duration)]
        incomplete_older_than: std::time::Duration,
        #[arg(long)]
        json: bool,
    },
    /// Print crontab lines and systemd service + timer units for run, verify and prune
    #[command(
        after_help = "Schedules come from [backup] schedule, verify_schedule and prune_schedule (cron syntax).

Examples:
  prodready backup cron
  prodready backup cron --binary /usr/local/bin/prodready --config /etc/prodready/prodready.toml --user postgres"
    )]
    Cron {
        /// The prodready binary the jobs run [default: this binary]
        #[arg(long, value_name = "PATH")]
        binary: Option<PathBuf>,
        /// The user the systemd units run as
        #[arg(long, default_value = "postgres")]
        user: String,
        /// Directory for the metrics textfiles the jobs write (node-exporter's textfile collector)
        #[arg(long, value_name = "DIR", default_value = "/var/lib/prometheus/node-exporter")]
        textfile_dir: PathBuf,
    },
    /// The newest backup and the newest verified backup, with their ages
    #[command(
        after_help = "Exit 1 when --max-age is given and the newest verified backup is older (or there is none).

Examples:
  prodready backup status
  prodready backup status --max-age 26h"
    )]
    Status {
        #[command(flatten)]
        store: StoreArg,
        /// Only this database's backups (a URL or a name) [default: [database] url, else $DATABASE_URL,
        /// else every database in the store]
        #[arg(long, value_name = "URL|NAME")]
        database: Option<String>,
        /// Fail when the newest successfully verified backup is older than this, e.g. 26h or 7d
        #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
        max_age: Option<std::time::Duration>,
        #[arg(long)]
        json: bool,
    },
    /// Archive one WAL file into the store: PostgreSQL's archive_command
    #[command(after_help = "PostgreSQL runs it for every finished WAL file: set archive_mode = on and
  archive_command = '/usr/local/bin/prodready --config /etc/prodready/prodready.toml backup wal-push %p'
Idempotent: a file already archived with the same bytes succeeds at once; one archived with different bytes
fails (exit 1) and is never replaced. Other files PostgreSQL has marked ready are pushed at the same time
([backup.wal] push_jobs) and their later calls return at once. With --async (or [backup.wal] async_push) a
background pusher sends every ready file and the call only waits until its own file is in the store.

Examples:
  prodready backup wal-push pg_wal/000000010000000000000003
  prodready backup wal-push --async --jobs 4 pg_wal/000000010000000000000003")]
    WalPush {
        #[command(flatten)]
        store: StoreArg,
        /// The WAL file (%p: its path relative to the data directory, or absolute)
        #[arg(value_name = "PATH")]
        path: PathBuf,
        /// Files pushed at once [default: [backup.wal] push_jobs]
        #[arg(long, value_name = "N")]
        jobs: Option<usize>,
        /// Push through the background pusher [default: [backup.wal] async_push]
        #[arg(long = "async")]
        async_push: bool,
        /// Run as the background pusher of PATH's pg_wal directory (started by --async)
        #[arg(long, hide = true)]
        background: bool,
        #[command(flatten)]
        metrics: MetricsArgs,
    },
    /// Restore one WAL file from the store: PostgreSQL's restore_command
    #[command(after_help = "In recovery, PostgreSQL asks for every file it needs:
  restore_command = '/usr/local/bin/prodready --config /etc/prodready/prodready.toml backup wal-fetch %f %p'
The file is decompressed, its SHA-256 checked, and written under a temporary name then renamed to DEST.
Exit 1 without a message when the archive does not hold the file (PostgreSQL asks for files that do not
exist, such as the next timeline's history); exit 126 when the archive cannot be read or the file is
corrupt, which stops recovery instead of ending it early.

Examples:
  prodready backup wal-fetch 000000010000000000000003 pg_wal/RECOVERYXLOG")]
    WalFetch {
        #[command(flatten)]
        store: StoreArg,
        /// The WAL file name (%f)
        #[arg(value_name = "NAME")]
        name: String,
        /// Where to write it (%p)
        #[arg(value_name = "DEST")]
        dest: PathBuf,
    },
    /// Check the WAL archive: re-hash every archived file, report gaps, corrupt files and the archive's lag
    #[command(
        after_help = "Every archived file is read, decompressed and re-hashed against the SHA-256 in its name; a
corrupt one is named. Segments missing between the first and last of a timeline (and before a timeline
switch) are reported as gaps. Exit 1 when anything is wrong, or when the newest archived file is older
than --max-lag.

Examples:
  prodready backup wal-verify
  prodready backup wal-verify --max-lag 15m --json"
    )]
    WalVerify {
        #[command(flatten)]
        store: StoreArg,
        /// Files checked at once
        #[arg(long, value_name = "N", default_value_t = 4)]
        jobs: usize,
        /// Fail when the newest archived file is older than this, e.g. 15m
        #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
        max_lag: Option<std::time::Duration>,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum AlertsCommand {
    /// Write the rule pack, SLO rules, their promtool unit tests and alertmanager.yml
    #[command(after_help = "Writes, under --out:
  prometheus/rules/prodready.rules.yml   the built-in alerts (severity, summary, description, runbook_url)
  prometheus/rules/slo.rules.yml         [[alerts.slos]] as Sloth-compatible burn-rate rules (when declared)
  prometheus/tests/prodready.test.yml    promtool unit tests: every alert fires once and stays quiet once
  alertmanager/alertmanager.yml          Slack receivers per severity, grouping, inhibition
  grafana/dashboards/*.json              service RED, backups, PostgreSQL and SLO burn dashboards

Examples:
  prodready alerts generate
  prodready alerts generate --out /etc/prodready && promtool check rules /etc/prodready/prometheus/rules/*.yml")]
    Generate {
        /// Output directory
        #[arg(long, value_name = "DIR", default_value = "deploy")]
        out: PathBuf,
    },
    /// Lint rule files offline (pint-style checks), then run `promtool check rules` when promtool is installed
    #[command(
        after_help = "Checks: an alert without a comparison, a rate() range under 4 scrape intervals, a missing \
`for`, a missing severity or runbook_url, duplicate rules, template errors, labels that change with the value.
Exit 1 when any file has a problem.

Examples:
  prodready alerts check
  prodready alerts check deploy/prometheus/rules/*.yml"
    )]
    Check {
        /// Rule files [default: every .yml and .yaml in [alerts] rules_dir]
        files: Vec<PathBuf>,
        /// promtool to run after the offline checks [default: promtool on PATH]
        #[arg(long, value_name = "PATH")]
        promtool: Option<PathBuf>,
    },
    /// Run the built-in pack's promtool unit tests (every alert fires once and stays quiet once)
    #[command(
        after_help = "Examples:\n  prodready alerts test\n  prodready alerts test --promtool /usr/bin/promtool"
    )]
    Test {
        /// promtool [default: promtool on PATH]
        #[arg(long, value_name = "PATH")]
        promtool: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum StackCommand {
    /// Write the compose file, prometheus.yml, Grafana provisioning, the Loki configuration and the rules
    #[command(after_help = "Files (under --out):
  compose.yaml                      Prometheus, Alertmanager, Grafana, Loki, logs-ship
  prometheus/prometheus.yml         scrape jobs ([stack.scrape] and the stack's own), rules, Alertmanager
  prometheus/rules/*.yml            the alert rules (as `alerts generate` writes them)
  alertmanager/alertmanager.yml     Slack, email and PagerDuty routing (credential files mounted read-only)
  grafana/provisioning/             Prometheus and Loki datasources, the dashboard provider
  grafana/dashboards/*.json         the dashboards
  loki/loki.yml                     single-process Loki with retention on ([logging] retention)
  Dockerfile, README.md             the logs-ship image, the quick start

Examples:
  prodready stack generate
  prodready stack generate --out /opt/monitoring && cd /opt/monitoring && docker compose up -d --build")]
    Generate {
        /// Output directory
        #[arg(long, value_name = "DIR", default_value = "deploy/stack")]
        out: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum NotifyCommand {
    /// Post one message to a Slack incoming webhook
    #[command(
        after_help = "The webhook URL is a secret: it is read from a file, never taken from the command line, and \
never printed. Exit 1 when Slack does not accept the message.

Examples:
  prodready notify slack --text 'Deploy 1.4.2 finished'
  echo 'Backup verified' | prodready notify slack --text - --channel '#ops'
  prodready notify slack --webhook-file /etc/prodready/slack-webhook --text 'Launch gate passed'"
    )]
    Slack {
        /// File holding the webhook URL [default: [alerts.slack] webhook_file]
        #[arg(long, value_name = "FILE")]
        webhook_file: Option<PathBuf>,
        /// Message text; `-` reads it from stdin
        #[arg(long)]
        text: String,
        /// Channel override (older webhooks honour it)
        #[arg(long)]
        channel: Option<String>,
    },
    /// Send one email through the [alerts.email] SMTP relay
    #[command(
        after_help = "The SMTP password is read from the secret [alerts.email] password_secret names, or from \
[alerts.email] password_file (mode 0600), never taken from the command line, and never printed. STARTTLS is required unless [alerts.email] require_tls = false. Exit 1 when the
relay does not accept the message.

Examples:
  prodready notify email --subject 'Deploy 1.4.2 finished' --text 'All smoke tests passed'
  echo 'Backup verified' | prodready notify email --subject 'Backups' --text - --to ops@example.com"
    )]
    Email {
        /// Recipient (repeatable) [default: [alerts.email] to]
        #[arg(long, value_name = "ADDRESS")]
        to: Vec<String>,
        #[arg(long)]
        subject: String,
        /// Message text; `-` reads it from stdin
        #[arg(long)]
        text: String,
    },
    /// Trigger or resolve a PagerDuty incident through the Events API v2
    #[command(
        after_help = "The routing key is read from a file (mode 0600), never taken from the command line, and never \
printed. Events with the same --dedup-key belong to one incident; --resolve closes it. Exit 1 when PagerDuty
does not accept the event.

Examples:
  prodready notify pagerduty --summary 'Backups failing on db-1' --dedup-key backups-db-1
  prodready notify pagerduty --summary 'Backups recovered' --dedup-key backups-db-1 --resolve"
    )]
    Pagerduty {
        /// File holding the routing key [default: [alerts.pagerduty] routing_key_file]
        #[arg(long, value_name = "FILE")]
        routing_key_file: Option<PathBuf>,
        /// What is wrong (at most 1,024 characters are sent)
        #[arg(long)]
        summary: String,
        #[arg(long, default_value = "critical", value_parser = prodready_metrics_alerts::pagerduty::SEVERITIES)]
        severity: String,
        /// Where it is wrong [default: this host's name]
        #[arg(long)]
        source: Option<String>,
        /// Groups events into one incident [default: PagerDuty makes one per trigger]
        #[arg(long, value_name = "KEY")]
        dedup_key: Option<String>,
        /// Resolve the incident named by --dedup-key instead of triggering
        #[arg(long, requires = "dedup_key")]
        resolve: bool,
    },
}

/// The checkpoint a base backup starts with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Checkpoint {
    Fast,
    Spread,
}

/// What a recovered server does at its target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RecoveryAction {
    Pause,
    Promote,
    Shutdown,
}

/// Where a backup run or verification reports its metrics.
#[derive(Debug, Args)]
pub struct MetricsArgs {
    /// Push metrics to this Pushgateway (group job="prodready-backup", database=<name>)
    #[arg(long, value_name = "URL")]
    pub pushgateway: Option<String>,
    /// Write metrics to this node-exporter textfile (atomically); use one file for runs and another for
    /// verifications
    #[arg(long, value_name = "PATH")]
    pub textfile: Option<PathBuf>,
}

/// `KEY=VALUE`, for `--label`.
fn key_value(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_owned(), value.to_owned())),
        _ => Err(format!("`{text}` is not KEY=VALUE, e.g. service=api")),
    }
}
