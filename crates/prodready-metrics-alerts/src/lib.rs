//! Prometheus alerting for a web platform: a built-in rule pack with unit tests, SLO burn-rate alerts in
//! Sloth's format, Alertmanager routing to Slack, and an offline rule linter.
//!
//! The crate never reads environment variables or configuration files by itself; functions that touch
//! files take their paths explicitly.

pub mod alertmanager;
mod config;
mod error;
pub mod exposition;
pub mod grafana;
pub mod lint;
pub mod names;
pub mod pack;
pub mod promtool;
pub mod rules;
pub mod slack;
pub mod slo;

pub use config::{AlertsConfig, SlackConfig};
pub use error::{Error, Result};
