//! RustSec advisory-db files (Markdown with a ```` ```toml ```` front matter) into [`Advisory`].
//!
//! `[advisory]` gives `id`, `package`, `aliases`, `cvss`, `informational`, `withdrawn`, `url`;
//! `[versions]` gives `patched` and `unaffected` requirements (a version is affected when it
//! matches neither). The title is the Markdown's first `# ` heading.

use std::path::Path;

use serde::Deserialize;

use super::range::{Affects, Requirement};
use super::severity::rate_vector;
use super::{Advisory, AffectedPackage, Ecosystem, Informational};
use crate::{Error, Result};

#[derive(Deserialize)]
struct FrontMatter {
    advisory: AdvisoryTable,
    #[serde(default)]
    versions: Option<VersionsTable>,
}

#[derive(Deserialize)]
struct AdvisoryTable {
    id: String,
    package: String,
    #[serde(default)]
    aliases: Vec<String>,
    #[serde(default)]
    cvss: Option<String>,
    #[serde(default)]
    informational: Option<String>,
    #[serde(default)]
    withdrawn: Option<toml::Value>,
    #[serde(default)]
    url: Option<String>,
}

#[derive(Deserialize)]
struct VersionsTable {
    #[serde(default)]
    patched: Vec<String>,
    #[serde(default)]
    unaffected: Vec<String>,
}

/// Whether a `.md` file in a database directory is meant to be an advisory: its name is an id
/// (`RUSTSEC-2020-0071.md`, `CVE-2022-21658.md`, `GHSA-....md`), not `README.md` and the like.
pub(super) fn is_advisory_name(file_name: &str) -> bool {
    let Some(stem) = file_name.strip_suffix(".md") else { return false };
    let Some((prefix, rest)) = stem.split_once('-') else { return false };
    !prefix.is_empty() && prefix.bytes().all(|b| b.is_ascii_uppercase()) && !rest.is_empty()
}

/// Parses one advisory; `Ok(None)` for a withdrawn one. `toolchain` marks the `rust/` advisories
/// (std, cargo, rustdoc), which no lockfile pins.
pub(super) fn parse(path: &Path, text: &str, toolchain: bool) -> Result<Option<Advisory>> {
    let fail =
        |line: Option<usize>, message: String| Error::Advisory { path: path.to_owned(), line, message };
    let text = text.trim_start_matches('\u{feff}');
    let mut lines = text.split_inclusive('\n');
    let first = lines.next().unwrap_or_default();
    if first.trim() != "```toml" {
        return Err(fail(
            Some(1),
            "no front matter: a RustSec advisory starts with a ```toml line".to_owned(),
        ));
    }
    let start = first.len();
    let mut end = None;
    let mut offset = start;
    for line in lines {
        if line.trim_end() == "```" {
            end = Some((offset, offset + line.len()));
            break;
        }
        offset += line.len();
    }
    let Some((end, body_start)) = end else {
        return Err(fail(None, "the ```toml front matter is never closed with a ``` line".to_owned()));
    };
    let toml_text = &text[start..end];
    let body = &text[body_start..];
    // Front matter line N is file line N + 1.
    let line_of = |byte: usize| Some(toml_text[..byte.min(toml_text.len())].matches('\n').count() + 2);
    let de = toml::Deserializer::parse(toml_text)
        .map_err(|e| fail(e.span().and_then(|s| line_of(s.start)), e.message().to_owned()))?;
    let front: FrontMatter = serde_path_to_error::deserialize(de).map_err(|e| {
        let key = e.path().to_string();
        let inner = e.into_inner();
        let line = inner.span().and_then(|s| line_of(s.start));
        let message = if key.is_empty() || key == "." {
            inner.message().to_owned()
        } else {
            format!("key `{key}`: {}", inner.message())
        };
        fail(line, message)
    })?;
    let a = front.advisory;
    if a.withdrawn.is_some() {
        return Ok(None);
    }
    let key_line = |key: &str| {
        toml_text
            .lines()
            .position(|l| {
                l.trim_start().starts_with(key)
                    && l[l.find(key).unwrap_or(0) + key.len()..].trim_start().starts_with('=')
            })
            .map(|i| i + 2)
    };
    let rating = match &a.cvss {
        Some(vector) => Some(
            rate_vector(vector).map_err(|m| fail(key_line("cvss"), format!("key `advisory.cvss`: {m}")))?,
        ),
        None => None,
    };
    let versions = front.versions.unwrap_or(VersionsTable { patched: Vec::new(), unaffected: Vec::new() });
    let requirements = |key: &str, list: &[String]| -> Result<Vec<Requirement>> {
        list.iter()
            .map(|r| {
                Requirement::parse(r).map_err(|m| fail(key_line(key), format!("key `versions.{key}`: {m}")))
            })
            .collect()
    };
    let affects = Affects::RustSec {
        patched: requirements("patched", &versions.patched)?,
        unaffected: requirements("unaffected", &versions.unaffected)?,
    };
    let title = body
        .lines()
        .find_map(|l| l.strip_prefix("# "))
        .map(|t| t.trim().to_owned())
        .unwrap_or_else(|| format!("{} in {}", a.id, a.package));
    let url = Some(match (&a.url, toolchain) {
        (_, false) => format!("https://rustsec.org/advisories/{}.html", a.id),
        (Some(url), true) => url.clone(),
        (None, true) => format!("https://osv.dev/vulnerability/{}", a.id),
    });
    let ecosystem = if toolchain { Ecosystem::RustToolchain } else { Ecosystem::CratesIo };
    Ok(Some(Advisory {
        id: a.id,
        aliases: a.aliases,
        summary: title,
        url,
        rating,
        informational: a.informational.as_deref().map(Informational::parse),
        affected: vec![AffectedPackage { ecosystem, name: a.package, affects, rating: None }],
        source: path.to_owned(),
    }))
}
