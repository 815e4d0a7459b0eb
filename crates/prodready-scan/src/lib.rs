//! Security scanning: secrets in a tree or in git history ([`secrets`]), and locked dependency
//! versions against offline advisories ([`deps`]), reported as text, JSON, SARIF 2.1.0 or JUnit
//! ([`report`]).
//!
//! The crate reads only the paths and databases its caller names; it never reads the environment.

pub mod deps;
mod error;
pub mod report;
pub mod secrets;

pub use error::{Error, Result};
pub use report::{Finding, Format, Report, Rule, Severity};
