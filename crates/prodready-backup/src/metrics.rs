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
    /// Newest successful restore verification of the database, from the store.
    pub last_verify_success_unix: Option<i64>,
}

/// What one recovery drill reports, labelled by `cluster` (the system identifier).
#[derive(Debug, Clone, PartialEq)]
pub struct DrillMetrics {
    pub cluster: String,
    pub success: bool,
    /// Newest successful drill of the cluster, from the store.
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
            let help = "Unix time of the newest successful restore verification";
            int(&mut r, names::BACKUP_LAST_VERIFY_SUCCESS, help, db, t);
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
        Ok(Self { databases, corrupt_backups: corrupt.len() as u64, drills: last_drills(store)? })
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
                "Unix time of the newest successful restore verification.",
                |d| d.last_verify_success_unix,
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
        if m.drills.iter().any(|(_, t)| t.is_some()) {
            let mut family = encoder.encode_descriptor(
                names::BACKUP_LAST_DRILL_SUCCESS,
                "Unix time of the newest successful recovery drill.",
                None,
                MetricType::Gauge,
            )?;
            for (cluster, t) in m.drills.iter().filter_map(|(c, t)| t.map(|t| (c, t))) {
                ConstGauge::new(t).encode(family.encode_family(&[("cluster", cluster.as_str())])?)?;
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
        Ok(())
    }
}
