//! Rule generation and linting against the real promtool and amtool.

mod alertmanager;
mod e2e;
mod exposition;
mod lint;
mod pack;
mod slo;

use std::path::{Path, PathBuf};

/// Writes `text` to `dir/name` and returns the path.
pub fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

pub fn promtool() -> PathBuf {
    prodready_test_support::peer_bin("promtool")
}
