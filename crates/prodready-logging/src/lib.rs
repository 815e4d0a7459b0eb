//! Structured JSON logs, request logging, a Loki client and a log-shipping agent.
//!
//! - [`init`] (or [`layer`] to compose): JSON lines with timestamp, level, target, message, fields, span
//!   fields and, with the `otel` feature, `trace_id`/`span_id`; env-filter directives; optional Loki
//!   output through a bounded queue that never blocks. Returns a guard that flushes on drop.
//! - [`RequestLogLayer`]: request ids, one line per request, redaction (tower; axum's route names with
//!   the `axum` feature).
//! - [`loki`]: the push payload (protobuf + raw snappy, or JSON), the client and its retry policy.
//! - [`ship`] (feature `ship`): the promtail-style agent behind `prodready logs ship`.
//! - [`query`]: LogQL `query_range`, behind `prodready logs query`.
//!
//! The crate never reads files or environment variables by itself, and installs a global subscriber only
//! when [`init`] is called.

mod error;
mod init;
mod json;
pub mod loki;
pub mod query;
mod request;
#[cfg(feature = "ship")]
pub mod ship;

pub use error::{Error, Result};
pub use init::{LogConfig, LogFormat, LogGuard, Output, filter, init, layer};
pub use json::JsonLayer;
pub use request::{LoggedBody, RequestId, RequestLog, RequestLogFuture, RequestLogLayer};
