//! The `logs ship` agent: tails files into Loki and loses nothing.
//!
//! - Files are found by globs and identified by a fingerprint (a hash of their first line, at most 256
//!   bytes), not by path: a file renamed by rotation keeps its position, and the copy `copytruncate`
//!   leaves behind is recognised as the file already half read (include rotated names such as
//!   `app.log*` in the globs to read what was written just before a copy). Compressed files are skipped.
//! - A reader thread turns lines into batches (by size and age). JSON lines give their timestamp
//!   (`timestamp`, `ts`, `time` or `@timestamp`) and the configured label fields; other lines are stamped
//!   when read. Batches go through a channel of one: when Loki is slow or down, reading stops instead of
//!   buffering (two batches wait besides the one in flight, whatever the outage).
//! - The sender pushes each batch, retrying 429, 5xx and transport errors for as long as it takes; a
//!   batch rejected with 400 or 422 is dropped and counted, one refused with 413 is split, and the
//!   pipeline goes on; other 4xx (a proxy, a token, a wrong URL) are retried like 5xx. Only after Loki
//!   acknowledged a batch does its position move: the positions file is replaced atomically (temporary
//!   file, rename; fsynced at most once a second and at exit). Before each push the positions file also
//!   records how far the batch in flight reaches, so after a crash the lines sent again are counted as
//!   possible duplicates.
//! - Descriptors are held only for files being read, at most `max_open_files`: thousands of rotated files
//!   under one glob never exhaust the process's limit; idle files are reopened by path and inode.
//! - Its metrics (lines sent, dropped, retried, re-sent, lag, and the process's own) are served on
//!   `metrics_addr`, in OpenMetrics or the classic text format as the scraper asks.
//!
//! Modules: `reader` (files, fingerprints, batches), `sender` (pushes and commits), `positions` (the
//! positions file), `metrics` (the counters and their exposition).

mod metrics;
mod positions;
mod reader;
mod sender;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::mpsc;

pub use self::metrics::ShipStats;
use self::positions::Positions;
use self::reader::{Outgoing, Tail};
use crate::loki::{Labels, LokiClient, LokiClientOptions, RetryPolicy};
use crate::{Error, Result};

/// Checks a positions file's bytes as the agent reads them at start (`path` names it in errors): the
/// number of files it holds positions for, or why the agent would refuse it.
pub fn check_positions(path: &std::path::Path, bytes: &[u8]) -> Result<usize> {
    Positions::parse(path, bytes).map(|p| p.files.len())
}

/// The default of [`ShipOptions::max_open_files`].
pub const DEFAULT_MAX_OPEN_FILES: usize = 128;

/// What the agent tails and where it ships.
#[derive(Debug, Clone)]
pub struct ShipOptions {
    /// File globs, e.g. `/var/log/app/*.log*`.
    pub paths: Vec<String>,
    /// The positions file (written atomically).
    pub positions: PathBuf,
    pub loki: LokiClientOptions,
    /// Static labels on every stream; `filename` is added per file.
    pub labels: Labels,
    /// Fields of JSON lines that become labels (keep them low-cardinality: `level`, not `request_id`).
    pub json_labels: Vec<String>,
    /// A batch is pushed at this size (default 1 MiB)...
    pub batch_max_bytes: usize,
    /// ...or this age (default 1 s).
    pub batch_max_wait: Duration,
    /// How often files are looked for and re-read at their end (default 250 ms).
    pub poll_interval: Duration,
    /// Retries of 429, 5xx and transport errors (default: forever, 0.5 s doubling to 30 s).
    pub retry: RetryPolicy,
    /// Where to serve the agent's metrics, e.g. `127.0.0.1:9080`.
    pub metrics_addr: Option<SocketAddr>,
    /// How long a shutdown may spend pushing the last batch (default 5 s).
    pub shutdown_timeout: Duration,
    /// Descriptors held for files being read (default 128): files beyond it wait, the most recently
    /// written first, until a reader finishes. Keep it well under the process's open-file limit.
    pub max_open_files: usize,
}

impl ShipOptions {
    pub fn new(paths: Vec<String>, positions: PathBuf, loki_url: impl Into<String>, labels: Labels) -> Self {
        Self {
            paths,
            positions,
            loki: LokiClientOptions::new(loki_url),
            labels,
            json_labels: Vec::new(),
            batch_max_bytes: 1024 * 1024,
            batch_max_wait: Duration::from_secs(1),
            poll_interval: Duration::from_millis(250),
            retry: RetryPolicy {
                min_backoff: Duration::from_millis(500),
                max_backoff: Duration::from_secs(30),
                max_attempts: None,
            },
            metrics_addr: None,
            shutdown_timeout: Duration::from_secs(5),
            max_open_files: DEFAULT_MAX_OPEN_FILES,
        }
    }
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ShipReport {
    pub lines_sent: u64,
    pub lines_rejected: u64,
    pub lines_resent: u64,
    pub retries: u64,
}

/// Runs the agent until `shutdown` resolves; then pushes what is read within the shutdown deadline,
/// commits, and returns.
pub async fn run(options: ShipOptions, shutdown: impl Future<Output = ()>) -> Result<ShipReport> {
    if options.paths.is_empty() {
        return Err(Error::NoPaths);
    }
    for pattern in &options.paths {
        glob::Pattern::new(pattern).map_err(|e| Error::Invalid(format!("path glob `{pattern}`: {e}")))?;
    }
    // A stream carries the static labels, `filename` and each JSON label: over Loki's limit, every push
    // would be refused (400) and the lines dropped. Refused now instead.
    let mut names: std::collections::BTreeSet<&str> =
        options.labels.as_map().keys().map(String::as_str).collect();
    names.insert("filename");
    names.extend(options.json_labels.iter().map(String::as_str));
    if names.len() > crate::loki::MAX_LABELS {
        return Err(Error::Invalid(format!(
            "a stream would carry {} labels (the static ones, filename and the JSON labels); Loki accepts at \
             most {}: drop some",
            names.len(),
            crate::loki::MAX_LABELS
        )));
    }
    let client = LokiClient::new(&options.loki)?;
    let mut positions = Positions::load(&options.positions)?;
    let stats = Arc::new(ShipStats::default());
    let stop = Arc::new(AtomicBool::new(false));
    // One batch queued and one the reader holds while it waits: two batches besides the one in flight.
    let (tx, mut rx) = mpsc::channel::<Outgoing>(1);

    let metrics = match options.metrics_addr {
        Some(addr) => Some(serve_metrics(addr, stats.clone()).await?),
        None => None,
    };

    let reader = {
        let known =
            positions.files.iter().map(|(fp, p)| (fp.clone(), (p.offset, p.sent.max(p.offset)))).collect();
        let mut tail = Tail::new(options.clone(), known, stats.clone());
        let stop = stop.clone();
        std::thread::Builder::new()
            .name("prodready-ship-reader".to_owned())
            .spawn({
                let runtime = tokio::runtime::Handle::current();
                move || reader::read_loop(&mut tail, &tx, &stop, &runtime)
            })
            .map_err(|e| Error::Invalid(format!("cannot start the reader thread: {e}")))?
    };

    let sender = sender::Sender { client: &client, options: &options, stats: &stats, stop: &stop };
    let outcome = sender.run(&mut positions, &mut rx, shutdown).await;
    stop.store(true, Ordering::Relaxed);
    drop(rx);
    let reader = reader.join();
    // The last commit, made durable.
    if outcome.is_ok() {
        positions.save(&options.positions, true)?;
    }
    if let Some(metrics) = metrics {
        metrics.abort();
    }
    outcome?;
    if reader.is_err() {
        return Err(Error::Invalid(
            "the file reader thread panicked; positions are as last committed".to_owned(),
        ));
    }
    Ok(ShipReport {
        lines_sent: stats.lines_sent.load(Ordering::Relaxed),
        lines_rejected: stats.lines_rejected.load(Ordering::Relaxed),
        lines_resent: stats.lines_resent.load(Ordering::Relaxed),
        retries: stats.retries.load(Ordering::Relaxed),
    })
}

async fn serve_metrics(addr: SocketAddr, stats: Arc<ShipStats>) -> Result<tokio::task::JoinHandle<()>> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| Error::Invalid(format!("metrics address {addr}: cannot listen: {e}")))?;
    let registry = Arc::new(std::sync::Mutex::new(metrics::registry(stats)));
    let app = axum::Router::new()
        .route_service("/metrics", prodready_metrics::exposition::MetricsService::new(registry));
    Ok(tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    }))
}
