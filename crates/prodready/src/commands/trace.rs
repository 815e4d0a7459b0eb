//! `prodready trace ping`: the tracing pipeline proven end to end.

use std::io::Write as _;
use std::path::Path;

use prodready_tracing::{Exporter, Options, Protocol};

use crate::cli::TraceCommand;
use crate::config::{self, Config, TraceExporter};
use crate::env::Env;
use crate::error::UsageError;
use crate::exit::Exit;

pub(super) fn run(config_flag: Option<&Path>, env: &Env, cmd: &TraceCommand) -> anyhow::Result<Exit> {
    let cfg = config::load(config_flag, env)?.config;
    let TraceCommand::Ping { endpoint, exporter, protocol, timeout } = cmd;
    let mut options = options(&cfg, env)?;
    // Flags win over the OTEL_* variables, which win over the file.
    let exporter = exporter.or(match options.exporter {
        Exporter::Zipkin { .. } => Some(TraceExporter::Zipkin),
        _ => None,
    });
    let protocol = protocol.map(|p| match p {
        config::Protocol::HttpProtobuf => Protocol::HttpProtobuf,
        config::Protocol::Grpc => Protocol::Grpc,
    });
    options.exporter = match (exporter, options.exporter.clone()) {
        (Some(TraceExporter::Zipkin), Exporter::Zipkin { endpoint: current }) => {
            Exporter::Zipkin { endpoint: endpoint.clone().unwrap_or(current) }
        }
        (Some(TraceExporter::Zipkin), _) => Exporter::Zipkin {
            endpoint: endpoint
                .clone()
                .unwrap_or_else(|| prodready_tracing::DEFAULT_ZIPKIN_ENDPOINT.to_owned()),
        },
        (_, Exporter::Otlp { endpoint: current, protocol: p, headers }) => {
            let protocol = protocol.unwrap_or(p);
            let endpoint = endpoint.clone().unwrap_or_else(|| match (protocol, current.as_str()) {
                (Protocol::Grpc, prodready_tracing::DEFAULT_OTLP_ENDPOINT) => {
                    prodready_tracing::DEFAULT_OTLP_GRPC_ENDPOINT.to_owned()
                }
                _ => current,
            });
            Exporter::Otlp { endpoint, protocol, headers }
        }
        (_, _) => Exporter::Otlp {
            endpoint: endpoint.clone().unwrap_or_else(|| prodready_tracing::DEFAULT_OTLP_ENDPOINT.to_owned()),
            protocol: protocol.unwrap_or_default(),
            headers: Vec::new(),
        },
    };
    options.export_timeout = *timeout;
    options.validate().map_err(|e| UsageError(e.to_string()))?;
    let url = options.export_url().unwrap_or_default();
    let trace_id = prodready_tracing::ping(&options)?;
    writeln!(std::io::stdout(), "{trace_id}")?;
    let _ = writeln!(std::io::stderr(), "trace {trace_id} accepted by {}", prodready_stdx::redact::url(&url));
    Ok(Exit::Success)
}

/// `[tracing]`, then the `OTEL_*` variables over it.
pub(crate) fn options(cfg: &Config, env: &Env) -> anyhow::Result<Options> {
    let tracing = &cfg.tracing;
    let mut options = Options::new(tracing.service_name.clone());
    options.environment.clone_from(&tracing.environment);
    options.service_version = Some(env!("CARGO_PKG_VERSION").to_owned());
    options.sampler = prodready_tracing::Sampler::ParentBasedRatio(tracing.sample_ratio);
    options.exporter = match tracing.exporter {
        TraceExporter::Zipkin => Exporter::Zipkin {
            endpoint: tracing
                .zipkin_endpoint
                .clone()
                .unwrap_or_else(|| prodready_tracing::DEFAULT_ZIPKIN_ENDPOINT.to_owned()),
        },
        TraceExporter::Otlp => {
            let protocol = match tracing.protocol {
                config::Protocol::HttpProtobuf => Protocol::HttpProtobuf,
                config::Protocol::Grpc => Protocol::Grpc,
            };
            let default = match protocol {
                Protocol::Grpc => prodready_tracing::DEFAULT_OTLP_GRPC_ENDPOINT,
                Protocol::HttpProtobuf => prodready_tracing::DEFAULT_OTLP_ENDPOINT,
            };
            Exporter::Otlp {
                endpoint: tracing.otlp_endpoint.clone().unwrap_or_else(|| default.to_owned()),
                protocol,
                headers: Vec::new(),
            }
        }
    };
    Ok(options.from_env(|name| env.get(name).map(str::to_owned)).map_err(|e| UsageError(e.to_string()))?)
}
