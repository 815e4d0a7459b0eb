//! An open-model HTTP load generator with k6's contract: scenario files with k6's executors and option
//! names, thresholds in k6's syntax, summaries with k6's metric names and shapes.
//!
//! - [`parse`] reads a scenario file (TOML) into a [`Plan`]; every error names the file, line and key.
//! - [`run`] carries a plan out on the current tokio runtime and returns a [`Report`] whose
//!   [`Summary`] serializes as k6's `handleSummary` data ([`Summary::to_export_json`] gives k6's
//!   `--summary-export` shape, [`Summary::to_text`] the end-of-test text).
//! - [`export_k6`] writes a plan as a k6 script, for teams that keep k6 in CI.
//! - [`RunOptions::segment`] runs one [`Segment`] of a plan (k6's execution segments, `I/N`); each
//!   [`Report`] carries a [`RunResult`] and [`merge`] adds the segments' results up exactly.
//!
//! Arrival-rate executors time each request from when its iteration should have started, so a server
//! that stalls shows in `http_req_duration` instead of vanishing into fewer samples (coordinated
//! omission); `http_req_service_duration` holds the time from the actual send. Latencies go into HDR
//! histograms per worker thread, merged when needed: memory does not grow with the run's length.
//!
//! The crate reads no file and no environment variable by itself: data files named by a scenario are
//! read through the function the caller passes to [`parse`].

mod client;
mod engine;
mod k6;
mod metrics;
mod result;
mod scenario;
mod segment;
mod summary;
mod template;
mod threshold;
mod window;

pub use engine::{OnProgress, Progress, Report, RunOptions, run};
pub use k6::export_k6;
pub use result::{RESULT_FORMAT, RunResult, merge};
pub use scenario::{
    Check, CheckKind, DEFAULT_TREND_STATS, Executor, PathStep, Plan, ReadFile, Request, Scenario,
    ScenarioError, Stage, ThinkTime, parse,
};
pub use segment::Segment;
pub use summary::{CheckSummary, Group, MetricSummary, State, Summary, SummaryOptions, ThresholdResult};
pub use threshold::{Aggregation, Expr, Metric, MetricType, Op, Selector, Threshold};

/// What can go wrong.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The scenario file is invalid (the message names file, line and key).
    #[error(transparent)]
    Scenario(#[from] Box<ScenarioError>),
    /// Result files that cannot be merged (the message names the file and why).
    #[error("{0}")]
    Merge(String),
}

/// This crate's result.
pub type Result<T, E = Error> = std::result::Result<T, E>;
