//! The positions file: per file (by fingerprint), the offset Loki acknowledged and how far the batch in
//! flight reaches. Replaced atomically on every commit.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// Per file: acknowledged offset, and how far the batch in flight reached.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Position {
    pub(super) path: PathBuf,
    /// Everything before this offset was acknowledged by Loki.
    pub(super) offset: u64,
    /// Everything before this offset was sent (maybe not acknowledged).
    pub(super) sent: u64,
    /// Unix time the file was last seen, to forget files gone for a week.
    pub(super) seen: u64,
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub(super) struct Positions {
    pub(super) version: u32,
    pub(super) files: BTreeMap<String, Position>,
}

/// The positions file format this version writes and reads.
pub(super) const VERSION: u32 = 1;

impl Positions {
    pub(super) fn load(path: &Path) -> Result<Self> {
        match std::fs::read(path) {
            Ok(bytes) => Self::parse(path, &bytes),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Ok(Self { version: VERSION, files: BTreeMap::new() })
            }
            Err(e) => Err(Error::io(path, e)),
        }
    }

    /// The positions in `bytes`, read from `path` (named in errors).
    pub(super) fn parse(path: &Path, bytes: &[u8]) -> Result<Self> {
        let positions: Self = serde_json::from_slice(bytes).map_err(|e| {
            Error::Invalid(format!(
                "{}: not a positions file ({e}); move it away to start over (lines will be sent again)",
                path.display()
            ))
        })?;
        // A newer format may mean offsets this version would misread: never guess, never overwrite.
        if positions.version != VERSION {
            return Err(Error::Invalid(format!(
                "{}: key `version`: positions file version {} is not supported (this version reads {VERSION}); \
                 run the version that wrote it, or move the file away to start over (lines will be sent again)",
                path.display(),
                positions.version
            )));
        }
        Ok(positions)
    }

    /// Replaces the file atomically; `durable` also fsyncs it and its directory (commits of acknowledged
    /// offsets).
    pub(super) fn save(&self, path: &Path, durable: bool) -> Result<()> {
        let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let mut bytes = serde_json::to_vec(self).map_err(|e| Error::io(path, e.into()))?;
        bytes.push(b'\n');
        prodready_stdx::fs::AtomicWrite::new()
            .sync(durable)
            .write(path, &bytes)
            .map_err(|e| Error::io(path, e))
    }
}
