//! A node-exporter textfile: the registry in the classic text format, replaced atomically so the
//! collector never reads half a file.

use std::path::Path;

use prometheus_client::registry::Registry;

use crate::{Error, Result, exposition};

/// Writes `registry` to `path` in the classic text format (what node-exporter's textfile collector
/// parses), through a synced temporary file and a rename.
pub fn write(path: &Path, registry: &Registry) -> Result<()> {
    let text = exposition::encode_text(registry);
    prodready_stdx::fs::write_atomic(path, text.as_bytes())
        .map_err(|source| Error::Textfile { path: path.to_path_buf(), source })
}
