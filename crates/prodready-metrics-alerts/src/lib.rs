//! Prometheus alerting for a web platform: a built-in rule pack with unit tests, SLO burn-rate alerts in
//! Sloth's format, Alertmanager routing to Slack, Grafana dashboards, and an offline rule linter.
//!
//! This is the generating half; the run-time half (the registry, exposition, the RED layer, the metric
//! names the rules watch) is `prodready-metrics`, which services and exporters link without pulling in a
//! PromQL parser or YAML.
//!
//! The crate never reads environment variables or configuration files by itself; functions that touch
//! files take their paths explicitly.

pub mod alertmanager;
mod error;
pub mod grafana;
pub mod lint;
pub mod pack;
pub mod pagerduty;
pub mod promtool;
pub mod rules;
pub mod slack;
pub mod slo;

pub use error::{Error, Result};
/// The metric names the rules and dashboards watch (defined in `prodready-metrics`).
pub use prodready_metrics::names;
