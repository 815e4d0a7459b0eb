//! The production-readiness checklist: checks, scoring, gates and reports.
//!
//! Declare checks ([`CheckSpec`], from a configuration file or code), [`merge`] them over a default
//! list and [`select`] some, [`run`] them concurrently under per-check timeouts, [`score`] the results into
//! a [`Scorecard`] with must-have gates, and render a [`Report`] as text, Markdown, JSON, JUnit or HTML.
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

pub mod history;
mod model;
mod probe;
pub mod report;
mod run;
mod score;
mod spec;

use std::path::{Path, PathBuf};

pub use model::{Category, CheckResult, Meta, Status};
pub use report::Report;
pub use run::{Observer, OpenError, Quiet, RunOptions, StoreOpener, run};
pub use score::{CategoryScore, Counts, Scorecard, Verdict, round1, score};
pub use spec::{AlertingSource, Check, CheckSpec, CoverageReport, Date, ExpectStatus, Kind, KindName};

/// What can go wrong outside a check (a check's own failure is a [`Status`], not an error).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
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

/// The checks to run: the `declared` ones, and the `defaults` a declared check does not replace (same
/// id). Order: defaults first, then the declared checks, each in the order given.
pub fn merge(defaults: Vec<Check>, declared: Vec<Check>) -> Vec<Check> {
    let mut checks: Vec<Check> =
        defaults.into_iter().filter(|d| !declared.iter().any(|c| c.meta.id == d.meta.id)).collect();
    checks.extend(declared);
    checks
}

/// An id asked for that no check has.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{unknown}: no such check; the checks are: {}", known.join(", "))]
pub struct UnknownCheck {
    pub unknown: String,
    pub known: Vec<String>,
}

/// Splits `checks` into those whose id is in `only` (all of them when `only` is empty) and results for
/// the others, reported as skipped with `reason`. Fails on an id no check has.
pub fn select(
    checks: Vec<Check>,
    only: &[String],
    reason: &str,
) -> std::result::Result<(Vec<Check>, Vec<CheckResult>), UnknownCheck> {
    if only.is_empty() {
        return Ok((checks, Vec::new()));
    }
    if let Some(unknown) = only.iter().find(|id| !checks.iter().any(|c| &&c.meta.id == id)) {
        let known = checks.iter().map(|c| c.meta.id.clone()).collect();
        return Err(UnknownCheck { unknown: unknown.clone(), known });
    }
    let (run, skip): (Vec<Check>, Vec<Check>) = checks.into_iter().partition(|c| only.contains(&c.meta.id));
    let skipped = skip
        .into_iter()
        .map(|c| CheckResult {
            kind: c.kind.name().name().to_owned(),
            meta: c.meta,
            status: Status::Skip,
            summary: reason.to_owned(),
            duration_ms: 0,
        })
        .collect();
    Ok((run, skipped))
}

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
