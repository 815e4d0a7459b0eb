use serde::{Deserialize, Serialize};

/// The `[backup]` section of `prodready.toml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BackupConfig {
    /// Where backups live: a directory path or `s3://BUCKET/PREFIX`. `None` means the caller's local
    /// data directory (the binary uses `<data_dir>/backups`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub store: Option<String>,
    /// Connections that copy table data in parallel, all sharing one snapshot.
    pub jobs: u16,
    /// zstd compression level (1-19).
    pub zstd_level: i32,
    /// age X25519 recipients (`age1...`) that backups are encrypted to; empty means unencrypted.
    pub encrypt_to: Vec<String>,
    /// A custom S3 endpoint (MinIO, moto); implies path-style addressing unless `s3_path_style = false`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub s3_endpoint: Option<String>,
    /// Force path-style (`true`) or virtual-host-style (`false`) S3 addressing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub s3_path_style: Option<bool>,
    /// SQL statements run against the scratch database after a verification restore; each must succeed.
    pub smoke_sql: Vec<String>,
    /// Retention policy applied by `backup prune`.
    pub retention: Retention,
    /// When `backup cron` schedules a backup (cron syntax).
    pub schedule: String,
    /// When it schedules a restore verification.
    pub verify_schedule: String,
    /// When it schedules pruning.
    pub prune_schedule: String,
}

impl Default for BackupConfig {
    fn default() -> Self {
        Self {
            store: None,
            jobs: 2,
            zstd_level: 3,
            encrypt_to: Vec::new(),
            s3_endpoint: None,
            s3_path_style: None,
            smoke_sql: Vec::new(),
            retention: Retention::default(),
            schedule: "17 2 * * *".to_owned(),
            verify_schedule: "47 3 * * *".to_owned(),
            prune_schedule: "30 5 * * *".to_owned(),
        }
    }
}

/// Grandfather-father-son retention: how many daily, weekly and monthly backups to keep, with a floor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Retention {
    pub keep_daily: u32,
    pub keep_weekly: u32,
    pub keep_monthly: u32,
    /// Never keep fewer backups than this, whatever their age.
    pub min_keep: u32,
}

impl Default for Retention {
    fn default() -> Self {
        Self { keep_daily: 7, keep_weekly: 4, keep_monthly: 6, min_keep: 3 }
    }
}
