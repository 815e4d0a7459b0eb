//! OpenTelemetry tracing for a service in one call, hard to get wrong.
//!
//! - [`init`] builds a tracer provider from [`Options`]: a batch processor (on its own thread, so no
//!   runtime can deadlock it), resource attributes (service name and version, environment, host,
//!   process), parent-based ratio sampling (a trace is kept or dropped whole), W3C trace context and
//!   baggage propagation, and an exporter: OTLP over http/protobuf ([`otlp`]), OTLP over gRPC (feature
//!   `grpc`) or Zipkin's v2 JSON API ([`zipkin`]). It returns a [`Guard`] that flushes and shuts down within a
//!   deadline when dropped, inside or outside a tokio runtime, and never hangs the process.
//! - [`Options::from_env`] applies the `OTEL_*` variables as the specification reads them, from a lookup
//!   the caller passes: this crate never reads the process environment itself.
//! - [`ping`] sends a two-span trace through an exporter and says whether the collector accepted it.
//! - Feature `tower`: [`layer::ServerLayer`] (a span per request, context extracted from `traceparent`)
//!   and [`layer::ClientLayer`] / [`inject`] (context injected into outgoing requests).
//!
//! Nothing global is installed except by [`init`], which sets the global tracer provider and propagator
//! (that is what it is for); a subscriber layer comes from [`Guard::layer`] for the caller to add.

mod error;
mod guard;
mod options;
pub mod otlp;
mod ping;
mod propagation;
mod transport;
pub mod zipkin;

#[cfg(feature = "tower")]
pub mod layer;

pub use error::{Error, Result};
pub use guard::{Guard, init};
pub use options::{
    Batch, Compression, DEFAULT_OTLP_ENDPOINT, DEFAULT_OTLP_GRPC_ENDPOINT, DEFAULT_ZIPKIN_ENDPOINT, Exporter,
    Limits, MAX_QUEUE_SIZE, Options, Propagators, Protocol, Sampler, Tls,
};
pub use ping::ping;
pub use propagation::{current_trace_id, extract, inject};

/// Re-exported so callers use the same versions.
pub use opentelemetry;
pub use tracing_opentelemetry;
