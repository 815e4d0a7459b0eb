//! The tree scan: a parallel walk (the `ignore` crate: .gitignore, .ignore and .git/info/exclude
//! honoured, hidden files included, `.git` skipped), binary and huge files skipped and counted.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use ignore::{WalkBuilder, WalkState};

use super::{Options, Progress, Ruleset, engine, finish, is_binary, root_label};
use crate::report::{Finding, Report, Stats};
use crate::{Error, Result};

#[derive(Default)]
struct Tally {
    findings: Vec<Finding>,
    allowed: u64,
    files: u64,
    bytes: u64,
    skipped_binary: u64,
    skipped_large: u64,
    skipped_path: u64,
    unreadable: u64,
}

impl Tally {
    fn add(&mut self, other: Tally) {
        self.findings.extend(other.findings);
        self.allowed += other.allowed;
        self.files += other.files;
        self.bytes += other.bytes;
        self.skipped_binary += other.skipped_binary;
        self.skipped_large += other.skipped_large;
        self.skipped_path += other.skipped_path;
        self.unreadable += other.unreadable;
    }
}

/// A worker's tally, handed to the shared one when the worker is done.
struct Local<'a> {
    tally: Tally,
    shared: &'a Mutex<Tally>,
}

impl Drop for Local<'_> {
    fn drop(&mut self) {
        let mut shared = self.shared.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        shared.add(std::mem::take(&mut self.tally));
    }
}

/// Scans every file under `paths` (files or directories). Each finding's path is relative to the
/// PATH it was found under; with several PATHs it also carries that PATH as the `root` property.
pub fn scan_paths(
    rules: &Ruleset,
    paths: &[PathBuf],
    options: &Options,
    progress: &dyn Progress,
) -> Result<Report> {
    let mut total = Tally::default();
    for path in paths {
        std::fs::metadata(path).map_err(|source| Error::Read { path: path.clone(), source })?;
        let mut tally = scan_root(rules, path, options, progress);
        if paths.len() > 1 {
            let root = root_label(path);
            for f in &mut tally.findings {
                f.properties.insert("root".into(), root.clone());
            }
        }
        total.add(tally);
    }
    let stats: Stats = [
        ("files", total.files),
        ("bytes", total.bytes),
        ("skipped_binary", total.skipped_binary),
        ("skipped_large", total.skipped_large),
        ("skipped_path", total.skipped_path),
        ("unreadable", total.unreadable),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    Ok(finish(rules, options, total.findings, total.allowed, stats))
}

fn scan_root(rules: &Ruleset, root: &Path, options: &Options, progress: &dyn Progress) -> Tally {
    let shared = Mutex::new(Tally::default());
    let threads = if options.threads == 0 {
        std::thread::available_parallelism().map_or(1, std::num::NonZero::get)
    } else {
        options.threads
    };
    let walker = WalkBuilder::new(root)
        .hidden(false)
        .parents(true)
        .ignore(true)
        .git_ignore(true)
        .git_exclude(true)
        .git_global(false)
        .require_git(false)
        .follow_links(false)
        .threads(threads)
        .filter_entry(|e| e.file_name() != ".git")
        .build_parallel();
    walker.run(|| {
        let mut local = Local { tally: Tally::default(), shared: &shared };
        Box::new(move |entry| {
            let Ok(entry) = entry else {
                local.tally.unreadable += 1;
                return WalkState::Continue;
            };
            if !entry.file_type().is_some_and(|t| t.is_file()) {
                return WalkState::Continue;
            }
            let rel = relative(root, entry.path());
            if rules.path_allowed(&rel) {
                local.tally.skipped_path += 1;
                return WalkState::Continue;
            }
            let size = entry.metadata().map(|m| m.len()).unwrap_or(0);
            if size > options.max_file_size {
                local.tally.skipped_large += 1;
                progress.scanned(size);
                return WalkState::Continue;
            }
            let Ok(bytes) = std::fs::read(entry.path()) else {
                local.tally.unreadable += 1;
                return WalkState::Continue;
            };
            progress.scanned(bytes.len() as u64);
            if is_binary(&bytes) {
                local.tally.skipped_binary += 1;
                return WalkState::Continue;
            }
            local.tally.files += 1;
            local.tally.bytes += bytes.len() as u64;
            let hits = engine::scan(rules, &bytes);
            if !hits.is_empty() {
                let (found, allowed) = engine::findings(rules, &rel, &bytes, &hits, None, None);
                local.tally.findings.extend(found);
                local.tally.allowed += allowed;
            }
            WalkState::Continue
        })
    });
    shared.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// `path` relative to `root`, `/`-separated; a root that is the file itself gives the file's name.
fn relative(root: &Path, path: &Path) -> String {
    let rel = match path.strip_prefix(root) {
        Ok(rel) if !rel.as_os_str().is_empty() => rel,
        _ => path.file_name().map_or(path, Path::new),
    };
    let mut out = String::new();
    for part in rel.components() {
        if let std::path::Component::Normal(p) = part {
            if !out.is_empty() {
                out.push('/');
            }
            out.push_str(&p.to_string_lossy());
        }
    }
    out
}
