//! An offline rule linter in the spirit of pint: the mistakes that make an alert never fire, always fire,
//! flap or page without a way to act on it.

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

use promql_parser::parser::{self, Expr};

use crate::rules::{Rule, RuleFile};

/// One problem in one rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub group: String,
    pub rule: String,
    pub check: &'static str,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} / {}: {}: {}", self.group, self.rule, self.check, self.message)
    }
}

/// Functions whose range must cover several scrapes to mean anything.
const RANGE_FUNCTIONS: &[&str] =
    &["rate", "irate", "increase", "delta", "idelta", "deriv", "resets", "changes"];

/// Every problem in `file`, for rules written for `scrape_interval`.
pub fn lint(file: &RuleFile, scrape_interval: Duration) -> Vec<Problem> {
    let mut problems = Vec::new();
    for group in &file.groups {
        let mut seen: HashMap<(String, String, String), usize> = HashMap::new();
        for rule in &group.rules {
            let mut push = |check: &'static str, message: String| {
                problems.push(Problem {
                    group: group.name.clone(),
                    rule: rule.name().to_owned(),
                    check,
                    message,
                });
            };
            let key = (rule.name().to_owned(), format!("{:?}", rule.labels), rule.expr.trim().to_owned());
            let count = seen.entry(key).or_default();
            *count += 1;
            if *count == 2 {
                push(
                    "duplicate",
                    "the same rule (name, labels and expression) appears twice in this group".to_owned(),
                );
            }
            match parser::parse(&rule.expr) {
                Err(e) => push("promql", format!("the expression does not parse: {e}")),
                Ok(expr) => {
                    if rule.alert.is_some() && !has_comparison(&expr) {
                        push(
                            "comparison",
                            "the alert expression has no comparison, so it fires for every series it returns; add a \
                             condition such as `> 0.05`"
                                .to_owned(),
                        );
                    }
                    let minimum = scrape_interval * 4;
                    for (function, range) in ranges(&expr) {
                        if range < minimum {
                            push(
                                "rate-range",
                                format!(
                                    "{function}() over {} spans fewer than 4 scrapes ({} each); use at least {}",
                                    humantime::format_duration(range),
                                    humantime::format_duration(scrape_interval),
                                    humantime::format_duration(minimum)
                                ),
                            );
                        }
                    }
                }
            }
            if rule.alert.is_some() {
                alert_checks(rule, &mut push);
            }
        }
    }
    problems
}

fn alert_checks(rule: &Rule, push: &mut impl FnMut(&'static str, String)) {
    // Multi-window burn-rate alerts are their own protection against flapping.
    if rule.for_.is_none() && !rule.labels.contains_key("sloth_severity") {
        push("for", "no `for`: a single bad scrape pages someone; set e.g. `for: 5m`".to_owned());
    }
    match rule.labels.get("severity").map(String::as_str) {
        None => push("severity", "no `severity` label: Alertmanager cannot route it".to_owned()),
        Some("critical" | "warning" | "info") => {}
        Some(other) => push("severity", format!("severity `{other}` is not one of critical, warning, info")),
    }
    for key in ["summary", "description", "runbook_url"] {
        if !rule.annotations.contains_key(key) {
            push("annotations", format!("no `{key}` annotation"));
        }
    }
    for (key, value) in &rule.labels {
        if value.contains("$value") || value.contains(".Value") {
            push(
                "label-value",
                format!(
                    "label `{key}` changes with the value: every change makes a new alert; move it to an annotation"
                ),
            );
        }
    }
    for (key, value) in rule.labels.iter().chain(&rule.annotations) {
        if let Err(message) = template(value) {
            push("template", format!("`{key}`: {message}"));
        }
    }
}

/// Whether an expression filters with a comparison (or is an `absent*()` check).
fn has_comparison(expr: &Expr) -> bool {
    match expr {
        Expr::Binary(b) => b.op.is_comparison_operator() || has_comparison(&b.lhs) || has_comparison(&b.rhs),
        Expr::Paren(p) => has_comparison(&p.expr),
        Expr::Aggregate(a) => has_comparison(&a.expr),
        Expr::Unary(u) => has_comparison(&u.expr),
        Expr::Subquery(s) => has_comparison(&s.expr),
        Expr::Call(c) => c.func.name.starts_with("absent") || c.args.args.iter().any(|a| has_comparison(a)),
        _ => false,
    }
}

/// Every (function, range) of a range function applied to a matrix selector.
fn ranges(expr: &Expr) -> Vec<(&'static str, Duration)> {
    let mut out = Vec::new();
    walk(expr, &mut |e| {
        if let Expr::Call(c) = e
            && RANGE_FUNCTIONS.contains(&c.func.name)
        {
            for arg in &c.args.args {
                if let Expr::MatrixSelector(m) = arg.as_ref() {
                    out.push((c.func.name, m.range));
                }
            }
        }
    });
    out
}

fn walk(expr: &Expr, f: &mut impl FnMut(&Expr)) {
    f(expr);
    match expr {
        Expr::Binary(b) => {
            walk(&b.lhs, f);
            walk(&b.rhs, f);
        }
        Expr::Paren(p) => walk(&p.expr, f),
        Expr::Aggregate(a) => {
            walk(&a.expr, f);
            if let Some(p) = &a.param {
                walk(p, f);
            }
        }
        Expr::Unary(u) => walk(&u.expr, f),
        Expr::Subquery(s) => walk(&s.expr, f),
        Expr::Call(c) => c.args.args.iter().for_each(|a| walk(a, f)),
        _ => {}
    }
}

/// A light check of Go template syntax as Prometheus uses it: balanced `{{ }}` and known variables.
fn template(text: &str) -> Result<(), String> {
    let mut rest = text;
    while let Some(open) = rest.find("{{") {
        let after = &rest[open + 2..];
        let Some(close) = after.find("}}") else {
            return Err("`{{` is never closed with `}}`".to_owned());
        };
        let body = &after[..close];
        if body.contains("{{") {
            return Err("`{{` opened twice before `}}`".to_owned());
        }
        for word in
            body.split(|c: char| c.is_whitespace() || "(|)".contains(c)).filter(|w| w.starts_with('$'))
        {
            let var = word.split('.').next().unwrap_or(word);
            if !["$labels", "$value", "$externalLabels", "$externalURL", "$"].contains(&var) {
                return Err(format!(
                    "unknown variable `{var}` (Prometheus knows $labels, $value, $externalLabels, $externalURL)"
                ));
            }
        }
        rest = &after[close + 2..];
    }
    if rest.contains("}}") {
        return Err("`}}` without a matching `{{`".to_owned());
    }
    Ok(())
}
