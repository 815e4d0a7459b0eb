//! The crate's one error type.

use std::net::SocketAddr;

/// Everything that can go wrong starting or running the daemon.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error(
        "invalid cron expression `{expression}`: {problem} (expected minute hour day-of-month month \
         day-of-week, optionally with seconds first, or @hourly, @daily, @weekly, @monthly, @yearly)"
    )]
    Schedule { expression: String, problem: String },
    #[error("unknown time zone `{0}` (an IANA name such as UTC or Europe/Berlin)")]
    Zone(String),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Pg(#[from] prodready_pg::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
