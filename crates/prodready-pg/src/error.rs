/// What can go wrong reaching PostgreSQL. Messages name the server as `host:port/dbname`, never with
/// the password.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The URL or connection string does not parse, or asks for something unsupported.
    #[error("the database URL is invalid: {0}")]
    InvalidUrl(String),
    /// The TLS settings cannot be used (an unreadable or empty root certificate file).
    #[error("TLS: {0}")]
    Tls(String),
    /// The server could not be reached, refused the login, or failed the TLS checks.
    #[error("cannot connect to {target}: {message}")]
    Connect { target: String, message: String },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
