//! Thresholds in k6's syntax: a metric (optionally a sub-metric filtered by tags, as in
//! `http_req_duration{status:200}`) and expressions such as `p(95)<500`, `avg<200`, `rate<0.01` or
//! `count>100`.

use std::fmt;

/// What kind of values a metric holds; decides which aggregations a threshold may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MetricType {
    /// Counts that only grow (`count`, `rate` per second).
    Counter,
    /// A value sampled over time (`value`, with `min` and `max` in summaries).
    Gauge,
    /// A share of true samples (`rate`, with `passes` and `fails`).
    Rate,
    /// A distribution of values (`avg`, `min`, `med`, `max`, `p(N)`).
    Trend,
}

impl MetricType {
    /// k6's name of the type in summaries.
    pub fn as_str(self) -> &'static str {
        match self {
            MetricType::Counter => "counter",
            MetricType::Gauge => "gauge",
            MetricType::Rate => "rate",
            MetricType::Trend => "trend",
        }
    }
}

/// Every metric a run emits, with k6's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Metric {
    HttpReqs,
    Iterations,
    DataSent,
    DataReceived,
    DroppedIterations,
    HttpReqDuration,
    HttpReqServiceDuration,
    HttpReqBlocked,
    HttpReqConnecting,
    HttpReqTlsHandshaking,
    HttpReqSending,
    HttpReqWaiting,
    HttpReqReceiving,
    IterationDuration,
    HttpReqFailed,
    Checks,
    Vus,
    VusMax,
}

impl Metric {
    /// Every metric, in summary order.
    pub const ALL: [Metric; 18] = [
        Metric::Checks,
        Metric::DataReceived,
        Metric::DataSent,
        Metric::DroppedIterations,
        Metric::HttpReqBlocked,
        Metric::HttpReqConnecting,
        Metric::HttpReqDuration,
        Metric::HttpReqFailed,
        Metric::HttpReqReceiving,
        Metric::HttpReqSending,
        Metric::HttpReqServiceDuration,
        Metric::HttpReqTlsHandshaking,
        Metric::HttpReqWaiting,
        Metric::HttpReqs,
        Metric::IterationDuration,
        Metric::Iterations,
        Metric::Vus,
        Metric::VusMax,
    ];

    /// The metric's name, as k6 spells it (`http_req_service_duration` is ours: the time from the
    /// actual send, where `http_req_duration` counts from the intended send time).
    pub fn name(self) -> &'static str {
        match self {
            Metric::HttpReqs => "http_reqs",
            Metric::Iterations => "iterations",
            Metric::DataSent => "data_sent",
            Metric::DataReceived => "data_received",
            Metric::DroppedIterations => "dropped_iterations",
            Metric::HttpReqDuration => "http_req_duration",
            Metric::HttpReqServiceDuration => "http_req_service_duration",
            Metric::HttpReqBlocked => "http_req_blocked",
            Metric::HttpReqConnecting => "http_req_connecting",
            Metric::HttpReqTlsHandshaking => "http_req_tls_handshaking",
            Metric::HttpReqSending => "http_req_sending",
            Metric::HttpReqWaiting => "http_req_waiting",
            Metric::HttpReqReceiving => "http_req_receiving",
            Metric::IterationDuration => "iteration_duration",
            Metric::HttpReqFailed => "http_req_failed",
            Metric::Checks => "checks",
            Metric::Vus => "vus",
            Metric::VusMax => "vus_max",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.name() == name)
    }

    pub fn metric_type(self) -> MetricType {
        match self {
            Metric::HttpReqs
            | Metric::Iterations
            | Metric::DataSent
            | Metric::DataReceived
            | Metric::DroppedIterations => MetricType::Counter,
            Metric::HttpReqFailed | Metric::Checks => MetricType::Rate,
            Metric::Vus | Metric::VusMax => MetricType::Gauge,
            _ => MetricType::Trend,
        }
    }

    /// k6's `contains` field: what the values measure.
    pub fn contains(self) -> &'static str {
        match self {
            Metric::DataSent | Metric::DataReceived => "data",
            _ if self.metric_type() == MetricType::Trend => "time",
            _ => "default",
        }
    }

    /// Index for dense per-metric tables.
    pub(crate) fn index(self) -> usize {
        self as usize
    }

    pub(crate) const COUNT: usize = 18;
}

/// A metric or a sub-metric: `http_req_duration` or `http_req_duration{status:200,method:GET}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Selector {
    pub metric: Metric,
    /// Tag filters, in the order written; empty for the metric itself.
    pub tags: Vec<(String, String)>,
}

impl Selector {
    /// Parses k6's sub-metric syntax.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let (name, filter) = match text.find('{') {
            Some(open) => {
                let Some(inner) = text[open + 1..].strip_suffix('}') else {
                    return Err(format!(
                        "`{text}`: a tag filter ends with `}}`, as in http_req_duration{{status:200}}"
                    ));
                };
                (text[..open].trim(), Some(inner))
            }
            None => (text, None),
        };
        let Some(metric) = Metric::from_name(name) else {
            let known: Vec<_> = Metric::ALL.iter().map(|m| m.name()).collect();
            return Err(format!("no metric named `{name}` (known: {})", known.join(", ")));
        };
        let mut tags = Vec::new();
        if let Some(filter) = filter {
            for pair in filter.split(',') {
                let Some((key, value)) = pair.split_once(':') else {
                    return Err(format!("`{text}`: each tag filter is `key:value`, found `{}`", pair.trim()));
                };
                let key = key.trim();
                let value = value.trim().trim_matches(|c| c == '"' || c == '\'');
                if key.is_empty() {
                    return Err(format!("`{text}`: a tag filter has an empty key"));
                }
                tags.push((key.to_owned(), value.to_owned()));
            }
            if tags.is_empty() {
                return Err(format!("`{text}`: empty tag filter"));
            }
        }
        Ok(Self { metric, tags })
    }
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.metric.name())?;
        if !self.tags.is_empty() {
            f.write_str("{")?;
            for (i, (k, v)) in self.tags.iter().enumerate() {
                if i > 0 {
                    f.write_str(",")?;
                }
                write!(f, "{k}:{v}")?;
            }
            f.write_str("}")?;
        }
        Ok(())
    }
}

/// What a threshold aggregates.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Aggregation {
    Avg,
    Min,
    Med,
    Max,
    /// A percentile, 0 to 100.
    Percentile(f64),
    Count,
    Rate,
    Value,
}

impl Aggregation {
    fn valid_for(self, t: MetricType) -> bool {
        matches!(
            (self, t),
            (Aggregation::Avg | Aggregation::Min | Aggregation::Med | Aggregation::Max, MetricType::Trend)
                | (Aggregation::Percentile(_), MetricType::Trend)
                | (Aggregation::Count | Aggregation::Rate, MetricType::Counter)
                | (Aggregation::Rate, MetricType::Rate)
                | (Aggregation::Value, MetricType::Gauge)
        )
    }

    fn allowed(t: MetricType) -> &'static str {
        match t {
            MetricType::Trend => "avg, min, med, max, p(N)",
            MetricType::Counter => "count, rate",
            MetricType::Rate => "rate",
            MetricType::Gauge => "value",
        }
    }
}

impl fmt::Display for Aggregation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Aggregation::Avg => f.write_str("avg"),
            Aggregation::Min => f.write_str("min"),
            Aggregation::Med => f.write_str("med"),
            Aggregation::Max => f.write_str("max"),
            Aggregation::Percentile(p) => write!(f, "p({p})"),
            Aggregation::Count => f.write_str("count"),
            Aggregation::Rate => f.write_str("rate"),
            Aggregation::Value => f.write_str("value"),
        }
    }
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
}

impl Op {
    fn holds(self, left: f64, right: f64) -> bool {
        match self {
            Op::Lt => left < right,
            Op::Le => left <= right,
            Op::Gt => left > right,
            Op::Ge => left >= right,
            Op::Eq => left == right,
            Op::Ne => left != right,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Eq => "==",
            Op::Ne => "!=",
        }
    }
}

/// One threshold expression: `p(95)<500`.
#[derive(Debug, Clone, PartialEq)]
pub struct Expr {
    pub aggregation: Aggregation,
    pub op: Op,
    pub value: f64,
    /// The expression as written (k6 keys results by it).
    pub source: String,
}

impl Expr {
    /// Parses k6's threshold syntax: `AGGREGATION OPERATOR NUMBER`, blanks allowed between them.
    pub fn parse(text: &str) -> Result<Self, String> {
        let source = text.to_owned();
        let s = text.trim();
        let bad =
            |why: &str| format!("bad threshold `{text}`: {why} (write e.g. `p(95)<500` or `rate<0.01`)");
        let end = s.find(['<', '>', '=', '!']).ok_or_else(|| bad("no comparison operator"))?;
        let (agg, rest) = (s[..end].trim(), &s[end..]);
        let aggregation = match agg {
            "avg" => Aggregation::Avg,
            "min" => Aggregation::Min,
            "med" => Aggregation::Med,
            "max" => Aggregation::Max,
            "count" => Aggregation::Count,
            "rate" => Aggregation::Rate,
            "value" => Aggregation::Value,
            "" => return Err(bad("no aggregation before the operator")),
            other => {
                let inner = other
                    .strip_prefix("p(")
                    .and_then(|r| r.strip_suffix(')'))
                    .ok_or_else(|| bad(&format!("unknown aggregation `{other}`")))?;
                let p: f64 =
                    inner.trim().parse().map_err(|_| bad(&format!("`{inner}` is not a percentile")))?;
                if !(0.0..=100.0).contains(&p) {
                    return Err(bad("a percentile lies between 0 and 100"));
                }
                Aggregation::Percentile(p)
            }
        };
        let (op, number) = [
            ("===", Op::Eq),
            ("<=", Op::Le),
            (">=", Op::Ge),
            ("==", Op::Eq),
            ("!=", Op::Ne),
            ("<", Op::Lt),
            (">", Op::Gt),
        ]
        .into_iter()
        .find_map(|(token, op)| rest.strip_prefix(token).map(|n| (op, n)))
        .ok_or_else(|| bad("unknown operator"))?;
        let number = number.trim();
        let value: f64 = number.parse().map_err(|_| bad(&format!("`{number}` is not a number")))?;
        if !value.is_finite() {
            return Err(bad("the bound must be a finite number"));
        }
        Ok(Self { aggregation, op, value, source })
    }

    /// Whether `aggregation` applies to metrics of type `t`.
    pub fn check_type(&self, metric: Metric) -> Result<(), String> {
        let t = metric.metric_type();
        if self.aggregation.valid_for(t) {
            Ok(())
        } else {
            Err(format!(
                "`{}` cannot apply to {} (a {}): use {}",
                self.aggregation,
                metric.name(),
                t.as_str(),
                Aggregation::allowed(t)
            ))
        }
    }

    /// Whether the threshold holds for `observed` (the aggregation's value).
    pub fn holds(&self, observed: f64) -> bool {
        self.op.holds(observed, self.value)
    }

    /// The canonical form (for messages).
    pub fn canonical(&self) -> String {
        format!("{}{}{}", self.aggregation, self.op.as_str(), self.value)
    }
}

/// A threshold with its abort options.
#[derive(Debug, Clone, PartialEq)]
pub struct Threshold {
    pub expr: Expr,
    /// Stop the whole run as soon as this threshold fails.
    pub abort_on_fail: bool,
    /// How long into the run before an abort-on-fail threshold is first evaluated.
    pub delay_abort_eval: std::time::Duration,
    /// Judged over every window of this length (whole seconds) instead of over the whole run.
    pub window: Option<std::time::Duration>,
}

impl Threshold {
    /// The threshold's name in summaries: its expression, followed by `over 30s` for a windowed one.
    pub fn key(&self) -> String {
        match self.window {
            None => self.expr.source.clone(),
            Some(w) => format!("{} over {}", self.expr.source, humantime::format_duration(w)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str, expected: &str) {
        let got = match Expr::parse(text) {
            Ok(e) => format!("{:?} {:?} {}", e.aggregation, e.op, e.value),
            Err(e) => e,
        };
        assert_eq!(got, expected, "{text}");
    }

    #[test]
    fn expressions() {
        check("p(95)<500", "Percentile(95.0) Lt 500");
        check(" p(99.9) <= 1.5 ", "Percentile(99.9) Le 1.5");
        check("avg<200", "Avg Lt 200");
        check("med>=1", "Med Ge 1");
        check("rate<0.01", "Rate Lt 0.01");
        check("count>100", "Count Gt 100");
        check("value===3", "Value Eq 3");
        check("max != 3", "Max Ne 3");
        check(
            "p95<500",
            "bad threshold `p95<500`: unknown aggregation `p95` (write e.g. `p(95)<500` or `rate<0.01`)",
        );
        check(
            "p(101)<5",
            "bad threshold `p(101)<5`: a percentile lies between 0 and 100 (write e.g. `p(95)<500` or `rate<0.01`)",
        );
        check(
            "avg 500",
            "bad threshold `avg 500`: no comparison operator (write e.g. `p(95)<500` or `rate<0.01`)",
        );
        check(
            "avg<fast",
            "bad threshold `avg<fast`: `fast` is not a number (write e.g. `p(95)<500` or `rate<0.01`)",
        );
        check(
            "<5",
            "bad threshold `<5`: no aggregation before the operator (write e.g. `p(95)<500` or `rate<0.01`)",
        );
        check("avg=>5", "bad threshold `avg=>5`: unknown operator (write e.g. `p(95)<500` or `rate<0.01`)");
    }

    #[test]
    fn selectors() {
        let s = Selector::parse("http_req_duration{status:200, name:items}").unwrap();
        assert_eq!(s.metric, Metric::HttpReqDuration);
        assert_eq!(s.to_string(), "http_req_duration{status:200,name:items}");
        assert_eq!(Selector::parse("checks").unwrap().tags, vec![]);
        assert!(
            Selector::parse("http_req_duraton")
                .unwrap_err()
                .starts_with("no metric named `http_req_duraton`")
        );
        assert!(Selector::parse("http_req_duration{status}").is_err());
        assert!(Selector::parse("http_req_duration{status:200").is_err());
        let e = Expr::parse("p(95)<5").unwrap();
        assert_eq!(
            e.check_type(Metric::HttpReqFailed).unwrap_err(),
            "`p(95)` cannot apply to http_req_failed (a rate): use rate"
        );
        assert!(Expr::parse("rate<5").unwrap().check_type(Metric::HttpReqs).is_ok());
    }
}
