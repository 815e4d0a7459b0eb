//! The reader thread: finds files by glob and fingerprint, follows rotation and copies, turns lines into
//! batches, and stops reading while two batches wait (back-pressure instead of buffering).

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read as _, Seek as _, SeekFrom};
use std::os::unix::fs::MetadataExt as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use sha2::Digest as _;
use tokio::sync::mpsc;

use super::{ShipOptions, ShipStats};
use crate::loki::{Batch, Entry, Labels};

/// The fingerprint of a file: a hash of its first line (at most 256 bytes); `None` until it has one.
pub(super) fn fingerprint(file: &mut File) -> Option<String> {
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
pub(super) struct Outgoing {
    pub(super) batch: Batch,
    /// fingerprint -> (path, end offset)
    pub(super) marks: HashMap<String, (PathBuf, u64)>,
    /// Bytes of the lines' text.
    pub(super) bytes: u64,
    /// Bytes of the files these lines (and skipped tails) cover, newlines included.
    pub(super) read: u64,
}

const MAX_LINE: usize = crate::loki::MAX_LINE_BYTES;
const READ_CHUNK: usize = 256 * 1024;
const COMPRESSED: &[&str] = &[".gz", ".zst", ".bz2", ".xz", ".zip", ".lz4"];

/// A file found under a glob: path, (device, inode), size.
type OnDisk = (PathBuf, (u64, u64), u64);

pub(super) struct Tail {
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
    /// A reader over `options.paths` that resumes files at the `known` (offset, resend-until) positions.
    pub(super) fn new(
        options: ShipOptions,
        known: HashMap<String, (u64, u64)>,
        stats: Arc<ShipStats>,
    ) -> Self {
        Self {
            options,
            readers: HashMap::new(),
            known,
            turn: 0,
            collisions: std::collections::HashSet::new(),
            stats,
            buffer: Vec::new(),
        }
    }

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

pub(super) fn read_loop(
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
