//! Accepted findings, by fingerprint. A baseline file is a JSON report of an earlier scan
//! (`--format json --output FILE`) or a SARIF log this crate wrote: its fingerprints are accepted.

use std::collections::HashSet;
use std::path::Path;

use crate::{Error, Result};

/// A set of accepted fingerprints.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Baseline {
    fingerprints: HashSet<String>,
}

impl Baseline {
    pub fn new(fingerprints: impl IntoIterator<Item = String>) -> Self {
        Self { fingerprints: fingerprints.into_iter().collect() }
    }

    pub fn contains(&self, fingerprint: &str) -> bool {
        self.fingerprints.contains(fingerprint)
    }

    pub fn len(&self) -> usize {
        self.fingerprints.len()
    }

    pub fn is_empty(&self) -> bool {
        self.fingerprints.is_empty()
    }

    /// Reads a baseline file: a JSON report (`{"findings": [{"fingerprint": ...}]}`) or a SARIF log
    /// (`runs[].results[].partialFingerprints`).
    pub fn load(path: &Path) -> Result<Self> {
        let text =
            std::fs::read_to_string(path).map_err(|source| Error::Read { path: path.to_owned(), source })?;
        Self::parse(path, &text)
    }

    /// Parses a baseline's text; `path` names it in errors.
    pub fn parse(path: &Path, text: &str) -> Result<Self> {
        let bad = |message: String| Error::Baseline { path: path.to_owned(), message };
        let doc: serde_json::Value =
            serde_json::from_str(text).map_err(|e| bad(format!("line {}: not JSON ({e})", e.line())))?;
        let mut fingerprints = HashSet::new();
        if let Some(findings) = doc.get("findings") {
            let findings = findings.as_array().ok_or_else(|| bad("`findings` is not an array".into()))?;
            for (i, f) in findings.iter().enumerate() {
                let fp = f
                    .get("fingerprint")
                    .and_then(serde_json::Value::as_str)
                    .ok_or_else(|| bad(format!("findings[{i}] has no `fingerprint` string")))?;
                fingerprints.insert(fp.to_owned());
            }
        } else if let Some(runs) = doc.get("runs").and_then(serde_json::Value::as_array) {
            for result in runs.iter().filter_map(|r| r.get("results")?.as_array()).flatten() {
                if let Some(fp) =
                    result.pointer("/partialFingerprints/prodready~1v1").and_then(serde_json::Value::as_str)
                {
                    fingerprints.insert(fp.to_owned());
                }
            }
        } else {
            return Err(bad("neither a JSON report (`findings`) nor a SARIF log (`runs`)".into()));
        }
        Ok(Self { fingerprints })
    }
}
