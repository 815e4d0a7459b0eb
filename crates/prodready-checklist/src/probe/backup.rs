use std::time::Duration;

use prodready_backup::catalog;
use prodready_backup::freshness::{Freshness, Limits, Verdict};

use super::Finding;
use crate::run::StoreOpener;
use crate::spec::BackupCheck;

/// The newest backup is fresh, and the newest backup that passed a restore verification was verified
/// recently: a backup nobody has restored is a hope, not a backup.
pub(super) async fn probe(check: &BackupCheck, stores: &StoreOpener, now_unix: i64) -> Finding {
    let (location, opener) = (check.store.clone(), stores.clone());
    let listed = tokio::task::spawn_blocking(move || {
        let store = opener.open(&location)?;
        let backups = catalog::list(&store)?;
        let archive = prodready_backup::wal::WalArchive::new(store.clone());
        let wal = match archive.info()? {
            // With the archive: when a recovery drill from a base backup last passed.
            Some(_) => {
                let (bases, _) = catalog::list_base(&store)?;
                let drilled =
                    catalog::last_drill(&bases).map(|(_, at)| prodready_backup::retention::unix(at));
                Some((archive.status(now_unix)?, drilled))
            }
            None => None,
        };
        Ok::<_, crate::run::OpenError>((backups, wal))
    })
    .await;
    let (backups, wal) = match listed {
        Ok(Ok(list)) => list,
        Ok(Err(e)) => {
            return Finding::error(format!("{}: {}", check.store, prodready_stdx::error::chain(&*e)));
        }
        Err(e) => return Finding::error(format!("{}: {e}", check.store)),
    };
    let freshness = Freshness::of(&backups, check.database.as_deref(), now_unix);
    let limits = Limits { max_age: check.max_age, max_verify_age: check.max_verify_age };
    let show =
        |d: Duration| humantime::format_duration(Duration::from_secs(d.as_secs() / 60 * 60)).to_string();
    let limit = |d: Duration| humantime::format_duration(d).to_string();
    let of = check.database.as_ref().map(|d| format!(" of {d}")).unwrap_or_default();
    let finding = match freshness.judge(&limits) {
        Verdict::NoBackup => Finding::fail(format!("no backup{of} in {}", check.store)),
        Verdict::TooOld { id, age, limit: max } => {
            Finding::fail(format!("newest backup{of} {id} is {} old (limit {})", show(age), limit(max)))
        }
        Verdict::LastVerificationFailed { id } => {
            Finding::fail(format!("the newest backup{of} {id} failed its last verification"))
        }
        Verdict::NeverVerified { id, age } => Finding::fail(format!(
            "newest backup{of} {id} is {} old, but no backup has passed a restore verification",
            show(age)
        )),
        Verdict::VerificationTooOld { id, age, limit: max } => Finding::fail(format!(
            "the last restore verification{of} (backup {id}) was {} ago (limit {})",
            show(age),
            limit(max)
        )),
        Verdict::Fresh { id, age, verified_id, verified_age } => Finding::pass(format!(
            "newest backup{of} {id} is {} old; backup {verified_id} verified by restore {} ago",
            show(age),
            show(verified_age)
        )),
        _ => Finding::error("unknown backup verdict".to_owned()),
    };
    match wal {
        Some((status, drilled)) => {
            let drilled = drilled.map(|at| Duration::from_secs(u64::try_from(now_unix - at).unwrap_or(0)));
            with_recovery_point(finding, &status, drilled, show)
        }
        None => finding,
    }
}

/// The recovery point the WAL archive actually reaches, beside the backups' verdict: the age of the newest
/// archived WAL file, and how long ago a recovery drill from a base backup last passed (`drilled`).
/// Missing segments fail the check: recovery cannot cross them.
fn with_recovery_point(
    finding: Finding,
    status: &prodready_backup::wal::ArchiveStatus,
    drilled: Option<Duration>,
    show: impl Fn(Duration) -> String,
) -> Finding {
    let point = match &status.newest {
        Some(n) if n.age_seconds < 60 => format!("WAL archived up to under a minute ago ({})", n.name),
        Some(n) => {
            format!("WAL archived up to {} ago ({})", show(Duration::from_secs(n.age_seconds)), n.name)
        }
        None => "the WAL archive is empty".to_owned(),
    };
    let point = match drilled {
        Some(age) if age < Duration::from_secs(60) => {
            format!("{point}; recovery proven by a drill under a minute ago")
        }
        Some(age) => format!("{point}; recovery proven by a drill {} ago", show(age)),
        None => format!("{point}; no recovery drill has passed yet"),
    };
    let missing: u64 = status.gaps.iter().map(|g| g.missing).sum();
    if missing > 0 {
        let first = &status.gaps[0].first;
        return Finding::fail(format!(
            "{}; {point}, but {missing} WAL segments are missing (first {first}): recovery cannot cross the gap",
            finding.summary
        ));
    }
    Finding { summary: format!("{}; {point}", finding.summary), ..finding }
}
