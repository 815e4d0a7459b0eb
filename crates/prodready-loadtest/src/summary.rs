//! The end-of-test summary: k6's `handleSummary` data shape (metrics with `type`, `contains`,
//! `values` and thresholds with `ok`), k6's `--summary-export` shape, and a text rendering.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use md5::{Digest as _, Md5};
use serde::Serialize;

use crate::metrics::{GaugeValue, Sink, Sinks, Slots};
use crate::scenario::Plan;
use crate::threshold::{Aggregation, Metric, MetricType, Selector};
use crate::window::WindowFailure;

/// A run's summary, serialized as k6's `handleSummary` data.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub root_group: Group,
    pub options: SummaryOptions,
    pub state: State,
    /// By metric or sub-metric name (`http_req_duration{status:200}`).
    pub metrics: BTreeMap<String, MetricSummary>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Group {
    pub name: String,
    pub path: String,
    pub id: String,
    pub groups: Vec<Group>,
    pub checks: Vec<CheckSummary>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CheckSummary {
    pub name: String,
    pub path: String,
    pub id: String,
    pub passes: u64,
    pub fails: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct SummaryOptions {
    #[serde(rename = "summaryTrendStats")]
    pub summary_trend_stats: Vec<String>,
    #[serde(rename = "summaryTimeUnit")]
    pub summary_time_unit: String,
    #[serde(rename = "noColor")]
    pub no_color: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct State {
    #[serde(rename = "testRunDurationMs")]
    pub test_run_duration_ms: f64,
    #[serde(rename = "isStdOutTTY")]
    pub is_stdout_tty: bool,
    #[serde(rename = "isStdErrTTY")]
    pub is_stderr_tty: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct MetricSummary {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub contains: &'static str,
    /// Trend statistics are in milliseconds, data counts in bytes.
    #[serde(serialize_with = "whole_numbers")]
    pub values: BTreeMap<String, f64>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub thresholds: BTreeMap<String, ThresholdResult>,
}

/// Whole values as JSON integers (`"count": 20`, as Go writes them), others as they are.
fn whole_numbers<S: serde::Serializer>(values: &BTreeMap<String, f64>, s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap as _;
    let mut map = s.serialize_map(Some(values.len()))?;
    for (k, v) in values {
        map.serialize_entry(k, &number(*v))?;
    }
    map.end()
}

fn number(v: f64) -> serde_json::Value {
    #[allow(clippy::cast_possible_truncation)]
    if v.fract() == 0.0 && v.abs() < 9.0e15 {
        serde_json::Value::from(v as i64)
    } else {
        serde_json::Number::from_f64(v).map_or(serde_json::Value::Null, serde_json::Value::Number)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ThresholdResult {
    pub ok: bool,
}

impl Summary {
    /// Whether every threshold held.
    pub fn thresholds_ok(&self) -> bool {
        self.metrics.values().flat_map(|m| m.thresholds.values()).all(|t| t.ok)
    }

    /// The failed thresholds, as `metric expression`.
    pub fn failed_thresholds(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (name, m) in &self.metrics {
            for (expr, r) in &m.thresholds {
                if !r.ok {
                    out.push(format!("{name} {expr}"));
                }
            }
        }
        out
    }

    /// A value of a metric's summary (`summary.value("http_reqs", "count")`).
    pub fn value(&self, metric: &str, stat: &str) -> Option<f64> {
        self.metrics.get(metric)?.values.get(stat).copied()
    }

    /// The handleSummary JSON document.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).expect("a summary serializes")
    }

    /// k6's `--summary-export` shape: values flattened into each metric, `thresholds` mapping each
    /// expression to `true` when it failed, checks keyed by name.
    pub fn to_export_json(&self) -> serde_json::Value {
        use serde_json::{Map, Value, json};
        let mut metrics = Map::new();
        for (name, m) in &self.metrics {
            let mut body = Map::new();
            for (k, v) in &m.values {
                let key = match (m.kind, k.as_str()) {
                    ("rate", "rate") => "value",
                    _ => k.as_str(),
                };
                body.insert(key.to_owned(), number(*v));
            }
            if !m.thresholds.is_empty() {
                let t: Map<String, Value> =
                    m.thresholds.iter().map(|(k, r)| (k.clone(), Value::Bool(!r.ok))).collect();
                body.insert("thresholds".to_owned(), Value::Object(t));
            }
            metrics.insert(name.clone(), Value::Object(body));
        }
        let checks: Map<String, Value> = self
            .root_group
            .checks
            .iter()
            .map(|c| {
                (
                    c.name.clone(),
                    json!({"name": c.name, "path": c.path, "id": c.id, "passes": c.passes, "fails": c.fails}),
                )
            })
            .collect();
        json!({
            "root_group": {
                "name": self.root_group.name,
                "path": self.root_group.path,
                "id": self.root_group.id,
                "groups": {},
                "checks": checks,
            },
            "metrics": metrics,
        })
    }

    /// k6's end-of-test text: one line per metric, thresholds marked.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        if self.metrics.values().any(|m| !m.thresholds.is_empty()) {
            out.push_str("  THRESHOLDS\n");
            for (name, m) in &self.metrics {
                if m.thresholds.is_empty() {
                    continue;
                }
                let _ = writeln!(out, "    {name}");
                for (expr, r) in &m.thresholds {
                    let observed =
                        threshold_stat(expr).and_then(|s| m.values.get(&s).map(|v| format_value(m, &s, *v)));
                    let mark = if r.ok { "✓" } else { "✗" };
                    match observed {
                        Some(v) => {
                            let _ = writeln!(
                                out,
                                "    {mark} '{expr}' {}={v}",
                                threshold_stat(expr).unwrap_or_default()
                            );
                        }
                        None => {
                            let _ = writeln!(out, "    {mark} '{expr}'");
                        }
                    }
                }
            }
            out.push('\n');
        }
        if !self.root_group.checks.is_empty() {
            out.push_str("  CHECKS\n");
            for c in &self.root_group.checks {
                let mark = if c.fails == 0 { "✓" } else { "✗" };
                let _ = writeln!(out, "    {mark} {} ({} passed, {} failed)", c.name, c.passes, c.fails);
            }
            out.push('\n');
        }
        out.push_str("  METRICS\n");
        let width = self.metrics.keys().map(|k| k.chars().count()).max().unwrap_or(0) + 3;
        for (name, m) in &self.metrics {
            let dots = ".".repeat(width.saturating_sub(name.chars().count()));
            let _ = writeln!(out, "    {name}{dots}: {}", describe(m, &self.options.summary_trend_stats));
        }
        let _ = writeln!(out, "\n  run took {:.1}s", self.state.test_run_duration_ms / 1000.0);
        out
    }
}

/// The statistic a threshold reads, for showing its observed value.
fn threshold_stat(expr: &str) -> Option<String> {
    crate::threshold::Expr::parse(expr).ok().map(|e| e.aggregation.to_string())
}

fn format_value(m: &MetricSummary, stat: &str, v: f64) -> String {
    match (m.contains, stat) {
        ("time", "count") => format_number(v),
        ("time", _) => format_ms(v),
        (_, "rate") if m.kind == "rate" => format!("{:.2}%", v * 100.0),
        ("data", "count") => format_bytes(v),
        _ => format_number(v),
    }
}

fn describe(m: &MetricSummary, stats: &[String]) -> String {
    let v = |k: &str| m.values.get(k).copied().unwrap_or(0.0);
    match m.kind {
        "trend" => stats
            .iter()
            .map(|s| {
                if s == "count" {
                    format!("count={}", format_number(v(s)))
                } else {
                    format!("{s}={}", format_ms(v(s)))
                }
            })
            .collect::<Vec<_>>()
            .join(" "),
        "rate" => format!(
            "{:.2}% {} out of {}",
            v("rate") * 100.0,
            format_number(v("passes")),
            format_number(v("passes") + v("fails"))
        ),
        "gauge" => format!(
            "{} min={} max={}",
            format_number(v("value")),
            format_number(v("min")),
            format_number(v("max"))
        ),
        _ if m.contains == "data" => format!("{} {}/s", format_bytes(v("count")), format_bytes(v("rate"))),
        _ => format!("{} {:.2}/s", format_number(v("count")), v("rate")),
    }
}

fn format_ms(ms: f64) -> String {
    if ms >= 1000.0 {
        format!("{:.2}s", ms / 1000.0)
    } else if ms >= 1.0 {
        format!("{ms:.2}ms")
    } else {
        format!("{:.2}µs", ms * 1000.0)
    }
}

fn format_bytes(b: f64) -> String {
    if b >= 1e9 {
        format!("{:.1} GB", b / 1e9)
    } else if b >= 1e6 {
        format!("{:.1} MB", b / 1e6)
    } else if b >= 1e3 {
        format!("{:.1} kB", b / 1e3)
    } else {
        format!("{b:.0} B")
    }
}

fn format_number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 { format!("{v:.0}") } else { format!("{v:.2}") }
}

pub(crate) fn md5_hex(text: &str) -> String {
    let digest = Md5::digest(text.as_bytes());
    digest.iter().fold(String::with_capacity(32), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// The value a threshold aggregation reads from the sinks.
#[allow(clippy::too_many_arguments, clippy::cast_precision_loss)]
pub(crate) fn observe(
    sinks: &Sinks,
    slots: &Slots,
    selector: &Selector,
    agg: Aggregation,
    elapsed: Duration,
    vus: GaugeValue,
    vus_max: GaugeValue,
) -> f64 {
    let secs = elapsed.as_secs_f64().max(1e-9);
    match (selector.metric, agg) {
        (Metric::Vus, _) => vus.value as f64,
        (Metric::VusMax, _) => vus_max.value as f64,
        _ => match slots.slot(selector).map(|s| &sinks.sinks[s]) {
            Some(Sink::Counter(c)) if agg == Aggregation::Rate => *c as f64 / secs,
            Some(Sink::Counter(c)) => *c as f64,
            Some(Sink::Rate { trues, falses }) => {
                let total = trues + falses;
                if total == 0 { 0.0 } else { *trues as f64 / total as f64 }
            }
            Some(Sink::Trend(t)) => t.stat(agg),
            Some(Sink::Gauge) | None => 0.0,
        },
    }
}

/// Whether the selector's metric has a sample yet. During the run a threshold on a metric without one is
/// not judged (k6 skips empty sinks until the end): a check rate with no check done is not 0%.
pub(crate) fn has_samples(sinks: &Sinks, slots: &Slots, selector: &Selector) -> bool {
    match selector.metric {
        Metric::Vus | Metric::VusMax => true,
        _ => match slots.slot(selector).map(|s| &sinks.sinks[s]) {
            Some(Sink::Counter(c)) => *c > 0,
            Some(Sink::Rate { trues, falses }) => trues + falses > 0,
            Some(Sink::Trend(t)) => t.count() > 0,
            Some(Sink::Gauge) | None => false,
        },
    }
}

/// The summary of a finished run. The threshold that aborted the run (`aborted_by`, as `metric key`)
/// failed, whatever the end of the run says: the run was cut short by it.
#[allow(clippy::cast_precision_loss, clippy::too_many_arguments)]
pub(crate) fn build(
    plan: &Plan,
    sinks: &Sinks,
    slots: &Slots,
    elapsed: Duration,
    vus: GaugeValue,
    vus_max: GaugeValue,
    window_failures: &[WindowFailure],
    aborted_by: Option<&str>,
) -> Summary {
    let secs = elapsed.as_secs_f64().max(1e-9);
    let stats: Vec<String> = plan.summary_trend_stats.iter().map(ToString::to_string).collect();
    let mut metrics = BTreeMap::new();
    for slot in 0..slots.len() {
        let selector = slots.selector(slot);
        let thresholds: BTreeMap<String, ThresholdResult> = plan
            .thresholds
            .iter()
            .filter(|(s, _)| *s == selector)
            .flat_map(|(_, ts)| ts.iter())
            .map(|t| {
                let (name, key) = (selector.to_string(), t.key());
                let ok = if aborted_by.is_some_and(|a| a == format!("{name} {key}")) {
                    false
                } else if t.window.is_some() {
                    !window_failures.iter().any(|f| f.metric == name && f.threshold == key)
                } else {
                    let value = observe(sinks, slots, &selector, t.expr.aggregation, elapsed, vus, vus_max);
                    t.expr.holds(value)
                };
                (key, ThresholdResult { ok })
            })
            .collect();
        let metric = selector.metric;
        let mut values = BTreeMap::new();
        let seen = match (&sinks.sinks[slot], metric) {
            (_, Metric::Vus | Metric::VusMax) => {
                let g = if metric == Metric::Vus { vus } else { vus_max };
                values.insert("value".to_owned(), g.value as f64);
                values.insert("min".to_owned(), g.min as f64);
                values.insert("max".to_owned(), g.max as f64);
                g.seen && slot < Metric::COUNT
            }
            (Sink::Counter(c), _) => {
                values.insert("count".to_owned(), *c as f64);
                values.insert("rate".to_owned(), *c as f64 / secs);
                *c > 0
            }
            (Sink::Rate { trues, falses }, _) => {
                let total = trues + falses;
                values.insert("rate".to_owned(), if total == 0 { 0.0 } else { *trues as f64 / total as f64 });
                values.insert("passes".to_owned(), *trues as f64);
                values.insert("fails".to_owned(), *falses as f64);
                total > 0
            }
            (Sink::Trend(t), _) => {
                for (name, agg) in stats.iter().zip(&plan.summary_trend_stats) {
                    values.insert(name.clone(), t.stat(*agg));
                }
                t.count() > 0
            }
            (Sink::Gauge, _) => false,
        };
        if seen || !thresholds.is_empty() {
            let t = metric.metric_type();
            metrics.insert(
                selector.to_string(),
                MetricSummary { kind: t.as_str(), contains: metric.contains(), values, thresholds },
            );
            debug_assert!(t != MetricType::Gauge || slot < Metric::COUNT || !seen);
        }
    }
    let checks = plan
        .check_names
        .iter()
        .zip(&sinks.checks)
        .map(|(name, [passes, fails])| {
            let path = format!("::{name}");
            CheckSummary { name: name.clone(), id: md5_hex(&path), path, passes: *passes, fails: *fails }
        })
        .collect();
    Summary {
        root_group: Group {
            name: String::new(),
            path: String::new(),
            id: md5_hex(""),
            groups: Vec::new(),
            checks,
        },
        options: SummaryOptions {
            summary_trend_stats: stats,
            summary_time_unit: String::new(),
            no_color: false,
        },
        state: State {
            test_run_duration_ms: elapsed.as_secs_f64() * 1000.0,
            is_stdout_tty: false,
            is_stderr_tty: false,
        },
        metrics,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn ids_are_k6s() {
        assert_eq!(super::md5_hex(""), "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(super::md5_hex("::status is 200"), "6210a8cd14cd70477eba5c5e4cb3fb5f");
    }
}
