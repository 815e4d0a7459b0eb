//! Prometheus exposition, RED metrics, alert rule packs, SLO burn-rate alerts and Alertmanager routing.
//!
//! Today this crate holds the typed `[alerts]` configuration section; exposition, rule generation, the
//! linter and Alertmanager generation land with their issue. The crate never reads files or environment
//! variables by itself.

mod config;

pub use config::AlertsConfig;
