//! Running one check: each kind's probe returns a [`Finding`].

use std::time::Duration;

use crate::model::Status;
use crate::spec::{Date, Kind};

mod alert_rules;
mod alerting;
mod backup;
mod command;
mod env_files;
mod files;
mod http;
mod manual;
mod net;
mod observability;
mod postgres;

/// What a probe saw: a status and one line of evidence.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Finding {
    pub status: Status,
    pub summary: String,
}

impl Finding {
    pub(crate) fn new(status: Status, summary: impl Into<String>) -> Self {
        Self { status, summary: summary.into() }
    }
    pub(crate) fn pass(summary: impl Into<String>) -> Self {
        Self::new(Status::Pass, summary)
    }
    pub(crate) fn fail(summary: impl Into<String>) -> Self {
        Self::new(Status::Fail, summary)
    }
    pub(crate) fn error(summary: impl Into<String>) -> Self {
        Self::new(Status::Error, summary)
    }
}

/// What probes share within one run.
#[derive(Debug, Clone)]
pub(crate) struct Context {
    pub http: reqwest::Client,
    /// Opens the stores `backup` checks name.
    pub stores: crate::run::StoreOpener,
    /// Today, for manual attestations.
    pub today: Date,
    /// Now, in seconds since the epoch, for certificate expiry.
    pub now_unix: i64,
    /// The run's applicable `manual` checks (id, check), for `attestations`.
    pub manual: Vec<(String, crate::spec::ManualCheck)>,
}

impl Context {
    /// A context with an HTTP client that does not follow redirects (a check judges the status it gets,
    /// 301 included) and does not wait forever to connect.
    pub(crate) fn new(today: Date, now_unix: i64, stores: crate::run::StoreOpener) -> Self {
        let http = reqwest::Client::builder()
            .user_agent(concat!("prodready-check/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(10))
            .build()
            .expect("an HTTP client with default TLS settings builds");
        Self { http, stores, today, now_unix, manual: Vec::new() }
    }
}

/// Runs the probe for `kind`. Timeouts are the caller's business.
pub(crate) async fn probe(kind: &Kind, ctx: &Context) -> Finding {
    match kind {
        Kind::Http(check) => http::probe(check, &ctx.http).await,
        Kind::Tls { address, server_name, min_days, warn_days } => {
            net::tls(address, server_name.as_deref(), *min_days, *warn_days, ctx.now_unix).await
        }
        Kind::Tcp { address } => net::tcp(address).await,
        Kind::Postgres { url } => postgres::probe(url).await,
        Kind::PrometheusTargets { url, job } => {
            observability::prometheus_targets(&ctx.http, url, job.as_deref()).await
        }
        Kind::Loki { url } => observability::loki(&ctx.http, url).await,
        Kind::Otlp { url } => observability::otlp(&ctx.http, url).await,
        Kind::Docs { path, sections } => files::docs(path, sections).await,
        Kind::Coverage { reports } => files::coverage_all(reports).await,
        Kind::Loadtest { path, max_age } => files::loadtest(path, *max_age, ctx.now_unix).await,
        Kind::Command { run } => command::probe(run).await,
        Kind::Manual(check) => manual::probe(check, ctx.today),
        Kind::Backup(check) => backup::probe(check, &ctx.stores, ctx.now_unix).await,
        Kind::AlertRules { path, promtool } => alert_rules::probe(path, promtool).await,
        Kind::EnvFiles { dir } => env_files::probe(dir),
        Kind::LokiRetention { url, min_days } => {
            observability::loki_retention(&ctx.http, url, *min_days).await
        }
        Kind::Alerting { source, channels } => alerting::probe(&ctx.http, source, channels).await,
        Kind::Attestations => manual::attestations(&ctx.manual, ctx.today),
        Kind::ScanReport { path, max_age, scans } => {
            files::scan_report(path, *max_age, scans, ctx.now_unix).await
        }
        Kind::CiWorkflow { path, steps } => files::ci_workflow(path, steps).await,
        Kind::Dashboards { path } => files::dashboards(path).await,
    }
}

/// `12 ms`, `1.2 s`
pub(crate) fn millis(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        format!("{} ms", d.as_millis())
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}

/// A reqwest error, short and without its URL (which may carry credentials): the root cause for
/// connection failures, else the whole chain.
pub(crate) fn http_error(err: reqwest::Error) -> String {
    let err = err.without_url();
    if err.is_timeout() {
        return "timed out".to_owned();
    }
    if err.is_connect() {
        return format!("cannot connect: {}", prodready_stdx::error::root_cause(&err));
    }
    prodready_stdx::error::chain(&err)
}
