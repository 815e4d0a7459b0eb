//! What a check is and what running it found.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The roadmap's scorecard categories, in display order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Category {
    Features,
    Security,
    Backups,
    Logging,
    Monitoring,
    Testing,
    Documentation,
    #[serde(rename = "CI/CD")]
    CiCd,
}

impl Category {
    pub const ALL: [Category; 8] = [
        Category::Features,
        Category::Security,
        Category::Backups,
        Category::Logging,
        Category::Monitoring,
        Category::Testing,
        Category::Documentation,
        Category::CiCd,
    ];

    pub const fn name(self) -> &'static str {
        match self {
            Category::Features => "Features",
            Category::Security => "Security",
            Category::Backups => "Backups",
            Category::Logging => "Logging",
            Category::Monitoring => "Monitoring",
            Category::Testing => "Testing",
            Category::Documentation => "Documentation",
            Category::CiCd => "CI/CD",
        }
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What a check found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// The check holds.
    Pass,
    /// The check holds but something needs attention soon (a certificate expiring within the warning
    /// window). Counts as passed.
    Warn,
    /// The check does not hold.
    Fail,
    /// The check could not decide (unreachable peer, timeout, unreadable file). Counts as failed.
    Error,
    /// Not run this time (filtered out). Left out of the score.
    Skip,
    /// Declared not to apply to this platform. Left out of the score.
    #[serde(rename = "n/a")]
    NotApplicable,
    /// A manual attestation nobody has made yet. Counts as failed.
    ManualPending,
    /// A manual attestation older than its expiry. Counts as failed.
    ManualExpired,
}

impl Status {
    pub const fn name(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Warn => "warn",
            Status::Fail => "fail",
            Status::Error => "error",
            Status::Skip => "skip",
            Status::NotApplicable => "n/a",
            Status::ManualPending => "manual-pending",
            Status::ManualExpired => "manual-expired",
        }
    }

    /// Counts towards the score at all.
    pub const fn is_applicable(self) -> bool {
        !matches!(self, Status::Skip | Status::NotApplicable)
    }

    /// Counts as passed in the score and for must-have gates.
    pub const fn is_passed(self) -> bool {
        matches!(self, Status::Pass | Status::Warn)
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The kind-independent part of a check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Meta {
    /// Stable id, used in JSON/JUnit output and history.
    pub id: String,
    pub title: String,
    pub category: Category,
    pub must_have: bool,
    pub weight: f64,
    /// The exact command or document that fixes a failure.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remediation: Option<String>,
    /// A link to more documentation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub docs: Option<String>,
}

/// The result of running one check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckResult {
    #[serde(flatten)]
    pub meta: Meta,
    /// `http`, `postgres`, ...
    pub kind: String,
    pub status: Status,
    /// One line: what the check saw.
    pub summary: String,
    /// Wall time of the check in milliseconds.
    pub duration_ms: u64,
}

impl CheckResult {
    /// Whether this result blocks a launch on its own: a must-have that neither passed nor is n/a.
    pub fn blocks_launch(&self) -> bool {
        self.meta.must_have && self.status.is_applicable() && !self.status.is_passed()
    }
}
