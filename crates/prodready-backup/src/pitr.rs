//! Point-in-time recovery: pick the base backup a target needs ([`choose`]), unpack it into an empty data
//! directory with `recovery.signal` and the recovery settings ([`prepare`]), and prove the recovery by
//! starting the server on it ([`drill`]).

use std::fmt::Write as _;
use std::io::{Read, Write as _};
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::base::{ARCHIVE, BaseManifest, Lsn};
use crate::store::Store;
use crate::tar::Unpacker;
use crate::{Error, Result};

/// Where a recovery stops.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// The end of the archived WAL, on the newest timeline.
    Latest,
    /// A moment (in UTC), as PostgreSQL reads it: `2026-12-05 10:00:00.123456+00`.
    Time { at: SystemTime, text: String },
    /// A WAL location.
    Lsn(Lsn),
}

impl Target {
    /// `latest`, an RFC 3339 time (`2026-12-05T10:00:00.123456Z`, offsets allowed) or an LSN (`0/3000060`).
    pub fn parse(text: &str) -> Result<Self> {
        let text = text.trim();
        if text == "latest" {
            return Ok(Target::Latest);
        }
        if text.contains('/') {
            return text.parse::<Lsn>().map(Target::Lsn);
        }
        let at = parse_time(text).ok_or_else(|| {
            Error::Invalid(format!(
                "`{text}` is not a recovery target: expected latest, an RFC 3339 time \
                 (2026-12-05T10:00:00Z, offsets allowed) or an LSN (0/3000060)"
            ))
        })?;
        Ok(Target::Time { at, text: postgres_time(at) })
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Latest => f.write_str("latest"),
            Target::Time { text, .. } => f.write_str(text),
            Target::Lsn(lsn) => write!(f, "{lsn}"),
        }
    }
}

/// RFC 3339 with `Z` or a `+HH:MM` / `-HH:MM` offset (or none: UTC), `T` or a space between date and time.
fn parse_time(text: &str) -> Option<SystemTime> {
    let bytes = text.as_bytes();
    let n = bytes.len();
    let has_offset = n > 6
        && matches!(bytes[n - 6], b'+' | b'-')
        && bytes[n - 3] == b':'
        && bytes[n - 5..n - 3].iter().all(u8::is_ascii_digit)
        && bytes[n - 2..].iter().all(u8::is_ascii_digit);
    let (local, offset_seconds) = if let Some(local) = text.strip_suffix(['Z', 'z']) {
        (local, 0i64)
    } else if has_offset {
        let (local, offset) = text.split_at(n - 6);
        let sign = if offset.starts_with('-') { -1 } else { 1 };
        let hours: i64 = offset[1..3].parse().ok()?;
        let minutes: i64 = offset[4..6].parse().ok()?;
        (local, sign * (hours * 3600 + minutes * 60))
    } else {
        (text, 0)
    };
    if local.len() < 19 {
        return None;
    }
    let utc = humantime::parse_rfc3339_weak(local).ok()?;
    let shift = Duration::from_secs(offset_seconds.unsigned_abs());
    if offset_seconds >= 0 { utc.checked_sub(shift) } else { utc.checked_add(shift) }
}

/// `2026-12-05 10:00:00.123456+00`: PostgreSQL 15 refuses a trailing `Z` in recovery_target_time.
fn postgres_time(at: SystemTime) -> String {
    humantime::format_rfc3339_micros(at).to_string().replacen('T', " ", 1).replace('Z', "+00")
}

fn time_of(rfc3339: &str) -> Option<SystemTime> {
    humantime::parse_rfc3339(rfc3339).ok()
}

/// The timeline history PostgreSQL would follow: the newest timeline and, for each of its ancestors, where
/// it was left.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timelines {
    pub newest: u32,
    /// `(timeline, the LSN where the next timeline branched off it)`, oldest first.
    pub ancestors: Vec<(u32, Lsn)>,
}

impl Timelines {
    /// Timeline `newest`, from the text of its history file (`00000003.history`: `1\t0/3000158\treason`);
    /// `None` for a timeline without history (timeline 1).
    pub fn from_history(newest: u32, history: Option<&str>) -> Result<Self> {
        let mut ancestors = Vec::new();
        for (n, line) in history.unwrap_or("").lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let mut fields = line.split_whitespace();
            let bad = || {
                Error::Invalid(format!(
                    "{newest:08X}.history line {}: `{line}` is not TLI<tab>LSN<tab>reason",
                    n + 1
                ))
            };
            let tli: u32 = fields.next().and_then(|t| t.parse().ok()).ok_or_else(bad)?;
            let lsn = fields.next().and_then(|l| l.parse::<Lsn>().ok()).ok_or_else(bad)?;
            ancestors.push((tli, lsn));
        }
        Ok(Self { newest, ancestors })
    }

    /// Finds the newest timeline by asking for history files after `from` (as PostgreSQL does), then reads
    /// its history. `history(tli)` returns the text of `TLI.history`, or `None` when there is none.
    pub fn discover(from: u32, history: &mut dyn FnMut(u32) -> Result<Option<String>>) -> Result<Self> {
        let mut newest = from.max(1);
        let mut text = if newest > 1 { history(newest)? } else { None };
        while let Some(next) = history(newest + 1)? {
            newest += 1;
            text = Some(next);
        }
        Self::from_history(newest, text.as_deref())
    }

    /// Whether replay from a backup that ends at `stop` on timeline `tli` can reach the newest timeline:
    /// `tli` is the newest, or an ancestor left after `stop`.
    pub fn reaches(&self, tli: u32, stop: Lsn) -> bool {
        tli == self.newest || self.ancestors.iter().any(|&(t, switch)| t == tli && stop <= switch)
    }
}

/// The newest timeline of the WAL archive in `store` and its history, probing history files after `from`.
pub fn archive_timelines(store: &Store, from: u32) -> Result<Timelines> {
    let archive = crate::wal::WalArchive::new(store.clone());
    Timelines::discover(from, &mut |tli| archive.history(tli))
}

/// Picks the base backup for `target`: the newest one that ends before the target and lies on the newest
/// timeline's history. `bases` may be in any order.
pub fn choose<'a>(
    bases: &'a [BaseManifest],
    target: &Target,
    timelines: &Timelines,
) -> Result<&'a BaseManifest> {
    let mut usable: Vec<&BaseManifest> = Vec::new();
    let mut reasons = Vec::new();
    for base in bases {
        let Ok(stop) = base.stop_lsn.parse::<Lsn>() else {
            reasons.push(format!("{}: unreadable stop LSN", base.id));
            continue;
        };
        if !timelines.reaches(base.timeline, stop) {
            reasons.push(format!(
                "{}: on timeline {} up to {stop}, not on the history of timeline {}",
                base.id, base.timeline, timelines.newest
            ));
            continue;
        }
        let before = match target {
            Target::Latest => true,
            Target::Lsn(lsn) => stop <= *lsn,
            Target::Time { at, .. } => time_of(&base.finished_at).is_some_and(|end| end <= *at),
        };
        if before {
            usable.push(base);
        } else {
            reasons.push(format!("{}: ends at {stop} ({}), after the target", base.id, base.finished_at));
        }
    }
    usable.sort_by(|a, b| {
        let key = |m: &BaseManifest| (time_of(&m.finished_at), m.stop_lsn.parse::<Lsn>().ok());
        key(a).cmp(&key(b)).then_with(|| a.id.cmp(&b.id))
    });
    usable.pop().ok_or_else(|| {
        if bases.is_empty() {
            Error::NotFound("base backup".to_owned())
        } else {
            Error::Invalid(format!(
                "no base backup can reach the recovery target {target}: {}",
                reasons.join("; ")
            ))
        }
    })
}

/// What to do once the target is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Stay in recovery, read-only, until `pg_wal_replay_resume()` (PostgreSQL's default).
    Pause,
    /// End recovery and accept writes, on a new timeline.
    Promote,
    /// Stop the server.
    Shutdown,
}

impl Action {
    fn as_str(self) -> &'static str {
        match self {
            Action::Pause => "pause",
            Action::Promote => "promote",
            Action::Shutdown => "shutdown",
        }
    }
}

/// How to prepare a data directory.
#[derive(Debug, Clone)]
pub struct PrepareOptions {
    pub target: Target,
    /// An empty (or missing) directory.
    pub into: PathBuf,
    /// The `restore_command` PostgreSQL runs to fetch each WAL file (`%f`, `%p`).
    pub restore_command: String,
    pub action: Action,
    /// age identity files, for an encrypted base backup.
    pub identity_files: Vec<PathBuf>,
    /// Whether the recovered server keeps the source's WAL archiving (`archive_mode`, `archive_command`):
    /// for a recovery that replaces production. Without it the recovered server archives nothing
    /// (`archive_mode = off`), so a copy started beside production and promoted never pushes its own
    /// timeline into production's archive, where a later recovery to latest would follow it.
    pub archive: bool,
}

/// Recovery settings a recovery writes, with the value that means "unset" (PostgreSQL's default): one
/// left in the configuration by an earlier recovery (a base backup of a server that was itself recovered
/// carries its `postgresql.auto.conf`) would stop this one at the old target, or refuse to start with two.
const RECOVERY_DEFAULTS: [(&str, &str); 8] = [
    ("recovery_target", ""),
    ("recovery_target_lsn", ""),
    ("recovery_target_name", ""),
    ("recovery_target_time", ""),
    ("recovery_target_xid", ""),
    ("recovery_target_inclusive", "on"),
    ("recovery_target_action", "pause"),
    ("recovery_min_apply_delay", "0"),
];

/// The settings among [`RECOVERY_DEFAULTS`] that the data directory's own configuration files set.
fn earlier_recovery_settings(dir: &Path) -> Vec<&'static str> {
    let mut text = String::new();
    for file in ["postgresql.conf", "postgresql.auto.conf"] {
        if let Ok(t) = std::fs::read_to_string(dir.join(file)) {
            text.push_str(&t);
            text.push('\n');
        }
    }
    let set: Vec<String> = text
        .lines()
        .map(|l| l.trim_start())
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split(|c: char| c == '=' || c.is_whitespace()).next())
        .map(str::to_ascii_lowercase)
        .collect();
    RECOVERY_DEFAULTS.iter().map(|(name, _)| *name).filter(|name| set.iter().any(|s| s == name)).collect()
}

/// What [`prepare`] did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Prepared {
    /// The base backup used.
    pub base: String,
    pub into: PathBuf,
    pub target: String,
    pub files: u64,
    pub bytes: u64,
    /// The recovery settings appended to `postgresql.auto.conf`.
    pub settings: Vec<(String, String)>,
    /// The (uid, gid) the files were given, when they were handed to the directory's owner.
    pub owner: Option<(u32, u32)>,
    /// Files written that the base backup did not hold (besides `recovery.signal`).
    pub added: Vec<String>,
}

/// The effective user id of this process (the owner of `/proc/self`).
fn euid() -> u32 {
    std::fs::metadata("/proc/self").map(|m| m.uid()).unwrap_or(u32::MAX)
}

/// Who the data directory's files must belong to: when running as root, the owner of the directory (of
/// its parent when it is created here), which must not be root (PostgreSQL refuses to run as root);
/// otherwise this user.
fn data_owner(dir: &Path, created: bool) -> Result<Option<(u32, u32)>> {
    if euid() != 0 {
        return Ok(None);
    }
    // A directory created here takes its parent's owner (as it would by `install -d` from that user).
    let owner_of = if created { dir.parent().unwrap_or(dir) } else { dir };
    let meta = std::fs::metadata(owner_of).map_err(|e| Error::io(owner_of, e))?;
    if meta.uid() == 0 {
        return Err(Error::Invalid(format!(
            "{}: running as root, the data directory's files are given to the owner of {}, and it is \
             root: PostgreSQL refuses to run as root; create the directory owned by the server's user (e.g. \
             `install -d -o postgres -g postgres -m 700 {}`)",
            dir.display(),
            owner_of.display(),
            dir.display()
        )));
    }
    Ok(Some((meta.uid(), meta.gid())))
}

/// Unpacks `base` into `options.into` (refusing a non-empty directory) and writes `recovery.signal` and the
/// recovery settings, ready for `pg_ctl start`. On failure the directory is emptied again.
pub fn prepare(store: &Store, base: &BaseManifest, options: &PrepareOptions) -> Result<Prepared> {
    let dir = &options.into;
    let created = match std::fs::read_dir(dir) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                return Err(Error::Invalid(format!(
                    "{}: the directory is not empty; recovery needs an empty (or missing) directory",
                    dir.display()
                )));
            }
            false
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
            true
        }
        Err(e) => return Err(Error::io(dir, e)),
    };
    let owner = match data_owner(dir, created).and_then(|owner| {
        chown(dir, owner)?;
        Ok(owner)
    }) {
        Ok(owner) => owner,
        Err(e) => {
            if created {
                let _ = std::fs::remove_dir(dir);
            }
            return Err(e);
        }
    };
    let outcome = unpack_and_configure(store, base, options, owner);
    if outcome.is_err() {
        empty(dir);
    }
    outcome
}

/// Removes everything inside `dir` (not `dir` itself).
pub(crate) fn empty(dir: &Path) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            let _ = if entry.file_type().is_ok_and(|t| t.is_dir()) {
                std::fs::remove_dir_all(&path)
            } else {
                std::fs::remove_file(&path)
            };
        }
    }
}

fn unpack_and_configure(
    store: &Store,
    base: &BaseManifest,
    options: &PrepareOptions,
    owner: Option<(u32, u32)>,
) -> Result<Prepared> {
    let dir = &options.into;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(|e| Error::io(dir, e))?;
    let object = base.objects.iter().find(|o| o.name == ARCHIVE).ok_or_else(|| Error::Corrupt {
        id: base.id.clone(),
        object: crate::store::MANIFEST.to_owned(),
        problem: format!("the manifest lists no {ARCHIVE}"),
    })?;
    let identities = crate::crypto::identities(&options.identity_files)?;
    let hashed = std::sync::Arc::new(std::sync::Mutex::new((Sha256::new(), 0u64)));
    let raw = HashingReader { inner: store.open_object(&base.id, ARCHIVE)?, state: hashed.clone() };
    let corrupt =
        |problem: String| Error::Corrupt { id: base.id.clone(), object: ARCHIVE.to_owned(), problem };
    let mut unpacker = Unpacker::new(dir, owner);
    {
        let plain = crate::crypto::plaintext(raw, base.encryption.is_some(), &identities, &base.id, ARCHIVE)?;
        let mut decoder = zstd::Decoder::new(plain).map_err(|e| Error::io(ARCHIVE, e))?;
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = match decoder.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) if matches!(e.kind(), std::io::ErrorKind::InvalidData | std::io::ErrorKind::Other) => {
                    return Err(corrupt(format!("cannot decompress: {e}")));
                }
                Err(e) => return Err(Error::io(ARCHIVE, e)),
            };
            unpacker.write_all(&buf[..n]).map_err(|e| match e.kind() {
                std::io::ErrorKind::InvalidData => corrupt(e.to_string()),
                _ => Error::io(dir, e),
            })?;
        }
        // Read to the end so the hash covers the whole object.
        let mut rest = decoder.finish();
        std::io::copy(&mut rest, &mut std::io::sink()).map_err(|e| Error::io(ARCHIVE, e))?;
    }
    let (sha, stored) = {
        let state = hashed.lock().expect("the hash is never poisoned");
        (hex::encode(state.0.clone().finalize()), state.1)
    };
    if stored != object.size {
        return Err(corrupt(format!("{stored} bytes stored, {} in the manifest", object.size)));
    }
    if sha != object.sha256 {
        return Err(corrupt(format!("SHA-256 {sha}, {} in the manifest", object.sha256)));
    }
    if !unpacker.done() {
        return Err(corrupt("the archive ends before its end-of-archive marker".to_owned()));
    }
    let (files, bytes) = (unpacker.files, unpacker.bytes);
    drop(unpacker);
    for required in ["PG_VERSION", "global/pg_control", "backup_label"] {
        if !dir.join(required).is_file() {
            return Err(corrupt(format!("the archive holds no {required}")));
        }
    }
    // pg_basebackup -X none leaves pg_wal empty; make sure it exists with its archive_status.
    for sub in ["pg_wal", "pg_wal/archive_status"] {
        let path = dir.join(sub);
        if !path.exists() {
            std::fs::create_dir(&path).map_err(|e| Error::io(&path, e))?;
            chown(&path, owner)?;
        }
    }

    let mut settings = vec![("restore_command".to_owned(), options.restore_command.clone())];
    // The last value of a setting wins: an earlier recovery's settings are set back to their defaults
    // first, and those of this recovery come after.
    for name in earlier_recovery_settings(dir) {
        let default = RECOVERY_DEFAULTS.iter().find(|(n, _)| *n == name).map_or("", |(_, v)| v);
        settings.push((name.to_owned(), default.to_owned()));
    }
    match &options.target {
        Target::Latest => {}
        Target::Time { text, .. } => settings.push(("recovery_target_time".to_owned(), text.clone())),
        Target::Lsn(lsn) => settings.push(("recovery_target_lsn".to_owned(), lsn.to_string())),
    }
    if options.target != Target::Latest {
        settings.push(("recovery_target_action".to_owned(), options.action.as_str().to_owned()));
    }
    settings.push(("recovery_target_timeline".to_owned(), "latest".to_owned()));
    if !options.archive {
        settings.push(("archive_mode".to_owned(), "off".to_owned()));
    }
    let mut text = format!(
        "\n# Point-in-time recovery from base backup {} to {}, written by prodready-backup.\n",
        base.id, options.target
    );
    for (name, value) in &settings {
        let _ = writeln!(text, "{name} = '{}'", value.replace('\'', "''"));
    }
    let auto = dir.join("postgresql.auto.conf");
    let existed = auto.exists();
    let mut file =
        std::fs::OpenOptions::new().create(true).append(true).open(&auto).map_err(|e| Error::io(&auto, e))?;
    file.write_all(text.as_bytes()).map_err(|e| Error::io(&auto, e))?;
    file.sync_all().map_err(|e| Error::io(&auto, e))?;
    if !existed {
        std::fs::set_permissions(&auto, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| Error::io(&auto, e))?;
        chown(&auto, owner)?;
    }
    // A server whose configuration lives outside its data directory (Debian keeps it in /etc) backs up
    // none: leave an empty postgresql.conf so the directory starts on its own; the operator adds theirs.
    let conf = dir.join("postgresql.conf");
    let mut added = Vec::new();
    if !conf.exists() {
        added.push("postgresql.conf".to_owned());
        write_new(
            &conf,
            b"# The backed-up server kept its configuration outside the data directory.\n",
            owner,
        )?;
    }
    write_new(&dir.join("recovery.signal"), b"", owner)?;
    Ok(Prepared {
        base: base.id.clone(),
        into: dir.clone(),
        target: options.target.to_string(),
        files,
        bytes,
        settings,
        owner,
        added,
    })
}

fn chown(path: &Path, owner: Option<(u32, u32)>) -> Result<()> {
    if let Some((uid, gid)) = owner {
        std::os::unix::fs::lchown(path, Some(uid), Some(gid)).map_err(|e| Error::io(path, e))?;
    }
    Ok(())
}

fn write_new(path: &Path, bytes: &[u8], owner: Option<(u32, u32)>) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| Error::io(path, e))?;
    file.write_all(bytes).map_err(|e| Error::io(path, e))?;
    file.sync_all().map_err(|e| Error::io(path, e))?;
    chown(path, owner)
}

/// Hashes and counts what is read through it.
struct HashingReader {
    inner: Box<dyn Read + Send>,
    state: std::sync::Arc<std::sync::Mutex<(Sha256, u64)>>,
}

impl Read for HashingReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        let mut state = self.state.lock().expect("the hash is never poisoned");
        state.0.update(&buf[..n]);
        state.1 += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse_into_what_postgres_accepts() {
        assert_eq!(Target::parse("latest").unwrap(), Target::Latest);
        assert_eq!(Target::parse("0/3000060").unwrap(), Target::Lsn(Lsn(0x300_0060)));
        let utc = Target::parse("2026-12-05T10:00:00.123456Z").unwrap();
        assert_eq!(utc.to_string(), "2026-12-05 10:00:00.123456+00");
        let offset = Target::parse("2026-12-05T12:30:00+02:30").unwrap();
        assert_eq!(offset.to_string(), "2026-12-05 10:00:00.000000+00");
        let west = Target::parse("2026-12-05 05:00:00-05:00").unwrap();
        assert_eq!(west.to_string(), "2026-12-05 10:00:00.000000+00");
        for bad in ["yesterday", "2026-12-05", "0/xyz", "2026-13-05T10:00:00Z"] {
            assert!(Target::parse(bad).is_err(), "{bad}");
        }
    }

    fn base(id: &str, timeline: u32, stop: &str, finished_at: &str) -> BaseManifest {
        BaseManifest {
            format: 1,
            kind: "base".to_owned(),
            id: id.to_owned(),
            label: String::new(),
            created_at: finished_at.to_owned(),
            finished_at: finished_at.to_owned(),
            duration_ms: 0,
            start_lsn: stop.to_owned(),
            checkpoint_lsn: stop.to_owned(),
            stop_lsn: stop.to_owned(),
            start_timeline: timeline,
            timeline,
            start_wal_file: String::new(),
            server_version: "15".to_owned(),
            server_version_num: 150_000,
            system_identifier: "1".to_owned(),
            tool_version: String::new(),
            pg_basebackup_version: String::new(),
            compression: crate::manifest::Compression { algorithm: "zstd".to_owned(), level: 3 },
            encryption: None,
            objects: Vec::new(),
            tar_bytes: 0,
            files: 0,
            backup_label: String::new(),
        }
    }

    #[test]
    fn the_newest_base_before_the_target_on_the_history_is_chosen() {
        let bases = [
            base("a", 1, "0/2000100", "2026-12-05T09:00:00Z"),
            base("b", 1, "0/5000100", "2026-12-05T11:00:00Z"),
            base("c", 2, "0/9000100", "2026-12-05T13:00:00Z"),
        ];
        let one = Timelines::from_history(1, None).unwrap();
        let at = |t: &str| Target::parse(t).unwrap();
        assert_eq!(choose(&bases[..2], &at("2026-12-05T10:00:00Z"), &one).unwrap().id, "a");
        assert_eq!(choose(&bases[..2], &at("2026-12-05T12:00:00Z"), &one).unwrap().id, "b");
        assert_eq!(choose(&bases[..2], &Target::Latest, &one).unwrap().id, "b");
        assert_eq!(choose(&bases[..2], &at("0/4000000"), &one).unwrap().id, "a");
        let err = choose(&bases[..2], &at("2026-12-05T08:00:00Z"), &one).unwrap_err().to_string();
        assert!(err.contains("after the target"), "{err}");
        // Timeline 2 branched off timeline 1 at 0/4000000: b (on 1, past the branch) cannot reach it.
        let two = Timelines::from_history(2, Some("1\t0/4000000\tbefore 2026-12-05 10:30:00+00\n")).unwrap();
        assert_eq!(choose(&bases[..2], &Target::Latest, &two).unwrap().id, "a");
        assert_eq!(choose(&bases, &Target::Latest, &two).unwrap().id, "c");
        // A timeline 1 backup cannot serve a timeline 2 history that does not include it at all.
        let three = Timelines::from_history(3, Some("2\t0/9000000\tx\n")).unwrap();
        assert!(choose(&bases[..2], &Target::Latest, &three).is_err());
    }

    #[test]
    fn the_newest_timeline_is_discovered_from_history_files() {
        let mut files = std::collections::HashMap::new();
        files.insert(2u32, "1\t0/4000000\tx\n".to_owned());
        files.insert(3u32, "1\t0/4000000\tx\n2\t0/6000000\ty\n".to_owned());
        let found = Timelines::discover(1, &mut |tli| Ok(files.get(&tli).cloned())).unwrap();
        assert_eq!(found.newest, 3);
        assert_eq!(found.ancestors, vec![(1, Lsn(0x400_0000)), (2, Lsn(0x600_0000))]);
        assert!(Timelines::from_history(2, Some("garbage\n")).is_err());
    }
}
