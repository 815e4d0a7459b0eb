//! SLOs turned into multi-window multi-burn-rate alerts with Sloth's recording-rule names, labels and
//! windows, so Sloth's dashboards work on them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::names;
use crate::rules::{Group, Rule, RuleFile};
use crate::{Error, Result};

/// The name of the burn-rate alert every SLO gets (its `sloth_severity` label says page or ticket).
pub const ALERT: &str = "SloErrorBudgetBurn";

/// The windows Sloth records an error ratio for.
pub const WINDOWS: [&str; 7] = ["5m", "30m", "1h", "2h", "6h", "1d", "3d"];

/// (short window, long window, burn-rate factor) pairs of each alert, for a 30-day SLO period.
pub const PAGE: [(&str, &str, f64); 2] = [("5m", "1h", 14.4), ("30m", "6h", 6.0)];
pub const TICKET: [(&str, &str, f64); 2] = [("2h", "1d", 3.0), ("6h", "3d", 1.0)];

/// What an SLO measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SloKind {
    /// Share of requests answered without a server error (`http_requests_total`, `status="5xx"`).
    #[default]
    Availability,
    /// Share of requests faster than `threshold_seconds` (`http_request_duration_seconds`).
    Latency,
    /// Your own `errors` and `total` queries, with `{{.window}}` where the range goes.
    Custom,
}

/// One service level objective as a caller declares it: the service, what it measures and its target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SloSpec {
    /// The service (`sloth_service`), e.g. `api`; also the `job` selector for built-in kinds.
    pub service: String,
    /// The SLO's name (`sloth_slo`), e.g. `requests-availability`.
    pub name: String,
    /// Target in percent, e.g. 99.9.
    pub objective: f64,
    #[serde(default)]
    pub kind: SloKind,
    /// The SLO period; only 30d (Sloth's default, which its burn-rate factors assume).
    #[serde(default = "thirty_days")]
    pub window: String,
    /// For `latency`: the bucket boundary (a `le` of the histogram), in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold_seconds: Option<f64>,
    /// For `custom`: the bad events query; `{{.window}}` is replaced by each window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errors: Option<String>,
    /// For `custom`: the total events query.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total: Option<String>,
    /// Extra labels on every generated rule.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

fn thirty_days() -> String {
    "30d".to_owned()
}

impl SloSpec {
    /// `sloth_id`: `<service>-<name>`.
    pub fn id(&self) -> String {
        format!("{}-{}", self.service, self.name)
    }

    fn queries(&self) -> Result<(String, String)> {
        let err = |m: String| Error::InvalidSlo { id: self.id(), message: m };
        let job = &self.service;
        match self.kind {
            SloKind::Availability => Ok((
                format!(
                    r#"sum(rate({}{{job="{job}",status="5xx"}}[{{{{.window}}}}]))"#,
                    names::HTTP_REQUESTS_TOTAL
                ),
                format!(r#"sum(rate({}{{job="{job}"}}[{{{{.window}}}}]))"#, names::HTTP_REQUESTS_TOTAL),
            )),
            SloKind::Latency => {
                let threshold = self
                    .threshold_seconds
                    .ok_or_else(|| err("latency SLOs need threshold_seconds".to_owned()))?;
                let d = names::HTTP_REQUEST_DURATION_SECONDS;
                // Bucket labels are written as floats (`le="1.0"`, `le="0.5"`): match that spelling.
                let threshold = format!("{threshold:?}");
                Ok((
                    format!(
                        r#"(sum(rate({d}_count{{job="{job}"}}[{{{{.window}}}}])) - sum(rate({d}_bucket{{job="{job}",le="{threshold}"}}[{{{{.window}}}}])))"#
                    ),
                    format!(r#"sum(rate({d}_count{{job="{job}"}}[{{{{.window}}}}]))"#),
                ))
            }
            SloKind::Custom => match (&self.errors, &self.total) {
                (Some(e), Some(t)) if e.contains("{{.window}}") && t.contains("{{.window}}") => {
                    Ok((e.clone(), t.clone()))
                }
                (Some(_), Some(_)) => {
                    Err(err("errors and total must contain {{.window}} where the range goes".to_owned()))
                }
                _ => Err(err("custom SLOs need both errors and total queries".to_owned())),
            },
        }
    }

    fn validate(&self) -> Result<()> {
        let err = |m: String| Error::InvalidSlo { id: self.id(), message: m };
        if !(self.objective > 0.0 && self.objective < 100.0) {
            return Err(err(format!(
                "objective {} must be a percentage between 0 and 100, e.g. 99.9",
                self.objective
            )));
        }
        if self.window != "30d" {
            return Err(err(format!(
                "window {} is not supported: the burn-rate factors assume 30d",
                self.window
            )));
        }
        let valid =
            |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !valid(&self.service) || !valid(&self.name) {
            return Err(err("service and name must be letters, digits, `-` or `_`".to_owned()));
        }
        Ok(())
    }
}

/// A ratio printed without float noise: 1 - 0.999 prints as 0.001.
pub fn ratio(x: f64) -> String {
    let s = format!("{x:.12}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s.is_empty() || s == "-" { "0".to_owned() } else { s.to_owned() }
}

/// Sloth-compatible rules for every SLO: SLI recordings for each window and the 30-day ratio, meta
/// recordings, and a page and a ticket alert.
pub fn rule_file(specs: &[SloSpec], runbook_base_url: &str) -> Result<RuleFile> {
    let mut groups = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for spec in specs {
        spec.validate()?;
        if !seen.insert(spec.id()) {
            return Err(Error::InvalidSlo { id: spec.id(), message: "declared twice".to_owned() });
        }
        let (errors, total) = spec.queries()?;
        let id = spec.id();
        let mut base = spec.labels.clone();
        base.insert("sloth_id".to_owned(), id.clone());
        base.insert("sloth_service".to_owned(), spec.service.clone());
        base.insert("sloth_slo".to_owned(), spec.name.clone());
        let selector =
            format!(r#"sloth_id="{id}", sloth_service="{}", sloth_slo="{}""#, spec.service, spec.name);
        let with_window = |w: &str| {
            let mut l = base.clone();
            l.insert("sloth_window".to_owned(), w.to_owned());
            l
        };
        let mut sli: Vec<Rule> = WINDOWS
            .iter()
            .map(|w| Rule {
                record: Some(format!("slo:sli_error:ratio_rate{w}")),
                expr: format!(
                    "({})\n/\n({})\n",
                    errors.replace("{{.window}}", w),
                    total.replace("{{.window}}", w)
                ),
                labels: with_window(w),
                ..Rule::default()
            })
            .collect();
        sli.push(Rule {
            record: Some("slo:sli_error:ratio_rate30d".to_owned()),
            expr: format!(
                "sum_over_time(slo:sli_error:ratio_rate5m{{{selector}}}[30d])\n/ ignoring (sloth_window)\ncount_over_time(slo:sli_error:ratio_rate5m{{{selector}}}[30d])\n"
            ),
            labels: with_window("30d"),
            ..Rule::default()
        });
        groups.push(Group { name: format!("sloth-slo-sli-recordings-{id}"), interval: None, rules: sli });

        let objective = ratio(spec.objective / 100.0);
        let budget = ratio((100.0 - spec.objective) / 100.0);
        let meta = |record: &str, expr: String| Rule {
            record: Some(record.to_owned()),
            expr,
            labels: base.clone(),
            ..Rule::default()
        };
        let mut info = base.clone();
        info.insert("sloth_objective".to_owned(), ratio(spec.objective));
        info.insert("sloth_mode".to_owned(), "cli-gen-prom".to_owned());
        info.insert("sloth_spec".to_owned(), "prometheus/v1".to_owned());
        info.insert("sloth_version".to_owned(), concat!("prodready-", env!("CARGO_PKG_VERSION")).to_owned());
        groups.push(Group {
            name: format!("sloth-slo-meta-recordings-{id}"),
            interval: None,
            rules: vec![
                meta("slo:objective:ratio", format!("vector({objective})")),
                meta("slo:error_budget:ratio", format!("vector(1-{objective})")),
                meta("slo:time_period:days", "vector(30)".to_owned()),
                meta(
                    "slo:current_burn_rate:ratio",
                    format!("slo:sli_error:ratio_rate5m{{{selector}}}\n/ on(sloth_id, sloth_slo, sloth_service) group_left\nslo:error_budget:ratio{{{selector}}}\n"),
                ),
                meta(
                    "slo:period_burn_rate:ratio",
                    format!("slo:sli_error:ratio_rate30d{{{selector}}}\n/ on(sloth_id, sloth_slo, sloth_service) group_left\nslo:error_budget:ratio{{{selector}}}\n"),
                ),
                meta("slo:period_error_budget_remaining:ratio", format!("1 - slo:period_burn_rate:ratio{{{selector}}}")),
                Rule { record: Some("sloth_slo_info".to_owned()), expr: "vector(1)".to_owned(), labels: info, ..Rule::default() },
            ],
        });

        let condition = |pairs: &[(&str, &str, f64)]| {
            let parts: Vec<String> = pairs
                .iter()
                .map(|(short, long, factor)| {
                    let f = ratio(*factor);
                    format!(
                        "(\n    max(slo:sli_error:ratio_rate{short}{{{selector}}} > ({f} * {budget})) without (sloth_window)\n    and\n    max(slo:sli_error:ratio_rate{long}{{{selector}}} > ({f} * {budget})) without (sloth_window)\n)"
                    )
                })
                .collect();
            format!("{}\n", parts.join("\nor\n"))
        };
        let alert = |severity: &str, sloth_severity: &str, pairs: &[(&str, &str, f64)]| {
            // The sloth labels also come from the series; as rule labels they keep each SLO's alerts distinct.
            let mut labels = base.clone();
            labels.insert("severity".to_owned(), severity.to_owned());
            labels.insert("sloth_severity".to_owned(), sloth_severity.to_owned());
            Rule {
                alert: Some(ALERT.to_owned()),
                expr: condition(pairs),
                labels,
                annotations: BTreeMap::from([
                    (
                        "summary".to_owned(),
                        format!(
                            "{} {} is burning its error budget too fast ({sloth_severity})",
                            spec.service, spec.name
                        ),
                    ),
                    (
                        "description".to_owned(),
                        format!(
                            "At this rate the {objective_pct}% {} objective of {} runs out of error budget early: \
                             {{{{ $labels.sloth_service }}}} {{{{ $labels.sloth_slo }}}} ({sloth_severity}).",
                            spec.name,
                            spec.service,
                            objective_pct = ratio(spec.objective)
                        ),
                    ),
                    ("runbook_url".to_owned(), crate::pack::runbook_url(runbook_base_url, ALERT)),
                ]),
                ..Rule::default()
            }
        };
        groups.push(Group {
            name: format!("sloth-slo-alerts-{id}"),
            interval: None,
            rules: vec![alert("critical", "page", &PAGE), alert("warning", "ticket", &TICKET)],
        });
    }
    Ok(RuleFile { groups })
}
