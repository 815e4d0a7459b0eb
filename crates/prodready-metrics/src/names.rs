//! Metric names that cross crate boundaries: the exporters that emit them and the rules that watch them
//! read them from here.

/// HTTP requests served, by `method`, `route` (the matched route, never the raw path) and `status`
/// (`2xx`, `4xx`, `5xx`, ...).
pub const HTTP_REQUESTS_TOTAL: &str = "http_requests_total";
/// HTTP request latency histogram (seconds), same labels.
pub const HTTP_REQUEST_DURATION_SECONDS: &str = "http_request_duration_seconds";

/// Unix time of the last successful backup.
pub const BACKUP_LAST_SUCCESS: &str = "prodready_backup_last_success_timestamp_seconds";
/// Unix time of the last successful restore verification.
pub const BACKUP_LAST_VERIFY_SUCCESS: &str = "prodready_backup_last_verify_success_timestamp_seconds";
/// 1 when the last backup run succeeded, 0 when it failed.
pub const BACKUP_LAST_RUN_SUCCESS: &str = "prodready_backup_last_run_success";
/// 1 when the last verification passed, 0 when it failed.
pub const BACKUP_LAST_VERIFY_RUN_SUCCESS: &str = "prodready_backup_last_verify_run_success";
/// Duration of the last backup run (seconds).
pub const BACKUP_DURATION_SECONDS: &str = "prodready_backup_last_duration_seconds";
/// Stored size of the last backup (bytes).
pub const BACKUP_BYTES: &str = "prodready_backup_last_size_bytes";
/// Committed backups in the store whose manifest cannot be read (bit rot, a bad edit): left out of every
/// listing, never pruned.
pub const BACKUP_CORRUPT: &str = "prodready_backup_corrupt_backups";
/// Unix time of the newest successful recovery drill (point-in-time recovery from a base backup and the
/// WAL archive, started and checked), by `cluster` (the system identifier).
pub const BACKUP_LAST_DRILL_SUCCESS: &str = "prodready_backup_last_recovery_drill_success_timestamp_seconds";
/// 1 when the last recovery drill passed, 0 when it failed, by `cluster`.
pub const BACKUP_LAST_DRILL_RUN_SUCCESS: &str = "prodready_backup_last_recovery_drill_run_success";

/// `backup wal-push`: Unix time of the last successful push (PostgreSQL's archive_command succeeded).
pub const WAL_PUSH_LAST_SUCCESS: &str = "prodready_wal_push_last_success_timestamp_seconds";
/// `backup wal-push`: Unix time of the last failed push.
pub const WAL_PUSH_LAST_FAILURE: &str = "prodready_wal_push_last_failure_timestamp_seconds";
/// `backup wal-push`: files archived (calls that succeeded).
pub const WAL_PUSH_FILES_TOTAL: &str = "prodready_wal_push_files_total";
/// `backup wal-push`: calls that failed.
pub const WAL_PUSH_FAILURES_TOTAL: &str = "prodready_wal_push_failures_total";
/// Unix time the newest file of the WAL archive arrived in the store (the recovery point reached).
pub const WAL_ARCHIVE_NEWEST: &str = "prodready_wal_archive_newest_timestamp_seconds";
/// Missing segments in the WAL archive (between the first and last of a timeline).
pub const WAL_ARCHIVE_MISSING_SEGMENTS: &str = "prodready_wal_archive_missing_segments";

/// `logs ship`: lines Loki acknowledged.
pub const LOGS_SHIP_LINES_SENT_TOTAL: &str = "prodready_logs_ship_lines_sent_total";
/// `logs ship`: bytes of lines Loki acknowledged.
pub const LOGS_SHIP_BYTES_SENT_TOTAL: &str = "prodready_logs_ship_bytes_sent_total";
/// `logs ship`: lines given up on, by `reason` (`rejected`: the lines of pushes Loki answered 400 or 422;
/// Loki may have kept the valid entries of such a push).
pub const LOGS_SHIP_LINES_DROPPED_TOTAL: &str = "prodready_logs_ship_lines_dropped_total";
/// `logs ship`: files truncated in place before they were read to the end (their unread rest is lost).
pub const LOGS_SHIP_TRUNCATIONS_TOTAL: &str = "prodready_logs_ship_truncations_total";
/// `logs ship`: files found while another file with the same first line was being read.
pub const LOGS_SHIP_FINGERPRINT_COLLISIONS_TOTAL: &str = "prodready_logs_ship_fingerprint_collisions_total";
/// `logs ship`: pushes retried after a 429, a 5xx or a transport error.
pub const LOGS_SHIP_RETRIES_TOTAL: &str = "prodready_logs_ship_retries_total";
/// `logs ship`: lines sent again after a restart because their batch was in flight (possible duplicates).
pub const LOGS_SHIP_LINES_RESENT_TOTAL: &str = "prodready_logs_ship_lines_resent_total";
/// `logs ship`: bytes written to the watched files and not yet acknowledged by Loki.
pub const LOGS_SHIP_LAG_BYTES: &str = "prodready_logs_ship_lag_bytes";
/// `logs ship`: files being followed (open or waiting for a descriptor).
pub const LOGS_SHIP_FILES_WATCHED: &str = "prodready_logs_ship_files_watched";
/// `logs ship`: descriptors held for files being read (at most `max_open_files`).
pub const LOGS_SHIP_FILES_OPEN: &str = "prodready_logs_ship_files_open";
/// `logs ship`: Unix time of the last acknowledged push.
pub const LOGS_SHIP_LAST_SENT: &str = "prodready_logs_ship_last_sent_timestamp_seconds";

/// `daemon`: 1 on the replica that holds the leader lock and runs the jobs, 0 on a standby.
pub const DAEMON_LEADER: &str = "prodready_daemon_leader";
/// `daemon`: Unix time the last finished run of a job started, by `daemon_job` (the job's name: not
/// `job`, which Prometheus sets to the scrape job), shared by every replica.
pub const DAEMON_JOB_LAST_RUN: &str = "prodready_daemon_job_last_run_timestamp_seconds";
/// `daemon`: Unix time the last successful run of a job started, by `daemon_job`.
pub const DAEMON_JOB_LAST_SUCCESS: &str = "prodready_daemon_job_last_success_timestamp_seconds";
/// `daemon`: 1 when the last run of a job that ran to an end succeeded, 0 when it failed or timed out
/// (cancelled and abandoned runs are left out), by `daemon_job`.
pub const DAEMON_JOB_LAST_RUN_SUCCESS: &str = "prodready_daemon_job_last_run_success";
/// `daemon`: duration of the last finished run of a job (seconds), by `daemon_job`.
pub const DAEMON_JOB_LAST_DURATION: &str = "prodready_daemon_job_last_duration_seconds";
/// `daemon`: runs this replica finished, by `daemon_job` and `result` (`success`, `failure`, `timeout`,
/// `cancelled`).
pub const DAEMON_JOB_RUNS_TOTAL: &str = "prodready_daemon_job_runs_total";
/// `daemon`: Unix time of a job's next scheduled run, by `daemon_job`.
pub const DAEMON_JOB_NEXT_RUN: &str = "prodready_daemon_job_next_run_timestamp_seconds";
/// `daemon`: the time between the next two scheduled runs of a job (seconds), by `daemon_job`.
pub const DAEMON_JOB_INTERVAL: &str = "prodready_daemon_job_interval_seconds";
/// `daemon`: Unix time of the second scheduled run after a job's last success (or after the replica
/// began scheduling it, when it never succeeded), by `daemon_job`: past it (and the run's duration), two
/// scheduled runs have come without a success. What "overdue" is measured against, whatever the gaps
/// between runs (a weekday schedule's weekend included).
pub const DAEMON_JOB_OVERDUE_AFTER: &str = "prodready_daemon_job_overdue_after_timestamp_seconds";
/// `daemon`: 1 while a job runs on this replica, by `daemon_job`.
pub const DAEMON_JOB_RUNNING: &str = "prodready_daemon_job_running";

/// `db exporter`: 1 when the last scrape of a database succeeded, by `server` and `database` (every
/// series below carries both).
pub const PG_UP: &str = "prodready_pg_up";
/// `db exporter`: how long the last scrape of a database took (seconds).
pub const PG_SCRAPE_DURATION: &str = "prodready_pg_scrape_duration_seconds";
/// `db exporter`: scrapes of a database that failed or timed out.
pub const PG_SCRAPE_ERRORS_TOTAL: &str = "prodready_pg_scrape_errors_total";
/// Sessions connected to the database, by `state`.
pub const PG_CONNECTIONS: &str = "prodready_pg_connections";
/// Sessions connected to the whole server.
pub const PG_SERVER_CONNECTIONS: &str = "prodready_pg_server_connections";
/// The server's `max_connections`.
pub const PG_MAX_CONNECTIONS: &str = "prodready_pg_max_connections";
/// Age of the oldest open transaction (seconds).
pub const PG_LONGEST_TRANSACTION: &str = "prodready_pg_longest_transaction_seconds";
/// The longest a session has sat idle inside a transaction (seconds).
pub const PG_LONGEST_IDLE_IN_TRANSACTION: &str = "prodready_pg_longest_idle_in_transaction_seconds";
/// Granted locks, by `mode`.
pub const PG_LOCKS: &str = "prodready_pg_locks";
/// Sessions waiting for a lock.
pub const PG_WAITING_SESSIONS: &str = "prodready_pg_waiting_sessions";
pub const PG_DEADLOCKS_TOTAL: &str = "prodready_pg_deadlocks_total";
pub const PG_COMMITS_TOTAL: &str = "prodready_pg_transactions_committed_total";
pub const PG_ROLLBACKS_TOTAL: &str = "prodready_pg_transactions_rolled_back_total";
/// Blocks found in shared buffers; with [`PG_BLOCKS_READ_TOTAL`], the cache hit ratio.
pub const PG_BLOCKS_HIT_TOTAL: &str = "prodready_pg_blocks_hit_total";
pub const PG_BLOCKS_READ_TOTAL: &str = "prodready_pg_blocks_read_total";
pub const PG_TEMP_FILES_TOTAL: &str = "prodready_pg_temp_files_total";
pub const PG_TEMP_BYTES_TOTAL: &str = "prodready_pg_temp_bytes_total";
pub const PG_DATABASE_SIZE: &str = "prodready_pg_database_size_bytes";
/// Per table (`schema`, `table`; the top N by size and by dead tuples).
pub const PG_TABLE_SIZE: &str = "prodready_pg_table_size_bytes";
pub const PG_TABLE_DEAD_TUPLES: &str = "prodready_pg_table_dead_tuples";
pub const PG_TABLE_LIVE_TUPLES: &str = "prodready_pg_table_live_tuples";
/// Per table, `kind` = `vacuum`, `autovacuum`, `analyze`, `autoanalyze`: Unix time of the last one.
pub const PG_TABLE_LAST_MAINTENANCE: &str = "prodready_pg_table_last_maintenance_timestamp_seconds";
/// Per index (`schema`, `table`, `index`; the top N by size).
pub const PG_INDEX_SIZE: &str = "prodready_pg_index_size_bytes";
/// On a primary, per standby (`application_name`, `client_addr`): WAL not replayed yet (bytes).
pub const PG_REPLICATION_LAG_BYTES: &str = "prodready_pg_replication_lag_bytes";
/// On a primary, per standby: how long replaying lags (seconds).
pub const PG_REPLICATION_LAG_SECONDS: &str = "prodready_pg_replication_lag_seconds";
/// On a standby: seconds since the last replayed transaction committed on the primary (0 when caught up).
pub const PG_REPLAY_DELAY_SECONDS: &str = "prodready_pg_replay_delay_seconds";
/// Per replication slot (`slot`, `slot_type`): 1 while a consumer is connected.
pub const PG_SLOT_ACTIVE: &str = "prodready_pg_replication_slot_active";
/// Per replication slot: WAL kept for it (bytes).
pub const PG_SLOT_RETAINED_WAL: &str = "prodready_pg_replication_slot_retained_wal_bytes";
/// WAL written (bytes); its rate is the WAL generation rate.
pub const PG_WAL_BYTES_TOTAL: &str = "prodready_pg_wal_bytes_total";
/// Finished WAL segments waiting for `archive_command`, on a primary with archive_mode on.
pub const PG_WAL_READY_SEGMENTS: &str = "prodready_pg_wal_ready_segments";
/// `archive_timeout` in seconds (0: segments are switched only when full), with archive_mode on.
pub const PG_ARCHIVE_TIMEOUT: &str = "prodready_pg_archive_timeout_seconds";
/// Checkpoints, by `kind` (`timed`, `requested`).
pub const PG_CHECKPOINTS_TOTAL: &str = "prodready_pg_checkpoints_total";
/// pg_stat_statements, per `queryid` (the top N by total time, plus `queryid="other"` for the rest).
pub const PG_STATEMENT_CALLS_TOTAL: &str = "prodready_pg_statement_calls_total";
pub const PG_STATEMENT_SECONDS_TOTAL: &str = "prodready_pg_statement_seconds_total";
pub const PG_STATEMENT_ROWS_TOTAL: &str = "prodready_pg_statement_rows_total";
/// 1 per exported `queryid`, with its normalised text in `query` (literals masked).
pub const PG_STATEMENT_INFO: &str = "prodready_pg_statement_info";
/// Statements pg_stat_statements tracks for the database.
pub const PG_STATEMENTS_TRACKED: &str = "prodready_pg_statements_tracked";
/// Entries pg_stat_statements evicted because it was full.
pub const PG_STATEMENTS_DEALLOCATIONS_TOTAL: &str = "prodready_pg_statements_deallocations_total";

/// From the standard process collector.
pub const PROCESS_CPU_SECONDS_TOTAL: &str = "process_cpu_seconds_total";
pub const PROCESS_OPEN_FDS: &str = "process_open_fds";
pub const PROCESS_MAX_FDS: &str = "process_max_fds";
