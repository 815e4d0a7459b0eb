//! `prodready scan deps`: locked dependency versions against advisories read offline.

use std::io::Write as _;

use prodready_scan::deps::{self, Database, Lockfile, ScanOptions, Severity};

use super::{emit, usage};
use crate::cli::{ScanDepsArgs, ScanSeverity};
use crate::error::UsageError;
use crate::exit::Exit;

pub(super) fn run(args: &ScanDepsArgs) -> anyhow::Result<Exit> {
    let db = Database::load_all(&args.db).map_err(usage)?;
    let stats = db.stats();
    let mut err = std::io::stderr();
    let _ = writeln!(
        err,
        "read {} advisories ({} withdrawn) from {}",
        stats.advisories,
        stats.withdrawn,
        args.db.iter().map(|d| d.display().to_string()).collect::<Vec<_>>().join(", ")
    );
    let found = deps::lockfile::find(&args.paths).map_err(usage)?;
    if found.is_empty() {
        let paths: Vec<String> = args.paths.iter().map(|p| p.display().to_string()).collect();
        return Err(UsageError(format!(
            "no lockfile found under {} (Cargo.lock, package-lock.json, npm-shrinkwrap.json, yarn.lock, \
             pnpm-lock.yaml, gradle.lockfile, pom.xml, maven-dependencies.txt, *.cdx.json, bom.json): \
             name the files as PATH arguments",
            paths.join(", ")
        ))
        .into());
    }
    let lockfiles = found.iter().map(Lockfile::read_found).collect::<Result<Vec<_>, _>>().map_err(usage)?;
    let options = ScanOptions { ignore: args.ignore.iter().cloned().collect() };
    let findings = deps::scan(&db, &lockfiles, &options);
    let min = args.min_severity.map(|s| match s {
        ScanSeverity::Low => Severity::Low,
        ScanSeverity::Medium => Severity::Medium,
        ScanSeverity::High => Severity::High,
        ScanSeverity::Critical => Severity::Critical,
    });
    let report = deps::report(&findings, &lockfiles, &db, min);
    emit(&report, &args.report)?;
    let failing = findings.iter().filter(|f| f.fails_at(min)).count();
    let informational = findings.iter().filter(|f| f.informational.is_some()).count();
    let threshold = min.map_or_else(String::new, |m| format!(" at or above {m}"));
    let _ = writeln!(
        err,
        "{} lockfile(s), {} packages: {failing} vulnerable{threshold}, {} below the threshold, {informational} \
         informational",
        lockfiles.len(),
        lockfiles.iter().map(|l| l.packages.len()).sum::<usize>(),
        findings.len() - failing - informational,
    );
    Ok(if failing > 0 { Exit::Failure } else { Exit::Success })
}
