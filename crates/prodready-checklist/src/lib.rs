//! The production-readiness checklist: checks, scoring, gates and reports.
//!
//! Today this crate holds the typed `[checklist]` configuration section; the checks, the scorecard and
//! the reports land with their issue. The crate knows nothing about AWS and never reads files or
//! environment variables by itself.

mod config;

pub use config::ChecklistConfig;
