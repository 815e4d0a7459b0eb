//! Locked dependency versions against advisories read offline (OSV JSON, RustSec advisory-db).
//!
//! - [`lockfile`] reads Cargo.lock, package-lock.json / npm-shrinkwrap.json (v1, v2, v3),
//!   yarn.lock (classic v1 and berry), pnpm-lock.yaml (v5, v6, v9), Gradle lockfiles, Maven
//!   (`pom.xml` with pinned versions, or the output of `mvn dependency:list`) and CycloneDX JSON
//!   SBOMs into [`Package`]s.
//! - [`Database::load`] reads a directory: every `*.json` file as an OSV advisory (or an array of
//!   them), and every RustSec advisory (`RUSTSEC-*.md`, `CVE-*.md`, ... with TOML front matter),
//!   into one [`Advisory`] model. Withdrawn advisories are dropped and counted. A file that does
//!   not parse fails the whole load with one error naming it: a partly read database would
//!   report a clean result it has not earned.
//! - [`scan`] matches packages against advisories by ecosystem, name and the ecosystem's version
//!   rules ([`range`]) and returns [`Finding`]s rated by [`Severity`].

pub mod lockfile;
pub mod range;
pub mod severity;
pub mod version;

mod db;
mod osv;
mod report;
mod rustsec;

use std::collections::{BTreeSet, HashSet};
use std::fmt;
use std::path::PathBuf;

pub use db::{Database, DatabaseStats};
pub use lockfile::{Lockfile, LockfileKind, Package};
pub use range::Affects;
pub use report::report;
pub use severity::{Rating, Severity};
use version::Scheme;

/// A package ecosystem, named as OSV names it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Ecosystem {
    CratesIo,
    Npm,
    Maven,
    PyPI,
    Go,
    RubyGems,
    NuGet,
    Packagist,
    /// The Rust toolchain itself (RustSec's `rust/` advisories: std, cargo, rustdoc); no lockfile
    /// pins it, so these advisories are read and counted but never match.
    RustToolchain,
    Other(String),
}

impl Ecosystem {
    /// From an OSV `ecosystem` value; a `:suffix` (`Debian:12`) is kept in [`Ecosystem::Other`].
    pub fn from_osv(name: &str) -> Ecosystem {
        match name {
            "crates.io" => Ecosystem::CratesIo,
            "npm" => Ecosystem::Npm,
            "Maven" => Ecosystem::Maven,
            "PyPI" => Ecosystem::PyPI,
            "Go" => Ecosystem::Go,
            "RubyGems" => Ecosystem::RubyGems,
            "NuGet" => Ecosystem::NuGet,
            "Packagist" => Ecosystem::Packagist,
            other => Ecosystem::Other(other.to_owned()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Ecosystem::CratesIo => "crates.io",
            Ecosystem::Npm => "npm",
            Ecosystem::Maven => "Maven",
            Ecosystem::PyPI => "PyPI",
            Ecosystem::Go => "Go",
            Ecosystem::RubyGems => "RubyGems",
            Ecosystem::NuGet => "NuGet",
            Ecosystem::Packagist => "Packagist",
            Ecosystem::RustToolchain => "Rust",
            Ecosystem::Other(name) => name,
        }
    }

    /// How the ecosystem orders versions in `ECOSYSTEM` ranges.
    pub fn scheme(&self) -> Scheme {
        match self {
            Ecosystem::CratesIo | Ecosystem::Npm | Ecosystem::Go | Ecosystem::RustToolchain => Scheme::Semver,
            Ecosystem::Maven => Scheme::Maven,
            _ => Scheme::Generic,
        }
    }

    /// The name as the ecosystem compares names: PyPI folds case and `-_.`; Maven, NuGet and
    /// Packagist fold case; the others compare exactly.
    pub fn normalize_name(&self, name: &str) -> String {
        match self {
            Ecosystem::PyPI => {
                let lower = name.to_ascii_lowercase();
                let mut out = String::with_capacity(lower.len());
                for c in lower.chars() {
                    let c = if matches!(c, '_' | '.') { '-' } else { c };
                    if !(c == '-' && out.ends_with('-')) {
                        out.push(c);
                    }
                }
                out
            }
            Ecosystem::Maven | Ecosystem::NuGet | Ecosystem::Packagist => name.to_ascii_lowercase(),
            _ => name.to_owned(),
        }
    }
}

impl fmt::Display for Ecosystem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One package an advisory names, and the versions it affects.
#[derive(Debug, Clone, PartialEq)]
pub struct AffectedPackage {
    pub ecosystem: Ecosystem,
    pub name: String,
    pub affects: Affects,
    /// A severity given for this package only (OSV `affected[].severity`).
    pub rating: Option<Rating>,
}

/// RustSec's informational kinds: advisories that are warnings, not vulnerabilities.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Informational {
    Unmaintained,
    Unsound,
    Notice,
    Other(String),
}

impl Informational {
    pub fn as_str(&self) -> &str {
        match self {
            Informational::Unmaintained => "unmaintained",
            Informational::Unsound => "unsound",
            Informational::Notice => "notice",
            Informational::Other(s) => s,
        }
    }

    fn parse(s: &str) -> Informational {
        match s.trim() {
            "unmaintained" => Informational::Unmaintained,
            "unsound" => Informational::Unsound,
            "notice" => Informational::Notice,
            other => Informational::Other(other.to_owned()),
        }
    }
}

/// An advisory, from OSV or RustSec.
#[derive(Debug, Clone, PartialEq)]
pub struct Advisory {
    pub id: String,
    pub aliases: Vec<String>,
    pub summary: String,
    /// The advisory's page: the first advisory-type reference or `url`, else rustsec.org/osv.dev.
    pub url: Option<String>,
    /// Advisory-wide severity; `None` when the database gives neither a vector nor a label.
    pub rating: Option<Rating>,
    /// Set for RustSec's unmaintained/unsound/notice advisories: reported, but not failures.
    pub informational: Option<Informational>,
    pub affected: Vec<AffectedPackage>,
    /// The file it was read from.
    pub source: PathBuf,
}

/// What an unrated vulnerability counts as.
pub const UNRATED: Severity = Severity::High;

/// How the scan decides what fails.
#[derive(Debug, Clone, Default)]
pub struct ScanOptions {
    /// Advisory ids or aliases to leave out of the findings.
    pub ignore: BTreeSet<String>,
}

/// A locked package affected by an advisory.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    pub advisory_id: String,
    pub aliases: Vec<String>,
    pub ecosystem: Ecosystem,
    pub package: String,
    pub installed_version: String,
    /// Versions (or, for RustSec, requirements) that fix it; empty when none is known.
    pub fixed_versions: Vec<String>,
    /// The lockfile, as found (relative to the PATH argument it was found under, or as given).
    pub lockfile: PathBuf,
    /// 1-based line of the package's entry in the lockfile, where cheap to find.
    pub line: Option<usize>,
    /// `None`: the database rates it nowhere. Such a vulnerability counts as [`Severity::High`]
    /// (see [`Finding::effective_severity`]): unscored is not harmless.
    pub severity: Option<Severity>,
    pub score: Option<f64>,
    pub summary: String,
    pub url: Option<String>,
    pub informational: Option<Informational>,
}

impl Finding {
    /// The severity the threshold and the report use: the rated one, [`Severity::Low`] for
    /// informational advisories, and [`Severity::High`] for an unrated vulnerability.
    pub fn effective_severity(&self) -> Severity {
        match (&self.informational, self.severity) {
            (Some(_), _) => Severity::Low,
            (None, Some(s)) => s,
            (None, None) => UNRATED,
        }
    }

    /// Whether this finding fails the scan at `min` (every vulnerability when `None`);
    /// informational advisories (unmaintained, unsound, notice) never do.
    pub fn fails_at(&self, min: Option<Severity>) -> bool {
        self.informational.is_none() && min.is_none_or(|min| self.effective_severity() >= min)
    }

    /// `RUSTSEC-2020-0071 (CVE-2020-26235)`.
    pub fn id_with_aliases(&self) -> String {
        if self.aliases.is_empty() {
            self.advisory_id.clone()
        } else {
            format!("{} ({})", self.advisory_id, self.aliases.join(", "))
        }
    }
}

/// Matches every package of every lockfile against the database, in lockfile order; one finding
/// per (lockfile, package version, vulnerability).
pub fn scan(db: &Database, lockfiles: &[Lockfile], options: &ScanOptions) -> Vec<Finding> {
    let mut findings = Vec::new();
    for lockfile in lockfiles {
        for package in &lockfile.packages {
            // Ids and aliases already reported for this package: the same vulnerability from two
            // databases (a GHSA entry aliasing a RUSTSEC one) is reported once, first read first.
            let mut reported: HashSet<&str> = HashSet::new();
            for (advisory, affected) in db.lookup(&package.ecosystem, &package.name) {
                let ignored = options.ignore.contains(&advisory.id)
                    || advisory.aliases.iter().any(|a| options.ignore.contains(a));
                if ignored || !affected.affects.contains(package.ecosystem.scheme(), &package.version) {
                    continue;
                }
                let names = || {
                    std::iter::once(advisory.id.as_str()).chain(advisory.aliases.iter().map(String::as_str))
                };
                if names().any(|n| reported.contains(n)) {
                    continue;
                }
                reported.extend(names());
                let rating = affected.rating.as_ref().or(advisory.rating.as_ref());
                findings.push(Finding {
                    advisory_id: advisory.id.clone(),
                    aliases: advisory.aliases.clone(),
                    ecosystem: package.ecosystem.clone(),
                    package: package.name.clone(),
                    installed_version: package.version.clone(),
                    fixed_versions: affected.affects.fixed_versions(),
                    lockfile: lockfile.path.clone(),
                    line: package.line,
                    severity: rating.map(|r| r.severity),
                    score: rating.and_then(|r| r.score),
                    summary: advisory.summary.clone(),
                    url: advisory.url.clone(),
                    informational: advisory.informational.clone(),
                });
            }
        }
    }
    findings
}
