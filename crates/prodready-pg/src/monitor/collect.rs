//! One pass over the statistics views of one database, with the least privilege (`pg_monitor`).

use std::collections::HashMap;

use tokio_postgres::Client;

use super::statements::{Ranked, Totals, Tracker, normalize};

/// Characters of a statement's text kept in labels and tables.
pub const QUERY_CHARS: usize = 160;

/// What one collection saw. Counters are the server's (cumulative); timestamps are Unix seconds.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct Snapshot {
    pub server_version_num: i32,
    pub in_recovery: bool,
    pub max_connections: i64,
    /// Sessions connected to this database, by state (`active`, `idle`, `idle in transaction`...).
    pub connections: Vec<(String, i64)>,
    /// Sessions connected to the whole server.
    pub server_connections: i64,
    /// The oldest open transaction of this database (seconds), 0 when none.
    pub longest_transaction_seconds: f64,
    /// The longest a session of this database has sat idle inside a transaction (seconds), 0 when none.
    pub longest_idle_in_transaction_seconds: f64,
    /// Granted locks in this database, by mode (the collecting session's own left out).
    pub locks: Vec<(String, i64)>,
    /// Sessions of this database waiting for a lock.
    pub waiting_sessions: i64,
    pub database: DatabaseStats,
    /// The largest tables, and the ones with the most dead tuples (at most `top_n` each).
    pub tables: Vec<TableStats>,
    pub indexes: Vec<IndexStats>,
    /// Standbys streaming from this server.
    pub replicas: Vec<ReplicaStats>,
    /// On a standby: seconds since the last replayed transaction's commit on the primary.
    pub replay_delay_seconds: Option<f64>,
    pub slots: Vec<SlotStats>,
    /// WAL written since the cluster was created (bytes), on a primary.
    pub wal_bytes: Option<f64>,
    /// WAL archiving, on a primary with `archive_mode` on.
    pub archiving: Option<Archiving>,
    pub checkpoints_timed: i64,
    pub checkpoints_requested: i64,
    /// `None` when pg_stat_statements is not installed (or not loaded) in this database ...
    pub statements: Option<StatementStats>,
    /// ... and then what to do about it.
    pub statements_note: Option<String>,
}

/// PostgreSQL's side of WAL archiving. With `archive_timeout` between 1 s and an hour and no segment
/// waiting, everything of value written more than `archive_timeout` ago has been archived: PostgreSQL
/// switches segments after any write, and a segment the archiver has not taken waits as ready. (What
/// an idle server still writes, a running-transactions snapshot, never triggers a switch, and is
/// nothing a recovery needs.)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Archiving {
    /// Finished segments waiting for `archive_command` (`.ready` in pg_wal/archive_status).
    pub ready_segments: i64,
    /// `archive_timeout` in seconds (0: a segment is switched only when full).
    pub timeout_seconds: i64,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct DatabaseStats {
    pub xact_commit: i64,
    pub xact_rollback: i64,
    pub deadlocks: i64,
    pub blocks_hit: i64,
    pub blocks_read: i64,
    pub temp_files: i64,
    pub temp_bytes: i64,
    pub size_bytes: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TableStats {
    pub schema: String,
    pub table: String,
    pub size_bytes: i64,
    pub live_tuples: i64,
    pub dead_tuples: i64,
    pub last_vacuum: Option<f64>,
    pub last_autovacuum: Option<f64>,
    pub last_analyze: Option<f64>,
    pub last_autoanalyze: Option<f64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct IndexStats {
    pub schema: String,
    pub table: String,
    pub index: String,
    pub size_bytes: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ReplicaStats {
    pub application_name: String,
    pub client_addr: String,
    pub state: String,
    /// WAL the standby has not replayed yet (bytes).
    pub lag_bytes: f64,
    /// How long replaying lags behind (seconds); 0 once caught up.
    pub lag_seconds: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SlotStats {
    pub name: String,
    pub slot_type: String,
    pub active: bool,
    /// WAL kept for this slot (bytes).
    pub retained_wal_bytes: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct StatementStats {
    /// The top statements by total time, with their text (literals masked).
    pub top: Vec<Statement>,
    /// Everything else.
    pub other: Totals,
    /// Statements the server tracks for this database.
    pub tracked: usize,
    /// Entries evicted because `pg_stat_statements.max` was reached (extension 1.9+), counted across
    /// resets (the server's count restarts at `pg_stat_statements_reset()`; this one never goes down).
    pub deallocations: Option<i64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Statement {
    pub queryid: i64,
    pub query: String,
    pub totals: Totals,
}

impl Statement {
    pub fn mean_seconds(&self) -> f64 {
        if self.totals.calls > 0.0 { self.totals.exec_seconds / self.totals.calls } else { 0.0 }
    }
}

/// How a collection failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CollectError {
    #[error(
        "role {role} may not read other sessions' statistics: GRANT pg_monitor TO {role} (or run as a role \
         that has it)"
    )]
    Privilege { role: String },
    #[error("{0}")]
    Query(String),
}

/// The families a collection reads beyond the always-on ones (sessions, transactions, locks, database,
/// replication, slots, WAL, checkpoints). Each costs the server work that grows with the database: turn
/// off what nobody looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Families {
    /// Size, live and dead tuples and the last (auto)vacuum/analyze of the largest tables and of those
    /// with the most dead tuples (`pg_total_relation_size` of every table on each collection).
    pub tables: bool,
    /// Size of the largest indexes.
    pub indexes: bool,
    /// pg_stat_statements, when the extension is there.
    pub statements: bool,
}

impl Default for Families {
    fn default() -> Self {
        Self { tables: true, indexes: true, statements: true }
    }
}

impl Families {
    /// Every family.
    pub fn all() -> Self {
        Self::default()
    }
}

type Params<'a> = &'a [&'a (dyn tokio_postgres::types::ToSql + Sync)];

/// Collects one database's statistics; statements are ranked through `tracker` (one per database, kept
/// between collections).
///
/// Its queries are prepared once and reused on later collections (no parsing or planning per scrape).
/// Given another client, it notices that the server does not know them and prepares them again.
#[derive(Debug, Default)]
pub struct Monitor {
    tracker: Tracker,
    texts: HashMap<i64, String>,
    prepared: HashMap<String, tokio_postgres::Statement>,
    /// `server_version_num`, read on the first collection (it picks the checkpoint view's name).
    version: Option<i32>,
}

impl Monitor {
    pub fn new() -> Self {
        Self::default()
    }

    /// Runs `sql` as a statement prepared on an earlier collection, preparing it when there is none or
    /// when the session does not know it (another client, or a reconnection).
    async fn query(
        &mut self,
        client: &Client,
        sql: &str,
        params: Params<'_>,
    ) -> Result<Vec<tokio_postgres::Row>, tokio_postgres::Error> {
        let mut retried = false;
        loop {
            let statement = match self.prepared.get(sql) {
                Some(statement) => statement.clone(),
                None => {
                    let statement = client.prepare(sql).await?;
                    self.prepared.insert(sql.to_owned(), statement.clone());
                    statement
                }
            };
            match client.query(&statement, params).await {
                Err(e)
                    if !retried
                        && e.code() == Some(&tokio_postgres::error::SqlState::INVALID_SQL_STATEMENT_NAME) =>
                {
                    self.prepared.clear();
                    retried = true;
                }
                result => return result,
            }
        }
    }

    /// One collection of every family. `top_n` bounds the tables, indexes and statements reported.
    pub async fn collect(&mut self, client: &Client, top_n: usize) -> Result<Snapshot, CollectError> {
        self.collect_families(client, top_n, Families::all()).await
    }

    /// One collection of the always-on families and those `families` turns on.
    pub async fn collect_families(
        &mut self,
        client: &Client,
        top_n: usize,
        families: Families,
    ) -> Result<Snapshot, CollectError> {
        let result = self.collect_inner(client, top_n, families).await;
        if result.is_err() {
            // The next collection starts afresh: it may be on another session, or another server.
            self.prepared.clear();
            self.version = None;
        }
        result
    }

    async fn collect_inner(
        &mut self,
        client: &Client,
        top_n: usize,
        families: Families,
    ) -> Result<Snapshot, CollectError> {
        let q = |e: tokio_postgres::Error| CollectError::Query(prodready_stdx::error::chain(&e));
        let top = i64::try_from(top_n).unwrap_or(i64::MAX);
        // Everything that is one row, or a short list, in one statement: one round trip, one snapshot
        // of the sessions (the server reads them once per transaction).
        let version: i32 = match self.version {
            Some(version) => version,
            None => {
                let rows = self.query(client, "SELECT current_setting('server_version_num')::int", &[]).await;
                let version = rows.map_err(q)?.first().map_or(0, |r| r.get(0));
                self.version = Some(version);
                version
            }
        };
        // archive_timeout where this server archives; the waiting segments are counted once the
        // privilege check below has passed (pg_ls_archive_statusdir() refuses a role without pg_monitor
        // even in a branch that is never taken).
        let archiver = if version >= 120_000 {
            "CASE WHEN NOT pg_is_in_recovery() AND current_setting('archive_mode') <> 'off'
                 THEN (SELECT setting::bigint FROM pg_settings WHERE name = 'archive_timeout') END"
        } else {
            "NULL::bigint"
        };
        let checkpoints = if version >= 170_000 {
            "SELECT num_timed AS timed, num_requested AS requested FROM pg_stat_checkpointer"
        } else {
            "SELECT checkpoints_timed AS timed, checkpoints_req AS requested FROM pg_stat_bgwriter"
        };
        let sql = format!(
            "SELECT current_user::text,
                    pg_has_role(current_user, 'pg_monitor', 'USAGE')
                        OR (SELECT rolsuper FROM pg_roles WHERE rolname = current_user),
                    current_setting('server_version_num')::int,
                    pg_is_in_recovery(),
                    current_setting('max_connections')::bigint,
                    (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'),
                    act.longest, act.idle, act.waiting,
                    conn.states, conn.counts, lk.modes, lk.counts,
                    d.xact_commit, d.xact_rollback, d.deadlocks, d.blks_hit, d.blks_read, d.temp_files,
                    d.temp_bytes, pg_database_size(d.datid),
                    cp.timed, cp.requested,
                    CASE WHEN NOT pg_is_in_recovery()
                         THEN pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::float8 END,
                    CASE WHEN pg_is_in_recovery() THEN
                        CASE WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0
                             ELSE extract(epoch FROM now() - pg_last_xact_replay_timestamp()) END::float8
                    END,
                    (SELECT ARRAY[n.nspname::text, e.extversion::text]
                     FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
                     WHERE e.extname = 'pg_stat_statements'),
                    {archiver}
             FROM pg_stat_database d
             CROSS JOIN LATERAL (
                 SELECT coalesce(max(extract(epoch FROM now() - xact_start))
                            FILTER (WHERE xact_start IS NOT NULL AND pid <> pg_backend_pid()), 0)::float8 AS longest,
                        coalesce(max(extract(epoch FROM now() - state_change))
                            FILTER (WHERE state IN ('idle in transaction', 'idle in transaction (aborted)')), 0)::float8
                            AS idle,
                        count(*) FILTER (WHERE wait_event_type = 'Lock') AS waiting
                 FROM pg_stat_activity WHERE datname = current_database() AND backend_type = 'client backend') act
             CROSS JOIN LATERAL (
                 SELECT array_agg(state ORDER BY state) AS states, array_agg(n ORDER BY state) AS counts
                 FROM (SELECT coalesce(state, 'unknown') AS state, count(*) AS n FROM pg_stat_activity
                       WHERE datname = current_database() AND backend_type = 'client backend' GROUP BY 1) x) conn
             CROSS JOIN LATERAL (
                 SELECT array_agg(mode ORDER BY mode) AS modes, array_agg(n ORDER BY mode) AS counts
                 FROM (SELECT mode, count(*) AS n FROM pg_locks
                       WHERE granted AND database = d.datid AND pid <> pg_backend_pid()
                       GROUP BY mode) x) lk
             CROSS JOIN ({checkpoints}) cp
             WHERE d.datname = current_database()"
        );
        let rows = self.query(client, &sql, &[]).await.map_err(q)?;
        let row = rows.first().ok_or_else(|| {
            CollectError::Query("pg_stat_database has no row for the current database".to_owned())
        })?;
        let role: String = row.get(0);
        if !row.get::<_, bool>(1) {
            return Err(CollectError::Privilege { role });
        }
        let pairs = |names: usize, counts: usize| -> Vec<(String, i64)> {
            let names: Vec<String> = row.get::<_, Option<Vec<String>>>(names).unwrap_or_default();
            let counts: Vec<i64> = row.get::<_, Option<Vec<i64>>>(counts).unwrap_or_default();
            names.into_iter().zip(counts).collect()
        };
        let mut s = Snapshot {
            server_version_num: row.get(2),
            in_recovery: row.get(3),
            max_connections: row.get(4),
            server_connections: row.get(5),
            longest_transaction_seconds: row.get(6),
            longest_idle_in_transaction_seconds: row.get(7),
            waiting_sessions: row.get(8),
            connections: pairs(9, 10),
            locks: pairs(11, 12),
            database: DatabaseStats {
                xact_commit: row.get(13),
                xact_rollback: row.get(14),
                deadlocks: row.get(15),
                blocks_hit: row.get(16),
                blocks_read: row.get(17),
                temp_files: row.get(18),
                temp_bytes: row.get(19),
                size_bytes: row.get(20),
            },
            checkpoints_timed: row.get(21),
            checkpoints_requested: row.get(22),
            wal_bytes: row.get(23),
            replay_delay_seconds: row.get(24),
            ..Snapshot::default()
        };
        let statements_schema: Option<Statements> = row.get::<_, Option<Vec<String>>>(25).and_then(|v| {
            let [schema, version] = <[String; 2]>::try_from(v).ok()?;
            Some(Statements::new(&crate::ident(&schema), &version))
        });
        if let Some(timeout_seconds) = row.get::<_, Option<i64>>(26) {
            let sql = "SELECT count(*) FROM pg_ls_archive_statusdir() WHERE name ~ '^[0-9A-F]{24}[.]ready$'";
            let rows = self.query(client, sql, &[]).await.map_err(q)?;
            let ready_segments = rows.first().map_or(0, |r| r.get(0));
            s.archiving = Some(Archiving { ready_segments, timeout_seconds });
        }
        if families.tables {
            let epoch = |c: &str| format!("extract(epoch FROM {c})::float8");
            let sql = format!(
                "WITH t AS (SELECT schemaname::text AS s, relname::text AS r, relid,
                                   pg_total_relation_size(relid) AS size, n_live_tup, n_dead_tup,
                                   {}, {}, {}, {}
                            FROM pg_stat_user_tables)
                 SELECT * FROM t WHERE relid IN (
                     (SELECT relid FROM t ORDER BY size DESC, relid LIMIT $1)
                     UNION (SELECT relid FROM t WHERE n_dead_tup > 0 ORDER BY n_dead_tup DESC, relid LIMIT $1))
                 ORDER BY s, r",
                epoch("last_vacuum"),
                epoch("last_autovacuum"),
                epoch("last_analyze"),
                epoch("last_autoanalyze")
            );
            s.tables = self
                .query(client, &sql, &[&top])
                .await
                .map_err(q)?
                .iter()
                .map(|r| TableStats {
                    schema: r.get(0),
                    table: r.get(1),
                    size_bytes: r.get(3),
                    live_tuples: r.get(4),
                    dead_tuples: r.get(5),
                    last_vacuum: r.get(6),
                    last_autovacuum: r.get(7),
                    last_analyze: r.get(8),
                    last_autoanalyze: r.get(9),
                })
                .collect();
        }
        if families.indexes {
            s.indexes = self
                .query(
                    client,
                    "SELECT schemaname::text, relname::text, indexrelname::text, pg_relation_size(indexrelid)
                     FROM pg_stat_user_indexes ORDER BY 4 DESC, indexrelid LIMIT $1",
                    &[&top],
                )
                .await
                .map_err(q)?
                .iter()
                .map(|r| IndexStats {
                    schema: r.get(0),
                    table: r.get(1),
                    index: r.get(2),
                    size_bytes: r.get(3),
                })
                .collect();
        }
        if !s.in_recovery {
            s.replicas = self
                .query(
                    client,
                    "SELECT coalesce(application_name, ''), coalesce(host(client_addr), 'local'), coalesce(state, ''),
                            coalesce(pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn), 0)::float8,
                            coalesce(extract(epoch FROM replay_lag), 0)::float8
                     FROM pg_stat_replication ORDER BY 1, 2",
                    &[],
                )
                .await
                .map_err(q)?
                .iter()
                .map(|r| ReplicaStats {
                    application_name: r.get(0),
                    client_addr: r.get(1),
                    state: r.get(2),
                    lag_bytes: r.get(3),
                    lag_seconds: r.get(4),
                })
                .collect();
        }
        s.slots = self
            .query(
                client,
                "SELECT slot_name::text, slot_type, active,
                        coalesce(pg_wal_lsn_diff(CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn()
                                                      ELSE pg_current_wal_lsn() END, restart_lsn), 0)::float8
                 FROM pg_replication_slots ORDER BY 1",
                &[],
            )
            .await
            .map_err(q)?
            .iter()
            .map(|r| SlotStats {
                name: r.get(0),
                slot_type: r.get(1),
                active: r.get(2),
                retained_wal_bytes: r.get(3),
            })
            .collect();
        if families.statements {
            let statements = match statements_schema {
                None => Err(NOT_INSTALLED.to_owned()),
                Some(columns) => self.statements(client, top_n, &columns).await?,
            };
            match statements {
                Ok(statements) => s.statements = Some(statements),
                Err(note) => s.statements_note = Some(note),
            }
        }
        Ok(s)
    }

    async fn statements(
        &mut self,
        client: &Client,
        top_n: usize,
        ext: &Statements,
    ) -> Result<Result<StatementStats, String>, CollectError> {
        let (schema, time) = (&ext.schema, ext.time);
        let q = |e: tokio_postgres::Error| CollectError::Query(prodready_stdx::error::chain(&e));
        // Without the text (it lives in a file the server reads on every call that asks for it). Sums in
        // float8: numeric sums of 10,000 entries cost the server more than the read itself.
        let deallocations = if ext.info {
            format!("(SELECT dealloc FROM {schema}.pg_stat_statements_info)")
        } else {
            "NULL::bigint".to_owned()
        };
        // One row per entry (user and, from 1.9, top-level flag): the tracker follows each on its own.
        let entry = if ext.info { "userid::int8 * 2 + toplevel::int" } else { "userid::int8 * 2" };
        let sql = format!(
            "SELECT queryid, {entry}, calls::float8, {time} / 1000, rows::float8, {deallocations}
             FROM {schema}.pg_stat_statements(false)
             WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
               AND queryid IS NOT NULL"
        );
        let rows = match self.query(client, &sql, &[]).await {
            Ok(rows) => rows,
            Err(e) => return not_loaded(&e),
        };
        let deallocations: Option<i64> =
            rows.first().and_then(|r| r.get::<_, Option<i64>>(5)).map(|n| self.tracker.deallocations(n));
        let rows: Vec<(i64, i64, Totals)> = rows
            .iter()
            .map(|r| (r.get(0), r.get(1), Totals { calls: r.get(2), exec_seconds: r.get(3), rows: r.get(4) }))
            .collect();
        let Ranked { top, other, tracked } = self.tracker.update(&rows, top_n);
        let missing: Vec<i64> =
            top.iter().map(|(id, _)| *id).filter(|id| !self.texts.contains_key(id)).collect();
        if !missing.is_empty() {
            let sql = format!(
                "SELECT DISTINCT ON (queryid) queryid, query FROM {schema}.pg_stat_statements(true)
                 WHERE queryid = ANY($1)"
            );
            let texts = self.query(client, &sql, &[&missing]).await.map_err(q)?;
            for row in texts {
                let text: Option<String> = row.get(1);
                self.texts.insert(row.get(0), normalize(text.as_deref().unwrap_or("<unknown>"), QUERY_CHARS));
            }
        }
        self.texts.retain(|id, _| rows.iter().any(|(r, _, _)| r == id));
        let top = top
            .into_iter()
            .map(|(queryid, totals)| Statement {
                queryid,
                query: self.texts.get(&queryid).cloned().unwrap_or_default(),
                totals,
            })
            .collect();
        Ok(Ok(StatementStats { top, other, tracked, deallocations }))
    }
}

/// How [`top`] orders statements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TopBy {
    /// Total execution time.
    Total,
    /// Mean execution time.
    Mean,
    /// Calls.
    Calls,
}

/// The `limit` statements of the current database that cost the most, by `by`, with their text (literals
/// masked). `Ok(Err(note))` when pg_stat_statements is not there, saying how to add it.
pub async fn top(
    client: &Client,
    by: TopBy,
    limit: usize,
) -> Result<Result<Vec<Statement>, String>, CollectError> {
    let q = |e: tokio_postgres::Error| CollectError::Query(prodready_stdx::error::chain(&e));
    let role = client
        .query_one(
            "SELECT current_user::text, pg_has_role(current_user, 'pg_read_all_stats', 'USAGE')
                 OR (SELECT rolsuper FROM pg_roles WHERE rolname = current_user)",
            &[],
        )
        .await
        .map_err(q)?;
    if !role.get::<_, bool>(1) {
        return Err(CollectError::Privilege { role: role.get(0) });
    }
    let Some(ext) = statements_schema(client).await? else {
        return Ok(Err(NOT_INSTALLED.to_owned()));
    };
    let (schema, time) = (&ext.schema, ext.time);
    let order = match by {
        TopBy::Total => format!("sum({time})"),
        TopBy::Mean => format!("sum({time}) / nullif(sum(calls), 0)"),
        TopBy::Calls => "sum(calls)".to_owned(),
    };
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = client
        .query(
            &format!(
                "SELECT queryid, min(query), sum(calls)::float8, (sum({time}) / 1000)::float8,
                        sum(rows)::float8
                 FROM {schema}.pg_stat_statements(true)
                 WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
                   AND queryid IS NOT NULL
                 GROUP BY queryid ORDER BY {order} DESC NULLS LAST, queryid LIMIT $1"
            ),
            &[&limit],
        )
        .await;
    let rows = match rows {
        Ok(rows) => rows,
        Err(e) => return not_loaded(&e),
    };
    Ok(Ok(rows
        .iter()
        .map(|r| Statement {
            queryid: r.get(0),
            query: normalize(r.get::<_, Option<String>>(1).as_deref().unwrap_or("<unknown>"), QUERY_CHARS),
            totals: Totals { calls: r.get(2), exec_seconds: r.get(3), rows: r.get(4) },
        })
        .collect()))
}

const NOT_INSTALLED: &str = "pg_stat_statements is not installed in this database: add it to \
                             shared_preload_libraries and run CREATE EXTENSION pg_stat_statements";

/// Where pg_stat_statements is installed and what its installed version offers. The columns follow the
/// extension's version, not the server's: a cluster upgraded without `ALTER EXTENSION ... UPDATE` keeps
/// the old ones.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Statements {
    /// The quoted schema.
    schema: String,
    /// The total execution time column (ms): `total_exec_time` from 1.8, `total_time` before.
    time: &'static str,
    /// Whether `pg_stat_statements_info` (deallocations) exists: from 1.9.
    info: bool,
}

impl Statements {
    fn new(schema: &str, version: &str) -> Self {
        let mut parts = version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
        let version = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
        Self {
            schema: schema.to_owned(),
            time: if version >= (1, 8) { "total_exec_time" } else { "total_time" },
            info: version >= (1, 9),
        }
    }
}

/// pg_stat_statements' schema and version, if it is installed.
async fn statements_schema(client: &Client) -> Result<Option<Statements>, CollectError> {
    let row = client
        .query_opt(
            "SELECT n.nspname::text, e.extversion::text FROM pg_extension e
             JOIN pg_namespace n ON n.oid = e.extnamespace
             WHERE e.extname = 'pg_stat_statements'",
            &[],
        )
        .await
        .map_err(|e| CollectError::Query(prodready_stdx::error::chain(&e)))?;
    Ok(row.map(|r| Statements::new(&crate::ident(&r.get::<_, String>(0)), &r.get::<_, String>(1))))
}

/// A failed read of pg_stat_statements: a note, never an error, so the rest of the database's metrics
/// are still collected.
fn not_loaded<T>(e: &tokio_postgres::Error) -> Result<Result<T, String>, CollectError> {
    let message = prodready_stdx::error::chain(e);
    if message.contains("must be loaded via") || message.contains("shared_preload_libraries") {
        return Ok(Err(
            "pg_stat_statements is installed but not loaded: add it to shared_preload_libraries and \
                       restart the server"
                .to_owned(),
        ));
    }
    Ok(Err(format!("pg_stat_statements cannot be read: {message}")))
}

#[cfg(test)]
mod tests {
    /// The columns come from the installed extension's version (a server upgraded without `ALTER
    /// EXTENSION pg_stat_statements UPDATE` keeps the old ones).
    #[test]
    fn statement_columns_follow_the_extension_version() {
        let check = |version: &str, time: &str, info: bool| {
            let s = super::Statements::new("public", version);
            assert_eq!((s.time, s.info), (time, info), "{version}");
        };
        check("1.6", "total_time", false);
        check("1.7", "total_time", false);
        check("1.8", "total_exec_time", false);
        check("1.9", "total_exec_time", true);
        check("1.10", "total_exec_time", true);
        check("1.11", "total_exec_time", true);
    }
}
