//! `prodready daemon`: turns `[daemon]` into prodready-daemon's jobs (each a run of this binary on a
//! snapshot of the configuration), handles the signals, and adds the backups and the last scorecard to
//! the status page.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::Context as _;
use prodready_backup::catalog;
use prodready_daemon::{Control, Job, Schedule, Section, StatusSections};
use prodready_logging::{LogConfig, Output};
use tokio::sync::mpsc;

use crate::cli::DaemonArgs;
use crate::config::{self, Config, DaemonJob, JobKind};
use crate::env::Env;
use crate::error::UsageError;
use crate::exit::Exit;

/// The newest backups the status page lists.
const BACKUPS_SHOWN: usize = 20;

pub(super) fn run(config_flag: Option<&Path>, env: &Env, args: &DaemonArgs) -> anyhow::Result<Exit> {
    let loaded = config::load(config_flag, env)?;
    let cfg = &loaded.config;
    let runtime = super::runtime(2)?;
    let log = LogConfig {
        filter: cfg.logging.filter.clone(),
        format: cfg.logging.format,
        output: Output::Stderr,
        loki: None,
    };
    let _guard = prodready_logging::init(&log)?;
    let state_dir = daemon_dir(cfg);
    std::fs::create_dir_all(&state_dir)
        .with_context(|| format!("cannot create the daemon's directory {}", state_dir.display()))?;
    // Each loaded configuration is copied here, and jobs read their copy: a broken edit of the file
    // cannot break a job before SIGHUP has checked it.
    let snapshots = tempfile::Builder::new()
        .prefix("prodready-daemon-")
        .tempdir()
        .context("cannot create a directory for configuration snapshots")?;
    let planner = Arc::new(Planner {
        config_flag: config_flag.map(Path::to_path_buf),
        env: env.clone(),
        exe: std::env::current_exe().context("cannot find this executable, which the jobs run")?,
        snapshots: snapshots.path().to_path_buf(),
        generation: AtomicU32::new(0),
    });
    let jobs = planner.jobs(&loaded)?;
    let replica = format!(
        "{}:{}",
        nix::unistd::gethostname()
            .ok()
            .and_then(|h| h.into_string().ok())
            .unwrap_or_else(|| "localhost".to_owned()),
        std::process::id()
    );
    let lock_url = cfg.daemon.lock_database.clone().unwrap_or_else(|| cfg.database_url().to_owned());
    let mut options =
        prodready_daemon::Options::new(args.listen.unwrap_or(cfg.daemon.listen), lock_url, replica, jobs);
    options.lease = cfg.daemon.lease;
    options.shutdown_timeout = cfg.daemon.shutdown_timeout;
    let pages = Arc::new(Pages::new(cfg, env, runtime.handle()));
    pages.refresh_backup_metrics();
    let started = cfg.daemon.clone();
    let outcome = runtime.block_on(async {
        let (tx, rx) = mpsc::unbounded_channel();
        let reload = {
            let (planner, pages, env, handle) = (planner.clone(), pages.clone(), env.clone(), runtime.handle().clone());
            move || -> anyhow::Result<Vec<Job>> {
                let loaded = config::load(planner.config_flag.as_deref(), &planner.env)?;
                let jobs = planner.jobs(&loaded)?;
                let daemon = &loaded.config.daemon;
                if daemon.listen != started.listen
                    || daemon.lock_database != started.lock_database
                    || daemon.lease != started.lease
                    || daemon.shutdown_timeout != started.shutdown_timeout
                {
                    tracing::warn!(
                        "[daemon] listen, lock_database, lease and shutdown_timeout changes take effect at the next start"
                    );
                }
                pages.update(&loaded.config, &env, &handle);
                Ok(jobs)
            }
        };
        tokio::spawn(signals(tx, reload));
        prodready_daemon::run(options, pages, rx).await
    });
    runtime.shutdown_timeout(Duration::from_secs(1));
    drop(snapshots);
    outcome?;
    Ok(Exit::Success)
}

/// Called first thing in a job the daemon started (`--daemon-parent PID`): SIGTERM when the daemon
/// dies, and no run at all when it is already gone.
pub(super) fn die_with_parent(parent: i32) -> anyhow::Result<()> {
    nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGTERM)
        .context("cannot ask to be stopped with the daemon")?;
    if nix::unistd::getppid().as_raw() != parent {
        anyhow::bail!("the daemon that started this job (pid {parent}) is gone; not running");
    }
    Ok(())
}

/// SIGTERM and SIGINT shut down; SIGHUP reloads through `reload` (on a blocking thread).
async fn signals<F>(tx: mpsc::UnboundedSender<Control>, reload: F)
where
    F: Fn() -> anyhow::Result<Vec<Job>> + Send + Sync + 'static,
{
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int), Ok(mut hup)) =
        (signal(SignalKind::terminate()), signal(SignalKind::interrupt()), signal(SignalKind::hangup()))
    else {
        tracing::error!("cannot install signal handlers");
        return;
    };
    let reload = Arc::new(reload);
    // A reload runs beside the signal loop (it may open a remote store): SIGTERM is acted on at once.
    let mut pending: Option<tokio::task::JoinHandle<anyhow::Result<Vec<Job>>>> = None;
    loop {
        let name = tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
            _ = hup.recv() => {
                if pending.is_some() {
                    tracing::info!("SIGHUP: a reload is already under way");
                } else {
                    let reload = reload.clone();
                    pending = Some(tokio::task::spawn_blocking(move || reload()));
                }
                continue;
            }
            Some(done) = async {
                match pending.as_mut() {
                    Some(handle) => Some(handle.await),
                    None => None,
                }
            }, if pending.is_some() => {
                pending = None;
                match done {
                    Ok(Ok(jobs)) => {
                        let _ = tx.send(Control::Reload(jobs));
                    }
                    Ok(Err(e)) => tracing::error!(
                        "SIGHUP: configuration not reloaded, the old schedules stay: {}",
                        prodready_stdx::error::chain(e.as_ref())
                    ),
                    Err(e) => tracing::error!("SIGHUP: reload failed: {e}"),
                }
                continue;
            }
        };
        tracing::info!("{name} received: stopping");
        let _ = tx.send(Control::Shutdown);
    }
}

/// Where the daemon keeps its files: the last check report.
fn daemon_dir(cfg: &Config) -> PathBuf {
    cfg.general.data_dir.clone().unwrap_or_default().join("daemon")
}

fn check_report(cfg: &Config) -> PathBuf {
    daemon_dir(cfg).join("check-report.json")
}

fn db_top(cfg: &Config) -> PathBuf {
    daemon_dir(cfg).join("db-top.json")
}

/// Statements a `db-collect` job keeps for the status page.
const DB_TOP_SHOWN: usize = 15;

/// Builds the jobs of one loaded configuration.
struct Planner {
    config_flag: Option<PathBuf>,
    env: Env,
    exe: PathBuf,
    snapshots: PathBuf,
    generation: AtomicU32,
}

impl Planner {
    fn jobs(&self, loaded: &config::Loaded) -> anyhow::Result<Vec<Job>> {
        let cfg = &loaded.config;
        let file = match &loaded.source {
            config::Source::File(path) => path.display().to_string(),
            config::Source::Embedded => "[daemon]".to_owned(),
        };
        // Names are unique: the configuration is refused otherwise (`[daemon] jobs`).
        let declared = if cfg.daemon.jobs.is_empty() { default_jobs(cfg) } else { cfg.daemon.jobs.clone() };
        let snapshot = self.snapshot(loaded)?;
        // `[checklist] file` is relative to the configuration file, and the jobs read a copy of it kept
        // elsewhere: they are given the file's absolute path (as an override in their environment).
        let checklist_file = match (&loaded.source, &cfg.checklist.file) {
            (config::Source::File(path), Some(file)) if file.is_relative() => {
                let joined = path.parent().unwrap_or(Path::new("")).join(file);
                Some(std::path::absolute(&joined).unwrap_or(joined))
            }
            _ => None,
        };
        let mut jobs: Vec<Job> =
            declared.iter().map(|job| self.job(cfg, job, &snapshot, &file)).collect::<anyhow::Result<_>>()?;
        if let Some(path) = checklist_file {
            let name =
                format!("{}CHECKLIST{}FILE", crate::env::OVERRIDE_PREFIX, crate::env::OVERRIDE_SEPARATOR);
            for job in jobs.iter_mut().filter(|j| j.kind == JobKind::Check.name()) {
                job.env.push((name.clone(), path.display().to_string()));
            }
        }
        Ok(jobs)
    }

    /// Copies the configuration file as loaded (an empty file for embedded defaults), readable by the
    /// owner only since it may hold credentials.
    fn snapshot(&self, loaded: &config::Loaded) -> anyhow::Result<PathBuf> {
        let text = match &loaded.source {
            config::Source::File(path) => std::fs::read_to_string(path)
                .with_context(|| format!("{}: cannot read the configuration file", path.display()))?,
            config::Source::Embedded => String::new(),
        };
        let n = self.generation.fetch_add(1, Ordering::Relaxed);
        let path = self.snapshots.join(format!("prodready-{n}.toml"));
        prodready_stdx::fs::write_atomic(&path, text.as_bytes())
            .with_context(|| format!("cannot write {}", path.display()))?;
        Ok(path)
    }

    fn job(&self, cfg: &Config, job: &DaemonJob, snapshot: &Path, file: &str) -> anyhow::Result<Job> {
        let zone = job.timezone.as_deref().unwrap_or(&cfg.daemon.timezone);
        let schedule = Schedule::parse(&job.schedule, zone)
            .map_err(|e| UsageError(format!("{file}: daemon.jobs `{}`: schedule: {e}", job.name)))?;
        let mut argv = vec![
            self.exe.display().to_string(),
            "--config".to_owned(),
            snapshot.display().to_string(),
            "--daemon-parent".to_owned(),
            std::process::id().to_string(),
        ];
        let mut env = vec![("NO_COLOR".to_owned(), "1".to_owned())];
        match job.run {
            JobKind::BackupRun => argv.extend(["backup".to_owned(), "run".to_owned()]),
            JobKind::BackupVerify => argv.extend(["backup".to_owned(), "verify".to_owned()]),
            JobKind::BackupPrune => argv.extend(["backup".to_owned(), "prune".to_owned()]),
            JobKind::BackupBase => argv.extend(["backup".to_owned(), "base".to_owned()]),
            JobKind::Check => argv.extend([
                "check".to_owned(),
                "--format".to_owned(),
                "json".to_owned(),
                "--output".to_owned(),
                check_report(cfg).display().to_string(),
            ]),
            JobKind::DbCollect => argv.extend([
                "db".to_owned(),
                "top".to_owned(),
                "--limit".to_owned(),
                DB_TOP_SHOWN.to_string(),
                "--json".to_owned(),
                "--output".to_owned(),
                db_top(cfg).display().to_string(),
            ]),
        }
        if job.run == JobKind::DbCollect
            && let Some(url) = &job.database
        {
            // In the environment, as the first watched database: a URL may carry a password.
            let sep = crate::env::OVERRIDE_SEPARATOR;
            env.push((
                format!("{}DATABASE_MONITORING{sep}DATABASES", crate::env::OVERRIDE_PREFIX),
                format!("[{}]", serde_json::Value::String(url.clone())),
            ));
        }
        if !matches!(job.run, JobKind::Check | JobKind::DbCollect) {
            match job.database.as_deref() {
                // A URL may carry a password: it goes in the environment, never in argv.
                Some(url) if url.contains("://") || url.contains('=') => {
                    env.push((
                        format!(
                            "{}DATABASE{}URL",
                            crate::env::OVERRIDE_PREFIX,
                            crate::env::OVERRIDE_SEPARATOR
                        ),
                        url.to_owned(),
                    ));
                }
                // A base backup copies the whole server: it needs a URL to reach it, not a database name.
                Some(name) if job.run == JobKind::BackupBase => {
                    return Err(UsageError(format!(
                        "{file}: daemon.jobs `{}`: database `{name}`: a backup-base job takes the server's URL \
                         (postgres://...), not a database name",
                        job.name
                    ))
                    .into());
                }
                Some(name) => argv.extend(["--database".to_owned(), name.to_owned()]),
                None => {}
            }
            if let Some(store) = &job.store {
                argv.extend(["--store".to_owned(), store.clone()]);
            }
        }
        let mut out = Job::new(job.name.clone(), job.run.name(), schedule, argv);
        out.env = env;
        out.timeout = job.timeout.unwrap_or_else(|| job.run.default_timeout());
        out.jitter = job.jitter;
        out.missed = job.missed;
        Ok(out)
    }
}

/// The jobs when `[daemon]` declares none: the `[backup]` schedules, and a daily check.
fn default_jobs(cfg: &Config) -> Vec<DaemonJob> {
    let job = |name: &str, run: JobKind, schedule: &str| DaemonJob {
        name: name.to_owned(),
        run,
        schedule: schedule.to_owned(),
        timezone: None,
        timeout: None,
        jitter: Duration::ZERO,
        missed: prodready_daemon::Missed::RunOnce,
        database: None,
        store: None,
    };
    vec![
        job("backup", JobKind::BackupRun, &cfg.backup.schedule),
        job("verify", JobKind::BackupVerify, &cfg.backup.verify_schedule),
        job("prune", JobKind::BackupPrune, &cfg.backup.prune_schedule),
        job("check", JobKind::Check, DEFAULT_CHECK_SCHEDULE),
    ]
}

/// When the default check job runs.
pub(crate) const DEFAULT_CHECK_SCHEDULE: &str = "7 6 * * *";

/// The status page's own sections: the last scorecard and the backup inventory.
struct Pages {
    inner: RwLock<PagesInner>,
    backup_metrics: prodready_backup::metrics::StoreCollector,
}

struct PagesInner {
    report: PathBuf,
    db_top: PathBuf,
    store: Result<prodready_backup::Store, String>,
    location: String,
}

impl Pages {
    fn new(cfg: &Config, env: &Env, handle: &tokio::runtime::Handle) -> Self {
        Self {
            inner: RwLock::new(PagesInner::new(cfg, env, handle)),
            backup_metrics: prodready_backup::metrics::StoreCollector::default(),
        }
    }

    fn update(&self, cfg: &Config, env: &Env, handle: &tokio::runtime::Handle) {
        let fresh = PagesInner::new(cfg, env, handle);
        *self.inner.write().unwrap_or_else(std::sync::PoisonError::into_inner) = fresh;
    }
}

impl PagesInner {
    fn new(cfg: &Config, env: &Env, handle: &tokio::runtime::Handle) -> Self {
        let location = cfg.backup_store().to_owned();
        let store = std::thread::scope(|s| {
            // Opening an S3 store blocks on the runtime, which must not happen on one of its threads.
            s.spawn(|| super::backup::open_location(&cfg.backup, env, handle, &location))
                .join()
                .unwrap_or_else(|_| Err(anyhow::anyhow!("opening the store panicked")))
        })
        .map_err(|e| prodready_stdx::error::chain(e.as_ref()));
        Self { report: check_report(cfg), db_top: db_top(cfg), store, location }
    }
}

impl StatusSections for Pages {
    fn sections(&self) -> Vec<Section> {
        let inner = self.inner.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        vec![scorecard(&inner.report), backups(&inner.store, &inner.location), statements(&inner.db_top)]
    }

    fn collectors(&self) -> Vec<Box<dyn prodready_metrics::prometheus_client::collector::Collector>> {
        vec![Box::new(self.backup_metrics.clone())]
    }
}

impl Pages {
    /// Keeps the backup metrics current: the store is listed now and every [`BACKUP_METRICS_EVERY`] on
    /// a thread of its own, so a scrape never waits for the store (an S3 listing, say).
    fn refresh_backup_metrics(self: &Arc<Self>) {
        let pages = Arc::downgrade(self);
        let spawned = std::thread::Builder::new().name("backup-metrics".to_owned()).spawn(move || {
            while let Some(pages) = pages.upgrade() {
                let read = {
                    let inner = pages.inner.read().unwrap_or_else(std::sync::PoisonError::into_inner);
                    inner.store.as_ref().ok().map(prodready_backup::metrics::StoreMetrics::read)
                };
                match read {
                    Some(Ok(metrics)) => pages.backup_metrics.set(metrics),
                    Some(Err(e)) => {
                        tracing::warn!(
                            "cannot list the backup store for metrics: {}",
                            prodready_stdx::error::chain(&e)
                        );
                    }
                    None => {}
                }
                drop(pages);
                std::thread::sleep(BACKUP_METRICS_EVERY);
            }
        });
        if let Err(e) = spawned {
            tracing::warn!("no backup metrics: cannot start a thread: {e}");
        }
    }
}

/// How often the daemon lists the store for its backup metrics.
const BACKUP_METRICS_EVERY: Duration = Duration::from_secs(15);

fn scorecard(path: &Path) -> Section {
    let mut section = Section { title: "Last scorecard".to_owned(), ..Section::default() };
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            section.note = Some(format!("no check has run yet (its report goes to {})", path.display()));
            return section;
        }
        Err(e) => {
            section.note = Some(format!("cannot read {}: {e}", path.display()));
            return section;
        }
    };
    let report: prodready_checklist::Report = match serde_json::from_str(&text) {
        Ok(report) => report,
        Err(e) => {
            section.note = Some(format!("cannot read {}: {e}", path.display()));
            return section;
        }
    };
    let card = &report.scorecard;
    let overall = card.overall.map_or_else(|| "n/a".to_owned(), |s| format!("{s:.1}/10"));
    let blocking = if card.blocking.is_empty() {
        String::new()
    } else {
        format!("; blocking: {}", card.blocking.join(", "))
    };
    section.title = format!("Last scorecard ({})", report.generated_at);
    section.note = Some(format!(
        "overall {overall} (minimum {:.1}): {}{blocking}",
        card.min_score,
        serde_json::to_value(card.verdict)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default()
    ));
    section.headers = ["check", "category", "must-have", "status", "what it saw"].map(str::to_owned).to_vec();
    section.rows = report
        .results
        .iter()
        .map(|r| {
            vec![
                r.meta.title.clone(),
                r.meta.category.name().to_owned(),
                if r.meta.must_have { "yes" } else { "" }.to_owned(),
                serde_json::to_value(r.status)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default(),
                r.summary.clone(),
            ]
        })
        .collect();
    section
}

fn backups(store: &Result<prodready_backup::Store, String>, location: &str) -> Section {
    let mut section = Section { title: format!("Backups in {location}"), ..Section::default() };
    let store = match store {
        Ok(store) => store,
        Err(e) => {
            section.note = Some(format!("cannot open the store: {e}"));
            return section;
        }
    };
    let (mut listed, corrupt) = match catalog::list_all(store) {
        Ok(found) => found,
        Err(e) => {
            section.note = Some(format!("cannot list the store: {}", prodready_stdx::error::chain(&e)));
            return section;
        }
    };
    listed.reverse();
    let mut note = match listed.len() {
        0 => "no backups yet".to_owned(),
        n if n > BACKUPS_SHOWN => format!("{n} backups; the newest {BACKUPS_SHOWN}"),
        n => format!("{n} backups"),
    };
    if !corrupt.is_empty() {
        note.push_str(&format!("; {} corrupt (left out)", corrupt.len()));
    }
    section.note = Some(note);
    section.headers = ["id", "taken", "database", "size", "verification"].map(str::to_owned).to_vec();
    section.rows = listed
        .iter()
        .take(BACKUPS_SHOWN)
        .map(|b| {
            vec![
                b.id.clone(),
                b.created_at.clone(),
                b.database.clone(),
                super::backup::human_bytes(b.size_bytes),
                super::backup::verified(b),
            ]
        })
        .collect();
    section
}

/// The last `db-collect` run's statements.
fn statements(path: &Path) -> Section {
    let mut section = Section { title: "Costliest statements".to_owned(), ..Section::default() };
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            section.note = Some("no db-collect job has run yet".to_owned());
            return section;
        }
        Err(e) => {
            section.note = Some(format!("cannot read {}: {e}", path.display()));
            return section;
        }
    };
    let Ok(document) = serde_json::from_str::<serde_json::Value>(&text) else {
        section.note = Some(format!("cannot read {}: not JSON", path.display()));
        return section;
    };
    let field = |v: &serde_json::Value, k: &str| {
        v.get(k).and_then(serde_json::Value::as_str).unwrap_or("").to_owned()
    };
    section.note = Some(format!(
        "{} at {}, by total time",
        field(&document, "database"),
        field(&document, "collected_at")
    ));
    section.headers = ["calls", "total", "mean", "rows", "statement"].map(str::to_owned).to_vec();
    let number = |v: &serde_json::Value, k: &str| v.get(k).and_then(serde_json::Value::as_f64).unwrap_or(0.0);
    section.rows = document
        .get("statements")
        .and_then(serde_json::Value::as_array)
        .into_iter()
        .flatten()
        .map(|s| {
            vec![
                format!("{:.0}", number(s, "calls")),
                format!("{:.3} s", number(s, "total_seconds")),
                format!("{:.2} ms", number(s, "mean_seconds") * 1000.0),
                format!("{:.0}", number(s, "rows")),
                field(s, "query"),
            ]
        })
        .collect();
    section
}
