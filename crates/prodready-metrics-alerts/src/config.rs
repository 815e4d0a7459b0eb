use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The `[alerts]` section of `prodready.toml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
    /// Slack receivers of the generated Alertmanager configuration.
    pub slack: SlackConfig,
    /// Service level objectives turned into burn-rate alerts.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub slos: Vec<crate::slo::SloSpec>,
}

/// The `[alerts.slack]` section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SlackConfig {
    /// A file holding the Slack incoming-webhook URL (never the URL itself).
    pub webhook_file: PathBuf,
    pub critical_channel: String,
    pub warning_channel: String,
}

impl Default for SlackConfig {
    fn default() -> Self {
        Self {
            webhook_file: PathBuf::from("/etc/prodready/slack-webhook"),
            critical_channel: "#alerts-critical".to_owned(),
            warning_channel: "#alerts".to_owned(),
        }
    }
}

impl Default for AlertsConfig {
    fn default() -> Self {
        Self {
            scrape_interval: Duration::from_secs(15),
            rules_dir: PathBuf::from("deploy/prometheus/rules"),
            runbook_base_url: "docs/runbook.md".to_owned(),
            prometheus_url: "http://127.0.0.1:9090".to_owned(),
            slack: SlackConfig::default(),
            slos: Vec::new(),
        }
    }
}
