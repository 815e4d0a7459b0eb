//! The WAL archive: continuous archiving of PostgreSQL's write-ahead log into the backup store, for
//! point-in-time recovery.
//!
//! Layout, under the reserved id [`WAL_DIR`] (`.wal`: a dot-name, which no backup id can be and which
//! listings of backups skip):
//!
//! ```text
//! .wal/archive.json                                   the cluster it belongs to (system id, segment size)
//! .wal/0000000100000000/000000010000000000000003-<sha256>.zst          a segment
//! .wal/0000000100000000/000000010000000000000003.partial-<sha256>.zst  a partial segment
//! .wal/0000000100000000/000000010000000000000003.00000028.backup-<sha256>.zst
//! .wal/history/00000002.history-<sha256>.zst          a timeline history file
//! ```
//!
//! Segments, `.partial` and `.backup` files sit in one directory per timeline and log id (the first 16
//! characters of their name, at most 256 segments of 16 MiB); history files in `history/`. Every object
//! is the file compressed with zstd (frame checksum on); `<sha256>` is the SHA-256 of the file's own
//! bytes, so an object names the content it must yield: a push compares hashes without downloading, a
//! fetch and a verification re-hash what they decompress. An object appears whole or not at all (a local
//! store writes a temporary dot-file and renames it; S3 takes one conditional PUT), so a push killed at
//! any point leaves nothing a later push of the same file cannot complete.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write as _};
use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::store::{Listed, Store};
use crate::{Error, Result};

/// The reserved id of the WAL archive in a store.
pub const WAL_DIR: &str = ".wal";
/// The object recording which cluster the archive belongs to.
pub const ARCHIVE_INFO: &str = "archive.json";
const HISTORY_DIR: &str = "history";

/// `XLP_LONG_HEADER`: the first page of every segment carries the long header.
const XLP_LONG_HEADER: u16 = 0x0002;

/// What kind of file PostgreSQL asks to archive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WalKind {
    /// `000000010000000000000003`
    Segment,
    /// `000000010000000000000003.partial`: the last, incomplete segment of a timeline a promotion ended.
    Partial,
    /// `000000010000000000000003.00000028.backup`: a backup history file.
    Backup,
    /// `00000002.history`: how a timeline branched off its parent.
    History,
}

/// A parsed WAL file name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WalName {
    pub name: String,
    pub kind: WalKind,
    pub timeline: u32,
    /// The log id and segment parts (`LLLLLLLL`, `SSSSSSSS`); zero for history files.
    pub log: u32,
    pub seg: u32,
}

fn hex8(s: &str) -> Option<u32> {
    (s.len() == 8 && s.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_lowercase()))
        .then(|| u32::from_str_radix(s, 16).ok())
        .flatten()
}

impl WalName {
    /// Parses a file name PostgreSQL gives `archive_command` (`%f`) or `restore_command`.
    pub fn parse(name: &str) -> Result<Self> {
        let bad = || {
            Error::Invalid(format!(
                "`{name}` is not a WAL file name (a segment such as 000000010000000000000003, a .partial, \
                 .backup or .history file)"
            ))
        };
        if let Some(tli) = name.strip_suffix(".history") {
            let timeline = hex8(tli).ok_or_else(bad)?;
            return Ok(Self { name: name.to_owned(), kind: WalKind::History, timeline, log: 0, seg: 0 });
        }
        let (segment, kind) = if let Some(s) = name.strip_suffix(".partial") {
            (s, WalKind::Partial)
        } else if let Some(rest) = name.strip_suffix(".backup") {
            let (s, offset) = rest.split_once('.').ok_or_else(bad)?;
            hex8(offset).ok_or_else(bad)?;
            (s, WalKind::Backup)
        } else {
            (name, WalKind::Segment)
        };
        if segment.len() != 24 || !segment.is_ascii() {
            return Err(bad());
        }
        let timeline = hex8(&segment[..8]).ok_or_else(bad)?;
        let log = hex8(&segment[8..16]).ok_or_else(bad)?;
        let seg = hex8(&segment[16..]).ok_or_else(bad)?;
        Ok(Self { name: name.to_owned(), kind, timeline, log, seg })
    }

    /// The directory of its objects in the archive.
    fn dir(&self) -> &str {
        if self.kind == WalKind::History { HISTORY_DIR } else { &self.name[..16] }
    }

    /// Its segment number for `segment_size` (`None` for history files).
    pub fn segno(&self, segment_size: u64) -> Option<u64> {
        (self.kind != WalKind::History)
            .then(|| u64::from(self.log) * per_log(segment_size) + u64::from(self.seg))
    }
}

/// Segments per log id.
fn per_log(segment_size: u64) -> u64 {
    (0x1_0000_0000 / segment_size.max(1)).max(1)
}

/// The segment file name of `segno` on `timeline`.
pub fn segment_name(timeline: u32, segno: u64, segment_size: u64) -> String {
    let per = per_log(segment_size);
    format!("{timeline:08X}{:08X}{:08X}", segno / per, segno % per)
}

/// A write-ahead log position, `0/3000060` in PostgreSQL's notation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Lsn(pub u64);

impl std::str::FromStr for Lsn {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let bad = || Error::Invalid(format!("`{s}` is not an LSN such as 0/3000060"));
        let (hi, lo) = s.split_once('/').ok_or_else(bad)?;
        let hi = u64::from_str_radix(hi, 16).map_err(|_| bad())?;
        let lo = u64::from_str_radix(lo, 16).map_err(|_| bad())?;
        if hi > u64::from(u32::MAX) || lo > u64::from(u32::MAX) {
            return Err(bad());
        }
        Ok(Self((hi << 32) | lo))
    }
}

impl std::fmt::Display for Lsn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:X}/{:X}", self.0 >> 32, self.0 & 0xFFFF_FFFF)
    }
}

/// Which cluster an archive belongs to: a segment from another cluster (another system identifier) is
/// refused, and the segment size gives the numbering of segments.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArchiveInfo {
    /// The cluster's system identifier (a 64-bit number, as text).
    pub system_identifier: String,
    /// `wal_segment_size` in bytes.
    pub segment_size: u64,
    pub created_at: String,
}

/// The system identifier and segment size in a segment's first page (its long header).
fn segment_header(name: &str, bytes: &[u8]) -> Result<(u64, u64)> {
    let bad = |what: &str| Error::Invalid(format!("{name}: not a PostgreSQL WAL segment ({what})"));
    if bytes.len() < 40 {
        return Err(bad("shorter than a page header"));
    }
    let info = u16::from_le_bytes([bytes[2], bytes[3]]);
    if info & XLP_LONG_HEADER == 0 {
        return Err(bad("its first page has no long header"));
    }
    let sysid = u64::from_le_bytes(bytes[24..32].try_into().expect("8 bytes"));
    let seg_size = u64::from(u32::from_le_bytes(bytes[32..36].try_into().expect("4 bytes")));
    if !seg_size.is_power_of_two() || !(1 << 20..=1 << 30).contains(&seg_size) {
        return Err(bad("its header names no valid segment size"));
    }
    Ok((sysid, seg_size))
}

/// One archived object, from a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    object: String,
    wal: WalName,
    sha256: String,
    modified_unix: Option<i64>,
}

fn parse_object(listed: &Listed) -> Option<Entry> {
    let file = listed.name.rsplit('/').next()?;
    let stem = file.strip_suffix(".zst")?;
    let (name, sha256) = stem.rsplit_once('-')?;
    if sha256.len() != 64 || !sha256.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()) {
        return None;
    }
    let wal = WalName::parse(name).ok()?;
    (listed.name == format!("{}/{file}", wal.dir())).then(|| Entry {
        object: listed.name.clone(),
        wal,
        sha256: sha256.to_owned(),
        modified_unix: listed.modified_unix,
    })
}

/// How to push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushOptions {
    /// zstd level of the stored objects.
    pub zstd_level: i32,
    /// Files pushed at once: the one asked for and up to `jobs - 1` others that PostgreSQL marked ready.
    pub jobs: usize,
}

impl Default for PushOptions {
    fn default() -> Self {
        Self { zstd_level: 3, jobs: 1 }
    }
}

/// What one push did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Pushed {
    pub name: String,
    pub sha256: String,
    pub size: u64,
    /// Bytes stored (compressed); 0 when it was already archived.
    pub stored_size: u64,
    /// Already in the archive with the same bytes (or pushed ahead by an earlier call).
    pub already: bool,
}

/// What one fetch did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Fetched {
    pub name: String,
    pub sha256: String,
    pub size: u64,
}

/// The WAL archive of a store.
#[derive(Debug, Clone)]
pub struct WalArchive {
    store: Store,
}

impl WalArchive {
    pub fn new(store: Store) -> Self {
        Self { store }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The cluster the archive belongs to, once a segment was pushed.
    pub fn info(&self) -> Result<Option<ArchiveInfo>> {
        if !self.store.exists(WAL_DIR, ARCHIVE_INFO)? {
            return Ok(None);
        }
        let bytes = self.store.read(WAL_DIR, ARCHIVE_INFO)?;
        serde_json::from_slice(&bytes).map(Some).map_err(|e| Error::WalCorrupt {
            object: ARCHIVE_INFO.to_owned(),
            problem: format!("unreadable: {e}"),
        })
    }

    /// Checks a segment's cluster against the archive's, recording it on the first push.
    fn check_cluster(&self, name: &str, bytes: &[u8]) -> Result<()> {
        let (sysid, segment_size) = segment_header(name, bytes)?;
        let ours = match self.info()? {
            Some(info) => info,
            None => {
                let info = ArchiveInfo {
                    system_identifier: sysid.to_string(),
                    segment_size,
                    created_at: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
                };
                let json = serde_json::to_vec_pretty(&info).expect("archive info serializes");
                match self.store.write_atomic(WAL_DIR, ARCHIVE_INFO, &json) {
                    Ok(()) => return Ok(()),
                    // Another push recorded it first: compare with that.
                    Err(e) => self.info()?.ok_or(e)?,
                }
            }
        };
        if ours.system_identifier != sysid.to_string() {
            return Err(Error::WalForeign {
                name: name.to_owned(),
                system_identifier: sysid.to_string(),
                archive: ours.system_identifier,
            });
        }
        if ours.segment_size != segment_size {
            return Err(Error::Invalid(format!(
                "{name}: its segment size is {segment_size} bytes, the archive's {}",
                ours.segment_size
            )));
        }
        Ok(())
    }

    /// A history or backup file carries no system identifier of its own: the server pushing it does, in
    /// `global/pg_control` beside its `pg_wal` (PostgreSQL runs `archive_command` in the data directory
    /// with `%p` = `pg_wal/NAME`). A history file of another cluster would make recovery to latest follow
    /// that cluster's timeline. A file pushed from elsewhere (no `pg_control` there) is not checked.
    fn check_history_cluster(&self, name: &str, path: &Path) -> Result<()> {
        let Some(data_dir) = path.parent().and_then(Path::parent) else { return Ok(()) };
        let control = data_dir.join("global/pg_control");
        let Ok(mut file) = std::fs::File::open(&control) else { return Ok(()) };
        let mut first = [0u8; 8];
        if file.read_exact(&mut first).is_err() {
            return Ok(());
        }
        // ControlFileData begins with the system identifier.
        let sysid = u64::from_le_bytes(first).to_string();
        match self.info()? {
            Some(ours) if ours.system_identifier != sysid => Err(Error::WalForeign {
                name: name.to_owned(),
                system_identifier: sysid,
                archive: ours.system_identifier,
            }),
            _ => Ok(()),
        }
    }

    /// The archived objects of one WAL file.
    fn entries_of(&self, wal: &WalName) -> Result<Vec<Entry>> {
        Ok(self
            .store
            .list(WAL_DIR, wal.dir())?
            .iter()
            .filter_map(parse_object)
            .filter(|e| e.wal.name == wal.name)
            .collect())
    }

    /// Archives the file at `path` (a segment, `.partial`, `.backup` or `.history` file). Idempotent: a
    /// file already archived with the same bytes succeeds at once; one archived with different bytes is
    /// [`Error::WalConflict`].
    pub fn push(&self, path: &Path, options: &PushOptions) -> Result<Pushed> {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| Error::Invalid(format!("{}: not a WAL file name", path.display())))?;
        let wal = WalName::parse(name)?;
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        let sha256 = hex::encode(Sha256::digest(&bytes));
        let size = bytes.len() as u64;
        let archived = |entries: &[Entry]| -> Result<Option<Pushed>> {
            match entries.iter().find(|e| e.sha256 != sha256) {
                Some(other) => Err(Error::WalConflict {
                    name: name.to_owned(),
                    stored: other.sha256.clone(),
                    pushed: sha256.clone(),
                }),
                None if entries.is_empty() => Ok(None),
                None => Ok(Some(Pushed {
                    name: name.to_owned(),
                    sha256: sha256.clone(),
                    size,
                    stored_size: 0,
                    already: true,
                })),
            }
        };
        if let Some(done) = archived(&self.entries_of(&wal)?)? {
            return Ok(done);
        }
        if matches!(wal.kind, WalKind::Segment | WalKind::Partial) {
            self.check_cluster(name, &bytes)?;
        } else {
            self.check_history_cluster(name, path)?;
        }
        let mut encoder = zstd::stream::Encoder::new(Vec::with_capacity(bytes.len() / 2), options.zstd_level)
            .map_err(|e| Error::io(path, e))?;
        encoder.include_checksum(true).map_err(|e| Error::io(path, e))?;
        encoder.set_pledged_src_size(Some(size)).map_err(|e| Error::io(path, e))?;
        encoder.write_all(&bytes).map_err(|e| Error::io(path, e))?;
        let compressed = encoder.finish().map_err(|e| Error::io(path, e))?;
        let object = format!("{}/{name}-{sha256}.zst", wal.dir());
        if let Err(e) = self.store.write_atomic(WAL_DIR, &object, &compressed) {
            // A concurrent push of the same file may have won the race: that is success when the bytes match.
            return archived(&self.entries_of(&wal)?)?.ok_or(e);
        }
        Ok(Pushed {
            name: name.to_owned(),
            sha256,
            size,
            stored_size: compressed.len() as u64,
            already: false,
        })
    }

    /// Restores the archived file `name` to `dest` (written under a temporary name, hash checked, then
    /// renamed). `Ok(None)` when the archive does not hold it (PostgreSQL asks for files that do not exist,
    /// e.g. the history file of the next timeline).
    pub fn fetch(&self, name: &str, dest: &Path) -> Result<Option<Fetched>> {
        let wal = WalName::parse(name)?;
        let entries = self.entries_of(&wal)?;
        let Some(entry) = entries.first() else {
            // "Not archived" only from a store that holds this archive: an empty listing of a store that
            // is not mounted, or not the one the server archives to, must stop recovery, not end it.
            if !self.store.exists(WAL_DIR, ARCHIVE_INFO)? {
                return Err(Error::Invalid(format!(
                    "{}: no WAL archive here (no {WAL_DIR}/{ARCHIVE_INFO}): is this the store the server \
                     archives to, and is it mounted?",
                    self.store.location()
                )));
            }
            return Ok(None);
        };
        if let Some(other) = entries.iter().find(|e| e.sha256 != entry.sha256) {
            return Err(Error::WalConflict {
                name: name.to_owned(),
                stored: entry.sha256.clone(),
                pushed: other.sha256.clone(),
            });
        }
        // PostgreSQL renames what it fetched itself, so only the replacement has to be atomic, not durable.
        let fetched = prodready_stdx::fs::AtomicWrite::new().sync(false).write_with(
            dest,
            |file| {
                let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
                let (sha256, size) = self.decode(entry, &mut out)?;
                out.flush().map_err(|e| Error::io(dest, e))?;
                if sha256 != entry.sha256 {
                    return Err(Error::WalCorrupt {
                        object: entry.object.clone(),
                        problem: format!("its content hashes to {sha256}, its name says {}", entry.sha256),
                    });
                }
                Ok(Fetched { name: name.to_owned(), sha256, size })
            },
            |e| Error::io(dest, e),
        )?;
        Ok(Some(fetched))
    }

    /// The segments a recovery from a base backup needs, from `first` (the segment of its start point, on
    /// `start_timeline`) to the one holding the last byte before `end` (its stop point, on `timeline`),
    /// that this archive does not hold. When the timelines differ (a backup of a standby that was
    /// promoted meanwhile) only the two ends are looked for. An archive that holds nothing yet is an error.
    pub fn missing_segments(
        &self,
        first: &str,
        start_timeline: u32,
        timeline: u32,
        end: Lsn,
    ) -> Result<Vec<String>> {
        let Some(info) = self.info()? else {
            return Err(Error::Invalid(format!("{}: no WAL is archived here", self.store.location())));
        };
        let size = info.segment_size;
        let start = WalName::parse(first)?
            .segno(size)
            .ok_or_else(|| Error::Invalid(format!("{first}: not a segment")))?;
        let stop = (end.0.saturating_sub(1) / size).max(start);
        let wanted: Vec<String> = if start_timeline == timeline {
            (start..=stop).map(|segno| segment_name(timeline, segno, size)).collect()
        } else {
            vec![segment_name(start_timeline, start, size), segment_name(timeline, stop, size)]
        };
        // One listing per directory (a log id's worth of segments), not one per segment.
        let mut held = std::collections::HashSet::new();
        let mut listed = std::collections::HashSet::new();
        for name in &wanted {
            let dir = &name[..16];
            if listed.insert(dir.to_owned()) {
                held.extend(
                    self.store.list(WAL_DIR, dir)?.iter().filter_map(parse_object).map(|e| e.wal.name),
                );
            }
        }
        Ok(wanted.into_iter().filter(|n| !held.contains(n)).collect())
    }

    /// The history file of `timeline` (`0000000N.history`), when archived: what PostgreSQL follows to
    /// reach that timeline (one `<parent> <switch LSN> <reason>` line per ancestor).
    pub fn history(&self, timeline: u32) -> Result<Option<String>> {
        let wal = WalName::parse(&format!("{timeline:08X}.history"))?;
        let entries = self.entries_of(&wal)?;
        let Some(entry) = entries.first() else { return Ok(None) };
        let mut text = Vec::new();
        let (sha256, _) = self.decode(entry, &mut text)?;
        if sha256 != entry.sha256 {
            return Err(Error::WalCorrupt {
                object: entry.object.clone(),
                problem: format!("its content hashes to {sha256}, its name says {}", entry.sha256),
            });
        }
        Ok(Some(String::from_utf8_lossy(&text).into_owned()))
    }

    /// The newest timeline with an archived history file (1 when there is none).
    pub fn newest_timeline(&self) -> Result<u32> {
        Ok(self
            .store
            .list(WAL_DIR, HISTORY_DIR)?
            .iter()
            .filter_map(parse_object)
            .map(|e| e.wal.timeline)
            .max()
            .unwrap_or(1))
    }

    /// Decompresses one object into `out`, returning the SHA-256 and size of what it yielded.
    fn decode(&self, entry: &Entry, out: &mut impl std::io::Write) -> Result<(String, u64)> {
        let corrupt = |problem: String| Error::WalCorrupt { object: entry.object.clone(), problem };
        let reader = self.store.open_object(WAL_DIR, &entry.object)?;
        let mut decoder =
            zstd::stream::Decoder::new(reader).map_err(|e| corrupt(format!("not zstd: {e}")))?;
        let mut hasher = Sha256::new();
        let mut size = 0u64;
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = decoder.read(&mut buf).map_err(|e| corrupt(format!("cannot decompress: {e}")))?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            out.write_all(&buf[..n]).map_err(|e| Error::io(&entry.object, e))?;
            size += n as u64;
        }
        Ok((hex::encode(hasher.finalize()), size))
    }

    fn entries(&self) -> Result<Vec<Entry>> {
        Ok(self.store.list(WAL_DIR, "")?.iter().filter_map(parse_object).collect())
    }

    /// What the archive holds: per timeline, the first and last segment and the gaps between them
    /// (following timeline switches recorded in history files), the newest archived file and its age.
    pub fn status(&self, now_unix: i64) -> Result<ArchiveStatus> {
        let listed = self.store.list(WAL_DIR, "")?;
        let entries: Vec<Entry> = listed.iter().filter_map(parse_object).collect();
        let info = self.info()?;
        let segment_size = info.as_ref().map_or(16 << 20, |i| i.segment_size);
        let unexpected: Vec<String> = listed
            .iter()
            .filter(|l| l.name != ARCHIVE_INFO && parse_object(l).is_none())
            .map(|l| l.name.clone())
            .collect();
        let mut by_name: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
        for e in &entries {
            by_name.entry(&e.wal.name).or_default().insert(&e.sha256);
        }
        let conflicts: Vec<String> =
            by_name.iter().filter(|(_, hashes)| hashes.len() > 1).map(|(n, _)| (*n).to_owned()).collect();
        let mut switches = BTreeMap::new();
        for e in entries.iter().filter(|e| e.wal.kind == WalKind::History) {
            let mut text = Vec::new();
            // An unreadable history file is verification's business; here it only costs its switch.
            if self.decode(e, &mut text).is_ok()
                && let Some(switch) = parse_history(&String::from_utf8_lossy(&text))
            {
                switches.insert(e.wal.timeline, switch);
            }
        }
        let mut segments: BTreeMap<u32, BTreeSet<u64>> = BTreeMap::new();
        for e in entries.iter().filter(|e| e.wal.kind == WalKind::Segment) {
            if let Some(segno) = e.wal.segno(segment_size) {
                segments.entry(e.wal.timeline).or_default().insert(segno);
            }
        }
        let mut gaps = Vec::new();
        let mut timelines = Vec::new();
        let name = |tli: u32, segno: u64| segment_name(tli, segno, segment_size);
        let mut gap = |timeline: u32, from: u64, to: u64| {
            gaps.push(Gap {
                timeline,
                first: name(timeline, from),
                last: name(timeline, to),
                missing: to - from + 1,
            });
        };
        for (&tli, segnos) in &segments {
            let (Some(&first), Some(&last)) = (segnos.first(), segnos.last()) else { continue };
            // A timeline's first segment is the one holding its switch point: earlier ones are its parent's.
            if let Some(&(_, at)) = switches.get(&tli) {
                let start = at.0 / segment_size;
                if first > start {
                    gap(tli, start, first - 1);
                }
            }
            let mut previous = first;
            for &segno in segnos.iter().skip(1) {
                if segno > previous + 1 {
                    gap(tli, previous + 1, segno - 1);
                }
                previous = segno;
            }
            timelines.push(TimelineStatus {
                timeline: tli,
                first: name(tli, first),
                last: name(tli, last),
                segments: segnos.len() as u64,
                parent: switches.get(&tli).map(|&(parent, at)| Switch { parent, at: at.to_string() }),
            });
        }
        // The parent must hold every segment before the switch (the switch's own segment is the child's).
        for (&tli, &(parent, at)) in &switches {
            let start = at.0 / segment_size;
            let Some(parent_last) = segments.get(&parent).and_then(|s| s.last()).copied() else { continue };
            if segments.contains_key(&tli) && start > 0 && parent_last < start - 1 {
                gap(parent, parent_last + 1, start - 1);
            }
        }
        gaps.sort_by(|a, b| (a.timeline, &a.first).cmp(&(b.timeline, &b.first)));
        let newest = entries
            .iter()
            .filter(|e| e.modified_unix.is_some())
            .max_by(|a, b| a.modified_unix.cmp(&b.modified_unix).then_with(|| a.wal.name.cmp(&b.wal.name)))
            .map(|e| Newest {
                name: e.wal.name.clone(),
                archived_unix: e.modified_unix.unwrap_or(0),
                age_seconds: u64::try_from(now_unix - e.modified_unix.unwrap_or(now_unix)).unwrap_or(0),
            });
        Ok(ArchiveStatus {
            info,
            files: entries.len() as u64,
            timelines,
            history: {
                let mut h: Vec<u32> = switches.keys().copied().collect();
                h.extend(entries.iter().filter(|e| e.wal.kind == WalKind::History).map(|e| e.wal.timeline));
                h.sort_unstable();
                h.dedup();
                h
            },
            gaps,
            conflicts,
            unexpected,
            newest,
        })
    }

    /// [`WalArchive::status`] plus every object re-read, decompressed and re-hashed: a corrupt object is
    /// named with what is wrong with it.
    pub fn verify(&self, now_unix: i64, jobs: usize) -> Result<WalVerification> {
        let status = self.status(now_unix)?;
        let entries = self.entries()?;
        let next = std::sync::atomic::AtomicUsize::new(0);
        let corrupt = std::sync::Mutex::new(Vec::new());
        let failed = std::sync::Mutex::new(None);
        std::thread::scope(|scope| {
            for _ in 0..jobs.clamp(1, 16) {
                scope.spawn(|| {
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(entry) = entries.get(i) else { return };
                        match self.decode(entry, &mut std::io::sink()) {
                            Ok((sha256, _)) if sha256 == entry.sha256 => {}
                            Ok((sha256, _)) => lock(&corrupt).push(CorruptWal {
                                object: entry.object.clone(),
                                problem: format!(
                                    "its content hashes to {sha256}, its name says {}",
                                    entry.sha256
                                ),
                            }),
                            Err(Error::WalCorrupt { object, problem }) => {
                                lock(&corrupt).push(CorruptWal { object, problem });
                            }
                            Err(e) => {
                                lock(&failed).get_or_insert(e);
                                return;
                            }
                        }
                    }
                });
            }
        });
        if let Some(e) = failed.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner) {
            return Err(e);
        }
        let mut corrupt = corrupt.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner);
        corrupt.sort_by(|a, b| a.object.cmp(&b.object));
        let ok = corrupt.is_empty() && status.gaps.is_empty() && status.conflicts.is_empty();
        Ok(WalVerification { checked: entries.len() as u64, corrupt, status, ok })
    }

    /// Deletes the archived segments (and `.partial` and `.backup` files) that end before the segment
    /// holding `lsn`, on `timeline` and the timelines before it: what recovery from a base backup that
    /// starts at (`timeline`, `lsn`) never reads. Later timelines and history files are kept. Pass the start
    /// of the oldest base backup that is kept.
    pub fn prune_before(&self, timeline: u32, lsn: Lsn, dry_run: bool) -> Result<WalPruneReport> {
        let segment_size = self.info()?.map_or(16 << 20, |i| i.segment_size);
        let keep_from = lsn.0 / segment_size;
        let doomed: Vec<Entry> = self
            .entries()?
            .into_iter()
            .filter(|e| e.wal.kind != WalKind::History && e.wal.timeline <= timeline)
            .filter(|e| e.wal.segno(segment_size).is_some_and(|s| s < keep_from))
            .collect();
        if !dry_run {
            for e in &doomed {
                self.store.delete(WAL_DIR, &e.object)?;
            }
        }
        Ok(WalPruneReport {
            dry_run,
            keep_from: segment_name(timeline, keep_from, segment_size),
            deleted: doomed.into_iter().map(|e| e.wal.name).collect(),
        })
    }
}

fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The parent timeline and switch point of the timeline a history file describes: its last line,
/// `<parent tli>\t<switch lsn>\t<reason>`.
fn parse_history(text: &str) -> Option<(u32, Lsn)> {
    text.lines().rev().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).find_map(|l| {
        let mut fields = l.split_whitespace();
        let parent = fields.next()?.parse().ok()?;
        let at = fields.next()?.parse().ok()?;
        Some((parent, at))
    })
}

/// What [`WalArchive::status`] found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ArchiveStatus {
    pub info: Option<ArchiveInfo>,
    /// Archived files (segments, partial, backup and history files).
    pub files: u64,
    pub timelines: Vec<TimelineStatus>,
    /// Timelines with a history file.
    pub history: Vec<u32>,
    /// Segments missing between the first and last of a timeline, or between a parent and a switch.
    pub gaps: Vec<Gap>,
    /// Files archived twice with different contents.
    pub conflicts: Vec<String>,
    /// Objects under the archive that are not archived WAL files.
    pub unexpected: Vec<String>,
    /// The most recently archived file.
    pub newest: Option<Newest>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TimelineStatus {
    pub timeline: u32,
    pub first: String,
    pub last: String,
    pub segments: u64,
    /// Where it branched off, from its history file.
    pub parent: Option<Switch>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Switch {
    pub parent: u32,
    pub at: String,
}

/// Missing segments `first..=last` of a timeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Gap {
    pub timeline: u32,
    pub first: String,
    pub last: String,
    pub missing: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Newest {
    pub name: String,
    pub archived_unix: i64,
    /// The archive's lag: how long ago the newest file arrived.
    pub age_seconds: u64,
}

/// An archived object that does not yield what its name says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CorruptWal {
    pub object: String,
    pub problem: String,
}

/// What [`WalArchive::verify`] found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WalVerification {
    /// Objects re-hashed.
    pub checked: u64,
    pub corrupt: Vec<CorruptWal>,
    pub status: ArchiveStatus,
    /// No corrupt object, no gap, no conflict.
    pub ok: bool,
}

/// What [`WalArchive::prune_before`] deleted (or would delete).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WalPruneReport {
    pub dry_run: bool,
    /// The first segment kept.
    pub keep_from: String,
    pub deleted: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_and_reject() {
        let seg = WalName::parse("000000020000000100000003").unwrap();
        assert_eq!((seg.kind, seg.timeline, seg.log, seg.seg), (WalKind::Segment, 2, 1, 3));
        assert_eq!(seg.segno(16 << 20), Some(256 + 3));
        assert_eq!(segment_name(2, 259, 16 << 20), "000000020000000100000003");
        assert_eq!(WalName::parse("00000002.history").unwrap().kind, WalKind::History);
        assert_eq!(WalName::parse("000000010000000000000003.partial").unwrap().kind, WalKind::Partial);
        assert_eq!(WalName::parse("000000010000000000000003.00000028.backup").unwrap().kind, WalKind::Backup);
        for bad in [
            "",
            "x",
            "00000001000000000000000g",
            "000000010000000000000003.tmp",
            "../etc/passwd",
            "00000001000000000000000a",
            "0000000100000000000000030",
        ] {
            assert!(WalName::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn lsns_round_trip() {
        let lsn: Lsn = "1/3000060".parse().unwrap();
        assert_eq!(lsn.0, (1 << 32) | 0x300_0060);
        assert_eq!(lsn.to_string(), "1/3000060");
        assert!("3000060".parse::<Lsn>().is_err());
    }

    #[test]
    fn history_files_name_their_parent_and_switch() {
        let text = "1\t0/3000158\tno recovery target specified\n\n2\t0/5000000\tbefore 2026-12-06\n";
        assert_eq!(parse_history(text), Some((2, Lsn(0x500_0000))));
        assert_eq!(parse_history(""), None);
    }
}
