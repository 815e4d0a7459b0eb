//! OSV JSON (<https://ossf.github.io/osv-schema/>) into [`Advisory`].

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use super::range::{Affects, EventKind, Range};
use super::severity::{Rating, rate_label, rate_vector};
use super::version::Scheme;
use super::{Advisory, AffectedPackage, Ecosystem, Informational};
use crate::{Error, Result};

#[derive(Deserialize)]
struct Doc {
    id: String,
    #[serde(default)]
    withdrawn: Option<String>,
    #[serde(default)]
    aliases: Option<Vec<String>>,
    #[serde(default)]
    summary: Option<String>,
    #[serde(default)]
    details: Option<String>,
    #[serde(default)]
    severity: Option<Vec<SeverityEntry>>,
    #[serde(default)]
    affected: Option<Vec<Affected>>,
    #[serde(default)]
    references: Option<Vec<Reference>>,
    #[serde(default)]
    database_specific: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct SeverityEntry {
    #[serde(rename = "type")]
    kind: String,
    score: String,
}

#[derive(Deserialize)]
struct Affected {
    #[serde(default)]
    package: Option<Package>,
    #[serde(default)]
    severity: Option<Vec<SeverityEntry>>,
    #[serde(default)]
    ranges: Option<Vec<RangeDoc>>,
    #[serde(default)]
    versions: Option<Vec<String>>,
    #[serde(default)]
    database_specific: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct Package {
    ecosystem: String,
    name: String,
}

#[derive(Deserialize)]
struct RangeDoc {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    events: Vec<BTreeMap<String, String>>,
}

#[derive(Deserialize)]
struct Reference {
    #[serde(rename = "type")]
    kind: String,
    url: String,
}

/// What one OSV file held: its advisories, and how many were withdrawn.
pub(super) struct Parsed {
    pub advisories: Vec<Advisory>,
    pub withdrawn: usize,
}

/// Parses one OSV file: one advisory object, or an array of them.
pub(super) fn parse(path: &Path, text: &str) -> Result<Parsed> {
    let text = text.trim_start_matches('\u{feff}');
    let is_array = text.trim_start().starts_with('[');
    let docs: Vec<Doc> = if is_array { deserialize(path, text)? } else { vec![deserialize(path, text)?] };
    let mut parsed = Parsed { advisories: Vec::new(), withdrawn: 0 };
    for (i, doc) in docs.into_iter().enumerate() {
        let prefix = if is_array { format!("[{i}].") } else { String::new() };
        if doc.withdrawn.as_deref().is_some_and(|w| !w.trim().is_empty()) {
            parsed.withdrawn += 1;
            continue;
        }
        parsed.advisories.push(convert(path, &prefix, doc)?);
    }
    Ok(parsed)
}

fn deserialize<T: for<'de> Deserialize<'de>>(path: &Path, text: &str) -> Result<T> {
    let mut de = serde_json::Deserializer::from_str(text);
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let key = e.path().to_string();
        let inner = e.into_inner();
        let line = (inner.line() > 0).then_some(inner.line());
        let message = if key.is_empty() || key == "." {
            format!("not OSV JSON: {inner}")
        } else {
            format!("key `{key}`: {inner}")
        };
        Error::Advisory { path: path.to_owned(), line, message }
    })
}

fn convert(path: &Path, prefix: &str, doc: Doc) -> Result<Advisory> {
    let bad = |key: String, message: String| Error::Advisory {
        path: path.to_owned(),
        line: None,
        message: format!("advisory {}: key `{prefix}{key}`: {message}", doc.id),
    };
    let rating = match rate(doc.severity.as_deref().unwrap_or_default())
        .map_err(|(i, m)| bad(format!("severity[{i}].score"), m))?
    {
        Some(r) => Some(r),
        None => doc
            .database_specific
            .as_ref()
            .and_then(|d| d.get("severity"))
            .and_then(|s| s.as_str())
            .and_then(rate_label),
    };
    let mut informational = None;
    let mut affected = Vec::new();
    for (i, a) in doc.affected.unwrap_or_default().into_iter().enumerate() {
        let Some(package) = a.package else { continue };
        let ecosystem = Ecosystem::from_osv(&package.ecosystem);
        if let Some(kind) =
            a.database_specific.as_ref().and_then(|d| d.get("informational")).and_then(|v| v.as_str())
        {
            informational = Some(Informational::parse(kind));
        }
        let own_rating = rate(a.severity.as_deref().unwrap_or_default())
            .map_err(|(j, m)| bad(format!("affected[{i}].severity[{j}].score"), m))?;
        let raw_ranges = a.ranges.unwrap_or_default();
        let versions = a.versions.unwrap_or_default();
        let affects = if raw_ranges.is_empty() && versions.is_empty() {
            Affects::Every
        } else {
            let mut ranges = Vec::new();
            for (j, r) in raw_ranges.into_iter().enumerate() {
                let scheme = match r.kind.as_str() {
                    "SEMVER" => Scheme::Semver,
                    "ECOSYSTEM" => ecosystem.scheme(),
                    // GIT ranges name commits, which no lockfile pins by version.
                    "GIT" => continue,
                    other => {
                        return Err(bad(
                            format!("affected[{i}].ranges[{j}].type"),
                            format!("unknown range type `{other}` (SEMVER, ECOSYSTEM or GIT)"),
                        ));
                    }
                };
                let mut events = Vec::new();
                for (k, event) in r.events.into_iter().enumerate() {
                    let key = || format!("affected[{i}].ranges[{j}].events[{k}]");
                    if event.len() != 1 {
                        return Err(bad(key(), "an event has exactly one key".to_owned()));
                    }
                    let (name, version) = event.into_iter().next().expect("one entry");
                    let kind = match name.as_str() {
                        "introduced" => EventKind::Introduced,
                        "fixed" => EventKind::Fixed,
                        "last_affected" => EventKind::LastAffected,
                        "limit" => EventKind::Limit,
                        other => {
                            return Err(bad(
                                key(),
                                format!("unknown event `{other}` (introduced, fixed, last_affected, limit)"),
                            ));
                        }
                    };
                    events.push((kind, version));
                }
                ranges.push(
                    Range::new(scheme, events).map_err(|m| bad(format!("affected[{i}].ranges[{j}]"), m))?,
                );
            }
            Affects::Osv { ranges, versions }
        };
        affected.push(AffectedPackage { ecosystem, name: package.name, affects, rating: own_rating });
    }
    let references = doc.references.unwrap_or_default();
    let url = references
        .iter()
        .find(|r| r.kind == "ADVISORY")
        .or_else(|| references.iter().find(|r| r.kind == "WEB"))
        .map(|r| r.url.clone())
        .or_else(|| Some(format!("https://osv.dev/vulnerability/{}", doc.id)));
    let summary = doc
        .summary
        .filter(|s| !s.trim().is_empty())
        .or_else(|| {
            doc.details.as_deref().and_then(|d| d.lines().find(|l| !l.trim().is_empty())).map(str::to_owned)
        })
        .unwrap_or_else(|| doc.id.clone());
    Ok(Advisory {
        id: doc.id,
        aliases: doc.aliases.unwrap_or_default(),
        summary: summary.trim().to_owned(),
        url,
        rating,
        informational,
        affected,
        source: path.to_owned(),
    })
}

/// The rating of an OSV `severity` list: a CVSS v4 vector first, then v3, then v2, then a label.
/// The error carries the index of a vector that does not parse.
fn rate(entries: &[SeverityEntry]) -> std::result::Result<Option<Rating>, (usize, String)> {
    for kind in ["CVSS_V4", "CVSS_V3", "CVSS_V2"] {
        if let Some((i, entry)) = entries.iter().enumerate().find(|(_, e)| e.kind == kind) {
            return rate_vector(&entry.score).map(Some).map_err(|m| (i, m));
        }
    }
    Ok(entries.iter().find_map(|e| rate_label(&e.score)))
}
