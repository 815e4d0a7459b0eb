use std::path::PathBuf;

/// Everything that can stop a backup, verification, restore or prune.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The database could not be reached (or the URL is invalid).
    #[error("database: {0}")]
    Connect(#[from] prodready_pg::Error),
    /// The database refused or dropped us.
    #[error("database: {0}")]
    Database(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// A PostgreSQL client tool is not installed.
    #[error("`{tool}` is not installed: {hint}")]
    ToolMissing { tool: &'static str, hint: &'static str },
    /// A PostgreSQL client tool failed.
    #[error("`{tool}` failed: {message}")]
    Tool { tool: &'static str, message: String },
    /// Reading or writing the store failed.
    #[error("store: {path}: {source}")]
    Store {
        path: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// No backup with this id (or no backup at all for `latest`).
    #[error("no backup `{0}` in the store")]
    NotFound(String),
    /// The backup is encrypted and no identity (age key) was given.
    #[error("backup {0} is encrypted: it needs the age identity of one of its recipients")]
    IdentityRequired(String),
    /// A stored object does not match its manifest.
    #[error("backup {id} is corrupt: object {object}: {problem}")]
    Corrupt { id: String, object: String, problem: String },
    /// The restore target already holds tables.
    #[error("the target database `{0}` is not empty")]
    TargetNotEmpty(String),
    /// Another backup of the same database holds the lock.
    #[error("another backup of `{0}` is running (it holds the prodready advisory lock)")]
    Locked(String),
    /// The request is inconsistent (a bad URL, a bad duration).
    #[error("{0}")]
    Invalid(String),
    /// A WAL file is already archived with other contents.
    #[error(
        "wal file {name} is already archived with different contents (stored sha256 {stored}, this one {pushed}): \
         refusing to replace it; two clusters may be archiving into one store"
    )]
    WalConflict { name: String, stored: String, pushed: String },
    /// An archived WAL file does not yield what its name says.
    #[error("archived wal object {object} is corrupt: {problem}")]
    WalCorrupt { object: String, problem: String },
    /// A segment of another cluster than the one the archive belongs to.
    #[error(
        "{name} comes from database system {system_identifier}, the wal archive belongs to system {archive}: \
         archive each cluster into a store of its own"
    )]
    WalForeign { name: String, system_identifier: String, archive: String },
    /// A WAL file the background pusher could not archive.
    #[error("wal file {name} not archived: {problem}")]
    WalPushFailed { name: String, problem: String },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    pub(crate) fn db(err: tokio_postgres::Error) -> Self {
        Self::Database(Box::new(err))
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io { path: path.into(), source }
    }

    /// Whether the caller asked for something that cannot be (an unknown id, a bad argument) rather than
    /// the job failing.
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            Error::NotFound(_)
                | Error::IdentityRequired(_)
                | Error::Invalid(_)
                | Error::TargetNotEmpty(_)
                | Error::Connect(prodready_pg::Error::InvalidUrl(_) | prodready_pg::Error::Tls(_))
        )
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
