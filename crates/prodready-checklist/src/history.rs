//! The history of runs, one JSON line per run, so the scorecard can show the trend.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::score::{Scorecard, Verdict};
use crate::{Error, Result};

/// One past run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub generated_at: String,
    pub overall: Option<f64>,
    pub verdict: Verdict,
    /// Category name -> score.
    pub categories: BTreeMap<String, Option<f64>>,
}

impl Entry {
    pub fn of(scorecard: &Scorecard, generated_at: &str) -> Self {
        Self {
            generated_at: generated_at.to_owned(),
            overall: scorecard.overall,
            verdict: scorecard.verdict,
            categories: scorecard
                .categories
                .iter()
                .map(|c| (c.category.name().to_owned(), c.score))
                .collect(),
        }
    }
}

/// The newest entry, or `None` when there is no history yet. Unreadable lines (a run killed mid-write)
/// are skipped.
pub fn last(path: &Path) -> Result<Option<Entry>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(path, e)),
    };
    Ok(text.lines().rev().find_map(|l| serde_json::from_str(l).ok()))
}

/// Appends one entry (one `write` of one line, so concurrent runs do not interleave within a line).
pub fn append(path: &Path, entry: &Entry) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    }
    let mut line = serde_json::to_string(entry).expect("a history entry serializes");
    line.push('\n');
    let mut file =
        std::fs::OpenOptions::new().create(true).append(true).open(path).map_err(|e| Error::io(path, e))?;
    file.write_all(line.as_bytes()).map_err(|e| Error::io(path, e))
}
