//! Pushing ahead: while PostgreSQL archives one file at a time, the files it has already marked ready
//! (`pg_wal/archive_status/<name>.ready`) are pushed in parallel, and what was pushed is recorded in a
//! spool directory (`<name>.done`), so that PostgreSQL's own later call for such a file returns at once.
//! Only PostgreSQL renames `.ready` to `.done` in `archive_status`: a file counts as archived for it only
//! when its own call succeeds, which it does only once the file is in the store.
//!
//! Two ways to use it:
//! - [`push_with_ready`] (synchronous): pushes the file asked for plus up to `jobs - 1` other ready files
//!   at once, returns when all are done, and reports on the one asked for.
//! - [`run_background`] and [`wait_for`] (asynchronous): one background pusher per spool (an exclusive
//!   lock on `pusher.lock`) pushes every ready file, `jobs` at a time, and records each outcome (`.done`
//!   or `.error`); PostgreSQL's call only waits for its file's outcome, for at most a timeout, and fails
//!   (so PostgreSQL retries later) unless the file is in the store.
//!
//! Every record names the store it was made for, and only a caller pushing to that same store trusts it:
//! after `archive_command` is pointed at another store, a file pushed ahead into the old one is pushed
//! again, not reported archived. A caller writes its store to the spool's `store` file, and a background
//! pusher started for another store stops at its next look at the spool.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::wal::{PushOptions, Pushed, WalArchive, WalName};
use crate::{Error, Result};

/// The spool's default directory name inside `pg_wal` (PostgreSQL ignores directories it does not know,
/// and base backups leave `pg_wal`'s contents out).
pub const DEFAULT_SPOOL: &str = "prodready_archive_status";
const LOCK: &str = "pusher.lock";
/// The store the spool's callers push to now (see the module's documentation).
const STORE: &str = "store";

/// Where push-ahead outcomes are recorded.
#[derive(Debug, Clone)]
pub struct Spool {
    pg_wal: PathBuf,
    dir: PathBuf,
    /// The store this spool's records are made for and trusted by ([`crate::Store::location`], on one
    /// line).
    store: String,
}

impl Spool {
    /// The spool of the `pg_wal` directory `pg_wal` (`dir`, or `pg_wal/prodready_archive_status`), for
    /// pushes to `store` (the archive's [`crate::Store::location`]): records made for another store are
    /// not trusted.
    pub fn new(pg_wal: &Path, dir: Option<PathBuf>, store: &str) -> Self {
        Self {
            pg_wal: pg_wal.to_path_buf(),
            dir: dir.unwrap_or_else(|| pg_wal.join(DEFAULT_SPOOL)),
            store: store.replace('\n', "\\n"),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn pg_wal(&self) -> &Path {
        &self.pg_wal
    }

    fn ensure(&self) -> Result<()> {
        std::fs::create_dir_all(&self.dir).map_err(|e| Error::io(&self.dir, e))
    }

    fn marker(&self, name: &str, outcome: &str) -> PathBuf {
        self.dir.join(format!("{name}.{outcome}"))
    }

    /// Whether `name` was pushed ahead into this spool's store; the record is consumed (a record made for
    /// another store too, and it does not count).
    pub fn take_done(&self, name: &str) -> bool {
        self.take(name, "done").is_some()
    }

    /// Why pushing `name` ahead into this spool's store failed, if it did; the record is consumed.
    pub fn take_error(&self, name: &str) -> Option<String> {
        self.take(name, "error")
    }

    /// The text of `name`'s `outcome` record when it was made for this spool's store; the record is
    /// removed either way.
    fn take(&self, name: &str, outcome: &str) -> Option<String> {
        let path = self.marker(name, outcome);
        let text = std::fs::read_to_string(&path).ok()?;
        let _ = std::fs::remove_file(&path);
        let (store, text) = text.split_once('\n')?;
        (store == self.store).then(|| text.to_owned())
    }

    /// Records `name`'s outcome: the store's line, then `text`.
    fn record(&self, name: &str, outcome: &str, text: &str) -> Result<()> {
        let path = self.marker(name, outcome);
        prodready_stdx::fs::AtomicWrite::new()
            .sync(false)
            .write(&path, format!("{}\n{text}", self.store).as_bytes())
            .map_err(|e| Error::io(&path, e))
    }

    /// Makes this spool's store the one its callers push to now: a background pusher for another store
    /// stops at its next look.
    pub fn claim(&self) -> Result<()> {
        if self.claimed_by_other() {
            self.ensure()?;
            let path = self.dir.join(STORE);
            prodready_stdx::fs::AtomicWrite::new()
                .sync(false)
                .write(&path, self.store.as_bytes())
                .map_err(|e| Error::io(&path, e))?;
        }
        Ok(())
    }

    /// Whether the spool's callers push to a store other than this spool's (or none claimed it yet).
    fn claimed_by_other(&self) -> bool {
        std::fs::read_to_string(self.dir.join(STORE)).map_or(true, |s| s != self.store)
    }

    /// Files PostgreSQL marked ready and that were not pushed ahead yet, oldest first (history files
    /// first, as PostgreSQL archives them). Records of files no longer ready are removed.
    pub fn ready(&self) -> Result<Vec<String>> {
        let status = self.pg_wal.join("archive_status");
        let mut ready: Vec<String> = std::fs::read_dir(&status)
            .map_err(|e| Error::io(&status, e))?
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter_map(|n| n.strip_suffix(".ready").map(str::to_owned))
            .filter(|n| WalName::parse(n).is_ok())
            .collect();
        if let Ok(entries) = std::fs::read_dir(&self.dir) {
            for entry in entries.flatten() {
                let Ok(file) = entry.file_name().into_string() else { continue };
                let Some((name, _)) = file.rsplit_once('.').filter(|(_, o)| *o == "done") else { continue };
                if !ready.iter().any(|r| r == name) {
                    let _ = std::fs::remove_file(entry.path());
                }
            }
        }
        ready.retain(|n| !self.marker(n, "done").exists());
        ready.sort_by_key(|n| (!n.ends_with(".history"), n.clone()));
        Ok(ready)
    }

    /// The background pusher's lock, when no pusher holds it.
    fn try_lock(&self) -> Result<Option<File>> {
        self.ensure()?;
        let path = self.dir.join(LOCK);
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        match file.try_lock() {
            Ok(()) => Ok(Some(file)),
            Err(std::fs::TryLockError::WouldBlock) => Ok(None),
            Err(std::fs::TryLockError::Error(e)) => Err(Error::io(&path, e)),
        }
    }

    /// Whether a background pusher is running on this spool.
    pub fn pusher_running(&self) -> Result<bool> {
        Ok(self.try_lock()?.is_none())
    }
}

/// Pushes `files` (names in `pg_wal`) `jobs` at a time; the outcome of each, in order.
fn push_all(
    archive: &WalArchive,
    spool: &Spool,
    files: &[String],
    options: &PushOptions,
) -> Vec<Result<Pushed>> {
    let results: Vec<Mutex<Option<Result<Pushed>>>> = files.iter().map(|_| Mutex::new(None)).collect();
    let next = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..options.jobs.clamp(1, files.len().max(1)) {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(name) = files.get(i) else { return };
                    let result = archive.push(&spool.pg_wal.join(name), options);
                    *results[i].lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(result);
                }
            });
        }
    });
    results
        .into_iter()
        .map(|m| {
            m.into_inner()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .unwrap_or_else(|| Err(Error::Invalid("a push thread stopped".to_owned())))
        })
        .collect()
}

/// Pushes `path` and, in parallel, up to `options.jobs - 1` other files PostgreSQL marked ready, recording
/// those pushed ahead in `spool`. Returns at once when `path` was pushed ahead by an earlier call.
pub fn push_with_ready(
    archive: &WalArchive,
    path: &Path,
    options: &PushOptions,
    spool: &Spool,
) -> Result<Pushed> {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_owned();
    if spool.dir.is_dir() {
        // A background pusher for another store (the asynchronous mode, before a change of store) stops.
        let _ = spool.claim();
    }
    if spool.take_done(&name) {
        return Ok(Pushed { name, sha256: String::new(), size: 0, stored_size: 0, already: true });
    }
    let mut others = Vec::new();
    if options.jobs > 1 {
        // The spool may be unusable (a read-only pg_wal in a test): push-ahead is an optimisation only.
        if let Ok(ready) = spool.ready() {
            others = ready.into_iter().filter(|n| *n != name).take(options.jobs - 1).collect();
        }
        if !others.is_empty() && spool.ensure().is_err() {
            others.clear();
        }
    }
    let mut files = vec![name];
    files.extend(others);
    let mut results = push_all_at(archive, path, spool, &files, options).into_iter();
    let mine = results.next().expect("the file asked for is pushed");
    for (name, result) in files.iter().skip(1).zip(results) {
        if let Ok(pushed) = result {
            let _ = spool.record(name, "done", &pushed.sha256);
        }
    }
    mine
}

/// [`push_all`], where the first file is at `path` (wherever PostgreSQL said it is).
fn push_all_at(
    archive: &WalArchive,
    path: &Path,
    spool: &Spool,
    files: &[String],
    options: &PushOptions,
) -> Vec<Result<Pushed>> {
    if files.len() == 1 {
        return vec![archive.push(path, options)];
    }
    let mut out = Vec::with_capacity(files.len());
    std::thread::scope(|scope| {
        let first = scope.spawn(|| archive.push(path, options));
        let rest =
            push_all(archive, spool, &files[1..], &PushOptions { jobs: options.jobs - 1, ..options.clone() });
        out.push(first.join().unwrap_or_else(|_| Err(Error::Invalid("a push thread panicked".to_owned()))));
        out.extend(rest);
    });
    out
}

/// The background pusher: holds the spool's lock and keeps `options.jobs` pushes going over the files
/// PostgreSQL marked ready, oldest first, recording each outcome (`.done` or `.error`) the moment its push
/// ends, so PostgreSQL's call for a file never waits on a slower one pushed beside it. Returns, with how
/// many files it pushed, once nothing was ready or in flight for `idle`; `None` when another pusher holds
/// the lock.
pub fn run_background(
    archive: &WalArchive,
    spool: &Spool,
    options: &PushOptions,
    idle: Duration,
) -> Result<Option<u64>> {
    let Some(_lock) = spool.try_lock()? else { return Ok(None) };
    spool.claim()?;
    let pool = Pool {
        state: Mutex::new(PoolState {
            waiting: std::collections::VecDeque::new(),
            in_flight: std::collections::HashSet::new(),
            recent: std::collections::HashMap::new(),
            pushed: 0,
            quiet_since: Instant::now(),
            failure: None,
            superseded: false,
        }),
        idle,
    };
    std::thread::scope(|scope| {
        for _ in 0..options.jobs.max(1) {
            scope.spawn(|| pool.work(archive, spool, options));
        }
    });
    let state = pool.state.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner);
    match state.failure {
        Some(e) => Err(e),
        None => Ok(Some(state.pushed)),
    }
}

/// How long the background pusher leaves a file it pushed alone (see `PoolState::recent`).
const RECENT: Duration = Duration::from_secs(2);

/// The background pusher's workers and what they share.
struct Pool {
    state: Mutex<PoolState>,
    idle: Duration,
}

struct PoolState {
    /// Ready files not taken yet, oldest first.
    waiting: std::collections::VecDeque<String>,
    /// Files a worker is pushing.
    in_flight: std::collections::HashSet<String>,
    /// Files this pool pushed, and when: PostgreSQL's call consumes the `.done` record a moment before it
    /// renames `.ready`, and a scan in between would push the file again (harmlessly, at the cost of
    /// reading and hashing it). Skipped for [`RECENT`]; a file still ready after that is pushed again.
    recent: std::collections::HashMap<String, Instant>,
    pushed: u64,
    /// When the last push ended (or the pool started).
    quiet_since: Instant,
    /// The first error that stops the pool (the spool cannot be read or written).
    failure: Option<Error>,
    /// A caller claimed the spool for another store: the pool stops.
    superseded: bool,
}

impl Pool {
    fn state(&self) -> std::sync::MutexGuard<'_, PoolState> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// One worker: takes the oldest waiting file (looking at `archive_status` again when none is waiting),
    /// pushes it and records the outcome, until the pool is idle or has failed.
    fn work(&self, archive: &WalArchive, spool: &Spool, options: &PushOptions) {
        loop {
            let next = {
                let mut state = self.state();
                if state.failure.is_some() || state.superseded {
                    return;
                }
                if state.waiting.is_empty() {
                    if spool.claimed_by_other() {
                        state.superseded = true;
                        return;
                    }
                    match spool.ready() {
                        // A file whose failure is recorded waits until its caller has read the record.
                        Ok(ready) => {
                            state.recent.retain(|_, at| at.elapsed() < RECENT);
                            let fresh: Vec<String> = ready
                                .into_iter()
                                .filter(|n| {
                                    !state.in_flight.contains(n)
                                        && !state.recent.contains_key(n)
                                        && !spool.marker(n, "error").exists()
                                })
                                .collect();
                            state.waiting.extend(fresh);
                        }
                        Err(e) => {
                            state.failure = Some(e);
                            return;
                        }
                    }
                }
                match state.waiting.pop_front() {
                    Some(name) => {
                        state.in_flight.insert(name.clone());
                        Some(name)
                    }
                    None if state.in_flight.is_empty() && state.quiet_since.elapsed() >= self.idle => return,
                    None => None,
                }
            };
            let Some(name) = next else {
                std::thread::sleep(Duration::from_millis(20));
                continue;
            };
            let pushed = archive.push(&spool.pg_wal.join(&name), options);
            if spool.claimed_by_other() {
                // Callers push elsewhere now: their records would not be trusted, and the pool stops.
                let mut state = self.state();
                state.in_flight.remove(&name);
                state.superseded = true;
                return;
            }
            let recorded = match pushed {
                Ok(pushed) => spool.record(&name, "done", &pushed.sha256).map(|()| true),
                Err(e) => spool.record(&name, "error", &e.to_string()).map(|()| false),
            };
            let mut state = self.state();
            state.in_flight.remove(&name);
            state.quiet_since = Instant::now();
            if matches!(recorded, Ok(true)) {
                state.recent.insert(name, Instant::now());
            }
            match recorded {
                Ok(pushed) => state.pushed += u64::from(pushed),
                Err(e) => {
                    state.failure.get_or_insert(e);
                    return;
                }
            }
        }
    }
}

/// Waits until the background pusher has recorded `name`'s outcome, for at most `timeout`; `start` is
/// called to start a pusher whenever none is running. `Ok` only when the file is in the store.
pub fn wait_for(
    spool: &Spool,
    name: &str,
    timeout: Duration,
    mut start: impl FnMut() -> Result<()>,
) -> Result<()> {
    let began = Instant::now();
    let mut started: Option<Instant> = None;
    spool.claim()?;
    loop {
        if spool.take_done(name) {
            return Ok(());
        }
        if let Some(problem) = spool.take_error(name) {
            return Err(Error::WalPushFailed { name: name.to_owned(), problem });
        }
        if started.is_none_or(|t| t.elapsed() >= Duration::from_secs(1)) && !spool.pusher_running()? {
            start()?;
            started = Some(Instant::now());
        }
        if began.elapsed() >= timeout {
            return Err(Error::WalPushFailed {
                name: name.to_owned(),
                problem: format!("not archived within {} s; it is retried", timeout.as_secs()),
            });
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}
