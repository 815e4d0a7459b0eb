//! `prodready logs ship` and `prodready logs query`.

use std::io::Write as _;
use std::path::Path;
use std::time::Duration;

use prodready_logging::loki::Labels;
use prodready_logging::query::{Query, query_range};
use prodready_logging::ship::{ShipOptions, run as ship};
use prodready_logging::{LogConfig, Output};

use crate::cli::LogsCommand;
use crate::config;
use crate::env::Env;
use crate::error::UsageError;
use crate::exit::Exit;

pub(super) fn run(config_flag: Option<&Path>, env: &Env, cmd: &LogsCommand) -> anyhow::Result<Exit> {
    let cfg = config::load(config_flag, env)?.config;
    let logging = &cfg.logging;
    let loki_url = |flag: &Option<String>| {
        flag.clone().or_else(|| logging.loki_url.clone()).ok_or_else(|| {
            UsageError(
                "no Loki URL: pass --loki URL or set [logging] loki_url = \"http://HOST:3100\"".to_owned(),
            )
        })
    };
    let runtime = super::runtime(2)?;
    match cmd {
        LogsCommand::Ship { paths, loki, positions, metrics_addr, labels: flag_labels } => {
            let ship_cfg = &logging.ship;
            let paths = if paths.is_empty() { ship_cfg.paths.clone() } else { paths.clone() };
            let positions = positions.clone().unwrap_or_else(|| cfg.positions().to_path_buf());
            let metrics_addr = match (metrics_addr, &ship_cfg.metrics_addr) {
                (Some(addr), _) => Some(*addr),
                (None, Some(text)) => Some(text.parse().map_err(|e| {
                    UsageError(format!(
                        "[logging.ship] metrics_addr `{text}`: {e}; expected HOST:PORT such as 127.0.0.1:9080"
                    ))
                })?),
                (None, None) => None,
            };
            // --label overrides [logging] labels key by key.
            let mut merged = logging.labels.clone();
            merged.extend(flag_labels.iter().cloned());
            let labels = Labels::new(merged).map_err(|e| {
                let from =
                    if flag_labels.is_empty() { "[logging] labels" } else { "[logging] labels / --label" };
                UsageError(format!("{from}: {e}"))
            })?;
            let mut options = ShipOptions::new(paths, positions, loki_url(loki)?, labels);
            options.metrics_addr = metrics_addr;
            options.json_labels.clone_from(&ship_cfg.json_labels);
            options.max_open_files = ship_cfg.max_open_files;
            // The agent's own log: JSON lines on stderr, under [logging] filter.
            let log = LogConfig {
                filter: logging.filter.clone(),
                format: logging.format,
                output: Output::Stderr,
                loki: None,
            };
            let _guard = prodready_logging::init(&log)?;
            let report = runtime.block_on(async {
                tracing::info!(paths = ?options.paths, loki = %prodready_stdx::redact::url(&options.loki.url), positions = %options.positions.display(), "shipping");
                ship(options, shutdown_signal()).await
            })?;
            tracing::info!(
                lines_sent = report.lines_sent,
                lines_rejected = report.lines_rejected,
                lines_resent = report.lines_resent,
                retries = report.retries,
                "stopped"
            );
            runtime.shutdown_timeout(Duration::from_secs(1));
        }
        LogsCommand::Query { logql, since, limit, json, loki } => {
            let url = loki_url(loki)?;
            let query = Query { logql: logql.clone(), since: *since, limit: *limit };
            let lines = runtime.block_on(query_range(&url, &query))?;
            let mut out = std::io::stdout().lock();
            for line in &lines {
                if *json {
                    serde_json::to_writer(&mut out, line)?;
                    writeln!(out)?;
                } else {
                    let secs = u64::try_from(line.timestamp_ns / 1_000_000_000).unwrap_or(0);
                    let nanos = u32::try_from(line.timestamp_ns % 1_000_000_000).unwrap_or(0);
                    let at = std::time::UNIX_EPOCH + Duration::new(secs, nanos);
                    let labels: Vec<String> = line.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
                    writeln!(
                        out,
                        "{} {{{}}} {}",
                        humantime::format_rfc3339_millis(at),
                        labels.join(","),
                        line.line
                    )?;
                }
            }
            if lines.is_empty() {
                writeln!(
                    std::io::stderr(),
                    "no lines matched in the last {}",
                    humantime::format_duration(*since)
                )?;
            }
        }
    }
    Ok(Exit::Success)
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    super::interrupted().await;
    tracing::info!("signal received: pushing what was read, then stopping");
}
