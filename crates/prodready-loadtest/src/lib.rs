//! An open-model HTTP load generator with k6-compatible thresholds and summaries.
//!
//! Today this crate holds the typed `[loadtest]` configuration section; scenarios, executors and
//! summaries land with their issue. The crate never reads files or environment variables by itself.

mod config;

pub use config::LoadtestConfig;
