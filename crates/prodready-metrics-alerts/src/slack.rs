//! Slack's incoming-webhook payload, for `prodready notify slack` and tests.

/// The JSON body of one message: `{"text": ...}`, with a channel override when given.
pub fn payload(text: &str, channel: Option<&str>) -> serde_json::Value {
    let mut body = serde_json::json!({ "text": text });
    if let Some(channel) = channel {
        body["channel"] = serde_json::Value::String(channel.to_owned());
    }
    body
}
