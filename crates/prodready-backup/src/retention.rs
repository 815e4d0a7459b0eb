//! Grandfather-father-son retention. Pure: [`plan`] decides, the caller deletes.

use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::store::{MANIFEST, Store};
use crate::{Result, catalog};

/// A backup as retention sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub id: String,
    /// Seconds since the epoch of the snapshot.
    pub created_unix: i64,
    /// A full (restore) verification passed.
    pub verified_ok: bool,
}

/// The decision for one backup, with the reasons it is kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    pub id: String,
    pub keep: bool,
    /// `daily`, `weekly`, `monthly`, `minimum`, `newest verified`.
    pub reasons: Vec<String>,
}

/// Decides which backups to keep: the newest backup of each of the last `keep_daily` days,
/// `keep_weekly` ISO weeks and `keep_monthly` months that have backups, the `min_keep` newest, and
/// always the newest verified backup. Returned newest first.
pub fn plan(candidates: &[Candidate], policy: &Retention) -> Vec<Decision> {
    let mut sorted: Vec<&Candidate> = candidates.iter().collect();
    sorted.sort_by(|a, b| b.created_unix.cmp(&a.created_unix).then_with(|| b.id.cmp(&a.id)));
    let mut decisions: Vec<Decision> =
        sorted.iter().map(|c| Decision { id: c.id.clone(), keep: false, reasons: Vec::new() }).collect();

    let day = |c: &Candidate| c.created_unix.div_euclid(86_400);
    // 1970-01-01 was a Thursday: shifting by 3 makes Monday day 0 of each ISO week.
    let week = |c: &Candidate| day(c) - (day(c) + 3).rem_euclid(7);
    let month = |c: &Candidate| {
        // "2026-11-29T..." -> 2026 * 12 + 11
        let t = std::time::UNIX_EPOCH + Duration::from_secs(u64::try_from(c.created_unix).unwrap_or(0));
        let text = humantime::format_rfc3339_seconds(t).to_string();
        let (year, month) = (text[..4].parse::<i64>().unwrap_or(0), text[5..7].parse::<i64>().unwrap_or(0));
        year * 12 + month
    };
    type Bucket<'a> = &'a dyn Fn(&Candidate) -> i64;
    let buckets: [(&str, u32, Bucket<'_>); 3] = [
        ("daily", policy.keep_daily, &day),
        ("weekly", policy.keep_weekly, &week),
        ("monthly", policy.keep_monthly, &month),
    ];
    for (reason, keep, key) in buckets {
        let mut last = None;
        let mut kept = 0;
        for (i, c) in sorted.iter().enumerate() {
            if kept >= keep {
                break;
            }
            let k = key(c);
            if last != Some(k) {
                last = Some(k);
                kept += 1;
                decisions[i].keep = true;
                decisions[i].reasons.push(reason.to_owned());
            }
        }
    }
    for d in decisions.iter_mut().take(policy.min_keep as usize) {
        d.keep = true;
        d.reasons.push("minimum".to_owned());
    }
    if let Some(i) = sorted.iter().position(|c| c.verified_ok) {
        decisions[i].keep = true;
        decisions[i].reasons.push("newest verified".to_owned());
    }
    decisions
}

/// What a prune did (or, on a dry run, would do).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PruneReport {
    pub dry_run: bool,
    /// Every committed backup, newest first, with its fate.
    pub decisions: Vec<Decision>,
    /// Leftovers of interrupted runs (no manifest) removed.
    pub incomplete: Vec<String>,
    /// Multipart uploads of interrupted runs aborted (S3).
    pub aborted_uploads: usize,
    /// Backups whose manifest is unreadable: never deleted by a prune, left for a person to look at.
    pub corrupt: Vec<catalog::CorruptBackup>,
    /// Per cluster with base backups: where the oldest kept base backup starts. WAL before it is needed by
    /// no kept base backup.
    #[serde(default)]
    pub wal_horizons: Vec<WalHorizon>,
    /// Archived WAL files deleted (or, on a dry run, that would be): before the horizon of the cluster the
    /// archive belongs to.
    #[serde(default)]
    pub wal_deleted: Vec<String>,
    /// Why no WAL was pruned although base backups allowed it: a base backup's manifest cannot be read,
    /// and the WAL it may need (a read that failed once may succeed next time) is left alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wal_kept: Option<String>,
}

/// The start of the oldest base backup a cluster keeps: its WAL from here on is needed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WalHorizon {
    pub system_identifier: String,
    /// The kept base backup.
    pub base: String,
    pub timeline: u32,
    pub start_lsn: String,
    /// The WAL segment holding the start point: older segments (of this and earlier timelines) go.
    pub start_wal_file: String,
}

/// Applies [`plan`] to the store: deletes each backup it does not keep (manifest first, so a half-deleted
/// backup is visibly incomplete), and removes leftovers of interrupted runs untouched for longer than
/// `incomplete_older_than` (a running backup writes continually, so it is never idle that long).
///
/// With `database`, only that database's backups are judged (leftovers are cleaned whatever their
/// database). A backup whose manifest cannot be read is never deleted. Without `clean_leftovers` (a
/// backup is running: see [`crate::backup_running`]), leftovers and uploads stay, however old.
pub fn prune(
    store: &Store,
    policy: &Retention,
    database: Option<&str>,
    dry_run: bool,
    clean_leftovers: bool,
    incomplete_older_than: Duration,
) -> Result<PruneReport> {
    let (backups, corrupt) = catalog::list_all(store)?;
    // A store may hold several databases: each keeps its own days, weeks, months and newest verified.
    let databases =
        catalog::databases(&backups).into_iter().filter(|d| database.is_none_or(|only| only == d));
    let mut decisions = Vec::new();
    for database in databases {
        let candidates: Vec<Candidate> = backups
            .iter()
            .filter(|b| b.database == database)
            .map(|b| Candidate {
                id: b.id.clone(),
                created_unix: unix(&b.created_at),
                verified_ok: b.last_verified_ok_at.is_some(),
            })
            .collect();
        decisions.extend(plan(&candidates, policy));
    }
    // Base backups: per cluster, the same policy; the newest one a recovery drill proved is always kept
    // (with the WAL from its start, the newest verified recovery chain stays whole).
    let (bases, base_corrupt) = catalog::list_base(store)?;
    let mut clusters: Vec<&str> = bases.iter().map(|b| b.system_identifier.as_str()).collect();
    clusters.sort_unstable();
    clusters.dedup();
    let mut wal_horizons = Vec::new();
    if database.is_none() {
        for cluster in clusters {
            let candidates: Vec<Candidate> = bases
                .iter()
                .filter(|b| b.system_identifier == cluster)
                .map(|b| Candidate {
                    id: b.id.clone(),
                    created_unix: unix(&b.created_at),
                    verified_ok: b.last_verified_ok_at.is_some(),
                })
                .collect();
            let planned = plan(&candidates, policy);
            // Decisions are newest first: the last kept one is the oldest kept.
            if let Some(oldest) = planned.iter().rev().find(|d| d.keep) {
                let manifest = catalog::base_manifest(store, &oldest.id)?;
                wal_horizons.push(WalHorizon {
                    system_identifier: cluster.to_owned(),
                    base: manifest.id.clone(),
                    timeline: manifest.start_timeline,
                    start_lsn: manifest.start_lsn.clone(),
                    start_wal_file: manifest.start_wal_file.clone(),
                });
            }
            decisions.extend(planned);
        }
    }
    // Uploads a killed run left behind go first, so the ids they belonged to can be judged idle.
    let aborted_uploads = if dry_run || !clean_leftovers {
        0
    } else {
        store.abort_incomplete_uploads(incomplete_older_than)?
    };
    let committed: Vec<&str> = backups
        .iter()
        .map(|b| b.id.as_str())
        .chain(corrupt.iter().map(|c| c.id.as_str()))
        .chain(bases.iter().map(|b| b.id.as_str()))
        .chain(base_corrupt.iter().map(|c| c.id.as_str()))
        .collect();
    let incomplete: Vec<String> = store
        .ids()?
        .into_iter()
        .filter(|_| clean_leftovers)
        .filter(|id| !committed.contains(&id.as_str()))
        .filter(|id| store.idle_for(id).is_some_and(|idle| idle >= incomplete_older_than))
        .collect();
    if !dry_run {
        for d in decisions.iter().filter(|d| !d.keep) {
            store.delete(&d.id, MANIFEST)?;
            store.delete_backup(&d.id)?;
        }
        for id in &incomplete {
            store.delete_backup(id)?;
        }
    }
    // The WAL only pruned base backups needed: before the oldest kept base backup's start, on its timeline
    // and the ones before (history files stay). The newest drilled base backup is kept, so its chain is
    // never broken. Only the archive's own cluster is judged; without base backups no WAL goes.
    let mut wal_deleted = Vec::new();
    let archive = crate::wal::WalArchive::new(store.clone());
    // A manifest that cannot be read may be a base backup's (an unreadable one does not say its kind).
    let unreadable: Vec<&str> = corrupt.iter().chain(&base_corrupt).map(|c| c.id.as_str()).collect();
    let wal_kept = (!unreadable.is_empty() && !wal_horizons.is_empty()).then(|| {
        format!(
            "no WAL pruned: the manifest of backup(s) {} cannot be read, and the WAL a base backup among them \
             may need stays until they are readable or removed",
            unreadable.join(", ")
        )
    });
    if wal_kept.is_none()
        && let Some(info) = archive.info()?
    {
        for h in wal_horizons.iter().filter(|h| h.system_identifier == info.system_identifier) {
            let lsn = h.start_lsn.parse::<crate::wal::Lsn>()?;
            wal_deleted.extend(archive.prune_before(h.timeline, lsn, dry_run)?.deleted);
        }
    }
    let mut corrupt = corrupt;
    corrupt.extend(base_corrupt);
    Ok(PruneReport {
        dry_run,
        decisions,
        incomplete,
        aborted_uploads,
        corrupt,
        wal_horizons,
        wal_deleted,
        wal_kept,
    })
}

/// Seconds since the epoch of an RFC 3339 time (0 when unreadable: such a backup sorts oldest).
pub fn unix(rfc3339: &str) -> i64 {
    humantime::parse_rfc3339(rfc3339)
        .ok()
        .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
        .and_then(|d| i64::try_from(d.as_secs()).ok())
        .unwrap_or(0)
}

/// Grandfather-father-son retention: how many daily, weekly and monthly backups to keep, with a floor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Retention {
    pub keep_daily: u32,
    pub keep_weekly: u32,
    pub keep_monthly: u32,
    /// Never keep fewer backups than this, whatever their age.
    pub min_keep: u32,
}

impl Default for Retention {
    fn default() -> Self {
        Self { keep_daily: 7, keep_weekly: 4, keep_monthly: 6, min_keep: 3 }
    }
}
