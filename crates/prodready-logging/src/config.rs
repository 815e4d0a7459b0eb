use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

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

/// The `[logging]` section of `prodready.toml`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LoggingConfig {
    /// `tracing-subscriber` env-filter directives, e.g. `info,prodready_backup=debug`.
    pub filter: String,
    pub format: LogFormat,
    /// Loki base URL, e.g. `http://127.0.0.1:3100`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub loki_url: Option<String>,
    /// Static, low-cardinality labels attached to every stream.
    pub labels: BTreeMap<String, String>,
    /// The `logs ship` agent.
    pub ship: ShipConfig,
}

impl Default for LoggingConfig {
    fn default() -> Self {
        Self {
            filter: "info".to_owned(),
            format: LogFormat::Json,
            loki_url: None,
            labels: BTreeMap::new(),
            ship: ShipConfig::default(),
        }
    }
}

/// The `[logging.ship]` section: what the shipping agent tails.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ShipConfig {
    /// File globs to tail.
    pub paths: Vec<String>,
    /// Positions file; `None` means `<data_dir>/positions.json`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub positions: Option<PathBuf>,
    /// Address of the agent's own metrics endpoint, e.g. `127.0.0.1:9080`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metrics_addr: Option<String>,
    /// Fields of JSON lines that become stream labels, e.g. `["level"]` (keep them low-cardinality).
    pub json_labels: Vec<String>,
}
