//! `prodready db top / exporter`: PostgreSQL monitoring through prodready-pg's `monitor`.

use std::io::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use prodready_logging::{LogConfig, Output};
use prodready_pg::monitor::{Exporter, ExporterOptions, Notice, TopBy};

use crate::cli::{self, DbCommand};
use crate::config::{self, Config};
use crate::env::Env;
use crate::exit::Exit;

pub(super) fn run(config_flag: Option<&Path>, env: &Env, cmd: &DbCommand) -> anyhow::Result<Exit> {
    let cfg = config::load(config_flag, env)?.config;
    match cmd {
        DbCommand::Top { by, limit, database, json, output } => {
            let runtime = super::runtime(1)?;
            let url = database.clone().unwrap_or_else(|| databases(&cfg).swap_remove(0));
            let by = match by {
                cli::TopBy::Total => TopBy::Total,
                cli::TopBy::Mean => TopBy::Mean,
                cli::TopBy::Calls => TopBy::Calls,
            };
            let found = runtime.block_on(async {
                let (client, driver) = prodready_pg::connect(&url, "prodready-db-top").await?;
                let found = prodready_pg::monitor::top(&client, by, (*limit).max(1)).await;
                drop(client);
                let _ = driver.await;
                anyhow::Ok(found)
            })?;
            let statements = match found? {
                Ok(statements) => statements,
                Err(note) => anyhow::bail!("{}: {note}", prodready_pg::describe(&url)),
            };
            if *json {
                let rows: Vec<serde_json::Value> = statements
                    .iter()
                    .map(|s| {
                        serde_json::json!({
                            "queryid": s.queryid.to_string(),
                            "query": s.query,
                            "calls": s.totals.calls,
                            "total_seconds": s.totals.exec_seconds,
                            "mean_seconds": s.mean_seconds(),
                            "rows": s.totals.rows,
                        })
                    })
                    .collect();
                let document = serde_json::json!({
                    "database": prodready_pg::describe(&url),
                    "collected_at": humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
                    "by": format!("{by:?}").to_lowercase(),
                    "statements": rows,
                });
                let mut text = serde_json::to_string_pretty(&document)?;
                text.push('\n');
                match output {
                    Some(path) => prodready_stdx::fs::write_atomic(path, text.as_bytes())
                        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?,
                    None => std::io::stdout().lock().write_all(text.as_bytes())?,
                }
                return Ok(Exit::Success);
            }
            let mut out = std::io::stdout().lock();
            if statements.is_empty() {
                writeln!(out, "no statements recorded yet in {}", prodready_pg::describe(&url))?;
                return Ok(Exit::Success);
            }
            writeln!(out, "{:>10} {:>12} {:>10} {:>10}  query", "calls", "total", "mean", "rows")?;
            for s in &statements {
                writeln!(
                    out,
                    "{:>10} {:>12} {:>10} {:>10}  {}",
                    count(s.totals.calls),
                    millis(s.totals.exec_seconds),
                    millis(s.mean_seconds()),
                    count(s.totals.rows),
                    s.query
                )?;
            }
            Ok(Exit::Success)
        }
        DbCommand::Exporter { listen } => {
            let runtime = super::runtime(2)?;
            let log = LogConfig {
                filter: cfg.logging.filter.clone(),
                format: cfg.logging.format,
                output: Output::Stderr,
                loki: None,
            };
            let _guard = prodready_logging::init(&log)?;
            let monitoring = &cfg.database_monitoring;
            let mut options = ExporterOptions::default();
            options.top_n = monitoring.top_n;
            options.timeout = monitoring.scrape_timeout;
            options.families.tables = monitoring.collect_tables;
            options.families.indexes = monitoring.collect_indexes;
            options.families.statements = monitoring.collect_statements;
            let urls = databases(&cfg);
            let exporter = Arc::new(Exporter::new(&urls, options)?);
            let addr = listen.unwrap_or(monitoring.listen);
            runtime.block_on(serve(addr, exporter, &urls))?;
            runtime.shutdown_timeout(Duration::from_secs(1));
            Ok(Exit::Success)
        }
    }
}

/// `[database_monitoring] databases`, else `[database] url`.
fn databases(cfg: &Config) -> Vec<String> {
    let listed = &cfg.database_monitoring.databases;
    if listed.is_empty() { vec![cfg.database_url().to_owned()] } else { listed.clone() }
}

async fn serve(addr: std::net::SocketAddr, exporter: Arc<Exporter>, urls: &[String]) -> anyhow::Result<()> {
    use axum::response::IntoResponse as _;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {addr}: {e}"))?;
    let app = axum::Router::new()
        .route(
            "/metrics",
            axum::routing::get(move |headers: http::HeaderMap| {
                let exporter = exporter.clone();
                async move {
                    let (mut registry, notices) = exporter.registry().await;
                    notices.iter().for_each(log_notice);
                    prodready_metrics::exposition::register_process_metrics(&mut registry);
                    let accept = headers.get(http::header::ACCEPT).and_then(|v| v.to_str().ok());
                    let format = prodready_metrics::exposition::Format::negotiate(accept);
                    ([(http::header::CONTENT_TYPE, format.content_type())], format.encode(&registry))
                        .into_response()
                }
            }),
        )
        .route("/healthz", axum::routing::get(|| async { "ok\n" }));
    let described: Vec<String> = urls.iter().map(|u| prodready_pg::describe(u)).collect();
    tracing::info!(listen = %addr, databases = ?described, "serving database metrics on /metrics");
    axum::serve(listener, app).with_graceful_shutdown(super::interrupted()).await?;
    tracing::info!("stopped");
    Ok(())
}

/// A database's error or note, logged when it changes (the exporter gives each change once).
fn log_notice(notice: &Notice) {
    match notice {
        Notice::Failed { database, error } => tracing::warn!(%database, "scrape failed: {error}"),
        Notice::Note { database, note } => tracing::warn!(%database, "no statement metrics: {note}"),
        Notice::Cleared { database } => tracing::info!(%database, "its earlier error or note is gone"),
    }
}

#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
fn count(v: f64) -> String {
    (v.max(0.0).round() as u64).to_string()
}

fn millis(seconds: f64) -> String {
    let ms = seconds * 1000.0;
    if ms >= 10_000.0 { format!("{seconds:.1} s") } else { format!("{ms:.2} ms") }
}
