//! `yarn.lock`: classic (v1, yarn's own format) and berry (v2+, YAML with `__metadata`).

use std::collections::HashMap;

use super::{Collector, split_at_version, unquote};
use crate::Result;
use crate::deps::Ecosystem;
use crate::deps::version::SemVer;

pub(super) fn parse(text: &str, out: &mut Collector<'_>) -> Result<()> {
    if text.lines().any(|l| l.starts_with("__metadata:")) { berry(text, out) } else { classic(text, out) }
}

/// Protocols of ranges that do not come from the registry.
fn is_foreign(range: &str) -> bool {
    [
        "git",
        "github:",
        "gitlab:",
        "bitbucket:",
        "file:",
        "link:",
        "portal:",
        "workspace:",
        "http:",
        "https:",
        "patch:",
        "exec:",
    ]
    .iter()
    .any(|p| range.starts_with(p))
}

fn classic(text: &str, out: &mut Collector<'_>) -> Result<()> {
    // (header line, package name, whether its range is a registry one)
    let mut current: Option<(usize, String, bool)> = None;
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        if !line.starts_with(' ') {
            if let Some((header, name, _)) = current.take() {
                return Err(out.error(Some(header), format!("entry `{name}` has no version")));
            }
            let Some(specs) = line.strip_suffix(':') else {
                return Err(out.error(Some(n), "expected `name@range, ...:` starting an entry"));
            };
            let first = unquote(specs.split(", ").next().unwrap_or_default());
            let Some((name, range)) = split_at_version(first) else {
                return Err(out.error(Some(n), format!("`{first}` is not `name@range`")));
            };
            let (name, registry) = match range.strip_prefix("npm:") {
                // An alias: `alias@npm:real@^1.0.0`.
                Some(real) => (split_at_version(real).map_or(real, |(real, _)| real), true),
                None => (name, !is_foreign(range)),
            };
            current = Some((n, name.to_owned(), registry));
        } else if let Some(version) = line.trim_start().strip_prefix("version ") {
            let Some((header, name, registry)) = current.take() else {
                return Err(out.error(Some(n), "`version` outside an entry"));
            };
            let version = unquote(version);
            if registry && SemVer::parse(version).is_some() {
                out.push(Ecosystem::Npm, &name, version, Some(header));
            } else {
                out.skip();
            }
        }
    }
    if let Some((header, name, _)) = current {
        return Err(out.error(Some(header), format!("entry `{name}` has no version")));
    }
    Ok(())
}

fn berry(text: &str, out: &mut Collector<'_>) -> Result<()> {
    let doc: serde_yaml_ng::Mapping = serde_yaml_ng::from_str(text).map_err(|e| {
        let line = e.location().map(|l| l.line());
        out.error(line, format!("not a valid yarn.lock: {e}"))
    })?;
    let mut lines = HashMap::new();
    for (i, line) in text.lines().enumerate() {
        if let Some(key) = line.strip_suffix(':')
            && !line.starts_with([' ', '#'])
        {
            lines.insert(unquote(key).to_owned(), i + 1);
        }
    }
    for (key, entry) in &doc {
        let Some(key) = key.as_str() else { continue };
        if key == "__metadata" {
            continue;
        }
        let line = lines.get(key).copied();
        let Some(resolution) = entry.get("resolution").and_then(|r| r.as_str()) else {
            return Err(out.error(line, format!("entry `{key}` has no `resolution`")));
        };
        match split_at_version(resolution) {
            Some((name, reference)) => match reference.strip_prefix("npm:") {
                Some(version) if SemVer::parse(version).is_some() => {
                    out.push(Ecosystem::Npm, name, version, line);
                }
                _ => out.skip(),
            },
            None => return Err(out.error(line, format!("`{resolution}` is not `name@reference`"))),
        }
    }
    Ok(())
}
