//! The local encrypted store: one JSON file whose entries are sealed one by one with XChaCha20-Poly1305
//! under a 32-byte key. Each seal binds the secret's name and version id as associated data, so an entry
//! copied under another name, or a version swapped for another, fails authentication instead of decrypting.
//!
//! Every write takes an exclusive lock on `<store>.lock`, reads the store, checks the key against the
//! store's key-check seal, and replaces the file with an atomic rename of a fsynced 0600 temporary file:
//! concurrent writers serialize, a crash leaves the old or the new file, and a wrong key writes nothing.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use chacha20poly1305::aead::{Aead as _, KeyInit as _, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use secrecy::{ExposeSecret as _, SecretString};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::store::{
    CURRENT, Delete, PREVIOUS, PutOutcome, Secret, SecretMeta, SecretSource, SecretStore, Version,
    VersionMeta, check_name, check_value,
};
use crate::{Error, Result};

const FORMAT: &str = "prodready-secrets/1";
const KEY_CHECK: &[u8] = b"prodready-secrets key check";
/// Versions kept per secret: the labelled ones always, then the newest unlabelled ones up to this many.
const MAX_VERSIONS: usize = 20;

/// Where the store's key comes from.
#[derive(Debug, Clone)]
pub enum Key {
    /// A key file holding 64 hex characters; it must be mode 0600 (no group or other bits). When neither
    /// the file nor the store exists, the first write creates a random key here with mode 0600.
    File(PathBuf),
    /// The key itself (64 hex characters), e.g. from an environment variable the caller read; `source`
    /// names it in messages.
    Hex { source: String, hex: SecretString },
}

/// The local encrypted store.
#[derive(Debug, Clone)]
pub struct FileStore {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    path: PathBuf,
    lock: PathBuf,
    key: Key,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Document {
    format: String,
    key_check: String,
    secrets: BTreeMap<String, Entry>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    created: String,
    changed: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    purge_after: Option<u64>,
    /// Newest first.
    versions: Vec<Stored>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Stored {
    id: String,
    created: String,
    stages: Vec<String>,
    /// hex(nonce || ciphertext).
    sealed: String,
}

struct Cipher(XChaCha20Poly1305);

impl FileStore {
    /// A store at `path`. Nothing is read or created until the first operation.
    pub fn new(path: impl Into<PathBuf>, key: Key) -> Self {
        let path = path.into();
        let mut lock = path.clone().into_os_string();
        lock.push(".lock");
        Self { inner: Arc::new(Inner { path, lock: lock.into(), key }) }
    }

    /// The store file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Inner) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || f(&inner)).await.map_err(|e| {
            Error::io(&self.inner.path, std::io::Error::other(format!("store task failed: {e}")))
        })?
    }
}

impl SecretSource for FileStore {
    fn backend(&self) -> &'static str {
        "file"
    }

    async fn get(&self, name: &str, version: &Version) -> Result<Secret> {
        check_name(name)?;
        let (name, version) = (name.to_owned(), version.clone());
        self.blocking(move |inner| {
            let Some((doc, cipher)) = inner.read()? else { return Err(Error::NotFound(name)) };
            let entry = doc.live(&name)?;
            let stored = entry.find(&name, &version)?;
            Ok(Secret {
                value: cipher.open(&inner.path, &name, stored)?,
                name,
                version_id: stored.id.clone(),
                stages: stored.stages.clone(),
            })
        })
        .await
    }

    async fn get_current_all(&self, names: &[String]) -> Result<Vec<Result<Secret>>> {
        let names = names.to_vec();
        self.blocking(move |inner| {
            let Some((doc, cipher)) = inner.read()? else {
                return Ok(names.into_iter().map(|n| Err(Error::NotFound(n))).collect());
            };
            Ok(names
                .into_iter()
                .map(|name| {
                    check_name(&name)?;
                    let stored = doc.live(&name)?.find(&name, &Version::Current)?;
                    Ok(Secret {
                        value: cipher.open(&inner.path, &name, stored)?,
                        version_id: stored.id.clone(),
                        stages: stored.stages.clone(),
                        name,
                    })
                })
                .collect())
        })
        .await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<SecretMeta>> {
        let prefix = prefix.to_owned();
        self.blocking(move |inner| {
            let Some((doc, _)) = inner.read()? else { return Ok(Vec::new()) };
            Ok(doc
                .secrets
                .iter()
                .filter(|(name, entry)| name.starts_with(&prefix) && entry.purge_after.is_none())
                .map(|(name, entry)| SecretMeta {
                    name: name.clone(),
                    created: Some(entry.created.clone()),
                    changed: Some(entry.changed.clone()),
                    versions: Some(entry.versions.len()),
                })
                .collect())
        })
        .await
    }
}

impl SecretStore for FileStore {
    async fn put(&self, name: &str, value: &SecretString) -> Result<PutOutcome> {
        let entries = [(name.to_owned(), SecretString::from(value.expose_secret().to_owned()))];
        let mut outcomes = self.put_all(&entries).await?;
        Ok(outcomes.pop().unwrap_or(PutOutcome::Unchanged))
    }

    async fn put_all(&self, entries: &[(String, SecretString)]) -> Result<Vec<PutOutcome>> {
        for (name, value) in entries {
            check_name(name)?;
            check_value(name, value)?;
        }
        let entries: Vec<(String, SecretString)> = entries
            .iter()
            .map(|(name, value)| (name.clone(), SecretString::from(value.expose_secret().to_owned())))
            .collect();
        self.blocking(move |inner| {
            inner.write(|doc, cipher| {
                let mut outcomes = Vec::with_capacity(entries.len());
                for (name, value) in &entries {
                    outcomes.push(put_into(doc, cipher, &inner.path, name, value)?);
                }
                let dirty = outcomes.iter().any(|o| *o != PutOutcome::Unchanged);
                Ok((outcomes, dirty))
            })
        })
        .await
    }

    async fn delete(&self, name: &str, how: Delete) -> Result<()> {
        check_name(name)?;
        let how = how.check()?;
        let name = name.to_owned();
        self.blocking(move |inner| {
            inner.write(|doc, _| {
                match doc.live(&name) {
                    Ok(_) => {}
                    // A secret already scheduled for deletion can still be deleted now.
                    Err(Error::ScheduledForDeletion { .. }) if how == Delete::Now => {}
                    Err(e) => return Err(e),
                }
                match how {
                    Delete::Now => {
                        doc.secrets.remove(&name);
                    }
                    Delete::After { days } => {
                        let entry =
                            doc.secrets.get_mut(&name).ok_or_else(|| Error::NotFound(name.clone()))?;
                        entry.purge_after = Some(unix_now() + u64::from(days) * 86_400);
                        entry.changed = rfc3339_now();
                    }
                }
                Ok(((), true))
            })
        })
        .await
    }

    async fn history(&self, name: &str) -> Result<Vec<VersionMeta>> {
        check_name(name)?;
        let name = name.to_owned();
        self.blocking(move |inner| {
            let Some((doc, _)) = inner.read()? else { return Err(Error::NotFound(name)) };
            Ok(doc
                .live(&name)?
                .versions
                .iter()
                .map(|v| VersionMeta {
                    version_id: v.id.clone(),
                    stages: v.stages.clone(),
                    created: Some(v.created.clone()),
                })
                .collect())
        })
        .await
    }

    async fn restore(&self, name: &str) -> Result<()> {
        check_name(name)?;
        let name = name.to_owned();
        self.blocking(move |inner| {
            inner.write(|doc, _| {
                let entry = doc.secrets.get_mut(&name).ok_or_else(|| Error::NotFound(name.clone()))?;
                if entry.purge_after.take().is_none() {
                    return Err(Error::NotScheduled(name));
                }
                entry.changed = rfc3339_now();
                Ok(((), true))
            })
        })
        .await
    }

    async fn rollback(&self, name: &str) -> Result<VersionMeta> {
        check_name(name)?;
        let name = name.to_owned();
        self.blocking(move |inner| {
            inner.write(|doc, _| {
                doc.live(&name)?;
                let entry = doc.secrets.get_mut(&name).ok_or_else(|| Error::NotFound(name.clone()))?;
                if entry.find(&name, &Version::Stage(PREVIOUS.to_owned())).is_err() {
                    return Err(Error::NoPreviousVersion(name));
                }
                for version in &mut entry.versions {
                    let (current, previous) = (
                        version.stages.iter().any(|s| s == CURRENT),
                        version.stages.iter().any(|s| s == PREVIOUS),
                    );
                    version.stages.retain(|s| s != CURRENT && s != PREVIOUS);
                    if current {
                        version.stages.push(PREVIOUS.to_owned());
                    }
                    if previous {
                        version.stages.push(CURRENT.to_owned());
                    }
                }
                entry.changed = rfc3339_now();
                let now = entry.find(&name, &Version::Current)?;
                Ok((
                    VersionMeta {
                        version_id: now.id.clone(),
                        stages: now.stages.clone(),
                        created: Some(now.created.clone()),
                    },
                    true,
                ))
            })
        })
        .await
    }
}

/// Makes `value` the current version of `name` in `doc`.
fn put_into(
    doc: &mut Document,
    cipher: &Cipher,
    path: &Path,
    name: &str,
    value: &SecretString,
) -> Result<PutOutcome> {
    let now = rfc3339_now();
    let id = uuid::Uuid::new_v4().to_string();
    let fresh = Stored {
        sealed: cipher.seal(name, &id, value.expose_secret().as_bytes())?,
        id,
        created: now.clone(),
        stages: vec![CURRENT.to_owned()],
    };
    let Some(entry) = doc.secrets.get_mut(name) else {
        doc.secrets.insert(
            name.to_owned(),
            Entry { created: now.clone(), changed: now, purge_after: None, versions: vec![fresh] },
        );
        return Ok(PutOutcome::Created);
    };
    if let Some(purge_after) = entry.purge_after {
        return Err(Error::ScheduledForDeletion { name: name.to_owned(), purge_after: rfc3339(purge_after) });
    }
    let mut outcome = PutOutcome::Updated;
    if let Ok(current) = entry.find(name, &Version::Current) {
        match cipher.open(path, name, current) {
            Ok(old) if old.expose_secret() == value.expose_secret() => return Ok(PutOutcome::Unchanged),
            Ok(_) => {}
            // The key is right (checked against the store's key-check seal), so this version was altered:
            // a new value repairs the secret; the damaged version stays for inspection as AWSPREVIOUS.
            Err(Error::Corrupt { .. }) => outcome = PutOutcome::Repaired,
            Err(e) => return Err(e),
        }
    }
    for version in &mut entry.versions {
        version.stages.retain(|s| s != PREVIOUS);
        if version.stages.iter().any(|s| s == CURRENT) {
            version.stages.retain(|s| s != CURRENT);
            version.stages.push(PREVIOUS.to_owned());
        }
    }
    entry.versions.insert(0, fresh);
    entry.changed = now;
    entry.prune();
    Ok(outcome)
}

impl Document {
    fn live(&self, name: &str) -> Result<&Entry> {
        let entry = self.secrets.get(name).filter(|e| !e.purged(unix_now()));
        let entry = entry.ok_or_else(|| Error::NotFound(name.to_owned()))?;
        if let Some(purge_after) = entry.purge_after {
            return Err(Error::ScheduledForDeletion {
                name: name.to_owned(),
                purge_after: rfc3339(purge_after),
            });
        }
        Ok(entry)
    }
}

impl Entry {
    fn purged(&self, now: u64) -> bool {
        self.purge_after.is_some_and(|at| at <= now)
    }

    fn find(&self, name: &str, version: &Version) -> Result<&Stored> {
        let found = match version {
            Version::Current => self.versions.iter().find(|v| v.stages.iter().any(|s| s == CURRENT)),
            Version::Stage(stage) => self.versions.iter().find(|v| v.stages.iter().any(|s| s == stage)),
            Version::Id(id) => self.versions.iter().find(|v| &v.id == id),
        };
        found.ok_or_else(|| Error::VersionNotFound { name: name.to_owned(), version: version.to_string() })
    }

    /// Drops the oldest unlabelled versions beyond [`MAX_VERSIONS`].
    fn prune(&mut self) {
        let mut kept = 0;
        self.versions.retain(|v| {
            kept += 1;
            !v.stages.is_empty() || kept <= MAX_VERSIONS
        });
    }
}

impl Inner {
    /// The store and its cipher under a shared lock, or `None` when there is no store yet.
    fn read(&self) -> Result<Option<(Document, Cipher)>> {
        if !self.path.exists() {
            return Ok(None);
        }
        // A reader needs no write access: without a lock file (and no right to create one), it reads the
        // store as the last atomic rename left it.
        let lock = OpenOptions::new().read(true).open(&self.lock).or_else(|_| self.open_lock());
        if let Ok(lock) = &lock {
            lock.lock_shared().map_err(|e| Error::io(&self.lock, e))?;
        }
        let doc = self.load()?;
        let Some(doc) = doc else { return Ok(None) };
        let (cipher, _) = self.cipher(false)?;
        cipher.check(&self.path, &doc, &self.key)?;
        Ok(Some((doc, cipher)))
    }

    /// Read, change, write, under the exclusive lock. `change` returns its result and whether to write.
    fn write<T>(&self, change: impl FnOnce(&mut Document, &Cipher) -> Result<(T, bool)>) -> Result<T> {
        let dir = self.path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
        if !dir.exists() {
            // Synced in its parent: a store fsynced into a directory a power cut then loses is lost too.
            prodready_stdx::fs::create_dir_all_synced_mode(dir, 0o700).map_err(|e| Error::io(dir, e))?;
        }
        let lock = self.open_lock()?;
        lock.lock().map_err(|e| Error::io(&self.lock, e))?;
        let existing = self.load()?;
        // A first write may need a new key; it is written only if the change writes the store too.
        let (cipher, new_key) = self.cipher(existing.is_none())?;
        let mut doc = match existing {
            Some(doc) => {
                cipher.check(&self.path, &doc, &self.key)?;
                doc
            }
            None => Document {
                format: FORMAT.to_owned(),
                key_check: cipher.seal_raw("key-check", KEY_CHECK)?,
                secrets: BTreeMap::new(),
            },
        };
        let now = unix_now();
        doc.secrets.retain(|_, e| !e.purged(now));
        let (out, dirty) = change(&mut doc, &cipher)?;
        if dirty {
            if let (Some(hex_key), Key::File(path)) = (&new_key, &self.key) {
                write_key_file(path, hex_key)?;
            }
            self.save(&doc)?;
        }
        Ok(out)
    }

    fn open_lock(&self) -> Result<File> {
        OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&self.lock)
            .map_err(|e| Error::io(&self.lock, e))
    }

    fn load(&self) -> Result<Option<Document>> {
        let text = match std::fs::read(&self.path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io(&self.path, e)),
        };
        let doc: Document = serde_json::from_slice(&text).map_err(|e| Error::Corrupt {
            path: self.path.clone(),
            problem: format!("not a secrets store file ({e})"),
        })?;
        if doc.format != FORMAT {
            return Err(Error::Corrupt {
                path: self.path.clone(),
                problem: format!(
                    "store format `{}` is not supported (this version reads {FORMAT})",
                    doc.format
                ),
            });
        }
        Ok(Some(doc))
    }

    /// Replaces the store file: a synced 0600 temporary file renamed over it, then the directory synced.
    fn save(&self, doc: &Document) -> Result<()> {
        let mut bytes = serde_json::to_vec_pretty(doc).map_err(|e| Error::io(&self.path, e.into()))?;
        bytes.push(b'\n');
        prodready_stdx::fs::AtomicWrite::new()
            .mode(0o600)
            .write(&self.path, &bytes)
            .map_err(|e| Error::io(&self.path, e))
    }

    /// The cipher from the configured key; with `create`, a missing key file is created (first use).
    /// The cipher, and the new key when `create` allowed making one (the caller writes it).
    fn cipher(&self, create: bool) -> Result<(Cipher, Option<Zeroizing<String>>)> {
        let mut new_key = None;
        let hex_key: Zeroizing<String> = match &self.key {
            Key::Hex { hex, .. } => Zeroizing::new(hex.expose_secret().trim().to_owned()),
            Key::File(path) => match read_key_file(path)? {
                Some(hex) => hex,
                None if create => {
                    let hex = random_key()?;
                    new_key = Some(hex.clone());
                    hex
                }
                None => {
                    return Err(Error::KeyMissing { key: path.clone(), store: self.path.clone() });
                }
            },
        };
        let source_name = match &self.key {
            Key::Hex { source, .. } => source.clone(),
            Key::File(path) => path.display().to_string(),
        };
        let mut bytes = Zeroizing::new([0u8; 32]);
        // The reason never quotes the key: not even the one bad character.
        let reason = if hex_key.len() == 64 {
            "it holds characters that are not hex digits".to_owned()
        } else {
            format!("it is {} characters long", hex_key.len())
        };
        hex::decode_to_slice(hex_key.as_bytes(), bytes.as_mut_slice())
            .map_err(|_| Error::KeyInvalid { source_name, reason })?;
        Ok((Cipher(XChaCha20Poly1305::new(bytes.as_slice().into())), new_key))
    }
}

fn read_key_file(path: &Path) -> Result<Option<Zeroizing<String>>> {
    let meta = match std::fs::metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(path, e)),
    };
    if let Some(mode) = prodready_stdx::fs::open_to_others(&meta) {
        return Err(Error::KeyPermissions { path: path.to_owned(), mode });
    }
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    Ok(Some(Zeroizing::new(text.trim().to_owned())))
}

fn random_key() -> Result<Zeroizing<String>> {
    let mut bytes = Zeroizing::new([0u8; 32]);
    getrandom::getrandom(bytes.as_mut_slice()).map_err(random_unavailable)?;
    Ok(Zeroizing::new(hex::encode(bytes.as_slice())))
}

/// Writes a new key file with mode 0600; never replaces an existing one.
fn write_key_file(path: &Path, hex_key: &str) -> Result<()> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    prodready_stdx::fs::create_dir_all_synced_mode(dir, 0o700).map_err(|e| Error::io(dir, e))?;
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| Error::io(path, e))?;
    let line = Zeroizing::new(format!("{hex_key}\n"));
    file.write_all(line.as_bytes()).and_then(|()| file.sync_all()).map_err(|e| Error::io(path, e))?;
    // The key file's entry in its directory: without the key, every secret of the store is lost.
    File::open(dir).and_then(|d| d.sync_all()).map_err(|e| Error::io(dir, e))
}

impl Cipher {
    fn seal_raw(&self, aad: &str, plain: &[u8]) -> Result<String> {
        let mut nonce = [0u8; 24];
        getrandom::getrandom(&mut nonce).map_err(random_unavailable)?;
        let aad = format!("{FORMAT}\0{aad}");
        let sealed = self
            .0
            .encrypt(XNonce::from_slice(&nonce), Payload { msg: plain, aad: aad.as_bytes() })
            .map_err(|_| Error::Invalid("encryption failed: the value is too large".to_owned()))?;
        let mut out = hex::encode(nonce);
        out.push_str(&hex::encode(sealed));
        Ok(out)
    }

    fn open_raw(&self, aad: &str, sealed: &str) -> Option<Zeroizing<Vec<u8>>> {
        let bytes = hex::decode(sealed).ok()?;
        if bytes.len() < 24 {
            return None;
        }
        let (nonce, ct) = bytes.split_at(24);
        let aad = format!("{FORMAT}\0{aad}");
        self.0
            .decrypt(XNonce::from_slice(nonce), Payload { msg: ct, aad: aad.as_bytes() })
            .ok()
            .map(Zeroizing::new)
    }

    fn seal(&self, name: &str, version: &str, plain: &[u8]) -> Result<String> {
        self.seal_raw(&format!("{name}\0{version}"), plain)
    }

    fn open(&self, path: &Path, name: &str, stored: &Stored) -> Result<SecretString> {
        let plain = self.open_raw(&format!("{name}\0{}", stored.id), &stored.sealed).ok_or_else(|| Error::Corrupt {
            path: path.to_owned(),
            problem: format!(
                "secret `{name}` version {} fails authentication: it was altered or copied from another entry",
                stored.id
            ),
        })?;
        let text = String::from_utf8(plain.to_vec()).map_err(|e| {
            zeroize::Zeroize::zeroize(&mut e.into_bytes());
            Error::Corrupt {
                path: path.to_owned(),
                problem: format!("secret `{name}` version {} is not UTF-8", stored.id),
            }
        })?;
        Ok(SecretString::from(text))
    }

    fn check(&self, path: &Path, doc: &Document, key: &Key) -> Result<()> {
        match self.open_raw("key-check", &doc.key_check) {
            Some(plain) if plain.as_slice() == KEY_CHECK => Ok(()),
            _ => Err(Error::WrongKey {
                key: match key {
                    Key::File(p) => p.display().to_string(),
                    Key::Hex { source, .. } => source.clone(),
                },
                store: path.to_owned(),
            }),
        }
    }
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn rfc3339(unix: u64) -> String {
    humantime::format_rfc3339_seconds(SystemTime::UNIX_EPOCH + Duration::from_secs(unix)).to_string()
}

fn rfc3339_now() -> String {
    rfc3339(unix_now())
}

fn random_unavailable(e: getrandom::Error) -> Error {
    Error::io(
        "/dev/urandom",
        std::io::Error::other(format!("the operating system's random source failed: {e}")),
    )
}
