//! Where backups live. The layout is append-only: `<root>/<backup id>/<object>`; `manifest.json` is written
//! last and is the commit marker (a directory without it is not a backup); verification results are new
//! files beside it (`verify-<time>.json`); nothing is rewritten in place.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

use crate::{Error, Result};

/// The file that commits a backup.
pub const MANIFEST: &str = "manifest.json";

/// A backup store.
#[derive(Debug, Clone)]
pub enum Store {
    /// A local directory (the embedded default).
    Local(LocalStore),
    /// An S3 bucket (and prefix).
    #[cfg(feature = "s3")]
    S3(crate::s3::S3Store),
}

impl Store {
    /// A local directory store. `s3://` locations need [`Store::s3`] (feature `s3`).
    pub fn open(location: &str) -> Result<Self> {
        if location.starts_with("s3://") {
            return Err(Error::Invalid(format!(
                "{location}: S3 stores need AWS settings; open them with Store::s3 (this build: {})",
                if cfg!(feature = "s3") { "S3 supported" } else { "without the `s3` feature" }
            )));
        }
        Ok(Store::Local(LocalStore { root: PathBuf::from(location) }))
    }

    /// An S3 store at `s3://BUCKET[/PREFIX]`, with the caller's AWS configuration (credentials, region,
    /// endpoint). Must be called inside a multi-threaded tokio runtime.
    #[cfg(feature = "s3")]
    pub fn s3(sdk: &aws_config::SdkConfig, location: &str, options: &crate::s3::S3Options) -> Result<Self> {
        Ok(Store::S3(crate::s3::S3Store::new(sdk, location, options)?))
    }

    /// A human-readable location.
    pub fn location(&self) -> String {
        match self {
            Store::Local(l) => l.root.display().to_string(),
            #[cfg(feature = "s3")]
            Store::S3(s) => s.location(),
        }
    }

    /// Ids of every directory under the root, committed or not, sorted.
    pub fn ids(&self) -> Result<Vec<String>> {
        match self {
            Store::Local(l) => l.ids(),
            #[cfg(feature = "s3")]
            Store::S3(s) => s.ids(),
        }
    }

    /// Object names (relative paths) of one backup.
    pub fn objects(&self, id: &str) -> Result<Vec<String>> {
        check_id(id)?;
        match self {
            Store::Local(l) => l.objects(id),
            #[cfg(feature = "s3")]
            Store::S3(s) => s.objects(id),
        }
    }

    /// Whether an object exists. Only a definite "not found" is `false`: any other failure is an error, so
    /// a flaky store never makes a committed backup look uncommitted.
    pub fn exists(&self, id: &str, name: &str) -> Result<bool> {
        check_object(id, name)?;
        match self {
            Store::Local(l) => Ok(l.path(id, name).is_file()),
            #[cfg(feature = "s3")]
            Store::S3(s) => s.exists(id, name),
        }
    }

    /// Creates a new object for writing; fails if it already exists (append-only).
    pub fn create(&self, id: &str, name: &str) -> Result<ObjectWriter> {
        check_object(id, name)?;
        match self {
            Store::Local(l) => l.create(id, name),
            #[cfg(feature = "s3")]
            Store::S3(s) => Ok(ObjectWriter::new(name, Sink::S3(s.upload(id, name)))),
        }
    }

    /// Opens an object for reading.
    pub fn open_object(&self, id: &str, name: &str) -> Result<Box<dyn Read + Send>> {
        check_object(id, name)?;
        match self {
            Store::Local(l) => {
                let path = l.path(id, name);
                let file = std::fs::File::open(&path).map_err(|e| store_err(&path, e))?;
                Ok(Box::new(std::io::BufReader::with_capacity(1 << 20, file)))
            }
            #[cfg(feature = "s3")]
            Store::S3(s) => s.open_object(id, name),
        }
    }

    /// Reads a small object whole.
    pub fn read(&self, id: &str, name: &str) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        self.open_object(id, name)?
            .read_to_end(&mut out)
            .map_err(|e| Error::Store { path: format!("{id}/{name}"), source: Box::new(e) })?;
        Ok(out)
    }

    /// Writes a small object whole, atomically (temporary name, then rename).
    pub fn write_atomic(&self, id: &str, name: &str, bytes: &[u8]) -> Result<()> {
        check_object(id, name)?;
        match self {
            Store::Local(l) => l.write_atomic(id, name, bytes),
            #[cfg(feature = "s3")]
            Store::S3(s) => s.put(id, name, bytes),
        }
    }

    /// How long since anything under `id` was last written; `None` when unknown.
    pub fn idle_for(&self, id: &str) -> Option<std::time::Duration> {
        match self {
            Store::Local(l) => {
                let newest = l
                    .objects(id)
                    .ok()?
                    .iter()
                    .filter_map(|name| std::fs::metadata(l.path(id, name)).and_then(|m| m.modified()).ok())
                    .chain(std::fs::metadata(l.root.join(id)).and_then(|m| m.modified()).ok())
                    .max()?;
                newest.elapsed().ok()
            }
            #[cfg(feature = "s3")]
            Store::S3(s) => s.idle_for(id),
        }
    }

    /// Deletes one object.
    pub fn delete(&self, id: &str, name: &str) -> Result<()> {
        check_object(id, name)?;
        match self {
            Store::Local(l) => {
                let path = l.path(id, name);
                std::fs::remove_file(&path).map_err(|e| store_err(&path, e))
            }
            #[cfg(feature = "s3")]
            Store::S3(s) => s.delete(id, name),
        }
    }

    /// Deletes whatever is left of a backup (after its manifest).
    pub fn delete_backup(&self, id: &str) -> Result<()> {
        check_id(id)?;
        match self {
            Store::Local(l) => {
                let dir = l.root.join(id);
                std::fs::remove_dir_all(&dir).map_err(|e| store_err(&dir, e))
            }
            #[cfg(feature = "s3")]
            Store::S3(s) => s.delete_backup(id),
        }
    }

    /// Every object under `id/dir` (the whole of `id` when `dir` is empty), with its last-modified time in
    /// Unix seconds when the store says. Names are relative to `id`, sorted; files of unfinished local
    /// writes (dot-files) are left out.
    pub fn list(&self, id: &str, dir: &str) -> Result<Vec<Listed>> {
        check_id(id)?;
        if !dir.is_empty() {
            check_object(id, dir)?;
        }
        let mut out = match self {
            Store::Local(l) => l.list(id, dir)?,
            #[cfg(feature = "s3")]
            Store::S3(s) => s.list_under(id, dir)?,
        };
        out.retain(|l| !l.name.rsplit('/').next().is_some_and(|f| f.starts_with('.')));
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// Aborts multipart uploads that interrupted runs left behind (S3 only; a no-op elsewhere), returning
    /// how many.
    pub fn abort_incomplete_uploads(&self, older_than: std::time::Duration) -> Result<usize> {
        #[cfg(not(feature = "s3"))]
        let _ = older_than; // Only S3 stores have uploads to abort.
        match self {
            Store::Local(_) => Ok(0),
            #[cfg(feature = "s3")]
            Store::S3(s) => s.abort_incomplete_uploads(older_than),
        }
    }
}

/// One object of a listing ([`Store::list`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// The object's name, relative to its id.
    pub name: String,
    /// Last modified, Unix seconds.
    pub modified_unix: Option<i64>,
}

/// A backup id is one path component of letters, digits, `-`, `_` and `.` (not `.` or `..`): it never
/// leads outside the store.
pub(crate) fn check_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id != "."
        && id != ".."
        && id.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok { Ok(()) } else { Err(outside(id, "", "the backup id is not a plain name")) }
}

/// An object name is a relative path below its backup: no `..`, no empty or absolute part.
pub(crate) fn check_object(id: &str, name: &str) -> Result<()> {
    check_id(id)?;
    let ok = !name.is_empty()
        && !name.starts_with('/')
        && !name.contains('\\')
        && name.split('/').all(|part| !part.is_empty() && part != "." && part != "..");
    if ok { Ok(()) } else { Err(outside(id, name, "the object name leads outside its backup")) }
}

fn outside(id: &str, name: &str, problem: &str) -> Error {
    Error::Corrupt { id: id.to_owned(), object: name.to_owned(), problem: problem.to_owned() }
}

fn store_err(path: &Path, e: std::io::Error) -> Error {
    Error::Store { path: path.display().to_string(), source: Box::new(e) }
}

/// A directory of backups.
#[derive(Debug, Clone)]
pub struct LocalStore {
    root: PathBuf,
}

impl LocalStore {
    fn path(&self, id: &str, name: &str) -> PathBuf {
        self.root.join(id).join(name)
    }

    fn ids(&self) -> Result<Vec<String>> {
        let entries = match std::fs::read_dir(&self.root) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(store_err(&self.root, e)),
        };
        let mut ids: Vec<String> = entries
            .filter_map(|e| e.ok())
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| !n.starts_with('.'))
            .collect();
        ids.sort();
        Ok(ids)
    }

    fn objects(&self, id: &str) -> Result<Vec<String>> {
        fn walk(dir: &Path, base: &Path, out: &mut Vec<String>) -> std::io::Result<()> {
            for entry in std::fs::read_dir(dir)? {
                let entry = entry?;
                let path = entry.path();
                if entry.file_type()?.is_dir() {
                    walk(&path, base, out)?;
                } else if let Ok(rel) = path.strip_prefix(base) {
                    out.push(rel.to_string_lossy().into_owned());
                }
            }
            Ok(())
        }
        let dir = self.root.join(id);
        let mut out = Vec::new();
        walk(&dir, &dir, &mut out).map_err(|e| store_err(&dir, e))?;
        out.sort();
        Ok(out)
    }

    fn list(&self, id: &str, dir: &str) -> Result<Vec<Listed>> {
        fn walk(dir: &Path, base: &Path, out: &mut Vec<Listed>) -> std::io::Result<()> {
            for entry in std::fs::read_dir(dir)? {
                let entry = entry?;
                let path = entry.path();
                let meta = entry.metadata()?;
                if meta.is_dir() {
                    walk(&path, base, out)?;
                } else if let Ok(rel) = path.strip_prefix(base) {
                    let modified_unix = meta
                        .modified()
                        .ok()
                        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                        .and_then(|d| i64::try_from(d.as_secs()).ok());
                    out.push(Listed { name: rel.to_string_lossy().into_owned(), modified_unix });
                }
            }
            Ok(())
        }
        let base = self.root.join(id);
        let start = if dir.is_empty() { base.clone() } else { base.join(dir) };
        let mut out = Vec::new();
        match walk(&start, &base, &mut out) {
            Ok(()) => Ok(out),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(store_err(&start, e)),
        }
    }

    fn create(&self, id: &str, name: &str) -> Result<ObjectWriter> {
        let path = self.path(id, name);
        if let Some(dir) = path.parent() {
            prodready_stdx::fs::create_dir_all_synced(dir).map_err(|e| store_err(dir, e))?;
        }
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| store_err(&path, e))?;
        Ok(ObjectWriter::new(
            name,
            Sink::File { file: std::io::BufWriter::with_capacity(1 << 20, file), path },
        ))
    }

    fn write_atomic(&self, id: &str, name: &str, bytes: &[u8]) -> Result<()> {
        let path = self.path(id, name);
        if path.exists() {
            return Err(store_err(
                &path,
                std::io::Error::new(std::io::ErrorKind::AlreadyExists, "objects are never rewritten"),
            ));
        }
        let dir = path.parent().expect("an object path has a parent");
        prodready_stdx::fs::create_dir_all_synced(dir).map_err(|e| store_err(dir, e))?;
        prodready_stdx::fs::write_atomic(&path, bytes).map_err(|e| store_err(&path, e))
    }
}

/// Where an object's bytes go.
enum Sink {
    File {
        file: std::io::BufWriter<std::fs::File>,
        path: PathBuf,
    },
    #[cfg(feature = "s3")]
    S3(crate::s3::Upload),
}

/// A new object being written: counts and hashes what goes through it.
pub struct ObjectWriter {
    name: String,
    sink: Sink,
    hasher: Sha256,
    size: u64,
}

impl std::fmt::Debug for ObjectWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObjectWriter")
            .field("name", &self.name)
            .field("size", &self.size)
            .finish_non_exhaustive()
    }
}

impl Write for ObjectWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = match &mut self.sink {
            Sink::File { file, .. } => file.write(buf)?,
            #[cfg(feature = "s3")]
            Sink::S3(upload) => upload.write(buf)?,
        };
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match &mut self.sink {
            Sink::File { file, .. } => file.flush(),
            #[cfg(feature = "s3")]
            Sink::S3(_) => Ok(()),
        }
    }
}

impl ObjectWriter {
    fn new(name: &str, sink: Sink) -> Self {
        Self { name: name.to_owned(), sink, hasher: Sha256::new(), size: 0 }
    }

    /// Makes the object durable (fsync, or completes the upload) and returns its manifest entry.
    pub fn finish(self) -> Result<crate::manifest::Object> {
        match self.sink {
            Sink::File { file, path } => {
                let file = file.into_inner().map_err(|e| store_err(&path, e.into_error()))?;
                file.sync_all().map_err(|e| store_err(&path, e))?;
                // The file's entry in its directory, which a power cut could lose with the bytes synced.
                let dir = path.parent().expect("an object path has a parent");
                std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(|e| store_err(dir, e))?;
            }
            #[cfg(feature = "s3")]
            Sink::S3(upload) => upload.complete()?,
        }
        Ok(crate::manifest::Object {
            name: self.name,
            size: self.size,
            sha256: hex::encode(self.hasher.finalize()),
        })
    }
}

/// SHA-256 and size of everything `reader` yields.
pub(crate) fn hash(mut reader: impl Read) -> std::io::Result<(String, u64)> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = reader.read(&mut buf)?;
        if n == 0 {
            return Ok((hex::encode(hasher.finalize()), size));
        }
        hasher.update(&buf[..n]);
        size += n as u64;
    }
}
