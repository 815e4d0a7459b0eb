//! [`init`] and [`layer`]: the whole logging set-up in one call.

use tracing::Subscriber;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Layer};

use crate::json::JsonLayer;
use crate::loki::{LokiLayer, LokiLayerOptions, LokiStats, LokiWorker};
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// Where local log lines go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Output {
    #[default]
    Stderr,
    Stdout,
    /// No local output (Loki only).
    None,
}

/// Everything [`init`] needs.
#[derive(Debug, Clone)]
pub struct LogConfig {
    /// `tracing-subscriber` env-filter directives, e.g. `info,my_crate=debug`.
    pub filter: String,
    pub format: LogFormat,
    pub output: Output,
    /// Also ship events to Loki.
    pub loki: Option<LokiLayerOptions>,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self { filter: "info".to_owned(), format: LogFormat::Json, output: Output::Stderr, loki: None }
    }
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// One JSON object per line.
    #[default]
    Json,
    /// Human-readable text.
    Text,
}

/// Keeps the Loki worker alive; dropping it flushes queued lines within the shutdown deadline.
#[derive(Debug, Default)]
pub struct LogGuard {
    loki: Option<LokiWorker>,
}

impl LogGuard {
    /// The Loki layer's counters, when Loki output is on.
    pub fn loki_stats(&self) -> Option<&std::sync::Arc<LokiStats>> {
        self.loki.as_ref().map(LokiWorker::stats)
    }
}

/// Parses env-filter directives into a filter, with one clear error.
pub fn filter(directives: &str) -> Result<EnvFilter> {
    EnvFilter::builder().parse(directives).map_err(|e| {
        Error::Invalid(format!(
            "log filter `{directives}`: {e}; expected directives such as `info` or `info,my_crate=debug`"
        ))
    })
}

/// The configured layers (filter, local output, Loki), to compose with others (an OpenTelemetry layer,
/// say) on a registry of the caller's.
pub fn layer<S>(config: &LogConfig) -> Result<(Box<dyn Layer<S> + Send + Sync>, LogGuard)>
where
    S: Subscriber + for<'a> LookupSpan<'a> + Send + Sync,
{
    let filter = filter(&config.filter)?;
    let local: Option<Box<dyn Layer<S> + Send + Sync>> = match (config.output, config.format) {
        (Output::None, _) => None,
        (Output::Stderr, LogFormat::Json) => Some(Box::new(JsonLayer::new(std::io::stderr))),
        (Output::Stdout, LogFormat::Json) => Some(Box::new(JsonLayer::new(std::io::stdout))),
        (Output::Stderr, LogFormat::Text) => {
            Some(Box::new(tracing_subscriber::fmt::layer().with_writer(std::io::stderr)))
        }
        (Output::Stdout, LogFormat::Text) => {
            Some(Box::new(tracing_subscriber::fmt::layer().with_writer(std::io::stdout)))
        }
    };
    let mut guard = LogGuard::default();
    let loki: Option<Box<dyn Layer<S> + Send + Sync>> = match &config.loki {
        Some(options) => {
            let (layer, worker) = LokiLayer::new(options.clone())?;
            guard.loki = Some(worker);
            Some(Box::new(layer))
        }
        None => None,
    };
    let layers = local.into_iter().chain(loki).collect::<Vec<_>>();
    Ok((Box::new(layers.with_filter(filter)), guard))
}

/// Installs the global subscriber: filter, JSON (or text) lines on stderr, and Loki when configured.
/// Keep the guard until the program ends: dropping it flushes what is queued for Loki.
pub fn init(config: &LogConfig) -> Result<LogGuard> {
    let (layer, guard) = layer(config)?;
    tracing_subscriber::registry().with(layer).try_init().map_err(|_| Error::AlreadyInitialized)?;
    Ok(guard)
}
