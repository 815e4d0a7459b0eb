//! prodready-scan end to end: the labelled corpus, tree walks, git history, baselines and reports.

#![allow(clippy::print_stderr, unreachable_pub)]

mod corpus;
mod deps;
mod git;
mod report;
mod rules;
mod sarif;
mod walk;

use std::path::Path;

/// Writes `files` (relative path, text) under `dir`.
pub fn write_tree(dir: &Path, files: &[(&str, &str)]) {
    for (path, text) in files {
        let path = dir.join(path);
        std::fs::create_dir_all(path.parent().expect("a parent")).expect("mkdir");
        std::fs::write(path, text).expect("write");
    }
}
