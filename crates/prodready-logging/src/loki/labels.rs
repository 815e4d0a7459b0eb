//! Stream labels: validated names, sorted, rendered as Loki selector text.

use std::collections::BTreeMap;

use crate::{Error, Result};

/// A stream's labels. Names follow Prometheus rules (`[a-zA-Z_][a-zA-Z0-9_]*`); at most 15 per stream.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Labels(BTreeMap<String, String>);

impl Labels {
    /// Validated labels.
    pub fn new<K: Into<String>, V: Into<String>>(pairs: impl IntoIterator<Item = (K, V)>) -> Result<Self> {
        let mut map = BTreeMap::new();
        for (k, v) in pairs {
            let k = k.into();
            check_label_name(&k)?;
            map.insert(k, v.into());
        }
        if map.len() > super::MAX_LABELS {
            return Err(Error::Invalid(format!(
                "{} labels on one stream; Loki accepts at most {}: keep labels few and low-cardinality",
                map.len(),
                super::MAX_LABELS
            )));
        }
        Ok(Self(map))
    }

    /// These labels plus one more (replacing a label of the same name).
    pub fn with(&self, name: &str, value: &str) -> Self {
        let mut map = self.0.clone();
        map.insert(name.to_owned(), value.to_owned());
        Self(map)
    }

    pub fn as_map(&self) -> &BTreeMap<String, String> {
        &self.0
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `{a="1", b="x\"y"}`, as Loki's push API takes it.
    pub fn selector(&self) -> String {
        let mut out = String::from("{");
        for (i, (k, v)) in self.0.iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            out.push_str(k);
            out.push_str("=\"");
            for c in v.chars() {
                match c {
                    '"' => out.push_str("\\\""),
                    '\\' => out.push_str("\\\\"),
                    '\n' => out.push_str("\\n"),
                    c => out.push(c),
                }
            }
            out.push('"');
        }
        out.push('}');
        out
    }

    /// Parses selector text written by [`Labels::selector`] (or by Loki clients generally).
    pub fn parse(selector: &str) -> Result<Self> {
        let bad = |why: &str| Error::Invalid(format!("labels `{selector}`: {why}"));
        let inner = selector
            .trim()
            .strip_prefix('{')
            .and_then(|s| s.strip_suffix('}'))
            .ok_or_else(|| bad("expected {name=\"value\", ...}"))?;
        let chars: Vec<char> = inner.chars().collect();
        let mut i = 0;
        let mut pairs = Vec::new();
        loop {
            while i < chars.len() && (chars[i] == ' ' || chars[i] == ',') {
                i += 1;
            }
            if i >= chars.len() {
                break;
            }
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            let name: String = chars[start..i].iter().collect();
            while i < chars.len() && chars[i] == ' ' {
                i += 1;
            }
            if chars.get(i) != Some(&'=') || chars.get(i + 1) != Some(&'"') {
                return Err(bad("expected name=\"value\""));
            }
            i += 2;
            let mut value = String::new();
            loop {
                match chars.get(i) {
                    None => return Err(bad("unterminated value")),
                    Some('"') => {
                        i += 1;
                        break;
                    }
                    Some('\\') => {
                        match chars.get(i + 1) {
                            Some('n') => value.push('\n'),
                            Some(&c) => value.push(c),
                            None => return Err(bad("unterminated value")),
                        }
                        i += 2;
                    }
                    Some(&c) => {
                        value.push(c);
                        i += 1;
                    }
                }
            }
            pairs.push((name, value));
        }
        Self::new(pairs)
    }
}

/// Checks a label name against `[a-zA-Z_][a-zA-Z0-9_]*`.
pub fn check_label_name(name: &str) -> Result<()> {
    let ok = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(Error::Invalid(format!("label name `{name}`: a label name is [a-zA-Z_][a-zA-Z0-9_]*")))
    }
}
