//! `prodready backup ...`: thin wiring from the configuration to prodready-backup.

use std::io::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::Context as _;
use prodready_backup::catalog::{self, BackupInfo, BaseInfo};
use prodready_backup::freshness::Freshness;
use prodready_backup::{BackupOptions, RestoreOptions, Store, VerifyOptions};
use prodready_backup::{metrics, retention};
use prodready_metrics::prometheus_client::registry::Registry;
use prodready_metrics::push::Group;
use serde::Serialize;

use crate::cli::{BackupCommand, MetricsArgs, StoreArg};
use crate::config::{self, BackupConfig, Config};
use crate::env::Env;
use crate::exit::Exit;
use crate::progress::Bar;

pub(crate) fn run(config_flag: Option<&Path>, env: &Env, cmd: &BackupCommand) -> anyhow::Result<Exit> {
    let loaded = config::load(config_flag, env)?;
    // Scheduled jobs must read the same configuration file as this command.
    let config_arg = match &loaded.source {
        config::Source::File(path) => vec![
            "--config".to_owned(),
            std::path::absolute(path).unwrap_or_else(|_| path.clone()).display().to_string(),
        ],
        config::Source::Embedded => Vec::new(),
    };
    let cfg = loaded.config;
    let runtime = super::runtime(2)?;
    let outcome = dispatch(&cfg, env, &config_arg, &runtime, cmd);
    runtime.shutdown_timeout(Duration::from_secs(1));
    outcome
}

fn dispatch(
    cfg: &Config,
    env: &Env,
    config_arg: &[String],
    runtime: &tokio::runtime::Runtime,
    cmd: &BackupCommand,
) -> anyhow::Result<Exit> {
    match cmd {
        BackupCommand::Run { store, database, jobs, encrypt_to, metrics: metrics_args, json } => {
            let store = open(cfg, env, runtime, store)?;
            let mut options =
                BackupOptions::new(database.clone().unwrap_or_else(|| cfg.database_url().to_owned()));
            options.jobs = usize::from(jobs.unwrap_or(cfg.backup.jobs).max(1));
            options.zstd_level = cfg.backup.zstd_level;
            options.encrypt_to = cfg.backup.encrypt_to.iter().chain(encrypt_to).cloned().collect();
            let bar = Arc::new(Bar::bytes("backing up"));
            let manifest = runtime.block_on(prodready_backup::backup(&store, &options, bar.clone()));
            bar.finish();
            let database_name = prodready_pg::dbname(&options.database_url)?;
            let (listed, corrupt) = catalog::list_all(&store).unwrap_or_default();
            let (last_success, _) =
                prodready_backup::freshness::last_success_and_verification(&listed, &database_name);
            let report = metrics::RunMetrics {
                database: database_name,
                success: manifest.is_ok(),
                last_success_unix: last_success,
                duration_seconds: manifest
                    .as_ref()
                    .ok()
                    .map(|m| Duration::from_millis(m.duration_ms).as_secs_f64()),
                size_bytes: manifest.as_ref().ok().map(prodready_backup::Manifest::size_bytes),
                corrupt_backups: Some(corrupt.len() as u64),
            };
            publish(runtime, metrics_args, &report.database, &report.registry());
            let manifest = manifest?;
            if *json {
                print_json(&manifest)?;
            } else {
                writeln!(
                    std::io::stdout(),
                    "backup {} of {}: {} tables, {} rows, {} sequences, {} large objects, {} in {} ({})",
                    manifest.id,
                    manifest.database,
                    manifest.tables.len(),
                    manifest.rows(),
                    manifest.sequences.len(),
                    manifest.large_objects.count,
                    human_bytes(manifest.size_bytes()),
                    human_ms(manifest.duration_ms),
                    store.location()
                )?;
            }
            Ok(Exit::Success)
        }
        BackupCommand::List { store, json } => {
            let store = open(cfg, env, runtime, store)?;
            let (backups, mut corrupt) = catalog::list_all(&store)?;
            let (bases, base_corrupt) = catalog::list_base(&store)?;
            corrupt.extend(base_corrupt);
            for c in &corrupt {
                let _ = writeln!(
                    std::io::stderr(),
                    "warning: backup {} is corrupt and left out: {}",
                    c.id,
                    c.problem
                );
            }
            // Logical and base backups in one list, newest first; each says its kind.
            #[derive(Serialize)]
            #[serde(untagged)]
            enum Listed<'a> {
                Logical(&'a BackupInfo),
                Base(&'a BaseInfo),
                /// A backup whose manifest is unusable: in the JSON list, after the others.
                Corrupt {
                    kind: &'static str,
                    id: &'a str,
                    problem: &'a str,
                },
            }
            let mut listed: Vec<(&str, &str, Listed<'_>)> = backups
                .iter()
                .map(|b| (b.created_at.as_str(), b.id.as_str(), Listed::Logical(b)))
                .chain(bases.iter().map(|b| (b.created_at.as_str(), b.id.as_str(), Listed::Base(b))))
                .collect();
            listed.sort_by(|a, b| b.0.cmp(a.0).then_with(|| b.1.cmp(a.1)));
            if *json {
                let corrupt = corrupt.iter().map(|c| Listed::Corrupt {
                    kind: "corrupt",
                    id: &c.id,
                    problem: &c.problem,
                });
                print_json(&listed.into_iter().map(|(_, _, l)| l).chain(corrupt).collect::<Vec<_>>())?;
                return Ok(Exit::Success);
            }
            let mut out = std::io::stdout().lock();
            if listed.is_empty() {
                writeln!(out, "no backups yet; take one with `prodready backup run` (or `backup base`)")?;
            }
            for (_, _, entry) in &listed {
                match entry {
                    Listed::Logical(b) => writeln!(
                        out,
                        "{}  {}  {:<16} {:>10}  {}",
                        b.id,
                        b.created_at,
                        b.database,
                        human_bytes(b.size_bytes),
                        verified(b)
                    )?,
                    Listed::Base(b) => writeln!(
                        out,
                        "{}  {}  {:<16} {:>10}  {}",
                        b.id,
                        seconds(&b.created_at),
                        format!("base tl{} {}", b.timeline, b.stop_lsn),
                        human_bytes(b.size_bytes),
                        drilled(b)
                    )?,
                    // Named on stderr above, as a warning.
                    Listed::Corrupt { .. } => {}
                }
            }
            Ok(Exit::Success)
        }
        BackupCommand::Verify {
            store,
            database,
            id,
            quick,
            scratch,
            identity,
            metrics: metrics_args,
            json,
        } => {
            let store = open(cfg, env, runtime, store)?;
            let database = database_of(cfg, database.as_deref(), &store, true)?;
            let manifest = catalog::manifest(&store, id, database.as_deref())?;
            let verification = if *quick {
                runtime.block_on(prodready_backup::verify_quick(&store, &manifest))
            } else {
                let options = VerifyOptions {
                    scratch_url: scratch.clone().unwrap_or_else(|| cfg.database_url().to_owned()),
                    smoke_sql: cfg.backup.smoke_sql.clone(),
                    jobs: usize::from(cfg.backup.jobs.max(1)),
                    identity_files: identity.clone(),
                    tools: prodready_backup::Tools::default(),
                };
                runtime.block_on(verify_unless_interrupted(&store, &manifest, &options))?
            };
            let verification = match verification {
                Ok(v) => v,
                Err(e) => {
                    // A verification that could not run is a failed one, for the alerts too.
                    // Unknown when the store cannot be listed: left out rather than reported as never.
                    let last_verified = catalog::list(&store).ok().map(|backups| {
                        prodready_backup::freshness::last_success_and_verification(
                            &backups,
                            &manifest.database,
                        )
                        .1
                        .unwrap_or(0)
                    });
                    let report = metrics::VerifyMetrics {
                        database: manifest.database.clone(),
                        success: false,
                        last_verify_success_unix: last_verified,
                    };
                    publish(runtime, metrics_args, &report.database, &report.registry());
                    return Err(e.into());
                }
            };
            let (_, last_verified) = prodready_backup::freshness::last_success_and_verification(
                &catalog::list(&store)?,
                &manifest.database,
            );
            let report = metrics::VerifyMetrics {
                database: manifest.database.clone(),
                success: verification.ok,
                last_verify_success_unix: Some(last_verified.unwrap_or(0)),
            };
            publish(runtime, metrics_args, &report.database, &report.registry());
            if *json {
                print_json(&verification)?;
            } else {
                let mut out = std::io::stdout().lock();
                let verdict = if verification.ok { "verified" } else { "FAILED verification" };
                writeln!(
                    out,
                    "backup {} {verdict} ({}, {})",
                    verification.id,
                    verification.mode,
                    human_ms(verification.duration_ms)
                )?;
                for line in &verification.checked {
                    writeln!(out, "  checked: {line}")?;
                }
                for line in &verification.problems {
                    writeln!(out, "  problem: {line}")?;
                }
            }
            Ok(if verification.ok { Exit::Success } else { Exit::Failure })
        }
        BackupCommand::Restore { store, database, id, into, force, identity, jobs, json } => {
            let store = open(cfg, env, runtime, store)?;
            let database = database_of(cfg, database.as_deref(), &store, true)?;
            let manifest = catalog::manifest(&store, id, database.as_deref())?;
            let options = RestoreOptions {
                target_url: into.clone(),
                jobs: usize::from(jobs.unwrap_or(cfg.backup.jobs).max(1)),
                force: *force,
                identity_files: identity.clone(),
                tools: prodready_backup::Tools::default(),
            };
            let bar = Arc::new(Bar::bytes("restoring"));
            let report =
                runtime.block_on(prodready_backup::restore(&store, &manifest, &options, bar.clone()));
            bar.finish();
            let report = report?;
            #[derive(Serialize)]
            struct Restored<'a> {
                id: &'a str,
                target: String,
                tables: usize,
                rows: u64,
                sequences: usize,
                large_objects: u64,
                duration_ms: u64,
                /// The previous database, kept under this name (`--force` over a non-empty one).
                #[serde(skip_serializing_if = "Option::is_none")]
                replaced: Option<String>,
                /// Where the time went, in milliseconds per phase.
                phases: prodready_backup::RestorePhases,
            }
            let restored = Restored {
                id: &manifest.id,
                target: prodready_pg::describe(into),
                tables: report.tables,
                rows: report.rows,
                sequences: report.sequences,
                large_objects: report.large_objects,
                duration_ms: report.duration_ms,
                replaced: report.replaced.clone(),
                phases: report.phases,
            };
            if *json {
                print_json(&restored)?;
            } else {
                writeln!(
                    std::io::stdout(),
                    "restored backup {} into {}: {} tables, {} rows, {} sequences, {} large objects in {}",
                    restored.id,
                    restored.target,
                    restored.tables,
                    restored.rows,
                    restored.sequences,
                    restored.large_objects,
                    human_ms(restored.duration_ms)
                )?;
                if let Some(kept) = &restored.replaced {
                    writeln!(
                        std::io::stdout(),
                        "the previous database is kept as {kept}; drop it once you no longer need it"
                    )?;
                }
            }
            Ok(Exit::Success)
        }
        BackupCommand::Base { store, database, encrypt_to, checkpoint, json } => {
            let store = open(cfg, env, runtime, store)?;
            let mut options = prodready_backup::BaseOptions::new(
                database.clone().unwrap_or_else(|| cfg.database_url().to_owned()),
            );
            options.zstd_level = cfg.backup.zstd_level;
            options.encrypt_to = cfg.backup.encrypt_to.iter().chain(encrypt_to).cloned().collect();
            options.fast_checkpoint = *checkpoint == crate::cli::Checkpoint::Fast;
            let bar = Arc::new(Bar::bytes("base backup"));
            let manifest = runtime.block_on(prodready_backup::base_backup(&store, &options, bar.clone()));
            bar.finish();
            let manifest = manifest?;
            if *json {
                print_json(&manifest)?;
            } else {
                writeln!(
                    std::io::stdout(),
                    "base backup {} of cluster {} (PostgreSQL {}): timeline {}, WAL {} to {}, {} files, {} \
                     ({} stored) in {} ({})",
                    manifest.id,
                    manifest.system_identifier,
                    manifest.server_version,
                    manifest.timeline,
                    manifest.start_lsn,
                    manifest.stop_lsn,
                    manifest.files,
                    human_bytes(manifest.tar_bytes),
                    human_bytes(manifest.size_bytes()),
                    human_ms(manifest.duration_ms),
                    store.location()
                )?;
            }
            Ok(Exit::Success)
        }
        BackupCommand::Pitr {
            store,
            to,
            into,
            base,
            action,
            archive,
            verify,
            table,
            pg_bin,
            superuser,
            timeout,
            identity,
            metrics: metrics_args,
            json,
        } => {
            let store = open(cfg, env, runtime, store)?;
            pitr(
                cfg,
                config_arg,
                runtime,
                &store,
                &Pitr {
                    to,
                    into,
                    base: base.as_deref(),
                    action: *action,
                    archive: *archive,
                    verify: *verify,
                    tables: table,
                    pg_bin: pg_bin.as_deref(),
                    superuser,
                    timeout: *timeout,
                    identity,
                    metrics: metrics_args,
                    json: *json,
                },
            )
        }
        BackupCommand::Prune {
            store,
            database,
            keep_daily,
            keep_weekly,
            keep_monthly,
            min_keep,
            dry_run,
            incomplete_older_than,
            json,
        } => {
            let store = open(cfg, env, runtime, store)?;
            let mut policy = cfg.backup.retention.clone();
            policy.keep_daily = keep_daily.unwrap_or(policy.keep_daily);
            policy.keep_weekly = keep_weekly.unwrap_or(policy.keep_weekly);
            policy.keep_monthly = keep_monthly.unwrap_or(policy.keep_monthly);
            policy.min_keep = min_keep.unwrap_or(policy.min_keep);
            let only = match database {
                Some(flag) => Some(name_of(flag)?),
                None => None,
            };
            // Scratch databases of verifications that were killed (SIGKILL leaves them behind).
            if cfg.database.configured && !*dry_run {
                match runtime.block_on(prodready_backup::drop_abandoned_scratch(cfg.database_url())) {
                    Ok(dropped) if !dropped.is_empty() => {
                        let _ = writeln!(
                            std::io::stderr(),
                            "dropped scratch databases of interrupted verifications: {}",
                            dropped.join(", ")
                        );
                    }
                    Ok(_) => {}
                    Err(e) => {
                        let _ = writeln!(
                            std::io::stderr(),
                            "warning: cannot look for abandoned scratch databases: {e}"
                        );
                    }
                }
            }
            // A running backup's objects may look idle (a big table takes long): leave leftovers alone then.
            let running = if cfg.database.configured {
                runtime.block_on(prodready_backup::backup_running(cfg.database_url())).unwrap_or_else(|e| {
                    let _ = writeln!(
                        std::io::stderr(),
                        "warning: cannot tell whether a backup is running, so leftovers are kept: {e}"
                    );
                    true
                })
            } else {
                false
            };
            if running {
                let _ = writeln!(
                    std::io::stderr(),
                    "a backup is running: leftovers of interrupted runs are kept until the next prune"
                );
            }
            prune(&store, &policy, only.as_deref(), *dry_run, !running, *incomplete_older_than, *json)
        }
        BackupCommand::Cron { binary, user, textfile_dir } => {
            let binary = match binary {
                Some(b) => b.clone(),
                None => std::env::current_exe().context("cannot find this binary's path; pass --binary")?,
            };
            let command = |args: &[&str], metrics: Option<&str>| {
                let mut argv = vec![binary.display().to_string()];
                argv.extend(config_arg.iter().cloned());
                argv.extend(args.iter().map(|a| (*a).to_owned()));
                if let Some(name) = metrics {
                    argv.push("--textfile".to_owned());
                    argv.push(
                        textfile_dir.join(format!("prodready_backup_{name}.prom")).display().to_string(),
                    );
                }
                argv
            };
            let jobs = [
                crate::schedule::Job {
                    name: "run",
                    cron: cfg.backup.schedule.clone(),
                    command: command(&["backup", "run"], Some("run")),
                },
                crate::schedule::Job {
                    name: "verify",
                    cron: cfg.backup.verify_schedule.clone(),
                    command: command(&["backup", "verify", "latest"], Some("verify")),
                },
                crate::schedule::Job {
                    name: "prune",
                    cron: cfg.backup.prune_schedule.clone(),
                    command: command(&["backup", "prune"], None),
                },
            ];
            let text = crate::schedule::render(&jobs, user)
                .map_err(|e| crate::error::UsageError(format!("[backup]: {e}")))?;
            std::io::stdout().lock().write_all(text.as_bytes())?;
            Ok(Exit::Success)
        }
        BackupCommand::Status { store, database, max_age, json } => {
            let store = open(cfg, env, runtime, store)?;
            let database = database_of(cfg, database.as_deref(), &store, false)?;
            status(&store, database.as_deref(), *max_age, *json)
        }
        BackupCommand::WalPush { .. } | BackupCommand::WalFetch { .. } | BackupCommand::WalVerify { .. } => {
            super::wal::dispatch(cfg, env, config_arg, runtime, cmd)
        }
    }
}

/// Sends metrics where the flags say; a failure is a warning, never a replacement for the job's own result.
fn publish(runtime: &tokio::runtime::Runtime, args: &MetricsArgs, database: &str, registry: &Registry) {
    if let Err(e) = try_publish(runtime, args, "prodready-backup", Some(database), registry) {
        let _ = writeln!(std::io::stderr(), "warning: {e}");
    }
}

/// A textfile (atomically) and/or a Pushgateway group.
fn try_publish(
    runtime: &tokio::runtime::Runtime,
    args: &MetricsArgs,
    job: &str,
    database: Option<&str>,
    registry: &Registry,
) -> prodready_metrics::Result<()> {
    if let Some(path) = &args.textfile {
        prodready_metrics::textfile::write(path, registry)?;
    }
    if let Some(url) = &args.pushgateway {
        let mut group = Group::new(job);
        if let Some(database) = database {
            group = group.label("database", database);
        }
        runtime.block_on(prodready_metrics::push::push(url, &group, registry, Duration::from_secs(15)))?;
    }
    Ok(())
}

/// [`publish`] into another Pushgateway job (`prodready-wal`), with or without a database label.
pub(crate) fn publish_group(
    runtime: &tokio::runtime::Runtime,
    args: &MetricsArgs,
    job: &str,
    database: Option<&str>,
    registry: &Registry,
) {
    if let Err(e) = try_publish(runtime, args, job, database, registry) {
        let _ = writeln!(std::io::stderr(), "warning: {e}");
    }
}

pub(crate) fn open(
    cfg: &Config,
    env: &Env,
    runtime: &tokio::runtime::Runtime,
    arg: &StoreArg,
) -> anyhow::Result<Store> {
    let location = arg.store.as_deref().unwrap_or_else(|| cfg.backup_store());
    open_location(&cfg.backup, env, runtime.handle(), location)
}

/// Opens a backup store: a directory, or `s3://BUCKET[/PREFIX]` with the AWS SDK's own resolution
/// (`AWS_*` variables, profiles, instance roles, `AWS_ENDPOINT_URL(_S3)`). Called outside async code, on
/// a multi-threaded runtime (`handle`).
pub(crate) fn open_location(
    backup: &BackupConfig,
    env: &Env,
    handle: &tokio::runtime::Handle,
    location: &str,
) -> anyhow::Result<Store> {
    if !location.starts_with("s3://") {
        return Ok(Store::open(location)?);
    }
    let options = prodready_backup::S3Options {
        // aws-config resolves AWS_ENDPOINT_URL into the SdkConfig but leaves the S3-specific variable to the
        // S3 client; read it here so a custom endpoint also switches to path-style addressing.
        endpoint: backup.s3_endpoint.clone().or_else(|| {
            env.get(crate::env::AWS_ENDPOINT_URL_S3).filter(|v| !v.is_empty()).map(str::to_owned)
        }),
        path_style: backup.s3_path_style,
        max_attempts: 6,
    };
    handle.block_on(async {
        let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest()).load().await;
        Ok(Store::s3(&sdk, location, &options)?)
    })
}

fn print_json(value: &impl Serialize) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, value)?;
    writeln!(out)?;
    Ok(())
}

/// "Verified" means restored and checked; a quick verification only re-hashed the objects, and says so.
pub(crate) fn verified(b: &BackupInfo) -> String {
    let quick = b.verify_mode.as_deref() == Some("quick");
    let last = match (&b.verified_at, b.verify_ok) {
        (Some(at), Some(true)) if quick => format!("hashes checked {at}"),
        (Some(at), Some(true)) => format!("verified {at}"),
        (Some(at), Some(false)) if quick => format!("HASH CHECK FAILED {at}"),
        (Some(at), Some(false)) => format!("VERIFY FAILED {at}"),
        _ => "not verified".to_owned(),
    };
    match &b.last_verified_ok_at {
        Some(at) if quick => format!("{last}; verified {at}"),
        None if quick => format!("{last}; never verified by restore"),
        _ => last,
    }
}

/// A full verification that SIGINT or SIGTERM stops: the verification is dropped (its connections and
/// child tools with it), then its scratch database, no longer locked, is dropped too. The outer error is
/// the interruption; the inner result is the verification's.
async fn verify_unless_interrupted(
    store: &Store,
    manifest: &prodready_backup::Manifest,
    options: &VerifyOptions,
) -> anyhow::Result<prodready_backup::Result<prodready_backup::manifest::Verification>> {
    use tokio::signal::unix::{SignalKind, signal};
    let (mut term, mut int) = (signal(SignalKind::terminate())?, signal(SignalKind::interrupt())?);
    let interrupted = tokio::select! {
        verification = prodready_backup::verify(store, manifest, options) => return Ok(verification),
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    };
    match prodready_backup::drop_interrupted_scratch(&options.scratch_url, &manifest.id).await? {
        (scratch, true) => {
            anyhow::bail!("verification interrupted by {interrupted}; scratch database {scratch} dropped")
        }
        (scratch, false) => {
            anyhow::bail!(
                "verification interrupted by {interrupted}; could not drop scratch database {scratch}"
            )
        }
    }
}

/// A database name from `--database`: a URL's database, or the name itself.
fn name_of(flag: &str) -> anyhow::Result<String> {
    if flag.contains("://") || flag.contains('=') {
        Ok(prodready_pg::dbname(flag)?)
    } else {
        Ok(flag.to_owned())
    }
}

/// The database `latest` and `status` are about: `--database`, else the configured one (`[database] url`,
/// `$DATABASE_URL`), else the only database the store holds. When the store holds several and none was
/// named, `None`, or with `required` an error listing them.
fn database_of(
    cfg: &Config,
    flag: Option<&str>,
    store: &Store,
    required: bool,
) -> anyhow::Result<Option<String>> {
    if let Some(flag) = flag {
        return Ok(Some(name_of(flag)?));
    }
    if cfg.database.configured {
        return Ok(Some(prodready_pg::dbname(cfg.database_url())?));
    }
    let mut databases = catalog::databases(&catalog::list(store)?);
    match databases.len() {
        0 | 1 => Ok(databases.pop()),
        _ if !required => Ok(None),
        _ => Err(crate::error::UsageError(format!(
            "the store holds backups of several databases ({}); pass --database NAME",
            databases.join(", ")
        ))
        .into()),
    }
}

fn prune(
    store: &Store,
    policy: &prodready_backup::Retention,
    database: Option<&str>,
    dry_run: bool,
    clean_leftovers: bool,
    incomplete_older_than: Duration,
    json: bool,
) -> anyhow::Result<Exit> {
    let report = retention::prune(store, policy, database, dry_run, clean_leftovers, incomplete_older_than)?;
    for c in &report.corrupt {
        let _ = writeln!(std::io::stderr(), "warning: backup {} is corrupt and kept: {}", c.id, c.problem);
    }
    if let Some(why) = &report.wal_kept {
        let _ = writeln!(std::io::stderr(), "warning: {why}");
    }
    if json {
        print_json(&report)?;
        return Ok(Exit::Success);
    }
    let mut out = std::io::stdout().lock();
    let verb = if dry_run { "would delete" } else { "deleted" };
    for d in &report.decisions {
        if d.keep {
            writeln!(out, "keep    {}  ({})", d.id, d.reasons.join(", "))?;
        } else {
            writeln!(out, "{verb:<7} {}", d.id)?;
        }
    }
    for id in &report.incomplete {
        writeln!(out, "{verb:<7} {id}  (incomplete: interrupted run)")?;
    }
    for h in &report.wal_horizons {
        writeln!(
            out,
            "wal     cluster {}: kept base backups need WAL from {} (timeline {}, {}, base {})",
            h.system_identifier, h.start_wal_file, h.timeline, h.start_lsn, h.base
        )?;
    }
    for name in &report.wal_deleted {
        writeln!(out, "{verb:<7} {name}  (WAL no kept base backup needs)")?;
    }
    Ok(Exit::Success)
}

fn status(
    store: &Store,
    database: Option<&str>,
    max_age: Option<Duration>,
    json: bool,
) -> anyhow::Result<Exit> {
    let backups = catalog::list(store)?;
    let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let freshness = Freshness::of(&backups, database, i64::try_from(now).unwrap_or(i64::MAX));
    let newest = freshness.newest.as_ref();
    let verified = freshness.verified.as_ref().and_then(|b| b.last_verified_ok_at.as_ref().map(|at| (b, at)));
    let verified_age = freshness.verified_age;
    let stale = max_age.is_some_and(|limit| freshness.verification_stale(limit));
    // Base backups and recovery drills (the whole cluster, whatever the database).
    let (bases, _) = catalog::list_base(store)?;
    let newest_base = bases.first();
    let proven = catalog::last_drill(&bases);
    let age_of = |at: &str| {
        let then = retention::unix(at);
        Duration::from_secs(u64::try_from(i64::try_from(now).unwrap_or(i64::MAX) - then).unwrap_or(0))
    };
    let wal = super::wal::archive_status(store)?;
    if json {
        #[derive(Serialize)]
        struct Status<'a> {
            newest: Option<&'a BackupInfo>,
            newest_age_seconds: Option<u64>,
            newest_verified: Option<&'a BackupInfo>,
            verified_at: Option<&'a str>,
            verified_age_seconds: Option<u64>,
            max_age_seconds: Option<u64>,
            stale: bool,
            #[serde(skip_serializing_if = "Option::is_none")]
            newest_base: Option<&'a BaseInfo>,
            /// The base backup of the newest successful recovery drill, and when it ran.
            #[serde(skip_serializing_if = "Option::is_none")]
            recovery_drilled_base: Option<&'a BaseInfo>,
            #[serde(skip_serializing_if = "Option::is_none")]
            recovery_drilled_at: Option<&'a str>,
            #[serde(skip_serializing_if = "Option::is_none")]
            recovery_drill_age_seconds: Option<u64>,
            /// The WAL archive, when the store holds one.
            #[serde(skip_serializing_if = "Option::is_none")]
            wal_archive: Option<&'a prodready_backup::wal::ArchiveStatus>,
        }
        print_json(&Status {
            newest,
            newest_age_seconds: freshness.newest_age.map(|a| a.as_secs()),
            newest_verified: verified.map(|(b, _)| b),
            verified_at: verified.map(|(_, at)| at.as_str()),
            verified_age_seconds: verified_age.map(|a| a.as_secs()),
            max_age_seconds: max_age.map(|a| a.as_secs()),
            stale,
            newest_base,
            recovery_drilled_base: proven.map(|(b, _)| b),
            recovery_drilled_at: proven.map(|(_, at)| at),
            recovery_drill_age_seconds: proven.map(|(_, at)| age_of(at).as_secs()),
            wal_archive: wal.as_ref(),
        })?;
    } else {
        let mut out = std::io::stdout().lock();
        match newest {
            Some(b) => {
                writeln!(
                    out,
                    "newest backup:          {} ({} ago)",
                    b.id,
                    human_age(freshness.newest_age.unwrap_or_default())
                )
            }
            None => writeln!(out, "newest backup:          none; take one with `prodready backup run`"),
        }?;
        match verified {
            Some((b, _)) => {
                writeln!(
                    out,
                    "newest verified backup: {} (verified {} ago)",
                    b.id,
                    human_age(verified_age.unwrap_or_default())
                )
            }
            None => writeln!(out, "newest verified backup: none; run `prodready backup verify`"),
        }?;
        if let Some(b) = newest_base {
            writeln!(
                out,
                "newest base backup:     {} (timeline {}, up to {}, {} ago)",
                b.id,
                b.timeline,
                b.stop_lsn,
                human_age(age_of(&b.finished_at))
            )?;
            match proven {
                Some((b, at)) => writeln!(
                    out,
                    "recovery last proven:   {} ago (drill from base backup {})",
                    human_age(age_of(at)),
                    b.id
                )?,
                None => writeln!(out, "recovery last proven:   never; run `prodready backup pitr --verify`")?,
            }
        }
        if stale {
            let limit = humantime::format_duration(max_age.unwrap_or_default());
            writeln!(out, "STALE: no backup younger than {limit} has passed a restore verification")?;
        }
        if let Some(wal) = &wal {
            super::wal::print_status(&mut out, wal)?;
        }
    }
    Ok(if stale { Exit::Failure } else { Exit::Success })
}

pub(crate) fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    #[allow(clippy::cast_precision_loss)]
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 { format!("{n} B") } else { format!("{value:.1} {}", UNITS[unit]) }
}

fn human_ms(ms: u64) -> String {
    if ms < 1000 { format!("{ms} ms") } else { format!("{:.1} s", Duration::from_millis(ms).as_secs_f64()) }
}

fn human_age(d: Duration) -> String {
    let rounded = if d < Duration::from_secs(60) { d.as_secs() } else { d.as_secs() / 60 * 60 };
    humantime::format_duration(Duration::from_secs(rounded)).to_string()
}

/// `2026-12-06T10:00:00.123456Z` -> `2026-12-06T10:00:00Z`, the width of logical backups' times.
fn seconds(rfc3339: &str) -> String {
    match rfc3339.split_once('.') {
        Some((head, _)) => format!("{head}Z"),
        None => rfc3339.to_owned(),
    }
}

/// A base backup's newest recovery drill.
fn drilled(b: &BaseInfo) -> String {
    let last = match (&b.verified_at, b.verify_ok) {
        (Some(at), Some(true)) => format!("recovery drill passed {at}"),
        (Some(at), Some(false)) => format!("RECOVERY DRILL FAILED {at}"),
        _ => "no recovery drill".to_owned(),
    };
    match &b.last_verified_ok_at {
        Some(at) if b.verify_ok == Some(false) => format!("{last}; last passed {at}"),
        _ => last,
    }
}

/// `backup pitr`'s arguments.
struct Pitr<'a> {
    to: &'a str,
    into: &'a Path,
    base: Option<&'a str>,
    action: crate::cli::RecoveryAction,
    archive: bool,
    verify: bool,
    tables: &'a [prodready_backup::drill::TableCheck],
    pg_bin: Option<&'a Path>,
    superuser: &'a str,
    timeout: Duration,
    identity: &'a [std::path::PathBuf],
    metrics: &'a MetricsArgs,
    json: bool,
}

/// A word for `sh -c`: single-quoted.
fn sh_quote(word: &str) -> String {
    format!("'{}'", word.replace('\'', r"'\''"))
}

fn pitr(
    cfg: &Config,
    config_arg: &[String],
    runtime: &tokio::runtime::Runtime,
    store: &Store,
    args: &Pitr<'_>,
) -> anyhow::Result<Exit> {
    use prodready_backup::pitr::{self, Action, PrepareOptions, Target};
    let target = Target::parse(args.to).map_err(|e| crate::error::UsageError(format!("--to: {e}")))?;
    let (bases, _) = catalog::base_manifests(store)?;
    let chosen = match args.base {
        Some(id) => catalog::base_manifest(store, id)?,
        None => {
            // The archive's history files say which timeline recovery will end on (as PostgreSQL finds it).
            let oldest = bases.iter().map(|b| b.timeline).min().unwrap_or(1);
            let timelines = pitr::archive_timelines(store, oldest)?;
            pitr::choose(&bases, &target, &timelines)?.clone()
        }
    };
    let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let status = prodready_backup::wal::WalArchive::new(store.clone())
        .status(i64::try_from(now).unwrap_or(i64::MAX))?;
    // PostgreSQL stops at the first missing segment as if it were the end of the archive: say so now.
    for gap in gaps_after(&status, &chosen) {
        let _ = writeln!(
            std::io::stderr(),
            "warning: the WAL archive misses {} segment(s) {}..{} on timeline {}, after base backup {}: \
             recovery cannot get past {} (to latest it stops there); `backup wal-verify` lists the gaps",
            gap.missing,
            gap.first,
            gap.last,
            gap.timeline,
            chosen.id,
            gap.first
        );
    }
    let exe = std::env::current_exe().context("cannot find this binary's path for restore_command")?;
    let mut restore_command = sh_quote(&exe.display().to_string());
    for word in config_arg {
        restore_command.push(' ');
        restore_command.push_str(&sh_quote(word));
    }
    restore_command.push_str(" backup wal-fetch %f %p --store ");
    restore_command.push_str(&sh_quote(&store.location()));
    let options = PrepareOptions {
        target: target.clone(),
        into: args.into.to_owned(),
        restore_command,
        action: match args.action {
            crate::cli::RecoveryAction::Pause => Action::Pause,
            crate::cli::RecoveryAction::Promote => Action::Promote,
            crate::cli::RecoveryAction::Shutdown => Action::Shutdown,
        },
        identity_files: args.identity.to_vec(),
        archive: args.archive,
    };
    let prepared = match pitr::prepare(store, &chosen, &options) {
        Ok(prepared) => prepared,
        // A drill that cannot even unpack its base backup failed: record it, so status and alerts see it.
        Err(e) if args.verify && !e.is_usage() => {
            let verification =
                prodready_backup::drill::record_failure(store, &chosen, &target, e.to_string())?;
            publish_drill(runtime, store, args.metrics, &chosen.system_identifier, false);
            print_drill(&verification, args.json)?;
            return Ok(Exit::Failure);
        }
        Err(e) => return Err(e.into()),
    };
    if !args.verify {
        if args.json {
            print_json(&prepared)?;
        } else {
            let mut out = std::io::stdout().lock();
            writeln!(
                out,
                "prepared {} from base backup {} for recovery to {}: {} files, {}",
                prepared.into.display(),
                prepared.base,
                prepared.target,
                prepared.files,
                human_bytes(prepared.bytes)
            )?;
            for (name, value) in &prepared.settings {
                writeln!(out, "  {name} = '{value}'")?;
            }
            writeln!(out, "start it with: pg_ctl -D {} start", prepared.into.display())?;
        }
        return Ok(Exit::Success);
    }
    let mut drill = prodready_backup::drill::DrillOptions::for_major(chosen.major_version());
    if let Some(bin) = args.pg_bin {
        drill.bin_dir = bin.to_owned();
    }
    drill.superuser = args.superuser.to_owned();
    drill.timeout = args.timeout;
    drill.tables = cfg
        .backup
        .drill_tables
        .iter()
        .map(|t| {
            t.parse().map_err(|e: String| crate::error::UsageError(format!("[backup] drill_tables: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    drill.tables.extend(args.tables.iter().cloned());
    drill.smoke_sql = cfg.backup.smoke_sql.clone();
    if cfg.database.configured {
        drill.smoke_database = prodready_pg::dbname(cfg.database_url())?;
    }
    if target == Target::Latest {
        // Where recovery must get to: the newest segment on the timeline it follows.
        let newest = pitr::archive_timelines(store, chosen.timeline)?.newest;
        drill.latest_segment = status.timelines.into_iter().find(|t| t.timeline == newest).map(|t| t.last);
    }
    let verification =
        runtime.block_on(prodready_backup::drill::drill(store, &chosen, &prepared, &target, &drill))?;
    publish_drill(runtime, store, args.metrics, &chosen.system_identifier, verification.ok);
    print_drill(&verification, args.json)?;
    Ok(if verification.ok { Exit::Success } else { Exit::Failure })
}

/// The archive's gaps a recovery from `base` would run into: on its timeline or a later one, at or past
/// the segment it starts from.
fn gaps_after<'a>(
    status: &'a prodready_backup::wal::ArchiveStatus,
    base: &prodready_backup::BaseManifest,
) -> Vec<&'a prodready_backup::wal::Gap> {
    use prodready_backup::wal::WalName;
    let Some(size) = status.info.as_ref().map(|i| i.segment_size) else { return Vec::new() };
    let segno = |name: &str| WalName::parse(name).ok().and_then(|w| w.segno(size));
    let Some(start) = segno(&base.start_wal_file) else { return Vec::new() };
    status
        .gaps
        .iter()
        .filter(|g| g.timeline >= base.timeline && segno(&g.last).is_some_and(|last| last >= start))
        .collect()
}

fn publish_drill(
    runtime: &tokio::runtime::Runtime,
    store: &Store,
    args: &MetricsArgs,
    cluster: &str,
    success: bool,
) {
    // Unknown when the store cannot be listed (left out); 0 when no drill of the cluster has passed.
    let last_success_unix = metrics::last_drills(store)
        .ok()
        .map(|drills| drills.into_iter().find(|(c, _)| c == cluster).and_then(|(_, t)| t).unwrap_or(0));
    let report = metrics::DrillMetrics { cluster: cluster.to_owned(), success, last_success_unix };
    publish(runtime, args, cluster, &report.registry());
}

fn print_drill(verification: &prodready_backup::manifest::Verification, json: bool) -> anyhow::Result<()> {
    if json {
        return print_json(verification);
    }
    let mut out = std::io::stdout().lock();
    let verdict = if verification.ok { "passed" } else { "FAILED" };
    writeln!(
        out,
        "recovery drill of base backup {} {verdict} ({})",
        verification.id,
        human_ms(verification.duration_ms)
    )?;
    for line in &verification.checked {
        writeln!(out, "  checked: {line}")?;
    }
    for line in &verification.problems {
        writeln!(out, "  problem: {line}")?;
    }
    Ok(())
}
