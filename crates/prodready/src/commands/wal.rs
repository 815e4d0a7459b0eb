//! `prodready backup wal-push / wal-fetch / wal-verify`: WAL archiving for PostgreSQL's archive_command
//! and restore_command, wired from the configuration to prodready-backup's WAL archive.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use prodready_backup::metrics::WalPushMetrics;
use prodready_backup::wal::{PushOptions, WalArchive};
use prodready_backup::wal_spool::{self, Spool};

use crate::cli::{BackupCommand, MetricsArgs, StoreArg};
use crate::config::Config;
use crate::env::Env;
use crate::exit::Exit;

pub(crate) fn dispatch(
    cfg: &Config,
    env: &Env,
    config_arg: &[String],
    runtime: &tokio::runtime::Runtime,
    cmd: &BackupCommand,
) -> anyhow::Result<Exit> {
    match cmd {
        BackupCommand::WalPush { store, path, jobs, async_push, background, metrics } => {
            let archive = WalArchive::new(super::backup::open(cfg, env, runtime, store)?);
            let options = PushOptions {
                zstd_level: cfg.backup.zstd_level,
                jobs: jobs.unwrap_or(cfg.backup.wal.push_jobs).max(1),
            };
            let pg_wal = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
            let spool = Spool::new(pg_wal, cfg.backup.wal.spool_dir.clone(), &archive.store().location());
            if *background {
                let idle = Duration::from_secs(10);
                wal_spool::run_background(&archive, &spool, &options, idle)?;
                return Ok(Exit::Success);
            }
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            let outcome = if *async_push || cfg.backup.wal.async_push {
                wal_spool::wait_for(&spool, &name, cfg.backup.wal.async_timeout, || {
                    start_background(config_arg, store, path, &spool, &options).map_err(|e| {
                        prodready_backup::Error::WalPushFailed { name: name.clone(), problem: e.to_string() }
                    })
                })
                .map(|()| None)
            } else {
                wal_spool::push_with_ready(&archive, path, &options, &spool).map(Some)
            };
            record(runtime, metrics, &spool, &name, outcome.is_ok());
            match outcome? {
                Some(p) if !p.already => {
                    let _ = writeln!(
                        std::io::stderr(),
                        "archived {} ({} -> {})",
                        p.name,
                        super::backup::human_bytes(p.size),
                        super::backup::human_bytes(p.stored_size)
                    );
                }
                _ => {}
            }
            Ok(Exit::Success)
        }
        BackupCommand::WalFetch { store, name, dest } => {
            let result = super::backup::open(cfg, env, runtime, store)
                .and_then(|store| Ok(WalArchive::new(store).fetch(name, dest)?));
            match result {
                Ok(Some(_)) => Ok(Exit::Success),
                // PostgreSQL asks for files that do not exist (the next timeline's history, the segment after
                // the last): not an error worth a line in its log.
                Ok(None) => Ok(Exit::Failure),
                Err(e) => {
                    let _ = writeln!(std::io::stderr(), "error: wal-fetch {name}: {e:#}");
                    Ok(Exit::WalFetchFailed)
                }
            }
        }
        BackupCommand::WalVerify { store, jobs, max_lag, json } => {
            let archive = WalArchive::new(super::backup::open(cfg, env, runtime, store)?);
            let report = archive.verify(now_unix(), *jobs)?;
            let lagging = max_lag.is_some_and(|limit| {
                report.status.newest.as_ref().is_none_or(|n| Duration::from_secs(n.age_seconds) > limit)
            });
            if *json {
                #[derive(serde::Serialize)]
                struct Out<'a> {
                    #[serde(flatten)]
                    report: &'a prodready_backup::wal::WalVerification,
                    lagging: bool,
                }
                let mut out = std::io::stdout().lock();
                serde_json::to_writer_pretty(&mut out, &Out { report: &report, lagging })?;
                writeln!(out)?;
            } else {
                let mut out = std::io::stdout().lock();
                print_status(&mut out, &report.status)?;
                writeln!(out, "checked {} archived files", report.checked)?;
                for c in &report.corrupt {
                    writeln!(out, "CORRUPT {}: {}", c.object, c.problem)?;
                }
                if let (true, Some(limit)) = (lagging, max_lag) {
                    writeln!(
                        out,
                        "LAGGING: nothing archived for longer than {}",
                        humantime::format_duration(*limit)
                    )?;
                }
            }
            Ok(if report.ok && !lagging { Exit::Success } else { Exit::Failure })
        }
        _ => unreachable!("not a wal command"),
    }
}

fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Starts the background pusher: this binary, detached (its own process group, no terminal, output to
/// the spool's log), so PostgreSQL's archiver never waits for it.
fn start_background(
    config_arg: &[String],
    store: &StoreArg,
    path: &Path,
    spool: &Spool,
    options: &PushOptions,
) -> anyhow::Result<()> {
    use std::os::unix::process::CommandExt as _;
    let exe = std::env::current_exe()?;
    let mut cmd = std::process::Command::new(exe);
    cmd.args(config_arg).args(["backup", "wal-push", "--background", "--jobs", &options.jobs.to_string()]);
    if let Some(location) = &store.store {
        cmd.args(["--store", location]);
    }
    let path: PathBuf = std::path::absolute(path)?;
    cmd.arg(&path);
    let log = std::fs::create_dir_all(spool.dir())
        .and_then(|()| {
            std::fs::OpenOptions::new().create(true).append(true).open(spool.dir().join("pusher.log"))
        })
        .ok();
    cmd.stdin(std::process::Stdio::null()).stdout(std::process::Stdio::null());
    match log {
        Some(file) => cmd.stderr(file),
        None => cmd.stderr(std::process::Stdio::null()),
    };
    cmd.process_group(0);
    cmd.spawn()?;
    Ok(())
}

/// Keeps wal-push's counters in the spool (`metrics.json`) and writes them where the flags say.
fn record(runtime: &tokio::runtime::Runtime, args: &MetricsArgs, spool: &Spool, name: &str, ok: bool) {
    if args.textfile.is_none() && args.pushgateway.is_none() {
        return;
    }
    let path = spool.dir().join("metrics.json");
    let mut m: WalPushMetrics =
        std::fs::read(&path).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default();
    if ok {
        m.pushed_total += 1;
        m.last_success_unix = Some(now_unix());
        m.last_file = Some(name.to_owned());
    } else {
        m.failed_total += 1;
        m.last_failure_unix = Some(now_unix());
    }
    if std::fs::create_dir_all(spool.dir()).is_ok() {
        let _ = prodready_stdx::fs::AtomicWrite::new()
            .sync(false)
            .write(&path, &serde_json::to_vec(&m).unwrap_or_default());
    }
    super::backup::publish_group(runtime, args, "prodready-wal", None, &m.registry());
}

/// The archive's part of `backup status`.
pub(crate) fn print_status(
    out: &mut impl std::io::Write,
    status: &prodready_backup::wal::ArchiveStatus,
) -> std::io::Result<()> {
    match &status.newest {
        Some(n) => writeln!(
            out,
            "wal archive:            newest {} archived {} ago ({} files)",
            n.name,
            humantime::format_duration(Duration::from_secs(n.age_seconds)),
            status.files
        )?,
        None => writeln!(out, "wal archive:            empty")?,
    }
    for t in &status.timelines {
        let parent = t
            .parent
            .as_ref()
            .map(|p| format!(", from timeline {} at {}", p.parent, p.at))
            .unwrap_or_default();
        writeln!(
            out,
            "  timeline {}: {} .. {} ({} segments{parent})",
            t.timeline, t.first, t.last, t.segments
        )?;
    }
    for g in &status.gaps {
        writeln!(
            out,
            "  GAP on timeline {}: {} .. {} ({} segments missing)",
            g.timeline, g.first, g.last, g.missing
        )?;
    }
    for c in &status.conflicts {
        writeln!(out, "  CONFLICT: {c} is archived twice with different contents")?;
    }
    for u in &status.unexpected {
        writeln!(out, "  unexpected object: {u}")?;
    }
    Ok(())
}

/// The store's WAL archive, when it holds one.
pub(crate) fn archive_status(
    store: &prodready_backup::Store,
) -> anyhow::Result<Option<prodready_backup::wal::ArchiveStatus>> {
    let archive = WalArchive::new(store.clone());
    if archive.info()?.is_none() {
        return Ok(None);
    }
    Ok(Some(archive.status(now_unix())?))
}
