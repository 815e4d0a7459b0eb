//! A run's metrics in mergeable form: counters, rates, every trend's HDR histogram (its recorded
//! buckets) with exact count, sum, minimum and maximum, check counts and the thresholds to judge. The
//! segments of a run (`--segment I/N`) each write one; [`merge`] adds them up into the summary the whole
//! run would have had, judged against the same thresholds.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::engine::Report;
use crate::metrics::{GaugeValue, Sink, Sinks, Slots, TrendData, TrendSink};
use crate::scenario::{Plan, Vars};
use crate::segment::Segment;
use crate::summary;
use crate::threshold::{Aggregation, Expr, Metric, Selector, Threshold};
use crate::window::WindowFailure;
use crate::{Error, Result};

/// The `format` of a result file.
pub const RESULT_FORMAT: &str = "prodready-load-result/1";

/// One run's (or one segment's) metrics, serializable to JSON and mergeable.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunResult {
    format: String,
    /// `I/N`.
    segment: String,
    /// A digest of the plan: only results of the same scenario file merge.
    plan: String,
    elapsed_us: u64,
    aborted_by: Option<String>,
    summary_trend_stats: Vec<String>,
    thresholds: Vec<ThresholdsData>,
    checks: Vec<CheckData>,
    vus: GaugeData,
    vus_max: GaugeData,
    /// Every metric and sub-metric, in slot order.
    metrics: Vec<MetricData>,
    /// Windowed thresholds that failed in some window of this run (a merge fails them for the whole).
    #[serde(rename = "windowFailures", default, skip_serializing_if = "Vec::is_empty")]
    window_failures: Vec<WindowFailure>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct ThresholdsData {
    metric: String,
    thresholds: Vec<ThresholdData>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct ThresholdData {
    threshold: String,
    #[serde(rename = "abortOnFail")]
    abort_on_fail: bool,
    #[serde(rename = "delayAbortEvalMs")]
    delay_abort_eval_ms: u64,
    #[serde(rename = "windowS", default, skip_serializing_if = "Option::is_none")]
    window_s: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct CheckData {
    name: String,
    passes: u64,
    fails: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct GaugeData {
    value: u64,
    min: u64,
    max: u64,
    seen: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct MetricData {
    metric: String,
    sink: SinkData,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum SinkData {
    Counter(u64),
    Rate { passes: u64, fails: u64 },
    Trend(TrendData),
    Gauge,
}

fn gauge_data(g: GaugeValue) -> GaugeData {
    GaugeData { value: g.value, min: g.min, max: g.max, seen: g.seen }
}

/// A digest of everything a plan does (scenarios, data, thresholds).
pub(crate) fn plan_digest(plan: &Plan) -> String {
    summary::md5_hex(&format!("{plan:?}"))
}

impl RunResult {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        plan: &Plan,
        segment: Segment,
        sinks: &Sinks,
        slots: &Slots,
        elapsed: Duration,
        [vus, vus_max]: [GaugeValue; 2],
        aborted_by: Option<String>,
        window_failures: Vec<WindowFailure>,
    ) -> Self {
        let metrics = (0..slots.len())
            .map(|slot| MetricData {
                metric: slots.selector(slot).to_string(),
                sink: match &sinks.sinks[slot] {
                    Sink::Counter(c) => SinkData::Counter(*c),
                    Sink::Rate { trues, falses } => SinkData::Rate { passes: *trues, fails: *falses },
                    Sink::Trend(t) => SinkData::Trend(t.to_data()),
                    Sink::Gauge => SinkData::Gauge,
                },
            })
            .collect();
        Self {
            format: RESULT_FORMAT.to_owned(),
            segment: segment.to_string(),
            plan: plan_digest(plan),
            elapsed_us: u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX),
            aborted_by,
            summary_trend_stats: plan.summary_trend_stats.iter().map(ToString::to_string).collect(),
            thresholds: plan
                .thresholds
                .iter()
                .map(|(selector, list)| ThresholdsData {
                    metric: selector.to_string(),
                    thresholds: list
                        .iter()
                        .map(|t| ThresholdData {
                            threshold: t.expr.source.clone(),
                            abort_on_fail: t.abort_on_fail,
                            delay_abort_eval_ms: u64::try_from(t.delay_abort_eval.as_millis())
                                .unwrap_or(u64::MAX),
                            window_s: t.window.map(|w| w.as_secs()),
                        })
                        .collect(),
                })
                .collect(),
            checks: plan
                .check_names
                .iter()
                .zip(&sinks.checks)
                .map(|(name, [passes, fails])| CheckData {
                    name: name.clone(),
                    passes: *passes,
                    fails: *fails,
                })
                .collect(),
            vus: gauge_data(vus),
            vus_max: gauge_data(vus_max),
            metrics,
            window_failures,
        }
    }

    /// Which segment this is (`I/N`, `1/1` for a whole run).
    pub fn segment(&self) -> &str {
        &self.segment
    }

    /// The result as a JSON document.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).expect("a result serializes")
    }

    /// Reads a result file's text; `name` names it in errors.
    pub fn from_json(name: &str, text: &str) -> Result<Self> {
        let bad = |why: String| Error::Merge(format!("{name}: {why}"));
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| bad(format!("not JSON ({e})")))?;
        match value.get("format").and_then(serde_json::Value::as_str) {
            Some(RESULT_FORMAT) => {}
            Some(other) => {
                return Err(bad(format!(
                    "format `{other}`, expected `{RESULT_FORMAT}` (written by another version?)"
                )));
            }
            None => {
                return Err(bad(format!(
                    "not a load result (no \"format\": \"{RESULT_FORMAT}\"): a segment's run writes one"
                )));
            }
        }
        serde_path_to_error::deserialize(value).map_err(|e| bad(format!("{}: {}", e.path(), e.inner())))
    }
}

/// Adds the results of every segment of one run up: the summary the whole run would have had (counts,
/// rates and histograms exact; the run took as long as the longest segment; VU gauges summed), judged
/// against the run's thresholds.
pub fn merge(results: &[(String, RunResult)]) -> Result<Report> {
    let bad = |why: String| Error::Merge(why);
    let Some((first_name, first)) = results.first() else {
        return Err(bad("no result to merge".to_owned()));
    };
    let first_segment: Segment =
        first.segment.parse().map_err(|e| bad(format!("{first_name}: segment: {e}")))?;
    let count = first_segment.count();
    let mut seen: Vec<Option<&str>> = vec![None; usize::try_from(count).unwrap_or(usize::MAX).min(1 << 16)];
    for (name, r) in results {
        if r.plan != first.plan
            || r.thresholds != first.thresholds
            || r.summary_trend_stats != first.summary_trend_stats
        {
            return Err(bad(format!(
                "{name} comes from another scenario file than {first_name}: merge the segments of one run"
            )));
        }
        let segment: Segment = r.segment.parse().map_err(|e| bad(format!("{name}: segment: {e}")))?;
        if segment.count() != count {
            return Err(bad(format!(
                "{name} is segment {segment} but {first_name} is {first_segment}: every segment of one run has the same N"
            )));
        }
        let slot = seen
            .get_mut(usize::try_from(segment.index() - 1).unwrap_or(usize::MAX))
            .ok_or_else(|| bad(format!("{name}: segment {segment}: too many segments")))?;
        if let Some(other) = slot {
            return Err(bad(format!("{name} and {other} are both segment {segment}")));
        }
        *slot = Some(name);
    }
    let missing: Vec<String> = seen
        .iter()
        .enumerate()
        .filter(|(_, s)| s.is_none())
        .map(|(i, _)| format!("{}/{count}", i + 1))
        .collect();
    if !missing.is_empty() {
        return Err(bad(format!(
            "segments {} are missing: merge every segment of the run",
            missing.join(", ")
        )));
    }

    // The plan as far as a summary needs it: thresholds, trend statistics, check names.
    let mut thresholds = Vec::new();
    for t in &first.thresholds {
        let selector = Selector::parse(&t.metric).map_err(|e| bad(format!("{first_name}: {e}")))?;
        let mut list = Vec::new();
        for d in &t.thresholds {
            let threshold = Threshold {
                expr: Expr::parse(&d.threshold).map_err(|e| bad(format!("{first_name}: {e}")))?,
                abort_on_fail: d.abort_on_fail,
                delay_abort_eval: Duration::from_millis(d.delay_abort_eval_ms),
                window: d.window_s.map(Duration::from_secs),
            };
            // `load run --segment` refuses these; segment results written otherwise are refused here.
            if threshold.window.is_some() && count > 1 {
                let why =
                    crate::segment::windowed_refusal(&format!("{} {}", t.metric, threshold.key()), count);
                return Err(bad(format!("{first_name}: {why}")));
            }
            list.push(threshold);
        }
        thresholds.push((selector, list));
    }
    let mut summary_trend_stats = Vec::new();
    for stat in &first.summary_trend_stats {
        let agg = Expr::parse(&format!("{stat}<0"))
            .map(|e| e.aggregation)
            .ok()
            .filter(|a| !matches!(a, Aggregation::Rate | Aggregation::Value))
            .ok_or_else(|| bad(format!("{first_name}: `{stat}` is not a trend statistic")))?;
        summary_trend_stats.push(agg);
    }
    let plan = Plan {
        scenarios: Vec::new(),
        thresholds,
        summary_trend_stats,
        vars: Vars::default(),
        check_names: first.checks.iter().map(|c| c.name.clone()).collect(),
        insecure_skip_tls_verify: false,
    };
    let mut subs = Vec::new();
    for m in first.metrics.iter().skip(Metric::COUNT) {
        subs.push(Selector::parse(&m.metric).map_err(|e| bad(format!("{first_name}: {e}")))?);
    }
    let slots = Slots::new(subs);

    let mut total = Sinks::new(&slots, plan.check_names.len());
    let (mut vus, mut vus_max) = (GaugeValue::default(), GaugeValue::default());
    let mut elapsed = Duration::ZERO;
    let mut aborted_by = None;
    let mut window_failures: Vec<WindowFailure> = Vec::new();
    for (name, r) in results {
        let names: Vec<String> = (0..slots.len()).map(|s| slots.selector(s).to_string()).collect();
        let theirs: Vec<&String> = r.metrics.iter().map(|m| &m.metric).collect();
        if theirs.iter().map(|s| s.as_str()).ne(names.iter().map(String::as_str)) {
            return Err(bad(format!("{name}: its metrics differ from {first_name}'s")));
        }
        let check_names: Vec<&String> = r.checks.iter().map(|c| &c.name).collect();
        if check_names.iter().map(|s| s.as_str()).ne(plan.check_names.iter().map(String::as_str)) {
            return Err(bad(format!("{name}: its checks differ from {first_name}'s")));
        }
        let mut sinks = Sinks::new(&slots, plan.check_names.len());
        for (slot, m) in r.metrics.iter().enumerate() {
            let want = slots.type_of(slot).as_str();
            sinks.sinks[slot] = match (&m.sink, want) {
                (SinkData::Counter(c), "counter") => Sink::Counter(*c),
                (SinkData::Rate { passes, fails }, "rate") => Sink::Rate { trues: *passes, falses: *fails },
                (SinkData::Trend(t), "trend") => Sink::Trend(Box::new(
                    TrendSink::from_data(t).map_err(|e| bad(format!("{name}: {}: {e}", m.metric)))?,
                )),
                (SinkData::Gauge, "gauge") => Sink::Gauge,
                _ => {
                    return Err(bad(format!(
                        "{name}: {} is a {want}, the file holds another kind",
                        m.metric
                    )));
                }
            };
        }
        for (slot, c) in sinks.checks.iter_mut().zip(&r.checks) {
            *slot = [c.passes, c.fails];
        }
        total.merge(&sinks);
        for (sum, g) in [(&mut vus, r.vus), (&mut vus_max, r.vus_max)] {
            if g.seen {
                *sum = if sum.seen {
                    GaugeValue {
                        value: sum.value + g.value,
                        min: sum.min + g.min,
                        max: sum.max + g.max,
                        seen: true,
                    }
                } else {
                    GaugeValue { value: g.value, min: g.min, max: g.max, seen: true }
                };
            }
        }
        elapsed = elapsed.max(Duration::from_micros(r.elapsed_us));
        if aborted_by.is_none() {
            aborted_by.clone_from(&r.aborted_by);
        }
        window_failures.extend(r.window_failures.iter().cloned());
    }
    // Only a whole run's result (1/1) has windowed thresholds: its windows' verdicts are the run's.
    window_failures.sort();
    window_failures.dedup();
    let summary =
        summary::build(&plan, &total, &slots, elapsed, vus, vus_max, &window_failures, aborted_by.as_deref());
    let mut result = RunResult::new(
        &plan,
        Segment::WHOLE,
        &total,
        &slots,
        elapsed,
        [vus, vus_max],
        aborted_by.clone(),
        window_failures,
    );
    result.plan.clone_from(&first.plan);
    Ok(Report { summary, aborted_by, result, interrupted: false })
}
