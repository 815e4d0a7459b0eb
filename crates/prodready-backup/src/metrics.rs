//! Backup metrics in Prometheus' text format, for a node-exporter textfile or a Pushgateway. A backup run
//! and a verification each report a disjoint set of metrics, so both can feed one Pushgateway group or
//! sit in two textfiles without colliding.

use std::fmt::Write as _;

use prodready_metrics_alerts::names;

use crate::catalog::BackupInfo;
use crate::retention::unix;

/// What one `backup run` reports.
#[derive(Debug, Clone, PartialEq)]
pub struct RunMetrics {
    pub database: String,
    /// Whether this run succeeded.
    pub success: bool,
    /// Newest committed backup of the database, from the store (after this run).
    pub last_success_unix: Option<i64>,
    pub duration_seconds: Option<f64>,
    pub size_bytes: Option<u64>,
}

/// What one `backup verify` reports.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifyMetrics {
    pub database: String,
    pub success: bool,
    /// Newest successful restore verification of the database, from the store.
    pub last_verify_success_unix: Option<i64>,
}

/// The newest committed backup and the newest successful restore verification of `database`.
pub fn from_catalog(backups: &[BackupInfo], database: &str) -> (Option<i64>, Option<i64>) {
    let of = backups.iter().filter(|b| b.database == database);
    let success = of.clone().map(|b| unix(&b.created_at)).max();
    let verified = of.filter_map(|b| b.last_verified_ok_at.as_deref()).map(unix).max();
    (success, verified)
}

fn gauge(out: &mut String, name: &str, help: &str, database: &str, value: impl std::fmt::Display) {
    let _ = writeln!(
        out,
        "# HELP {name} {help}\n# TYPE {name} gauge\n{name}{{database=\"{}\"}} {value}",
        escape(database)
    );
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

impl RunMetrics {
    pub fn render(&self) -> String {
        let mut out = String::new();
        let db = &self.database;
        gauge(
            &mut out,
            names::BACKUP_LAST_RUN_SUCCESS,
            "1 when the last backup run succeeded, 0 when it failed",
            db,
            u8::from(self.success),
        );
        if let Some(t) = self.last_success_unix {
            gauge(&mut out, names::BACKUP_LAST_SUCCESS, "Unix time of the newest committed backup", db, t);
        }
        if let Some(d) = self.duration_seconds {
            gauge(
                &mut out,
                names::BACKUP_DURATION_SECONDS,
                "Duration of the last successful backup run in seconds",
                db,
                d,
            );
        }
        if let Some(b) = self.size_bytes {
            gauge(&mut out, names::BACKUP_BYTES, "Stored size of the last successful backup in bytes", db, b);
        }
        out
    }
}

impl VerifyMetrics {
    pub fn render(&self) -> String {
        let mut out = String::new();
        let db = &self.database;
        gauge(
            &mut out,
            names::BACKUP_LAST_VERIFY_RUN_SUCCESS,
            "1 when the last verification passed, 0 when it failed",
            db,
            u8::from(self.success),
        );
        if let Some(t) = self.last_verify_success_unix {
            gauge(
                &mut out,
                names::BACKUP_LAST_VERIFY_SUCCESS,
                "Unix time of the newest successful restore verification",
                db,
                t,
            );
        }
        out
    }
}

/// Writes a node-exporter textfile atomically (a temporary file, then rename), so the collector never
/// reads half a file.
pub fn write_textfile(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(std::path::Path::new("."));
    let name = path.file_name().map_or_else(|| "metrics".into(), |n| n.to_string_lossy().into_owned());
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path)
}
