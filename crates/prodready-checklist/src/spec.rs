//! Checks as declared (in a configuration file or in code): common keys plus the keys of the check's
//! kind, side by side in one table. [`CheckSpec::validate`] turns a declaration into a typed [`Check`].

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::model::{Category, Meta};
use crate::{Error, Result};

/// The kinds of check this crate runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KindName {
    Http,
    Tls,
    Tcp,
    Postgres,
    PrometheusTargets,
    Loki,
    Otlp,
    Docs,
    Coverage,
    Loadtest,
    Command,
    Manual,
    Backup,
    AlertRules,
    EnvFiles,
    LokiRetention,
    Alerting,
    Attestations,
    ScanReport,
    CiWorkflow,
    Dashboards,
}

impl KindName {
    pub const fn name(self) -> &'static str {
        match self {
            KindName::Http => "http",
            KindName::Tls => "tls",
            KindName::Tcp => "tcp",
            KindName::Postgres => "postgres",
            KindName::PrometheusTargets => "prometheus_targets",
            KindName::Loki => "loki",
            KindName::Otlp => "otlp",
            KindName::Docs => "docs",
            KindName::Coverage => "coverage",
            KindName::Loadtest => "loadtest",
            KindName::Command => "command",
            KindName::Manual => "manual",
            KindName::Backup => "backup",
            KindName::AlertRules => "alert_rules",
            KindName::EnvFiles => "env_files",
            KindName::LokiRetention => "loki_retention",
            KindName::Alerting => "alerting",
            KindName::Attestations => "attestations",
            KindName::ScanReport => "scan_report",
            KindName::CiWorkflow => "ci_workflow",
            KindName::Dashboards => "dashboards",
        }
    }

    /// The kind-specific keys this kind takes.
    const fn keys(self) -> &'static [&'static str] {
        match self {
            KindName::Http => &[
                "url",
                "method",
                "headers",
                "body",
                "expect_status",
                "body_contains",
                "json",
                "max_response_ms",
            ],
            KindName::Tls => &["address", "server_name", "min_days", "warn_days"],
            KindName::Tcp => &["address"],
            KindName::Postgres => &["url"],
            KindName::PrometheusTargets => &["url", "job"],
            KindName::Loki | KindName::Otlp => &["url"],
            KindName::Docs => &["path", "sections"],
            KindName::Coverage => &["path", "min_percent", "reports"],
            KindName::Loadtest => &["path", "max_age"],
            KindName::Command => &["run"],
            KindName::Manual => &["owner", "evidence", "attested_at", "expires_after"],
            KindName::Backup => &["store", "database", "max_age", "max_verify_age"],
            KindName::AlertRules => &["path", "promtool"],
            KindName::EnvFiles => &["path"],
            KindName::LokiRetention => &["url", "min_days"],
            KindName::Alerting => &["path", "url", "channels"],
            KindName::Attestations => &[],
            KindName::ScanReport => &["path", "max_age", "scans"],
            KindName::CiWorkflow => &["path", "steps"],
            KindName::Dashboards => &["path"],
        }
    }
}

/// One declared check: a table of common keys and the keys of its kind.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckSpec {
    pub id: String,
    pub title: String,
    pub category: Option<Category>,
    pub kind: Option<KindName>,
    #[serde(default)]
    pub must_have: bool,
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub weight: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remediation: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub docs: Option<String>,
    /// Declares the check not applicable to this platform, with the reason; it is then left out of the score.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_applicable: Option<String>,
    /// Overrides the run's per-check timeout.
    #[serde(default, with = "humantime_serde", skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Duration>,

    // http, postgres, prometheus_targets, loki, otlp
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub headers: Option<BTreeMap<String, String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expect_status: Option<ExpectStatus>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body_contains: Option<String>,
    /// JSON pointer (`/status`) -> expected value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub json: Option<BTreeMap<String, serde_json::Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_response_ms: Option<u64>,
    // tls, tcp
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_days: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warn_days: Option<u32>,
    // prometheus_targets
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job: Option<String>,
    // docs, coverage, loadtest
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sections: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_percent: Option<f64>,
    // command
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run: Option<Vec<String>>,
    // manual
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub evidence: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attested_at: Option<toml_datetime::Datetime>,
    #[serde(default, with = "humantime_serde", skip_serializing_if = "Option::is_none")]
    pub expires_after: Option<Duration>,
    // backup
    #[serde(skip_serializing_if = "Option::is_none")]
    pub store: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database: Option<String>,
    #[serde(default, with = "humantime_serde", skip_serializing_if = "Option::is_none")]
    pub max_age: Option<Duration>,
    #[serde(default, with = "humantime_serde", skip_serializing_if = "Option::is_none")]
    pub max_verify_age: Option<Duration>,
    // alert_rules
    #[serde(skip_serializing_if = "Option::is_none")]
    pub promtool: Option<PathBuf>,
    // alerting
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channels: Option<Vec<String>>,
    // ci_workflow
    #[serde(skip_serializing_if = "Option::is_none")]
    pub steps: Option<Vec<String>>,
    // scan_report: the kinds of scan the reports must cover (`secrets`, `dependencies`)
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scans: Option<Vec<String>>,
    // coverage: several reports, a threshold each (backend 80%, frontend 60%)
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reports: Option<Vec<CoverageReport>>,
}

/// One coverage report of a `coverage` check and its own minimum.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CoverageReport {
    /// What the report covers (`backend`, `frontend`), for the evidence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// An lcov file or `cargo llvm-cov --json` output.
    pub path: PathBuf,
    /// Line coverage this report must reach, in percent.
    pub min_percent: f64,
}

fn one() -> f64 {
    1.0
}

#[allow(clippy::trivially_copy_pass_by_ref, clippy::float_cmp)]
fn is_one(w: &f64) -> bool {
    *w == 1.0
}

/// `expect_status = 200` or `expect_status = [200, 204]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged, expecting = "a status code like 200 or a list like [200, 204]")]
pub enum ExpectStatus {
    One(u16),
    Any(Vec<u16>),
}

impl ExpectStatus {
    pub fn allows(&self, status: u16) -> bool {
        match self {
            ExpectStatus::One(s) => *s == status,
            ExpectStatus::Any(list) => list.contains(&status),
        }
    }
}

/// A validated check, ready to run.
#[derive(Debug, Clone, PartialEq)]
pub struct Check {
    pub meta: Meta,
    pub kind: Kind,
    pub timeout: Option<Duration>,
    /// Set when the check is declared not applicable: the reason.
    pub not_applicable: Option<String>,
}

/// The typed, kind-specific part of a check.
#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    Http(HttpCheck),
    Tls {
        address: String,
        server_name: Option<String>,
        min_days: u32,
        warn_days: u32,
    },
    Tcp {
        address: String,
    },
    Postgres {
        url: String,
    },
    PrometheusTargets {
        url: String,
        job: Option<String>,
    },
    Loki {
        url: String,
    },
    Otlp {
        url: String,
    },
    Docs {
        path: PathBuf,
        sections: Vec<String>,
    },
    /// Every report reaches its own minimum line coverage.
    Coverage {
        reports: Vec<CoverageReport>,
    },
    Loadtest {
        path: PathBuf,
        /// How old the summary may be (default 30 days): an old load test proves little about today's
        /// platform.
        max_age: Duration,
    },
    Command {
        run: Vec<String>,
    },
    Manual(ManualCheck),
    Backup(BackupCheck),
    /// Prometheus rule files (a file or a directory of them) pass the offline linter and promtool.
    AlertRules {
        path: PathBuf,
        promtool: PathBuf,
    },
    /// No `.env` file in a directory holds values: secrets live in a secret store instead.
    EnvFiles {
        dir: PathBuf,
    },
    /// Loki's running configuration deletes logs after at least `min_days` (and not never).
    LokiRetention {
        url: String,
        min_days: u32,
    },
    /// Critical alerts reach every channel named, under Alertmanager's routing.
    Alerting {
        source: AlertingSource,
        channels: Vec<String>,
    },
    /// Every `manual` check of the run is currently attested: the pre-launch checklist is complete.
    Attestations,
    /// A security scan's SARIF report is recent and has no error or warning result; with `scans`, the
    /// reports cover each kind of scan named (`secrets`, `dependencies`).
    ScanReport {
        path: PathBuf,
        max_age: Duration,
        scans: Vec<String>,
    },
    /// The CI configuration runs each step (`test`, `scan`, `coverage`, `deploy`).
    CiWorkflow {
        path: PathBuf,
        steps: Vec<String>,
    },
    /// A directory of Grafana dashboards (JSON files with a title and panels): the platform has its own.
    Dashboards {
        path: PathBuf,
    },
}

/// Where an `alerting` check reads Alertmanager's configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AlertingSource {
    /// An alertmanager.yml.
    File(PathBuf),
    /// A running Alertmanager (its `/api/v2/status`).
    Url(String),
}

/// Backup freshness and proof, read from a prodready backup store.
#[derive(Debug, Clone, PartialEq)]
pub struct BackupCheck {
    pub store: String,
    /// Only backups of this database count.
    pub database: Option<String>,
    /// The newest backup must be younger than this.
    pub max_age: Duration,
    /// The newest backup that passed a restore verification must have been verified within this.
    pub max_verify_age: Duration,
}

impl Kind {
    pub const fn name(&self) -> KindName {
        match self {
            Kind::Http(_) => KindName::Http,
            Kind::Tls { .. } => KindName::Tls,
            Kind::Tcp { .. } => KindName::Tcp,
            Kind::Postgres { .. } => KindName::Postgres,
            Kind::PrometheusTargets { .. } => KindName::PrometheusTargets,
            Kind::Loki { .. } => KindName::Loki,
            Kind::Otlp { .. } => KindName::Otlp,
            Kind::Docs { .. } => KindName::Docs,
            Kind::Coverage { .. } => KindName::Coverage,
            Kind::Loadtest { .. } => KindName::Loadtest,
            Kind::Command { .. } => KindName::Command,
            Kind::Manual(_) => KindName::Manual,
            Kind::Backup(_) => KindName::Backup,
            Kind::AlertRules { .. } => KindName::AlertRules,
            Kind::EnvFiles { .. } => KindName::EnvFiles,
            Kind::LokiRetention { .. } => KindName::LokiRetention,
            Kind::Alerting { .. } => KindName::Alerting,
            Kind::Attestations => KindName::Attestations,
            Kind::ScanReport { .. } => KindName::ScanReport,
            Kind::CiWorkflow { .. } => KindName::CiWorkflow,
            Kind::Dashboards { .. } => KindName::Dashboards,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct HttpCheck {
    pub url: String,
    pub method: String,
    pub headers: BTreeMap<String, String>,
    pub body: Option<String>,
    pub expect_status: ExpectStatus,
    pub body_contains: Option<String>,
    pub json: BTreeMap<String, serde_json::Value>,
    pub max_response_ms: Option<u64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ManualCheck {
    pub owner: Option<String>,
    pub evidence: Option<String>,
    /// Days since 1970-01-01 of the attestation.
    pub attested_on: Option<Date>,
    pub expires_after: Option<Duration>,
}

/// A calendar date (proleptic Gregorian).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Date {
    pub year: i32,
    pub month: u8,
    pub day: u8,
}

impl Date {
    /// Days since 1970-01-01 (Howard Hinnant's days_from_civil).
    pub fn days_since_epoch(self) -> i64 {
        let (m, d) = (i64::from(self.month), i64::from(self.day));
        let y = i64::from(self.year) - i64::from(m <= 2);
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        era * 146_097 + doe - 719_468
    }

    /// The date `days` days after 1970-01-01 (civil_from_days).
    pub fn from_days_since_epoch(days: i64) -> Self {
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = (doy - (153 * mp + 2) / 5 + 1) as u8;
        let month = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
        let year = (yoe + era * 400 + i64::from(month <= 2)) as i32;
        Self { year, month, day }
    }
}

impl std::fmt::Display for Date {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

impl CheckSpec {
    /// Names of the kind-specific keys this declaration sets.
    fn present(&self) -> Vec<&'static str> {
        let set = [
            ("url", self.url.is_some()),
            ("method", self.method.is_some()),
            ("headers", self.headers.is_some()),
            ("body", self.body.is_some()),
            ("expect_status", self.expect_status.is_some()),
            ("body_contains", self.body_contains.is_some()),
            ("json", self.json.is_some()),
            ("max_response_ms", self.max_response_ms.is_some()),
            ("address", self.address.is_some()),
            ("server_name", self.server_name.is_some()),
            ("min_days", self.min_days.is_some()),
            ("warn_days", self.warn_days.is_some()),
            ("job", self.job.is_some()),
            ("path", self.path.is_some()),
            ("sections", self.sections.is_some()),
            ("min_percent", self.min_percent.is_some()),
            ("reports", self.reports.is_some()),
            ("steps", self.steps.is_some()),
            ("scans", self.scans.is_some()),
            ("run", self.run.is_some()),
            ("owner", self.owner.is_some()),
            ("evidence", self.evidence.is_some()),
            ("attested_at", self.attested_at.is_some()),
            ("expires_after", self.expires_after.is_some()),
            ("store", self.store.is_some()),
            ("database", self.database.is_some()),
            ("max_age", self.max_age.is_some()),
            ("max_verify_age", self.max_verify_age.is_some()),
            ("promtool", self.promtool.is_some()),
            ("channels", self.channels.is_some()),
        ];
        set.iter().filter(|(_, on)| *on).map(|(k, _)| *k).collect()
    }

    /// Checks the declaration and types it. Errors name the check and the key.
    pub fn validate(&self) -> Result<Check> {
        let err = |key: &str, message: String| Error::InvalidCheck {
            id: self.id.clone(),
            key: key.to_owned(),
            message,
        };
        if self.id.is_empty() || !self.id.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) {
            return Err(err("id", "must be non-empty letters, digits, `-`, `_` or `.`".to_owned()));
        }
        if self.title.trim().is_empty() {
            return Err(err("title", "is missing; say in words what the check proves".to_owned()));
        }
        let category = self.category.ok_or_else(|| {
            err("category", "is missing; one of Features, Security, Backups, Logging, Monitoring, Testing, Documentation, CI/CD".to_owned())
        })?;
        let kind = self.kind.ok_or_else(|| err("kind", "is missing".to_owned()))?;
        if !self.weight.is_finite() || self.weight < 0.0 {
            return Err(err("weight", format!("must be a number >= 0, not {}", self.weight)));
        }
        if let Some(extra) = self.present().into_iter().find(|k| !kind.keys().contains(k)) {
            return Err(err(
                extra,
                format!("does not apply to kind `{}` (its keys: {})", kind.name(), kind.keys().join(", ")),
            ));
        }
        let need = |value: Option<&str>, key: &str| {
            value
                .map(str::to_owned)
                .ok_or_else(|| err(key, format!("is required for kind `{}`", kind.name())))
        };
        let need_path = |key: &str| {
            self.path.clone().ok_or_else(|| err(key, format!("is required for kind `{}`", kind.name())))
        };
        let url = || need(self.url.as_deref(), "url");
        let typed = match kind {
            KindName::Http => {
                let method = self.method.clone().unwrap_or_else(|| "GET".to_owned()).to_ascii_uppercase();
                if !["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"].contains(&method.as_str()) {
                    return Err(err("method", format!("`{method}` is not an HTTP method")));
                }
                if let Some(pointer) =
                    self.json.iter().flatten().map(|(k, _)| k).find(|k| !k.starts_with('/'))
                {
                    return Err(err(
                        "json",
                        format!("`{pointer}` is not a JSON pointer; write it like \"/status\""),
                    ));
                }
                Kind::Http(HttpCheck {
                    url: http_url(&url()?).map_err(|m| err("url", m))?,
                    method,
                    headers: self.headers.clone().unwrap_or_default(),
                    body: self.body.clone(),
                    expect_status: self.expect_status.clone().unwrap_or(ExpectStatus::One(200)),
                    body_contains: self.body_contains.clone(),
                    json: self.json.clone().unwrap_or_default(),
                    max_response_ms: self.max_response_ms,
                })
            }
            KindName::Tls => {
                let (min_days, warn_days) = (self.min_days.unwrap_or(14), self.warn_days.unwrap_or(30));
                if warn_days < min_days {
                    return Err(err(
                        "warn_days",
                        format!("({warn_days}) must be at least min_days ({min_days})"),
                    ));
                }
                let address = need(self.address.as_deref(), "address")?;
                host_port(&address).map_err(|m| err("address", m))?;
                Kind::Tls { address, server_name: self.server_name.clone(), min_days, warn_days }
            }
            KindName::Tcp => {
                let address = need(self.address.as_deref(), "address")?;
                host_port(&address).map_err(|m| err("address", m))?;
                Kind::Tcp { address }
            }
            KindName::Postgres => Kind::Postgres { url: url()? },
            KindName::PrometheusTargets => Kind::PrometheusTargets {
                url: http_url(&url()?).map_err(|m| err("url", m))?,
                job: self.job.clone(),
            },
            KindName::Loki => Kind::Loki { url: http_url(&url()?).map_err(|m| err("url", m))? },
            KindName::Otlp => Kind::Otlp { url: http_url(&url()?).map_err(|m| err("url", m))? },
            KindName::Docs => {
                Kind::Docs { path: need_path("path")?, sections: self.sections.clone().unwrap_or_default() }
            }
            KindName::Coverage => {
                let reports = match (&self.reports, &self.path) {
                    (Some(_), _) if self.min_percent.is_some() => {
                        return Err(err("min_percent", "goes inside each of `reports`".to_owned()));
                    }
                    (Some(_), Some(_)) => {
                        return Err(err("reports", "give either `path` or `reports`, not both".to_owned()));
                    }
                    (Some(reports), None) if reports.is_empty() => {
                        return Err(err("reports", "names no report".to_owned()));
                    }
                    (Some(reports), None) => reports.clone(),
                    (None, _) => vec![CoverageReport {
                        name: None,
                        path: need_path("path")?,
                        min_percent: self.min_percent.unwrap_or(80.0),
                    }],
                };
                if let Some(bad) = reports.iter().find(|r| !(0.0..=100.0).contains(&r.min_percent)) {
                    let key = if self.reports.is_some() { "reports" } else { "min_percent" };
                    return Err(err(key, format!("must be between 0 and 100, not {}", bad.min_percent)));
                }
                Kind::Coverage { reports }
            }
            KindName::Loadtest => Kind::Loadtest {
                path: need_path("path")?,
                max_age: self.max_age.unwrap_or(Duration::from_secs(30 * 86_400)),
            },
            KindName::Command => {
                let run = self.run.clone().unwrap_or_default();
                if run.first().is_none_or(String::is_empty) {
                    return Err(err(
                        "run",
                        "needs a program and its arguments, e.g. [\"make\", \"check\"]".to_owned(),
                    ));
                }
                Kind::Command { run }
            }
            KindName::EnvFiles => {
                Kind::EnvFiles { dir: self.path.clone().unwrap_or_else(|| PathBuf::from(".")) }
            }
            KindName::LokiRetention => Kind::LokiRetention {
                url: http_url(&url()?).map_err(|m| err("url", m))?,
                min_days: self.min_days.unwrap_or(30),
            },
            KindName::Alerting => {
                let source = match (&self.path, &self.url) {
                    (Some(path), None) => AlertingSource::File(path.clone()),
                    (None, Some(url)) => AlertingSource::Url(http_url(url).map_err(|m| err("url", m))?),
                    _ => {
                        return Err(err(
                            "path",
                            "give exactly one of `path` (an alertmanager.yml) and `url` (a running Alertmanager)"
                                .to_owned(),
                        ));
                    }
                };
                let channels =
                    self.channels.clone().unwrap_or_else(|| vec!["email".to_owned(), "slack".to_owned()]);
                if channels.is_empty() {
                    return Err(err("channels", "names no channel; e.g. [\"email\", \"slack\"]".to_owned()));
                }
                Kind::Alerting { source, channels }
            }
            KindName::Attestations => Kind::Attestations,
            KindName::CiWorkflow => {
                let steps = self
                    .steps
                    .clone()
                    .unwrap_or_else(|| ["test", "scan", "coverage"].map(str::to_owned).to_vec());
                if let Some(bad) =
                    steps.iter().find(|s| !["test", "scan", "coverage", "deploy"].contains(&s.as_str()))
                {
                    return Err(err("steps", format!("`{bad}` is not one of test, scan, coverage, deploy")));
                }
                Kind::CiWorkflow { path: need_path("path")?, steps }
            }
            KindName::Dashboards => Kind::Dashboards { path: need_path("path")? },
            KindName::ScanReport => {
                let scans = self.scans.clone().unwrap_or_default();
                if let Some(bad) = scans.iter().find(|s| !["secrets", "dependencies"].contains(&s.as_str())) {
                    return Err(err("scans", format!("`{bad}` is not one of secrets, dependencies")));
                }
                Kind::ScanReport {
                    path: need_path("path")?,
                    max_age: self.max_age.unwrap_or(Duration::from_secs(7 * 86_400)),
                    scans,
                }
            }
            KindName::AlertRules => Kind::AlertRules {
                path: need_path("path")?,
                promtool: self.promtool.clone().unwrap_or_else(|| PathBuf::from("promtool")),
            },
            KindName::Backup => Kind::Backup(BackupCheck {
                store: need(self.store.as_deref(), "store")?,
                database: self.database.clone(),
                max_age: self.max_age.unwrap_or(prodready_backup::freshness::Limits::default().max_age),
                max_verify_age: self
                    .max_verify_age
                    .unwrap_or(prodready_backup::freshness::Limits::default().max_verify_age),
            }),
            KindName::Manual => {
                let attested_on = match &self.attested_at {
                    None => None,
                    Some(dt) => Some(
                        dt.date
                            .map(|d| Date { year: i32::from(d.year), month: d.month, day: d.day })
                            .ok_or_else(|| err("attested_at", "must be a date like 2026-10-01".to_owned()))?,
                    ),
                };
                Kind::Manual(ManualCheck {
                    owner: self.owner.clone(),
                    evidence: self.evidence.clone(),
                    attested_on,
                    expires_after: self.expires_after,
                })
            }
        };
        Ok(Check {
            meta: Meta {
                id: self.id.clone(),
                title: self.title.clone(),
                category,
                must_have: self.must_have,
                weight: self.weight,
                remediation: self.remediation.clone(),
                docs: self.docs.clone(),
            },
            kind: typed,
            timeout: self.timeout,
            not_applicable: self.not_applicable.clone(),
        })
    }
}

fn http_url(url: &str) -> std::result::Result<String, String> {
    if url.starts_with("http://") || url.starts_with("https://") {
        Ok(url.to_owned())
    } else {
        Err(format!("`{url}` must start with http:// or https://"))
    }
}

fn host_port(address: &str) -> std::result::Result<(), String> {
    match address.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => Ok(()),
        _ => Err(format!("`{address}` must be HOST:PORT, e.g. example.com:443")),
    }
}
