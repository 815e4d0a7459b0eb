use std::time::Duration;

use prodready_backup::Store;
use prodready_backup::catalog::{self, BackupInfo};
use prodready_backup::retention::unix;

use super::Finding;
use crate::spec::BackupCheck;

/// The newest backup is fresh, and the newest backup that passed a restore verification was verified
/// recently: a backup nobody has restored is a hope, not a backup.
pub async fn probe(check: &BackupCheck, now_unix: i64) -> Finding {
    let location = check.store.clone();
    let listed =
        tokio::task::spawn_blocking(move || Store::open(&location).and_then(|s| catalog::list(&s))).await;
    let backups: Vec<BackupInfo> = match listed {
        Ok(Ok(list)) => {
            list.into_iter().filter(|b| check.database.as_ref().is_none_or(|d| &b.database == d)).collect()
        }
        Ok(Err(e)) => return Finding::error(format!("{}: {e}", check.store)),
        Err(e) => return Finding::error(format!("{}: {e}", check.store)),
    };
    let age = |rfc3339: &str| Duration::from_secs(u64::try_from(now_unix - unix(rfc3339)).unwrap_or(0));
    let show =
        |d: Duration| humantime::format_duration(Duration::from_secs(d.as_secs() / 60 * 60)).to_string();
    let limit = |d: Duration| humantime::format_duration(d).to_string();
    let of = check.database.as_ref().map(|d| format!(" of {d}")).unwrap_or_default();
    let Some(newest) = backups.first() else {
        return Finding::fail(format!("no backup{of} in {}", check.store));
    };
    let newest_age = age(&newest.created_at);
    if newest_age > check.max_age {
        return Finding::fail(format!(
            "newest backup{of} {} is {} old (limit {})",
            newest.id,
            show(newest_age),
            limit(check.max_age)
        ));
    }
    if newest.verify_ok == Some(false) {
        return Finding::fail(format!("the newest backup{of} {} failed its last verification", newest.id));
    }
    let verified = backups
        .iter()
        .filter_map(|b| b.last_verified_ok_at.as_deref().map(|at| (b, at)))
        .max_by_key(|(_, at)| *at);
    let Some((proven, at)) = verified else {
        return Finding::fail(format!(
            "newest backup{of} {} is {} old, but no backup has passed a restore verification",
            newest.id,
            show(newest_age)
        ));
    };
    let verified_age = age(at);
    if verified_age > check.max_verify_age {
        return Finding::fail(format!(
            "the last restore verification{of} (backup {}) was {} ago (limit {})",
            proven.id,
            show(verified_age),
            limit(check.max_verify_age)
        ));
    }
    Finding::pass(format!(
        "newest backup{of} {} is {} old; backup {} verified by restore {} ago",
        newest.id,
        show(newest_age),
        proven.id,
        show(verified_age)
    ))
}
