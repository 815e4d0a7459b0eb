//! OpenTelemetry tracing with OTLP export, tower layers and log correlation.
//!
//! Today this crate holds the typed `[tracing]` configuration section; the provider set-up, layers and
//! `trace ping` land with their issue. The crate never reads files or environment variables by itself.

mod config;

pub use config::{Protocol, TracingConfig};
