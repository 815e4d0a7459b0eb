//! The production-readiness checklist: checks, scoring, gates and reports.
//!
//! Declare checks ([`CheckSpec`], usually from `[[checklist.checks]]`) or take the embedded defaults
//! ([`defaults::checks`]), [`run`] them concurrently under per-check timeouts, [`score`] the results into a
//! [`Scorecard`] with must-have gates, and render a [`Report`] as text, Markdown, JSON, JUnit or HTML.
//!
//! ```no_run
//! # async fn example() {
//! use std::sync::Arc;
//! use std::time::Duration;
//! use prodready_checklist::{CheckSpec, RunOptions, Quiet, run, score};
//!
//! let spec: CheckSpec = toml::from_str(r#"
//!     id = "api"
//!     title = "API answers"
//!     category = "Features"
//!     kind = "http"
//!     url = "http://127.0.0.1:8080/healthz"
//!     must_have = true
//! "#).unwrap();
//! let checks = vec![spec.validate().unwrap()];
//! let results = run(&checks, &RunOptions::now(Duration::from_secs(5)), Arc::new(Quiet)).await;
//! let card = score(&results, 7.0);
//! println!("{:?} {:?}", card.overall, card.verdict);
//! # }
//! ```
//!
//! The crate knows nothing about AWS, the `prodready` binary or its configuration file, and never reads
//! environment variables; it reads only the files its checks name.

mod config;
pub mod defaults;
pub mod history;
mod model;
mod probe;
pub mod report;
mod run;
mod score;
mod spec;

use std::path::{Path, PathBuf};

pub use config::{ChecklistConfig, ChecklistFile};
pub use model::{Category, CheckResult, Meta, Status};
pub use report::Report;
pub use run::{Observer, Quiet, RunOptions, run};
pub use score::{CategoryScore, Counts, Scorecard, Verdict, round1, score};
pub use spec::{Check, CheckSpec, Date, ExpectStatus, Kind, KindName};

/// What can go wrong outside a check (a check's own failure is a [`Status`], not an error).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A declared check is inconsistent.
    #[error("check `{id}`: {key}: {message}")]
    InvalidCheck { id: String, key: String, message: String },
    /// Two checks share an id.
    #[error("check `{0}` is declared twice; ids must be unique")]
    DuplicateId(String),
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
}

impl Error {
    fn io(path: &Path, source: std::io::Error) -> Self {
        Self::Io { path: path.to_path_buf(), source }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Validates every declaration and rejects duplicate ids.
pub fn validate_all(specs: &[CheckSpec]) -> Result<Vec<Check>> {
    let mut seen = std::collections::HashSet::new();
    specs
        .iter()
        .map(|s| {
            if !seen.insert(s.id.as_str()) {
                return Err(Error::DuplicateId(s.id.clone()));
            }
            s.validate()
        })
        .collect()
}
