use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::spec::CheckSpec;

/// The `[checklist]` section of `prodready.toml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ChecklistConfig {
    /// The overall score (0-10) a launch needs, on top of every must-have check passing.
    pub min_score: f64,
    /// How long one check may run before it counts as an error.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// Keep the embedded default checklist even when checks are declared.
    pub include_defaults: bool,
    /// History of runs, for the trend; `None` means `<data_dir>/check-history.jsonl`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub history_file: Option<PathBuf>,
    /// Folder with runbook.md, incident-response.md and deployment.md, for the default checks.
    pub docs_dir: PathBuf,
    /// Coverage report (lcov or llvm-cov JSON), for the default checks.
    pub coverage_report: PathBuf,
    /// A TOML file of `[[checks]]` tables, added to the checks declared here; a relative path is taken from
    /// the configuration file's directory.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<PathBuf>,
    /// Declared checks; they replace the embedded defaults unless `include_defaults = true`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<CheckSpec>,
}

impl Default for ChecklistConfig {
    fn default() -> Self {
        Self {
            min_score: 7.0,
            timeout: Duration::from_secs(10),
            include_defaults: false,
            history_file: None,
            docs_dir: PathBuf::from("docs"),
            coverage_report: PathBuf::from("coverage/lcov.info"),
            file: None,
            checks: Vec::new(),
        }
    }
}

/// A checklist file named by `[checklist] file`: just `[[checks]]`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChecklistFile {
    #[serde(default)]
    pub checks: Vec<CheckSpec>,
}
