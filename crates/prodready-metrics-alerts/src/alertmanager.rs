//! Alertmanager configuration: Slack receivers per severity, grouping, repeat intervals, and inhibition of
//! warnings by a critical alert for the same service.

use std::path::PathBuf;

use serde::Serialize;

/// What the generated configuration routes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertmanagerOptions {
    /// A file holding the Slack incoming-webhook URL (Alertmanager reads it; it is never inlined).
    pub slack_webhook_file: PathBuf,
    pub critical_channel: String,
    pub warning_channel: String,
}

#[derive(Serialize)]
struct Config {
    global: Global,
    route: Route,
    inhibit_rules: Vec<Inhibit>,
    receivers: Vec<Receiver>,
}

#[derive(Serialize)]
struct Global {
    resolve_timeout: &'static str,
}

#[derive(Serialize)]
struct Route {
    receiver: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    group_by: Vec<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    group_wait: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    group_interval: Option<&'static str>,
    repeat_interval: &'static str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    matchers: Vec<&'static str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    routes: Vec<Route>,
}

#[derive(Serialize)]
struct Inhibit {
    source_matchers: Vec<&'static str>,
    target_matchers: Vec<&'static str>,
    equal: Vec<&'static str>,
}

#[derive(Serialize)]
struct Receiver {
    name: String,
    slack_configs: Vec<Slack>,
}

#[derive(Serialize)]
struct Slack {
    api_url_file: String,
    channel: String,
    send_resolved: bool,
    title: &'static str,
    text: &'static str,
}

const TITLE: &str = "[{{ .Status | toUpper }}{{ if eq .Status \"firing\" }}:{{ .Alerts.Firing | len }}{{ end }}] {{ .CommonLabels.alertname }} ({{ .CommonLabels.severity }})";

const TEXT: &str = "{{ range .Alerts }}*{{ .Annotations.summary }}*\n{{ .Annotations.description }}\nRunbook: {{ .Annotations.runbook_url }}\n{{ end }}";

/// The receiver names, for routing tests.
pub const CRITICAL: &str = "slack-critical";
pub const WARNING: &str = "slack-warning";

/// alertmanager.yml.
pub fn config(options: &AlertmanagerOptions) -> String {
    let slack = |channel: &str| Slack {
        api_url_file: options.slack_webhook_file.display().to_string(),
        channel: channel.to_owned(),
        send_resolved: true,
        title: TITLE,
        text: TEXT,
    };
    let route = |receiver: &str, matchers: Vec<&'static str>, repeat: &'static str| Route {
        receiver: receiver.to_owned(),
        group_by: Vec::new(),
        group_wait: None,
        group_interval: None,
        repeat_interval: repeat,
        matchers,
        routes: Vec::new(),
    };
    let config = Config {
        global: Global { resolve_timeout: "5m" },
        route: Route {
            receiver: WARNING.to_owned(),
            group_by: vec!["alertname", "job", "sloth_service"],
            group_wait: Some("30s"),
            group_interval: Some("5m"),
            repeat_interval: "4h",
            matchers: Vec::new(),
            routes: vec![
                route(CRITICAL, vec![r#"severity="critical""#], "1h"),
                route(WARNING, vec![r#"severity="warning""#], "4h"),
            ],
        },
        // Alertmanager treats a label missing on both sides as equal, so each rule requires its label to be
        // set: a critical alert silences warnings of its own job, and an SLO page its own SLO's ticket.
        inhibit_rules: vec![
            Inhibit {
                source_matchers: vec![r#"severity="critical""#, r#"job=~".+""#],
                target_matchers: vec![r#"severity="warning""#, r#"job=~".+""#],
                equal: vec!["job"],
            },
            Inhibit {
                source_matchers: vec![r#"sloth_severity="page""#],
                target_matchers: vec![r#"sloth_severity="ticket""#],
                equal: vec!["sloth_id"],
            },
        ],
        receivers: vec![
            Receiver { name: CRITICAL.to_owned(), slack_configs: vec![slack(&options.critical_channel)] },
            Receiver { name: WARNING.to_owned(), slack_configs: vec![slack(&options.warning_channel)] },
        ],
    };
    format!(
        "# Alertmanager routing to Slack.\n{}",
        serde_yaml_ng::to_string(&config).expect("an Alertmanager config serializes")
    )
}
