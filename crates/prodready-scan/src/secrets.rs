//! Secrets in files and in git history: rules, keyword prefilter, entropy, allowlists, baseline.
//!
//! ```no_run
//! use prodready_scan::secrets::{self, Options, Ruleset};
//! let rules = Ruleset::builtin();
//! let report = secrets::scan_paths(&rules, &[".".into()], &Options::default(), &secrets::NoProgress)?;
//! println!("{}", report.text());
//! # Ok::<(), prodready_scan::Error>(())
//! ```
//!
//! A finding's `path` is relative to the PATH it was found under (`src/app.py` when scanning `.`); a
//! PATH that is a file gives its own name. Its fingerprint hashes the rule, the path and the secret, so
//! it survives the line moving; a [`Baseline`] of fingerprints turns findings into accepted ones.

mod baseline;
mod engine;
mod git;
mod rules;
mod walk;

pub use baseline::Baseline;
pub use engine::redact;
pub use git::scan_git;
pub use rules::{AllowSpec, BUILTIN, DEFAULT_HELP, RuleSpec, RulesFile, Ruleset, RulesetBuilder, entropy};
pub use walk::scan_paths;

use crate::report::{Finding, Report};

/// Files larger than this are skipped (and counted) unless the caller says otherwise.
pub const DEFAULT_MAX_FILE_SIZE: u64 = 10 * 1024 * 1024;

/// How a scan runs.
#[derive(Debug, Clone)]
pub struct Options {
    /// Files (and, in history scans, added text per file and commit) above this many bytes are skipped.
    pub max_file_size: u64,
    /// Walker threads; 0 picks the number of CPUs.
    pub threads: usize,
    /// Accepted findings.
    pub baseline: Baseline,
}

impl Default for Options {
    fn default() -> Self {
        Self { max_file_size: DEFAULT_MAX_FILE_SIZE, threads: 0, baseline: Baseline::default() }
    }
}

/// Hears about a scan's progress (a terminal bar); every method may be called from several threads.
pub trait Progress: Sync {
    /// A file (or a file's added lines in one commit) of `bytes` was scanned or skipped.
    fn scanned(&self, _bytes: u64) {}
    /// A commit's diff was read.
    fn commit(&self) {}
}

/// A [`Progress`] that ignores everything.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl Progress for NoProgress {}

/// Scans one buffer as if it were the file at `path`: the findings (baseline not applied) and how
/// many an inline `prodready:allow` silenced.
pub fn scan_bytes(rules: &Ruleset, path: &str, bytes: &[u8]) -> (Vec<Finding>, u64) {
    let hits = engine::scan(rules, bytes);
    engine::findings(rules, path, bytes, &hits, None, None)
}

/// Whether `bytes` look binary (a NUL in the first 8 KiB, as git decides).
pub fn is_binary(bytes: &[u8]) -> bool {
    memchr::memchr(0, &bytes[..bytes.len().min(8192)]).is_some()
}

/// Fills a report from findings: the baseline applied, rules listed, sorted.
fn finish(
    rules: &Ruleset,
    options: &Options,
    found: Vec<Finding>,
    allowed: u64,
    stats: crate::report::Stats,
) -> Report {
    let mut report = Report::new("secrets");
    for f in found {
        if options.baseline.contains(&f.fingerprint) {
            report.baselined += 1;
        } else {
            report.findings.push(f);
        }
    }
    report.allowed = allowed;
    report.stats = stats;
    report.rules = rules.rules().cloned().collect();
    report.sort();
    report
}

/// A PATH's findings are relative to it; with several PATHs each finding also names its root.
fn root_label(path: &std::path::Path) -> String {
    path.to_string_lossy().into_owned()
}
