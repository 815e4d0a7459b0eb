use std::path::PathBuf;

/// Everything that can go wrong in this crate. No variant ever carries a secret value: messages name the
/// secret, the file, the line and the fix.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No secret with this name.
    #[error("no secret `{0}`")]
    NotFound(String),
    /// The secret exists but has no version with this id or stage.
    #[error("secret `{name}` has no version {version}")]
    VersionNotFound { name: String, version: String },
    /// The secret is scheduled for deletion.
    #[error("secret `{name}` is scheduled for deletion on {purge_after}; it cannot be read or changed")]
    ScheduledForDeletion { name: String, purge_after: String },
    /// `restore` of a secret that is not scheduled for deletion.
    #[error("secret `{0}` is not scheduled for deletion; there is nothing to restore")]
    NotScheduled(String),
    /// `rollback` needs a previous version.
    #[error("secret `{0}` has no AWSPREVIOUS version to roll back to")]
    NoPreviousVersion(String),
    /// The backend cannot do this (the environment backend is read-only).
    #[error("the {backend} backend cannot {operation}: {hint}")]
    Unsupported { backend: &'static str, operation: &'static str, hint: &'static str },
    /// A name or argument that cannot be accepted.
    #[error("{0}")]
    Invalid(String),
    /// A value over the Secrets Manager limit.
    #[error("the value of `{name}` is {size} bytes; a secret holds at most 65536 bytes")]
    TooLarge { name: String, size: usize },
    /// A key file that others can read.
    #[error(
        "key file {path} is readable by group or others (mode {mode:o}); run `chmod 600 {path}` and rotate \
         the key if others may have read it"
    )]
    KeyPermissions { path: PathBuf, mode: u32 },
    /// The store exists but its key file does not.
    #[error("key file {key} is missing, so the existing store {store} cannot be read; restore the key file")]
    KeyMissing { key: PathBuf, store: PathBuf },
    /// A key that is not 32 bytes of hex.
    #[error("{source_name}: not a secrets key ({reason}); a key is 64 hex characters (32 random bytes)")]
    KeyInvalid { source_name: String, reason: String },
    /// The key does not open the store.
    #[error("{key} is not the key of {store}: the store cannot be decrypted with it; nothing was written")]
    WrongKey { key: String, store: PathBuf },
    /// The store file is damaged, or an entry was tampered with.
    #[error("{path}: {problem}")]
    Corrupt { path: PathBuf, problem: String },
    /// A `.env` file that cannot be parsed.
    #[error("{path}:{line}: {message}")]
    DotEnv { path: String, line: usize, message: String },
    /// Two secrets map to one environment variable name.
    #[error("secrets `{first}` and `{second}` both map to the environment variable {var}; rename one")]
    Collision { var: String, first: String, second: String },
    /// A recovery window outside what Secrets Manager accepts.
    #[error("a recovery window is 7 to 30 days, not {0}")]
    RecoveryWindow(u32),
    /// A variable the service needs has no secret.
    #[error("the secret for {0} is missing")]
    MissingVariable(String),
    /// A variable asked for by name (`LoadOptions::only`) that no secret maps to.
    #[error("no secret under prefix `{prefix}` maps to {wanted}")]
    UnknownVariable { wanted: String, prefix: String },
    /// A file operation failed.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// AWS Secrets Manager failed.
    #[error("secrets manager {operation} `{name}`: {source}")]
    Aws {
        operation: &'static str,
        name: String,
        /// Throttling, a 5xx, a timeout or a connection error: worth retrying or serving a cached value.
        transient: bool,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io { path: path.into(), source }
    }

    /// A failure that may go away on its own (throttling, a 5xx, a timeout, a dropped connection). The
    /// caching client serves a stale value on these; every other error is returned at once.
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Aws { transient, .. } => *transient,
            Error::Io { source, .. } => matches!(
                source.kind(),
                std::io::ErrorKind::Interrupted
                    | std::io::ErrorKind::TimedOut
                    | std::io::ErrorKind::WouldBlock
            ),
            _ => false,
        }
    }

    /// The caller asked for something that cannot be (an unknown name, a bad argument, a bad file, a key
    /// that is wrong, missing or too open), as opposed to the store failing.
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            Error::NotFound(_)
                | Error::VersionNotFound { .. }
                | Error::Invalid(_)
                | Error::TooLarge { .. }
                | Error::DotEnv { .. }
                | Error::Collision { .. }
                | Error::RecoveryWindow(_)
                | Error::MissingVariable(_)
                | Error::UnknownVariable { .. }
                | Error::Unsupported { .. }
                | Error::NotScheduled(_)
                | Error::KeyPermissions { .. }
                | Error::KeyMissing { .. }
                | Error::KeyInvalid { .. }
                | Error::WrongKey { .. }
        )
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
