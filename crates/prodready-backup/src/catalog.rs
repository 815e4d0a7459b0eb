//! What is in a store: committed backups, their verifications, leftovers of interrupted runs.

use serde::{Deserialize, Serialize};

use crate::manifest::{Manifest, Verification};
use crate::store::{MANIFEST, Store};
use crate::{Error, Result};

/// One line of `backup list`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BackupInfo {
    pub id: String,
    pub created_at: String,
    pub database: String,
    pub size_bytes: u64,
    pub rows: u64,
    /// The newest verification, if any (quick or by restore).
    pub verified_at: Option<String>,
    pub verify_ok: Option<bool>,
    /// How the newest verification was done: `quick` (hashes only) or `restore`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify_mode: Option<String>,
    /// When the newest successful full (restore) verification happened.
    pub last_verified_ok_at: Option<String>,
}

/// A committed backup whose manifest cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CorruptBackup {
    pub id: String,
    pub problem: String,
}

/// Every committed backup, newest first. Backups whose manifest cannot be read are left out: see
/// [`list_all`] to see them.
pub fn list(store: &Store) -> Result<Vec<BackupInfo>> {
    Ok(list_all(store)?.0)
}

/// Every committed backup, newest first, and those whose manifest is unreadable or names objects outside
/// its backup (one bad manifest never hides the others). A store that cannot be listed is an error.
pub fn list_all(store: &Store) -> Result<(Vec<BackupInfo>, Vec<CorruptBackup>)> {
    let mut out = Vec::new();
    let mut corrupt = Vec::new();
    for id in store.ids()? {
        if crate::store::check_id(&id).is_err() {
            corrupt.push(CorruptBackup { id, problem: "the backup id is not a plain name".to_owned() });
            continue;
        }
        if !store.exists(&id, MANIFEST)? {
            continue;
        }
        let manifest = match read_manifest(store, &id) {
            Ok(manifest) => manifest,
            Err(Error::Corrupt { problem, .. }) => {
                corrupt.push(CorruptBackup { id, problem });
                continue;
            }
            Err(e) => return Err(e),
        };
        let verifications = verifications(store, &id)?;
        let newest = verifications.last();
        out.push(BackupInfo {
            id: id.clone(),
            created_at: manifest.created_at.clone(),
            database: manifest.database.clone(),
            size_bytes: manifest.size_bytes(),
            rows: manifest.rows(),
            verified_at: newest.map(|v| v.verified_at.clone()),
            verify_ok: newest.map(|v| v.ok),
            verify_mode: newest.map(|v| v.mode.clone()),
            last_verified_ok_at: verifications
                .iter()
                .rev()
                .find(|v| v.ok && v.mode == "restore")
                .map(|v| v.verified_at.clone()),
        });
    }
    out.sort_by(|a, b| b.created_at.cmp(&a.created_at).then_with(|| b.id.cmp(&a.id)));
    Ok((out, corrupt))
}

/// The databases `backups` belong to, sorted, each once.
pub fn databases(backups: &[BackupInfo]) -> Vec<String> {
    let mut names: Vec<String> = backups.iter().map(|b| b.database.clone()).collect();
    names.sort();
    names.dedup();
    names
}

/// The manifest of `id`, or of the newest backup for `latest` (of `database`, when given: a store may hold
/// several databases).
pub fn manifest(store: &Store, id: &str, database: Option<&str>) -> Result<Manifest> {
    let id = if id == "latest" {
        list(store)?.into_iter().find(|b| database.is_none_or(|d| b.database == d)).map(|b| b.id).ok_or_else(
            || Error::NotFound(database.map_or_else(|| "latest".to_owned(), |d| format!("latest of {d}"))),
        )?
    } else {
        id.to_owned()
    };
    crate::store::check_id(&id).map_err(|_| Error::NotFound(id.clone()))?;
    if !store.exists(&id, MANIFEST)? {
        return Err(Error::NotFound(id));
    }
    read_manifest(store, &id)
}

fn read_manifest(store: &Store, id: &str) -> Result<Manifest> {
    parse_manifest(id, &store.read(id, MANIFEST)?)
}

/// Parses the manifest of backup `id` and checks that it names itself and only objects inside the
/// backup; anything else is [`Error::Corrupt`].
pub fn parse_manifest(id: &str, bytes: &[u8]) -> Result<Manifest> {
    let corrupt =
        |problem: String| Error::Corrupt { id: id.to_owned(), object: MANIFEST.to_owned(), problem };
    let manifest: Manifest =
        serde_json::from_slice(bytes).map_err(|e| corrupt(format!("unreadable: {e}")))?;
    if manifest.id != id {
        return Err(corrupt(format!("its id `{}` is not its directory's", manifest.id)));
    }
    let named = manifest
        .objects
        .iter()
        .map(|o| o.name.as_str())
        .chain([manifest.schema.as_str()])
        .chain(manifest.tables.iter().flat_map(|t| t.parts.iter().map(String::as_str)));
    for name in named.chain(manifest.large_objects.object.as_deref()) {
        crate::store::check_object(id, name)
            .map_err(|_| corrupt(format!("object `{name}` leads outside the backup")))?;
    }
    Ok(manifest)
}

/// Every recorded verification of `id`, oldest first.
pub fn verifications(store: &Store, id: &str) -> Result<Vec<Verification>> {
    let mut out: Vec<Verification> = store
        .objects(id)?
        .iter()
        .filter(|name| name.starts_with("verify-") && name.ends_with(".json"))
        .filter_map(|name| store.read(id, name).ok())
        .filter_map(|bytes| serde_json::from_slice(&bytes).ok())
        .collect();
    out.sort_by(|a, b| a.verified_at.cmp(&b.verified_at));
    Ok(out)
}

/// Records a verification beside the backup (a new object; nothing is rewritten).
pub fn record(store: &Store, verification: &Verification) -> Result<()> {
    let stamp: String = verification.verified_at.chars().filter(char::is_ascii_alphanumeric).collect();
    let mut name = format!("verify-{stamp}.json");
    let mut n = 1;
    while store.exists(&verification.id, &name)? {
        n += 1;
        name = format!("verify-{stamp}-{n}.json");
    }
    let bytes = serde_json::to_vec_pretty(verification).expect("a verification serializes");
    store.write_atomic(&verification.id, &name, &bytes)
}
