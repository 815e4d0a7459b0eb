//! Restoring a backup: the pre-data schema with pg_restore, table data by COPY over several connections
//! (every object's SHA-256 checked as it is read, the tables with the most rows first), sequences and large
//! objects, then the post-data schema (indexes, constraints, triggers, materialized view data) with
//! `pg_restore -j`.
//! A big table's own indexes and keys are built by the same workers as soon as its data is loaded, while
//! other tables still load ([`crate::post_data`]), as `pg_restore -j` schedules them.
//!
//! A restore over a database that holds tables (`force`) never edits it in place: the backup is restored
//! into a new database beside it, and only when that succeeded are the names swapped. The previous
//! database is kept under a new name ([`RestoreReport::replaced`]); a failed restore leaves the target as
//! it was.

use std::collections::VecDeque;
use std::io::Read;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use futures_util::SinkExt as _;
use sha2::{Digest as _, Sha256};

use crate::backup::Progress;
use crate::manifest::{Manifest, Object};
use crate::pg::{self, ident};
use crate::post_data::TocEntry;
use crate::store::Store;
use crate::tools::{self, Tools};
use crate::{Error, Result, ms};

/// How to restore.
#[derive(Debug, Clone)]
pub struct RestoreOptions {
    /// The database to restore into; it must exist.
    pub target_url: String,
    /// Connections loading data in parallel, and pg_restore jobs for the post-data section.
    pub jobs: usize,
    /// Restore over a database that already holds tables: the backup goes into a new database that then
    /// takes the target's name; the previous one is kept, renamed (see [`RestoreReport::replaced`]).
    pub force: bool,
    /// age identity files, for encrypted backups.
    pub identity_files: Vec<std::path::PathBuf>,
    pub tools: Tools,
}

/// What a restore did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoreReport {
    pub tables: usize,
    pub rows: u64,
    pub sequences: usize,
    pub large_objects: u64,
    pub duration_ms: u64,
    /// With `force` over a non-empty database: the name the previous database was kept under.
    pub replaced: Option<String>,
    /// Tables whose indexes and keys were built as soon as their data was loaded, beside other loads.
    pub early_builds: usize,
    /// Where the time went.
    pub phases: RestorePhases,
}

/// How long each phase of a restore took, in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct RestorePhases {
    /// Fetching the schema archive and restoring its pre-data section.
    pub pre_data_ms: u64,
    /// Loading table data, with the early index and key builds of big tables.
    pub data_ms: u64,
    /// Index and key builds among them, summed over the workers (they overlap the loading).
    pub early_post_data_ms: u64,
    /// Sequences and large objects.
    pub sequences_ms: u64,
    /// The rest of the post-data section.
    pub post_data_ms: u64,
}

/// Restores `manifest`'s backup from `store` into `options.target_url`.
pub async fn restore(
    store: &Store,
    manifest: &Manifest,
    options: &RestoreOptions,
    progress: Arc<dyn Progress>,
) -> Result<RestoreReport> {
    let started = Instant::now();
    let target = pg::dbname(&options.target_url)?;
    let identities = crate::crypto::identities(&options.identity_files)?;
    let encrypted = manifest.encryption.is_some();
    if encrypted && identities.is_empty() {
        // Before touching the target: nothing can be restored without a key.
        return Err(Error::IdentityRequired(manifest.id.clone()));
    }
    let (client, driver) = pg::connect(&options.target_url).await?;
    let existing: i64 = client
        .query_one(
            "SELECT count(*) FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
             WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
               AND n.nspname <> 'information_schema' AND n.nspname !~ '^pg_'",
            &[],
        )
        .await
        .map_err(Error::db)?
        .get(0);
    if existing > 0 {
        if !options.force {
            return Err(Error::TargetNotEmpty(target));
        }
        drop(client);
        let _ = driver.await;
        return Box::pin(replace(store, manifest, options, progress, &target)).await;
    }

    // pg_restore needs a seekable file for parallel jobs: fetch the schema archive, checking its hash.
    let schema = manifest
        .object(&manifest.schema)
        .ok_or_else(|| corrupt(manifest, &manifest.schema, "listed as the schema but not among the objects"))?
        .clone();
    let dir = tempfile::tempdir().map_err(|e| Error::io(std::env::temp_dir(), e))?;
    let archive = dir.path().join("schema.pgdump");
    {
        let (store, id, archive) = (store.clone(), manifest.id.clone(), archive.clone());
        let (manifest, identities) = (manifest.clone(), identities.clone());
        tokio::task::spawn_blocking(move || -> Result<()> {
            let mut raw = HashingReader::new(store.open_object(&id, &schema.name)?);
            let copied = (|| -> Result<()> {
                let mut plain =
                    crate::crypto::plaintext(&mut raw, encrypted, &identities, &id, &schema.name)?;
                let mut file = std::fs::File::create(&archive).map_err(|e| Error::io(&archive, e))?;
                std::io::copy(&mut plain, &mut file).map_err(|e| Error::io(&archive, e))?;
                Ok(())
            })();
            let _ = std::io::copy(&mut raw, &mut std::io::sink());
            raw.check(&manifest, &schema)?;
            copied
        })
        .await
        .expect("the schema download does not panic")?;
    }
    let plan = plan_post_data(&options.tools, &archive, manifest).await?;
    let early_jobs = plan.early.iter().filter(|e| !e.is_empty()).count();
    let units = manifest.tables.iter().map(|t| t.parts.len()).sum::<usize>() + early_jobs + 3;
    progress.planned(units, manifest.size_bytes());
    let env = pg::libpq_env(&options.target_url)?;
    let mut pre =
        vec!["--section=pre-data".to_owned(), "--exit-on-error".to_owned(), "--no-password".to_owned()];
    pre.push(format!("--dbname={target}"));
    pre.push(archive.display().to_string());
    tools::run("pg_restore", &options.tools.pg_restore, &pre, &env).await?;
    progress.done("pre-data");
    let mut phases = RestorePhases { pre_data_ms: ms(started.elapsed()), ..RestorePhases::default() };

    // Index and constraint builds sort whole tables: give their sessions room (the server default is 64 MB).
    let mut post_env = env.clone();
    post_env.push(("PGOPTIONS", format!("-c maintenance_work_mem={POST_DATA_MAINTENANCE_WORK_MEM}")));
    let post_data = PostData {
        pg_restore: options.tools.pg_restore.clone(),
        archive: archive.clone(),
        dir: dir.path().to_owned(),
        target: target.clone(),
        env: post_env,
    };
    let loading = Instant::now();
    phases.early_post_data_ms =
        load_tables(store, manifest, options, &identities, &plan, &post_data, progress.clone()).await?;
    phases.data_ms = ms(loading.elapsed());

    let sequencing = Instant::now();
    client.batch_execute(pg::LOAD_SESSION).await.map_err(Error::db)?;
    for s in &manifest.sequences {
        let name = format!("{}.{}", ident(&s.schema), ident(&s.name));
        client
            .execute(
                "SELECT pg_catalog.setval($1::text::regclass, $2, $3)",
                &[&name, &s.last_value, &s.is_called],
            )
            .await
            .map_err(Error::db)?;
    }
    if let Some(object) = &manifest.large_objects.object {
        client
            .batch_execute(
                "CREATE TEMP TABLE prodready_large_objects (oid pg_catalog.oid, data pg_catalog.bytea)",
            )
            .await
            .map_err(Error::db)?;
        let entry =
            manifest.object(object).ok_or_else(|| corrupt(manifest, object, "missing from the objects"))?;
        copy_in(
            &client,
            store,
            manifest,
            &identities,
            entry,
            "COPY prodready_large_objects (oid, data) FROM STDIN",
            progress.as_ref(),
        )
        .await?;
        client
            .batch_execute(
                "SELECT pg_catalog.lo_put(oid, 0, data) FROM prodready_large_objects; DROP TABLE prodready_large_objects",
            )
            .await
            .map_err(Error::db)?;
    }
    progress.done("sequences and large objects");
    phases.sequences_ms = ms(sequencing.elapsed());

    let posting = Instant::now();
    // With early builds, only what is left: pg_restore counts the entries already restored as done.
    let rest = plan.has_early().then_some(("post-data", plan.rest.as_slice()));
    post_data.run(options.jobs, rest).await?;
    progress.done("post-data");
    phases.post_data_ms = ms(posting.elapsed());
    drop(client);
    let _ = driver.await;
    Ok(RestoreReport {
        tables: manifest.tables.len(),
        rows: manifest.rows(),
        sequences: manifest.sequences.len(),
        large_objects: manifest.large_objects.count,
        duration_ms: ms(started.elapsed()),
        replaced: None,
        early_builds: early_jobs,
        phases,
    })
}

/// `force` over a non-empty `target`: restore into a new database with the target's encoding, locale and
/// owner, give it the target's database-level properties (privileges, settings, connection limit,
/// comment), then rename the target away (ending its sessions) and the new one into its place.
async fn replace(
    store: &Store,
    manifest: &Manifest,
    options: &RestoreOptions,
    progress: Arc<dyn Progress>,
    target: &str,
) -> Result<RestoreReport> {
    // A fresh backup-style id (time and salt), lowercased: two restores never pick the same names.
    let stamp = crate::backup::new_id(std::time::SystemTime::now()).to_lowercase().replace('-', "_");
    let fresh = sibling_name(target, &format!("_prodready_restore_{stamp}"));
    let kept = sibling_name(target, &format!("_prodready_replaced_{stamp}"));
    let (admin, admin_driver) = pg::connect(&pg::with_dbname(&options.target_url, "postgres")).await?;
    let like = admin
        .query_one(
            "SELECT pg_catalog.pg_encoding_to_char(encoding), datcollate, datctype, pg_catalog.pg_get_userbyid(datdba)
             FROM pg_catalog.pg_database WHERE datname = $1",
            &[&target],
        )
        .await
        .map_err(Error::db)?;
    let (encoding, collate, ctype, owner): (String, String, String, String) =
        (like.get(0), like.get(1), like.get(2), like.get(3));
    let create = format!(
        "CREATE DATABASE {} TEMPLATE template0 ENCODING {} LC_COLLATE {} LC_CTYPE {}",
        ident(&fresh),
        pg::literal(&encoding),
        pg::literal(&collate),
        pg::literal(&ctype)
    );
    // Owned like the target when this role may give it away; else by this role.
    if admin.batch_execute(&format!("{create} OWNER {}", ident(&owner))).await.is_err() {
        admin.batch_execute(&create).await.map_err(|e| {
            Error::Database(
                format!("cannot create the database to restore into: {}", prodready_stdx::error::chain(&e))
                    .into(),
            )
        })?;
    }
    let drop_fresh = || async {
        let _ = admin.batch_execute(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", ident(&fresh))).await;
    };
    let fresh_options = RestoreOptions {
        target_url: pg::with_dbname(&options.target_url, &fresh),
        force: false,
        ..options.clone()
    };
    let mut report = match restore(store, manifest, &fresh_options, progress).await {
        Ok(report) => report,
        Err(e) => {
            drop_fresh().await;
            return Err(e);
        }
    };
    // After the data: a setting such as default_transaction_read_only would stop the load.
    let carried = match database_properties(&admin, target, &fresh).await {
        Ok(statements) => {
            let mut applied = Ok(());
            for statement in &statements {
                applied = admin.batch_execute(statement).await;
                if applied.is_err() {
                    break;
                }
            }
            applied.map_err(|e| prodready_stdx::error::chain(&e))
        }
        Err(e) => Err(e.to_string()),
    };
    if let Err(e) = carried {
        drop_fresh().await;
        return Err(Error::Database(
            format!("cannot give the restored database {target}'s privileges and settings: {e}").into(),
        ));
    }
    // The swap. Sessions on the target are ended first; one that reconnects in between makes the rename
    // fail, so it is tried a few times.
    let mut renamed = Err(Error::Invalid("not tried".to_owned()));
    for attempt in 0..5 {
        if attempt > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
        let _ = admin
            .execute(
                "SELECT pg_catalog.pg_terminate_backend(pid) FROM pg_catalog.pg_stat_activity
                 WHERE datname = $1 AND pid <> pg_catalog.pg_backend_pid()",
                &[&target],
            )
            .await;
        renamed = admin
            .batch_execute(&format!("ALTER DATABASE {} RENAME TO {}", ident(target), ident(&kept)))
            .await
            .map_err(|e| {
                Error::Database(
                    format!("cannot rename {target} away: {}", prodready_stdx::error::chain(&e)).into(),
                )
            });
        if renamed.is_ok() {
            break;
        }
    }
    if let Err(e) = renamed {
        drop_fresh().await;
        return Err(e);
    }
    if let Err(e) =
        admin.batch_execute(&format!("ALTER DATABASE {} RENAME TO {}", ident(&fresh), ident(target))).await
    {
        // Put the target back; the restored copy goes.
        let back = admin
            .batch_execute(&format!("ALTER DATABASE {} RENAME TO {}", ident(&kept), ident(target)))
            .await;
        drop_fresh().await;
        // Should the target not go back under its name, the operator must learn where its data is.
        let kept_note = match back {
            Ok(()) => String::new(),
            Err(back) => format!(
                "; nor could {target} get its name back ({}): its data is intact in the database {kept} \
                 (ALTER DATABASE {} RENAME TO {} restores it)",
                prodready_stdx::error::chain(&back),
                ident(&kept),
                ident(target)
            ),
        };
        return Err(Error::Database(
            format!(
                "cannot rename the restored database into place: {}{kept_note}",
                prodready_stdx::error::chain(&e)
            )
            .into(),
        ));
    }
    drop(admin);
    let _ = admin_driver.await;
    report.replaced = Some(kept);
    Ok(report)
}

/// Statements giving `fresh` what `target` has at the database level and a restore does not bring:
/// privileges (`GRANT`/`REVOKE ... ON DATABASE`), settings (`ALTER [ROLE ... IN] DATABASE ... SET`), the
/// connection limit and the comment, as `pg_dump --create` writes them.
async fn database_properties(
    admin: &tokio_postgres::Client,
    target: &str,
    fresh: &str,
) -> Result<Vec<String>> {
    let db = ident(fresh);
    let mut statements = Vec::new();
    let row = admin
        .query_one(
            "SELECT d.datacl IS NOT NULL, d.datconnlimit, pg_catalog.shobj_description(d.oid, 'pg_database')
             FROM pg_catalog.pg_database d WHERE d.datname = $1",
            &[&target],
        )
        .await
        .map_err(Error::db)?;
    let (explicit_acl, limit, comment): (bool, i32, Option<String>) = (row.get(0), row.get(1), row.get(2));
    if explicit_acl {
        // The new database has the default privileges (PUBLIC may connect and create temporary tables):
        // start from none, then grant what the target grants. The owner's own privileges are implicit.
        statements.push(format!("REVOKE ALL ON DATABASE {db} FROM PUBLIC"));
        let grants = admin
            .query(
                "SELECT CASE WHEN a.grantee = 0 THEN NULL ELSE pg_catalog.pg_get_userbyid(a.grantee) END,
                        a.privilege_type, a.is_grantable
                 FROM pg_catalog.pg_database d, LATERAL pg_catalog.aclexplode(d.datacl) a
                 WHERE d.datname = $1 AND a.grantee <> d.datdba
                 ORDER BY 1 NULLS FIRST, 2",
                &[&target],
            )
            .await
            .map_err(Error::db)?;
        for grant in grants {
            let (grantee, privilege, grantable): (Option<String>, String, bool) =
                (grant.get(0), grant.get(1), grant.get(2));
            let to = grantee.as_deref().map_or_else(|| "PUBLIC".to_owned(), ident);
            let option = if grantable { " WITH GRANT OPTION" } else { "" };
            statements.push(format!("GRANT {privilege} ON DATABASE {db} TO {to}{option}"));
        }
    }
    if limit != -1 {
        statements.push(format!("ALTER DATABASE {db} CONNECTION LIMIT {limit}"));
    }
    if let Some(comment) = comment {
        statements.push(format!("COMMENT ON DATABASE {db} IS {}", pg::literal(&comment)));
    }
    let settings = admin
        .query(
            "SELECT CASE WHEN s.setrole = 0 THEN NULL ELSE pg_catalog.pg_get_userbyid(s.setrole) END, c.setting
             FROM pg_catalog.pg_db_role_setting s
             JOIN pg_catalog.pg_database d ON d.oid = s.setdatabase,
             LATERAL unnest(s.setconfig) WITH ORDINALITY AS c (setting, n)
             WHERE d.datname = $1
             ORDER BY 1 NULLS FIRST, c.n",
            &[&target],
        )
        .await
        .map_err(Error::db)?;
    for setting in settings {
        let (role, setting): (Option<String>, String) = (setting.get(0), setting.get(1));
        let Some((name, value)) = setting.split_once('=') else { continue };
        let scope =
            role.map_or_else(|| format!("DATABASE {db}"), |r| format!("ROLE {} IN DATABASE {db}", ident(&r)));
        statements.push(format!("ALTER {scope} SET {} TO {}", ident(name), setting_value(name, value)));
    }
    Ok(statements)
}

/// A stored setting's value as SQL. The list settings that PostgreSQL stores as already-quoted
/// identifiers (`search_path = "$user", public`) are written as they are, as pg_dump does; the rest are
/// string literals.
fn setting_value(name: &str, value: &str) -> String {
    const LIST_QUOTED: [&str; 6] = [
        "local_preload_libraries",
        "search_path",
        "session_preload_libraries",
        "shared_preload_libraries",
        "temp_tablespaces",
        "unix_socket_directories",
    ];
    if LIST_QUOTED.iter().any(|n| n.eq_ignore_ascii_case(name)) {
        // An empty list (`SET search_path = ''`) is stored as `""`.
        if value.is_empty() || value == "\"\"" { "''".to_owned() } else { value.to_owned() }
    } else {
        pg::literal(value)
    }
}

/// `base` + `suffix`, with `base` shortened so the name fits PostgreSQL's 63-byte identifiers.
fn sibling_name(base: &str, suffix: &str) -> String {
    let mut room = 63usize.saturating_sub(suffix.len());
    while !base.is_char_boundary(room.min(base.len())) {
        room -= 1;
    }
    format!("{}{suffix}", &base[..room.min(base.len())])
}

/// `maintenance_work_mem` of the sessions that build indexes and constraints after the data is loaded.
const POST_DATA_MAINTENANCE_WORK_MEM: &str = "256MB";

fn corrupt(manifest: &Manifest, object: &str, problem: &str) -> Error {
    Error::Corrupt { id: manifest.id.clone(), object: object.to_owned(), problem: problem.to_owned() }
}

/// Where the early post-data builds come from and go to.
#[derive(Clone)]
struct PostData {
    pg_restore: std::path::PathBuf,
    archive: std::path::PathBuf,
    /// A scratch directory for their list files.
    dir: std::path::PathBuf,
    target: String,
    env: Vec<(&'static str, String)>,
}

impl PostData {
    /// `pg_restore --section=post-data` with `jobs` jobs: the whole section, or only `entries` (written to
    /// a list file named after the `&str`).
    async fn run(&self, jobs: usize, entries: Option<(&str, &[TocEntry])>) -> Result<()> {
        let mut args = vec![
            "--section=post-data".to_owned(),
            "--exit-on-error".to_owned(),
            "--no-password".to_owned(),
            format!("--jobs={}", jobs.max(1)),
            format!("--dbname={}", self.target),
        ];
        if let Some((list, entries)) = entries {
            let path = self.dir.join(format!("{list}.list"));
            std::fs::write(&path, crate::post_data::list_file(entries)).map_err(|e| Error::io(&path, e))?;
            args.push(format!("--use-list={}", path.display()));
        }
        args.push(self.archive.display().to_string());
        tools::run("pg_restore", &self.pg_restore, &args, &self.env).await.map(drop)
    }
}

/// Reads the schema archive's table of contents and plans the post-data section
/// ([`crate::post_data::plan`]): tables with at least [`EARLY_MIN_ROWS`] rows or [`EARLY_MIN_BYTES`] of
/// stored data get their indexes and keys built as soon as they are loaded.
async fn plan_post_data(
    tools: &Tools,
    archive: &std::path::Path,
    manifest: &Manifest,
) -> Result<crate::post_data::Plan> {
    // With --verbose, pg_restore lists every entry whatever the section: only the plain listing is cut.
    let list = |section: Option<&str>| {
        let mut args = vec!["--list".to_owned()];
        args.push(match section {
            Some(section) => format!("--section={section}"),
            None => "--verbose".to_owned(),
        });
        args.push(archive.display().to_string());
        args
    };
    let all = crate::post_data::parse_listing(
        &tools::run("pg_restore", &tools.pg_restore, &list(None), &[]).await?,
    );
    let post = crate::post_data::parse_listing(
        &tools::run("pg_restore", &tools.pg_restore, &list(Some("post-data")), &[]).await?,
    );
    let post = post.iter().map(|e| e.id).collect();
    let tables: Vec<(&str, &str)> =
        manifest.tables.iter().map(|t| (t.schema.as_str(), t.name.as_str())).collect();
    let eligible: Vec<bool> = manifest
        .tables
        .iter()
        .map(|t| {
            let stored = t.parts.iter().filter_map(|p| manifest.object(p)).map(|o| o.size).sum::<u64>();
            t.rows >= EARLY_MIN_ROWS || stored >= EARLY_MIN_BYTES
        })
        .collect();
    Ok(crate::post_data::plan(&all, &post, &tables, &eligible))
}

/// Rows, or stored (compressed) bytes, from which a table's indexes and keys are worth a `pg_restore` run
/// of their own as soon as it is loaded (one run costs some tens of milliseconds, about what an index build
/// on 100,000 rows takes; smaller tables wait for the one run after all data). Both, because stored size
/// alone misleads: pgbench's 10,000,000 accounts store in 8 MB and take 3 s to index.
const EARLY_MIN_ROWS: u64 = 100_000;
const EARLY_MIN_BYTES: u64 = 8 << 20;

/// What a load worker does next.
enum Job {
    /// COPY one stored part into `table` (an index into the manifest's tables).
    Copy { entry: Object, sql: String, table: usize },
    /// Build `table`'s indexes and keys: all its parts are loaded.
    Index { table: usize },
}

/// Loads every table's parts, the tables with the most rows first, over `options.jobs` connections; the
/// same workers build a table's early post-data entries as soon as its last part is in. Returns the time
/// spent in those builds, summed over the workers.
async fn load_tables(
    store: &Store,
    manifest: &Manifest,
    options: &RestoreOptions,
    identities: &crate::crypto::Identities,
    plan: &crate::post_data::Plan,
    post_data: &PostData,
    progress: Arc<dyn Progress>,
) -> Result<u64> {
    let mut copies = Vec::new();
    let mut remaining = Vec::with_capacity(manifest.tables.len());
    for (table_index, table) in manifest.tables.iter().enumerate() {
        let columns: Vec<String> = table.columns.iter().map(|c| ident(c)).collect();
        let list = if columns.is_empty() { String::new() } else { format!(" ({})", columns.join(", ")) };
        let sql = format!("COPY {}{list} FROM STDIN", table.qualified());
        for part in &table.parts {
            let entry =
                manifest.object(part).ok_or_else(|| corrupt(manifest, part, "missing from the objects"))?;
            copies.push((entry.clone(), sql.clone(), table_index));
        }
        remaining.push(table.parts.len());
    }
    // The table with the most rows first (its parts together, the biggest first): its index builds are
    // the longest, and they then overlap the other tables' loads instead of running after them all.
    copies.sort_by_key(|(entry, _, table)| {
        (std::cmp::Reverse(manifest.tables[*table].rows), *table, std::cmp::Reverse(entry.size))
    });
    let mut jobs: VecDeque<Job> =
        copies.into_iter().map(|(entry, sql, table)| Job::Copy { entry, sql, table }).collect();
    // Tables without data have nothing to wait for.
    for (table, left) in remaining.iter().enumerate() {
        if *left == 0 && !plan.early[table].is_empty() {
            jobs.push_front(Job::Index { table });
        }
    }
    let queue = Arc::new(Mutex::new((jobs, remaining)));
    let early = Arc::new(plan.early.clone());
    let early_ms = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..options.jobs.max(1) {
        let (queue, store, manifest, progress) =
            (queue.clone(), store.clone(), manifest.clone(), progress.clone());
        let (early, early_ms) = (early.clone(), early_ms.clone());
        let identities = identities.clone();
        let url = options.target_url.clone();
        let post_data = post_data.clone();
        tasks.spawn(async move {
            let (client, driver) = pg::connect(&url).await?;
            let session = pg::session(pg::LOAD_SESSION, manifest.data_encoding.as_deref());
            client.batch_execute(&session).await.map_err(Error::db)?;
            loop {
                let next = queue.lock().expect("the job queue is never poisoned").0.pop_front();
                match next {
                    None => break,
                    Some(Job::Copy { entry, sql, table }) => {
                        copy_in(&client, &store, &manifest, &identities, &entry, &sql, progress.as_ref())
                            .await?;
                        progress.done(&entry.name);
                        let mut guard = queue.lock().expect("the job queue is never poisoned");
                        let (jobs, remaining) = &mut *guard;
                        remaining[table] -= 1;
                        if remaining[table] == 0 && !early[table].is_empty() {
                            jobs.push_front(Job::Index { table });
                        }
                    }
                    Some(Job::Index { table }) => {
                        let building = Instant::now();
                        let name = manifest.tables[table].qualified();
                        let list = format!("early-{table}");
                        post_data.run(1, Some((&list, &early[table]))).await?;
                        progress.done(&format!("indexes of {name}"));
                        early_ms.fetch_add(ms(building.elapsed()), std::sync::atomic::Ordering::Relaxed);
                    }
                }
            }
            drop(client);
            let _ = driver.await;
            Ok::<_, Error>(())
        });
    }
    let mut first_error = None;
    while let Some(joined) = tasks.join_next().await {
        if let Err(e) = joined.expect("a load worker does not panic") {
            queue.lock().expect("the job queue is never poisoned").0.clear();
            first_error.get_or_insert(e);
        }
    }
    first_error.map_or(Ok(early_ms.load(std::sync::atomic::Ordering::Relaxed)), Err)
}

/// Streams one stored object (decompressed, its hash checked) into `COPY ... FROM STDIN`.
async fn copy_in(
    client: &tokio_postgres::Client,
    store: &Store,
    manifest: &Manifest,
    identities: &crate::crypto::Identities,
    entry: &Object,
    sql: &str,
    progress: &dyn Progress,
) -> Result<()> {
    let sink = client.copy_in::<_, bytes::Bytes>(sql).await.map_err(Error::db)?;
    futures_util::pin_mut!(sink);
    let (tx, mut rx) = tokio::sync::mpsc::channel::<bytes::Bytes>(16);
    let reader = {
        let (store, manifest, entry, identities) =
            (store.clone(), manifest.clone(), entry.clone(), identities.clone());
        tokio::task::spawn_blocking(move || -> Result<()> {
            let mut raw = HashingReader::new(store.open_object(&manifest.id, &entry.name)?);
            let encrypted = manifest.encryption.is_some();
            let decoded = (|| -> Result<()> {
                let plain =
                    crate::crypto::plaintext(&mut raw, encrypted, &identities, &manifest.id, &entry.name)?;
                let io =
                    |e: std::io::Error| corrupt(&manifest, &entry.name, &format!("cannot decompress: {e}"));
                let mut decoder = zstd::Decoder::new(plain).map_err(io)?;
                loop {
                    let mut buf = vec![0u8; 256 * 1024];
                    let n = decoder.read(&mut buf).map_err(io)?;
                    if n == 0 {
                        return Ok(());
                    }
                    buf.truncate(n);
                    if tx.blocking_send(bytes::Bytes::from(buf)).is_err() {
                        return Ok(()); // the loader failed; its error is reported
                    }
                }
            })();
            // Read to the end so the hash covers the whole object, then judge it before any decode error:
            // a flipped byte is corruption, not a zstd problem.
            let _ = std::io::copy(&mut raw, &mut std::io::sink());
            raw.check(&manifest, &entry)?;
            decoded
        })
    };
    let mut failure = None;
    while let Some(chunk) = rx.recv().await {
        progress.bytes(chunk.len() as u64);
        if let Err(e) = sink.send(chunk).await {
            failure = Some(Error::db(e));
            break;
        }
    }
    drop(rx);
    let read = reader.await.expect("the object reader does not panic");
    // Corruption wins over the database error it caused.
    read?;
    if let Some(e) = failure {
        return Err(e);
    }
    sink.as_mut().finish().await.map_err(Error::db)?;
    Ok(())
}

/// Hashes and counts what passes through.
pub(crate) struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    size: u64,
}

impl<R: Read> HashingReader<R> {
    pub(crate) fn new(inner: R) -> Self {
        Self { inner, hasher: Sha256::new(), size: 0 }
    }

    /// Compares with the manifest entry.
    pub(crate) fn check(self, manifest: &Manifest, entry: &Object) -> Result<()> {
        let sha = hex::encode(self.hasher.finalize());
        if self.size != entry.size {
            return Err(corrupt(
                manifest,
                &entry.name,
                &format!("{} bytes stored, {} in the manifest", self.size, entry.size),
            ));
        }
        if sha != entry.sha256 {
            return Err(corrupt(
                manifest,
                &entry.name,
                &format!("SHA-256 {sha}, {} in the manifest", entry.sha256),
            ));
        }
        Ok(())
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }
}
