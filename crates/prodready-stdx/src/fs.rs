//! Replacing files atomically.

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

/// How [`AtomicWrite::write`] replaces a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AtomicWrite {
    sync: bool,
    mode: u32,
}

impl Default for AtomicWrite {
    fn default() -> Self {
        Self { sync: true, mode: 0o666 }
    }
}

impl AtomicWrite {
    /// Synced, created with mode `0o666` less the umask (as `File::create` does).
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether the new file and its directory are fsynced (default `true`). Without it the replacement
    /// is still atomic for readers, but a power cut may leave the old bytes (never a mix).
    #[must_use]
    pub fn sync(mut self, sync: bool) -> Self {
        self.sync = sync;
        self
    }

    /// The permission bits of the new file (less the umask), e.g. `0o600` for a file holding secrets.
    #[must_use]
    pub fn mode(mut self, mode: u32) -> Self {
        self.mode = mode;
        self
    }

    /// Replaces `path` with `bytes`: a temporary file in the same directory (`.NAME.PID.N.tmp`, created
    /// exclusively with the chosen mode), written, fsynced, renamed over `path`, then the directory
    /// fsynced. Readers see the old file or the new one, never a mix. The temporary file is removed when
    /// any step fails; one left by a writer that was killed (its process is gone) is removed by the next
    /// write of the same file. The directory must exist.
    pub fn write(&self, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
        self.write_with(path, |file| file.write_all(bytes), |e| e)
    }

    /// [`AtomicWrite::write`] for contents produced as a stream: `fill` writes them into the temporary
    /// file (buffer it as needed), and `path` is replaced only when it returns `Ok`; on its error the
    /// temporary file is removed and `path` left as it was (a download whose hash turns out wrong, say).
    /// `io` turns the errors of the steps around `fill` (create, sync, rename) into the caller's error.
    pub fn write_with<T, E>(
        &self,
        path: &Path,
        fill: impl FnOnce(&mut File) -> Result<T, E>,
        io: impl Fn(std::io::Error) -> E,
    ) -> Result<T, E> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        let name = path.file_name().map_or_else(|| "file".into(), |n| n.to_string_lossy());
        remove_orphans(dir, &name);
        let tmp =
            dir.join(format!(".{name}.{}.{}.tmp", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed)));
        let write = || -> Result<T, E> {
            let mut file =
                OpenOptions::new().write(true).create_new(true).mode(self.mode).open(&tmp).map_err(&io)?;
            let filled = fill(&mut file)?;
            if self.sync {
                file.sync_all().map_err(&io)?;
            }
            drop(file);
            std::fs::rename(&tmp, path).map_err(&io)?;
            Ok(filled)
        };
        let filled = match write() {
            Ok(filled) => filled,
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                return Err(e);
            }
        };
        if self.sync {
            File::open(dir).and_then(|d| d.sync_all()).map_err(&io)?;
        }
        Ok(filled)
    }
}

/// Removes `.NAME.PID.N.tmp` files in `dir` whose writer process no longer exists (killed in the middle of
/// a write). Only where `/proc` tells which processes exist; best effort.
fn remove_orphans(dir: &Path, name: &str) {
    let proc = Path::new("/proc");
    if !proc.join("self").exists() {
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    let prefix = format!(".{name}.");
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let Some(rest) = file_name.to_str().and_then(|n| n.strip_prefix(&prefix)) else { continue };
        let Some((pid, n)) = rest.strip_suffix(".tmp").and_then(|r| r.split_once('.')) else { continue };
        let (Ok(pid), Ok(_)) = (pid.parse::<u32>(), n.parse::<u64>()) else { continue };
        if pid != std::process::id() && !proc.join(pid.to_string()).exists() {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// The permission bits of a file that holds a credential, when the group or others have any access to it
/// (then it must be refused, or ignored as libpq ignores such a password file); `None` when only its owner
/// may touch it.
pub fn open_to_others(meta: &std::fs::Metadata) -> Option<u32> {
    use std::os::unix::fs::PermissionsExt as _;
    let mode = meta.permissions().mode() & 0o777;
    (mode & 0o077 != 0).then_some(mode)
}

/// Creates `path` and its missing ancestors, as `std::fs::create_dir_all` does, and fsyncs the parent of
/// each directory it creates: a file fsynced in a new directory is lost in a power cut with that directory
/// when the directory's own entry was never made durable. Nothing is synced when `path` exists already.
pub fn create_dir_all_synced(path: &Path) -> std::io::Result<()> {
    create_dir_all_synced_mode(path, 0o777)
}

/// [`create_dir_all_synced`], each directory it creates with permission bits `mode` (less the umask),
/// e.g. `0o700` for directories holding secrets.
pub fn create_dir_all_synced_mode(path: &Path, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt as _;
    let mut missing = Vec::new();
    let mut at = path;
    while !at.as_os_str().is_empty() && !at.is_dir() {
        missing.push(at);
        match at.parent() {
            Some(parent) => at = parent,
            None => break,
        }
    }
    for dir in missing.into_iter().rev() {
        match std::fs::DirBuilder::new().mode(mode).create(dir) {
            Ok(()) => {}
            // Another writer made it meanwhile; its entry is synced below all the same.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && dir.is_dir() => {}
            Err(e) => return Err(e),
        }
        let parent = match dir.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        File::open(parent)?.sync_all()?;
    }
    Ok(())
}

/// Replaces `path` with `bytes` atomically and durably: [`AtomicWrite::new`]`.write(path, bytes)`.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    AtomicWrite::new().write(path, bytes)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::{AtomicWrite, write_atomic};

    fn entries(dir: &std::path::Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn replaces_the_file_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        write_atomic(&path, b"one").unwrap();
        write_atomic(&path, b"two").unwrap();
        AtomicWrite::new().sync(false).write(&path, b"three").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"three");
        assert_eq!(entries(dir.path()), ["state.json"]);
    }

    #[test]
    fn a_temporary_file_left_by_a_killed_writer_is_removed_by_the_next_write() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.json");
        // A pid above the kernel's maximum (4194304) never names a live process; ours is alive.
        let orphan = dir.path().join(".store.json.4194305.0.tmp");
        let ours = dir.path().join(format!(".store.json.{}.99.tmp", std::process::id()));
        let other = dir.path().join(".other.json.4194305.0.tmp");
        for file in [&orphan, &ours, &other] {
            std::fs::write(file, b"partial").unwrap();
        }
        write_atomic(&path, b"new").unwrap();
        let ours_name = ours.file_name().unwrap().to_string_lossy().into_owned();
        assert_eq!(entries(dir.path()), [".other.json.4194305.0.tmp", ours_name.as_str(), "store.json"]);
    }

    #[test]
    fn directories_are_created_with_their_ancestors() {
        let dir = tempfile::tempdir().unwrap();
        let deep = dir.path().join("wal/0000000100000000");
        super::create_dir_all_synced(&deep).unwrap();
        assert!(deep.is_dir());
        super::create_dir_all_synced(&deep).unwrap();
        super::create_dir_all_synced(dir.path()).unwrap();
        assert_eq!(entries(dir.path()), ["wal"]);
        // A file in the way is an error, as with create_dir_all.
        std::fs::write(dir.path().join("file"), b"").unwrap();
        let err = super::create_dir_all_synced(&dir.path().join("file/sub")).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::AlreadyExists, "{err}");
        assert!(!dir.path().join("file/sub").exists());
        // With a mode, every directory created gets it.
        super::create_dir_all_synced_mode(&dir.path().join("secrets/store"), 0o700).unwrap();
        for d in ["secrets", "secrets/store"] {
            let mode = std::fs::metadata(dir.path().join(d)).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o700, "{d}");
        }
    }

    #[test]
    fn files_open_to_others_are_told_apart() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("credential");
        for (mode, expected) in [(0o600, None), (0o400, None), (0o640, Some(0o640)), (0o604, Some(0o604))] {
            AtomicWrite::new().mode(0o600).write(&path, b"x").unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            assert_eq!(super::open_to_others(&std::fs::metadata(&path).unwrap()), expected, "{mode:o}");
        }
    }

    #[test]
    fn the_mode_is_applied_to_a_new_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        AtomicWrite::new().mode(0o600).write(&path, b"x").unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    }

    #[test]
    fn a_failed_write_removes_its_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        // Renaming a file over a non-empty directory fails after the temporary file was written.
        let target = dir.path().join("taken");
        std::fs::create_dir(&target).unwrap();
        std::fs::write(target.join("inside"), b"").unwrap();
        assert!(write_atomic(&target, b"x").is_err());
        assert_eq!(entries(dir.path()), ["taken"]);
        assert!(write_atomic(&dir.path().join("missing/file"), b"x").is_err());
    }

    #[test]
    fn a_stream_that_fails_leaves_the_old_file_and_no_temporary_file() {
        use std::io::Write as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("segment");
        std::fs::write(&path, b"old").unwrap();
        let failed: Result<(), String> = AtomicWrite::new().write_with(
            &path,
            |file| {
                file.write_all(b"half").map_err(|e| e.to_string())?;
                Err("hash mismatch".to_owned())
            },
            |e| e.to_string(),
        );
        assert_eq!(failed, Err("hash mismatch".to_owned()));
        assert_eq!(std::fs::read(&path).unwrap(), b"old");
        assert_eq!(entries(dir.path()), ["segment"]);
        let n =
            AtomicWrite::new().write_with(&path, |file| file.write_all(b"new").map(|()| 3), |e| e).unwrap();
        assert_eq!((n, std::fs::read(&path).unwrap()), (3, b"new".to_vec()));
    }
}
