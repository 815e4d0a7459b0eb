use std::path::PathBuf;

/// Everything that can go wrong in this crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A bad setting: a filter directive, a URL, a label.
    #[error("{0}")]
    Invalid(String),
    /// The shipping agent was given no path glob.
    #[error("no files to ship: give at least one path glob, e.g. /var/log/app/*.log*")]
    NoPaths,
    /// A global subscriber is already installed.
    #[error(
        "a global tracing subscriber is already installed; use `prodready_logging::layer` to compose instead"
    )]
    AlreadyInitialized,
    /// A file operation failed.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Loki did not take a push or a query.
    #[error("{0}")]
    Loki(String),
}

impl Error {
    #[cfg(feature = "ship")]
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io { path: path.into(), source }
    }

    /// A bad setting (exit code 2 in the binary), as opposed to a failure while running.
    pub fn is_usage(&self) -> bool {
        matches!(self, Error::Invalid(_) | Error::NoPaths)
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
