//! The Prometheus rule-file format, for writing and reading.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A rule file: `groups:`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct RuleFile {
    pub groups: Vec<Group>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Group {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<String>,
    pub rules: Vec<Rule>,
}

/// A recording rule (`record`) or an alerting rule (`alert`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Rule {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alert: Option<String>,
    pub expr: String,
    #[serde(default, rename = "for", skip_serializing_if = "Option::is_none")]
    pub for_: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

impl Rule {
    /// The alert or record name.
    pub fn name(&self) -> &str {
        self.alert.as_deref().or(self.record.as_deref()).unwrap_or("")
    }
}

/// The largest rule file [`RuleFile::from_yaml`] reads.
pub const MAX_FILE_BYTES: usize = 16 << 20;
/// The deepest nesting [`RuleFile::from_yaml`] reads: flow brackets plus block indentation levels.
pub const MAX_DEPTH: usize = 64;

/// The 1-based line where `text` first nests deeper than [`MAX_DEPTH`], counted conservatively: open
/// flow brackets outside quotes and comments, and block levels (each needs at least one column of
/// indentation, or a `- `/`? ` marker of its own on the line). A real rule file stays far below both.
fn too_deep(text: &str) -> Option<usize> {
    let mut flow = 0usize;
    for (n, line) in text.lines().enumerate() {
        let rest = line.trim_start_matches(' ');
        let indent = line.len() - rest.len();
        let mut markers = 0;
        let mut after = rest;
        while let Some(next) = after.strip_prefix("- ").or_else(|| after.strip_prefix("? ")) {
            markers += 1;
            after = next.trim_start_matches(' ');
        }
        let mut quote: Option<char> = None;
        let mut previous = ' ';
        for c in line.chars() {
            match (quote, c) {
                (Some(q), c) if c == q => quote = None,
                (Some(_), _) => {}
                (None, '"' | '\'') if previous.is_whitespace() || "[{,:".contains(previous) => {
                    quote = Some(c);
                }
                (None, '#') if previous.is_whitespace() => break,
                (None, '[' | '{') => {
                    flow += 1;
                    if flow > MAX_DEPTH {
                        return Some(n + 1);
                    }
                }
                (None, ']' | '}') => flow = flow.saturating_sub(1),
                _ => {}
            }
            previous = c;
        }
        if markers > MAX_DEPTH || indent + 2 * markers > MAX_DEPTH * 8 {
            return Some(n + 1);
        }
    }
    None
}

impl RuleFile {
    /// YAML, with a header comment saying what it is.
    pub fn to_yaml(&self, header: &str) -> String {
        let body = serde_yaml_ng::to_string(self).expect("a rule file serializes");
        format!("# {header}\n{body}")
    }

    /// Parses a rule file, refusing at once one larger than [`MAX_FILE_BYTES`] or nested deeper than
    /// [`MAX_DEPTH`] (a hostile file would otherwise take the YAML parser minutes).
    pub fn from_yaml(text: &str) -> crate::Result<Self> {
        if text.len() > MAX_FILE_BYTES {
            return Err(crate::Error::Parse(format!(
                "{} bytes is larger than the {} MiB a rule file may be; split it",
                text.len(),
                MAX_FILE_BYTES >> 20
            )));
        }
        if let Some(line) = too_deep(text) {
            return Err(crate::Error::Parse(format!(
                "line {line}: nested deeper than {MAX_DEPTH} levels; a rule file needs fewer than 10"
            )));
        }
        serde_yaml_ng::from_str(text).map_err(|e| crate::Error::Parse(e.to_string()))
    }

    pub fn alerts(&self) -> impl Iterator<Item = &Rule> {
        self.groups.iter().flat_map(|g| g.rules.iter()).filter(|r| r.alert.is_some())
    }
}
