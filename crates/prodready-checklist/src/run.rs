//! Running a checklist: every check concurrently, each under its own timeout.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::Semaphore;

use crate::model::{CheckResult, Meta, Status};
use crate::probe::{self, Context, Finding};
use crate::spec::{Check, Date};

/// An error from opening a backup store.
pub type OpenError = Box<dyn std::error::Error + Send + Sync>;

/// Opens the backup store a `backup` check names (a directory, `s3://BUCKET/PREFIX`...). It is called on
/// a blocking thread of the run's runtime. [`StoreOpener::local`] opens directories only; a caller that
/// can reach object storage passes its own, so this crate needs no cloud SDK.
#[derive(Clone)]
pub struct StoreOpener(Arc<OpenFn>);

type OpenFn = dyn Fn(&str) -> Result<prodready_backup::Store, OpenError> + Send + Sync;

impl StoreOpener {
    pub fn new(
        open: impl Fn(&str) -> Result<prodready_backup::Store, OpenError> + Send + Sync + 'static,
    ) -> Self {
        Self(Arc::new(open))
    }

    /// Local directories only ([`prodready_backup::Store::open`]).
    pub fn local() -> Self {
        Self::new(|location| Ok(prodready_backup::Store::open(location)?))
    }

    pub fn open(&self, location: &str) -> Result<prodready_backup::Store, OpenError> {
        (self.0)(location)
    }
}

impl std::fmt::Debug for StoreOpener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreOpener").finish_non_exhaustive()
    }
}

/// How a run goes.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Per-check timeout, unless a check sets its own.
    pub timeout: Duration,
    /// Checks running at once.
    pub concurrency: usize,
    /// Today, for manual attestations.
    pub today: Date,
    /// Now, in seconds since the epoch, for certificate expiry.
    pub now_unix: i64,
    /// Opens the stores `backup` checks read (default: local directories only).
    pub stores: StoreOpener,
    /// The whole checklist, when the checks run are a selection of it (`--only`): the `attestations`
    /// check judges every manual check of the whole, not only those selected.
    pub checklist: Option<Vec<Check>>,
}

impl RunOptions {
    /// Options for a run starting now.
    pub fn now(timeout: Duration) -> Self {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let now_unix = i64::try_from(now).unwrap_or(i64::MAX);
        Self {
            timeout,
            concurrency: 16,
            today: Date::from_days_since_epoch(now_unix / 86_400),
            now_unix,
            stores: StoreOpener::local(),
            checklist: None,
        }
    }
}

/// Hears about checks as they start and finish (a progress display).
pub trait Observer: Send + Sync {
    fn started(&self, _meta: &Meta) {}
    fn finished(&self, _result: &CheckResult) {}
}

/// An observer that ignores everything.
#[derive(Debug, Clone, Copy, Default)]
pub struct Quiet;

impl Observer for Quiet {}

/// Runs every check and returns the results in declaration order. A slow check never delays the others
/// beyond its own timeout.
pub async fn run(checks: &[Check], options: &RunOptions, observer: Arc<dyn Observer>) -> Vec<CheckResult> {
    let mut ctx = Context::new(options.today, options.now_unix, options.stores.clone());
    ctx.manual = options
        .checklist
        .as_deref()
        .unwrap_or(checks)
        .iter()
        .filter(|c| c.not_applicable.is_none())
        .filter_map(|c| match &c.kind {
            crate::spec::Kind::Manual(m) => Some((c.meta.id.clone(), m.clone())),
            _ => None,
        })
        .collect();
    let ctx = Arc::new(ctx);
    let permits = Arc::new(Semaphore::new(options.concurrency.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    for (index, check) in checks.iter().cloned().enumerate() {
        let (ctx, permits, observer) = (ctx.clone(), permits.clone(), observer.clone());
        let timeout = check.timeout.unwrap_or(options.timeout);
        tasks.spawn(async move {
            let _permit = permits.acquire_owned().await.expect("the semaphore is never closed");
            observer.started(&check.meta);
            let result = run_one(&check, &ctx, timeout).await;
            observer.finished(&result);
            (index, result)
        });
    }
    let mut results: Vec<Option<CheckResult>> = vec![None; checks.len()];
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok((index, result)) => results[index] = Some(result),
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        }
    }
    results.into_iter().map(|r| r.expect("every check reports")).collect()
}

async fn run_one(check: &Check, ctx: &Context, timeout: Duration) -> CheckResult {
    let started = Instant::now();
    let finding = if let Some(reason) = &check.not_applicable {
        Finding::new(Status::NotApplicable, reason.clone())
    } else {
        match tokio::time::timeout(timeout, probe::probe(&check.kind, ctx)).await {
            Ok(finding) => finding,
            Err(_) => Finding::error(format!("timed out after {}", humantime::format_duration(timeout))),
        }
    };
    CheckResult {
        meta: check.meta.clone(),
        kind: check.kind.name().name().to_owned(),
        status: finding.status,
        summary: finding.summary,
        duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
    }
}
