/// What can go wrong generating or checking rules.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("SLO `{id}`: {message}")]
    InvalidSlo { id: String, message: String },
    /// A rule file that does not parse, or is too large or too deep to try.
    #[error("{0}")]
    Parse(String),
    #[error("{path}: not a Prometheus rule file: {message}")]
    RuleFile { path: String, message: String },
    #[error("`promtool` is not installed: install the Debian package `prometheus` (it ships promtool)")]
    PromtoolMissing,
    #[error("{path}: {source}")]
    Io {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
