//! The reader thread: finds files by glob and fingerprint, follows rotation and copies, turns lines into
//! batches, and stops reading while two batches wait (back-pressure instead of buffering).
//!
//! Descriptors are held only by files being read, at most `max_open_files` of them: a reader that has
//! nothing left closes its descriptor when another needs one, and reopens its file by path, checking the
//! inode, when the file grows (discovery finds a renamed file again by fingerprint). Discovery stats every
//! matching file and reads a first line only when the file is new or changed, so thousands of idle rotated
//! files cost a `stat` each per poll.

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
    /// Open while the file is being read; closed when idle and another file needs a descriptor.
    file: Option<File>,
    inode: (u64, u64),
    /// The size discovery last saw (what a closed reader knows of its file).
    disk_size: u64,
    /// The pass in which this reader last read something (which idle descriptor goes first).
    last_read: u64,
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
/// `EMFILE` and `ENFILE` on Linux: the process's or the system's descriptors are used up.
const EMFILE: i32 = 24;
const ENFILE: i32 = 23;

/// A file found under a glob: path, (device, inode), size.
type OnDisk = (PathBuf, (u64, u64), u64);

/// What discovery remembers of a file's first line: (size, mtime in ns) when it was read, fingerprint.
type Seen = ((u64, i128), String);

/// A file's (device, inode) and its (size, mtime in ns): what tells whether its first line may have
/// changed since it was fingerprinted.
fn identity(meta: &std::fs::Metadata) -> ((u64, u64), (u64, i128)) {
    let mtime = i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec());
    ((meta.dev(), meta.ino()), (meta.len(), mtime))
}

impl Reader {
    /// The file's size: from the descriptor when open, else from discovery's last look.
    fn size(&self) -> u64 {
        self.file.as_ref().and_then(|f| f.metadata().ok()).map_or(self.disk_size, |m| m.len())
    }
}

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
    /// Fingerprints by (device, inode), reused while a file's size and mtime are unchanged.
    seen: HashMap<(u64, u64), Seen>,
    /// Sizes of every file under the globs at the last discovery, fingerprinted or not.
    sizes: HashMap<(u64, u64), u64>,
    /// Descriptors readers hold now.
    open: usize,
    /// Read passes so far.
    pass: u64,
    /// Whether running out of descriptors was reported.
    warned_exhausted: bool,
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
            seen: HashMap::new(),
            sizes: HashMap::new(),
            open: 0,
            pass: 0,
            warned_exhausted: false,
        }
    }

    /// Opens a file, saying once when the process is out of descriptors (the file waits its turn).
    fn open_file(&mut self, path: &std::path::Path) -> Option<File> {
        match File::open(path) {
            Ok(file) => Some(file),
            Err(e) => {
                if matches!(e.raw_os_error(), Some(EMFILE | ENFILE)) && !self.warned_exhausted {
                    self.warned_exhausted = true;
                    tracing::warn!(
                        path = %path.display(),
                        open = self.open,
                        max_open_files = self.options.max_open_files,
                        "out of file descriptors; files wait their turn (lower the cap on open files or raise \
                         the process's open-file limit)"
                    );
                }
                None
            }
        }
    }

    /// The fingerprint of the file at `path` and its (device, inode) and size, reading its first line only
    /// when the file is new or changed since the last look.
    fn identify(&mut self, path: &std::path::Path) -> Option<(String, (u64, u64), u64)> {
        let meta = std::fs::metadata(path).ok()?;
        if !meta.is_file() {
            return None;
        }
        let (inode, stamp) = identity(&meta);
        self.sizes.insert(inode, meta.len());
        if let Some((seen, fp)) = self.seen.get(&inode)
            && *seen == stamp
        {
            return Some((fp.clone(), inode, meta.len()));
        }
        // One descriptor for both facts, so a rotation in between cannot pair one file's inode with
        // another file's first line.
        let mut file = self.open_file(path)?;
        let meta = file.metadata().ok()?;
        let (inode, stamp) = identity(&meta);
        self.sizes.insert(inode, meta.len());
        let fp = fingerprint(&mut file)?;
        self.seen.insert(inode, (stamp, fp.clone()));
        Some((fp, inode, meta.len()))
    }

    /// Finds files, follows renames and copies, starts readers for new files. `waiting`: the reader is
    /// held back by a full channel, so idle readers are not aged (they have not had their turn).
    fn discover(&mut self, waiting: bool) {
        let mut on_disk: HashMap<String, Vec<OnDisk>> = HashMap::new();
        self.sizes.clear();
        let patterns = self.options.paths.clone();
        for pattern in &patterns {
            let Ok(paths) = glob::glob(pattern) else { continue };
            for path in paths.flatten() {
                let name = path.to_string_lossy();
                if COMPRESSED.iter().any(|ext| name.ends_with(ext)) {
                    continue;
                }
                let Some((fp, inode, size)) = self.identify(&path) else { continue };
                on_disk.entry(fp).or_default().push((path, inode, size));
            }
        }
        let sizes = &self.sizes;
        self.seen.retain(|inode, _| sizes.contains_key(inode));
        let inodes: HashMap<(u64, u64), &String> =
            on_disk.iter().flat_map(|(fp, c)| c.iter().map(move |(_, inode, _)| (*inode, fp))).collect();
        for (fp, candidates) in &on_disk {
            if let Some(reader) = self.readers.get_mut(fp) {
                if let Some((path, _, size)) = candidates.iter().find(|(_, inode, _)| *inode == reader.inode)
                {
                    reader.path.clone_from(path);
                    reader.disk_size = *size;
                    continue;
                }
                // Our file is gone or truncated and another file starts with the same line: the copy
                // `copytruncate` left. Continue in it where we were (re-reading an unfinished line).
                let own_size = match &reader.file {
                    Some(file) => file.metadata().map_or(0, |m| m.len()),
                    None => self.sizes.get(&reader.inode).copied().unwrap_or(0),
                };
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
                if let Some((path, inode, size)) = candidates.iter().max_by_key(|(_, _, size)| *size) {
                    if *size < reader.offset + reader.partial.len() as u64 {
                        reader.partial.clear();
                    }
                    // We may already have read past the copy's end (lines written between the copy and
                    // the truncation): then there is nothing left in it.
                    reader.offset = reader.offset.min(*size);
                    // The copy is opened (by path, checked against its inode) when its turn to read comes.
                    if reader.file.take().is_some() {
                        self.open -= 1;
                    }
                    reader.inode = *inode;
                    reader.disk_size = *size;
                    reader.path.clone_from(path);
                    reader.gone_polls = 0;
                }
                continue;
            }
            let Some((path, inode, size)) = candidates.iter().max_by_key(|(_, _, size)| *size) else {
                continue;
            };
            // A file seen before (this run or an earlier one) resumes where it was; never past its end.
            let (offset, resend_until) =
                self.known.get(fp).map_or((0, 0), |&(offset, resend)| (offset.min(*size), resend.min(*size)));
            self.readers.insert(
                fp.clone(),
                Reader {
                    fingerprint: fp.clone(),
                    path: path.clone(),
                    file: None,
                    inode: *inode,
                    disk_size: *size,
                    last_read: 0,
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
        let (stats, known, sizes, open) = (&self.stats, &mut self.known, &self.sizes, &mut self.open);
        self.readers.retain(|fp, reader| {
            let size = reader.size();
            lag += size.saturating_sub(reader.offset);
            if on_disk.get(fp).is_some_and(|c| c.iter().any(|(_, inode, _)| *inode == reader.inode)) {
                reader.gone_polls = 0;
                return true;
            }
            let rewritten = inodes.get(&reader.inode).is_some_and(|other| *other != fp);
            let at_end = size <= reader.offset + reader.partial.len() as u64;
            // A closed reader's file that left the globs cannot be drained: nothing holds it open.
            let unreachable = reader.file.is_none() && !sizes.contains_key(&reader.inode);
            let truncated = !unreachable && (size < reader.offset || rewritten);
            let keep = if truncated {
                // Truncated in place. Unless a copy holds the rest (it takes over next pass), what was not
                // read is gone; the new content has its own fingerprint and reader.
                if !copies.contains(fp) {
                    stats.truncations.fetch_add(1, Ordering::Relaxed);
                }
                false
            } else if unreachable {
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
            if !keep && reader.file.is_some() {
                *open -= 1;
            }
            keep
        });
        self.stats.files_watched.store(self.readers.len() as u64, Ordering::Relaxed);
        self.stats.files_open.store(self.open as u64, Ordering::Relaxed);
        // Not read yet, plus read but not yet acknowledged (or rejected).
        let in_flight = self
            .stats
            .bytes_read
            .load(Ordering::Relaxed)
            .saturating_sub(self.stats.bytes_done.load(Ordering::Relaxed));
        self.stats.lag_bytes.store(lag + in_flight, Ordering::Relaxed);
    }

    /// Gives `key`'s reader a descriptor, taking one from the idle reader that read least recently when
    /// all `max_open_files` are held; `false` when every descriptor is busy or the file moved (discovery
    /// finds it again by fingerprint).
    fn acquire(&mut self, key: &str) -> bool {
        if self.readers.get(key).is_none_or(|r| r.file.is_some()) {
            return self.readers.contains_key(key);
        }
        if self.open >= self.options.max_open_files.max(1) {
            let idle = self
                .readers
                .iter()
                .filter(|(k, r)| {
                    k.as_str() != key && r.file.is_some() && r.size() <= r.offset + r.partial.len() as u64
                })
                .min_by_key(|(_, r)| r.last_read)
                .map(|(k, _)| k.clone());
            let Some(idle) = idle else { return false };
            if let Some(reader) = self.readers.get_mut(&idle) {
                reader.file = None;
                self.open -= 1;
            }
        }
        let path = self.readers[key].path.clone();
        let Some(file) = self.open_file(&path) else { return false };
        let Some(reader) = self.readers.get_mut(key) else { return false };
        // The path may name another file by now (rotated): only the same inode continues this reader.
        match file.metadata() {
            Ok(meta) if (meta.dev(), meta.ino()) == reader.inode => {
                reader.file = Some(file);
                self.open += 1;
                true
            }
            _ => false,
        }
    }

    /// Reads what is new in every file into `out`, until it holds `max_bytes`; whether anything was read.
    fn read_into(&mut self, out: &mut Outgoing) -> bool {
        let mut progressed = false;
        self.pass += 1;
        // Take turns: a batch that fills up never leaves the same files waiting pass after pass. Files
        // waiting for a descriptor come after the open ones, the most recently written first (older files
        // wait when the cap is reached).
        let mut order: Vec<&String> = self.readers.keys().collect();
        order.sort();
        let first = if order.is_empty() { 0 } else { self.turn % order.len() };
        let order: Vec<String> = order[first..].iter().chain(&order[..first]).map(|k| (*k).clone()).collect();
        self.turn = self.turn.wrapping_add(1);
        let (mut open, mut closed): (Vec<String>, Vec<String>) =
            order.into_iter().partition(|k| self.readers[k].file.is_some());
        closed.retain(|k| {
            let r = &self.readers[k];
            r.disk_size > r.offset + r.partial.len() as u64
        });
        closed.sort_by_cached_key(|k| {
            std::cmp::Reverse(std::fs::metadata(&self.readers[k].path).and_then(|m| m.modified()).ok())
        });
        open.append(&mut closed);
        for key in open {
            if out.batch.bytes() >= self.options.batch_max_bytes {
                break;
            }
            if !self.acquire(&key) {
                continue;
            }
            let labels_base = &self.options.labels;
            let json_labels = &self.options.json_labels;
            let Some(reader) = self.readers.get_mut(&key) else { continue };
            let Some(file) = reader.file.as_mut() else { continue };
            let next = reader.offset + reader.partial.len() as u64;
            // Truncated since the last look: leave it to discovery, never read a stale offset.
            if file.metadata().is_ok_and(|m| m.len() < next) {
                continue;
            }
            if file.seek(SeekFrom::Start(next)).is_err() {
                continue;
            }
            self.buffer.resize(READ_CHUNK, 0);
            let n = match file.read(&mut self.buffer) {
                Ok(n) => n,
                Err(_) => continue,
            };
            if n == 0 {
                continue;
            }
            reader.gone_polls = 0;
            reader.last_read = self.pass;
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
