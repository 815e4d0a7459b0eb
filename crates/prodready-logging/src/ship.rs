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
//! - Its metrics (lines sent, dropped, retried, re-sent, lag) are served on `metrics_addr`.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{Read as _, Seek as _, SeekFrom, Write as _};
use std::net::SocketAddr;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use prodready_metrics_alerts::names;
use serde::{Deserialize, Serialize};
use sha2::Digest as _;
use tokio::sync::mpsc;

use crate::loki::{Batch, Entry, Labels, LokiClient, LokiClientOptions, PushError, RetryPolicy};
use crate::{Error, Result};

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
        }
    }
}

/// The agent's counters (also served as metrics).
#[derive(Debug, Default)]
pub struct ShipStats {
    pub lines_sent: AtomicU64,
    pub bytes_sent: AtomicU64,
    pub lines_rejected: AtomicU64,
    /// Files truncated in place before they were read to the end (the unread rest is lost).
    pub truncations: AtomicU64,
    /// Files found while another file with the same first line was being read (they wait their turn).
    pub fingerprint_collisions: AtomicU64,
    pub retries: AtomicU64,
    pub lines_resent: AtomicU64,
    pub files_watched: AtomicU64,
    pub lag_bytes: AtomicU64,
    pub last_sent_unix: AtomicU64,
    pub batches_sent: AtomicU64,
    /// Bytes read from files (newlines included), and of those acknowledged or rejected: the difference
    /// is in flight.
    pub bytes_read: AtomicU64,
    pub bytes_done: AtomicU64,
}

impl ShipStats {
    /// Prometheus text exposition.
    pub fn render(&self) -> String {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let mut out = String::new();
        let mut metric = |name: &str, kind: &str, help: &str, samples: &[(&str, u64)]| {
            out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} {kind}\n"));
            for (labels, value) in samples {
                out.push_str(&format!("{name}{labels} {value}\n"));
            }
        };
        metric(
            names::LOGS_SHIP_LINES_SENT_TOTAL,
            "counter",
            "Lines Loki acknowledged.",
            &[("", get(&self.lines_sent))],
        );
        metric(
            names::LOGS_SHIP_BYTES_SENT_TOTAL,
            "counter",
            "Bytes of lines Loki acknowledged.",
            &[("", get(&self.bytes_sent))],
        );
        metric(
            names::LOGS_SHIP_LINES_DROPPED_TOTAL,
            "counter",
            "Lines given up on, by reason.",
            &[("{reason=\"rejected\"}", get(&self.lines_rejected))],
        );
        metric(
            names::LOGS_SHIP_FINGERPRINT_COLLISIONS_TOTAL,
            "counter",
            "Files found while another file with the same first line was being read.",
            &[("", get(&self.fingerprint_collisions))],
        );
        metric(
            names::LOGS_SHIP_TRUNCATIONS_TOTAL,
            "counter",
            "Files truncated in place before they were read to the end.",
            &[("", get(&self.truncations))],
        );
        metric(
            names::LOGS_SHIP_RETRIES_TOTAL,
            "counter",
            "Pushes retried after 429, 5xx or transport errors.",
            &[("", get(&self.retries))],
        );
        metric(
            names::LOGS_SHIP_LINES_RESENT_TOTAL,
            "counter",
            "Lines sent again after a restart (possible duplicates).",
            &[("", get(&self.lines_resent))],
        );
        metric(
            names::LOGS_SHIP_LAG_BYTES,
            "gauge",
            "Bytes in watched files not yet acknowledged by Loki.",
            &[("", get(&self.lag_bytes))],
        );
        metric(
            names::LOGS_SHIP_FILES_WATCHED,
            "gauge",
            "Files being read.",
            &[("", get(&self.files_watched))],
        );
        metric(
            names::LOGS_SHIP_LAST_SENT,
            "gauge",
            "Unix time of the last acknowledged push.",
            &[("", get(&self.last_sent_unix))],
        );
        out
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

/// Per file: acknowledged offset, and how far the batch in flight reached.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Position {
    path: PathBuf,
    /// Everything before this offset was acknowledged by Loki.
    offset: u64,
    /// Everything before this offset was sent (maybe not acknowledged).
    sent: u64,
    /// Unix time the file was last seen, to forget files gone for a week.
    seen: u64,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Positions {
    version: u32,
    files: BTreeMap<String, Position>,
}

impl Positions {
    fn load(path: &Path) -> Result<Self> {
        match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                Error::Invalid(format!(
                    "{}: not a positions file ({e}); move it away to start over (lines will be sent again)",
                    path.display()
                ))
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Ok(Self { version: 1, files: BTreeMap::new() })
            }
            Err(e) => Err(Error::io(path, e)),
        }
    }

    /// Replaces the file atomically; `durable` also fsyncs it (commits of acknowledged offsets).
    fn save(&self, path: &Path, durable: bool) -> Result<()> {
        let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(|e| Error::io(dir, e))?;
        serde_json::to_writer(&mut tmp, self).map_err(|e| Error::io(tmp.path(), e.into()))?;
        tmp.write_all(b"\n").map_err(|e| Error::io(tmp.path(), e))?;
        if durable {
            tmp.as_file().sync_all().map_err(|e| Error::io(tmp.path(), e))?;
        }
        tmp.persist(path).map_err(|e| Error::io(path, e.error))?;
        if durable {
            File::open(dir).and_then(|d| d.sync_all()).map_err(|e| Error::io(dir, e))?;
        }
        Ok(())
    }
}

/// The fingerprint of a file: a hash of its first line (at most 256 bytes); `None` until it has one.
fn fingerprint(file: &mut File) -> Option<String> {
    let mut head = [0u8; 256];
    let mut filled = 0;
    while filled < head.len() {
        match file.read(&mut head[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(_) => return None,
        }
    }
    let end = match head[..filled].iter().position(|&b| b == b'\n') {
        Some(newline) => newline,
        None if filled == head.len() => filled,
        None => return None,
    };
    let digest = sha2::Sha256::digest(&head[..end]);
    Some(hex::encode(&digest[..8]))
}

struct Reader {
    fingerprint: String,
    path: PathBuf,
    file: File,
    inode: (u64, u64),
    /// Next byte to read.
    offset: u64,
    partial: Vec<u8>,
    /// Dropping the rest of an over-long line.
    skipping: bool,
    /// Lines up to this offset were sent before a restart (possible duplicates).
    resend_until: u64,
    /// Polls since the file was last found under a glob with nothing left to read.
    gone_polls: u32,
    /// The last time a line of this file carried itself: lines without one stay in order after it.
    last_ts: Option<i64>,
}

/// A batch and how far it moves each file.
struct Outgoing {
    batch: Batch,
    /// fingerprint -> (path, end offset)
    marks: HashMap<String, (PathBuf, u64)>,
    /// Bytes of the lines' text.
    bytes: u64,
    /// Bytes of the files these lines (and skipped tails) cover, newlines included.
    read: u64,
}

const MAX_LINE: usize = crate::loki::MAX_LINE_BYTES;
const READ_CHUNK: usize = 256 * 1024;
const COMPRESSED: &[&str] = &[".gz", ".zst", ".bz2", ".xz", ".zip", ".lz4"];

/// A file found under a glob: path, (device, inode), size.
type OnDisk = (PathBuf, (u64, u64), u64);

struct Tail {
    options: ShipOptions,
    readers: HashMap<String, Reader>,
    /// Where files not being read now stopped: (offset, resend-until), from the positions file at start
    /// and from readers dropped since.
    known: HashMap<String, (u64, u64)>,
    /// Which reader goes first in the next pass, so a full batch never starves the same files.
    turn: usize,
    /// Files already reported as sharing a first line with another.
    collisions: std::collections::HashSet<(u64, u64)>,
    stats: Arc<ShipStats>,
    buffer: Vec<u8>,
}

fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(0))
}

/// RFC 3339 with `Z`, a `±HH:MM` offset, or no zone (taken as UTC), in Unix nanoseconds.
fn rfc3339_ns(text: &str) -> Option<i64> {
    let to_ns = |t: SystemTime| {
        t.duration_since(SystemTime::UNIX_EPOCH).ok().and_then(|d| i64::try_from(d.as_nanos()).ok())
    };
    if let Ok(t) = humantime::parse_rfc3339_weak(text) {
        return to_ns(t);
    }
    // `2026-11-29T10:00:00.123+02:00`: parse the local part, then apply the offset.
    let split = text.len().checked_sub(6).filter(|i| text.is_char_boundary(*i))?;
    let (local, offset) = text.split_at(split);
    let sign = match offset.as_bytes().first() {
        Some(b'+') => 1,
        Some(b'-') => -1,
        _ => return None,
    };
    let (h, m) = offset[1..].split_once(':')?;
    let offset_s = i64::from(h.parse::<u8>().ok()?) * 3600 + i64::from(m.parse::<u8>().ok()?) * 60;
    let base = to_ns(humantime::parse_rfc3339_weak(local).ok()?)?;
    Some(base - sign * offset_s * 1_000_000_000)
}

/// The timestamp of a JSON line, in Unix nanoseconds.
fn json_timestamp(value: &serde_json::Value) -> Option<i64> {
    for key in ["timestamp", "ts", "time", "@timestamp"] {
        match value.get(key) {
            Some(serde_json::Value::String(text)) => {
                if let Some(ns) = rfc3339_ns(text) {
                    return Some(ns);
                }
            }
            Some(serde_json::Value::Number(n)) => {
                let n = n.as_f64()?;
                // Seconds, milliseconds, microseconds or nanoseconds, by magnitude.
                let ns = if n > 1e17 {
                    n
                } else if n > 1e14 {
                    n * 1e3
                } else if n > 1e11 {
                    n * 1e6
                } else {
                    n * 1e9
                };
                return Some(ns as i64);
            }
            _ => {}
        }
    }
    None
}

impl Tail {
    /// Finds files, follows renames and copies, starts readers for new files. `waiting`: the reader is
    /// held back by a full channel, so idle readers are not aged (they have not had their turn).
    fn discover(&mut self, waiting: bool) {
        let mut on_disk: HashMap<String, Vec<OnDisk>> = HashMap::new();
        for pattern in &self.options.paths {
            let Ok(paths) = glob::glob(pattern) else { continue };
            for path in paths.flatten() {
                let name = path.to_string_lossy();
                if COMPRESSED.iter().any(|ext| name.ends_with(ext)) {
                    continue;
                }
                // One descriptor for both facts, so a rotation in between cannot pair one file's inode
                // with another file's first line.
                let Ok(mut file) = File::open(&path) else { continue };
                let Ok(meta) = file.metadata() else { continue };
                if !meta.is_file() {
                    continue;
                }
                let Some(fp) = fingerprint(&mut file) else { continue };
                on_disk.entry(fp).or_default().push((path, (meta.dev(), meta.ino()), meta.len()));
            }
        }
        let inodes: HashMap<(u64, u64), &String> =
            on_disk.iter().flat_map(|(fp, c)| c.iter().map(move |(_, inode, _)| (*inode, fp))).collect();
        for (fp, candidates) in &on_disk {
            if let Some(reader) = self.readers.get_mut(fp) {
                if let Some((path, _, _)) = candidates.iter().find(|(_, inode, _)| *inode == reader.inode) {
                    reader.path.clone_from(path);
                    continue;
                }
                // Our file is gone or truncated and another file starts with the same line: the copy
                // `copytruncate` left. Continue in it where we were (re-reading an unfinished line).
                let own_size = reader.file.metadata().map_or(0, |m| m.len());
                let rewritten = inodes.get(&reader.inode).is_some_and(|other| *other != fp);
                if own_size >= reader.offset && !rewritten {
                    // Our file is intact (renamed out of the globs, or a different file that happens to
                    // start with the same first line): keep draining ours; the other is read once ours
                    // is done. Say so once: two live files with one first line cannot both be followed.
                    for (path, inode, _) in candidates {
                        if self.collisions.insert(*inode) {
                            self.stats.fingerprint_collisions.fetch_add(1, Ordering::Relaxed);
                            tracing::warn!(
                                path = %path.display(),
                                other = %reader.path.display(),
                                "two files start with the same first line; the second waits until the first is \
                                 done (give files distinct first lines, or ship them with separate globs)"
                            );
                        }
                    }
                    continue;
                }
                if let Some((path, inode, size)) = candidates.iter().max_by_key(|(_, _, size)| *size)
                    && let Ok(file) = File::open(path)
                {
                    if *size < reader.offset + reader.partial.len() as u64 {
                        reader.partial.clear();
                    }
                    // We may already have read past the copy's end (lines written between the copy and
                    // the truncation): then there is nothing left in it.
                    reader.offset = reader.offset.min(*size);
                    reader.file = file;
                    reader.inode = *inode;
                    reader.path.clone_from(path);
                    reader.gone_polls = 0;
                }
                continue;
            }
            let Some((path, inode, size)) = candidates.iter().max_by_key(|(_, _, size)| *size) else {
                continue;
            };
            let Ok(file) = File::open(path) else { continue };
            // A file seen before (this run or an earlier one) resumes where it was; never past its end.
            let (offset, resend_until) =
                self.known.get(fp).map_or((0, 0), |&(offset, resend)| (offset.min(*size), resend.min(*size)));
            self.readers.insert(
                fp.clone(),
                Reader {
                    fingerprint: fp.clone(),
                    path: path.clone(),
                    file,
                    inode: *inode,
                    offset,
                    partial: Vec::new(),
                    skipping: false,
                    resend_until,
                    gone_polls: 0,
                    last_ts: None,
                },
            );
        }
        // Readers whose file left the globs (renamed away, deleted) drain what their descriptor still
        // holds, then go after a few polls with nothing left; a file truncated in place goes at once.
        let mut lag = 0u64;
        let copies: std::collections::HashSet<&String> = on_disk.keys().collect();
        let (stats, known) = (&self.stats, &mut self.known);
        self.readers.retain(|fp, reader| {
            let size = reader.file.metadata().map_or(0, |m| m.len());
            lag += size.saturating_sub(reader.offset);
            if on_disk.get(fp).is_some_and(|c| c.iter().any(|(_, inode, _)| *inode == reader.inode)) {
                reader.gone_polls = 0;
                return true;
            }
            let rewritten = inodes.get(&reader.inode).is_some_and(|other| *other != fp);
            let at_end = size <= reader.offset + reader.partial.len() as u64;
            let truncated = size < reader.offset || rewritten;
            let keep = if truncated {
                // Truncated in place. Unless a copy holds the rest (it takes over next pass), what was not
                // read is gone; the new content has its own fingerprint and reader.
                if !copies.contains(fp) {
                    stats.truncations.fetch_add(1, Ordering::Relaxed);
                }
                false
            } else if at_end && !waiting {
                reader.gone_polls += 1;
                reader.gone_polls < 20
            } else {
                true
            };
            // Only a truncated file's position carries over to another file with its fingerprint (the
            // copy copytruncate made); a file read to its end and gone leaves nothing to resume.
            if !keep && truncated {
                known.insert(fp.clone(), (reader.offset, reader.resend_until));
            } else if !keep {
                known.remove(fp);
            }
            keep
        });
        self.stats.files_watched.store(self.readers.len() as u64, Ordering::Relaxed);
        // Not read yet, plus read but not yet acknowledged (or rejected).
        let in_flight = self
            .stats
            .bytes_read
            .load(Ordering::Relaxed)
            .saturating_sub(self.stats.bytes_done.load(Ordering::Relaxed));
        self.stats.lag_bytes.store(lag + in_flight, Ordering::Relaxed);
    }

    /// Reads what is new in every file into `out`, until it holds `max_bytes`; whether anything was read.
    fn read_into(&mut self, out: &mut Outgoing) -> bool {
        let mut progressed = false;
        let labels_base = &self.options.labels;
        let json_labels = &self.options.json_labels;
        // Take turns: a batch that fills up never leaves the same files waiting pass after pass.
        let mut order: Vec<&String> = self.readers.keys().collect();
        order.sort();
        let first = if order.is_empty() { 0 } else { self.turn % order.len() };
        let order: Vec<String> = order[first..].iter().chain(&order[..first]).map(|k| (*k).clone()).collect();
        self.turn = self.turn.wrapping_add(1);
        for key in order {
            let Some(reader) = self.readers.get_mut(&key) else { continue };
            if out.batch.bytes() >= self.options.batch_max_bytes {
                break;
            }
            let next = reader.offset + reader.partial.len() as u64;
            // Truncated since the last look: leave it to discovery, never read a stale offset.
            if reader.file.metadata().is_ok_and(|m| m.len() < next) {
                continue;
            }
            if reader.file.seek(SeekFrom::Start(next)).is_err() {
                continue;
            }
            self.buffer.resize(READ_CHUNK, 0);
            let n = match reader.file.read(&mut self.buffer) {
                Ok(n) => n,
                Err(_) => continue,
            };
            if n == 0 {
                continue;
            }
            reader.gone_polls = 0;
            progressed = true;
            let filename = reader.path.to_string_lossy().into_owned();
            let file_labels = labels_base.with("filename", &filename);
            let mut start = 0;
            let chunk = &self.buffer[..n];
            while let Some(newline) = chunk[start..].iter().position(|&b| b == b'\n') {
                let end = start + newline;
                let line_end = reader.offset + reader.partial.len() as u64 + (end - start) as u64 + 1;
                if reader.skipping {
                    reader.skipping = false;
                    reader.partial.clear();
                } else {
                    let mut bytes = std::mem::take(&mut reader.partial);
                    bytes.extend_from_slice(&chunk[start..end]);
                    if bytes.last() == Some(&b'\r') {
                        bytes.pop();
                    }
                    if line_end <= reader.resend_until {
                        self.stats.lines_resent.fetch_add(1, Ordering::Relaxed);
                    }
                    push_line(out, &file_labels, json_labels, bytes, &mut reader.last_ts);
                }
                out.read += line_end - reader.offset;
                self.stats.bytes_read.fetch_add(line_end - reader.offset, Ordering::Relaxed);
                reader.offset = line_end;
                out.marks.insert(reader.fingerprint.clone(), (reader.path.clone(), reader.offset));
                start = end + 1;
            }
            // The rest is an unfinished line: keep it (bounded) until its newline comes.
            let rest = &chunk[start..];
            if reader.skipping {
                // The tail of an over-long line: read, not shipped.
                reader.offset += rest.len() as u64;
                out.read += rest.len() as u64;
                self.stats.bytes_read.fetch_add(rest.len() as u64, Ordering::Relaxed);
            } else if reader.partial.len() + rest.len() > MAX_LINE {
                // Longer than Loki takes: ship the first MAX_LINE bytes, skip to the next newline.
                let consumed = (reader.partial.len() + rest.len()) as u64;
                let room = MAX_LINE - reader.partial.len();
                let mut bytes = std::mem::take(&mut reader.partial);
                bytes.extend_from_slice(&rest[..room.min(rest.len())]);
                push_line(out, &file_labels, json_labels, bytes, &mut reader.last_ts);
                // Positions are committed at line ends only: the mark moves when the newline comes.
                reader.skipping = true;
                reader.offset += consumed;
                out.read += consumed;
                self.stats.bytes_read.fetch_add(consumed, Ordering::Relaxed);
            } else {
                reader.partial.extend_from_slice(rest);
            }
        }
        progressed
    }
}

fn push_line(
    out: &mut Outgoing,
    file_labels: &Labels,
    json_labels: &[String],
    bytes: Vec<u8>,
    last_ts: &mut Option<i64>,
) {
    let line = match String::from_utf8(bytes) {
        Ok(line) => line,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    };
    // Loki's limit, even after a lossy conversion grew the line.
    let line = crate::loki::truncate_line(line);
    let now = now_ns();
    let mut timestamp_ns = None;
    let mut labels = None;
    if line.starts_with('{')
        && let Ok(value) = serde_json::from_str::<serde_json::Value>(&line)
    {
        // A time Loki would refuse (older than a week, or in the future) is not the line's time.
        timestamp_ns = json_timestamp(&value)
            .filter(|t| *t > now - 7 * 86_400 * 1_000_000_000 && *t < now + 600 * 1_000_000_000);
        for key in json_labels {
            if let Some(v) = value.get(key).and_then(|v| v.as_str())
                && crate::loki::check_label_name(key).is_ok()
            {
                labels =
                    Some(labels.unwrap_or_else(|| file_labels.clone()).with(key, &v.to_ascii_lowercase()));
            }
        }
    }
    // A line without its own time follows the file's last own time when it has one, so a stream never
    // jumps ahead of lines still to come from a backlog (Loki refuses entries an hour behind the newest);
    // in a file without times, lines are stamped when read.
    if timestamp_ns.is_some() {
        *last_ts = timestamp_ns;
    }
    let timestamp_ns = timestamp_ns.or(*last_ts).unwrap_or(now);
    out.bytes += line.len() as u64;
    out.batch
        .push(labels.as_ref().unwrap_or(file_labels), Entry { timestamp_ns, line, metadata: Vec::new() });
}

/// Runs the agent until `shutdown` resolves; then pushes what is read within the shutdown deadline,
/// commits, and returns.
pub async fn run(options: ShipOptions, shutdown: impl Future<Output = ()>) -> Result<ShipReport> {
    if options.paths.is_empty() {
        return Err(Error::Invalid(
            "no files to ship: set [logging.ship] paths, e.g. paths = [\"/var/log/app/*.log*\"]".to_owned(),
        ));
    }
    for pattern in &options.paths {
        glob::Pattern::new(pattern)
            .map_err(|e| Error::Invalid(format!("[logging.ship] paths: `{pattern}`: {e}")))?;
    }
    let client = LokiClient::new(&options.loki)?;
    let mut positions = Positions::load(&options.positions)?;
    positions.version = 1;
    let stats = Arc::new(ShipStats::default());
    let stop = Arc::new(AtomicBool::new(false));
    // One batch queued and one the reader holds while it waits: two batches besides the one in flight.
    let (tx, mut rx) = mpsc::channel::<Outgoing>(1);

    let metrics = match options.metrics_addr {
        Some(addr) => Some(serve_metrics(addr, stats.clone()).await?),
        None => None,
    };

    let reader = {
        let mut tail = Tail {
            options: options.clone(),
            readers: HashMap::new(),
            known: positions
                .files
                .iter()
                .map(|(fp, p)| (fp.clone(), (p.offset, p.sent.max(p.offset))))
                .collect(),
            turn: 0,
            collisions: std::collections::HashSet::new(),
            stats: stats.clone(),
            buffer: Vec::new(),
        };
        let stop = stop.clone();
        std::thread::Builder::new()
            .name("prodready-ship-reader".to_owned())
            .spawn({
                let runtime = tokio::runtime::Handle::current();
                move || read_loop(&mut tail, &tx, &stop, &runtime)
            })
            .map_err(|e| Error::Invalid(format!("cannot start the reader thread: {e}")))?
    };

    let positions_path = options.positions.clone();
    let mut shutdown = std::pin::pin!(shutdown);
    let mut stopping_since: Option<tokio::time::Instant> = None;
    let mut last_fsync: Option<std::time::Instant> = None;
    let outcome: Result<()> = loop {
        let next = tokio::select! {
            next = rx.recv() => next,
            () = &mut shutdown, if stopping_since.is_none() => {
                stop.store(true, Ordering::Relaxed);
                stopping_since = Some(tokio::time::Instant::now());
                continue;
            }
        };
        let Some(outgoing) = next else { break Ok(()) };
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
        if let Err(e) = positions.save(&positions_path, false) {
            break Err(e);
        }
        let lines = outgoing.batch.lines() as u64;
        // Halves of batches refused as too large (413) go first, in order.
        let mut parts = vec![outgoing.batch];
        let mut gave_up = false;
        while let Some(part) = parts.pop() {
            let deadline = stopping_since.map(|since| since + options.shutdown_timeout);
            let push = client.push(&part, &options.retry, deadline, |_| {
                stats.retries.fetch_add(1, Ordering::Relaxed);
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
                    stats.lines_sent.fetch_add(part_lines, Ordering::Relaxed);
                    stats.batches_sent.fetch_add(1, Ordering::Relaxed);
                    let now =
                        SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs());
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
            break Ok(());
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
        let durable = last_fsync.is_none_or(|t: std::time::Instant| t.elapsed() >= Duration::from_secs(1));
        if let Err(e) = positions.save(&positions_path, durable) {
            break Err(e);
        }
        if durable {
            last_fsync = Some(std::time::Instant::now());
        }
    };
    stop.store(true, Ordering::Relaxed);
    drop(rx);
    let reader = reader.join();
    // The last commit, made durable.
    if outcome.is_ok() {
        positions.save(&positions_path, true)?;
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

fn read_loop(
    tail: &mut Tail,
    tx: &mpsc::Sender<Outgoing>,
    stop: &AtomicBool,
    runtime: &tokio::runtime::Handle,
) {
    let fresh = || Outgoing { batch: Batch::new(), marks: HashMap::new(), bytes: 0, read: 0 };
    let mut out = fresh();
    let mut oldest: Option<std::time::Instant> = None;
    let mut last_discovery: Option<std::time::Instant> = None;
    loop {
        let stopping = stop.load(Ordering::Relaxed);
        if last_discovery.is_none_or(|t| t.elapsed() >= tail.options.poll_interval) {
            tail.discover(false);
            last_discovery = Some(std::time::Instant::now());
        }
        let progressed = !stopping && tail.read_into(&mut out);
        if !out.batch.is_empty() {
            oldest.get_or_insert_with(std::time::Instant::now);
        }
        let full = out.batch.bytes() >= tail.options.batch_max_bytes;
        let old = oldest.is_some_and(|t| t.elapsed() >= tail.options.batch_max_wait);
        if (full || old || stopping) && !out.batch.is_empty() {
            // While two batches wait, reading stops (back-pressure instead of an unbounded buffer); the
            // files are still looked at, so the lag gauge stays true during an outage.
            let pending = std::mem::replace(&mut out, fresh());
            let poll = tail.options.poll_interval;
            loop {
                // Wakes as soon as the sender takes a batch, or after a poll interval to look at the files.
                match runtime.block_on(async { tokio::time::timeout(poll, tx.reserve()).await }) {
                    Ok(Ok(permit)) => {
                        permit.send(pending);
                        break;
                    }
                    Ok(Err(_)) => return,
                    Err(_) => tail.discover(true),
                }
            }
            oldest = None;
        }
        if stopping {
            return;
        }
        if !progressed {
            std::thread::sleep(tail.options.poll_interval.min(Duration::from_millis(50)));
        }
    }
}

async fn serve_metrics(addr: SocketAddr, stats: Arc<ShipStats>) -> Result<tokio::task::JoinHandle<()>> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| Error::Invalid(format!("[logging.ship] metrics_addr {addr}: cannot listen: {e}")))?;
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let stats = stats.clone();
            async move {
                ([(http::header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], stats.render())
            }
        }),
    );
    Ok(tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    }))
}
