//! Secret rules: the TOML format (gitleaks' vocabulary), the embedded set, and their compiled form
//! (one Aho-Corasick automaton over every rule's keywords, one regex per rule).

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use regex::bytes::{Regex, RegexBuilder, RegexSet, RegexSetBuilder};
use serde::{Deserialize, Serialize};

use crate::report::{Rule, Severity};
use crate::{Error, Result};

/// The embedded rules file.
pub const BUILTIN: &str = include_str!("../../rules/secrets.toml");

/// How a builtin rule's origin is named in errors.
pub(crate) const BUILTIN_ORIGIN: &str = "builtin rules (crates/prodready-scan/rules/secrets.toml)";

/// What a rule should tell a reader to do when it has no `help` of its own.
pub const DEFAULT_HELP: &str = "Revoke the credential with its provider and issue a new one, remove it from the file (and from \
     history if it was pushed), and read it at run time from a secret store or the environment.";

/// One rule as written in a rules file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    pub id: String,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub help: Option<String>,
    #[serde(default = "default_severity")]
    pub severity: Severity,
    /// Lower-case words; a line must hold one of them (case-insensitively) to reach the regex. Empty
    /// means every line does (slow: give keywords).
    #[serde(default)]
    pub keywords: Vec<String>,
    pub regex: String,
    /// The capture group holding the secret (default 1, or 0 when the regex has no group).
    #[serde(default)]
    pub secret_group: Option<usize>,
    /// Minimum Shannon entropy of the secret, in bits per byte.
    #[serde(default)]
    pub entropy: Option<f64>,
    /// Minimum number of ASCII digits in the secret.
    #[serde(default)]
    pub min_digits: u32,
    /// Regexes: a secret matching one is not a finding.
    #[serde(default)]
    pub allow: Vec<String>,
    /// Match from the keyword's line on, across lines (private keys).
    #[serde(default)]
    pub multiline: bool,
    /// A catch-all: not reported where a specific rule found the same secret.
    #[serde(default)]
    pub generic: bool,
}

fn default_severity() -> Severity {
    Severity::High
}

/// A rules file's global allowlist.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AllowSpec {
    /// Regexes over a secret: a match means placeholder.
    #[serde(default)]
    pub secrets: Vec<String>,
    /// Regexes over a relative `/`-separated path: a match means the file is not scanned.
    #[serde(default)]
    pub paths: Vec<String>,
}

/// A whole rules file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RulesFile {
    #[serde(default)]
    pub allow: AllowSpec,
    #[serde(default)]
    pub rules: Vec<RuleSpec>,
}

impl RulesFile {
    /// Parses a rules file; errors name `origin`, the line and the key.
    pub fn parse(origin: &str, text: &str) -> Result<Self> {
        toml::from_str(text).map_err(|e| {
            let place = e.span().map(|s| line_of(text, s.start)).map_or(String::new(), |l| format!(":{l}"));
            Error::Rules {
                origin: format!("{origin}{place}"),
                message: e.message().trim_end_matches('.').to_owned(),
            }
        })
    }
}

fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())].iter().filter(|&&b| b == b'\n').count() + 1
}

/// A compiled rule.
#[derive(Debug)]
pub(crate) struct Compiled {
    pub(crate) rule: Rule,
    pub(crate) regex: Regex,
    pub(crate) group: usize,
    pub(crate) entropy: f64,
    pub(crate) min_digits: u32,
    pub(crate) allow: Option<RegexSet>,
    pub(crate) multiline: bool,
    pub(crate) generic: bool,
    pub(crate) keywordless: bool,
    pub(crate) rule_keywords: Vec<String>,
}

/// Every rule, compiled, with the keyword automaton and the global allowlists: what a scan runs.
#[derive(Debug)]
pub struct Ruleset {
    pub(crate) rules: Vec<Compiled>,
    /// Keyword automaton (ASCII case-insensitive); pattern i belongs to the rules in `owners[i]`.
    pub(crate) keywords: AhoCorasick,
    pub(crate) owners: Vec<Vec<u16>>,
    /// Rules without keywords: tried on every line.
    pub(crate) keywordless: Vec<u16>,
    pub(crate) allow_secrets: Option<RegexSet>,
    pub(crate) allow_paths: Option<RegexSet>,
}

/// Builds a [`Ruleset`]: the embedded rules, plus a caller's rules files, allowlists and disabled ids.
#[derive(Debug, Default)]
pub struct RulesetBuilder {
    files: Vec<(String, RulesFile)>,
    builtin: bool,
    disabled: Vec<String>,
}

impl RulesetBuilder {
    /// Starts from the embedded rules.
    pub fn new() -> Self {
        Self { builtin: true, ..Self::default() }
    }

    /// Starts from nothing (only the rules added).
    pub fn empty() -> Self {
        Self::default()
    }

    /// Adds a rules file (same format as the embedded one); `origin` names it in errors. A rule with
    /// an id already present replaces it.
    pub fn file(mut self, origin: &str, text: &str) -> Result<Self> {
        let file = RulesFile::parse(origin, text)?;
        self.files.push((origin.to_owned(), file));
        Ok(self)
    }

    /// Adds rules and allowlists already parsed (from a configuration file).
    pub fn rules(mut self, origin: &str, file: RulesFile) -> Self {
        self.files.push((origin.to_owned(), file));
        self
    }

    /// Turns a rule off by id.
    pub fn disable(mut self, id: impl Into<String>) -> Self {
        self.disabled.push(id.into());
        self
    }

    pub fn build(self) -> Result<Ruleset> {
        let mut sources: Vec<(String, RulesFile)> = Vec::new();
        if self.builtin {
            sources.push((BUILTIN_ORIGIN.to_owned(), RulesFile::parse(BUILTIN_ORIGIN, BUILTIN)?));
        }
        sources.extend(self.files);
        let mut specs: Vec<(String, RuleSpec)> = Vec::new();
        let mut allow_secrets = Vec::new();
        let mut allow_paths = Vec::new();
        for (origin, file) in sources {
            for pattern in &file.allow.secrets {
                check_pattern(&origin, "allow", "allow.secrets", pattern)?;
            }
            for pattern in &file.allow.paths {
                check_pattern(&origin, "allow", "allow.paths", pattern)?;
            }
            allow_secrets.extend(file.allow.secrets);
            allow_paths.extend(file.allow.paths);
            for spec in file.rules {
                if let Some(slot) = specs.iter_mut().find(|(_, s)| s.id == spec.id) {
                    *slot = (origin.clone(), spec);
                } else {
                    specs.push((origin.clone(), spec));
                }
            }
        }
        for id in &self.disabled {
            if !specs.iter().any(|(_, s)| &s.id == id) {
                return Err(Error::Rules {
                    origin: "disabled rules".into(),
                    message: format!("no rule `{id}` to disable"),
                });
            }
        }
        specs.retain(|(_, s)| !self.disabled.contains(&s.id));
        if specs.len() > usize::from(u16::MAX) {
            return Err(Error::Rules { origin: "rules".into(), message: "more than 65535 rules".into() });
        }
        let mut rules = Vec::with_capacity(specs.len());
        let mut words: Vec<String> = Vec::new();
        let mut owners: Vec<Vec<u16>> = Vec::new();
        let mut keywordless = Vec::new();
        for (index, (origin, spec)) in specs.into_iter().enumerate() {
            let index = u16::try_from(index).expect("bounded above");
            let compiled = compile(&origin, spec)?;
            if compiled.keywordless {
                keywordless.push(index);
            }
            for word in compiled.rule_keywords.clone() {
                match words.iter().position(|w| *w == word) {
                    Some(i) => owners[i].push(index),
                    None => {
                        words.push(word);
                        owners.push(vec![index]);
                    }
                }
            }
            rules.push(compiled);
        }
        let keywords = AhoCorasickBuilder::new()
            .ascii_case_insensitive(true)
            .match_kind(MatchKind::Standard)
            .build(&words)
            .map_err(|e| Error::Rules { origin: "rules".into(), message: format!("keywords: {e}") })?;
        Ok(Ruleset {
            rules,
            keywords,
            owners,
            keywordless,
            allow_secrets: set("allow.secrets", &allow_secrets)?,
            allow_paths: set("allow.paths", &allow_paths)?,
        })
    }
}

fn check_pattern(origin: &str, rule: &str, key: &'static str, pattern: &str) -> Result<()> {
    RegexBuilder::new(pattern).size_limit(1 << 22).build().map(drop).map_err(|e| Error::Pattern {
        origin: origin.to_owned(),
        rule: rule.to_owned(),
        key,
        source: Box::new(e),
    })
}

fn set(key: &'static str, patterns: &[String]) -> Result<Option<RegexSet>> {
    if patterns.is_empty() {
        return Ok(None);
    }
    RegexSetBuilder::new(patterns).size_limit(1 << 24).build().map(Some).map_err(|e| Error::Pattern {
        origin: "rules".into(),
        rule: "allow".into(),
        key,
        source: Box::new(e),
    })
}

fn compile(origin: &str, spec: RuleSpec) -> Result<Compiled> {
    let bad = |message: String| Error::Rules {
        origin: origin.to_owned(),
        message: format!("rule `{}`: {message}", spec.id),
    };
    if spec.id.is_empty()
        || !spec.id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
    {
        return Err(bad("id must be letters, digits, `-`, `_` or `.`".into()));
    }
    let regex = RegexBuilder::new(&spec.regex).size_limit(1 << 24).build().map_err(|e| Error::Pattern {
        origin: origin.to_owned(),
        rule: spec.id.clone(),
        key: "regex",
        source: Box::new(e),
    })?;
    let groups = regex.captures_len() - 1;
    let group = spec.secret_group.unwrap_or(usize::from(groups > 0));
    if group > groups {
        return Err(bad(format!("secret_group = {group} but the regex has {groups} groups")));
    }
    if let Some(e) = spec.entropy
        && !(0.0..=8.0).contains(&e)
    {
        return Err(bad(format!("entropy = {e} is outside 0 to 8 (bits per byte)")));
    }
    for pattern in &spec.allow {
        check_pattern(origin, &spec.id, "allow", pattern)?;
    }
    let allow = if spec.allow.is_empty() {
        None
    } else {
        Some(RegexSetBuilder::new(&spec.allow).size_limit(1 << 24).build().map_err(|e| Error::Pattern {
            origin: origin.to_owned(),
            rule: spec.id.clone(),
            key: "allow",
            source: Box::new(e),
        })?)
    };
    let mut keywords = Vec::new();
    for k in &spec.keywords {
        if k.is_empty() {
            return Err(bad("an empty keyword matches everything: remove it".into()));
        }
        keywords.push(k.to_ascii_lowercase());
    }
    let title = spec.title.clone().unwrap_or_else(|| spec.id.clone());
    Ok(Compiled {
        rule: Rule {
            id: spec.id.clone(),
            description: spec.description.clone().unwrap_or_else(|| title.clone()),
            title,
            help: spec.help.clone().unwrap_or_else(|| DEFAULT_HELP.to_owned()),
            severity: spec.severity,
            url: None,
        },
        regex,
        group,
        entropy: spec.entropy.unwrap_or(0.0),
        min_digits: spec.min_digits,
        allow,
        multiline: spec.multiline,
        generic: spec.generic,
        keywordless: keywords.is_empty(),
        rule_keywords: keywords,
    })
}

impl Ruleset {
    /// The embedded rules alone.
    pub fn builtin() -> Self {
        RulesetBuilder::new().build().expect("the embedded rules compile")
    }

    /// Every rule, in order.
    pub fn rules(&self) -> impl Iterator<Item = &Rule> {
        self.rules.iter().map(|c| &c.rule)
    }

    pub(crate) fn path_allowed(&self, path: &str) -> bool {
        self.allow_paths.as_ref().is_some_and(|s| s.is_match(path.as_bytes()))
    }
}

/// Shannon entropy of `bytes`, in bits per byte.
pub fn entropy(bytes: &[u8]) -> f64 {
    if bytes.is_empty() {
        return 0.0;
    }
    let mut counts = [0u32; 256];
    for &b in bytes {
        counts[usize::from(b)] += 1;
    }
    let n = f64::from(u32::try_from(bytes.len()).unwrap_or(u32::MAX));
    counts.iter().filter(|&&c| c > 0).map(|&c| f64::from(c) / n).map(|p| -p * p.log2()).sum()
}
