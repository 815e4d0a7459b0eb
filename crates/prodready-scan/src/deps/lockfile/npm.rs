//! `package-lock.json` and `npm-shrinkwrap.json`: v2/v3 `packages`, v1 `dependencies`.

use std::collections::{BTreeMap, HashMap};

use serde::Deserialize;

use super::{Collector, split_at_version};
use crate::Result;
use crate::deps::Ecosystem;
use crate::deps::version::SemVer;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Doc {
    #[serde(default)]
    lockfile_version: Option<u32>,
    #[serde(default)]
    packages: Option<BTreeMap<String, Entry>>,
    #[serde(default)]
    dependencies: Option<BTreeMap<String, V1Entry>>,
}

#[derive(Deserialize)]
struct Entry {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    version: Option<String>,
    #[serde(default)]
    link: Option<bool>,
}

#[derive(Deserialize)]
struct V1Entry {
    #[serde(default)]
    version: Option<String>,
    #[serde(default)]
    dependencies: Option<BTreeMap<String, V1Entry>>,
}

pub(super) fn parse(text: &str, out: &mut Collector<'_>) -> Result<()> {
    let mut de = serde_json::Deserializer::from_str(text);
    let doc: Doc = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let key = e.path().to_string();
        let inner = e.into_inner();
        let line = (inner.line() > 0).then_some(inner.line());
        out.error(line, format!("not a valid package-lock.json: key `{key}`: {inner}"))
    })?;
    if doc.lockfile_version.is_none() {
        return Err(out.error(None, "not a package-lock.json: no `lockfileVersion`"));
    }
    if let Some(packages) = doc.packages {
        let lines = key_lines(text);
        for (key, entry) in packages {
            // "" is the root project; keys outside node_modules are workspace folders.
            let Some(at) = key.rfind("node_modules/") else {
                out.skip();
                continue;
            };
            let line = lines.get(key.as_str()).copied();
            let name = entry.name.as_deref().unwrap_or(&key[at + "node_modules/".len()..]);
            match (&entry.version, entry.link) {
                (_, Some(true)) | (None, _) => out.skip(),
                (Some(version), _) => push_version(out, name, version, line),
            }
        }
    } else if let Some(dependencies) = doc.dependencies {
        v1(out, dependencies, 0);
    }
    Ok(())
}

fn v1(out: &mut Collector<'_>, dependencies: BTreeMap<String, V1Entry>, depth: usize) {
    for (name, entry) in dependencies {
        match &entry.version {
            Some(version) => push_version(out, &name, version, None),
            None => out.skip(),
        }
        if let Some(nested) = entry.dependencies
            && depth < 64
        {
            v1(out, nested, depth + 1);
        }
    }
}

/// Pushes a registry version; an alias (`npm:real@1.2.3`) as the real package; anything else
/// (git, file, URLs) is skipped.
fn push_version(out: &mut Collector<'_>, name: &str, version: &str, line: Option<usize>) {
    if let Some(alias) = version.strip_prefix("npm:") {
        match split_at_version(alias) {
            Some((real, v)) if SemVer::parse(v).is_some() => out.push(Ecosystem::Npm, real, v, line),
            _ => out.skip(),
        }
    } else if SemVer::parse(version).is_some() {
        out.push(Ecosystem::Npm, name, version, line);
    } else {
        out.skip();
    }
}

/// Line of each `"node_modules/...": {` key (v2/v3 keys are unique paths).
fn key_lines(text: &str) -> HashMap<&str, usize> {
    let mut lines = HashMap::new();
    for (i, line) in text.lines().enumerate() {
        let t = line.trim_start();
        if let Some(rest) = t.strip_prefix('"')
            && let Some(end) = rest.find("\": {")
        {
            let key = &rest[..end];
            if key.contains("node_modules/") {
                lines.entry(key).or_insert(i + 1);
            }
        }
    }
    lines
}
