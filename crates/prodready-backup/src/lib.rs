//! Verified, consistent PostgreSQL backups.
//!
//! This crate will hold the backup engine (one exported snapshot shared by parallel COPY streams, zstd,
//! optional age encryption, SHA-256 per object), the stores (local directory, S3), verification by
//! restore, retention and scheduling. Today it holds the typed `[backup]` configuration section that the
//! `prodready` binary reads from `prodready.toml`.
//!
//! The crate never reads files or environment variables by itself: callers build a [`BackupConfig`]
//! (usually by deserializing it) and pass it in.

mod config;

pub use config::{BackupConfig, Retention};
