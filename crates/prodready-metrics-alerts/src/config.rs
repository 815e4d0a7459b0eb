use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The `[alerts]` section of `prodready.toml`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AlertsConfig {
    /// Prometheus scrape interval the rules are written for (rate() ranges are at least 4 of these).
    #[serde(with = "humantime_serde")]
    pub scrape_interval: Duration,
    /// Where `alerts generate` writes rule files.
    pub rules_dir: PathBuf,
    /// Base of every alert's `runbook_url`; the alert's anchor is appended.
    pub runbook_base_url: String,
    /// The Prometheus server that scrapes the platform (the checklist asks it which targets are up).
    pub prometheus_url: String,
    /// A file holding the Slack incoming-webhook URL (never the URL itself).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slack_webhook_file: Option<PathBuf>,
}

impl Default for AlertsConfig {
    fn default() -> Self {
        Self {
            scrape_interval: Duration::from_secs(15),
            rules_dir: PathBuf::from("deploy/prometheus/rules"),
            runbook_base_url: "docs/runbook.md".to_owned(),
            prometheus_url: "http://127.0.0.1:9090".to_owned(),
            slack_webhook_file: None,
        }
    }
}
