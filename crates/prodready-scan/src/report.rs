//! The one report model of every scan, and its renderings: text, JSON, SARIF 2.1.0 and JUnit XML.
//!
//! A scan (secrets, deps) fills a [`Report`]: the [`Rule`]s it knows (a secret rule, or an advisory) and
//! the [`Finding`]s it made, each at a [`Location`]-like place (a path relative to the scanned root, a
//! line and a column, and the commit for history scans). What is specific to one scan travels in a
//! finding's `properties` (a deps finding's `package`, `version`, `ecosystem`; a secret's nothing), which
//! JSON flattens into the finding and SARIF keeps in `result.properties`.
//!
//! Excerpts are whatever the scan put there: a scan redacts before it builds a finding, so no rendering
//! ever sees a secret.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Version of the JSON document; bumped on any incompatible change.
pub const SCHEMA_VERSION: u32 = 1;

/// `$schema` of the SARIF documents we write.
pub const SARIF_SCHEMA: &str = "https://json.schemastore.org/sarif-2.1.0.json";

/// How bad a finding is. Ordered: `Low < Medium < High < Critical`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub const ALL: [Severity; 4] = [Severity::Low, Severity::Medium, Severity::High, Severity::Critical];

    pub fn name(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }

    /// SARIF `level`: `error` for high and critical, `warning` for medium, `note` for low.
    pub fn sarif_level(self) -> &'static str {
        match self {
            Severity::Critical | Severity::High => "error",
            Severity::Medium => "warning",
            Severity::Low => "note",
        }
    }

    /// GitHub's `security-severity` property (a CVSS-like score as a string).
    pub fn security_severity(self) -> &'static str {
        match self {
            Severity::Critical => "9.5",
            Severity::High => "8.0",
            Severity::Medium => "5.5",
            Severity::Low => "2.0",
        }
    }

    /// The severity a CVSS v3 base score falls in (0.1–3.9 low, 4–6.9 medium, 7–8.9 high, 9+ critical).
    pub fn from_cvss(score: f64) -> Severity {
        if score >= 9.0 {
            Severity::Critical
        } else if score >= 7.0 {
            Severity::High
        } else if score >= 4.0 {
            Severity::Medium
        } else {
            Severity::Low
        }
    }
}

impl std::fmt::Display for Severity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Severity {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "low" | "info" | "informational" | "none" => Ok(Severity::Low),
            "medium" | "moderate" => Ok(Severity::Medium),
            "high" => Ok(Severity::High),
            "critical" => Ok(Severity::Critical),
            other => Err(format!("`{other}` is not a severity (low, medium, high, critical)")),
        }
    }
}

/// What a finding was made by: a secret rule, or an advisory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rule {
    /// Stable id (`aws-access-key-id`, `RUSTSEC-2020-0071`): `ruleId` in SARIF, the JUnit class name.
    pub id: String,
    /// One line (`AWS access key id`, an advisory's title).
    pub title: String,
    /// A paragraph: what it is and why it matters.
    pub description: String,
    /// What to do about a finding.
    pub help: String,
    pub severity: Severity,
    /// A page about it (an advisory's URL), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

/// One thing a scan found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// The [`Rule::id`] it was made by.
    pub rule: String,
    /// Relative to the scanned PATH as the caller gave it, `/`-separated (`src/app.py`).
    pub path: String,
    /// 1-based; 0 when the finding has no line (a lockfile entry without one).
    pub line: u32,
    /// 1-based, in characters; 0 when unknown.
    pub column: u32,
    /// Stable across line moves: what a baseline records.
    pub fingerprint: String,
    /// The matched text with the secret redacted (never the whole secret), or `package version` for deps.
    pub excerpt: String,
    pub severity: Severity,
    /// The commit that added it, in history scans.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// Reported but not failing the scan: an informational advisory, or a vulnerability below the
    /// caller's severity threshold. SARIF level `note`, so that a gate reading the log agrees with the
    /// scan's exit code.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub note: bool,
    /// Scan-specific facts (`package`, `version`, `ecosystem`, `fixed`), flattened into the JSON finding.
    #[serde(flatten)]
    pub properties: BTreeMap<String, String>,
}

impl Finding {
    /// `path:line:column` (`path` alone without a line).
    pub fn place(&self) -> String {
        match (self.line, self.column) {
            (0, _) => self.path.clone(),
            (line, 0) => format!("{}:{line}", self.path),
            (line, column) => format!("{}:{line}:{column}", self.path),
        }
    }
}

/// What the scan covered, as named counters (`files`, `bytes`, `skipped_binary`, `commits`, ...).
pub type Stats = BTreeMap<String, u64>;

/// Everything one scan produced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub schema_version: u32,
    /// `secrets` or `deps`.
    pub scan: String,
    /// New findings (those not in the baseline), in path, line, column order.
    pub findings: Vec<Finding>,
    /// Findings the baseline accepted: counted, not listed.
    pub baselined: u64,
    /// Findings an inline `prodready:allow` (or an allowlist) silenced: counted, not listed.
    pub allowed: u64,
    pub stats: Stats,
    /// Every rule the scan ran with (in SARIF, the driver's rules); findings point into it.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub rules: Vec<Rule>,
}

/// An output format of `prodready scan`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
    Sarif,
    Junit,
}

impl Format {
    pub const ALL: [Format; 4] = [Format::Text, Format::Json, Format::Sarif, Format::Junit];

    pub fn name(self) -> &'static str {
        match self {
            Format::Text => "text",
            Format::Json => "json",
            Format::Sarif => "sarif",
            Format::Junit => "junit",
        }
    }
}

impl FromStr for Format {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Format::ALL
            .into_iter()
            .find(|f| f.name() == s)
            .ok_or_else(|| format!("`{s}` is not a format (text, json, sarif, junit)"))
    }
}

impl Report {
    pub fn new(scan: impl Into<String>) -> Self {
        Self {
            schema_version: SCHEMA_VERSION,
            scan: scan.into(),
            findings: Vec::new(),
            baselined: 0,
            allowed: 0,
            stats: Stats::new(),
            rules: Vec::new(),
        }
    }

    /// Sorts findings by path, line, column, rule (the order every rendering shows).
    pub fn sort(&mut self) {
        self.findings.sort_by(|a, b| {
            (&a.path, a.line, a.column, &a.rule, &a.commit)
                .cmp(&(&b.path, b.line, b.column, &b.rule, &b.commit))
        });
    }

    /// The highest severity among the findings, if any.
    pub fn max_severity(&self) -> Option<Severity> {
        self.findings.iter().map(|f| f.severity).max()
    }

    pub fn rule(&self, id: &str) -> Option<&Rule> {
        self.rules.iter().find(|r| r.id == id)
    }

    pub fn render(&self, format: Format) -> String {
        match format {
            Format::Text => self.text(),
            Format::Json => self.json(),
            Format::Sarif => self.sarif(),
            Format::Junit => self.junit(),
        }
    }

    /// One JSON document: `{"findings": [{"rule", "path", "line", "column", "fingerprint", "excerpt",
    /// "severity", ...}], "baselined", "allowed", "stats", ...}`.
    pub fn json(&self) -> String {
        let mut out = serde_json::to_string_pretty(self).expect("a report serializes");
        out.push('\n');
        out
    }

    /// One line per finding (`path:line:col  rule  excerpt`), then a summary line.
    pub fn text(&self) -> String {
        let mut out = String::new();
        for f in &self.findings {
            let _ = write!(out, "{}  {}  [{}]  {}", f.place(), f.rule, f.severity, f.excerpt);
            if let Some(commit) = &f.commit {
                let _ = write!(out, "  (commit {})", short(commit));
            }
            for (k, v) in &f.properties {
                let _ = write!(out, "  {k}={v}");
            }
            out.push('\n');
        }
        out.push_str(&self.summary());
        out.push('\n');
        out
    }

    /// `N new findings (M in the baseline, K allowed inline); scanned ...`.
    pub fn summary(&self) -> String {
        let n = self.findings.len();
        let mut out = format!("{n} new finding{}", if n == 1 { "" } else { "s" });
        let mut extra = Vec::new();
        if self.baselined > 0 {
            extra.push(format!("{} in the baseline", self.baselined));
        }
        if self.allowed > 0 {
            extra.push(format!("{} allowed", self.allowed));
        }
        if !extra.is_empty() {
            let _ = write!(out, " ({})", extra.join(", "));
        }
        if !self.stats.is_empty() {
            let stats: Vec<String> =
                self.stats.iter().map(|(k, v)| format!("{} {}", v, k.replace('_', " "))).collect();
            let _ = write!(out, "; {}", stats.join(", "));
        }
        out
    }

    /// A SARIF 2.1.0 log with one run: every rule with its help, each finding as a result with a
    /// relative `artifactLocation.uri`, a region, the redacted excerpt as snippet and
    /// `partialFingerprints` (so GitHub code scanning does not duplicate alerts across uploads).
    pub fn sarif(&self) -> String {
        use serde_json::{Value, json};
        let rules: Vec<Value> = self
            .rules
            .iter()
            .map(|r| {
                let mut rule = json!({
                    "id": r.id,
                    "name": rule_name(&r.id),
                    "shortDescription": {"text": r.title},
                    "fullDescription": {"text": r.description},
                    "help": {"text": r.help},
                    "defaultConfiguration": {"level": self.sarif_level(r.severity)},
                    "properties": {
                        "tags": ["security", self.scan],
                        "security-severity": r.severity.security_severity(),
                        "precision": "high",
                    },
                });
                if let Some(url) = &r.url {
                    rule["helpUri"] = json!(url);
                }
                rule
            })
            .collect();
        let results: Vec<Value> = self
            .findings
            .iter()
            .map(|f| {
                let title = self.rule(&f.rule).map_or(f.rule.as_str(), |r| r.title.as_str());
                let mut message = format!("{title} in {}", f.path);
                if let Some(commit) = &f.commit {
                    let _ = write!(message, " (commit {})", short(commit));
                }
                let mut region = serde_json::Map::new();
                if f.line > 0 {
                    region.insert("startLine".into(), json!(f.line));
                    if f.column > 0 {
                        region.insert("startColumn".into(), json!(f.column));
                    }
                }
                region.insert("snippet".into(), json!({"text": f.excerpt}));
                let mut physical = json!({
                    "artifactLocation": {"uri": uri_reference(&f.path), "uriBaseId": "%SRCROOT%"},
                });
                if f.line > 0 {
                    physical["region"] = Value::Object(region);
                }
                let mut result = json!({
                    "ruleId": f.rule,
                    // A finding that fails the scan is never a note: a gate reading the log passes notes.
                    "level": match (f.note, self.sarif_level(f.severity)) {
                        (true, _) => "note",
                        (false, "note") => "warning",
                        (false, level) => level,
                    },
                    "message": {"text": message},
                    "locations": [{"physicalLocation": physical}],
                    "partialFingerprints": {
                        "primaryLocationLineHash": f.fingerprint,
                        "prodready/v1": f.fingerprint,
                    },
                });
                if let Some(index) = self.rules.iter().position(|r| r.id == f.rule) {
                    result["ruleIndex"] = json!(index);
                }
                let mut properties: serde_json::Map<String, Value> =
                    f.properties.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
                properties.insert("severity".into(), json!(f.severity.name()));
                if let Some(commit) = &f.commit {
                    properties.insert("commit".into(), json!(commit));
                }
                result["properties"] = Value::Object(properties);
                result
            })
            .collect();
        let doc = json!({
            "$schema": SARIF_SCHEMA,
            "version": "2.1.0",
            "runs": [{
                "tool": {"driver": {
                    "name": "prodready",
                    "semanticVersion": env!("CARGO_PKG_VERSION"),
                    "informationUri": "https://github.com/prodready/prodready",
                    "rules": rules,
                }},
                "automationDetails": {"id": format!("prodready/scan/{}/", self.scan)},
                "originalUriBaseIds": {"%SRCROOT%": {"description": {"text": "the scanned path"}}},
                "results": results,
                "properties": {"baselined": self.baselined, "allowed": self.allowed, "stats": self.stats},
            }],
        });
        let mut out = serde_json::to_string_pretty(&doc).expect("SARIF serializes");
        out.push('\n');
        out
    }

    /// SARIF `level` of a finding (or rule) of this scan at `severity`: [`Severity::sarif_level`], except
    /// that a secret is at least a `warning`. Every new secret fails the secrets scan, and a gate reading
    /// the log passes `note` results, so a low-severity secret as a note would pass the gate.
    fn sarif_level(&self, severity: Severity) -> &'static str {
        match severity.sarif_level() {
            "note" if self.scan == "secrets" => "warning",
            level => level,
        }
    }

    /// JUnit XML: one suite named after the scan, one failing case per finding (named by its place and
    /// rule), or one passing case when nothing was found, so CI shows the scan ran.
    pub fn junit(&self) -> String {
        use quick_junit::{NonSuccessKind, Report as JReport, TestCase, TestCaseStatus, TestSuite};
        let mut report = JReport::new(format!("{} scan", self.scan));
        let mut suite = TestSuite::new(format!("scan {}", self.scan));
        for f in &self.findings {
            let title = self.rule(&f.rule).map_or(f.rule.as_str(), |r| r.title.as_str());
            let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
            if let TestCaseStatus::NonSuccess { message, description, ty, .. } = &mut status {
                *message = Some(format!("{title} at {}", f.place()).into());
                *ty = Some(f.severity.name().into());
                let mut text = f.excerpt.clone();
                if let Some(commit) = &f.commit {
                    let _ = write!(text, "\ncommit {commit}");
                }
                for (k, v) in &f.properties {
                    let _ = write!(text, "\n{k}: {v}");
                }
                if let Some(rule) = self.rule(&f.rule) {
                    let _ = write!(text, "\nfix: {}", rule.help);
                }
                *description = Some(text.into());
            }
            let mut case = TestCase::new(format!("{} {}", f.place(), f.rule), status);
            case.set_classname(format!("{}.{}", self.scan, f.rule));
            suite.add_test_case(case);
        }
        if self.findings.is_empty() {
            let mut case = TestCase::new(format!("no new {} findings", self.scan), TestCaseStatus::success());
            case.set_classname(self.scan.clone());
            case.set_system_out(self.summary());
            suite.add_test_case(case);
        }
        report.add_test_suite(suite);
        report.to_string().expect("JUnit XML renders")
    }
}

/// `aws-access-key-id` → `AwsAccessKeyId` (SARIF's `name` is an identifier-like form of the id).
fn rule_name(id: &str) -> String {
    id.split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| {
            let mut cs = w.chars();
            cs.next().map(|c| c.to_ascii_uppercase().to_string() + cs.as_str()).unwrap_or_default()
        })
        .collect()
}

fn short(commit: &str) -> &str {
    commit.get(..12).unwrap_or(commit)
}

/// A relative path as a URI reference: `/` kept, everything outside RFC 3986's unreserved set and a
/// few safe sub-delimiters percent-encoded (`my file.rs` → `my%20file.rs`).
pub fn uri_reference(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/!$&'()*+,;=:@".contains(&b) {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// A fingerprint of parts (hex of the first 16 bytes of their SHA-256, parts separated by NUL): what a
/// scan uses for [`Finding::fingerprint`] from facts that survive line moves.
pub fn fingerprint(parts: &[&[u8]]) -> String {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            hasher.update([0u8]);
        }
        hasher.update(part);
    }
    hex::encode(&hasher.finalize()[..16])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_uris() {
        assert_eq!(rule_name("aws-access-key-id"), "AwsAccessKeyId");
        assert_eq!(rule_name("RUSTSEC-2020-0071"), "RUSTSEC20200071");
        assert_eq!(uri_reference("src/my file#1.rs"), "src/my%20file%231.rs");
        assert_eq!(uri_reference("ä.rs"), "%C3%A4.rs");
        assert!(Severity::Low < Severity::Critical);
        assert_eq!("moderate".parse::<Severity>(), Ok(Severity::Medium));
        assert_eq!(fingerprint(&[b"a", b"b"]).len(), 32);
        assert_ne!(fingerprint(&[b"ab"]), fingerprint(&[b"a", b"b"]));
    }
}
