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
    /// The newest verification, if any.
    pub verified_at: Option<String>,
    pub verify_ok: Option<bool>,
    /// When the newest successful full (restore) verification happened.
    pub last_verified_ok_at: Option<String>,
}

/// Every committed backup, newest first.
pub fn list(store: &Store) -> Result<Vec<BackupInfo>> {
    let mut out = Vec::new();
    for id in store.ids()? {
        if !store.exists(&id, MANIFEST)? {
            continue;
        }
        let manifest = read_manifest(store, &id)?;
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
            last_verified_ok_at: verifications
                .iter()
                .rev()
                .find(|v| v.ok && v.mode == "restore")
                .map(|v| v.verified_at.clone()),
        });
    }
    out.sort_by(|a, b| b.created_at.cmp(&a.created_at).then_with(|| b.id.cmp(&a.id)));
    Ok(out)
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
    if !store.exists(&id, MANIFEST)? {
        return Err(Error::NotFound(id));
    }
    read_manifest(store, &id)
}

fn read_manifest(store: &Store, id: &str) -> Result<Manifest> {
    let bytes = store.read(id, MANIFEST)?;
    serde_json::from_slice(&bytes).map_err(|e| Error::Corrupt {
        id: id.to_owned(),
        object: MANIFEST.to_owned(),
        problem: format!("unreadable: {e}"),
    })
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
