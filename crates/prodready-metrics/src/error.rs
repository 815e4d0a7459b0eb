/// What can go wrong writing metrics out.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The textfile could not be written.
    #[error("cannot write the metrics file {path}: {source}")]
    Textfile {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The Pushgateway could not be reached or refused the metrics. `url` carries no credentials.
    #[error("pushgateway {url}: {message}")]
    Push { url: String, message: String },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
