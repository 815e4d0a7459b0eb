//! Proving a backup: `quick` re-hashes every stored object; the full form restores into a scratch
//! database, compares every table's row count with the manifest, runs amcheck on btree indexes and the
//! caller's smoke SQL, and drops the scratch database whatever happened.
//!
//! A scratch database is named `prodready_verify_*` and, while a verification uses it, a session
//! advisory lock keyed by its name is held. A verification that was killed leaves its scratch database
//! unlocked: [`drop_abandoned_scratch`] (run by every verification before it starts) drops those.

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use crate::backup::{NoProgress, Progress};
use crate::manifest::{Manifest, Verification};
use crate::pg::{self, ident};
use crate::restore::{RestoreOptions, restore};
use crate::store::{self, Store};
use crate::tools::Tools;
use crate::{Error, Result, catalog};

/// How to verify.
#[derive(Debug, Clone)]
pub struct VerifyOptions {
    /// A database on the server where the scratch database is created (and dropped); the role needs
    /// CREATEDB.
    pub scratch_url: String,
    /// Statements run against the restored database; each must succeed.
    pub smoke_sql: Vec<String>,
    pub jobs: usize,
    /// age identity files, for encrypted backups.
    pub identity_files: Vec<std::path::PathBuf>,
    pub tools: Tools,
}

/// Re-hashes every object of the backup and records the result.
pub async fn verify_quick(store: &Store, manifest: &Manifest) -> Result<Verification> {
    let started = Instant::now();
    let (problems, checked) = {
        let (store, manifest) = (store.clone(), manifest.clone());
        tokio::task::spawn_blocking(move || hash_all(&store, &manifest))
            .await
            .expect("hashing does not panic")
    };
    finish(store, &manifest.id, "quick", started, problems, checked)
}

fn hash_all(store: &Store, manifest: &Manifest) -> (Vec<String>, Vec<String>) {
    let mut problems = Vec::new();
    // Every object the manifest uses must be one it lists, with a size and a hash to check.
    let used = std::iter::once(("schema", &manifest.schema))
        .chain(manifest.tables.iter().flat_map(|t| t.parts.iter().map(|p| ("table part", p))))
        .chain(manifest.large_objects.object.iter().map(|o| ("large objects", o)));
    for (role, name) in used {
        if manifest.object(name).is_none() {
            problems.push(format!(
                "{name}: the manifest uses it as {role} but does not list it among the objects"
            ));
        }
    }
    for object in &manifest.objects {
        let hashed = store.open_object(&manifest.id, &object.name).and_then(|r| {
            store::hash(r).map_err(|e| Error::Store { path: object.name.clone(), source: Box::new(e) })
        });
        match hashed {
            Err(e) => problems.push(format!("{}: cannot read: {e}", object.name)),
            Ok((_, size)) if size != object.size => {
                problems
                    .push(format!("{}: {size} bytes stored, {} in the manifest", object.name, object.size));
            }
            Ok((sha, _)) if sha != object.sha256 => {
                problems.push(format!("{}: SHA-256 {sha}, {} in the manifest", object.name, object.sha256));
            }
            Ok(_) => {}
        }
    }
    let checked =
        vec![format!("{} objects, {} bytes, SHA-256 of each", manifest.objects.len(), manifest.size_bytes())];
    (problems, checked)
}

/// Restores into a scratch database and checks it; records the result beside the backup.
pub async fn verify(store: &Store, manifest: &Manifest, options: &VerifyOptions) -> Result<Verification> {
    let started = Instant::now();
    let (mut problems, mut checked) = {
        let (store, manifest) = (store.clone(), manifest.clone());
        tokio::task::spawn_blocking(move || hash_all(&store, &manifest))
            .await
            .expect("hashing does not panic")
    };
    if !problems.is_empty() {
        return finish(store, &manifest.id, "restore", started, problems, checked);
    }
    if manifest.encryption.is_some() && options.identity_files.is_empty() {
        return Err(Error::IdentityRequired(manifest.id.clone()));
    }
    let scratch = scratch_name(&manifest.id);
    let (admin, admin_driver) = pg::connect(&options.scratch_url).await?;
    let abandoned = drop_abandoned(&admin).await?;
    if !abandoned.is_empty() {
        checked.push(format!("dropped scratch databases abandoned by killed runs: {}", abandoned.join(", ")));
    }
    // Held until this session ends: the scratch database is in use.
    admin.execute(LOCK, &[&scratch]).await.map_err(Error::db)?;
    let encoding = scratch_encoding(&admin, manifest).await?;
    let create = match &encoding {
        // The C locale goes with every encoding; the server's default locale may not.
        Some(encoding) => {
            checked.push(format!("scratch database in the data's encoding {encoding} (locale C)"));
            format!(
                "CREATE DATABASE {} TEMPLATE template0 ENCODING {} LC_COLLATE 'C' LC_CTYPE 'C'",
                ident(&scratch),
                pg::literal(encoding)
            )
        }
        None => format!("CREATE DATABASE {} TEMPLATE template0", ident(&scratch)),
    };
    admin.batch_execute(&create).await.map_err(|e| {
        Error::Database(
            format!("cannot create the scratch database: {}", prodready_stdx::error::chain(&e)).into(),
        )
    })?;
    let outcome = check_in_scratch(store, manifest, options, &scratch, &mut checked).await;
    let dropped =
        admin.batch_execute(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", ident(&scratch))).await;
    drop(admin);
    let _ = admin_driver.await;
    match outcome {
        Ok(found) => problems.extend(found),
        Err(e) => problems.push(format!("restore failed: {e}")),
    }
    if let Err(e) = dropped {
        problems.push(format!(
            "could not drop the scratch database {scratch}: {}",
            prodready_stdx::error::chain(&e)
        ));
    } else {
        checked.push(format!("scratch database {scratch} dropped"));
    }
    if manifest.encryption.is_some() {
        // The record is stored in the clear beside an encrypted backup: PostgreSQL's DETAIL and CONTEXT
        // lines quote row values (`Key (email)=(...)`, a COPY line), which stay out of it.
        problems = problems.iter().map(|p| without_row_values(p)).collect();
    }
    finish(store, &manifest.id, "restore", started, problems, checked)
}

/// `text` without the lines PostgreSQL and its tools use to quote data (`DETAIL:`, `CONTEXT:`).
fn without_row_values(text: &str) -> String {
    text.lines()
        .filter(|l| {
            let l = l.trim_start().trim_start_matches("pg_restore: ").trim_start_matches("error: ");
            !(l.starts_with("DETAIL:") || l.starts_with("CONTEXT:"))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

const LOCK: &str = "SELECT pg_catalog.pg_advisory_lock(pg_catalog.hashtextextended($1, 0))";
/// Whether any session, connected to any database, holds the lock of scratch database `$1` (advisory
/// locks are per database, so `pg_try_advisory_lock` from another database would not see it): a 64-bit
/// key shows in `pg_locks` as `classid` (high half) and `objid` (low half) with `objsubid` 1.
const HELD: &str = "SELECT EXISTS (
     SELECT 1 FROM pg_catalog.pg_locks l,
          (SELECT pg_catalog.hashtextextended($1, 0) AS k) key
     WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
       AND l.classid::pg_catalog.int8 = (key.k >> 32) & 4294967295
       AND l.objid::pg_catalog.int8 = key.k & 4294967295)";

/// Drops the scratch databases (`prodready_verify_*`) on the server of `url` that no running verification
/// holds: those left by a verification that was killed or interrupted. Returns their names.
pub async fn drop_abandoned_scratch(url: &str) -> Result<Vec<String>> {
    let (client, driver) = pg::connect(url).await?;
    let dropped = drop_abandoned(&client).await;
    drop(client);
    let _ = driver.await;
    dropped
}

async fn drop_abandoned(client: &tokio_postgres::Client) -> Result<Vec<String>> {
    let names: Vec<String> = client
        .query("SELECT datname FROM pg_catalog.pg_database WHERE datname LIKE 'prodready\\_verify\\_%'", &[])
        .await
        .map_err(Error::db)?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut dropped = Vec::new();
    for name in names {
        let held: bool = client.query_one(HELD, &[&name]).await.map_err(Error::db)?.get(0);
        if held {
            continue;
        }
        // Its owner takes the lock before it creates the database, so an unlocked one is abandoned.
        let gone =
            client.batch_execute(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", ident(&name))).await;
        if gone.is_ok() {
            dropped.push(name);
        }
    }
    Ok(dropped)
}

/// After a verification of backup `id` by this process was stopped (its future dropped): drops its
/// scratch database once the verification's sessions have closed and released its lock, waiting up to
/// five seconds. Returns the scratch database's name and whether it is gone.
pub async fn drop_interrupted_scratch(url: &str, id: &str) -> Result<(String, bool)> {
    let scratch = scratch_name(id);
    let (client, driver) = pg::connect(url).await?;
    let mut gone = false;
    for attempt in 0..50 {
        if attempt > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        let dropped = drop_abandoned(&client).await?;
        let left: i64 = client
            .query_one("SELECT count(*) FROM pg_catalog.pg_database WHERE datname = $1", &[&scratch])
            .await
            .map_err(Error::db)?
            .get(0);
        if dropped.contains(&scratch) || left == 0 {
            gone = true;
            break;
        }
    }
    drop(client);
    let _ = driver.await;
    Ok((scratch, gone))
}

fn scratch_name(id: &str) -> String {
    let clean: String = id.chars().filter(char::is_ascii_alphanumeric).collect::<String>().to_lowercase();
    format!("prodready_verify_{clean}_{}", std::process::id())
}

async fn check_in_scratch(
    store: &Store,
    manifest: &Manifest,
    options: &VerifyOptions,
    scratch: &str,
    checked: &mut Vec<String>,
) -> Result<Vec<String>> {
    let url = pg::with_dbname(&options.scratch_url, scratch);
    let restore_options = RestoreOptions {
        target_url: url.clone(),
        jobs: options.jobs,
        force: false,
        identity_files: options.identity_files.clone(),
        tools: options.tools.clone(),
    };
    let progress: Arc<dyn Progress> = Arc::new(NoProgress);
    let report = restore(store, manifest, &restore_options, progress).await?;
    checked.push(format!(
        "restored {} tables, {} rows in {} ms",
        report.tables, report.rows, report.duration_ms
    ));

    let (client, driver) = pg::connect(&url).await?;
    let mut problems = count_rows(&client, manifest).await?;
    checked.push(format!("row counts of {} tables", manifest.tables.len()));

    amcheck(&client, "", &mut problems, checked).await?;
    for sql in &options.smoke_sql {
        match client.batch_execute(sql).await {
            Ok(()) => checked.push(format!("smoke SQL: {sql}")),
            Err(e) => problems.push(format!("smoke SQL `{sql}`: {}", prodready_stdx::error::chain(&e))),
        }
    }
    drop(client);
    let _ = driver.await;
    Ok(problems)
}

/// Compares every table's row count in the restored database with the manifest's, one line per
/// difference. The counts see every row: inside a transaction that is rolled back, tables this role owns
/// whose owner is subject to their own row-level security policies (`FORCE ROW LEVEL SECURITY`, as
/// multi-tenant schemas have it) stop forcing them, and `row_security = off` turns a table whose policies
/// still apply to this role into an error instead of a count that leaves rows out.
async fn count_rows(client: &tokio_postgres::Client, manifest: &Manifest) -> Result<Vec<String>> {
    const FORCED: &str = "SELECT format('%I.%I', n.nspname, c.relname) FROM pg_catalog.pg_class c \
        JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
        WHERE c.relforcerowsecurity AND pg_catalog.pg_has_role(c.relowner, 'USAGE')";
    client.batch_execute("BEGIN; SET LOCAL row_security = off").await.map_err(Error::db)?;
    for row in client.query(FORCED, &[]).await.map_err(Error::db)? {
        let table: String = row.get(0);
        client
            .batch_execute(&format!("ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY"))
            .await
            .map_err(Error::db)?;
    }
    let mut problems = Vec::new();
    for table in &manifest.tables {
        let sql = format!(
            "SELECT count(*) FROM ONLY {} {}",
            table.qualified(),
            table.condition.as_deref().unwrap_or("")
        );
        let count: i64 = match client.query_one(&sql, &[]).await {
            Ok(row) => row.get(0),
            Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::INSUFFICIENT_PRIVILEGE) => {
                return Err(Error::Database(
                    format!(
                        "cannot count every row of {}.{} in the scratch database: {}; verify as the \
                         table's owner or as a role with BYPASSRLS",
                        table.schema,
                        table.name,
                        prodready_stdx::error::chain(&e)
                    )
                    .into(),
                ));
            }
            Err(e) => return Err(Error::db(e)),
        };
        if u64::try_from(count).ok() != Some(table.rows) {
            problems.push(format!(
                "{}.{}: {count} rows restored, {} in the manifest",
                table.schema, table.name, table.rows
            ));
        }
    }
    // The backup checked against the schema it restored too, not only against itself: a table the schema
    // has and the backup's data does not (missed when the backup listed its tables) is a problem.
    let tables = format!(
        "SELECT n.nspname, c.relname FROM pg_catalog.pg_class c
         JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
         WHERE {} ORDER BY 1, 2",
        crate::backup::COPIED_TABLES
    );
    for row in client.query(&tables, &[]).await.map_err(Error::db)? {
        let (schema, name): (String, String) = (row.get(0), row.get(1));
        if !manifest.tables.iter().any(|t| t.schema == schema && t.name == name) {
            problems.push(format!(
                "{schema}.{name}: in the backup's schema but not in its data (no row of it was backed up)"
            ));
        }
    }
    client.batch_execute("ROLLBACK").await.map_err(Error::db)?;
    Ok(problems)
}

/// amcheck's `bt_index_check` on every btree index of the database `client` is connected to (the extension
/// is created when missing); `prefix` starts every line (e.g. the database's name).
pub(crate) async fn amcheck(
    client: &tokio_postgres::Client,
    prefix: &str,
    problems: &mut Vec<String>,
    checked: &mut Vec<String>,
) -> Result<()> {
    match client.batch_execute("CREATE EXTENSION IF NOT EXISTS amcheck").await {
        Err(e) => checked.push(format!("{prefix}amcheck unavailable: {}", prodready_stdx::error::chain(&e))),
        Ok(()) => {
            let rows = client.query(INDEXES, &[]).await.map_err(Error::db)?;
            let (mut checkable, mut heapallindexed) = (0, 0);
            let mut skipped = Vec::new();
            for row in &rows {
                let index = IndexInfo {
                    name: row.get(0),
                    kind: row.get::<_, i8>(1) as u8 as char,
                    method: row.get(2),
                    valid: row.get(3),
                    table_kind: row.get::<_, i8>(4) as u8 as char,
                    table_bytes: row.get(5),
                };
                if let Some(reason) = index.skip_reason() {
                    skipped.push(format!("{} ({reason})", index.name));
                    continue;
                }
                checkable += 1;
                // heapallindexed: every heap tuple must have its index entry (catches a missing entry, not
                // only a corrupt page). It reads the whole table once per index, so it is kept for tables
                // up to HEAPALLINDEXED_MAX_BYTES; larger ones get the structural check.
                let heap = index.table_bytes <= HEAPALLINDEXED_MAX_BYTES;
                heapallindexed += usize::from(heap);
                if let Err(e) = client
                    .execute("SELECT bt_index_check($1::text::regclass, $2)", &[&index.name, &heap])
                    .await
                {
                    problems.push(format!(
                        "{prefix}index {}: {}",
                        index.name,
                        prodready_stdx::error::chain(&e)
                    ));
                }
            }
            checked.push(format!(
                "{prefix}amcheck bt_index_check on {checkable} btree indexes ({heapallindexed} with heapallindexed)"
            ));
            if !skipped.is_empty() {
                checked.push(format!(
                    "{prefix}amcheck skipped {} indexes: {}",
                    skipped.len(),
                    skipped.join(", ")
                ));
            }
        }
    }
    Ok(())
}

/// Every index of the restored database outside the system schemas (temporary ones aside).
const INDEXES: &str =
    "SELECT c.oid::regclass::text, c.relkind, am.amname, i.indisvalid AND i.indisready, t.relkind,
            pg_catalog.pg_relation_size(i.indrelid)
     FROM pg_catalog.pg_index i
     JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid
     JOIN pg_catalog.pg_class t ON t.oid = i.indrelid
     JOIN pg_catalog.pg_am am ON am.oid = c.relam
     JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
     WHERE c.relpersistence <> 't' AND n.nspname <> 'information_schema' AND n.nspname !~ '^pg_'
     ORDER BY 1";

/// An index as amcheck sees it.
struct IndexInfo {
    name: String,
    /// `i` (an index with storage) or `I` (a partitioned index).
    kind: char,
    method: String,
    valid: bool,
    /// The kind of the indexed relation.
    table_kind: char,
    /// The size of the indexed relation's main fork.
    table_bytes: i64,
}

/// Tables up to this size get amcheck's heapallindexed check (a full read of the table per index).
const HEAPALLINDEXED_MAX_BYTES: i64 = 1 << 30;

impl IndexInfo {
    /// Why `bt_index_check` cannot run on this index, or `None` when it can.
    fn skip_reason(&self) -> Option<String> {
        if self.kind == 'I' || self.table_kind == 'p' {
            return Some(
                "partitioned index: no storage of its own; the partitions' indexes are checked".to_owned(),
            );
        }
        if self.method != "btree" {
            return Some(format!("{} index: amcheck checks btree indexes only", self.method));
        }
        if !self.valid {
            return Some("invalid index, left by a failed concurrent build: REINDEX it".to_owned());
        }
        None
    }
}

/// Records the outcome of a verification of backup `id` (a logical backup, or a base backup's drill) in the
/// catalog and returns it.
pub(crate) fn finish(
    store: &Store,
    id: &str,
    mode: &str,
    started: Instant,
    problems: Vec<String>,
    checked: Vec<String>,
) -> Result<Verification> {
    let verification = Verification {
        id: id.to_owned(),
        verified_at: humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
        mode: mode.to_owned(),
        ok: problems.is_empty(),
        duration_ms: crate::ms(started.elapsed()),
        problems,
        checked,
    };
    catalog::record(store, &verification)?;
    Ok(verification)
}

/// The encoding the scratch database needs when the data's is not the server's default: a SQL_ASCII
/// source's bytes need not be UTF-8, and a UTF-8 database refuses them although the backup is exact.
async fn scratch_encoding(admin: &tokio_postgres::Client, manifest: &Manifest) -> Result<Option<String>> {
    let Some(data) = &manifest.data_encoding else { return Ok(None) };
    let default: String = admin
        .query_one(
            "SELECT pg_catalog.pg_encoding_to_char(encoding) FROM pg_catalog.pg_database WHERE datname = 'template0'",
            &[],
        )
        .await
        .map_err(Error::db)?
        .get(0);
    Ok((!default.eq_ignore_ascii_case(data)).then(|| data.clone()))
}
