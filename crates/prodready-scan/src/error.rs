//! The crate's one error type.

use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A path the caller named could not be read (or does not exist).
    #[error("{}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A report could not be written.
    #[error("{}: cannot write: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A rules file (the embedded one, or the caller's) is invalid: where (`rules.toml:12`) and what.
    #[error("{origin}: {message}")]
    Rules { origin: String, message: String },
    /// A rule's pattern does not compile.
    #[error("{origin}: rule `{rule}`: {key} does not compile: {source}")]
    Pattern {
        origin: String,
        rule: String,
        key: &'static str,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A baseline file is not one this crate wrote (a JSON report with fingerprints).
    #[error("baseline {}: {message}", path.display())]
    Baseline { path: PathBuf, message: String },
    /// `git` is missing, or refused (not a repository, an unknown revision).
    #[error("git in {}: {message}", repo.display())]
    Git { repo: PathBuf, message: String },
}
