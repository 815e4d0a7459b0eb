//! [`LokiLayer`]: a service's own events, shipped to Loki without ever blocking it.
//!
//! The layer renders each event as a JSON line and offers it to a bounded queue; when the queue is full
//! the event is dropped and counted (`LokiStats::dropped_queue_full`), never waited for. A worker thread
//! (its own single-threaded runtime, so no runtime is needed by the caller) batches by size and age and
//! pushes with the retry policy. Labels are the configured static ones plus `level`; the request id and
//! the trace and span ids travel as structured metadata, keeping labels low-cardinality.

use std::cell::Cell;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

use super::{Batch, Entry, Labels, LokiClient, LokiClientOptions, PushError, RetryPolicy};
use crate::json;
use crate::{Error, Result};

/// Settings of the Loki layer.
#[derive(Debug, Clone)]
pub struct LokiLayerOptions {
    pub client: LokiClientOptions,
    /// Static labels on every stream (e.g. `service`, `env`); `level` is added per event.
    pub labels: Labels,
    /// A batch is pushed when it reaches this many bytes (default 1 MiB)...
    pub batch_max_bytes: usize,
    /// ...or when its oldest line is this old (default 1 s).
    pub batch_max_wait: Duration,
    /// Events queued at most; beyond that they are dropped and counted (default 10,000)...
    pub queue_capacity: usize,
    /// ...and bytes of lines queued at most (default 16 MiB), so a burst of long lines stays bounded too.
    pub queue_max_bytes: usize,
    pub retry: RetryPolicy,
    /// How long the guard's drop waits for the last batches (default 5 s).
    pub shutdown_timeout: Duration,
}

impl LokiLayerOptions {
    pub fn new(url: impl Into<String>, labels: Labels) -> Self {
        Self {
            client: LokiClientOptions::new(url),
            labels,
            batch_max_bytes: 1024 * 1024,
            batch_max_wait: Duration::from_secs(1),
            queue_capacity: 10_000,
            queue_max_bytes: 16 * 1024 * 1024,
            retry: RetryPolicy { max_backoff: Duration::from_secs(30), ..RetryPolicy::default() },
            shutdown_timeout: Duration::from_secs(5),
        }
    }
}

/// What the layer did; every line offered ends up in exactly one of `sent_lines` or a `dropped_*`.
#[derive(Debug, Default)]
pub struct LokiStats {
    pub sent_lines: AtomicU64,
    pub sent_batches: AtomicU64,
    /// Lines dropped because the queue was full (Loki slow or down, or a burst).
    pub dropped_queue_full: AtomicU64,
    /// Lines of pushes Loki rejected (400, 422; Loki may have kept their valid entries), and single lines
    /// refused as too large (413; larger batches are split).
    pub dropped_rejected: AtomicU64,
    /// Lines in batches still failing after the last retry.
    pub dropped_failed: AtomicU64,
    /// Push attempts that were retried.
    pub retries: AtomicU64,
}

impl LokiStats {
    fn add(counter: &AtomicU64, n: usize) {
        counter.fetch_add(u64::try_from(n).unwrap_or(u64::MAX), Ordering::Relaxed);
    }
}

struct Queued {
    level: usize,
    entry: Entry,
}

/// The tracing layer. Build it with [`LokiLayer::new`], which also returns the [`LokiWorker`] to keep.
pub struct LokiLayer {
    tx: mpsc::Sender<Queued>,
    stats: Arc<LokiStats>,
    queued_bytes: Arc<AtomicUsize>,
    max_bytes: usize,
}

impl std::fmt::Debug for LokiLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LokiLayer").finish_non_exhaustive()
    }
}

/// The worker thread. Dropping it flushes what is queued within `shutdown_timeout`.
pub struct LokiWorker {
    thread: Option<std::thread::JoinHandle<()>>,
    shutdown: Arc<tokio::sync::Notify>,
    done: std::sync::mpsc::Receiver<()>,
    timeout: Duration,
    stats: Arc<LokiStats>,
}

impl std::fmt::Debug for LokiWorker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LokiWorker").field("stats", &self.stats).finish_non_exhaustive()
    }
}

thread_local! {
    /// Set on the worker thread: its own events (and the HTTP client's) never feed back into the queue.
    static IN_WORKER: Cell<bool> = const { Cell::new(false) };
}

const LEVELS: [&str; 5] = ["trace", "debug", "info", "warn", "error"];

impl LokiLayer {
    pub fn new(options: LokiLayerOptions) -> Result<(Self, LokiWorker)> {
        let client = LokiClient::new(&options.client)?;
        let (tx, rx) = mpsc::channel(options.queue_capacity.max(1));
        let queued_bytes = Arc::new(AtomicUsize::new(0));
        let max_bytes = options.queue_max_bytes;
        let stats = Arc::new(LokiStats::default());
        let shutdown = Arc::new(tokio::sync::Notify::new());
        let (done_tx, done) = std::sync::mpsc::channel();
        let timeout = options.shutdown_timeout;
        let thread = {
            let (stats, shutdown, queued) = (stats.clone(), shutdown.clone(), queued_bytes.clone());
            let labels: Vec<Labels> = LEVELS.iter().map(|l| options.labels.with("level", l)).collect();
            std::thread::Builder::new()
                .name("prodready-loki".to_owned())
                .spawn(move || {
                    IN_WORKER.with(|w| w.set(true));
                    if let Ok(runtime) = tokio::runtime::Builder::new_current_thread().enable_all().build() {
                        runtime.block_on(work(rx, client, options, labels, stats, shutdown, queued));
                    }
                    let _ = done_tx.send(());
                })
                .map_err(|e| Error::Invalid(format!("cannot start the Loki worker thread: {e}")))?
        };
        let worker = LokiWorker { thread: Some(thread), shutdown, done, timeout, stats: stats.clone() };
        Ok((Self { tx, stats, queued_bytes, max_bytes }, worker))
    }

    pub fn stats(&self) -> &Arc<LokiStats> {
        &self.stats
    }
}

impl LokiWorker {
    pub fn stats(&self) -> &Arc<LokiStats> {
        &self.stats
    }

    /// Flushes the queue and stops the worker, waiting at most the shutdown timeout.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        let Some(thread) = self.thread.take() else { return };
        self.shutdown.notify_one();
        // Wait a little past the worker's own deadline; a worker stuck in a request is left behind.
        if self.done.recv_timeout(self.timeout + Duration::from_millis(500)).is_ok() {
            let _ = thread.join();
        }
    }
}

impl Drop for LokiWorker {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn work(
    mut rx: mpsc::Receiver<Queued>,
    client: LokiClient,
    options: LokiLayerOptions,
    labels: Vec<Labels>,
    stats: Arc<LokiStats>,
    shutdown: Arc<tokio::sync::Notify>,
    queued_bytes: Arc<AtomicUsize>,
) {
    let mut batch = Batch::new();
    let mut oldest: Option<Instant> = None;
    // Set when the guard asks to stop: from then on every push has the shutdown deadline.
    let mut deadline: Option<Instant> = None;
    let stop_at = |deadline: &mut Option<Instant>| {
        *deadline.get_or_insert_with(|| Instant::now() + options.shutdown_timeout)
    };
    loop {
        let due =
            oldest.map_or_else(|| Instant::now() + Duration::from_secs(3600), |t| t + options.batch_max_wait);
        tokio::select! {
            queued = rx.recv(), if deadline.is_none() => {
                let Some(queued) = queued else { break };
                queued_bytes.fetch_sub(queued.entry.line.len(), Ordering::Relaxed);
                batch.push(&labels[queued.level], queued.entry);
                oldest.get_or_insert_with(Instant::now);
                if batch.bytes() >= options.batch_max_bytes {
                    send(&client, &options, &stats, std::mem::take(&mut batch), &shutdown, &mut deadline).await;
                    oldest = None;
                }
            }
            () = tokio::time::sleep_until(due), if oldest.is_some() && deadline.is_none() => {
                send(&client, &options, &stats, std::mem::take(&mut batch), &shutdown, &mut deadline).await;
                oldest = None;
            }
            () = shutdown.notified(), if deadline.is_none() => {
                stop_at(&mut deadline);
            }
            () = std::future::ready(()), if deadline.is_some() => break,
        }
    }
    // Stopping (or the layer is gone): everything still queued, within the deadline.
    stop_at(&mut deadline);
    while let Ok(queued) = rx.try_recv() {
        queued_bytes.fetch_sub(queued.entry.line.len(), Ordering::Relaxed);
        batch.push(&labels[queued.level], queued.entry);
        if batch.bytes() >= options.batch_max_bytes {
            send(&client, &options, &stats, std::mem::take(&mut batch), &shutdown, &mut deadline).await;
        }
    }
    send(&client, &options, &stats, batch, &shutdown, &mut deadline).await;
}

/// Pushes one batch and counts the outcome. A shutdown request during the push sets the deadline, so a
/// push stuck in retries ends in time; lines not delivered by then count as failed.
async fn send(
    client: &LokiClient,
    options: &LokiLayerOptions,
    stats: &LokiStats,
    batch: Batch,
    shutdown: &tokio::sync::Notify,
    deadline: &mut Option<Instant>,
) {
    // Halves of a batch refused as too large (413) go next, in order.
    let mut parts = vec![batch];
    while let Some(batch) = parts.pop() {
        if batch.is_empty() {
            continue;
        }
        let lines = batch.lines();
        let push = client.push(&batch, &options.retry, *deadline, |_| {
            stats.retries.fetch_add(1, Ordering::Relaxed);
        });
        let mut push = std::pin::pin!(push);
        let gave_up = || Err(PushError::Retryable { status: None, message: "shutdown deadline".to_owned() });
        let outcome = match *deadline {
            Some(at) => tokio::time::timeout_at(at, &mut push).await.unwrap_or_else(|_| gave_up()),
            None => tokio::select! {
                outcome = &mut push => outcome,
                () = shutdown.notified() => {
                    let at = *deadline.get_or_insert_with(|| Instant::now() + options.shutdown_timeout);
                    tokio::time::timeout_at(at, &mut push).await.unwrap_or_else(|_| gave_up())
                }
            },
        };
        match outcome {
            Ok(()) => {
                LokiStats::add(&stats.sent_lines, lines);
                stats.sent_batches.fetch_add(1, Ordering::Relaxed);
            }
            Err(PushError::TooLarge { .. }) => match batch.split() {
                Some((first, second)) => {
                    parts.push(second);
                    parts.push(first);
                }
                None => LokiStats::add(&stats.dropped_rejected, lines),
            },
            Err(PushError::Rejected { .. }) => LokiStats::add(&stats.dropped_rejected, lines),
            Err(PushError::Retryable { .. }) => LokiStats::add(&stats.dropped_failed, lines),
        }
    }
}

fn level_index(level: &tracing::Level) -> usize {
    match *level {
        tracing::Level::TRACE => 0,
        tracing::Level::DEBUG => 1,
        tracing::Level::INFO => 2,
        tracing::Level::WARN => 3,
        tracing::Level::ERROR => 4,
    }
}

impl<S> tracing_subscriber::Layer<S> for LokiLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(
        &self,
        attrs: &tracing::span::Attributes<'_>,
        id: &tracing::span::Id,
        ctx: Context<'_, S>,
    ) {
        json::record_span(attrs, id, &ctx);
    }

    fn on_record(&self, id: &tracing::span::Id, values: &tracing::span::Record<'_>, ctx: Context<'_, S>) {
        json::record_values(id, values, &ctx);
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        if IN_WORKER.with(Cell::get) {
            return;
        }
        let mut line = String::with_capacity(256);
        let ids = json::render(event, &ctx, &mut line);
        let mut metadata = Vec::new();
        for (name, value) in
            [("request_id", ids.request_id), ("trace_id", ids.trace_id), ("span_id", ids.span_id)]
        {
            if let Some(value) = value {
                metadata.push((name.to_owned(), value));
            }
        }
        let timestamp_ns = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX));
        let line = truncate_line(line);
        let len = line.len();
        if self.queued_bytes.fetch_add(len, Ordering::Relaxed) + len > self.max_bytes {
            self.queued_bytes.fetch_sub(len, Ordering::Relaxed);
            self.stats.dropped_queue_full.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let queued = Queued {
            level: level_index(event.metadata().level()),
            entry: Entry { timestamp_ns, line, metadata },
        };
        if self.tx.try_send(queued).is_err() {
            self.queued_bytes.fetch_sub(len, Ordering::Relaxed);
            self.stats.dropped_queue_full.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Cuts a line to Loki's limit (on a character boundary) rather than have the whole batch rejected.
pub(crate) fn truncate_line(mut line: String) -> String {
    if line.len() > super::MAX_LINE_BYTES {
        let mut cut = super::MAX_LINE_BYTES - 16;
        while !line.is_char_boundary(cut) {
            cut -= 1;
        }
        line.truncate(cut);
        line.push_str("…[truncated]");
    }
    line
}
