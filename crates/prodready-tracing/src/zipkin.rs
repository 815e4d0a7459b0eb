//! A span exporter for Zipkin's v2 JSON API (`POST /api/v2/spans`), for collectors without an OTLP
//! intake. opentelemetry-zipkin is deprecated upstream, so the mapping lives here: kind, local and
//! remote endpoints, tags from attributes and status, annotations from events, 128-bit trace ids, times
//! in microseconds (a duration is at least 1).

use std::future::Future;
use std::time::{Duration, SystemTime};

use opentelemetry::trace::{SpanKind, Status};
use opentelemetry::{KeyValue, Value};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::{SpanData, SpanExporter};
use serde_json::{Map, json};

use crate::Result;
use crate::options::Tls;
use crate::transport::Transport;

/// Sends spans to a Zipkin v2 endpoint with a blocking client (it runs on the batch processor's thread).
#[derive(Debug)]
pub struct ZipkinExporter {
    transport: Transport,
    service_name: String,
}

impl ZipkinExporter {
    /// `endpoint`: the full spans URL, e.g. `http://127.0.0.1:9411/api/v2/spans`.
    pub fn new(endpoint: &str, timeout: Duration) -> Result<Self> {
        Self::with_tls(endpoint, timeout, &Tls::default())
    }

    /// The same, for a collector behind TLS: `tls` names the trusted roots and a client certificate.
    pub fn with_tls(endpoint: &str, timeout: Duration, tls: &Tls) -> Result<Self> {
        let transport = Transport::new(endpoint, &[], timeout, tls, "Zipkin")?;
        Ok(Self { transport, service_name: "unknown_service".to_owned() })
    }

    fn send(&self, batch: &[SpanData]) -> OTelSdkResult {
        let body: Vec<serde_json::Value> = batch.iter().map(|s| to_zipkin(s, &self.service_name)).collect();
        let body = serde_json::to_vec(&body).map_err(|e| OTelSdkError::InternalFailure(e.to_string()))?;
        self.transport.post("application/json", None, body).map(|_| ())
    }
}

impl SpanExporter for ZipkinExporter {
    fn export(&self, batch: Vec<SpanData>) -> impl Future<Output = OTelSdkResult> + Send {
        std::future::ready(self.send(&batch))
    }

    fn shutdown_with_timeout(&self, _: Duration) -> OTelSdkResult {
        self.transport.shut_down()
    }

    fn set_resource(&mut self, resource: &Resource) {
        if let Some(name) = resource.get(&opentelemetry::Key::new("service.name")) {
            self.service_name = name.to_string();
        }
    }
}

fn micros(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

fn text(value: &Value) -> String {
    value.to_string()
}

/// One span in Zipkin's v2 model.
pub fn to_zipkin(span: &SpanData, service_name: &str) -> serde_json::Value {
    let mut out = Map::new();
    out.insert("traceId".into(), json!(span.span_context.trace_id().to_string()));
    out.insert("id".into(), json!(span.span_context.span_id().to_string()));
    if span.parent_span_id != opentelemetry::trace::SpanId::INVALID {
        out.insert("parentId".into(), json!(span.parent_span_id.to_string()));
    }
    out.insert("name".into(), json!(span.name));
    let kind = match span.span_kind {
        SpanKind::Server => Some("SERVER"),
        SpanKind::Client => Some("CLIENT"),
        SpanKind::Producer => Some("PRODUCER"),
        SpanKind::Consumer => Some("CONSUMER"),
        SpanKind::Internal => None,
    };
    if let Some(kind) = kind {
        out.insert("kind".into(), json!(kind));
    }
    let start = micros(span.start_time);
    out.insert("timestamp".into(), json!(start));
    out.insert("duration".into(), json!(micros(span.end_time).saturating_sub(start).max(1)));
    out.insert("localEndpoint".into(), json!({ "serviceName": service_name }));
    let attr = |key: &str| span.attributes.iter().find(|kv| kv.key.as_str() == key).map(|kv| text(&kv.value));
    let remote_host = match span.span_kind {
        SpanKind::Client | SpanKind::Producer => attr("server.address").or_else(|| attr("net.peer.name")),
        _ => attr("client.address").or_else(|| attr("network.peer.address")),
    };
    let remote_port = match span.span_kind {
        SpanKind::Client | SpanKind::Producer => attr("server.port"),
        _ => attr("client.port").or_else(|| attr("network.peer.port")),
    };
    if remote_host.is_some() || remote_port.is_some() {
        let mut remote = Map::new();
        if let Some(host) = remote_host {
            match host.parse::<std::net::IpAddr>() {
                Ok(std::net::IpAddr::V4(ip)) => remote.insert("ipv4".into(), json!(ip.to_string())),
                Ok(std::net::IpAddr::V6(ip)) => remote.insert("ipv6".into(), json!(ip.to_string())),
                Err(_) => remote.insert("serviceName".into(), json!(host)),
            };
        }
        if let Some(port) = remote_port.and_then(|p| p.parse::<u16>().ok()) {
            remote.insert("port".into(), json!(port));
        }
        out.insert("remoteEndpoint".into(), serde_json::Value::Object(remote));
    }
    let mut tags = Map::new();
    for KeyValue { key, value, .. } in &span.attributes {
        tags.insert(key.as_str().to_owned(), json!(text(value)));
    }
    match &span.status {
        Status::Error { description } => {
            tags.insert("otel.status_code".into(), json!("ERROR"));
            let description =
                if description.is_empty() { "true".to_owned() } else { description.to_string() };
            tags.insert("error".into(), json!(description));
        }
        Status::Ok => {
            tags.insert("otel.status_code".into(), json!("OK"));
        }
        Status::Unset => {}
    }
    tags.insert("otel.scope.name".into(), json!(span.instrumentation_scope.name()));
    if let Some(version) = span.instrumentation_scope.version() {
        tags.insert("otel.scope.version".into(), json!(version));
    }
    out.insert("tags".into(), serde_json::Value::Object(tags));
    let annotations: Vec<serde_json::Value> = span
        .events
        .iter()
        .map(|event| {
            let value = if event.attributes.is_empty() {
                event.name.to_string()
            } else {
                let attrs: Map<String, serde_json::Value> = event
                    .attributes
                    .iter()
                    .map(|kv| (kv.key.as_str().to_owned(), json!(text(&kv.value))))
                    .collect();
                format!("{}: {}", event.name, serde_json::Value::Object(attrs))
            };
            json!({ "timestamp": micros(event.timestamp), "value": value })
        })
        .collect();
    if !annotations.is_empty() {
        out.insert("annotations".into(), json!(annotations));
    }
    serde_json::Value::Object(out)
}
