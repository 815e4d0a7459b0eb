//! Physical base backups: `pg_basebackup -D - -F tar -X none` driven as a tool, its tar stream read from
//! the pipe as it comes (nothing is copied to local disk first), noted on the way (`backup_label`, the
//! injected `backup_manifest`: start and stop LSN, timeline), compressed with zstd, optionally encrypted
//! with age, hashed with SHA-256 into one object of the store, and committed by `manifest.json` last.
//!
//! The WAL between the start and stop points is not in the backup (`-X none`): it comes from the WAL
//! archive, which is why a base backup is refused when the server does not archive WAL.

use std::io::{Read as _, Write as _};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use serde::{Deserialize, Serialize};

use crate::backup::{BASE_LOCK_KEY, Progress};
use crate::manifest::{Compression, Encryption, Object};
use crate::pg;
use crate::store::{MANIFEST, ObjectWriter, Store};
use crate::tar::Tap;
pub use crate::wal::Lsn;
use crate::{Error, Result};

/// The manifest's `kind` for a base backup (a logical backup's manifest has none).
pub const KIND: &str = "base";
/// The object holding the compressed tar stream of the data directory.
pub const ARCHIVE: &str = "base.tar.zst";

/// How to take a base backup.
#[derive(Debug, Clone)]
pub struct BaseOptions {
    /// A connection to the server (any database; the role needs the REPLICATION attribute).
    pub database_url: String,
    /// zstd level, 1-19.
    pub zstd_level: i32,
    /// age X25519 recipients (`age1...`) the archive is encrypted to; empty means no encryption.
    pub encrypt_to: Vec<String>,
    /// Ask for an immediate checkpoint (`fast`) instead of a spread one.
    pub fast_checkpoint: bool,
    /// The `pg_basebackup` program.
    pub pg_basebackup: PathBuf,
    /// Whether the WAL the backup needs (from its start to its stop point) must be in the same store's
    /// WAL archive before the backup is kept (default `true`). Turn it off only when the server archives
    /// its WAL somewhere else that recovery reads from.
    pub check_archive: bool,
}

impl BaseOptions {
    pub fn new(database_url: impl Into<String>) -> Self {
        Self {
            database_url: database_url.into(),
            zstd_level: crate::DEFAULT_ZSTD_LEVEL,
            encrypt_to: Vec::new(),
            fast_checkpoint: true,
            pg_basebackup: PathBuf::from("pg_basebackup"),
            check_archive: true,
        }
    }
}

/// The manifest of a base backup (`"kind": "base"`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BaseManifest {
    pub format: u32,
    /// Always [`KIND`].
    pub kind: String,
    pub id: String,
    /// The label given to the server (it is in `backup_label`).
    pub label: String,
    /// RFC 3339, UTC, microseconds: when the backup was asked for.
    pub created_at: String,
    /// RFC 3339, UTC, microseconds: when the server had ended the backup (the stop point is at or before
    /// it). A recovery target time must not be earlier.
    pub finished_at: String,
    pub duration_ms: u64,
    /// Where WAL replay starts (`START WAL LOCATION`).
    pub start_lsn: String,
    /// The checkpoint the backup starts from.
    pub checkpoint_lsn: String,
    /// The backup is consistent once WAL is replayed to here.
    pub stop_lsn: String,
    /// The timeline of the start point.
    pub start_timeline: u32,
    /// The timeline of the stop point.
    pub timeline: u32,
    /// The name of the WAL segment holding the start point.
    pub start_wal_file: String,
    pub server_version: String,
    pub server_version_num: i32,
    /// `pg_control_system().system_identifier`: which cluster this is a backup of.
    pub system_identifier: String,
    pub tool_version: String,
    pub pg_basebackup_version: String,
    pub compression: Compression,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption: Option<Encryption>,
    /// The stored objects (one: [`ARCHIVE`]), with sizes and SHA-256.
    pub objects: Vec<Object>,
    /// Bytes of the uncompressed tar stream.
    pub tar_bytes: u64,
    /// Files in the data directory.
    pub files: u64,
    /// `backup_label` as the server wrote it.
    pub backup_label: String,
}

impl BaseManifest {
    pub fn size_bytes(&self) -> u64 {
        self.objects.iter().map(|o| o.size).sum()
    }

    /// The PostgreSQL major version (15 for 150004).
    pub fn major_version(&self) -> i32 {
        self.server_version_num / 10_000
    }
}

/// Takes a base backup of the server `options.database_url` points at.
pub async fn base_backup(
    store: &Store,
    options: &BaseOptions,
    progress: Arc<dyn Progress>,
) -> Result<BaseManifest> {
    let created = SystemTime::now();
    let id = crate::backup::new_id(created);
    let result = take(store, options, progress, created, &id).await;
    // Nothing of a failed base backup stays (what a crash leaves is a leftover for prune).
    if result.is_err() {
        crate::backup::discard_uncommitted(store, &id);
    }
    result
}

async fn take(
    store: &Store,
    options: &BaseOptions,
    progress: Arc<dyn Progress>,
    created: SystemTime,
    id: &str,
) -> Result<BaseManifest> {
    let started = Instant::now();
    let (client, driver) = pg::connect(&options.database_url).await?;
    let row = client
        .query_one(
            "SELECT pg_catalog.current_setting('server_version'),
                    pg_catalog.current_setting('server_version_num')::int4,
                    (SELECT system_identifier FROM pg_catalog.pg_control_system())::text,
                    pg_catalog.current_setting('archive_mode'),
                    (SELECT count(*) FROM pg_catalog.pg_tablespace
                     WHERE spcname NOT IN ('pg_default', 'pg_global'))::int8,
                    (SELECT coalesce(sum(pg_catalog.pg_database_size(oid)), 0) FROM pg_catalog.pg_database)::int8",
            &[],
        )
        .await
        .map_err(Error::db)?;
    // Held (shared: base backups may overlap) until the manifest is written, so a prune that asks
    // `backup_running` leaves this backup's long upload alone.
    client.query_one("SELECT pg_advisory_lock_shared($1)", &[&BASE_LOCK_KEY]).await.map_err(Error::db)?;
    let (server_version, server_version_num, system_identifier): (String, i32, String) =
        (row.get(0), row.get(1), row.get(2));
    let archive_mode: String = row.get(3);
    let tablespaces: i64 = row.get(4);
    let estimate: i64 = row.get(5);
    if archive_mode == "off" {
        return Err(Error::Invalid(
            "the server does not archive WAL (archive_mode = off): a base backup cannot be recovered without \
             the WAL archive; set archive_mode = on and archive_command first"
                .to_owned(),
        ));
    }
    if tablespaces > 0 {
        return Err(Error::Invalid(format!(
            "the server has {tablespaces} tablespace(s) besides pg_default and pg_global: base backups \
             stream the main data directory only"
        )));
    }
    let recipients = Arc::new(crate::crypto::recipients(&options.encrypt_to)?);
    let pg_basebackup_version = crate::tools::version("pg_basebackup", &options.pg_basebackup).await?;
    progress.planned(1, u64::try_from(estimate).unwrap_or(0));

    let label = format!("prodready {id}");
    let args = vec![
        "--pgdata=-".to_owned(),
        "--format=tar".to_owned(),
        "--wal-method=none".to_owned(),
        format!("--label={label}"),
        format!("--checkpoint={}", if options.fast_checkpoint { "fast" } else { "spread" }),
        // Never prompt: stdin is not a terminal; a password comes from the URL or the password file.
        "--no-password".to_owned(),
    ];
    // pg_basebackup takes the server from the environment (nothing secret on argv); the database name is
    // ignored for a replication connection.
    let env = pg::libpq_env(&options.database_url)?;
    let mut child = std::process::Command::new(&options.pg_basebackup);
    child
        .args(&args)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());

    let (store2, id2, recipients2, progress2) =
        (store.clone(), id.to_owned(), recipients.clone(), progress.clone());
    let level = options.zstd_level;
    let streamed = tokio::task::spawn_blocking(move || -> Result<(ObjectWriter, Tap, u64)> {
        let mut child = child.spawn().map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => Error::ToolMissing {
                tool: "pg_basebackup",
                hint: "install the PostgreSQL client (Debian: `apt-get install postgresql-client-15`, matching \
                       the server's major version) or set its path in BaseOptions",
            },
            _ => Error::Tool { tool: "pg_basebackup", message: e.to_string() },
        })?;
        let mut stderr = child.stderr.take().expect("stderr is piped");
        let stderr_reader = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text);
            text
        });
        let mut stdout = child.stdout.take().expect("stdout is piped");
        let outcome = (|| -> Result<(ObjectWriter, Tap, u64)> {
            let sink = crate::crypto::Sink::new(store2.create(&id2, ARCHIVE)?, &recipients2)?;
            let mut encoder = zstd::Encoder::new(sink, level).map_err(|e| Error::io(ARCHIVE, e))?;
            let mut tap = Tap::new(&["backup_label", "backup_manifest"], 256 << 20);
            let mut buf = vec![0u8; 1 << 20];
            let mut total = 0u64;
            loop {
                let n = match stdout.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(Error::io("pg_basebackup output", e)),
                };
                tap.feed(&buf[..n]).map_err(|e| Error::Tool {
                    tool: "pg_basebackup",
                    message: format!("its tar stream is unreadable: {e}"),
                })?;
                encoder.write_all(&buf[..n]).map_err(|e| Error::io(ARCHIVE, e))?;
                total += n as u64;
                progress2.bytes(n as u64);
            }
            if !tap.done() {
                return Err(Error::Tool {
                    tool: "pg_basebackup",
                    message: "its tar stream ended before the end-of-archive marker".to_owned(),
                });
            }
            let sink = encoder.finish().map_err(|e| Error::io(ARCHIVE, e))?;
            // Completing the upload (or the fsync) waits until pg_basebackup has succeeded: see below.
            Ok((sink.finish()?, tap, total))
        })();
        drop(stdout);
        let status = match &outcome {
            Ok(_) => child.wait(),
            Err(_) => {
                let _ = child.kill();
                child.wait()
            }
        };
        let stderr = stderr_reader.join().unwrap_or_default();
        let status = status.map_err(|e| Error::Tool { tool: "pg_basebackup", message: e.to_string() })?;
        if !status.success() {
            let message =
                stderr.lines().filter(|l| !l.trim().is_empty()).take(5).collect::<Vec<_>>().join("; ");
            return Err(Error::Tool { tool: "pg_basebackup", message: format!("{} ({status})", message.trim()) });
        }
        outcome
    })
    .await
    .expect("the base backup stream does not panic");
    let (writer, tap, tar_bytes) = streamed?;
    // pg_basebackup exited 0: the server ended the backup. An upload dropped before this is aborted.
    let object = writer.finish()?;
    let finished = SystemTime::now();
    progress.done(ARCHIVE);

    let tool_error = |message: String| Error::Tool { tool: "pg_basebackup", message };
    let find = |name: &str| tap.found.iter().find(|(n, _)| n == name).map(|(_, data)| data.clone());
    let label_text = String::from_utf8(
        find("backup_label").ok_or_else(|| tool_error("the archive holds no backup_label".to_owned()))?,
    )
    .map_err(|_| tool_error("backup_label is not UTF-8".to_owned()))?;
    let parsed = Label::parse(&label_text).map_err(tool_error)?;
    let manifest_json = find("backup_manifest").ok_or_else(|| {
        tool_error("the archive holds no backup_manifest (pg_basebackup 13 or newer needed)".to_owned())
    })?;
    let (timeline, stop_lsn) = wal_range_end(&manifest_json).map_err(tool_error)?;
    if options.check_archive {
        // pg_basebackup returned once the server had archived the stop segment: somewhere. A base backup
        // whose WAL is not in this store cannot be recovered from it, and would count as one for retention.
        let end = stop_lsn.parse::<Lsn>().map_err(|e| tool_error(e.to_string()))?;
        let missing = crate::wal::WalArchive::new(store.clone()).missing_segments(
            &parsed.start_wal_file,
            parsed.start_timeline,
            timeline,
            end,
        )?;
        if let (Some(first), Some(last)) = (missing.first(), missing.last()) {
            return Err(Error::Store {
                path: store.location(),
                source: format!(
                    "the WAL this base backup needs is not archived here ({} segment(s) missing, {first}..{last}): \
                     the server's archive_command must push to this store; the backup is not kept",
                    missing.len()
                )
                .into(),
            });
        }
    }

    let manifest = BaseManifest {
        format: crate::manifest::FORMAT,
        kind: KIND.to_owned(),
        id: id.to_owned(),
        label,
        created_at: humantime::format_rfc3339_micros(created).to_string(),
        finished_at: humantime::format_rfc3339_micros(finished).to_string(),
        duration_ms: crate::ms(started.elapsed()),
        start_lsn: parsed.start_lsn,
        checkpoint_lsn: parsed.checkpoint_lsn,
        stop_lsn,
        start_timeline: parsed.start_timeline,
        timeline,
        start_wal_file: parsed.start_wal_file,
        server_version,
        server_version_num,
        system_identifier,
        tool_version: concat!("prodready ", env!("CARGO_PKG_VERSION")).to_owned(),
        pg_basebackup_version,
        compression: Compression { algorithm: "zstd".to_owned(), level: options.zstd_level },
        encryption: (!options.encrypt_to.is_empty()).then(|| Encryption {
            algorithm: "age-x25519".to_owned(),
            recipients: options.encrypt_to.iter().map(|r| r.trim().to_owned()).collect(),
        }),
        objects: vec![object],
        tar_bytes,
        files: tap.names.len() as u64,
        backup_label: label_text,
    };
    let bytes = serde_json::to_vec_pretty(&manifest).expect("a manifest serializes");
    store.write_atomic(id, MANIFEST, &bytes)?;
    drop(client);
    let _ = driver.await;
    Ok(manifest)
}

/// What `backup_label` says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Label {
    pub(crate) start_lsn: String,
    pub(crate) start_wal_file: String,
    pub(crate) checkpoint_lsn: String,
    pub(crate) start_timeline: u32,
}

impl Label {
    /// `START WAL LOCATION: 0/2000028 (file 000000010000000000000002)`, `CHECKPOINT LOCATION: 0/2000060`,
    /// `START TIMELINE: 1`.
    pub(crate) fn parse(text: &str) -> std::result::Result<Self, String> {
        let field = |key: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(key).map(str::trim))
                .ok_or_else(|| format!("backup_label has no `{key}` line"))
        };
        let start = field("START WAL LOCATION:")?;
        let (start_lsn, file) = start.split_once(' ').unwrap_or((start, ""));
        let start_wal_file = file.trim().trim_start_matches("(file ").trim_end_matches(')').to_owned();
        let start_lsn = start_lsn.parse::<Lsn>().map_err(|e| format!("backup_label: {e}"))?.to_string();
        let checkpoint_lsn = field("CHECKPOINT LOCATION:")?
            .parse::<Lsn>()
            .map_err(|e| format!("backup_label: {e}"))?
            .to_string();
        let start_timeline = match field("START TIMELINE:") {
            Ok(t) => t.parse().map_err(|_| format!("backup_label: `START TIMELINE: {t}` is not a number"))?,
            // Older servers leave it out; the segment name carries it.
            Err(_) => u32::from_str_radix(start_wal_file.get(..8).unwrap_or(""), 16)
                .map_err(|_| "backup_label names no timeline".to_owned())?,
        };
        Ok(Self { start_lsn, start_wal_file, checkpoint_lsn, start_timeline })
    }
}

/// The timeline and LSN the backup ends at: the last of `backup_manifest`'s `WAL-Ranges`.
fn wal_range_end(json: &[u8]) -> std::result::Result<(u32, String), String> {
    let value: serde_json::Value =
        serde_json::from_slice(json).map_err(|e| format!("backup_manifest is not JSON: {e}"))?;
    let last = value
        .get("WAL-Ranges")
        .and_then(|r| r.as_array())
        .and_then(|r| r.last())
        .ok_or_else(|| "backup_manifest has no WAL-Ranges".to_owned())?;
    let timeline = last
        .get("Timeline")
        .and_then(serde_json::Value::as_u64)
        .and_then(|t| u32::try_from(t).ok())
        .ok_or_else(|| "backup_manifest: a WAL range has no timeline".to_owned())?;
    let end = last
        .get("End-LSN")
        .and_then(|e| e.as_str())
        .ok_or_else(|| "backup_manifest: a WAL range has no End-LSN".to_owned())?;
    Ok((timeline, end.parse::<Lsn>().map_err(|e| format!("backup_manifest: {e}"))?.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_label_and_the_manifest_give_start_and_stop() {
        let label = "START WAL LOCATION: 0/2000028 (file 000000010000000000000002)\nCHECKPOINT LOCATION: 0/2000060\n\
                     BACKUP METHOD: streamed\nBACKUP FROM: primary\nSTART TIME: 2026-12-06 10:00:00 UTC\n\
                     LABEL: prodready x\nSTART TIMELINE: 1\n";
        let parsed = Label::parse(label).unwrap();
        assert_eq!(parsed.start_lsn, "0/2000028");
        assert_eq!(parsed.checkpoint_lsn, "0/2000060");
        assert_eq!(parsed.start_timeline, 1);
        assert_eq!(parsed.start_wal_file, "000000010000000000000002");
        let manifest = br#"{"PostgreSQL-Backup-Manifest-Version": 1, "Files": [],
            "WAL-Ranges": [{ "Timeline": 2, "Start-LSN": "0/2000028", "End-LSN": "0/2000138" }]}"#;
        assert_eq!(wal_range_end(manifest).unwrap(), (2, "0/2000138".to_owned()));
        assert!(Label::parse("LABEL: x\n").unwrap_err().contains("START WAL LOCATION"));
    }
}
