//! How fresh a database's backups are: the newest backup, the newest backup proven by a restore, their
//! ages, and a verdict against limits. The one definition the checklist's backup check, `status` reports
//! and the metrics share.

use std::time::Duration;

use serde::Serialize;

use crate::catalog::BackupInfo;
use crate::retention::unix;

/// The newest backup and the newest backup verified by restore, with their ages.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Freshness {
    /// The newest committed backup.
    pub newest: Option<BackupInfo>,
    /// How old it is.
    #[serde(rename = "newest_age_seconds", serialize_with = "seconds")]
    pub newest_age: Option<Duration>,
    /// The backup with the newest successful restore verification.
    pub verified: Option<BackupInfo>,
    /// How long ago that verification was.
    #[serde(rename = "verified_age_seconds", serialize_with = "seconds")]
    pub verified_age: Option<Duration>,
}

#[allow(clippy::ref_option)]
fn seconds<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    d.map(|d| d.as_secs()).serialize(s)
}

/// How old the newest backup, and the newest verification by restore, may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_age: Duration,
    pub max_verify_age: Duration,
}

impl Default for Limits {
    /// A daily backup with two hours of slack; a weekly verification with a day of slack.
    fn default() -> Self {
        Self { max_age: Duration::from_secs(26 * 3600), max_verify_age: Duration::from_secs(8 * 86_400) }
    }
}

/// What [`Freshness::judge`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Verdict {
    /// No backup at all.
    NoBackup,
    /// The newest backup is older than the limit.
    TooOld { id: String, age: Duration, limit: Duration },
    /// The newest backup's last verification failed.
    LastVerificationFailed { id: String },
    /// No backup has ever passed a verification by restore.
    NeverVerified { id: String, age: Duration },
    /// The last verification by restore is older than the limit.
    VerificationTooOld { id: String, age: Duration, limit: Duration },
    /// Fresh and proven.
    Fresh { id: String, age: Duration, verified_id: String, verified_age: Duration },
}

impl Freshness {
    /// The freshness of `database`'s backups (of every database's when `None`) in `backups` (as
    /// [`crate::catalog::list`] returns them), at `now_unix`.
    pub fn of(backups: &[BackupInfo], database: Option<&str>, now_unix: i64) -> Self {
        let age = |rfc3339: &str| Duration::from_secs(u64::try_from(now_unix - unix(rfc3339)).unwrap_or(0));
        let mine = || backups.iter().filter(|b| database.is_none_or(|d| b.database == d));
        let newest = mine().max_by(|a, b| a.created_at.cmp(&b.created_at)).cloned();
        let verified = mine()
            .filter(|b| b.last_verified_ok_at.is_some())
            .max_by(|a, b| a.last_verified_ok_at.cmp(&b.last_verified_ok_at))
            .cloned();
        Self {
            newest_age: newest.as_ref().map(|b| age(&b.created_at)),
            verified_age: verified.as_ref().and_then(|b| b.last_verified_ok_at.as_deref()).map(age),
            newest,
            verified,
        }
    }

    /// Whether no backup has passed a verification by restore within `max_verify_age` (a backup never
    /// verified is stale too): the rule behind [`Verdict::NeverVerified`] and
    /// [`Verdict::VerificationTooOld`].
    pub fn verification_stale(&self, max_verify_age: Duration) -> bool {
        self.verified_age.is_none_or(|age| age > max_verify_age)
    }

    /// The first problem against `limits`, in the order an operator should fix them, or `Fresh`.
    pub fn judge(&self, limits: &Limits) -> Verdict {
        let (Some(newest), Some(newest_age)) = (&self.newest, self.newest_age) else {
            return Verdict::NoBackup;
        };
        if newest_age > limits.max_age {
            return Verdict::TooOld { id: newest.id.clone(), age: newest_age, limit: limits.max_age };
        }
        if newest.verify_ok == Some(false) {
            return Verdict::LastVerificationFailed { id: newest.id.clone() };
        }
        let (Some(verified), Some(verified_age)) = (&self.verified, self.verified_age) else {
            return Verdict::NeverVerified { id: newest.id.clone(), age: newest_age };
        };
        if self.verification_stale(limits.max_verify_age) {
            return Verdict::VerificationTooOld {
                id: verified.id.clone(),
                age: verified_age,
                limit: limits.max_verify_age,
            };
        }
        Verdict::Fresh {
            id: newest.id.clone(),
            age: newest_age,
            verified_id: verified.id.clone(),
            verified_age,
        }
    }
}

/// Unix seconds of the newest committed backup and of the newest successful restore verification of
/// `database`, for the metrics.
pub fn last_success_and_verification(backups: &[BackupInfo], database: &str) -> (Option<i64>, Option<i64>) {
    let of = backups.iter().filter(|b| b.database == database);
    let success = of.clone().map(|b| unix(&b.created_at)).max();
    let verified = of.filter_map(|b| b.last_verified_ok_at.as_deref()).map(unix).max();
    (success, verified)
}
