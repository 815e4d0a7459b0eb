//! Rendering a run: terminal text, Markdown, JSON, JUnit XML and self-contained HTML.

use std::fmt::Write as _;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::history::Entry;
use crate::model::{Category, CheckResult, Status};
use crate::score::{CategoryScore, Scorecard, Verdict};

/// Version of the JSON document; bumped on any incompatible change.
pub const SCHEMA_VERSION: u32 = 1;

/// Everything one run produced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub schema_version: u32,
    /// RFC 3339, UTC.
    pub generated_at: String,
    pub scorecard: Scorecard,
    /// The run before this one, for the trend.
    pub previous: Option<Entry>,
    pub results: Vec<CheckResult>,
}

impl Report {
    pub fn new(
        generated_at: String,
        scorecard: Scorecard,
        previous: Option<Entry>,
        results: Vec<CheckResult>,
    ) -> Self {
        Self { schema_version: SCHEMA_VERSION, generated_at, scorecard, previous, results }
    }

    /// One JSON document.
    pub fn json(&self) -> String {
        let mut out = serde_json::to_string_pretty(self).expect("a report serializes");
        out.push('\n');
        out
    }

    fn results_in(&self, category: Category) -> impl Iterator<Item = &CheckResult> {
        self.results.iter().filter(move |r| r.meta.category == category)
    }

    fn previous_score(&self, category: Category) -> Option<f64> {
        self.previous.as_ref()?.categories.get(category.name()).copied().flatten()
    }

    /// One line with the verdict and why: `READY: ...` or `NOT READY: ...`.
    pub fn verdict_line(&self) -> String {
        let card = &self.scorecard;
        match card.verdict {
            Verdict::Ready => {
                format!("READY: every must-have check passed and the score reaches {}", card.min_score)
            }
            Verdict::MustHaveFailed => {
                format!("NOT READY: must-have checks failed: {}", card.blocking.join(", "))
            }
            Verdict::BelowMinimum => format!(
                "NOT READY: overall score {} is below the minimum {:.1}",
                score_text(card.overall),
                card.min_score
            ),
        }
    }

    /// The terminal scorecard: categories, overall score with trend, verdict, then every check with the
    /// fix for each one that did not pass.
    pub fn text(&self) -> String {
        let card = &self.scorecard;
        let mut out = format!("prodready readiness scorecard ({})\n\n", self.generated_at);
        out.push_str("  category       score  passed   change\n");
        for c in &card.categories {
            let change = trend(c.score, self.previous_score(c.category));
            let passed = if c.total == 0 { "-".to_owned() } else { format!("{}/{}", c.passed, c.total) };
            let _ = writeln!(
                out,
                "  {:<14} {:>5}  {:<8} {change}",
                c.category.name(),
                score_text(c.score),
                passed
            );
        }
        let previous_overall = self.previous.as_ref().and_then(|p| p.overall);
        let _ = writeln!(
            out,
            "  {:<14} {:>5}  {:<8} {}\n",
            "overall",
            score_text(card.overall),
            format!("{}/{}", card.counts.pass + card.counts.warn, self.applicable()),
            trend(card.overall, previous_overall)
        );
        let _ = writeln!(out, "{}\n", self.verdict_line());
        for category in Category::ALL {
            let mut results = self.results_in(category).peekable();
            if results.peek().is_none() {
                continue;
            }
            let _ = writeln!(out, "{category}");
            for r in results {
                let must = if r.meta.must_have { " [must-have]" } else { "" };
                let _ = writeln!(
                    out,
                    "  {:<14} {}{must}  ({})",
                    r.status.name().to_uppercase(),
                    r.meta.title,
                    r.meta.id
                );
                let _ = writeln!(out, "  {:<14} {}", "", r.summary);
                if let Some(fix) = fix(r) {
                    let _ = writeln!(out, "  {:<14} fix: {fix}", "");
                    if let Some(docs) = &r.meta.docs {
                        let _ = writeln!(out, "  {:<14} docs: {docs}", "");
                    }
                }
            }
        }
        out
    }

    fn applicable(&self) -> usize {
        self.results.iter().filter(|r| r.status.is_applicable()).count()
    }

    /// A Markdown report (GitHub-flavoured tables).
    pub fn markdown(&self) -> String {
        let card = &self.scorecard;
        let mut out = format!(
            "# Readiness scorecard\n\nGenerated {}.\n\n**{}**\n\n",
            self.generated_at,
            self.verdict_line()
        );
        out.push_str("| Category | Score | Passed | Change |\n|---|---:|---:|---|\n");
        for c in &card.categories {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} |",
                c.category,
                score_text(c.score),
                passed_text(c),
                trend(c.score, self.previous_score(c.category))
            );
        }
        let previous_overall = self.previous.as_ref().and_then(|p| p.overall);
        let _ = writeln!(
            out,
            "| **Overall** | **{}** | {}/{} | {} |\n",
            score_text(card.overall),
            card.counts.pass + card.counts.warn,
            self.applicable(),
            trend(card.overall, previous_overall)
        );
        out.push_str("## Checks\n\n| Status | Category | Check | Must-have | Result | Fix |\n|---|---|---|---|---|---|\n");
        for r in &self.results {
            let fix = fix(r).unwrap_or("");
            let _ = writeln!(
                out,
                "| {} | {} | {} (`{}`) | {} | {} | {} |",
                r.status,
                r.meta.category,
                md_cell(&r.meta.title),
                r.meta.id,
                if r.meta.must_have { "yes" } else { "" },
                md_cell(&r.summary),
                md_cell(fix)
            );
        }
        out
    }

    /// JUnit XML named `name` (the `testsuites` element): one suite per category, one test case per check
    /// named by its title.
    pub fn junit(&self, name: &str) -> String {
        use quick_junit::{NonSuccessKind, Report as JReport, TestCase, TestCaseStatus, TestSuite};
        let mut report = JReport::new(name);
        for category in Category::ALL {
            let mut suite = TestSuite::new(category.name());
            for r in self.results_in(category) {
                let mut status = match r.status {
                    Status::Pass | Status::Warn => TestCaseStatus::success(),
                    Status::Skip | Status::NotApplicable => TestCaseStatus::skipped(),
                    Status::Error => TestCaseStatus::non_success(NonSuccessKind::Error),
                    Status::Fail | Status::ManualPending | Status::ManualExpired => {
                        TestCaseStatus::non_success(NonSuccessKind::Failure)
                    }
                };
                match &mut status {
                    TestCaseStatus::NonSuccess { message, description, kind, .. } => {
                        *message = Some(format!("{}: {}", r.status, r.summary).into());
                        *kind = kind.to_owned();
                        *description = r.meta.remediation.as_ref().map(|fix| format!("fix: {fix}").into());
                    }
                    TestCaseStatus::Skipped { message, .. } => *message = Some(r.summary.clone().into()),
                    TestCaseStatus::Success { .. } => {}
                }
                let mut case = TestCase::new(r.meta.title.clone(), status);
                case.set_classname(format!("{}.{}", category.name(), r.meta.id));
                case.set_time(Duration::from_millis(r.duration_ms));
                if r.status.is_passed() {
                    case.set_system_out(format!("{}: {}", r.status, r.summary));
                }
                suite.add_test_case(case);
            }
            if !suite.test_cases.is_empty() {
                report.add_test_suite(suite);
            }
        }
        report.to_string().expect("JUnit XML renders")
    }

    /// A self-contained HTML page: inline CSS, no scripts, no external references.
    pub fn html(&self) -> String {
        let card = &self.scorecard;
        let mut out = String::from(
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>Readiness scorecard</title>\n<style>\n\
             body{font-family:system-ui,sans-serif;margin:2rem;color:#1b1b1b}\n\
             table{border-collapse:collapse;margin:1rem 0}\n\
             th,td{border:1px solid #ccc;padding:.35rem .6rem;text-align:left;vertical-align:top}\n\
             .pass,.warn{color:#11632b}.fail,.error,.manual-pending,.manual-expired{color:#a11}.skip,.na{color:#666}\n\
             .verdict{font-weight:bold;font-size:1.1rem}\n</style>\n</head>\n<body>\n<h1>Readiness scorecard</h1>\n",
        );
        let _ = writeln!(out, "<p>Generated {}.</p>", esc(&self.generated_at));
        let verdict_class = if card.verdict == Verdict::Ready { "pass" } else { "fail" };
        let _ = writeln!(out, "<p class=\"verdict {verdict_class}\">{}</p>", esc(&self.verdict_line()));
        out.push_str("<table>\n<tr><th>Category</th><th>Score</th><th>Passed</th><th>Change</th></tr>\n");
        for c in &card.categories {
            let _ = writeln!(
                out,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(c.category.name()),
                score_text(c.score),
                passed_text(c),
                esc(&trend(c.score, self.previous_score(c.category)))
            );
        }
        let previous_overall = self.previous.as_ref().and_then(|p| p.overall);
        let _ = writeln!(
            out,
            "<tr><th>Overall</th><th>{}</th><th>{}/{}</th><th>{}</th></tr>\n</table>",
            score_text(card.overall),
            card.counts.pass + card.counts.warn,
            self.applicable(),
            esc(&trend(card.overall, previous_overall))
        );
        out.push_str("<h2>Checks</h2>\n<table>\n<tr><th>Status</th><th>Category</th><th>Check</th><th>Result</th><th>Fix</th></tr>\n");
        for r in &self.results {
            let class = if r.status == Status::NotApplicable { "na" } else { r.status.name() };
            let fix = fix(r).unwrap_or("");
            let must = if r.meta.must_have { " <strong>(must-have)</strong>" } else { "" };
            let _ = writeln!(
                out,
                "<tr><td class=\"{class}\">{}</td><td>{}</td><td>{}{must}<br><code>{}</code></td><td>{}</td><td>{}</td></tr>",
                esc(r.status.name()),
                esc(r.meta.category.name()),
                esc(&r.meta.title),
                esc(&r.meta.id),
                esc(&r.summary),
                esc(fix)
            );
        }
        out.push_str("</table>\n</body>\n</html>\n");
        out
    }
}

/// The remediation to show: only for checks that count and did not pass.
fn fix(r: &CheckResult) -> Option<&str> {
    r.meta.remediation.as_deref().filter(|_| !r.status.is_passed() && r.status.is_applicable())
}

fn score_text(score: Option<f64>) -> String {
    score.map_or_else(|| "-".to_owned(), |s| format!("{s:.1}"))
}

fn passed_text(c: &CategoryScore) -> String {
    if c.total == 0 { "-".to_owned() } else { format!("{}/{}", c.passed, c.total) }
}

/// `was 5.0 (+2.0)`, or empty when there is nothing to compare.
fn trend(now: Option<f64>, before: Option<f64>) -> String {
    match (now, before) {
        (Some(now), Some(before)) => {
            let delta = crate::score::round1(now - before);
            format!("was {before:.1} ({}{delta:.1})", if delta >= 0.0 { "+" } else { "" })
        }
        _ => String::new(),
    }
}

fn md_cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

fn esc(s: &str) -> String {
    prodready_stdx::text::html_escape(s)
}
