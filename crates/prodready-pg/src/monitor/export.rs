//! Several databases scraped at once, each within a timeout, into one registry: a failing database
//! shows `prodready_pg_up 0` and its error count, and hides nothing of the others. Its error, or the note
//! on a missing pg_stat_statements, comes with the registry as a [`Notice`] when it changes, to be logged.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use prodready_metrics::names;
use prodready_metrics::prometheus_client::metrics::counter::Counter;
use prodready_metrics::prometheus_client::metrics::family::Family;
use prodready_metrics::prometheus_client::metrics::gauge::Gauge;
use prodready_metrics::prometheus_client::registry::Registry;

use super::collect::{CollectError, Monitor, Snapshot};

type Labels = Vec<(String, String)>;
type GaugeF = Gauge<f64, AtomicU64>;
type CounterF = Counter<f64, AtomicU64>;

/// What every scrape of an [`Exporter`] does.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ExporterOptions {
    /// Tables, indexes and statements reported per database.
    pub top_n: usize,
    /// A database that has not answered within this long counts as down for this scrape.
    pub timeout: Duration,
    /// The `application_name` of the exporter's sessions.
    pub application_name: String,
    /// The families read beyond the always-on ones.
    pub families: super::Families,
}

impl Default for ExporterOptions {
    fn default() -> Self {
        Self {
            top_n: super::DEFAULT_TOP_N,
            timeout: Duration::from_secs(5),
            application_name: "prodready-db-exporter".to_owned(),
            families: super::Families::all(),
        }
    }
}

struct Target {
    url: String,
    /// `host:port/dbname`, for notices.
    described: String,
    server: String,
    database: String,
    state: tokio::sync::Mutex<State>,
    errors: AtomicU64,
    /// What the last scrape had to say, so that a notice is given once per change.
    said: std::sync::Mutex<Said>,
}

/// What a scrape of one database has to say beyond its metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Said {
    Nothing,
    Error(String),
    Note(String),
}

impl Target {
    /// A notice when what `result` has to say differs from what the last scrape had to say.
    fn notice(&self, result: &Result<Snapshot, String>) -> Option<Notice> {
        let now = match result {
            Err(error) => Said::Error(error.clone()),
            Ok(snapshot) => snapshot.statements_note.clone().map_or(Said::Nothing, Said::Note),
        };
        let mut said = self.said.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if *said == now {
            return None;
        }
        *said = now.clone();
        let database = self.described.clone();
        Some(match now {
            Said::Nothing => Notice::Cleared { database },
            Said::Error(error) => Notice::Failed { database, error },
            Said::Note(note) => Notice::Note { database, note },
        })
    }
}

/// A change in what a database's scrapes have to say beyond their metrics, to be logged: given once when
/// it changes, not at every scrape. `database` is `host:port/dbname`, never with the password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// The scrape failed, the first time or with another error than the scrape before.
    Failed { database: String, error: String },
    /// The scrape succeeded without statement metrics, and why (what to do about it).
    Note { database: String, note: String },
    /// The scrape succeeded with nothing more to say, after one that failed or had a note.
    Cleared { database: String },
}

#[derive(Default)]
struct State {
    client: Option<(tokio_postgres::Client, tokio::task::JoinHandle<()>)>,
    monitor: Monitor,
}

/// What one scrape of one database gave.
#[derive(Debug)]
pub struct Scraped {
    pub server: String,
    pub database: String,
    pub duration: Duration,
    pub result: Result<Snapshot, String>,
}

/// Scrapes a list of databases (one session each, kept between scrapes).
pub struct Exporter {
    targets: Vec<Arc<Target>>,
    options: ExporterOptions,
}

impl std::fmt::Debug for Exporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Exporter").field("targets", &self.targets.len()).finish_non_exhaustive()
    }
}

impl Exporter {
    /// `urls`: libpq URLs, each naming the database to watch.
    pub fn new(urls: &[String], options: ExporterOptions) -> crate::Result<Self> {
        let targets = urls
            .iter()
            .map(|url| {
                let described = crate::describe(url);
                let database = crate::dbname(url)?;
                let server = described.rsplit_once('/').map_or(described.as_str(), |(s, _)| s).to_owned();
                Ok(Arc::new(Target {
                    url: url.clone(),
                    server,
                    database,
                    state: tokio::sync::Mutex::new(State::default()),
                    errors: AtomicU64::new(0),
                    said: std::sync::Mutex::new(Said::Nothing),
                    described,
                }))
            })
            .collect::<crate::Result<Vec<_>>>()?;
        Ok(Self { targets, options })
    }

    /// Scrapes every database concurrently, each bounded by the timeout.
    pub async fn scrape(&self) -> Vec<Scraped> {
        let mut tasks = tokio::task::JoinSet::new();
        for (i, target) in self.targets.iter().enumerate() {
            let (target, options) = (target.clone(), self.options.clone());
            tasks.spawn(async move { (i, scrape_one(&target, &options).await) });
        }
        let mut out: Vec<Option<Scraped>> = (0..self.targets.len()).map(|_| None).collect();
        while let Some(joined) = tasks.join_next().await {
            if let Ok((i, scraped)) = joined {
                out[i] = Some(scraped);
            }
        }
        out.into_iter()
            .zip(&self.targets)
            .map(|(s, t)| {
                s.unwrap_or_else(|| Scraped {
                    server: t.server.clone(),
                    database: t.database.clone(),
                    duration: Duration::ZERO,
                    result: Err("the scrape panicked".to_owned()),
                })
            })
            .collect()
    }

    /// A scrape as a registry, with the error counters, and the notices of the databases whose error or
    /// note differs from the last time this was called (one per change, none while it stays the same).
    pub async fn registry(&self) -> (Registry, Vec<Notice>) {
        let scraped = self.scrape().await;
        let errors: Vec<u64> = self.targets.iter().map(|t| t.errors.load(Ordering::Relaxed)).collect();
        let notices = self.targets.iter().zip(&scraped).filter_map(|(t, s)| t.notice(&s.result)).collect();
        (render(&scraped, &errors), notices)
    }
}

async fn scrape_one(target: &Target, options: &ExporterOptions) -> Scraped {
    let started = Instant::now();
    let work = async {
        let mut state = target.state.lock().await;
        if state.client.as_ref().is_none_or(|(c, _)| c.is_closed()) {
            let (client, driver) = crate::connect(&target.url, &options.application_name)
                .await
                .map_err(|e| prodready_stdx::error::chain(&e))?;
            // The server stops a statement that outlives the scrape, so none piles up. The work_mem is
            // for pg_stat_statements(), which materializes every entry: at 10,000 entries the default
            // 4 MB spills to a temporary file on every scrape.
            let ms = options.timeout.as_millis();
            client
                .batch_execute(&format!(
                    "SET statement_timeout = {ms}; SET lock_timeout = {ms}; SET work_mem = '32MB'"
                ))
                .await
                .map_err(|e| prodready_stdx::error::chain(&e))?;
            state.client = Some((client, driver));
        }
        let State { client, monitor } = &mut *state;
        let (client_ref, _) = client.as_ref().expect("connected above");
        let result = monitor.collect_families(client_ref, options.top_n, options.families).await;
        if let Err(CollectError::Query(_)) = &result {
            // A broken session is replaced at the next scrape.
            if let Some((_, driver)) = client.take() {
                driver.abort();
            }
        }
        result.map_err(|e| e.to_string())
    };
    let result = match tokio::time::timeout(options.timeout, work).await {
        Ok(result) => result,
        Err(_) => Err(format!("no answer within {} ms", options.timeout.as_millis())),
    };
    if result.is_err() {
        target.errors.fetch_add(1, Ordering::Relaxed);
    }
    Scraped {
        server: target.server.clone(),
        database: target.database.clone(),
        duration: started.elapsed(),
        result,
    }
}

/// Families filled while walking the scrapes, registered at the end.
#[derive(Default)]
struct Families {
    gauges: Vec<(&'static str, &'static str, Family<Labels, GaugeF>)>,
    counters: Vec<(&'static str, &'static str, Family<Labels, CounterF>)>,
}

impl Families {
    fn gauge(&mut self, name: &'static str, help: &'static str, labels: Labels, value: f64) {
        let family = match self.gauges.iter().position(|(n, _, _)| *n == name) {
            Some(i) => &self.gauges[i].2,
            None => {
                self.gauges.push((name, help, Family::default()));
                &self.gauges.last().expect("pushed").2
            }
        };
        family.get_or_create(&labels).set(value);
    }

    fn counter(&mut self, name: &'static str, help: &'static str, labels: Labels, value: f64) {
        let family = match self.counters.iter().position(|(n, _, _)| *n == name) {
            Some(i) => &self.counters[i].2,
            None => {
                self.counters.push((name, help, Family::default()));
                &self.counters.last().expect("pushed").2
            }
        };
        family.get_or_create(&labels).inc_by(value);
    }

    fn into_registry(self) -> Registry {
        let mut registry = Registry::default();
        for (name, help, family) in self.gauges {
            registry.register(name, help, family);
        }
        for (name, help, family) in self.counters {
            registry.register(name.strip_suffix("_total").unwrap_or(name), help, family);
        }
        registry
    }
}

/// The registry of one scrape of every database; `errors[i]` is the error count of database `i`.
pub fn render(scraped: &[Scraped], errors: &[u64]) -> Registry {
    let mut f = Families::default();
    for (i, s) in scraped.iter().enumerate() {
        let base: Labels =
            vec![("server".to_owned(), s.server.clone()), ("database".to_owned(), s.database.clone())];
        let with = |extra: &[(&str, &str)]| -> Labels {
            let mut l = base.clone();
            l.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
            l
        };
        f.gauge(
            names::PG_UP,
            "1 when the last scrape of the database succeeded.",
            base.clone(),
            f64::from(u8::from(s.result.is_ok())),
        );
        f.gauge(
            names::PG_SCRAPE_DURATION,
            "How long the last scrape of the database took.",
            base.clone(),
            s.duration.as_secs_f64(),
        );
        #[allow(clippy::cast_precision_loss)]
        f.counter(
            names::PG_SCRAPE_ERRORS_TOTAL,
            "Scrapes of the database that failed or timed out.",
            base.clone(),
            errors.get(i).copied().unwrap_or(0) as f64,
        );
        let Ok(x) = &s.result else { continue };
        #[allow(clippy::cast_precision_loss)]
        let n = |v: i64| v as f64;
        for (state, count) in &x.connections {
            f.gauge(
                names::PG_CONNECTIONS,
                "Sessions connected to the database, by state.",
                with(&[("state", state)]),
                n(*count),
            );
        }
        f.gauge(
            names::PG_SERVER_CONNECTIONS,
            "Sessions connected to the server.",
            base.clone(),
            n(x.server_connections),
        );
        f.gauge(
            names::PG_MAX_CONNECTIONS,
            "The server's max_connections.",
            base.clone(),
            n(x.max_connections),
        );
        f.gauge(
            names::PG_LONGEST_TRANSACTION,
            "Age of the oldest open transaction.",
            base.clone(),
            x.longest_transaction_seconds,
        );
        f.gauge(
            names::PG_LONGEST_IDLE_IN_TRANSACTION,
            "The longest a session has sat idle inside a transaction.",
            base.clone(),
            x.longest_idle_in_transaction_seconds,
        );
        for (mode, count) in &x.locks {
            f.gauge(names::PG_LOCKS, "Granted locks, by mode.", with(&[("mode", mode)]), n(*count));
        }
        f.gauge(
            names::PG_WAITING_SESSIONS,
            "Sessions waiting for a lock.",
            base.clone(),
            n(x.waiting_sessions),
        );
        let d = &x.database;
        f.counter(names::PG_DEADLOCKS_TOTAL, "Deadlocks detected.", base.clone(), n(d.deadlocks));
        f.counter(names::PG_COMMITS_TOTAL, "Transactions committed.", base.clone(), n(d.xact_commit));
        f.counter(names::PG_ROLLBACKS_TOTAL, "Transactions rolled back.", base.clone(), n(d.xact_rollback));
        f.counter(
            names::PG_BLOCKS_HIT_TOTAL,
            "Blocks found in shared buffers.",
            base.clone(),
            n(d.blocks_hit),
        );
        f.counter(
            names::PG_BLOCKS_READ_TOTAL,
            "Blocks read from disk or the OS cache.",
            base.clone(),
            n(d.blocks_read),
        );
        f.counter(
            names::PG_TEMP_FILES_TOTAL,
            "Temporary files written by queries.",
            base.clone(),
            n(d.temp_files),
        );
        f.counter(
            names::PG_TEMP_BYTES_TOTAL,
            "Bytes of temporary files written by queries.",
            base.clone(),
            n(d.temp_bytes),
        );
        f.gauge(names::PG_DATABASE_SIZE, "Size of the database.", base.clone(), n(d.size_bytes));
        for t in &x.tables {
            let l = with(&[("schema", &t.schema), ("table", &t.table)]);
            f.gauge(
                names::PG_TABLE_SIZE,
                "Size of the table with its indexes and TOAST.",
                l.clone(),
                n(t.size_bytes),
            );
            f.gauge(
                names::PG_TABLE_DEAD_TUPLES,
                "Dead tuples in the table (estimate).",
                l.clone(),
                n(t.dead_tuples),
            );
            f.gauge(
                names::PG_TABLE_LIVE_TUPLES,
                "Live tuples in the table (estimate).",
                l.clone(),
                n(t.live_tuples),
            );
            for (kind, at) in [
                ("vacuum", t.last_vacuum),
                ("autovacuum", t.last_autovacuum),
                ("analyze", t.last_analyze),
                ("autoanalyze", t.last_autoanalyze),
            ] {
                if let Some(at) = at {
                    let mut l = l.clone();
                    l.push(("kind".to_owned(), kind.to_owned()));
                    f.gauge(
                        names::PG_TABLE_LAST_MAINTENANCE,
                        "Unix time of the table's last vacuum or analyze, by kind.",
                        l,
                        at,
                    );
                }
            }
        }
        for ix in &x.indexes {
            let l = with(&[("schema", &ix.schema), ("table", &ix.table), ("index", &ix.index)]);
            f.gauge(names::PG_INDEX_SIZE, "Size of the index.", l, n(ix.size_bytes));
        }
        for r in &x.replicas {
            let l = with(&[("application_name", &r.application_name), ("client_addr", &r.client_addr)]);
            f.gauge(
                names::PG_REPLICATION_LAG_BYTES,
                "WAL the standby has not replayed yet.",
                l.clone(),
                r.lag_bytes,
            );
            f.gauge(
                names::PG_REPLICATION_LAG_SECONDS,
                "How long replaying lags on the standby.",
                l,
                r.lag_seconds,
            );
        }
        if let Some(delay) = x.replay_delay_seconds {
            f.gauge(
                names::PG_REPLAY_DELAY_SECONDS,
                "On a standby: seconds since the last replayed transaction committed (0 when caught up).",
                base.clone(),
                delay,
            );
        }
        for slot in &x.slots {
            let l = with(&[("slot", &slot.name), ("slot_type", &slot.slot_type)]);
            f.gauge(
                names::PG_SLOT_ACTIVE,
                "1 while a consumer is connected to the slot.",
                l.clone(),
                f64::from(u8::from(slot.active)),
            );
            f.gauge(names::PG_SLOT_RETAINED_WAL, "WAL kept for the slot.", l, slot.retained_wal_bytes);
        }
        if let Some(wal) = x.wal_bytes {
            f.counter(names::PG_WAL_BYTES_TOTAL, "WAL written.", base.clone(), wal);
        }
        if let Some(a) = x.archiving {
            f.gauge(
                names::PG_WAL_READY_SEGMENTS,
                "Finished WAL segments waiting for archive_command.",
                base.clone(),
                n(a.ready_segments),
            );
            f.gauge(
                names::PG_ARCHIVE_TIMEOUT,
                "archive_timeout in seconds (0: a segment is switched only when full).",
                base.clone(),
                n(a.timeout_seconds),
            );
        }
        f.counter(
            names::PG_CHECKPOINTS_TOTAL,
            "Checkpoints, by kind.",
            with(&[("kind", "timed")]),
            n(x.checkpoints_timed),
        );
        f.counter(
            names::PG_CHECKPOINTS_TOTAL,
            "Checkpoints, by kind.",
            with(&[("kind", "requested")]),
            n(x.checkpoints_requested),
        );
        if let Some(st) = &x.statements {
            let mut series: Vec<(String, super::Totals)> =
                st.top.iter().map(|s| (s.queryid.to_string(), s.totals)).collect();
            series.push(("other".to_owned(), st.other));
            for (queryid, t) in &series {
                let l = with(&[("queryid", queryid)]);
                f.counter(names::PG_STATEMENT_CALLS_TOTAL, "Calls of the statement.", l.clone(), t.calls);
                f.counter(
                    names::PG_STATEMENT_SECONDS_TOTAL,
                    "Time spent executing the statement.",
                    l.clone(),
                    t.exec_seconds,
                );
                f.counter(
                    names::PG_STATEMENT_ROWS_TOTAL,
                    "Rows the statement returned or affected.",
                    l,
                    t.rows,
                );
            }
            for s in &st.top {
                let l = with(&[("queryid", &s.queryid.to_string()), ("query", &s.query)]);
                f.gauge(
                    names::PG_STATEMENT_INFO,
                    "The statement's normalised text (literals masked).",
                    l,
                    1.0,
                );
            }
            #[allow(clippy::cast_precision_loss)]
            f.gauge(
                names::PG_STATEMENTS_TRACKED,
                "Statements pg_stat_statements tracks for the database.",
                base.clone(),
                st.tracked as f64,
            );
            if let Some(dealloc) = st.deallocations {
                f.counter(
                    names::PG_STATEMENTS_DEALLOCATIONS_TOTAL,
                    "Entries pg_stat_statements evicted because it was full.",
                    base.clone(),
                    n(dealloc),
                );
            }
        }
    }
    f.into_registry()
}
