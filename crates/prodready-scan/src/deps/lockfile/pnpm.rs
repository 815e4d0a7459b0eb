//! `pnpm-lock.yaml`: the `packages` keys of lockfile v5 (`/name/1.0.0_peer`), v6
//! (`/name@1.0.0(peer@2.0.0)`) and v9 (`name@1.0.0`).

use std::collections::HashMap;

use super::{Collector, split_at_version, unquote};
use crate::Result;
use crate::deps::Ecosystem;
use crate::deps::version::SemVer;

pub(super) fn parse(text: &str, out: &mut Collector<'_>) -> Result<()> {
    let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(text).map_err(|e| {
        let line = e.location().map(|l| l.line());
        out.error(line, format!("not a valid pnpm-lock.yaml: {e}"))
    })?;
    let version = match doc.get("lockfileVersion") {
        Some(serde_yaml_ng::Value::Number(n)) => n.as_f64(),
        Some(serde_yaml_ng::Value::String(s)) => s.parse().ok(),
        _ => None,
    };
    let Some(version) = version else {
        return Err(out.error(None, "not a pnpm-lock.yaml: no `lockfileVersion`"));
    };
    let Some(packages) = doc.get("packages").and_then(|p| p.as_mapping()) else {
        return Ok(());
    };
    let mut lines = HashMap::new();
    let mut in_packages = false;
    for (i, line) in text.lines().enumerate() {
        if !line.starts_with(' ') && !line.is_empty() {
            in_packages = line.starts_with("packages:");
        } else if in_packages
            && line.starts_with("  ")
            && !line.starts_with("   ")
            && let Some(key) = line.trim().strip_suffix(':')
        {
            lines.insert(unquote(key).to_owned(), i + 1);
        }
    }
    for (key, entry) in packages {
        let Some(key) = key.as_str() else { continue };
        let line = lines.get(key).copied();
        // Directories and git checkouts carry `resolution.type`; they are not registry versions.
        if entry.get("resolution").and_then(|r| r.get("type")).is_some() {
            out.skip();
            continue;
        }
        let (mut name, mut version) = match parse_key(key, version < 6.0) {
            Some((n, v)) => (n.to_owned(), v.to_owned()),
            None => (String::new(), String::new()),
        };
        if let (Some(n), Some(v)) =
            (entry.get("name").and_then(|n| n.as_str()), entry.get("version").and_then(|v| v.as_str()))
        {
            name = n.to_owned();
            version = v.to_owned();
        }
        if !name.is_empty() && SemVer::parse(&version).is_some() {
            out.push(Ecosystem::Npm, &name, &version, line);
        } else {
            out.skip();
        }
    }
    Ok(())
}

/// `(name, version)` of a `packages` key.
fn parse_key(key: &str, slash_separated: bool) -> Option<(&str, &str)> {
    let key = key.strip_prefix('/').unwrap_or(key);
    let key = key.split_once('(').map_or(key, |(k, _peers)| k);
    if slash_separated {
        let (name, version) = key.rsplit_once('/')?;
        Some((name, version.split_once('_').map_or(version, |(v, _peers)| v)))
    } else {
        split_at_version(key)
    }
}
