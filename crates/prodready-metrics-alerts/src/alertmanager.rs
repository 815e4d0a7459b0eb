//! Alertmanager configuration: receivers per severity (critical: Slack, PagerDuty and email; warning:
//! Slack and email), grouping, repeat intervals, and inhibition of warnings by a critical alert for the
//! same service. Credentials (the Slack webhook, the SMTP password, the PagerDuty routing key) are named
//! by file: Alertmanager reads them, and they never appear in the generated configuration.

use std::path::PathBuf;

use serde::Serialize;

/// What the generated configuration routes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertmanagerOptions {
    /// A file holding the Slack incoming-webhook URL (Alertmanager reads it; it is never inlined).
    pub slack_webhook_file: PathBuf,
    pub critical_channel: String,
    pub warning_channel: String,
    /// Email for every alert, when set.
    pub email: Option<EmailOptions>,
    /// PagerDuty for critical alerts, when set.
    pub pagerduty: Option<PagerDutyOptions>,
}

impl AlertmanagerOptions {
    /// Slack only, to these channels.
    pub fn slack(webhook_file: PathBuf, critical_channel: &str, warning_channel: &str) -> Self {
        Self {
            slack_webhook_file: webhook_file,
            critical_channel: critical_channel.to_owned(),
            warning_channel: warning_channel.to_owned(),
            email: None,
            pagerduty: None,
        }
    }
}

/// Email through an SMTP smarthost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailOptions {
    /// Recipients of every alert.
    pub to: Vec<String>,
    pub from: String,
    /// `host:port`, e.g. `smtp.example.com:587`.
    pub smarthost: String,
    /// SMTP login, when the smarthost asks for one.
    pub username: Option<String>,
    /// A file holding the SMTP password (Alertmanager reads it; it is never inlined).
    pub password_file: Option<PathBuf>,
    /// Refuse to send without STARTTLS (keep it on except for a loopback relay).
    pub require_tls: bool,
}

/// PagerDuty's Events API v2.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PagerDutyOptions {
    /// A file holding the integration's routing key (Alertmanager reads it; it is never inlined).
    pub routing_key_file: PathBuf,
    /// The Events API endpoint; `None` means PagerDuty's own.
    pub url: Option<String>,
}

/// PagerDuty's Events API v2 endpoint.
pub const PAGERDUTY_EVENTS_URL: &str = "https://events.pagerduty.com/v2/enqueue";

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
    #[serde(skip_serializing_if = "Vec::is_empty")]
    email_configs: Vec<Email>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pagerduty_configs: Vec<PagerDuty>,
}

#[derive(Clone, Serialize)]
struct Email {
    to: String,
    from: String,
    smarthost: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    auth_username: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    auth_password_file: Option<String>,
    require_tls: bool,
    send_resolved: bool,
    headers: std::collections::BTreeMap<&'static str, &'static str>,
    text: &'static str,
    /// Empty: a plain-text message only.
    html: &'static str,
}

#[derive(Serialize)]
struct PagerDuty {
    routing_key_file: String,
    url: String,
    send_resolved: bool,
    severity: &'static str,
    description: &'static str,
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

const EMAIL_TEXT: &str = "{{ range .Alerts }}[{{ .Status | toUpper }}] {{ .Labels.alertname }} ({{ .Labels.severity }})\n{{ .Annotations.summary }}\n{{ .Annotations.description }}\nRunbook: {{ .Annotations.runbook_url }}\nStarted: {{ .StartsAt }}\n\n{{ end }}";

/// PagerDuty's severities are critical, error, warning and info.
const PAGERDUTY_SEVERITY: &str =
    "{{ if eq .CommonLabels.severity \"critical\" }}critical{{ else }}warning{{ end }}";

/// The receiver names, for routing tests.
pub const CRITICAL: &str = "critical";
pub const WARNING: &str = "warning";

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
    let email = options.email.as_ref().map(|e| Email {
        to: e.to.join(", "),
        from: e.from.clone(),
        smarthost: e.smarthost.clone(),
        auth_username: e.username.clone(),
        auth_password_file: e.password_file.as_ref().map(|p| p.display().to_string()),
        require_tls: e.require_tls,
        send_resolved: true,
        headers: [("Subject", TITLE)].into_iter().collect(),
        text: EMAIL_TEXT,
        html: "",
    });
    let pagerduty = options.pagerduty.as_ref().map(|p| PagerDuty {
        routing_key_file: p.routing_key_file.display().to_string(),
        url: p.url.clone().unwrap_or_else(|| PAGERDUTY_EVENTS_URL.to_owned()),
        send_resolved: true,
        severity: PAGERDUTY_SEVERITY,
        description: TITLE,
    });
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
            Receiver {
                name: CRITICAL.to_owned(),
                slack_configs: vec![slack(&options.critical_channel)],
                email_configs: email.clone().into_iter().collect(),
                pagerduty_configs: pagerduty.into_iter().collect(),
            },
            Receiver {
                name: WARNING.to_owned(),
                slack_configs: vec![slack(&options.warning_channel)],
                email_configs: email.into_iter().collect(),
                pagerduty_configs: Vec::new(),
            },
        ],
    };
    let channels = match (&options.email, &options.pagerduty) {
        (Some(_), Some(_)) => "Slack, email and PagerDuty",
        (Some(_), None) => "Slack and email",
        (None, Some(_)) => "Slack and PagerDuty",
        (None, None) => "Slack",
    };
    format!(
        "# Alertmanager routing to {channels}.\n{}",
        serde_yaml_ng::to_string(&config).expect("an Alertmanager config serializes")
    )
}

/// Where an alert goes: a receiver of the routing tree and the kinds of channel it notifies
/// (`email`, `slack`, `pagerduty`, `webhook`, ... from its `<kind>_configs`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub receiver: String,
    pub channels: Vec<String>,
}

/// The receivers an alert with `labels` reaches under an Alertmanager configuration, as Alertmanager
/// routes it: from the root route, into the first child whose matchers all match (`matchers`, `match`
/// and `match_re`), and on to later siblings where a matching route says `continue: true`. Errors say
/// what in the file cannot be read.
pub fn deliveries(config_yaml: &str, labels: &[(&str, &str)]) -> Result<Vec<Delivery>, String> {
    use serde_yaml_ng::Value;
    let config: Value = serde_yaml_ng::from_str(config_yaml).map_err(|e| format!("not YAML: {e}"))?;
    let root = config.get("route").ok_or("no `route`")?;
    let mut names = Vec::new();
    walk(
        root,
        root.get("receiver").and_then(Value::as_str).ok_or("the root route has no `receiver`")?,
        labels,
        &mut names,
    )?;
    let receivers = config.get("receivers").and_then(Value::as_sequence).ok_or("no `receivers`")?;
    let mut out: Vec<Delivery> = Vec::new();
    for name in names {
        if out.iter().any(|d| d.receiver == name) {
            continue;
        }
        let receiver = receivers
            .iter()
            .find(|r| r.get("name").and_then(Value::as_str) == Some(name.as_str()))
            .ok_or_else(|| format!("the route names receiver `{name}`, which is not defined"))?;
        let mut channels: Vec<String> = receiver
            .as_mapping()
            .into_iter()
            .flatten()
            .filter_map(|(key, value)| {
                let kind = key.as_str()?.strip_suffix("_configs")?;
                value.as_sequence().is_some_and(|s| !s.is_empty()).then(|| kind.to_owned())
            })
            .collect();
        channels.sort();
        out.push(Delivery { receiver: name, channels });
    }
    Ok(out)
}

/// Adds the receivers `route` (reached with `inherited` as its receiver) delivers `labels` to.
fn walk(
    route: &serde_yaml_ng::Value,
    inherited: &str,
    labels: &[(&str, &str)],
    out: &mut Vec<String>,
) -> Result<(), String> {
    use serde_yaml_ng::Value;
    let receiver = route.get("receiver").and_then(Value::as_str).unwrap_or(inherited);
    let mut matched = false;
    for child in route.get("routes").and_then(Value::as_sequence).into_iter().flatten() {
        if route_matches(child, labels)? {
            matched = true;
            walk(child, receiver, labels, out)?;
            if !child.get("continue").and_then(Value::as_bool).unwrap_or(false) {
                break;
            }
        }
    }
    if !matched {
        out.push(receiver.to_owned());
    }
    Ok(())
}

fn route_matches(route: &serde_yaml_ng::Value, labels: &[(&str, &str)]) -> Result<bool, String> {
    use serde_yaml_ng::Value;
    let value_of = |name: &str| label(labels, name);
    for matcher in route.get("matchers").and_then(Value::as_sequence).into_iter().flatten() {
        let text = matcher.as_str().ok_or("a matcher that is not a string")?;
        if !matcher_matches(text, labels)? {
            return Ok(false);
        }
    }
    for (key, want) in route.get("match").and_then(Value::as_mapping).into_iter().flatten() {
        let (Some(key), Some(want)) = (key.as_str(), want.as_str()) else {
            return Err("a `match` entry that is not text".to_owned());
        };
        if value_of(key) != want {
            return Ok(false);
        }
    }
    for (key, pattern) in route.get("match_re").and_then(Value::as_mapping).into_iter().flatten() {
        let (Some(key), Some(pattern)) = (key.as_str(), pattern.as_str()) else {
            return Err("a `match_re` entry that is not text".to_owned());
        };
        if !regex_matches(pattern, value_of(key))? {
            return Ok(false);
        }
    }
    Ok(true)
}

/// `name="value"`, `name!="value"`, `name=~"re"`, `name!~"re"` (quotes optional), as Alertmanager's
/// matchers read.
fn matcher_matches(text: &str, labels: &[(&str, &str)]) -> Result<bool, String> {
    let ops = ["=~", "!~", "!=", "="];
    let (at, op) = ops
        .iter()
        .filter_map(|op| text.find(op).map(|at| (at, *op)))
        .min_by_key(|(at, op)| (*at, std::cmp::Reverse(op.len())))
        .ok_or_else(|| format!("matcher `{text}` has no operator"))?;
    let name = text[..at].trim();
    let raw = text[at + op.len()..].trim();
    let value = raw.strip_prefix('"').and_then(|v| v.strip_suffix('"')).unwrap_or(raw).replace("\\\"", "\"");
    let actual = label(labels, name);
    Ok(match op {
        "=" => actual == value,
        "!=" => actual != value,
        "=~" => regex_matches(&value, actual)?,
        _ => !regex_matches(&value, actual)?,
    })
}

/// The value of label `name` (empty when absent, as Alertmanager treats a missing label).
fn label<'a>(labels: &[(&'a str, &'a str)], name: &str) -> &'a str {
    labels.iter().find(|(k, _)| *k == name).map_or("", |(_, v)| *v)
}

/// An anchored match, as Alertmanager's regex matchers are.
fn regex_matches(pattern: &str, value: &str) -> Result<bool, String> {
    let re = regex::Regex::new(&format!("^(?:{pattern})$")).map_err(|e| format!("regex `{pattern}`: {e}"))?;
    Ok(re.is_match(value))
}
