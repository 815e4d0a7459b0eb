use serde::{Deserialize, Serialize};

/// OTLP transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Protocol {
    /// OTLP over HTTP with protobuf bodies (the default: no async runtime needed for export).
    #[default]
    HttpProtobuf,
    /// OTLP over gRPC.
    Grpc,
}

/// The `[tracing]` section of `prodready.toml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TracingConfig {
    /// OTLP collector endpoint, e.g. `http://127.0.0.1:4318`; `None` means tracing is off.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub otlp_endpoint: Option<String>,
    pub protocol: Protocol,
    /// `service.name` resource attribute.
    pub service_name: String,
    /// Deployment environment resource attribute, e.g. `production`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    /// Share of root traces sampled (0.0-1.0); children follow their parent's decision.
    pub sample_ratio: f64,
}

impl Default for TracingConfig {
    fn default() -> Self {
        Self {
            otlp_endpoint: None,
            protocol: Protocol::HttpProtobuf,
            service_name: "prodready".to_owned(),
            environment: None,
            sample_ratio: 1.0,
        }
    }
}
