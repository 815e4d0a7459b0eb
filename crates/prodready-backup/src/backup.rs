//! Taking a backup: one exported snapshot shared by every connection, the schema through
//! `pg_dump --snapshot`, table data by COPY over several connections (big tables split by ctid range),
//! sequences and large objects, zstd and SHA-256 per object, the manifest last.

use std::collections::VecDeque;
use std::io::Write as _;
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime};

use futures_util::StreamExt as _;

use crate::manifest::{Compression, LargeObjects, Manifest, Object, Sequence, Table};
use crate::pg::{self, ident, literal};
use crate::store::{MANIFEST, Store};
use crate::tools::{self, Tools};
use crate::{Error, Result};

/// How to take a backup.
#[derive(Debug, Clone)]
pub struct BackupOptions {
    /// The database to back up.
    pub database_url: String,
    /// Connections copying data in parallel (each shares the snapshot).
    pub jobs: usize,
    /// zstd level, 1-19.
    pub zstd_level: i32,
    /// Tables bigger than this many 8 kB pages are split into ctid ranges of this size.
    pub split_pages: u32,
    /// age X25519 recipients (`age1...`) every object is encrypted to; empty means no encryption.
    pub encrypt_to: Vec<String>,
    pub tools: Tools,
}

/// Connections that copy table data in parallel, unless the caller says otherwise.
pub const DEFAULT_JOBS: u16 = 2;
/// The zstd level, unless the caller says otherwise.
pub const DEFAULT_ZSTD_LEVEL: i32 = 3;

impl BackupOptions {
    pub fn new(database_url: impl Into<String>) -> Self {
        Self {
            database_url: database_url.into(),
            jobs: usize::from(DEFAULT_JOBS),
            zstd_level: DEFAULT_ZSTD_LEVEL,
            split_pages: 65_536,
            encrypt_to: Vec::new(),
            tools: Tools::default(),
        }
    }
}

/// What a long operation reports as it goes.
pub trait Progress: Send + Sync {
    /// The work ahead: `units` of work totalling `bytes` (an estimate from the catalog).
    fn planned(&self, _units: usize, _bytes: u64) {}
    /// Uncompressed bytes moved.
    fn bytes(&self, _n: u64) {}
    /// One unit finished.
    fn done(&self, _what: &str) {}
}

/// Ignores progress.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl Progress for NoProgress {}

/// One table as the catalog describes it.
struct SourceTable {
    schema: String,
    name: String,
    columns: Vec<String>,
    pages: u32,
    /// For an extension's configuration table (`pg_extension_config_dump`): the filter of the rows to
    /// copy (`WHERE ...`, possibly empty); the extension's own rows come back with `CREATE EXTENSION`.
    condition: Option<String>,
}

/// One COPY to run.
#[derive(Clone)]
struct Job {
    table: usize,
    object: String,
    sql: String,
    /// `LOCK TABLE ... NOWAIT` before copying, so a queued exclusive lock fails the run instead of
    /// deadlocking it.
    lock: Option<String>,
}

struct JobResult {
    table: Option<usize>,
    object: Object,
    rows: u64,
}

/// Bytes of COPY output handed to the compressor at a time.
const BATCH: usize = 256 * 1024;

/// The key of the session advisory lock that keeps two backups of one database apart.
pub const LOCK_KEY: i64 = 0x7072_6f64_7265_6479; // "prodready"

/// The key a base backup holds, shared, in the database it connects to while it runs.
pub const BASE_LOCK_KEY: i64 = 0x7072_6f64_6261_7365; // "prodbase"

/// Whether a backup, logical ([`LOCK_KEY`]) or base ([`BASE_LOCK_KEY`]), is running now on the server
/// of `url`, whichever of its databases it connected to. A prune asks before it removes leftovers: a
/// long backup's objects and uploads may look idle while it works on a big table or streams a base
/// backup. Advisory locks are per database, so a `pg_try_advisory_lock` from `url`'s database would miss
/// a backup of another one: `pg_locks` shows them all (a 64-bit key as `classid`, its high half, and
/// `objid`, its low half, with `objsubid` 1).
pub async fn backup_running(url: &str) -> Result<bool> {
    const HELD: &str = "SELECT EXISTS (
         SELECT 1 FROM pg_catalog.pg_locks l
         WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
           AND (l.classid::pg_catalog.int8 << 32) | l.objid::pg_catalog.int8 = ANY ($1))";
    let (client, driver) = pg::connect(url).await?;
    let keys = [LOCK_KEY, BASE_LOCK_KEY];
    let running = client.query_one(HELD, &[&&keys[..]]).await.map_err(Error::db)?.get(0);
    drop(client);
    let _ = driver.await;
    Ok(running)
}

/// Takes one backup of `options.database_url` into `store` and returns its manifest. On any failure
/// nothing is published: the partial objects have no manifest and are removed (or, after a crash, left for
/// `prune` to remove).
pub async fn backup(store: &Store, options: &BackupOptions, progress: Arc<dyn Progress>) -> Result<Manifest> {
    let id = new_id(SystemTime::now());
    let result = take(store, options, &id, progress).await;
    if result.is_err() {
        discard_uncommitted(store, &id);
    }
    result
}

/// Removes what a failed run left of backup `id`, only when it is certainly uncommitted (no manifest).
pub(crate) fn discard_uncommitted(store: &Store, id: &str) {
    if store.exists(id, MANIFEST).is_ok_and(|committed| !committed) {
        let _ = store.delete_backup(id);
    }
}

async fn take(
    store: &Store,
    options: &BackupOptions,
    id: &str,
    progress: Arc<dyn Progress>,
) -> Result<Manifest> {
    let started = Instant::now();
    let created_at = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
    let database = pg::dbname(&options.database_url)?;
    let recipients = Arc::new(crate::crypto::recipients(&options.encrypt_to)?);
    let pg_dump_version = tools::version("pg_dump", &options.tools.pg_dump).await?;

    let (leader, leader_driver) = pg::connect(&options.database_url).await?;
    leader.batch_execute(pg::DUMP_SESSION).await.map_err(Error::db)?;
    let locked: bool =
        leader.query_one("SELECT pg_try_advisory_lock($1)", &[&LOCK_KEY]).await.map_err(Error::db)?.get(0);
    if !locked {
        return Err(Error::Locked(database));
    }
    leader.batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY").await.map_err(Error::db)?;
    let row = leader
        .query_one(
            "SELECT pg_export_snapshot(), current_setting('server_version'), current_setting('server_encoding')",
            &[],
        )
        .await
        .map_err(Error::db)?;
    let (snapshot, server_version): (String, String) = (row.get(0), row.get(1));
    // Every other encoding converts to UTF-8; SQL_ASCII promises nothing about its bytes.
    let data_encoding = (row.get::<_, String>(2) == "SQL_ASCII").then(|| "SQL_ASCII".to_owned());

    let tables = catalog_tables(&leader).await?;
    lock_all(&leader, &tables).await?;
    check_not_rewritten(&leader).await?;
    let sequences = read_sequences(&leader).await?;
    let lo_count: i64 = leader
        .query_one("SELECT count(*) FROM pg_catalog.pg_largeobject_metadata", &[])
        .await
        .map_err(Error::db)?
        .get(0);
    let lo_count = u64::try_from(lo_count).unwrap_or(0);

    let jobs = plan(&tables, options.split_pages, lo_count > 0);
    let estimate: u64 = tables.iter().map(|t| u64::from(t.pages) * 8192).sum();
    progress.planned(jobs.len() + 1, estimate);

    // The schema, inside the same snapshot, while the data flows.
    let schema_dir = tempfile::tempdir().map_err(|e| Error::io(std::env::temp_dir(), e))?;
    let schema_file = schema_dir.path().join("schema.pgdump");
    let dump_args = vec![
        format!("--snapshot={snapshot}"),
        "--format=custom".to_owned(),
        "--section=pre-data".to_owned(),
        "--section=post-data".to_owned(),
        "--no-password".to_owned(),
        // The leader already holds ACCESS SHARE; if a migration queues for ACCESS EXCLUSIVE in between,
        // pg_dump must give up instead of waiting behind it forever (a cycle the server cannot see).
        "--lock-wait-timeout=30s".to_owned(),
        format!("--file={}", schema_file.display()),
    ];
    let env = pg::libpq_env(&options.database_url)?;
    let pg_dump = tools::run("pg_dump", &options.tools.pg_dump, &dump_args, &env);

    // Each worker's session: pg_dump's settings, the data's encoding, and the leader's snapshot.
    let setup = format!(
        "{} BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY; SET TRANSACTION SNAPSHOT {};",
        pg::session(pg::DUMP_SESSION, data_encoding.as_deref()),
        literal(&snapshot)
    );
    let copy = run_jobs(store, options, id, &setup, jobs, recipients.clone(), progress.clone());
    let (dumped, copied) = tokio::join!(pg_dump, copy);
    dumped?;
    let copied = copied?;

    let schema_object = {
        let store = store.clone();
        let id = id.to_owned();
        let schema_file = schema_file.clone();
        let recipients = recipients.clone();
        tokio::task::spawn_blocking(move || -> Result<Object> {
            let mut writer = crate::crypto::Sink::new(store.create(&id, "schema.pgdump")?, &recipients)?;
            let mut file = std::fs::File::open(&schema_file).map_err(|e| Error::io(&schema_file, e))?;
            std::io::copy(&mut file, &mut writer).map_err(|e| Error::io(&schema_file, e))?;
            writer.finish()?.finish()
        })
        .await
        .expect("the schema upload does not panic")?
    };
    progress.done("schema");

    let mut objects = vec![schema_object];
    let mut manifest_tables: Vec<Table> = tables
        .iter()
        .map(|t| Table {
            schema: t.schema.clone(),
            name: t.name.clone(),
            columns: t.columns.clone(),
            rows: 0,
            parts: Vec::new(),
            condition: t.condition.clone(),
        })
        .collect();
    let mut large_objects = LargeObjects { count: lo_count, object: None };
    for done in copied {
        match done.table {
            Some(index) => {
                let table = &mut manifest_tables[index];
                table.rows += done.rows;
                table.parts.push(done.object.name.clone());
            }
            None => large_objects.object = Some(done.object.name.clone()),
        }
        objects.push(done.object);
    }
    for table in &mut manifest_tables {
        table.parts.sort();
    }
    objects.sort_by(|a, b| a.name.cmp(&b.name));

    let manifest = Manifest {
        format: crate::manifest::FORMAT,
        id: id.to_owned(),
        database,
        created_at,
        duration_ms: crate::ms(started.elapsed()),
        server_version,
        data_encoding,
        tool_version: concat!("prodready ", env!("CARGO_PKG_VERSION")).to_owned(),
        pg_dump_version,
        snapshot,
        compression: Compression { algorithm: "zstd".to_owned(), level: options.zstd_level },
        encryption: (!options.encrypt_to.is_empty()).then(|| crate::manifest::Encryption {
            algorithm: "age-x25519".to_owned(),
            recipients: options.encrypt_to.iter().map(|r| r.trim().to_owned()).collect(),
        }),
        objects,
        schema: "schema.pgdump".to_owned(),
        tables: manifest_tables,
        sequences,
        large_objects,
    };
    // The snapshot must stay valid until every worker imported it, which has happened by now.
    leader.batch_execute("COMMIT").await.map_err(Error::db)?;
    let bytes = serde_json::to_vec_pretty(&manifest).expect("a manifest serializes");
    store.write_atomic(id, MANIFEST, &bytes)?;
    let _ = leader.query_one("SELECT pg_advisory_unlock($1)", &[&LOCK_KEY]).await;
    drop(leader);
    let _ = leader_driver.await;
    Ok(manifest)
}

/// `20261129T163700Z-1a2b`: sortable by time, unique enough for one store.
pub fn new_id(now: SystemTime) -> String {
    let stamp: String = humantime::format_rfc3339_seconds(now)
        .to_string()
        .chars()
        .filter(|c| *c != '-' && *c != ':')
        .collect();
    let nanos = now.duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    let salt = (nanos ^ std::process::id().rotate_left(16)) & 0xffff;
    format!("{stamp}-{salt:04x}")
}

/// The tables whose rows a backup copies (`c` a `pg_class` row, `n` its namespace): ordinary tables and
/// partitions outside the system schemas, not an extension's own unless it is one of its configuration
/// tables. `verify` looks for the same set in the schema it restored.
pub(crate) const COPIED_TABLES: &str = "c.relkind = 'r'
      AND n.nspname <> 'information_schema' AND n.nspname !~ '^pg_'
      AND (c.oid IN (SELECT unnest(extconfig) FROM pg_catalog.pg_extension WHERE extconfig IS NOT NULL)
           OR NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
                          WHERE d.classid = 'pg_catalog.pg_class'::regclass AND d.objid = c.oid
                            AND d.deptype = 'e'))";

async fn catalog_tables(client: &tokio_postgres::Client) -> Result<Vec<SourceTable>> {
    let rows = client
        .query(
            &format!(
                "SELECT n.nspname, c.relname, c.relpages,
                    coalesce(array_agg(a.attname::text ORDER BY a.attnum) FILTER (WHERE a.attnum > 0), '{{}}'),
                    CASE WHEN e.oid IS NOT NULL
                         THEN coalesce(e.extcondition[pg_catalog.array_position(e.extconfig, c.oid)], '') END
             FROM pg_catalog.pg_class c
             JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
             LEFT JOIN pg_catalog.pg_attribute a
               ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
             LEFT JOIN pg_catalog.pg_extension e ON c.oid = ANY (e.extconfig)
             WHERE {COPIED_TABLES}
             GROUP BY n.nspname, c.relname, c.relpages, e.oid, e.extconfig, e.extcondition, c.oid
             ORDER BY c.relpages DESC, n.nspname, c.relname"
            ),
            &[],
        )
        .await
        .map_err(Error::db)?;
    Ok(rows
        .iter()
        .map(|r| SourceTable {
            schema: r.get(0),
            name: r.get(1),
            pages: u32::try_from(r.get::<_, i32>(2)).unwrap_or(0),
            columns: r.get(3),
            condition: r.get(4),
        })
        .collect())
}

async fn lock_all(client: &tokio_postgres::Client, tables: &[SourceTable]) -> Result<()> {
    client.batch_execute("SET lock_timeout = '30s'").await.map_err(Error::db)?;
    for chunk in tables.chunks(200) {
        let names: Vec<String> =
            chunk.iter().map(|t| format!("{}.{}", ident(&t.schema), ident(&t.name))).collect();
        client
            .batch_execute(&format!("LOCK TABLE {} IN ACCESS SHARE MODE", names.join(", ")))
            .await
            .map_err(Error::db)?;
    }
    client.batch_execute("SET lock_timeout = 0").await.map_err(Error::db)
}

/// A table rewritten (TRUNCATE, a rewriting ALTER TABLE, VACUUM FULL, CLUSTER) after the snapshot was
/// taken and before its lock was granted is empty in the snapshot's eyes: its backup would hold no row.
/// Once every lock is held nothing can rewrite them any more, so a table whose storage is not the
/// snapshot's now fails the backup (pg_dump has the same window, without saying so).
async fn check_not_rewritten(client: &tokio_postgres::Client) -> Result<()> {
    let rows = client
        .query(
            "SELECT format('%I.%I', n.nspname, c.relname) FROM pg_catalog.pg_class c
             JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
             WHERE c.relkind = 'r' AND c.relfilenode <> 0
               AND c.relfilenode IS DISTINCT FROM pg_catalog.pg_relation_filenode(c.oid)
               AND n.nspname <> 'information_schema' AND n.nspname !~ '^pg_'
             ORDER BY 1",
            &[],
        )
        .await
        .map_err(Error::db)?;
    if rows.is_empty() {
        return Ok(());
    }
    let names: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
    Err(Error::Database(
        format!(
            "{} rewritten or truncated as the backup started (after its snapshot, before its lock): the \
             snapshot sees none of its rows; take the backup again",
            names.join(", ")
        )
        .into(),
    ))
}

async fn read_sequences(client: &tokio_postgres::Client) -> Result<Vec<Sequence>> {
    let names = client
        .query(
            "SELECT n.nspname, c.relname FROM pg_catalog.pg_class c
             JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
             WHERE c.relkind = 'S' AND n.nspname <> 'information_schema' AND n.nspname !~ '^pg_'
             ORDER BY 1, 2",
            &[],
        )
        .await
        .map_err(Error::db)?;
    let mut out = Vec::with_capacity(names.len());
    for row in names {
        let (schema, name): (String, String) = (row.get(0), row.get(1));
        let state = client
            .query_one(&format!("SELECT last_value, is_called FROM {}.{}", ident(&schema), ident(&name)), &[])
            .await
            .map_err(Error::db)?;
        out.push(Sequence { schema, name, last_value: state.get(0), is_called: state.get(1) });
    }
    Ok(out)
}

/// One job per table, or per ctid range of a big table; the large-object contents last. Biggest first,
/// so the long jobs start early.
fn plan(tables: &[SourceTable], split_pages: u32, large_objects: bool) -> Vec<Job> {
    let mut jobs = Vec::new();
    for (index, t) in tables.iter().enumerate() {
        let qualified = format!("{}.{}", ident(&t.schema), ident(&t.name));
        let columns: Vec<String> = t.columns.iter().map(|c| ident(c)).collect();
        let lock = Some(format!("LOCK TABLE {qualified} IN ACCESS SHARE MODE NOWAIT"));
        let split = split_pages.max(1);
        let whole = match &t.condition {
            // An extension's configuration table: only the rows its filter selects (as pg_dump copies them).
            Some(condition) => {
                let select = if columns.is_empty() { "NULL".to_owned() } else { columns.join(", ") };
                Some(format!("COPY (SELECT {select} FROM ONLY {qualified} {condition}) TO STDOUT"))
            }
            // A table without copyable columns (`CREATE TABLE t ()`) is copied without a column list.
            None if t.pages <= split => {
                let list =
                    if columns.is_empty() { String::new() } else { format!(" ({})", columns.join(", ")) };
                Some(format!("COPY {qualified}{list} TO STDOUT"))
            }
            None => None,
        };
        if let Some(sql) = whole {
            jobs.push(Job { table: index, object: format!("data/{index:05}.0.copy.zst"), sql, lock });
            continue;
        }
        let parts = t.pages.div_ceil(split);
        for part in 0..parts {
            let lower = format!("ctid >= '({},0)'::tid", part * split);
            let range = if part + 1 == parts {
                lower // the last range is open: the table may have grown since the last ANALYZE
            } else {
                format!("{lower} AND ctid < '({},0)'::tid", (part + 1) * split)
            };
            let select = if columns.is_empty() { "NULL".to_owned() } else { columns.join(", ") };
            jobs.push(Job {
                table: index,
                object: format!("data/{index:05}.{part}.copy.zst"),
                sql: format!("COPY (SELECT {select} FROM ONLY {qualified} WHERE {range}) TO STDOUT"),
                lock: lock.clone(),
            });
        }
    }
    if large_objects {
        jobs.push(Job {
            table: usize::MAX,
            object: "large-objects.copy.zst".to_owned(),
            sql: "COPY (SELECT m.oid, pg_catalog.lo_get(m.oid) FROM pg_catalog.pg_largeobject_metadata m ORDER BY m.oid) \
                  TO STDOUT"
                .to_owned(),
            lock: None,
        });
    }
    jobs
}

async fn run_jobs(
    store: &Store,
    options: &BackupOptions,
    id: &str,
    setup: &str,
    jobs: Vec<Job>,
    recipients: Arc<Vec<age::x25519::Recipient>>,
    progress: Arc<dyn Progress>,
) -> Result<Vec<JobResult>> {
    let queue = Arc::new(Mutex::new(VecDeque::from(jobs)));
    let workers = options.jobs.max(1);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..workers {
        let (queue, store, progress, recipients) =
            (queue.clone(), store.clone(), progress.clone(), recipients.clone());
        let (url, setup, id, level) =
            (options.database_url.clone(), setup.to_owned(), id.to_owned(), options.zstd_level);
        tasks.spawn(async move {
            let (client, driver) = pg::connect(&url).await?;
            client.batch_execute(&setup).await.map_err(Error::db)?;
            let mut done = Vec::new();
            loop {
                let job = queue.lock().expect("the job queue is never poisoned").pop_front();
                let Some(job) = job else { break };
                if let Some(lock) = &job.lock {
                    client.batch_execute(lock).await.map_err(|e| {
                        Error::Database(
                            format!(
                                "{} (another session is waiting for an exclusive lock on it)",
                                prodready_stdx::error::chain(&e)
                            )
                            .into(),
                        )
                    })?;
                }
                let (object, rows) =
                    copy_out(&client, &store, &id, &job, level, &recipients, progress.as_ref()).await?;
                progress.done(&job.object);
                done.push(JobResult { table: (job.table != usize::MAX).then_some(job.table), object, rows });
            }
            client.batch_execute("COMMIT").await.map_err(Error::db)?;
            drop(client);
            let _ = driver.await;
            Ok::<_, Error>(done)
        });
    }
    let mut all = Vec::new();
    let mut first_error = None;
    while let Some(joined) = tasks.join_next().await {
        match joined.expect("a copy worker does not panic") {
            Ok(done) => all.extend(done),
            Err(e) => {
                // Stop the other workers: their work is wasted once one failed.
                queue.lock().expect("the job queue is never poisoned").clear();
                first_error.get_or_insert(e);
            }
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(all),
    }
}

/// Streams one COPY into a compressed, hashed object and counts its rows (one line per row in COPY text).
async fn copy_out(
    client: &tokio_postgres::Client,
    store: &Store,
    id: &str,
    job: &Job,
    level: i32,
    recipients: &Arc<Vec<age::x25519::Recipient>>,
    progress: &dyn Progress,
) -> Result<(Object, u64)> {
    let stream = client.copy_out(job.sql.as_str()).await.map_err(Error::db)?;
    let (tx, mut rx) = tokio::sync::mpsc::channel::<bytes::Bytes>(16);
    let writer = {
        let (store, id, name, recipients) =
            (store.clone(), id.to_owned(), job.object.clone(), recipients.clone());
        tokio::task::spawn_blocking(move || -> Result<(Object, u64)> {
            let sink = crate::crypto::Sink::new(store.create(&id, &name)?, &recipients)?;
            let mut encoder = zstd::Encoder::new(sink, level).map_err(|e| Error::io(&name, e))?;
            let mut rows = 0u64;
            while let Some(chunk) = rx.blocking_recv() {
                rows += chunk.iter().filter(|&&b| b == b'\n').count() as u64;
                encoder.write_all(&chunk).map_err(|e| Error::io(&name, e))?;
            }
            let sink = encoder.finish().map_err(|e| Error::io(&name, e))?;
            Ok((sink.finish()?.finish()?, rows))
        })
    };
    futures_util::pin_mut!(stream);
    let mut failure = None;
    // COPY arrives one message per row: batch rows into large buffers so the channel and the compressor
    // see a few hundred kilobytes at a time, not a hundred bytes.
    let mut batch = bytes::BytesMut::with_capacity(BATCH);
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(chunk) => {
                batch.extend_from_slice(&chunk);
                if batch.len() >= BATCH {
                    progress.bytes(batch.len() as u64);
                    if tx.send(batch.split().freeze()).await.is_err() {
                        break; // the writer failed; its error is reported below
                    }
                }
            }
            Err(e) => {
                failure = Some(Error::db(e));
                break;
            }
        }
    }
    if failure.is_none() && !batch.is_empty() {
        progress.bytes(batch.len() as u64);
        let _ = tx.send(batch.freeze()).await;
    }
    drop(tx);
    let written = writer.await.expect("the object writer does not panic");
    if let Some(e) = failure {
        return Err(e);
    }
    written
}
