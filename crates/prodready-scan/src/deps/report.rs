//! Deps findings as the shared [`Report`]: one rule per advisory, one finding per locked package
//! version an advisory affects, at the lockfile (relative to the PATH it was found under) and line.

use std::collections::BTreeSet;

use super::{Database, Finding, Lockfile, Severity};
use crate::report::{self, Report, Rule};

/// Builds the `deps` report. `stats` counts lockfiles, packages and advisories read.
pub fn report(findings: &[Finding], lockfiles: &[Lockfile], db: &Database, min: Option<Severity>) -> Report {
    let mut out = Report::new("deps");
    let mut rules = BTreeSet::new();
    for f in findings {
        if rules.insert(f.advisory_id.clone()) {
            out.rules.push(rule(f));
        }
        let path = f.lockfile.to_string_lossy().replace('\\', "/");
        let mut properties = std::collections::BTreeMap::new();
        properties.insert("package".to_owned(), f.package.clone());
        properties.insert("version".to_owned(), f.installed_version.clone());
        properties.insert("ecosystem".to_owned(), f.ecosystem.to_string());
        if !f.fixed_versions.is_empty() {
            properties.insert("fixed".to_owned(), f.fixed_versions.join(" or "));
        }
        if !f.aliases.is_empty() {
            properties.insert("aliases".to_owned(), f.aliases.join(", "));
        }
        if let Some(score) = f.score {
            properties.insert("cvss".to_owned(), format!("{score:.1}"));
        } else if f.severity.is_none() && f.informational.is_none() {
            properties.insert("cvss".to_owned(), "unrated".to_owned());
        }
        if let Some(kind) = &f.informational {
            properties.insert("informational".to_owned(), kind.as_str().to_owned());
        }
        let fingerprint = report::fingerprint(&[
            b"deps",
            f.advisory_id.as_bytes(),
            f.ecosystem.as_str().as_bytes(),
            f.package.as_bytes(),
            f.installed_version.as_bytes(),
            path.as_bytes(),
        ]);
        out.findings.push(report::Finding {
            rule: f.advisory_id.clone(),
            path,
            line: f.line.and_then(|l| u32::try_from(l).ok()).unwrap_or(0),
            column: 0,
            fingerprint,
            excerpt: format!("{} {}", f.package, f.installed_version),
            severity: f.effective_severity(),
            commit: None,
            note: !f.fails_at(min),
            properties,
        });
    }
    out.sort();
    let stats = db.stats();
    let count = |n: usize| u64::try_from(n).unwrap_or(u64::MAX);
    out.stats.insert("lockfiles".to_owned(), count(lockfiles.len()));
    out.stats.insert("packages".to_owned(), count(lockfiles.iter().map(|l| l.packages.len()).sum()));
    out.stats.insert("advisories".to_owned(), count(stats.advisories));
    out.stats.insert(
        "informational".to_owned(),
        count(findings.iter().filter(|f| f.informational.is_some()).count()),
    );
    out
}

fn rule(f: &Finding) -> Rule {
    let kind = match &f.informational {
        Some(kind) => format!("an informational advisory ({})", kind.as_str()),
        None => "a vulnerability".to_owned(),
    };
    let mut description = format!("{}: {kind} in the {} package {}.", f.summary, f.ecosystem, f.package);
    if !f.aliases.is_empty() {
        description.push_str(&format!(" Also known as {}.", f.aliases.join(", ")));
    }
    if f.severity.is_none() && f.informational.is_none() {
        description.push_str(" The database gives no severity; it counts as high.");
    }
    let help = if f.fixed_versions.is_empty() {
        format!(
            "No fixed version of {} is known: replace the dependency, or accept the risk after review.",
            f.package
        )
    } else {
        format!(
            "Upgrade {} to a fixed version ({}) and refresh the lockfile.",
            f.package,
            f.fixed_versions.join(" or ")
        )
    };
    Rule {
        id: f.advisory_id.clone(),
        title: f.summary.clone(),
        description,
        help,
        severity: f.effective_severity(),
        url: f.url.clone(),
    }
}
