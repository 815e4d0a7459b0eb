//! Backup metrics, as a `prometheus-client` registry that the caller writes to a node-exporter textfile,
//! pushes to a Pushgateway or serves (see `prodready-metrics`). A backup run and a verification each
//! report a disjoint set of metrics, so both can feed one Pushgateway group or sit in two textfiles
//! without colliding.

use std::sync::atomic::AtomicU64;

use prodready_metrics::names;
use prodready_metrics::prometheus_client::metrics::family::Family;
use prodready_metrics::prometheus_client::metrics::gauge::Gauge;
use prodready_metrics::prometheus_client::registry::Registry;

/// What one backup run reports.
#[derive(Debug, Clone, PartialEq)]
pub struct RunMetrics {
    pub database: String,
    /// Whether this run succeeded.
    pub success: bool,
    /// Newest committed backup of the database, from the store (after this run).
    pub last_success_unix: Option<i64>,
    pub duration_seconds: Option<f64>,
    pub size_bytes: Option<u64>,
    /// Backups in the store whose manifest cannot be read (see [`crate::catalog::list_all`]).
    pub corrupt_backups: Option<u64>,
}

/// What one verification reports.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifyMetrics {
    pub database: String,
    pub success: bool,
    /// Newest successful restore verification of the database, from the store: `Some(0)` when none has
    /// passed yet (the not-verified alert then fires), `None` when the store could not say (left out, so a
    /// failed listing never overwrites a real time).
    pub last_verify_success_unix: Option<i64>,
}

/// What one recovery drill reports, labelled by `cluster` (the system identifier).
#[derive(Debug, Clone, PartialEq)]
pub struct DrillMetrics {
    pub cluster: String,
    pub success: bool,
    /// Newest successful drill of the cluster, from the store: `Some(0)` when none has passed yet, `None`
    /// when the store could not say (left out).
    pub last_success_unix: Option<i64>,
}

impl DrillMetrics {
    pub fn registry(&self) -> Registry {
        let mut r = Registry::default();
        let labels = vec![("cluster".to_owned(), self.cluster.clone())];
        let family = Family::<Labels, Gauge>::default();
        family.get_or_create(&labels).set(i64::from(self.success));
        r.register(
            names::BACKUP_LAST_DRILL_RUN_SUCCESS,
            "1 when the last recovery drill passed, 0 when it failed",
            family,
        );
        if let Some(t) = self.last_success_unix {
            let family = Family::<Labels, Gauge>::default();
            family.get_or_create(&labels).set(t);
            r.register(
                names::BACKUP_LAST_DRILL_SUCCESS,
                "Unix time of the newest successful recovery drill",
                family,
            );
        }
        r
    }
}

/// The newest successful recovery drill of each cluster with base backups in `store`.
pub fn last_drills(store: &crate::Store) -> crate::Result<Vec<(String, Option<i64>)>> {
    let (bases, _) = crate::catalog::list_base(store)?;
    let mut clusters: Vec<String> = bases.iter().map(|b| b.system_identifier.clone()).collect();
    clusters.sort();
    clusters.dedup();
    Ok(clusters
        .into_iter()
        .map(|cluster| {
            let newest = bases
                .iter()
                .filter(|b| b.system_identifier == cluster)
                .filter_map(|b| b.last_verified_ok_at.as_deref())
                .max()
                .map(crate::retention::unix);
            (cluster, newest)
        })
        .collect())
}

type Labels = Vec<(String, String)>;

fn labels(database: &str) -> Labels {
    vec![("database".to_owned(), database.to_owned())]
}

fn int(registry: &mut Registry, name: &str, help: &str, database: &str, value: i64) {
    let family = Family::<Labels, Gauge>::default();
    family.get_or_create(&labels(database)).set(value);
    registry.register(name, help, family);
}

fn float(registry: &mut Registry, name: &str, help: &str, database: &str, value: f64) {
    let family = Family::<Labels, Gauge<f64, AtomicU64>>::default();
    family.get_or_create(&labels(database)).set(value);
    registry.register(name, help, family);
}

impl RunMetrics {
    pub fn registry(&self) -> Registry {
        let mut r = Registry::default();
        let db = &self.database;
        let help = "1 when the last backup run succeeded, 0 when it failed";
        int(&mut r, names::BACKUP_LAST_RUN_SUCCESS, help, db, i64::from(self.success));
        if let Some(t) = self.last_success_unix {
            int(&mut r, names::BACKUP_LAST_SUCCESS, "Unix time of the newest committed backup", db, t);
        }
        if let Some(d) = self.duration_seconds {
            let help = "Duration of the last successful backup run in seconds";
            float(&mut r, names::BACKUP_DURATION_SECONDS, help, db, d);
        }
        if let Some(b) = self.size_bytes {
            let help = "Stored size of the last successful backup in bytes";
            int(&mut r, names::BACKUP_BYTES, help, db, i64::try_from(b).unwrap_or(i64::MAX));
        }
        if let Some(n) = self.corrupt_backups {
            let help = "Backups in the store whose manifest cannot be read";
            int(&mut r, names::BACKUP_CORRUPT, help, db, i64::try_from(n).unwrap_or(i64::MAX));
        }
        r
    }
}

impl VerifyMetrics {
    pub fn registry(&self) -> Registry {
        let mut r = Registry::default();
        let db = &self.database;
        let help = "1 when the last verification passed, 0 when it failed";
        int(&mut r, names::BACKUP_LAST_VERIFY_RUN_SUCCESS, help, db, i64::from(self.success));
        if let Some(t) = self.last_verify_success_unix {
            let help = "Unix time of the newest successful restore verification, 0 for never";
            int(&mut r, names::BACKUP_LAST_VERIFY_SUCCESS, help, db, t);
        }
        r
    }
}

/// What `wal-push` reports: kept across calls by the caller (each call is one short process).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct WalPushMetrics {
    pub pushed_total: u64,
    pub failed_total: u64,
    pub last_success_unix: Option<i64>,
    pub last_failure_unix: Option<i64>,
    /// The last file pushed (not a label: for people reading the state).
    pub last_file: Option<String>,
}

impl WalPushMetrics {
    pub fn registry(&self) -> Registry {
        use prodready_metrics::prometheus_client::metrics::counter::Counter;
        let mut r = Registry::default();
        let gauge = |r: &mut Registry, name: &str, help: &str, value: i64| {
            let g = Gauge::<i64>::default();
            g.set(value);
            r.register(name, help, g);
        };
        if let Some(t) = self.last_success_unix {
            gauge(&mut r, names::WAL_PUSH_LAST_SUCCESS, "Unix time of the last successful WAL push", t);
        }
        if let Some(t) = self.last_failure_unix {
            gauge(&mut r, names::WAL_PUSH_LAST_FAILURE, "Unix time of the last failed WAL push", t);
        }
        for (name, help, value) in [
            (names::WAL_PUSH_FILES_TOTAL, "WAL files archived", self.pushed_total),
            (names::WAL_PUSH_FAILURES_TOTAL, "WAL pushes that failed", self.failed_total),
        ] {
            let c = Counter::<u64>::default();
            c.inc_by(value);
            r.register(name.strip_suffix("_total").unwrap_or(name), help, c);
        }
        r
    }
}

/// What a store says about each database's backups, as metrics, for a long-running exporter (a
/// scheduler) rather than one run: the newest backup's time and size, the newest successful
/// verification, and the corrupt backups.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StoreMetrics {
    pub databases: Vec<DatabaseMetrics>,
    /// Committed backups whose manifest cannot be read (the whole store).
    pub corrupt_backups: u64,
    /// Per cluster with base backups (system identifier): the newest successful recovery drill.
    pub drills: Vec<(String, Option<i64>)>,
    /// The WAL archive, when the store holds one.
    pub wal: Option<WalArchiveMetrics>,
}

/// The WAL archive's part of [`StoreMetrics`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WalArchiveMetrics {
    /// When the newest archived file arrived.
    pub newest_unix: Option<i64>,
    /// Segments missing between the first and last of a timeline.
    pub missing_segments: u64,
}

impl WalArchiveMetrics {
    /// From an archive's status.
    pub fn of(status: &crate::wal::ArchiveStatus) -> Self {
        Self {
            newest_unix: status.newest.as_ref().map(|n| n.archived_unix),
            missing_segments: status.gaps.iter().map(|g| g.missing).sum(),
        }
    }
}

/// One database's part of [`StoreMetrics`].
#[derive(Debug, Clone, PartialEq)]
pub struct DatabaseMetrics {
    pub database: String,
    pub last_success_unix: Option<i64>,
    pub last_verify_success_unix: Option<i64>,
    pub size_bytes: Option<u64>,
}

impl StoreMetrics {
    /// Lists `store`.
    pub fn read(store: &crate::Store) -> crate::Result<Self> {
        let (backups, corrupt) = crate::catalog::list_all(store)?;
        let databases = crate::catalog::databases(&backups)
            .into_iter()
            .map(|database| {
                let (last_success_unix, last_verify_success_unix) =
                    crate::freshness::last_success_and_verification(&backups, &database);
                let size_bytes = backups
                    .iter()
                    .filter(|b| b.database == database)
                    .max_by(|a, b| a.created_at.cmp(&b.created_at))
                    .map(|b| b.size_bytes);
                DatabaseMetrics { database, last_success_unix, last_verify_success_unix, size_bytes }
            })
            .collect();
        let archive = crate::wal::WalArchive::new(store.clone());
        let wal = match archive.info()? {
            Some(_) => {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
                Some(WalArchiveMetrics::of(&archive.status(now)?))
            }
            None => None,
        };
        Ok(Self { databases, corrupt_backups: corrupt.len() as u64, drills: last_drills(store)?, wal })
    }
}

/// A collector serving the [`StoreMetrics`] last given to [`StoreCollector::set`]: scrapes never touch
/// the store (refresh it in the background).
#[derive(Debug, Clone, Default)]
pub struct StoreCollector(std::sync::Arc<std::sync::Mutex<Option<StoreMetrics>>>);

impl StoreCollector {
    pub fn set(&self, metrics: StoreMetrics) {
        *self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(metrics);
    }
}

impl prodready_metrics::prometheus_client::collector::Collector for StoreCollector {
    fn encode(
        &self,
        mut encoder: prodready_metrics::prometheus_client::encoding::DescriptorEncoder<'_>,
    ) -> Result<(), std::fmt::Error> {
        use prodready_metrics::prometheus_client::encoding::EncodeMetric as _;
        use prodready_metrics::prometheus_client::metrics::MetricType;
        use prodready_metrics::prometheus_client::metrics::gauge::ConstGauge;
        let Some(m) = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone() else {
            return Ok(());
        };
        type Value = fn(&DatabaseMetrics) -> Option<i64>;
        let families: [(&str, &str, Value); 3] = [
            (names::BACKUP_LAST_SUCCESS, "Unix time of the newest committed backup.", |d| {
                d.last_success_unix
            }),
            (
                names::BACKUP_LAST_VERIFY_SUCCESS,
                "Unix time of the newest successful restore verification, 0 for never.",
                // A database with backups and no verification yet is 0, so BackupNotVerified fires for
                // it: a missing series would keep the alert silent forever.
                |d| d.last_verify_success_unix.or(d.last_success_unix.map(|_| 0)),
            ),
            (names::BACKUP_BYTES, "Stored size of the newest backup in bytes.", |d| {
                d.size_bytes.map(|b| i64::try_from(b).unwrap_or(i64::MAX))
            }),
        ];
        for (name, help, value) in families {
            if m.databases.iter().all(|d| value(d).is_none()) {
                continue;
            }
            let mut family = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
            for d in &m.databases {
                if let Some(v) = value(d) {
                    let labels = [("database", d.database.as_str())];
                    ConstGauge::new(v).encode(family.encode_family(&labels)?)?;
                }
            }
        }
        // Every cluster with base backups, 0 for one no drill has proven yet (RecoveryDrillOverdue fires).
        if !m.drills.is_empty() {
            let mut family = encoder.encode_descriptor(
                names::BACKUP_LAST_DRILL_SUCCESS,
                "Unix time of the newest successful recovery drill, 0 for never.",
                None,
                MetricType::Gauge,
            )?;
            for (cluster, t) in &m.drills {
                ConstGauge::new(t.unwrap_or(0))
                    .encode(family.encode_family(&[("cluster", cluster.as_str())])?)?;
            }
        }
        if !m.databases.is_empty() {
            let mut family = encoder.encode_descriptor(
                names::BACKUP_CORRUPT,
                "Backups in the store whose manifest cannot be read.",
                None,
                MetricType::Gauge,
            )?;
            let corrupt = i64::try_from(m.corrupt_backups).unwrap_or(i64::MAX);
            for d in &m.databases {
                let labels = [("database", d.database.as_str())];
                ConstGauge::new(corrupt).encode(family.encode_family(&labels)?)?;
            }
        }
        if let Some(wal) = m.wal {
            if let Some(t) = wal.newest_unix {
                let help = "Unix time the newest file of the WAL archive arrived.";
                let family =
                    encoder.encode_descriptor(names::WAL_ARCHIVE_NEWEST, help, None, MetricType::Gauge)?;
                ConstGauge::new(t).encode(family)?;
            }
            let help = "Segments missing in the WAL archive.";
            let family = encoder.encode_descriptor(
                names::WAL_ARCHIVE_MISSING_SEGMENTS,
                help,
                None,
                MetricType::Gauge,
            )?;
            ConstGauge::new(i64::try_from(wal.missing_segments).unwrap_or(i64::MAX)).encode(family)?;
        }
        Ok(())
    }
}
