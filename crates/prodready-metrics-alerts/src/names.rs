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

/// From the standard process collector.
pub const PROCESS_CPU_SECONDS_TOTAL: &str = "process_cpu_seconds_total";
pub const PROCESS_OPEN_FDS: &str = "process_open_fds";
pub const PROCESS_MAX_FDS: &str = "process_max_fds";
