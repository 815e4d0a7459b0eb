//! The sender: pushes each batch (splitting those refused as too large), retries what Loki asks to be
//! retried, and commits positions only after Loki acknowledged the lines.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use tokio::sync::mpsc;

use super::ShipOptions;
use super::ShipStats;
use super::positions::Positions;
use super::reader::Outgoing;
use crate::Result;
use crate::loki::{LokiClient, PushError};

/// Loki failing, told to the operator without flooding the log: the first failure at once, then at most
/// one line per [`Outage::EVERY`] with the count and the backlog, and the recovery.
#[derive(Debug, Default)]
struct Outage {
    /// When the failures began, how many there were, and when the last line about them was written.
    current: Option<(std::time::Instant, u64, std::time::Instant)>,
}

impl Outage {
    const EVERY: Duration = Duration::from_secs(30);

    fn failed(&mut self, err: &PushError, stats: &ShipStats) {
        let now = std::time::Instant::now();
        let backlog_bytes = stats.lag_bytes.load(Ordering::Relaxed);
        match &mut self.current {
            None => {
                self.current = Some((now, 1, now));
                tracing::warn!(error = %err, backlog_bytes, "loki push failing; retrying until it answers (lines wait on disk)");
            }
            Some((since, failures, reported)) => {
                *failures += 1;
                if now.duration_since(*reported) >= Self::EVERY {
                    *reported = now;
                    tracing::warn!(
                        error = %err,
                        failures = *failures,
                        failing_for_s = now.duration_since(*since).as_secs(),
                        backlog_bytes,
                        "loki push still failing"
                    );
                }
            }
        }
    }

    fn recovered(&mut self) {
        if let Some((since, failures, _)) = self.current.take() {
            tracing::info!(failures, failing_for_s = since.elapsed().as_secs(), "loki push recovered");
        }
    }
}

pub(super) struct Sender<'a> {
    pub(super) client: &'a LokiClient,
    pub(super) options: &'a ShipOptions,
    pub(super) stats: &'a ShipStats,
    /// Set when shutdown starts: the reader stops reading and hands over what it holds.
    pub(super) stop: &'a AtomicBool,
}

impl Sender<'_> {
    /// Sends batches until the reader is done or `shutdown` resolves and the deadline passes; positions
    /// move only past acknowledged (or rejected) lines.
    pub(super) async fn run(
        &self,
        positions: &mut Positions,
        rx: &mut mpsc::Receiver<Outgoing>,
        shutdown: impl Future<Output = ()>,
    ) -> Result<()> {
        let Self { client, options, stats, stop } = *self;
        let mut shutdown = std::pin::pin!(shutdown);
        let outage = std::sync::Mutex::new(Outage::default());
        let mut stopping_since: Option<tokio::time::Instant> = None;
        let mut last_fsync: Option<std::time::Instant> = None;
        loop {
            let next = tokio::select! {
                next = rx.recv() => next,
                () = &mut shutdown, if stopping_since.is_none() => {
                    stop.store(true, Ordering::Relaxed);
                    stopping_since = Some(tokio::time::Instant::now());
                    continue;
                }
            };
            let Some(outgoing) = next else { return Ok(()) };
            if outgoing.batch.is_empty() {
                continue;
            }
            let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs());
            for (fp, (path, end)) in &outgoing.marks {
                let entry = positions.files.entry(fp.clone()).or_default();
                entry.path.clone_from(path);
                entry.sent = *end;
                entry.seen = now;
            }
            positions.save(&options.positions, false)?;
            let lines = outgoing.batch.lines() as u64;
            // Halves of batches refused as too large (413) go first, in order.
            let mut parts = vec![outgoing.batch];
            let mut gave_up = false;
            while let Some(part) = parts.pop() {
                let deadline = stopping_since.map(|since| since + options.shutdown_timeout);
                let push = client.push(&part, &options.retry, deadline, |err| {
                    stats.retries.fetch_add(1, Ordering::Relaxed);
                    outage.lock().unwrap_or_else(std::sync::PoisonError::into_inner).failed(err, stats);
                });
                let mut push = std::pin::pin!(push);
                // A signal during a long retry loop starts the shutdown deadline at once.
                let pushed = tokio::select! {
                    pushed = &mut push => pushed,
                    () = &mut shutdown, if stopping_since.is_none() => {
                        stop.store(true, Ordering::Relaxed);
                        let since = tokio::time::Instant::now();
                        stopping_since = Some(since);
                        tokio::time::timeout_at(since + options.shutdown_timeout, &mut push).await.unwrap_or_else(|_| {
                            Err(PushError::Retryable { status: None, message: "shutdown deadline".to_owned() })
                        })
                    }
                };
                let part_lines = part.lines() as u64;
                match pushed {
                    Ok(()) => {
                        outage.lock().unwrap_or_else(std::sync::PoisonError::into_inner).recovered();
                        stats.lines_sent.fetch_add(part_lines, Ordering::Relaxed);
                        stats.batches_sent.fetch_add(1, Ordering::Relaxed);
                        let now = SystemTime::now()
                            .duration_since(SystemTime::UNIX_EPOCH)
                            .map_or(0, |d| d.as_secs());
                        stats.last_sent_unix.store(now, Ordering::Relaxed);
                    }
                    Err(PushError::TooLarge { message }) => match part.split() {
                        Some((first, second)) => {
                            parts.push(second);
                            parts.push(first);
                        }
                        None => {
                            stats.lines_rejected.fetch_add(part_lines, Ordering::Relaxed);
                            tracing::warn!(reason = %message, "loki refused a single line as too large; it is dropped");
                        }
                    },
                    Err(PushError::Rejected { status, message }) => {
                        stats.lines_rejected.fetch_add(part_lines, Ordering::Relaxed);
                        tracing::warn!(status, lines = part_lines, reason = %message, "loki rejected a batch; its lines are dropped");
                    }
                    Err(PushError::Retryable { .. }) => {
                        // Only at shutdown (the deadline passed): leave the positions where Loki acknowledged.
                        tracing::warn!(
                            lines,
                            "shutdown deadline passed with lines unacknowledged; they are sent again next start"
                        );
                        gave_up = true;
                        break;
                    }
                }
            }
            if gave_up {
                return Ok(());
            }
            stats.bytes_sent.fetch_add(outgoing.bytes, Ordering::Relaxed);
            stats.bytes_done.fetch_add(outgoing.read, Ordering::Relaxed);
            let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs());
            for (fp, (path, end)) in &outgoing.marks {
                let entry = positions.files.entry(fp.clone()).or_default();
                entry.path.clone_from(path);
                entry.offset = *end;
                entry.sent = *end;
                entry.seen = now;
            }
            // Forget files gone from disk for a week; a file still there keeps its position however idle.
            positions.files.retain(|_, p| p.path.exists() || now.saturating_sub(p.seen) < 7 * 24 * 3600);
            // Every acknowledged batch is committed by an atomic rename (enough for a killed process); the
            // fsync that makes it survive a power cut too is paid at most once a second. A commit lost to a
            // power cut only means lines sent again, never lines skipped.
            let durable =
                last_fsync.is_none_or(|t: std::time::Instant| t.elapsed() >= Duration::from_secs(1));
            positions.save(&options.positions, durable)?;
            if durable {
                last_fsync = Some(std::time::Instant::now());
            }
        }
    }
}
