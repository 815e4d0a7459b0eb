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
    /// Granted locks in this database, by mode.
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
    pub checkpoints_timed: i64,
    pub checkpoints_requested: i64,
    /// `None` when pg_stat_statements is not installed (or not loaded) in this database ...
    pub statements: Option<StatementStats>,
    /// ... and then what to do about it.
    pub statements_note: Option<String>,
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
    /// Entries evicted because `pg_stat_statements.max` was reached (PostgreSQL 14+).
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

/// Collects one database's statistics; statements are ranked through `tracker` (one per database, kept
/// between collections).
#[derive(Debug, Default)]
pub struct Monitor {
    tracker: Tracker,
    texts: HashMap<i64, String>,
}

impl Monitor {
    pub fn new() -> Self {
        Self::default()
    }

    /// One collection. `top_n` bounds the tables, indexes and statements reported.
    pub async fn collect(&mut self, client: &Client, top_n: usize) -> Result<Snapshot, CollectError> {
        let q = |e: tokio_postgres::Error| CollectError::Query(prodready_stdx::error::chain(&e));
        let top = i64::try_from(top_n).unwrap_or(i64::MAX);
        let row = client
            .query_one(
                "SELECT current_user::text,
                        pg_has_role(current_user, 'pg_monitor', 'USAGE')
                            OR (SELECT rolsuper FROM pg_roles WHERE rolname = current_user),
                        current_setting('server_version_num')::int,
                        pg_is_in_recovery(),
                        current_setting('max_connections')::bigint,
                        (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend')",
                &[],
            )
            .await
            .map_err(q)?;
        let role: String = row.get(0);
        if !row.get::<_, bool>(1) {
            return Err(CollectError::Privilege { role });
        }
        let mut s = Snapshot {
            server_version_num: row.get(2),
            in_recovery: row.get(3),
            max_connections: row.get(4),
            server_connections: row.get(5),
            ..Snapshot::default()
        };
        s.connections = client
            .query(
                "SELECT coalesce(state, 'unknown'), count(*) FROM pg_stat_activity
                 WHERE datname = current_database() AND backend_type = 'client backend'
                 GROUP BY 1 ORDER BY 1",
                &[],
            )
            .await
            .map_err(q)?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        let row = client
            .query_one(
                "SELECT coalesce(max(extract(epoch FROM now() - xact_start)) FILTER (WHERE xact_start IS NOT NULL
                            AND pid <> pg_backend_pid()), 0)::float8,
                        coalesce(max(extract(epoch FROM now() - state_change))
                            FILTER (WHERE state IN ('idle in transaction', 'idle in transaction (aborted)')), 0)::float8,
                        count(*) FILTER (WHERE wait_event_type = 'Lock')
                 FROM pg_stat_activity WHERE datname = current_database() AND backend_type = 'client backend'",
                &[],
            )
            .await
            .map_err(q)?;
        s.longest_transaction_seconds = row.get(0);
        s.longest_idle_in_transaction_seconds = row.get(1);
        s.waiting_sessions = row.get(2);
        s.locks = client
            .query(
                "SELECT mode, count(*) FROM pg_locks
                 WHERE granted AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
                 GROUP BY mode ORDER BY mode",
                &[],
            )
            .await
            .map_err(q)?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        let row = client
            .query_one(
                "SELECT xact_commit, xact_rollback, deadlocks, blks_hit, blks_read, temp_files, temp_bytes,
                        pg_database_size(datid)
                 FROM pg_stat_database WHERE datname = current_database()",
                &[],
            )
            .await
            .map_err(q)?;
        s.database = DatabaseStats {
            xact_commit: row.get(0),
            xact_rollback: row.get(1),
            deadlocks: row.get(2),
            blocks_hit: row.get(3),
            blocks_read: row.get(4),
            temp_files: row.get(5),
            temp_bytes: row.get(6),
            size_bytes: row.get(7),
        };
        let epoch = |c: &str| format!("extract(epoch FROM {c})::float8");
        s.tables = client
            .query(
                &format!(
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
                ),
                &[&top],
            )
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
        s.indexes = client
            .query(
                "SELECT schemaname::text, relname::text, indexrelname::text, pg_relation_size(indexrelid)
                 FROM pg_stat_user_indexes ORDER BY 4 DESC, indexrelid LIMIT $1",
                &[&top],
            )
            .await
            .map_err(q)?
            .iter()
            .map(|r| IndexStats { schema: r.get(0), table: r.get(1), index: r.get(2), size_bytes: r.get(3) })
            .collect();
        if s.in_recovery {
            s.replay_delay_seconds = client
                .query_one(
                    "SELECT CASE WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0
                            ELSE extract(epoch FROM now() - pg_last_xact_replay_timestamp()) END::float8",
                    &[],
                )
                .await
                .map_err(q)?
                .get(0);
        } else {
            s.replicas = client
                .query(
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
            s.wal_bytes = Some(
                client
                    .query_one("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::float8", &[])
                    .await
                    .map_err(q)?
                    .get(0),
            );
        }
        let current = if s.in_recovery { "pg_last_wal_replay_lsn()" } else { "pg_current_wal_lsn()" };
        s.slots = client
            .query(
                &format!(
                    "SELECT slot_name::text, slot_type, active,
                            coalesce(pg_wal_lsn_diff({current}, restart_lsn), 0)::float8
                     FROM pg_replication_slots ORDER BY 1"
                ),
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
        let checkpoints = if s.server_version_num >= 170_000 {
            "SELECT num_timed, num_requested FROM pg_stat_checkpointer"
        } else {
            "SELECT checkpoints_timed, checkpoints_req FROM pg_stat_bgwriter"
        };
        let row = client.query_one(checkpoints, &[]).await.map_err(q)?;
        s.checkpoints_timed = row.get(0);
        s.checkpoints_requested = row.get(1);
        match self.statements(client, top_n, s.server_version_num).await? {
            Ok(statements) => s.statements = Some(statements),
            Err(note) => s.statements_note = Some(note),
        }
        Ok(s)
    }

    async fn statements(
        &mut self,
        client: &Client,
        top_n: usize,
        version: i32,
    ) -> Result<Result<StatementStats, String>, CollectError> {
        let q = |e: tokio_postgres::Error| CollectError::Query(prodready_stdx::error::chain(&e));
        let Some(schema) = statements_schema(client).await? else {
            return Ok(Err(NOT_INSTALLED.to_owned()));
        };
        // Without the text (it lives in a file the server reads on every call that asks for it).
        let rows = match client
            .query(
                &format!(
                    "SELECT queryid, sum(calls)::float8, (sum(total_exec_time) / 1000)::float8, sum(rows)::float8
                     FROM {schema}.pg_stat_statements(false)
                     WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
                       AND queryid IS NOT NULL
                     GROUP BY queryid"
                ),
                &[],
            )
            .await
        {
            Ok(rows) => rows,
            Err(e) => return not_loaded(&e),
        };
        let rows: Vec<(i64, Totals)> = rows
            .iter()
            .map(|r| (r.get(0), Totals { calls: r.get(1), exec_seconds: r.get(2), rows: r.get(3) }))
            .collect();
        let Ranked { top, other, tracked } = self.tracker.update(&rows, top_n);
        let missing: Vec<i64> =
            top.iter().map(|(id, _)| *id).filter(|id| !self.texts.contains_key(id)).collect();
        if !missing.is_empty() {
            let texts = client
                .query(
                    &format!(
                        "SELECT DISTINCT ON (queryid) queryid, query FROM {schema}.pg_stat_statements(true)
                         WHERE queryid = ANY($1)"
                    ),
                    &[&missing],
                )
                .await
                .map_err(q)?;
            for row in texts {
                let text: Option<String> = row.get(1);
                self.texts.insert(row.get(0), normalize(text.as_deref().unwrap_or("<unknown>"), QUERY_CHARS));
            }
        }
        self.texts.retain(|id, _| rows.iter().any(|(r, _)| r == id));
        let deallocations = if version >= 140_000 {
            client
                .query_opt(&format!("SELECT dealloc FROM {schema}.pg_stat_statements_info"), &[])
                .await
                .ok()
                .flatten()
                .map(|r| r.get(0))
        } else {
            None
        };
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
    let Some(schema) = statements_schema(client).await? else {
        return Ok(Err(NOT_INSTALLED.to_owned()));
    };
    let order = match by {
        TopBy::Total => "sum(total_exec_time)",
        TopBy::Mean => "sum(total_exec_time) / nullif(sum(calls), 0)",
        TopBy::Calls => "sum(calls)",
    };
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = client
        .query(
            &format!(
                "SELECT queryid, min(query), sum(calls)::float8, (sum(total_exec_time) / 1000)::float8,
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

/// The quoted schema pg_stat_statements is installed in, if it is.
async fn statements_schema(client: &Client) -> Result<Option<String>, CollectError> {
    let row = client
        .query_opt(
            "SELECT n.nspname::text FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
             WHERE e.extname = 'pg_stat_statements'",
            &[],
        )
        .await
        .map_err(|e| CollectError::Query(prodready_stdx::error::chain(&e)))?;
    Ok(row.map(|r| crate::ident(&r.get::<_, String>(0))))
}

/// A failed read of pg_stat_statements: a note when the library is not preloaded, else an error.
fn not_loaded<T>(e: &tokio_postgres::Error) -> Result<Result<T, String>, CollectError> {
    let message = prodready_stdx::error::chain(e);
    if message.contains("must be loaded via") || message.contains("shared_preload_libraries") {
        return Ok(Err(
            "pg_stat_statements is installed but not loaded: add it to shared_preload_libraries and \
                       restart the server"
                .to_owned(),
        ));
    }
    Err(CollectError::Query(message))
}
