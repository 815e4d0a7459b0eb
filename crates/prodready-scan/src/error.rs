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
    /// An advisory file does not parse: the file, the line when known, the key, and what is wrong.
    #[error("advisory {}: {message}", place(path, *line))]
    Advisory { path: PathBuf, line: Option<usize>, message: String },
    /// A lockfile (or SBOM) does not parse: the file, the line when known, and what is wrong.
    #[error("lockfile {}: {message}", place(path, *line))]
    Lockfile { path: PathBuf, line: Option<usize>, message: String },
    /// An advisory database directory that cannot be used (holds no advisory at all).
    #[error("advisory database {}: {message}", path.display())]
    Database { path: PathBuf, message: String },
}

/// `path:line`, or `path` without a line.
fn place(path: &std::path::Path, line: Option<usize>) -> String {
    match line {
        Some(line) => format!("{}:{line}", path.display()),
        None => path.display().to_string(),
    }
}
