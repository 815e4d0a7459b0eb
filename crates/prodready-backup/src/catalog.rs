//! What is in a store: committed backups, their verifications, leftovers of interrupted runs.

use serde::{Deserialize, Serialize};

use crate::base::BaseManifest;
use crate::manifest::{Manifest, Verification};
use crate::store::{MANIFEST, Store};
use crate::{Error, Result};

/// One line of `backup list`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BackupInfo {
    /// `logical` (this list) or `base` (see [`BaseInfo`]).
    #[serde(default = "logical")]
    pub kind: String,
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

fn logical() -> String {
    "logical".to_owned()
}

/// One base backup (physical, of a whole cluster), for listings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BaseInfo {
    /// Always `base`.
    pub kind: String,
    pub id: String,
    pub created_at: String,
    /// When the server had ended the backup.
    pub finished_at: String,
    pub system_identifier: String,
    pub server_version: String,
    pub timeline: u32,
    pub start_lsn: String,
    pub stop_lsn: String,
    pub size_bytes: u64,
    /// The newest recovery drill (or quick hash check), if any.
    pub verified_at: Option<String>,
    pub verify_ok: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify_mode: Option<String>,
    /// When the newest successful recovery drill from this base backup happened.
    pub last_verified_ok_at: Option<String>,
}

/// A committed backup whose manifest cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CorruptBackup {
    pub id: String,
    pub problem: String,
}

/// How the problem of a backup whose manifest the store could not give back begins.
const UNREADABLE: &str = "cannot read manifest.json";

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
        // One manifest the store cannot give back (permissions, a damaged disk, an object S3 lost) is
        // that backup's problem, not the store's: the others are still listed.
        let bytes = match store.read(&id, MANIFEST) {
            Ok(bytes) => bytes,
            Err(e) => {
                corrupt.push(CorruptBackup { id, problem: format!("{UNREADABLE}: {e}") });
                continue;
            }
        };
        if is_base(&bytes) {
            continue; // a base backup: see list_base
        }
        let manifest = match parse_manifest(&id, &bytes) {
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
            kind: logical(),
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
/// several databases). `latest` never silently means an older backup because a newer manifest could not
/// be read (it may be a passing fault, or the backup of `database`): that is an error naming it. A
/// manifest that was read and is malformed is left out, as in [`list_all`].
pub fn manifest(store: &Store, id: &str, database: Option<&str>) -> Result<Manifest> {
    let id = if id == "latest" {
        let (backups, corrupt) = list_all(store)?;
        let chosen = backups
            .into_iter()
            .find(|b| database.is_none_or(|d| b.database == d))
            .map(|b| b.id)
            .ok_or_else(|| {
                Error::NotFound(database.map_or_else(|| "latest".to_owned(), |d| format!("latest of {d}")))
            })?;
        // Ids begin with their UTC time, so a later id is a newer backup.
        if let Some(newer) = corrupt
            .iter()
            .filter(|c| c.problem.starts_with(UNREADABLE) && *c.id > *chosen)
            .max_by(|a, b| a.id.cmp(&b.id))
        {
            return Err(Error::Corrupt {
                id: newer.id.clone(),
                object: MANIFEST.to_owned(),
                problem: format!(
                    "{}; it is newer than {chosen}, so `latest` is not taken to mean that one: name a backup \
                     id to use it",
                    newer.problem
                ),
            });
        }
        chosen
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
    let bytes = store.read(id, MANIFEST)?;
    if is_base(&bytes) {
        return Err(Error::Invalid(format!(
            "backup {id} is a physical base backup: it is restored by point-in-time recovery, not into a database"
        )));
    }
    parse_manifest(id, &bytes)
}

/// Whether a manifest is a base backup's (`"kind": "base"`); logical manifests carry no kind.
pub fn is_base(bytes: &[u8]) -> bool {
    #[derive(Deserialize)]
    struct Probe {
        #[serde(default)]
        kind: Option<String>,
    }
    serde_json::from_slice::<Probe>(bytes).is_ok_and(|p| p.kind.as_deref() == Some(crate::base::KIND))
}

/// Parses the manifest of base backup `id`; a logical backup or anything unreadable is [`Error::Corrupt`]
/// or [`Error::Invalid`].
pub fn parse_base_manifest(id: &str, bytes: &[u8]) -> Result<BaseManifest> {
    let corrupt =
        |problem: String| Error::Corrupt { id: id.to_owned(), object: MANIFEST.to_owned(), problem };
    if !is_base(bytes) {
        return Err(Error::Invalid(format!("backup {id} is a logical backup, not a base backup")));
    }
    let manifest: BaseManifest =
        serde_json::from_slice(bytes).map_err(|e| corrupt(format!("unreadable: {e}")))?;
    if manifest.id != id {
        return Err(corrupt(format!("its id `{}` is not its directory's", manifest.id)));
    }
    for object in &manifest.objects {
        crate::store::check_object(id, &object.name)
            .map_err(|_| corrupt(format!("object `{}` leads outside the backup", object.name)))?;
    }
    Ok(manifest)
}

/// The manifest of base backup `id` (`latest`: the newest base backup).
pub fn base_manifest(store: &Store, id: &str) -> Result<BaseManifest> {
    if id == "latest" {
        let mut all = base_manifests(store)?.0;
        all.sort_by(|a, b| a.finished_at.cmp(&b.finished_at).then_with(|| a.id.cmp(&b.id)));
        return all.pop().ok_or_else(|| Error::NotFound("latest base backup".to_owned()));
    }
    crate::store::check_id(id).map_err(|_| Error::NotFound(id.to_owned()))?;
    if !store.exists(id, MANIFEST)? {
        return Err(Error::NotFound(id.to_owned()));
    }
    parse_base_manifest(id, &store.read(id, MANIFEST)?)
}

/// Every committed base backup's manifest (in id order), and the base backups whose manifest is unusable.
pub fn base_manifests(store: &Store) -> Result<(Vec<BaseManifest>, Vec<CorruptBackup>)> {
    let mut out = Vec::new();
    let mut corrupt = Vec::new();
    for id in store.ids()? {
        if crate::store::check_id(&id).is_err() || !store.exists(&id, MANIFEST)? {
            continue;
        }
        // An unreadable manifest is reported by `list_all` (it cannot tell which kind the backup is).
        let Ok(bytes) = store.read(&id, MANIFEST) else { continue };
        if !is_base(&bytes) {
            continue;
        }
        match parse_base_manifest(&id, &bytes) {
            Ok(m) => out.push(m),
            Err(Error::Corrupt { problem, .. }) => corrupt.push(CorruptBackup { id, problem }),
            Err(e) => return Err(e),
        }
    }
    Ok((out, corrupt))
}

/// Every committed base backup, newest first, with its newest recovery drill.
pub fn list_base(store: &Store) -> Result<(Vec<BaseInfo>, Vec<CorruptBackup>)> {
    let (manifests, corrupt) = base_manifests(store)?;
    let mut out = Vec::new();
    for m in manifests {
        let verifications = verifications(store, &m.id)?;
        let newest = verifications.last();
        out.push(BaseInfo {
            kind: crate::base::KIND.to_owned(),
            id: m.id.clone(),
            created_at: m.created_at.clone(),
            finished_at: m.finished_at.clone(),
            system_identifier: m.system_identifier.clone(),
            server_version: m.server_version.clone(),
            timeline: m.timeline,
            start_lsn: m.start_lsn.clone(),
            stop_lsn: m.stop_lsn.clone(),
            size_bytes: m.size_bytes(),
            verified_at: newest.map(|v| v.verified_at.clone()),
            verify_ok: newest.map(|v| v.ok),
            verify_mode: newest.map(|v| v.mode.clone()),
            last_verified_ok_at: verifications
                .iter()
                .rev()
                .find(|v| v.ok && v.mode == crate::drill::MODE)
                .map(|v| v.verified_at.clone()),
        });
    }
    out.sort_by(|a, b| b.created_at.cmp(&a.created_at).then_with(|| b.id.cmp(&a.id)));
    Ok((out, corrupt))
}

/// The base backup whose recovery drill passed most recently, with when it passed (RFC 3339), among
/// `bases` (as [`list_base`] returns them); `None` when no drill has passed.
pub fn last_drill(bases: &[BaseInfo]) -> Option<(&BaseInfo, &str)> {
    bases
        .iter()
        .filter_map(|b| b.last_verified_ok_at.as_deref().map(|at| (b, at)))
        .max_by_key(|&(_, at)| crate::retention::unix(at))
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
