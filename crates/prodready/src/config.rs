//! `prodready.toml`: finding it, parsing it with precise errors, environment overrides, embedded
//! defaults and redacted display.
//!
//! The sections and their defaults are in [`crate::sections`]; this module finds, parses, overrides and
//! resolves them.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use prodready_stdx::redact;

pub use crate::sections::*;
use serde::{Deserialize, Serialize};

use crate::env::{self, Env};
use crate::error::UsageError;

/// The file looked for in the working directory when neither `--config` nor `PRODREADY_CONFIG` is set.
pub const DEFAULT_FILE: &str = "prodready.toml";

/// Embedded default database when neither `[database] url` nor `DATABASE_URL` is set.
pub const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// The starter file `prodready init` writes: every section, every key commented out at its default.
pub const STARTER: &str = include_str!("starter.toml");

/// The whole configuration: one section per crate plus the cross-cutting `[general]` and `[database]`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub general: General,
    pub database: Database,
    pub backup: BackupConfig,
    pub secrets: SecretsConfig,
    pub scan: ScanConfig,
    pub logging: LoggingConfig,
    pub alerts: AlertsConfig,
    pub stack: StackConfig,
    pub daemon: DaemonConfig,
    pub database_monitoring: DatabaseMonitoringConfig,
    pub tracing: TracingConfig,
    pub loadtest: LoadtestConfig,
    pub checklist: ChecklistConfig,
}

/// The `[general]` section.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct General {
    /// Where local state lives (backups, the secret store, histories); `None` means
    /// `$XDG_DATA_HOME/prodready`, else `$HOME/.local/share/prodready`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
}

/// The `[database]` section: the PostgreSQL database the platform runs on.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Database {
    /// A libpq-style URL; `None` means `DATABASE_URL`, else the local server.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Whether the URL was configured (here or by `$DATABASE_URL`) rather than the embedded default.
    #[serde(skip)]
    pub configured: bool,
}

/// Where the configuration came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// No file: embedded defaults (plus environment overrides).
    Embedded,
    /// This file.
    File(PathBuf),
}

/// The effective configuration and where it came from.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub config: Config,
    pub source: Source,
    /// Environment variables that overrode a key, for display.
    pub overrides: Vec<String>,
}

/// Finds, parses and resolves the configuration: `--config`, else `PRODREADY_CONFIG`, else
/// `./prodready.toml` if it exists, else embedded defaults; then `PRODREADY_<SECTION>__<KEY>` overrides;
/// then environment-derived defaults for whatever is still unset.
pub fn load(flag: Option<&Path>, env: &Env) -> Result<Loaded, UsageError> {
    let path = match (flag, env.get(env::CONFIG)) {
        (Some(path), _) => Some(required(path, "--config")?),
        (None, Some(path)) => Some(required(Path::new(path), env::CONFIG)?),
        (None, None) => Some(PathBuf::from(DEFAULT_FILE)).filter(|p| p.is_file()),
    };
    let (table, source) = match &path {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| {
                UsageError(format!("{}: cannot read the configuration file: {e}", path.display()))
            })?;
            (parse(path, &text)?, Source::File(path.clone()))
        }
        None => (toml::Table::new(), Source::Embedded),
    };
    let overrides = overrides(env)?;
    let config = apply_overrides(table, &overrides)?;
    Ok(Loaded {
        config: config.resolve(env),
        source,
        overrides: overrides.into_iter().map(|o| o.var).collect(),
    })
}

fn required(path: &Path, via: &str) -> Result<PathBuf, UsageError> {
    if path.is_dir() {
        return Err(UsageError(format!(
            "{}: is a directory, not a configuration file (named by {via}); name the file, e.g. {}",
            path.display(),
            path.join("prodready.toml").display()
        )));
    }
    if path.is_file() {
        Ok(path.to_path_buf())
    } else {
        Err(UsageError(format!(
            "{}: configuration file not found (named by {via}); create one with `prodready init --path {}`",
            path.display(),
            path.display()
        )))
    }
}

/// Parses and type-checks one file, reporting the first problem as `FILE:LINE:COL: KEY: what is wrong`.
pub fn parse(path: &Path, text: &str) -> Result<toml::Table, UsageError> {
    let table: toml::Table =
        toml::from_str(text).map_err(|e| located(path, text, e.span(), None, e.message()))?;
    parse_as::<Config>(path, text)?;
    Ok(table)
}

/// Deserializes a whole TOML file into `T`, reporting the first problem as `FILE:LINE:COL: KEY: ...`.
pub fn parse_as<T: serde::de::DeserializeOwned>(path: &Path, text: &str) -> Result<T, UsageError> {
    let de = toml::Deserializer::parse(text).map_err(|e| located(path, text, e.span(), None, e.message()))?;
    serde_path_to_error::deserialize::<_, T>(de).map_err(|e| {
        let key = key_of(&e.path().to_string(), e.inner().message());
        located(path, text, e.inner().span(), key.as_deref(), e.inner().message())
    })
}

/// The dotted key an error is about; serde reports an unknown field at its parent, so the field's own
/// name is taken from the message.
fn key_of(path: &str, message: &str) -> Option<String> {
    let path = if path == "." || path == "?" { "" } else { path };
    let unknown = message.strip_prefix("unknown field `").and_then(|rest| rest.split('`').next());
    let key = match unknown {
        Some(field) if path.is_empty() => field.to_owned(),
        Some(field) if path != field && !path.ends_with(&format!(".{field}")) => format!("{path}.{field}"),
        _ => path.to_owned(),
    };
    Some(key).filter(|k| !k.is_empty())
}

fn located(
    path: &Path,
    text: &str,
    span: Option<std::ops::Range<usize>>,
    key: Option<&str>,
    message: &str,
) -> UsageError {
    let mut out = path.display().to_string();
    if let Some(span) = span {
        let before = &text[..span.start.min(text.len())];
        let line = before.matches('\n').count() + 1;
        let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        let _ = write!(out, ":{line}:{col}");
    }
    if let Some(key) = key {
        let _ = write!(out, ": {key}");
    }
    let message = message.trim_end_matches('.').trim();
    let _ = write!(out, ": {message}");
    if let Some(hint) = hint(message) {
        let _ = write!(out, " ({hint})");
    }
    UsageError(out)
}

fn hint(message: &str) -> Option<&'static str> {
    if message.starts_with("unknown field") {
        Some("remove it or fix its spelling; `prodready init --path FILE` writes every key with its default")
    } else if message.ends_with("expected a duration") {
        Some("write a duration such as 30s, 5m, 12h or 90d")
    } else if message.starts_with("invalid type") {
        Some("write the value with the expected type, e.g. a number without quotes")
    } else {
        None
    }
}

/// One `PRODREADY_<SECTION>__<KEY>` override.
#[derive(Debug, Clone)]
struct Override {
    var: String,
    path: Vec<String>,
    raw: String,
}

fn overrides(env: &Env) -> Result<Vec<Override>, UsageError> {
    let mut out = Vec::new();
    for (var, value) in env.iter() {
        let Some(rest) = var.strip_prefix(env::OVERRIDE_PREFIX) else { continue };
        if !rest.contains(env::OVERRIDE_SEPARATOR) {
            continue; // PRODREADY_CONFIG and friends, not overrides
        }
        let path: Vec<String> = rest.split(env::OVERRIDE_SEPARATOR).map(str::to_ascii_lowercase).collect();
        if path.iter().any(String::is_empty) {
            return Err(UsageError(format!(
                "{var}: empty key part; write PRODREADY_<SECTION>__<KEY>, e.g. PRODREADY_BACKUP__JOBS=4"
            )));
        }
        out.push(Override { var: var.to_owned(), path, raw: value.to_owned() });
    }
    Ok(out)
}

/// A value as written in the environment: a TOML literal when it is one (`3`, `true`, `["a"]`), else a
/// string. When the literal has the wrong type for its key, it is retried as a string.
fn literal(raw: &str) -> toml::Value {
    toml::from_str::<toml::Table>(&format!("v = {raw}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.to_owned()))
}

fn apply_overrides(table: toml::Table, overrides: &[Override]) -> Result<Config, UsageError> {
    let mut as_string = vec![false; overrides.len()];
    loop {
        let mut table = table.clone();
        for (o, &string) in overrides.iter().zip(&as_string) {
            let value = if string { toml::Value::String(o.raw.clone()) } else { literal(&o.raw) };
            set(&mut table, o, value)?;
        }
        let err = match serde_path_to_error::deserialize::<_, Config>(toml::Value::Table(table)) {
            Ok(config) => return Ok(config),
            Err(err) => err,
        };
        let key = key_of(&err.path().to_string(), err.inner().message()).unwrap_or_default();
        let culprit = overrides.iter().position(|o| related(&key, &o.path.join(".")));
        match culprit {
            // Only a wrong type is worth a retry as a string (`PRODREADY_X__NAME=123` for a string key).
            Some(i)
                if !as_string[i]
                    && err.inner().message().starts_with("invalid type")
                    && !matches!(literal(&overrides[i].raw), toml::Value::String(_)) =>
            {
                as_string[i] = true;
            }
            Some(i) => {
                let message = err.inner().message().trim_end_matches('.');
                return Err(UsageError(format!("{}: {key}: {message}", overrides[i].var)));
            }
            None => return Err(UsageError(format!("{key}: {}", err.inner().message()))),
        }
    }
}

/// Whether one dotted key is the other or lies under it.
fn related(a: &str, b: &str) -> bool {
    let under = |long: &str, short: &str| {
        long.strip_prefix(short).is_some_and(|r| r.is_empty() || r.starts_with('.'))
    };
    under(a, b) || under(b, a)
}

fn set(table: &mut toml::Table, o: &Override, value: toml::Value) -> Result<(), UsageError> {
    let (leaf, parents) = o.path.split_last().expect("an override has at least two parts");
    let mut at = table;
    for part in parents {
        let entry = at.entry(part.clone()).or_insert_with(|| toml::Value::Table(toml::Table::new()));
        at = match entry {
            toml::Value::Table(t) => t,
            _ => return Err(UsageError(format!("{}: `{part}` is not a table, so it has no keys", o.var))),
        };
    }
    at.insert(leaf.clone(), value);
    Ok(())
}

impl Config {
    /// Fills every unset, environment-dependent default: the data directory, the database URL and the
    /// paths under the data directory.
    pub fn resolve(mut self, env: &Env) -> Self {
        let data_dir = self.general.data_dir.clone().unwrap_or_else(|| default_data_dir(env));
        self.general.data_dir = Some(data_dir.clone());
        self.database.configured = self.database.url.is_some() || env.get(env::DATABASE_URL).is_some();
        if self.database.url.is_none() {
            self.database.url = Some(
                env.get(env::DATABASE_URL).map_or_else(|| DEFAULT_DATABASE_URL.to_owned(), str::to_owned),
            );
        }
        let under = |name: &str| Some(data_dir.join(name));
        if self.backup.store.is_none() {
            self.backup.store = Some(data_dir.join("backups").display().to_string());
        }
        self.secrets.file = self.secrets.file.or_else(|| under("secrets.enc"));
        self.secrets.key_file = self.secrets.key_file.or_else(|| under("secrets.key"));
        self.logging.ship.positions = self.logging.ship.positions.or_else(|| under("positions.json"));
        self.loadtest.summary = self.loadtest.summary.or_else(|| under("loadtest-summary.json"));
        self.checklist.history_file = self.checklist.history_file.or_else(|| under("check-history.jsonl"));
        self
    }

    /// The backup store after [`Config::resolve`] (`<data_dir>/backups` unless set).
    pub fn backup_store(&self) -> &str {
        self.backup.store.as_deref().expect("Config::resolve sets [backup] store")
    }

    /// The encrypted secrets file after [`Config::resolve`].
    pub fn secrets_file(&self) -> &Path {
        self.secrets.file.as_deref().expect("Config::resolve sets [secrets] file")
    }

    /// The secrets key file after [`Config::resolve`].
    pub fn secrets_key_file(&self) -> &Path {
        self.secrets.key_file.as_deref().expect("Config::resolve sets [secrets] key_file")
    }

    /// The positions file of `logs ship` after [`Config::resolve`].
    pub fn positions(&self) -> &Path {
        self.logging.ship.positions.as_deref().expect("Config::resolve sets [logging.ship] positions")
    }

    /// Where the last load test's summary is, after [`Config::resolve`].
    pub fn loadtest_summary(&self) -> &Path {
        self.loadtest.summary.as_deref().expect("Config::resolve sets [loadtest] summary")
    }

    /// The database URL after [`Config::resolve`].
    pub fn database_url(&self) -> &str {
        self.database.url.as_deref().unwrap_or(DEFAULT_DATABASE_URL)
    }

    /// The configuration as JSON with secret values redacted, for display (TOML dates as strings).
    pub fn redacted_json(&self) -> serde_json::Value {
        fn plain(value: toml::Value) -> serde_json::Value {
            match value {
                toml::Value::Datetime(d) => serde_json::Value::String(d.to_string()),
                toml::Value::Array(items) => serde_json::Value::Array(items.into_iter().map(plain).collect()),
                toml::Value::Table(t) => {
                    serde_json::Value::Object(t.into_iter().map(|(k, v)| (k, plain(v))).collect())
                }
                other => serde_json::to_value(other).expect("a TOML scalar is JSON"),
            }
        }
        plain(self.redacted())
    }

    /// The configuration as a TOML value with secret values redacted, for display.
    pub fn redacted(&self) -> toml::Value {
        let mut value = toml::Value::try_from(self).expect("the configuration serializes to TOML");
        redact(&mut value, "");
        value
    }
}

fn default_data_dir(env: &Env) -> PathBuf {
    if let Some(xdg) = env.get(env::XDG_DATA_HOME) {
        Path::new(xdg).join("prodready")
    } else if let Some(home) = env.get(env::HOME) {
        Path::new(home).join(".local/share/prodready")
    } else {
        PathBuf::from(".prodready")
    }
}

fn redact(value: &mut toml::Value, key: &str) {
    // Serializing a TOML date through serde leaves toml's private wrapper table: turn it back into a date.
    if let toml::Value::Table(t) = value {
        let wrapped =
            t.get("$__toml_private_datetime").and_then(toml::Value::as_str).filter(|_| t.len() == 1);
        if let Some(date) = wrapped.and_then(|d| d.parse::<toml::value::Datetime>().ok()) {
            *value = toml::Value::Datetime(date);
            return;
        }
    }
    match value {
        // HTTP headers carry credentials under many names (Authorization, Cookie, X-Api-Key): hide them all.
        toml::Value::Table(t) if key == "headers" => {
            t.iter_mut().for_each(|(_, v)| *v = toml::Value::String(redact::MASK.to_owned()));
        }
        toml::Value::String(s) if redact::is_secret_name(key) => *s = redact::MASK.to_owned(),
        toml::Value::String(s) => *s = redact::url(s),
        toml::Value::Array(items) => items.iter_mut().for_each(|v| redact(v, key)),
        toml::Value::Table(t) => t.iter_mut().for_each(|(k, v)| redact(v, k)),
        _ => {}
    }
}
