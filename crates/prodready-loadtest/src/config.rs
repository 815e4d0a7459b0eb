use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// The `[loadtest]` section of `prodready.toml`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LoadtestConfig {
    /// The scenario file `load run` uses when none is given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scenario: Option<PathBuf>,
    /// Where the last run's JSON summary is written (and where the checklist reads it); `None` means
    /// `<data_dir>/loadtest-summary.json`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub summary: Option<PathBuf>,
}
