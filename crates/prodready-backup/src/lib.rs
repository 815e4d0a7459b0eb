//! Verified, consistent PostgreSQL backups.
//!
//! - [`backup()`]: one exported snapshot shared by every connection; the schema through
//!   `pg_dump --snapshot`; table data by COPY over several connections (big tables split by ctid range);
//!   sequences and large objects; zstd and SHA-256 per object; `manifest.json` last, as the commit marker.
//! - [`restore()`]: pre-data schema, parallel COPY with every object's hash checked, sequences, large
//!   objects, then indexes and constraints with `pg_restore -j`.
//! - [`verify()`] and [`verify_quick()`]: prove a backup by restoring it into a scratch database (row
//!   counts, amcheck, smoke SQL) or by re-hashing it; the result is stored beside the backup.
//! - [`retention::plan`]: grandfather-father-son retention that never drops the newest verified backup.
//! - [`base_backup`]: a physical base backup (`pg_basebackup` streamed through zstd into the store).
//! - [`pitr`]: point-in-time recovery from a base backup and the WAL archive, and [`drill`] to prove it.
//! - [`wal::WalArchive`]: continuous WAL archiving into the same store (push, fetch, status, verify, prune)
//!   and [`wal_spool`], pushing ready files ahead in parallel or in the background.
//!
//! The crate never reads environment variables or configuration files: callers pass typed options.

mod backup;
mod base;
pub mod catalog;
mod crypto;
pub mod drill;
mod error;
pub mod freshness;
pub mod manifest;
pub mod metrics;
mod pg;
pub mod pitr;
mod post_data;
mod restore;
pub mod retention;
#[cfg(feature = "s3")]
mod s3;
mod store;
mod tar;
mod tools;
mod verify;
pub mod wal;
pub mod wal_spool;

pub use backup::{
    BASE_LOCK_KEY, BackupOptions, DEFAULT_JOBS, DEFAULT_ZSTD_LEVEL, LOCK_KEY, NoProgress, Progress, backup,
    backup_running, new_id,
};
pub use base::{ARCHIVE, BaseManifest, BaseOptions, KIND as BASE_KIND, Lsn, base_backup};
pub use error::{Error, Result};
pub use manifest::Manifest;
pub use restore::{RestoreOptions, RestorePhases, RestoreReport, restore};
pub use retention::Retention;
#[cfg(feature = "s3")]
pub use s3::S3Options;
pub use store::{Listed, MANIFEST, Store};
pub use tools::Tools;
pub use verify::{VerifyOptions, drop_abandoned_scratch, drop_interrupted_scratch, verify, verify_quick};

/// A duration in whole milliseconds, as the reports and manifests record it.
pub(crate) fn ms(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
