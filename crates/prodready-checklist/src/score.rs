//! Scoring and gates.
//!
//! A category scores `10 × Σ weight·passed / Σ weight` over its applicable checks (n/a and skipped left
//! out), to one decimal; the overall score is the same sum over every applicable check. A launch is ready
//! only when every must-have check passed *and* the overall score reaches the minimum: a high average
//! never hides a failed must-have.

use serde::{Deserialize, Serialize};

use crate::model::{Category, CheckResult, Status};

/// One category's line on the scorecard.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CategoryScore {
    pub category: Category,
    /// 0-10 to one decimal; `None` when the category has no applicable check.
    pub score: Option<f64>,
    pub passed: usize,
    /// Applicable checks.
    pub total: usize,
    /// n/a and skipped checks.
    pub excluded: usize,
}

/// Whether the platform may launch, and if not, why.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    Ready,
    /// At least one must-have check did not pass.
    MustHaveFailed,
    /// Every must-have passed but the overall score is below the minimum.
    BelowMinimum,
}

/// The scorecard of one run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scorecard {
    pub categories: Vec<CategoryScore>,
    /// 0-10 to one decimal; `None` when nothing applicable ran.
    pub overall: Option<f64>,
    pub min_score: f64,
    pub verdict: Verdict,
    /// Ids of must-have checks that did not pass.
    pub blocking: Vec<String>,
    pub counts: Counts,
}

/// How many checks ended in each status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub pass: usize,
    pub warn: usize,
    pub fail: usize,
    pub error: usize,
    pub skip: usize,
    #[serde(rename = "n/a")]
    pub not_applicable: usize,
    pub manual_pending: usize,
    pub manual_expired: usize,
}

impl Counts {
    fn add(&mut self, status: Status) {
        let slot = match status {
            Status::Pass => &mut self.pass,
            Status::Warn => &mut self.warn,
            Status::Fail => &mut self.fail,
            Status::Error => &mut self.error,
            Status::Skip => &mut self.skip,
            Status::NotApplicable => &mut self.not_applicable,
            Status::ManualPending => &mut self.manual_pending,
            Status::ManualExpired => &mut self.manual_expired,
        };
        *slot += 1;
    }
}

/// The score out of 10, unrounded.
fn raw_ratio(results: &[&CheckResult]) -> Option<f64> {
    let applicable = results.iter().filter(|r| r.status.is_applicable());
    let (earned, possible) = applicable.fold((0.0, 0.0), |(earned, possible), r| {
        let passed = if r.status.is_passed() { r.meta.weight } else { 0.0 };
        (earned + passed, possible + r.meta.weight)
    });
    (possible > 0.0).then(|| 10.0 * earned / possible)
}

/// The score as shown: rounded down to one decimal, so a score under the minimum never reads as
/// reaching it (6.977 shows 6.9, not 7.0).
fn ratio(results: &[&CheckResult]) -> Option<f64> {
    raw_ratio(results).map(floor1)
}

/// Rounds down to one decimal (a hair of tolerance keeps 7.0 from showing as 6.9).
fn floor1(x: f64) -> f64 {
    ((x * 10.0) + 1e-9).floor() / 10.0
}

/// Rounds to one decimal, half away from zero.
pub fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

/// Scores `results` against `min_score` (0-10).
pub fn score(results: &[CheckResult], min_score: f64) -> Scorecard {
    let mut counts = Counts::default();
    results.iter().for_each(|r| counts.add(r.status));
    let categories = Category::ALL
        .iter()
        .map(|&category| {
            let of: Vec<&CheckResult> = results.iter().filter(|r| r.meta.category == category).collect();
            let applicable = of.iter().filter(|r| r.status.is_applicable()).count();
            CategoryScore {
                category,
                score: ratio(&of),
                passed: of.iter().filter(|r| r.status.is_applicable() && r.status.is_passed()).count(),
                total: applicable,
                excluded: of.len() - applicable,
            }
        })
        .collect();
    let all: Vec<&CheckResult> = results.iter().collect();
    let overall = ratio(&all);
    let blocking: Vec<String> =
        results.iter().filter(|r| r.blocks_launch()).map(|r| r.meta.id.clone()).collect();
    let verdict = if !blocking.is_empty() {
        Verdict::MustHaveFailed
    } else if raw_ratio(&all).unwrap_or(0.0) + 1e-9 < min_score {
        // The gate reads the unrounded score: 6.977 is below a minimum of 7.
        Verdict::BelowMinimum
    } else {
        Verdict::Ready
    };
    Scorecard { categories, overall, min_score, verdict, blocking, counts }
}
