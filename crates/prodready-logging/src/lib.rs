//! Structured JSON logs, request logging, a Loki client and a log-shipping agent.
//!
//! Today this crate holds the typed `[logging]` configuration section; the subscriber set-up, the tower
//! layer, the Loki client and `logs ship` land with their issue. The crate never reads files or
//! environment variables by itself and never installs a global subscriber unless asked.

mod config;

pub use config::{LogFormat, LoggingConfig, ShipConfig};
