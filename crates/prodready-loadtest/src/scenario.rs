//! Scenario files: TOML with k6's option names, parsed into a [`Plan`]. Every error names the file,
//! the line and column, and the dotted key it is about.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::template::Template;
use crate::threshold::{Aggregation, Expr, Selector, Threshold};

/// An invalid scenario file: where and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScenarioError {
    pub file: PathBuf,
    /// 1-based line and column, when known.
    pub line: Option<usize>,
    pub column: Option<usize>,
    /// The dotted key the error is about (`scenarios.browse.executor`).
    pub key: Option<String>,
    pub message: String,
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let (Some(line), Some(column)) = (self.line, self.column) {
            write!(f, ":{line}:{column}")?;
        }
        if let Some(key) = &self.key {
            write!(f, ": {key}")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for ScenarioError {}

/// A parsed, validated scenario file: what a run does.
#[derive(Debug, Clone)]
pub struct Plan {
    pub scenarios: Vec<Scenario>,
    /// Thresholds by metric or sub-metric, in file order.
    pub thresholds: Vec<(Selector, Vec<Threshold>)>,
    /// The trend statistics summaries show (k6's `summaryTrendStats`).
    pub summary_trend_stats: Vec<Aggregation>,
    pub(crate) vars: Vars,
    /// Check names, indexed by [`Check::id`].
    pub(crate) check_names: Vec<String>,
    /// k6's `insecureSkipTLSVerify`: https targets' certificates are not checked.
    pub insecure_skip_tls_verify: bool,
}

impl Plan {
    /// The longest the run can take: every scenario's start, duration and graceful stop.
    pub fn max_duration(&self) -> Duration {
        self.scenarios
            .iter()
            .map(|s| s.start_time + s.executor.max_duration() + s.graceful_stop)
            .max()
            .unwrap_or_default()
    }

    /// The largest number of VUs the run may use.
    pub fn max_vus(&self) -> u64 {
        self.scenarios.iter().map(|s| s.executor.max_vus()).sum()
    }
}

/// One scenario: an executor and the requests of one iteration.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub name: String,
    pub executor: Executor,
    pub start_time: Duration,
    pub graceful_stop: Duration,
    pub requests: Vec<Request>,
    /// Pause at the end of each iteration.
    pub think_time: Option<ThinkTime>,
    /// Tags on every sample of this scenario (`scenario` is added).
    pub tags: Vec<(String, String)>,
}

/// k6's six executors, with k6's option names in the file.
#[derive(Debug, Clone, PartialEq)]
pub enum Executor {
    /// `vus` VUs loop for `duration`.
    ConstantVus { vus: u64, duration: Duration },
    /// VUs follow `stages` from `startVUs`.
    RampingVus { start_vus: u64, stages: Vec<Stage>, graceful_ramp_down: Duration },
    /// `iterations` in total, shared by `vus` VUs, within `maxDuration`.
    SharedIterations { vus: u64, iterations: u64, max_duration: Duration },
    /// `iterations` per VU, within `maxDuration`.
    PerVuIterations { vus: u64, iterations: u64, max_duration: Duration },
    /// `rate` iterations per `timeUnit` for `duration`, open model.
    ConstantArrivalRate {
        rate: u64,
        time_unit: Duration,
        duration: Duration,
        pre_allocated_vus: u64,
        max_vus: u64,
    },
    /// The rate follows `stages` from `startRate`, open model.
    RampingArrivalRate {
        start_rate: u64,
        time_unit: Duration,
        stages: Vec<Stage>,
        pre_allocated_vus: u64,
        max_vus: u64,
    },
}

/// One stage of a ramping executor: reach `target` (VUs or iterations per time unit) over `duration`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stage {
    pub duration: Duration,
    pub target: u64,
}

impl Executor {
    /// k6's name of the executor.
    pub fn name(&self) -> &'static str {
        match self {
            Executor::ConstantVus { .. } => "constant-vus",
            Executor::RampingVus { .. } => "ramping-vus",
            Executor::SharedIterations { .. } => "shared-iterations",
            Executor::PerVuIterations { .. } => "per-vu-iterations",
            Executor::ConstantArrivalRate { .. } => "constant-arrival-rate",
            Executor::RampingArrivalRate { .. } => "ramping-arrival-rate",
        }
    }

    /// The scenario's own length, before its graceful stop.
    pub fn max_duration(&self) -> Duration {
        match self {
            Executor::ConstantVus { duration, .. } | Executor::ConstantArrivalRate { duration, .. } => {
                *duration
            }
            Executor::SharedIterations { max_duration, .. }
            | Executor::PerVuIterations { max_duration, .. } => *max_duration,
            Executor::RampingVus { stages, .. } | Executor::RampingArrivalRate { stages, .. } => {
                stages.iter().map(|s| s.duration).sum()
            }
        }
    }

    /// The most VUs the executor may run at once.
    pub fn max_vus(&self) -> u64 {
        match self {
            Executor::ConstantVus { vus, .. }
            | Executor::SharedIterations { vus, .. }
            | Executor::PerVuIterations { vus, .. } => *vus,
            Executor::RampingVus { start_vus, stages, .. } => {
                stages.iter().map(|s| s.target).max().unwrap_or(0).max(*start_vus)
            }
            Executor::ConstantArrivalRate { pre_allocated_vus, max_vus, .. }
            | Executor::RampingArrivalRate { pre_allocated_vus, max_vus, .. } => {
                (*max_vus).max(*pre_allocated_vus)
            }
        }
    }

    /// Whether iterations start on a schedule (open model) rather than when a VU is free.
    pub fn is_open(&self) -> bool {
        matches!(self, Executor::ConstantArrivalRate { .. } | Executor::RampingArrivalRate { .. })
    }
}

/// A pause: fixed, or uniformly random between two bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThinkTime {
    pub min: Duration,
    pub max: Duration,
}

/// One HTTP request of an iteration.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: http::Method,
    pub(crate) url: Template,
    pub(crate) headers: Vec<(http::HeaderName, Template)>,
    pub(crate) body: Option<Template>,
    /// The request's `name` tag (k6's default: the URL as written).
    pub name: String,
    /// Tags on this request's samples besides the automatic ones.
    pub tags: Vec<(String, String)>,
    pub checks: Vec<Check>,
    /// Pause after this request.
    pub think_time: Option<ThinkTime>,
    /// How long the request may take (k6's `timeout`); `None` means the run's default.
    pub timeout: Option<Duration>,
    /// What the checks read of the response besides its status (the rest is counted, not kept).
    pub(crate) keep: crate::client::Keep,
    /// Whether the request sets its own `Host` header.
    pub(crate) own_host: bool,
}

/// One check on a response; its outcome feeds the `checks` rate.
#[derive(Debug, Clone, PartialEq)]
pub struct Check {
    /// Index into the plan's check names.
    pub id: usize,
    pub kind: CheckKind,
}

/// What a check asserts.
#[derive(Debug, Clone, PartialEq)]
pub enum CheckKind {
    /// The status is one of these.
    Status(Vec<u16>),
    /// The body contains this text.
    BodyContains(String),
    /// The JSON body has a value at this path (`items[0].id`, `$.a.b`), equal to `equals` if given.
    Json { path: Vec<PathStep>, source: String, equals: Option<serde_json::Value> },
    /// The header is present and its value contains this text.
    Header { name: http::HeaderName, contains: String },
    /// The request took at most this long (from its send).
    MaxDuration(Duration),
}

/// One step of a JSON path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathStep {
    Key(String),
    Index(usize),
}

/// Where a variable's value comes from.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum VarSource {
    Const(String),
    RandomInt(i64, i64),
    OneOf(Vec<String>),
    /// `__VU`: the VU's number, from 1.
    Vu,
    /// `__ITER`: the VU's iteration number in its scenario, from 0.
    Iter,
    /// `__SCENARIO`: the scenario's name.
    ScenarioName,
    /// A column of a CSV data set.
    Column {
        data: usize,
        column: usize,
    },
}

/// A CSV data set: every iteration takes one row (in order across the run, or at random).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct DataSet {
    pub(crate) name: String,
    /// The file as written in the scenario (relative to it unless absolute).
    pub(crate) file: String,
    pub(crate) rows: Vec<Vec<String>>,
    pub(crate) random: bool,
}

/// The variables templates may name.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Vars {
    pub(crate) names: Vec<String>,
    pub(crate) sources: Vec<VarSource>,
    pub(crate) data: Vec<DataSet>,
}

// ---------------------------------------------------------------------------------------------------
// The file as written.

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    options: RawOptions,
    #[serde(default)]
    vars: BTreeMap<String, Spanned<RawVar>>,
    #[serde(default)]
    data: BTreeMap<String, Spanned<RawData>>,
    #[serde(default)]
    scenarios: BTreeMap<String, Spanned<RawScenario>>,
    #[serde(default)]
    thresholds: BTreeMap<String, Spanned<Vec<RawThreshold>>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawOptions {
    #[serde(rename = "summaryTrendStats")]
    summary_trend_stats: Option<Vec<Spanned<String>>>,
    /// k6's option: https targets' certificates are not checked.
    #[serde(rename = "insecureSkipTLSVerify", default)]
    insecure_skip_tls_verify: bool,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawVar {
    Text(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    Table(RawVarTable),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawVarTable {
    random_int: Option<[i64; 2]>,
    one_of: Option<Vec<toml::Value>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawData {
    file: String,
    #[serde(default)]
    pick: Pick,
}

#[derive(Deserialize, Default, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum Pick {
    #[default]
    Sequential,
    Random,
}

#[derive(Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
enum ExecutorName {
    ConstantVus,
    RampingVus,
    SharedIterations,
    PerVuIterations,
    ConstantArrivalRate,
    RampingArrivalRate,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScenario {
    executor: Spanned<ExecutorName>,
    #[serde(rename = "startTime")]
    start_time: Option<Spanned<Dur>>,
    #[serde(rename = "gracefulStop")]
    graceful_stop: Option<Spanned<Dur>>,
    vus: Option<Spanned<u64>>,
    iterations: Option<Spanned<u64>>,
    duration: Option<Spanned<Dur>>,
    #[serde(rename = "maxDuration")]
    max_duration: Option<Spanned<Dur>>,
    #[serde(rename = "startVUs")]
    start_vus: Option<Spanned<u64>>,
    stages: Option<Spanned<Vec<RawStage>>>,
    #[serde(rename = "gracefulRampDown")]
    graceful_ramp_down: Option<Spanned<Dur>>,
    rate: Option<Spanned<u64>>,
    #[serde(rename = "startRate")]
    start_rate: Option<Spanned<u64>>,
    #[serde(rename = "timeUnit")]
    time_unit: Option<Spanned<Dur>>,
    #[serde(rename = "preAllocatedVUs")]
    pre_allocated_vus: Option<Spanned<u64>>,
    #[serde(rename = "maxVUs")]
    max_vus: Option<Spanned<u64>>,
    #[serde(default)]
    tags: BTreeMap<String, String>,
    think_time: Option<Spanned<Think>>,
    #[serde(default)]
    requests: Vec<Spanned<RawRequest>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStage {
    duration: Dur,
    target: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRequest {
    #[serde(default = "get")]
    method: Spanned<String>,
    url: Spanned<String>,
    #[serde(default)]
    headers: BTreeMap<String, Spanned<String>>,
    body: Option<Spanned<String>>,
    #[serde(default)]
    tags: BTreeMap<String, String>,
    checks: Option<Spanned<RawChecks>>,
    think_time: Option<Spanned<Think>>,
    /// k6's request `timeout` (default 60 s).
    timeout: Option<Spanned<Dur>>,
}

fn get() -> Spanned<String> {
    Spanned::new(0..0, "GET".to_owned())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawChecks {
    status: Option<StatusList>,
    body_contains: Option<String>,
    json_path: Option<Spanned<String>>,
    json_equals: Option<toml::Value>,
    #[serde(default)]
    header: BTreeMap<String, String>,
    max_duration: Option<Dur>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum StatusList {
    One(u16),
    Many(Vec<u16>),
}

enum RawThreshold {
    Expr(ExprText),
    Table(RawThresholdTable),
}

impl<'de> Deserialize<'de> for RawThreshold {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = RawThreshold;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a threshold expression such as \"p(95)<500\" or a table { threshold = \"...\", abortOnFail = true }")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<RawThreshold, E> {
                Expr::parse(v).map(|e| RawThreshold::Expr(ExprText(e))).map_err(E::custom)
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<RawThreshold, A::Error> {
                RawThresholdTable::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    .map(RawThreshold::Table)
            }
        }
        d.deserialize_any(Visitor)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawThresholdTable {
    threshold: ExprText,
    #[serde(rename = "abortOnFail", default)]
    abort_on_fail: bool,
    #[serde(rename = "delayAbortEval")]
    delay_abort_eval: Option<Dur>,
    /// Ours, beyond k6: judge over every window of this length.
    window: Option<Dur>,
}

/// A threshold expression, checked while the file is read so the error carries its place.
struct ExprText(Expr);

impl<'de> Deserialize<'de> for ExprText {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Expr::parse(&text).map(ExprText).map_err(serde::de::Error::custom)
    }
}

/// A duration in k6's notation (`30s`, `1m30s`, `500ms`, `2h`).
#[derive(Clone, Copy)]
struct Dur(Duration);

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        parse_duration(&text).map(Dur).map_err(serde::de::Error::custom)
    }
}

/// The longest duration a scenario file may give: past it, a run's deadlines would overflow the clock.
const MAX_DURATION: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

/// k6's duration notation, at most ten years.
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(text.trim())
        .map_err(|_| format!("`{text}` is not a duration: write e.g. 500ms, 30s, 1m30s or 2h"))?;
    if d > MAX_DURATION {
        return Err(format!("`{text}` is longer than the 10 years a duration may be"));
    }
    Ok(d)
}

/// `think_time = "1s"` or `"1s..3s"`.
struct Think(ThinkTime);

impl<'de> Deserialize<'de> for Think {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        let (min, max) = match text.split_once("..") {
            Some((a, b)) => (parse_duration(a), parse_duration(b)),
            None => (parse_duration(&text), parse_duration(&text)),
        };
        let (min, max) = (min.map_err(serde::de::Error::custom)?, max.map_err(serde::de::Error::custom)?);
        if min > max {
            return Err(serde::de::Error::custom(format!(
                "`{text}`: the lower bound is above the upper one"
            )));
        }
        Ok(Think(ThinkTime { min, max }))
    }
}

// ---------------------------------------------------------------------------------------------------
// Parsing and validation.

/// Reads the files a scenario names (CSV data), relative to the scenario file's directory.
pub type ReadFile<'a> = &'a mut dyn FnMut(&Path) -> std::io::Result<String>;

/// Parses a scenario file. `path` is used in messages and to resolve data files, which are read through
/// `read` (the caller decides how files are read).
pub fn parse(path: &Path, text: &str, read: ReadFile<'_>) -> Result<Plan, ScenarioError> {
    let at = Locator { path, text };
    let de = toml::Deserializer::parse(text).map_err(|e| {
        let key = e.span().and_then(|span| syntax_key(text, span.start));
        at.error(e.span(), key.as_deref(), e.message())
    })?;
    let raw: RawFile = serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string().replace(".$__serde_spanned_private_value", "");
        let key = key_of(&path, e.inner().message());
        at.error(e.inner().span(), key.as_deref(), e.inner().message())
    })?;
    build(&at, raw, read)
}

/// The key a TOML syntax error at byte `at` is about, read from the text (nothing parsed it): the table
/// header on that line (`[scenarios.s`), or the key before `=` there, under the nearest table header
/// above (`scenarios.s.exec`). `None` when the line is neither.
fn syntax_key(text: &str, at: usize) -> Option<String> {
    let at = at.min(text.len());
    let start = text[..at].rfind('\n').map_or(0, |i| i + 1);
    let line = text[start..].lines().next().unwrap_or("").trim();
    let header = |line: &str| -> Option<String> {
        let inner = line.strip_prefix('[')?.trim_start_matches('[');
        let inner = inner.split(']').next().unwrap_or(inner).trim();
        (!inner.is_empty()).then(|| inner.to_owned())
    };
    if line.starts_with('[') {
        return header(line);
    }
    let (key, _) = line.split_once('=')?;
    let key = key.trim();
    if key.is_empty() || key.starts_with('#') {
        return None;
    }
    let table = text[..start].lines().rev().map(str::trim).find(|l| l.starts_with('[')).and_then(header);
    Some(table.map_or_else(|| key.to_owned(), |table| format!("{table}.{key}")))
}

struct Locator<'a> {
    path: &'a Path,
    text: &'a str,
}

impl Locator<'_> {
    fn error(&self, span: Option<std::ops::Range<usize>>, key: Option<&str>, message: &str) -> ScenarioError {
        let (line, column) = match span {
            Some(span) => {
                let before = &self.text[..span.start.min(self.text.len())];
                let line = before.matches('\n').count() + 1;
                let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
                (Some(line), Some(column))
            }
            None => (None, None),
        };
        let mut message = message.trim().trim_end_matches('.').to_owned();
        // serde's untagged enums say only that nothing matched; say what is expected instead.
        if message.starts_with("data did not match any variant of untagged enum") {
            message = match message.rsplit(' ').next() {
                Some("RawVar") => {
                    "a variable is a string, a number, { random_int = [1, 10] } or { one_of = [...] }"
                        .to_owned()
                }
                Some("StatusList") => "a status is a number or a list of numbers".to_owned(),
                _ => message,
            };
        }
        ScenarioError {
            file: self.path.to_path_buf(),
            line,
            column,
            key: key.map(str::to_owned).filter(|k| !k.is_empty()),
            message,
        }
    }

    fn at<T>(&self, spanned: &Spanned<T>, key: &str, message: impl Into<String>) -> ScenarioError {
        let span = spanned.span();
        self.error((span.end > 0).then_some(span), Some(key), &message.into())
    }
}

/// The dotted key an error is about; serde reports an unknown field at its parent.
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

const DEFAULT_GRACEFUL_STOP: Duration = Duration::from_secs(30);
const DEFAULT_MAX_DURATION: Duration = Duration::from_secs(600);

/// The default `summaryTrendStats`, as in k6.
pub const DEFAULT_TREND_STATS: [Aggregation; 6] = [
    Aggregation::Avg,
    Aggregation::Min,
    Aggregation::Med,
    Aggregation::Max,
    Aggregation::Percentile(90.0),
    Aggregation::Percentile(95.0),
];

fn build(at: &Locator<'_>, raw: RawFile, read: ReadFile<'_>) -> Result<Plan, ScenarioError> {
    // Variables: built-ins, [vars], then the columns of [data.*].
    let mut vars = Vars::default();
    for (name, source) in
        [("__VU", VarSource::Vu), ("__ITER", VarSource::Iter), ("__SCENARIO", VarSource::ScenarioName)]
    {
        vars.names.push(name.to_owned());
        vars.sources.push(source);
    }
    for (name, var) in &raw.vars {
        let key = format!("vars.{name}");
        check_name(at, var, &key, name)?;
        let source = match var.get_ref() {
            RawVar::Text(s) => VarSource::Const(s.clone()),
            RawVar::Int(i) => VarSource::Const(i.to_string()),
            RawVar::Float(f) => VarSource::Const(f.to_string()),
            RawVar::Bool(b) => VarSource::Const(b.to_string()),
            RawVar::Table(RawVarTable { random_int: Some([lo, hi]), one_of: None }) => {
                if lo > hi {
                    return Err(at.at(
                        var,
                        &key,
                        format!("random_int = [{lo}, {hi}]: the lower bound is above the upper one"),
                    ));
                }
                VarSource::RandomInt(*lo, *hi)
            }
            RawVar::Table(RawVarTable { random_int: None, one_of: Some(values) }) => {
                if values.is_empty() {
                    return Err(at.at(var, &key, "one_of needs at least one value"));
                }
                VarSource::OneOf(values.iter().map(toml_text).collect())
            }
            RawVar::Table(_) => {
                return Err(at.at(
                    var,
                    &key,
                    "write either { random_int = [LOW, HIGH] } or { one_of = [...] }",
                ));
            }
        };
        vars.names.push(name.clone());
        vars.sources.push(source);
    }
    for (name, data) in &raw.data {
        let key = format!("data.{name}.file");
        check_name(at, data, &format!("data.{name}"), name)?;
        let file = resolve(at.path, &data.get_ref().file);
        let text =
            read(&file).map_err(|e| at.at(data, &key, format!("cannot read {}: {e}", file.display())))?;
        let mut reader =
            csv::ReaderBuilder::new().has_headers(true).flexible(false).from_reader(text.as_bytes());
        let header: Vec<String> = reader
            .headers()
            .map_err(|e| at.at(data, &key, format!("{}: {e}", file.display())))?
            .iter()
            .map(|h| h.trim().to_owned())
            .collect();
        let mut rows = Vec::new();
        for record in reader.records() {
            let record = record.map_err(|e| at.at(data, &key, format!("{}: {e}", file.display())))?;
            rows.push(record.iter().map(str::to_owned).collect::<Vec<_>>());
        }
        if rows.is_empty() {
            return Err(at.at(data, &key, format!("{} has a header but no rows", file.display())));
        }
        let index = vars.data.len();
        for (column, col_name) in header.iter().enumerate() {
            vars.names.push(format!("{name}.{col_name}"));
            vars.sources.push(VarSource::Column { data: index, column });
        }
        vars.data.push(DataSet {
            name: name.clone(),
            file: data.get_ref().file.clone(),
            rows,
            random: matches!(data.get_ref().pick, Pick::Random),
        });
    }

    let mut check_names: Vec<String> = Vec::new();
    let mut scenarios = Vec::new();
    if raw.scenarios.is_empty() {
        return Err(at.error(
            None,
            Some("scenarios"),
            "no scenario: add a [scenarios.NAME] table with an executor and [[scenarios.NAME.requests]]",
        ));
    }
    for (name, scenario) in &raw.scenarios {
        scenarios.push(build_scenario(at, name, scenario, &vars, &mut check_names)?);
    }

    let summary_trend_stats = match &raw.options.summary_trend_stats {
        None => DEFAULT_TREND_STATS.to_vec(),
        Some(stats) => {
            let mut out = Vec::new();
            for stat in stats {
                let agg = Expr::parse(&format!("{}<0", stat.get_ref()))
                    .ok()
                    .map(|e| e.aggregation)
                    .filter(|a| {
                        matches!(
                            a,
                            Aggregation::Avg
                                | Aggregation::Min
                                | Aggregation::Med
                                | Aggregation::Max
                                | Aggregation::Count
                                | Aggregation::Percentile(_)
                        )
                    })
                    .ok_or_else(|| {
                        at.at(
                            stat,
                            "options.summaryTrendStats",
                            format!(
                                "`{}` is not a trend statistic: use avg, min, med, max or p(N)",
                                stat.get_ref()
                            ),
                        )
                    })?;
                out.push(agg);
            }
            out
        }
    };

    let mut thresholds = Vec::new();
    for (metric, list) in &raw.thresholds {
        let key = format!("thresholds.{}", quote_key(metric));
        let selector = Selector::parse(metric).map_err(|e| at.at(list, &key, e))?;
        let mut out = Vec::new();
        for (i, t) in list.get_ref().iter().enumerate() {
            let threshold = match t {
                RawThreshold::Expr(ExprText(expr)) => Threshold {
                    expr: expr.clone(),
                    abort_on_fail: false,
                    delay_abort_eval: Duration::ZERO,
                    window: None,
                },
                RawThreshold::Table(table) => Threshold {
                    expr: table.threshold.0.clone(),
                    abort_on_fail: table.abort_on_fail,
                    delay_abort_eval: table.delay_abort_eval.map_or(Duration::ZERO, |d| d.0),
                    window: table.window.map(|d| d.0),
                },
            };
            if let Some(w) = threshold.window {
                let key = format!("{key}[{i}].window");
                if w < Duration::from_secs(1) || w.subsec_nanos() != 0 {
                    return Err(at.at(
                        list,
                        &key,
                        format!(
                            "window `{}`: a window is a whole number of seconds, at least 1s (e.g. window = \"30s\")",
                            humantime::format_duration(w)
                        ),
                    ));
                }
                if matches!(selector.metric.metric_type(), crate::threshold::MetricType::Gauge) {
                    return Err(at.at(
                        list,
                        &key,
                        format!(
                            "{} is a gauge: a window applies to counters, rates and trends",
                            selector.metric.name()
                        ),
                    ));
                }
            }
            threshold.expr.check_type(selector.metric).map_err(|e| at.at(list, &key, e))?;
            out.push(threshold);
        }
        thresholds.push((selector, out));
    }

    Ok(Plan {
        scenarios,
        thresholds,
        summary_trend_stats,
        vars,
        check_names,
        insecure_skip_tls_verify: raw.options.insecure_skip_tls_verify,
    })
}

fn check_name<T>(at: &Locator<'_>, spanned: &Spanned<T>, key: &str, name: &str) -> Result<(), ScenarioError> {
    if name.is_empty()
        || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        || name.starts_with("__")
    {
        return Err(at.at(
            spanned,
            key,
            format!("`{name}` is not a usable name: letters, digits, `_` and `-`, not starting with `__`"),
        ));
    }
    Ok(())
}

fn quote_key(key: &str) -> String {
    if key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
        key.to_owned()
    } else {
        format!("\"{key}\"")
    }
}

fn toml_text(value: &toml::Value) -> String {
    match value {
        toml::Value::String(s) => s.clone(),
        toml::Value::Integer(i) => i.to_string(),
        toml::Value::Float(f) => f.to_string(),
        toml::Value::Boolean(b) => b.to_string(),
        other => toml_to_json(other).to_string(),
    }
}

fn resolve(scenario: &Path, file: &str) -> PathBuf {
    let file = Path::new(file);
    if file.is_absolute() {
        return file.to_path_buf();
    }
    scenario.parent().map_or_else(|| file.to_path_buf(), |dir| dir.join(file))
}

/// Which options each executor takes (k6's names).
fn allowed(executor: ExecutorName) -> &'static [&'static str] {
    match executor {
        ExecutorName::ConstantVus => &["vus", "duration"],
        ExecutorName::RampingVus => &["startVUs", "stages", "gracefulRampDown"],
        ExecutorName::SharedIterations | ExecutorName::PerVuIterations => {
            &["vus", "iterations", "maxDuration"]
        }
        ExecutorName::ConstantArrivalRate => &["rate", "timeUnit", "duration", "preAllocatedVUs", "maxVUs"],
        ExecutorName::RampingArrivalRate => &["startRate", "timeUnit", "stages", "preAllocatedVUs", "maxVUs"],
    }
}

fn executor_name(e: ExecutorName) -> &'static str {
    match e {
        ExecutorName::ConstantVus => "constant-vus",
        ExecutorName::RampingVus => "ramping-vus",
        ExecutorName::SharedIterations => "shared-iterations",
        ExecutorName::PerVuIterations => "per-vu-iterations",
        ExecutorName::ConstantArrivalRate => "constant-arrival-rate",
        ExecutorName::RampingArrivalRate => "ramping-arrival-rate",
    }
}

#[allow(clippy::too_many_lines)]
fn build_scenario(
    at: &Locator<'_>,
    name: &str,
    spanned: &Spanned<RawScenario>,
    vars: &Vars,
    check_names: &mut Vec<String>,
) -> Result<Scenario, ScenarioError> {
    let base = format!("scenarios.{}", quote_key(name));
    check_name(at, spanned, &base, name)?;
    let raw = spanned.get_ref();
    let which = *raw.executor.get_ref();
    let exe = executor_name(which);
    let allowed = allowed(which);
    // Options that this executor does not take are mistakes (k6 refuses them too).
    macro_rules! refuse_foreign {
        ($($field:ident => $name:literal),*) => {$(
            if let Some(v) = &raw.$field {
                if !allowed.contains(&$name) {
                    return Err(at.at(v, &format!("{base}.{}", $name), format!(
                        "{exe} does not take `{}` (it takes {})", $name, allowed.join(", ")
                    )));
                }
            }
        )*};
    }
    refuse_foreign!(vus => "vus", iterations => "iterations", duration => "duration", max_duration => "maxDuration",
        start_vus => "startVUs", stages => "stages", graceful_ramp_down => "gracefulRampDown", rate => "rate",
        start_rate => "startRate", time_unit => "timeUnit", pre_allocated_vus => "preAllocatedVUs", max_vus => "maxVUs");
    let need = |field: Option<&Spanned<Dur>>, key: &str| -> Result<Duration, ScenarioError> {
        let Some(d) = field else {
            return Err(at.at(
                spanned,
                &format!("{base}.{key}"),
                format!("{exe} needs `{key}` (e.g. {key} = \"30s\")"),
            ));
        };
        if d.get_ref().0.is_zero() {
            return Err(at.at(d, &format!("{base}.{key}"), format!("`{key}` must be longer than zero")));
        }
        Ok(d.get_ref().0)
    };
    let count = |field: Option<&Spanned<u64>>,
                 key: &str,
                 default: Option<u64>,
                 min: u64|
     -> Result<u64, ScenarioError> {
        match (field, default) {
            (Some(v), _) if *v.get_ref() < min => {
                Err(at.at(v, &format!("{base}.{key}"), format!("`{key}` must be at least {min}")))
            }
            (Some(v), _) => Ok(*v.get_ref()),
            (None, Some(d)) => Ok(d),
            (None, None) => Err(at.at(spanned, &format!("{base}.{key}"), format!("{exe} needs `{key}`"))),
        }
    };
    let stages = || -> Result<Vec<Stage>, ScenarioError> {
        let Some(stages) = &raw.stages else {
            return Err(at.at(
                spanned,
                &format!("{base}.stages"),
                format!("{exe} needs `stages`, e.g. stages = [{{ duration = \"30s\", target = 10 }}]"),
            ));
        };
        if stages.get_ref().is_empty() {
            return Err(at.at(stages, &format!("{base}.stages"), "`stages` needs at least one stage"));
        }
        if stages.get_ref().iter().all(|s| s.duration.0.is_zero()) {
            return Err(at.at(stages, &format!("{base}.stages"), "the stages last no time at all"));
        }
        Ok(stages.get_ref().iter().map(|s| Stage { duration: s.duration.0, target: s.target }).collect())
    };
    let dur =
        |field: &Option<Spanned<Dur>>, default: Duration| field.as_ref().map_or(default, |d| d.get_ref().0);
    let time_unit = || -> Result<Duration, ScenarioError> {
        match &raw.time_unit {
            Some(t) if t.get_ref().0.is_zero() => {
                Err(at.at(t, &format!("{base}.timeUnit"), "`timeUnit` must be longer than zero"))
            }
            _ => Ok(dur(&raw.time_unit, Duration::from_secs(1))),
        }
    };
    let pool = || -> Result<(u64, u64), ScenarioError> {
        let pre = count(raw.pre_allocated_vus.as_ref(), "preAllocatedVUs", None, 1)?;
        let max = count(raw.max_vus.as_ref(), "maxVUs", Some(pre), 1)?;
        if max < pre {
            let span = raw.max_vus.as_ref().expect("maxVUs given when below preAllocatedVUs");
            return Err(at.at(
                span,
                &format!("{base}.maxVUs"),
                format!("`maxVUs` ({max}) is below `preAllocatedVUs` ({pre})"),
            ));
        }
        Ok((pre, max))
    };
    let executor =
        match which {
            ExecutorName::ConstantVus => Executor::ConstantVus {
                vus: count(raw.vus.as_ref(), "vus", Some(1), 1)?,
                duration: need(raw.duration.as_ref(), "duration")?,
            },
            ExecutorName::RampingVus => Executor::RampingVus {
                start_vus: count(raw.start_vus.as_ref(), "startVUs", Some(1), 0)?,
                stages: stages()?,
                graceful_ramp_down: dur(&raw.graceful_ramp_down, DEFAULT_GRACEFUL_STOP),
            },
            ExecutorName::SharedIterations | ExecutorName::PerVuIterations => {
                let vus = count(raw.vus.as_ref(), "vus", Some(1), 1)?;
                let iterations = count(raw.iterations.as_ref(), "iterations", Some(1), 1)?;
                let max_duration = match &raw.max_duration {
                    Some(_) => need(raw.max_duration.as_ref(), "maxDuration")?,
                    None => DEFAULT_MAX_DURATION,
                };
                if which == ExecutorName::SharedIterations {
                    if iterations < vus {
                        let span = raw
                            .iterations
                            .as_ref()
                            .map_or_else(|| Spanned::new(spanned.span(), ()), |s| Spanned::new(s.span(), ()));
                        return Err(at.at(&span, &format!("{base}.iterations"), format!(
                        "`iterations` ({iterations}) is below `vus` ({vus}): each VU needs at least one"
                    )));
                    }
                    Executor::SharedIterations { vus, iterations, max_duration }
                } else {
                    Executor::PerVuIterations { vus, iterations, max_duration }
                }
            }
            ExecutorName::ConstantArrivalRate => {
                let (pre_allocated_vus, max_vus) = pool()?;
                Executor::ConstantArrivalRate {
                    rate: count(raw.rate.as_ref(), "rate", None, 1)?,
                    time_unit: time_unit()?,
                    duration: need(raw.duration.as_ref(), "duration")?,
                    pre_allocated_vus,
                    max_vus,
                }
            }
            ExecutorName::RampingArrivalRate => {
                let (pre_allocated_vus, max_vus) = pool()?;
                Executor::RampingArrivalRate {
                    start_rate: count(raw.start_rate.as_ref(), "startRate", Some(0), 0)?,
                    time_unit: time_unit()?,
                    stages: stages()?,
                    pre_allocated_vus,
                    max_vus,
                }
            }
        };

    if raw.requests.is_empty() {
        return Err(at.at(
            spanned,
            &format!("{base}.requests"),
            format!("the scenario sends nothing: add [[{base}.requests]] with a url"),
        ));
    }
    let mut requests = Vec::new();
    for (i, request) in raw.requests.iter().enumerate() {
        requests.push(build_request(at, &format!("{base}.requests[{i}]"), request, vars, check_names)?);
    }
    let mut tags: Vec<(String, String)> = raw.tags.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    tags.retain(|(k, _)| k != "scenario");
    Ok(Scenario {
        name: name.to_owned(),
        executor,
        start_time: dur(&raw.start_time, Duration::ZERO),
        graceful_stop: dur(&raw.graceful_stop, DEFAULT_GRACEFUL_STOP),
        requests,
        think_time: raw.think_time.as_ref().map(|t| t.get_ref().0),
        tags,
    })
}

fn compile(
    at: &Locator<'_>,
    key: &str,
    text: &Spanned<String>,
    vars: &Vars,
) -> Result<Template, ScenarioError> {
    Template::compile(text.get_ref(), |name| {
        vars.names.iter().position(|n| n == name).ok_or_else(|| {
            let user: Vec<&str> = vars.names.iter().map(String::as_str).collect();
            format!("unknown variable `{name}` (defined: {})", user.join(", "))
        })
    })
    .map_err(|e| at.at(text, key, e))
}

fn build_request(
    at: &Locator<'_>,
    key: &str,
    spanned: &Spanned<RawRequest>,
    vars: &Vars,
    check_names: &mut Vec<String>,
) -> Result<Request, ScenarioError> {
    let raw = spanned.get_ref();
    let method_span = if raw.method.span().end > 0 { &raw.method } else { &raw.url };
    let method =
        http::Method::from_bytes(raw.method.get_ref().to_ascii_uppercase().as_bytes()).map_err(|_| {
            at.at(
                method_span,
                &format!("{key}.method"),
                format!("`{}` is not an HTTP method", raw.method.get_ref()),
            )
        })?;
    let url = compile(at, &format!("{key}.url"), &raw.url, vars)?;
    // A URL whose scheme and host are fixed is checked now; one built from variables when it is sent.
    let literal_prefix = raw.url.get_ref().split("{{").next().unwrap_or_default();
    if let Some(literal) = url.as_literal() {
        crate::client::Target::parse(literal).map_err(|e| at.at(&raw.url, &format!("{key}.url"), e))?;
    } else if let Some((scheme, _)) = literal_prefix.split_once("://") {
        // The scheme is written out: check it as the whole URL would be checked.
        let shown = prodready_stdx::redact::url(raw.url.get_ref());
        crate::client::scheme_is_tls(Some(scheme), &shown)
            .map_err(|e| at.at(&raw.url, &format!("{key}.url"), e))?;
    }
    let timeout = match &raw.timeout {
        Some(t) if t.get_ref().0.is_zero() => {
            return Err(at.at(t, &format!("{key}.timeout"), "a timeout is longer than 0s"));
        }
        Some(t) => Some(t.get_ref().0),
        None => None,
    };
    let mut headers = Vec::new();
    for (name, value) in &raw.headers {
        let header = http::HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
            at.at(
                value,
                &format!("{key}.headers.{}", quote_key(name)),
                format!("`{name}` is not a header name"),
            )
        })?;
        if header == http::header::CONTENT_LENGTH || header == http::header::TRANSFER_ENCODING {
            return Err(at.at(
                value,
                &format!("{key}.headers.{}", quote_key(name)),
                format!("`{name}` is set from the body; remove this header"),
            ));
        }
        headers.push((header, compile(at, &format!("{key}.headers.{}", quote_key(name)), value, vars)?));
    }
    let body = raw.body.as_ref().map(|b| compile(at, &format!("{key}.body"), b, vars)).transpose()?;
    // k6's default name is the URL as written; ours masks its secrets (a token in the query).
    let name =
        raw.tags.get("name").cloned().unwrap_or_else(|| prodready_stdx::redact::url(raw.url.get_ref()));
    let tags =
        raw.tags.iter().filter(|(k, _)| k.as_str() != "name").map(|(k, v)| (k.clone(), v.clone())).collect();
    let mut checks = Vec::new();
    let mut keep = crate::client::Keep::default();
    if let Some(spanned_checks) = &raw.checks {
        let c = spanned_checks.get_ref();
        let ckey = format!("{key}.checks");
        let mut add = |label: String, kind: CheckKind| {
            let full = format!("{name}: {label}");
            let id = check_names.iter().position(|n| *n == full).unwrap_or_else(|| {
                check_names.push(full);
                check_names.len() - 1
            });
            checks.push(Check { id, kind });
        };
        if let Some(status) = &c.status {
            let list = match status {
                StatusList::One(s) => vec![*s],
                StatusList::Many(s) => s.clone(),
            };
            if list.is_empty() || list.iter().any(|s| !(100..=599).contains(s)) {
                return Err(at.at(
                    spanned_checks,
                    &format!("{ckey}.status"),
                    "a status lies between 100 and 599",
                ));
            }
            let label = match list.as_slice() {
                [one] => format!("status is {one}"),
                many => format!("status in {many:?}"),
            };
            add(label, CheckKind::Status(list));
        }
        if let Some(text) = &c.body_contains {
            keep.body = true;
            add(format!("body contains {text:?}"), CheckKind::BodyContains(text.clone()));
        }
        match (&c.json_path, &c.json_equals) {
            (Some(path), equals) => {
                keep.body = true;
                let steps = parse_json_path(path.get_ref())
                    .map_err(|e| at.at(path, &format!("{ckey}.json_path"), e))?;
                let equals = equals.as_ref().map(toml_to_json);
                let label = match &equals {
                    Some(v) => format!("json {} == {v}", path.get_ref()),
                    None => format!("json {} exists", path.get_ref()),
                };
                add(label, CheckKind::Json { path: steps, source: path.get_ref().clone(), equals });
            }
            (None, Some(_)) => {
                return Err(at.at(
                    spanned_checks,
                    &format!("{ckey}.json_equals"),
                    "json_equals needs json_path beside it",
                ));
            }
            (None, None) => {}
        }
        for (header, contains) in &c.header {
            keep.headers = true;
            let name = http::HeaderName::from_bytes(header.as_bytes()).map_err(|_| {
                at.at(spanned_checks, &format!("{ckey}.header"), format!("`{header}` is not a header name"))
            })?;
            add(
                format!("header {header} contains {contains:?}"),
                CheckKind::Header { name, contains: contains.clone() },
            );
        }
        if let Some(max) = c.max_duration {
            add(format!("duration <= {}", humantime::format_duration(max.0)), CheckKind::MaxDuration(max.0));
        }
        if checks.len() > MAX_CHECKS {
            return Err(at.at(
                spanned_checks,
                &ckey,
                format!(
                    "{} checks on one request; at most {MAX_CHECKS} (split the headers over requests)",
                    checks.len()
                ),
            ));
        }
    }
    Ok(Request {
        method,
        url,
        own_host: headers.iter().any(|(name, _)| name == http::header::HOST),
        headers,
        body,
        name,
        tags,
        checks,
        think_time: raw.think_time.as_ref().map(|t| t.get_ref().0),
        timeout,
        keep,
    })
}

/// Checks on one request at most (the engine keeps their outcomes on the stack).
pub(crate) const MAX_CHECKS: usize = 16;

fn toml_to_json(value: &toml::Value) -> serde_json::Value {
    match value {
        toml::Value::String(s) => serde_json::Value::String(s.clone()),
        toml::Value::Integer(i) => serde_json::Value::from(*i),
        toml::Value::Float(f) => {
            serde_json::Number::from_f64(*f).map_or(serde_json::Value::Null, serde_json::Value::Number)
        }
        toml::Value::Boolean(b) => serde_json::Value::Bool(*b),
        toml::Value::Datetime(d) => serde_json::Value::String(d.to_string()),
        toml::Value::Array(a) => serde_json::Value::Array(a.iter().map(toml_to_json).collect()),
        toml::Value::Table(t) => {
            serde_json::Value::Object(t.iter().map(|(k, v)| (k.clone(), toml_to_json(v))).collect())
        }
    }
}

/// `$.items[0].id`, `items.0.id` or `items[0].id`.
pub(crate) fn parse_json_path(text: &str) -> Result<Vec<PathStep>, String> {
    let bad = |why: &str| format!("bad JSON path `{text}`: {why} (write e.g. items[0].id)");
    let mut s = text.trim();
    s = s.strip_prefix('$').unwrap_or(s);
    s = s.strip_prefix('.').unwrap_or(s);
    let mut steps = Vec::new();
    if s.is_empty() {
        return Ok(steps);
    }
    for segment in s.split('.') {
        let (key, mut rest) = match segment.find('[') {
            Some(i) => (&segment[..i], &segment[i..]),
            None => (segment, ""),
        };
        if key.is_empty() && rest.is_empty() {
            return Err(bad("empty step"));
        }
        if !key.is_empty() {
            match key.parse::<usize>() {
                Ok(i) => steps.push(PathStep::Index(i)),
                Err(_) => steps.push(PathStep::Key(key.to_owned())),
            }
        }
        while !rest.is_empty() {
            let close = rest.find(']').ok_or_else(|| bad("`[` without `]`"))?;
            let index: usize = rest[1..close].trim().parse().map_err(|_| bad("an index is a number"))?;
            steps.push(PathStep::Index(index));
            rest = &rest[close + 1..];
            if !rest.is_empty() && !rest.starts_with('[') {
                return Err(bad("unexpected text after `]`"));
            }
        }
    }
    Ok(steps)
}

/// The value at `path` in `value`.
pub(crate) fn json_at<'a>(value: &'a serde_json::Value, path: &[PathStep]) -> Option<&'a serde_json::Value> {
    path.iter().try_fold(value, |v, step| match step {
        PathStep::Key(k) => v.get(k),
        PathStep::Index(i) => v.get(*i),
    })
}
