//! The crate's one error type.

/// What can go wrong setting tracing up or sending a trace.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An option or an `OTEL_*` variable is invalid; the message names it and what is accepted.
    #[error("{0}")]
    Invalid(String),
    /// The exporter could not be built.
    #[error("cannot set up the {exporter} exporter: {message}")]
    Exporter { exporter: &'static str, message: String },
    /// The collector did not accept a trace.
    #[error("the collector at {endpoint} did not accept the trace: {message}")]
    Rejected { endpoint: String, message: String },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
