//! `Cargo.lock` (v1 to v4).

use serde::Deserialize;
use toml::Spanned;

use super::{Collector, line_at};
use crate::Result;
use crate::deps::Ecosystem;

#[derive(Deserialize)]
struct Doc {
    #[serde(default)]
    package: Vec<Entry>,
}

#[derive(Deserialize)]
struct Entry {
    name: Spanned<String>,
    version: String,
    #[serde(default)]
    source: Option<String>,
}

/// crates.io, through the git index or the sparse one.
fn is_crates_io(source: &str) -> bool {
    source == "registry+https://github.com/rust-lang/crates.io-index"
        || source == "sparse+https://index.crates.io/"
}

pub(super) fn parse(text: &str, out: &mut Collector<'_>) -> Result<()> {
    let doc: Doc = toml::from_str(text).map_err(|e| {
        let line = e.span().map(|s| line_at(text, s.start));
        out.error(line, format!("not a valid Cargo.lock: {}", e.message()))
    })?;
    for entry in doc.package {
        match entry.source.as_deref() {
            Some(source) if is_crates_io(source) => {
                let line = line_at(text, entry.name.span().start);
                out.push(Ecosystem::CratesIo, entry.name.get_ref(), &entry.version, Some(line));
            }
            // Workspace members and path dependencies (no source), git, other registries.
            _ => out.skip(),
        }
    }
    Ok(())
}
