//! Lockfiles (and SBOMs) into the packages they pin.
//!
//! | file | ecosystem | what is read |
//! |---|---|---|
//! | `Cargo.lock` | crates.io | `[[package]]` entries whose `source` is crates.io (path, git and other registries skipped) |
//! | `package-lock.json`, `npm-shrinkwrap.json` | npm | v2/v3 `packages` (links and workspace folders skipped), v1 nested `dependencies` |
//! | `yarn.lock` | npm | classic v1 entries, berry entries resolved through `npm:` |
//! | `pnpm-lock.yaml` | npm | `packages` keys of lockfile v5 (`/name/1.0.0`), v6 (`/name@1.0.0`) and v9 (`name@1.0.0`) |
//! | `gradle.lockfile`, `gradle/dependency-locks/*.lockfile` | Maven | `group:artifact:version=configurations` lines |
//! | `pom.xml` | Maven | `<dependency>` entries with a literal or `${property}` version; ranges and versions inherited from a parent or BOM cannot be known and are skipped |
//! | `maven-dependencies.txt` (or any file holding `mvn dependency:list` output) | Maven | `group:artifact:type[:classifier]:version:scope` lines |
//! | `*.cdx.json`, `bom.json` (CycloneDX JSON) | from each `purl` | every component with a purl (cargo, npm, maven, pypi, golang, gem, nuget, composer) |
//!
//! Versions that are not registry versions (git URLs, `file:`, `link:`, workspace packages) are
//! skipped and counted in [`Lockfile::skipped`].

mod cargo;
mod cyclonedx;
mod maven;
mod npm;
mod pnpm;
mod yarn;

use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};

use super::Ecosystem;
use crate::{Error, Result};

/// One pinned package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Package {
    pub ecosystem: Ecosystem,
    /// As the ecosystem names it: `serde`, `@types/node`, `org.apache.commons:commons-text`.
    pub name: String,
    pub version: String,
    /// 1-based line of its entry, where cheap to find.
    pub line: Option<usize>,
}

/// The kinds of file [`Lockfile::parse`] reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LockfileKind {
    Cargo,
    Npm,
    Yarn,
    Pnpm,
    Gradle,
    MavenPom,
    MavenDependencyList,
    CycloneDx,
}

impl LockfileKind {
    pub const ALL: [LockfileKind; 8] = [
        LockfileKind::Cargo,
        LockfileKind::Npm,
        LockfileKind::Yarn,
        LockfileKind::Pnpm,
        LockfileKind::Gradle,
        LockfileKind::MavenPom,
        LockfileKind::MavenDependencyList,
        LockfileKind::CycloneDx,
    ];

    pub fn name(self) -> &'static str {
        match self {
            LockfileKind::Cargo => "Cargo.lock",
            LockfileKind::Npm => "package-lock.json",
            LockfileKind::Yarn => "yarn.lock",
            LockfileKind::Pnpm => "pnpm-lock.yaml",
            LockfileKind::Gradle => "gradle.lockfile",
            LockfileKind::MavenPom => "pom.xml",
            LockfileKind::MavenDependencyList => "mvn dependency:list output",
            LockfileKind::CycloneDx => "CycloneDX SBOM",
        }
    }

    /// The kind a file name announces; what a directory walk picks up.
    pub fn from_file_name(name: &str) -> Option<LockfileKind> {
        Some(match name {
            "Cargo.lock" => LockfileKind::Cargo,
            "package-lock.json" | "npm-shrinkwrap.json" => LockfileKind::Npm,
            "yarn.lock" => LockfileKind::Yarn,
            "pnpm-lock.yaml" => LockfileKind::Pnpm,
            "pom.xml" => LockfileKind::MavenPom,
            "maven-dependencies.txt" => LockfileKind::MavenDependencyList,
            "bom.json" => LockfileKind::CycloneDx,
            n if n.ends_with(".cdx.json") => LockfileKind::CycloneDx,
            "gradle.lockfile" | "buildscript-gradle.lockfile" | "settings-gradle.lockfile" => {
                LockfileKind::Gradle
            }
            _ => return None,
        })
    }

    /// The kind of a file named on the command line: by name, else by content.
    pub fn detect(name: &str, text: &str) -> Option<LockfileKind> {
        if let Some(kind) = LockfileKind::from_file_name(name) {
            return Some(kind);
        }
        if name.ends_with(".lockfile") {
            return Some(LockfileKind::Gradle);
        }
        let head = &text[..text.len().min(4096)];
        if head.contains("\"bomFormat\"") && head.contains("CycloneDX") {
            Some(LockfileKind::CycloneDx)
        } else if head.contains("\"lockfileVersion\"") {
            Some(LockfileKind::Npm)
        } else if text.contains("The following files have been resolved:") {
            Some(LockfileKind::MavenDependencyList)
        } else if head.contains("# yarn lockfile") || head.contains("__metadata:") {
            Some(LockfileKind::Yarn)
        } else if head.starts_with("lockfileVersion:") {
            Some(LockfileKind::Pnpm)
        } else if head.contains("# This is a Gradle generated file") {
            Some(LockfileKind::Gradle)
        } else {
            None
        }
    }
}

impl fmt::Display for LockfileKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A parsed lockfile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lockfile {
    /// As given to [`Lockfile::parse`] (findings name it).
    pub path: PathBuf,
    pub kind: LockfileKind,
    /// Registry packages, each (ecosystem, name, version) once, in file order.
    pub packages: Vec<Package>,
    /// Entries that pin no registry version (workspace members, git, file, links).
    pub skipped: usize,
}

impl Lockfile {
    /// Reads a found lockfile; findings name it by its `display` path, errors by where it is.
    pub fn read_found(found: &Found) -> Result<Lockfile> {
        let mut lockfile = Lockfile::read(&found.path)?;
        lockfile.path.clone_from(&found.display);
        Ok(lockfile)
    }

    /// Reads and parses `path`, its kind told by its name or, failing that, its content.
    pub fn read(path: &Path) -> Result<Lockfile> {
        let text =
            std::fs::read_to_string(path).map_err(|source| Error::Read { path: path.to_owned(), source })?;
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        let kind = LockfileKind::detect(name, &text).ok_or_else(|| Error::Lockfile {
            path: path.to_owned(),
            line: None,
            message:
                "not a lockfile this scan reads (Cargo.lock, package-lock.json, yarn.lock, pnpm-lock.yaml, \
                      gradle.lockfile, pom.xml, mvn dependency:list output, CycloneDX JSON)"
                    .to_owned(),
        })?;
        Lockfile::parse(path, kind, &text)
    }

    /// Parses `text` as a `kind` lockfile; errors name `path`.
    pub fn parse(path: &Path, kind: LockfileKind, text: &str) -> Result<Lockfile> {
        let text = text.trim_start_matches('\u{feff}');
        let mut out = Collector { path, packages: Vec::new(), seen: HashSet::new(), skipped: 0 };
        match kind {
            LockfileKind::Cargo => cargo::parse(text, &mut out)?,
            LockfileKind::Npm => npm::parse(text, &mut out)?,
            LockfileKind::Yarn => yarn::parse(text, &mut out)?,
            LockfileKind::Pnpm => pnpm::parse(text, &mut out)?,
            LockfileKind::Gradle => maven::parse_gradle(text, &mut out)?,
            LockfileKind::MavenPom => maven::parse_pom(text, &mut out)?,
            LockfileKind::MavenDependencyList => maven::parse_dependency_list(text, &mut out)?,
            LockfileKind::CycloneDx => cyclonedx::parse(text, &mut out)?,
        }
        Ok(Lockfile { path: path.to_owned(), kind, packages: out.packages, skipped: out.skipped })
    }
}

/// What a parser fills: packages deduplicated, skipped entries counted, errors naming the file.
struct Collector<'a> {
    path: &'a Path,
    packages: Vec<Package>,
    seen: HashSet<(Ecosystem, String, String)>,
    skipped: usize,
}

impl Collector<'_> {
    fn push(&mut self, ecosystem: Ecosystem, name: &str, version: &str, line: Option<usize>) {
        if self.seen.insert((ecosystem.clone(), name.to_owned(), version.to_owned())) {
            self.packages.push(Package {
                ecosystem,
                name: name.to_owned(),
                version: version.to_owned(),
                line,
            });
        }
    }

    fn skip(&mut self) {
        self.skipped += 1;
    }

    fn error(&self, line: Option<usize>, message: impl Into<String>) -> Error {
        Error::Lockfile { path: self.path.to_owned(), line, message: message.into() }
    }
}

/// 1-based line of byte `offset` in `text`.
fn line_at(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())].iter().filter(|&&b| b == b'\n').count() + 1
}

/// `"x"` or `'x'` without its quotes.
fn unquote(s: &str) -> &str {
    let s = s.trim();
    for q in ['"', '\''] {
        if let Some(inner) = s.strip_prefix(q).and_then(|s| s.strip_suffix(q)) {
            return inner;
        }
    }
    s
}

/// Splits `name@range` at the first `@` that is not a scope's (`@types/node@^20` -> `@types/node`,
/// `^20`; `alias@npm:real@^1` -> `alias`, `npm:real@^1`).
fn split_at_version(spec: &str) -> Option<(&str, &str)> {
    let at = spec.get(1..)?.find('@')? + 1;
    Some((&spec[..at], &spec[at + 1..]))
}

/// Directories a walk never enters: dependencies' own trees and build output.
const SKIPPED_DIRS: [&str; 3] = ["node_modules", "target", "vendor"];

/// A lockfile found under a PATH argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// Where to read it.
    pub path: PathBuf,
    /// How findings name it: relative to the directory it was found under (`web/yarn.lock` when
    /// `.` was searched), or the file as given.
    pub display: PathBuf,
}

/// The lockfiles named by `paths`: files as given (their kind told by name or content), and
/// directories searched recursively for known lockfile names, honouring `.gitignore`, `.ignore`
/// and `.git/info/exclude` for directories (hidden directories, `node_modules`, `target` and
/// `vendor` skipped), in path order. A lockfile that is itself ignored is still found: a library
/// ignores its `Cargo.lock`, yet CI builds with one, and it must not pass for scanned.
pub fn find(paths: &[PathBuf]) -> Result<Vec<Found>> {
    let mut out = Vec::new();
    for path in paths {
        let meta = std::fs::metadata(path).map_err(|source| Error::Read { path: path.clone(), source })?;
        if !meta.is_dir() {
            out.push(Found { path: path.clone(), display: path.clone() });
            continue;
        }
        let walker = ignore::WalkBuilder::new(path)
            .hidden(true)
            .parents(true)
            .ignore(true)
            .git_ignore(true)
            .git_exclude(true)
            .git_global(false)
            .require_git(false)
            .follow_links(false)
            .filter_entry(|e| {
                !e.file_type().is_some_and(|t| t.is_dir())
                    || !SKIPPED_DIRS.iter().any(|d| e.file_name() == *d)
            })
            .build();
        let mut found = Vec::new();
        for entry in walker {
            let entry = entry.map_err(|e| Error::Read {
                path: path.clone(),
                source: std::io::Error::other(e.to_string()),
            })?;
            if entry.file_type().is_some_and(|t| t.is_dir()) {
                // The walk leaves out ignored files: the directory's lockfiles are looked for by name.
                let Ok(files) = std::fs::read_dir(entry.path()) else { continue };
                for file in files.flatten() {
                    let is_lockfile =
                        file.file_name().to_str().is_some_and(|n| LockfileKind::from_file_name(n).is_some());
                    if is_lockfile && file.file_type().is_ok_and(|t| t.is_file()) {
                        found.push(file.path());
                    }
                }
                continue;
            }
            if !entry.file_type().is_some_and(|t| t.is_file()) {
                continue;
            }
            let Some(name) = entry.file_name().to_str() else { continue };
            let in_dependency_locks =
                entry.path().parent().and_then(Path::file_name) == Some("dependency-locks".as_ref());
            // Gradle's older per-configuration lockfiles: gradle/dependency-locks/*.lockfile.
            if LockfileKind::from_file_name(name).is_some()
                || (name.ends_with(".lockfile") && in_dependency_locks)
            {
                found.push(entry.into_path());
            }
        }
        found.sort();
        found.dedup();
        out.extend(found.into_iter().map(|p| {
            let display = p.strip_prefix(path).map_or_else(|_| p.clone(), Path::to_path_buf);
            Found { path: p, display }
        }));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    /// A lockfile the project ignores is found all the same; an ignored directory is still not entered.
    #[test]
    fn ignored_lockfiles_are_found_and_ignored_directories_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, text: &str| {
            let path = dir.path().join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        };
        write(".gitignore", "Cargo.lock\nbuild/\n");
        write("Cargo.lock", "version = 4\n");
        write("web/package-lock.json", "{}\n");
        write("build/Cargo.lock", "version = 4\n");
        write("node_modules/x/package-lock.json", "{}\n");
        let found = super::find(&[dir.path().to_path_buf()]).unwrap();
        let shown: Vec<PathBuf> = found.into_iter().map(|f| f.display).collect();
        assert_eq!(shown, [PathBuf::from("Cargo.lock"), PathBuf::from("web/package-lock.json")]);
    }
}
