//! Prometheus metrics at run time, without the rule generators: the metric names that exporters and
//! alert rules share ([`names`]), a registry rendered as OpenMetrics or the classic text format with
//! content negotiation ([`exposition`]), a RED tower layer, process metrics, and output to a
//! node-exporter textfile ([`textfile`]) or a Pushgateway ([`push`], feature `push`).
//!
//! Every metric prodready emits goes through a [`prometheus_client`] registry and these encoders: no
//! exposition text is written by hand anywhere else. The crate reads no environment variable and no
//! file; the functions that write take their path or URL from the caller.

mod error;
pub mod exposition;
pub mod names;
#[cfg(feature = "push")]
pub mod push;
pub mod textfile;

pub use error::{Error, Result};
/// The registry and metric types, re-exported so callers use the version this crate encodes.
pub use prometheus_client;
