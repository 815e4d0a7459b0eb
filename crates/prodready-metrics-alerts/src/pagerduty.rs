//! PagerDuty's Events API v2 body, for `prodready notify pagerduty` and tests.

use serde::Serialize;

/// What an event does to the incident its dedup key names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Open (or add to) an incident.
    Trigger,
    /// Close the incident.
    Resolve,
}

/// The severities PagerDuty accepts.
pub const SEVERITIES: [&str; 4] = ["critical", "error", "warning", "info"];

/// PagerDuty's limit on a summary, in characters.
pub const MAX_SUMMARY_CHARS: usize = 1024;

/// One event. The routing key is a credential: this body must never be printed or logged.
pub fn event(
    routing_key: &str,
    action: Action,
    summary: &str,
    severity: &str,
    source: &str,
    dedup_key: Option<&str>,
) -> serde_json::Value {
    let summary: String = summary.chars().take(MAX_SUMMARY_CHARS).collect();
    let mut body = serde_json::json!({
        "routing_key": routing_key,
        "event_action": action,
        "payload": { "summary": summary, "severity": severity, "source": source },
        "client": "prodready",
    });
    if let Some(key) = dedup_key {
        body["dedup_key"] = serde_json::Value::String(key.to_owned());
    }
    body
}
