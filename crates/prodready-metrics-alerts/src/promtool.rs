//! Running promtool on rule files and unit tests.

use std::path::Path;
use std::process::Command;

use crate::{Error, Result};

/// What promtool said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub ok: bool,
    /// stdout and stderr, trimmed.
    pub output: String,
}

fn run(promtool: &Path, args: &[&str], files: &[&Path]) -> Result<Outcome> {
    let out = Command::new(promtool).args(args).args(files).output().map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Error::PromtoolMissing,
        _ => Error::Io { path: promtool.to_path_buf(), source: e },
    })?;
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    Ok(Outcome { ok: out.status.success(), output: text.trim().to_owned() })
}

/// `promtool check rules --lint=all --lint-fatal FILES`.
pub fn check_rules(promtool: &Path, files: &[&Path]) -> Result<Outcome> {
    run(promtool, &["check", "rules", "--lint=all", "--lint-fatal"], files)
}

/// `promtool test rules FILES`.
pub fn test_rules(promtool: &Path, files: &[&Path]) -> Result<Outcome> {
    run(promtool, &["test", "rules"], files)
}
