//! `manifest.json`: what a backup holds. Written last; its presence is what makes a backup exist.

use serde::{Deserialize, Serialize};

/// Version of the manifest format.
pub const FORMAT: u32 = 1;

/// The manifest of one backup.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: u32,
    pub id: String,
    /// The database name.
    pub database: String,
    /// RFC 3339, UTC: when the snapshot was taken.
    pub created_at: String,
    pub duration_ms: u64,
    /// `server_version` of the source.
    pub server_version: String,
    /// The encoding the table data is stored in when it is not UTF-8: a SQL_ASCII database's bytes are
    /// kept as they are (`SQL_ASCII`), since they need not be UTF-8 and the server cannot convert them.
    /// Restores load them in that client encoding, and a verification's scratch database takes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_encoding: Option<String>,
    /// prodready's version.
    pub tool_version: String,
    /// `pg_dump --version` of the dumper used for the schema.
    pub pg_dump_version: String,
    /// The exported snapshot every connection shared.
    pub snapshot: String,
    pub compression: Compression,
    /// age recipients the objects are encrypted to; `None` when they are not encrypted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption: Option<Encryption>,
    /// Every stored object except the manifest, with its size and SHA-256.
    pub objects: Vec<Object>,
    /// The schema archive (`pg_dump -Fc`, pre-data and post-data).
    pub schema: String,
    pub tables: Vec<Table>,
    pub sequences: Vec<Sequence>,
    /// Number of large objects and the object holding their contents.
    pub large_objects: LargeObjects,
}

impl Manifest {
    /// Total stored bytes.
    pub fn size_bytes(&self) -> u64 {
        self.objects.iter().map(|o| o.size).sum()
    }

    pub fn object(&self, name: &str) -> Option<&Object> {
        self.objects.iter().find(|o| o.name == name)
    }

    pub fn rows(&self) -> u64 {
        self.tables.iter().map(|t| t.rows).sum()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Encryption {
    pub algorithm: String,
    pub recipients: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Compression {
    pub algorithm: String,
    pub level: i32,
}

/// One stored object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Object {
    pub name: String,
    pub size: u64,
    pub sha256: String,
}

/// One table's data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Table {
    pub schema: String,
    pub name: String,
    /// Columns copied (generated and dropped columns excluded), in order.
    pub columns: Vec<String>,
    /// Rows counted inside the backup snapshot.
    pub rows: u64,
    /// Objects holding the table's COPY text, zstd-compressed; more than one when split by ctid range.
    pub parts: Vec<String>,
    /// For an extension's configuration table: the filter (`WHERE ...`) of the rows in the backup; the
    /// extension's own rows are created by `CREATE EXTENSION` on restore.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<String>,
}

impl Table {
    pub fn qualified(&self) -> String {
        format!("{}.{}", crate::pg::ident(&self.schema), crate::pg::ident(&self.name))
    }
}

/// A sequence's state inside the snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sequence {
    pub schema: String,
    pub name: String,
    pub last_value: i64,
    pub is_called: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LargeObjects {
    pub count: u64,
    /// COPY text of `(oid, data)` rows; `None` when there are none.
    pub object: Option<String>,
}

/// The result of a verification, stored beside the backup as `verify-<time>.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verification {
    pub id: String,
    /// RFC 3339, UTC.
    pub verified_at: String,
    /// `quick` (hashes only) or `restore`.
    pub mode: String,
    pub ok: bool,
    pub duration_ms: u64,
    /// Everything that did not hold, one line each.
    pub problems: Vec<String>,
    /// What was checked, one line each.
    pub checked: Vec<String>,
}
