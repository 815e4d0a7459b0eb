//! What the daemon knows about itself and its jobs: read by `/metrics`, `/readyz`, `/status.json` and
//! the status page.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use serde::Serialize;

use crate::job::Outcome;

/// This replica's part in the election.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "role", content = "problem", rename_all = "snake_case")]
pub enum Role {
    /// Not connected to the lock database yet.
    Starting,
    /// The lock database cannot be reached (or the table of runs cannot be used): runs nothing.
    Unreachable(String),
    /// Connected; another replica holds the lock.
    Standby,
    /// Holds the lock and runs the jobs.
    Leader,
}

impl Role {
    /// Whether `/readyz` answers 200: the database is reachable and the replica knows its part.
    pub fn ready(&self) -> bool {
        matches!(self, Self::Standby | Self::Leader)
    }

    pub fn name(&self) -> &'static str {
        match self {
            Self::Starting => "starting",
            Self::Unreachable(_) => "unreachable",
            Self::Standby => "standby",
            Self::Leader => "leader",
        }
    }
}

/// One run of a job, as the table of runs records it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunRecord {
    #[serde(with = "unix")]
    pub scheduled_at: SystemTime,
    #[serde(with = "unix")]
    pub started_at: SystemTime,
    #[serde(with = "unix_opt")]
    pub finished_at: Option<SystemTime>,
    /// `success`, `failure`, `timeout`, `cancelled`, `abandoned` (its replica died), or `None` while it runs.
    pub result: Option<String>,
    pub replica: String,
    /// The exit status and the last lines the job printed.
    pub detail: String,
}

impl RunRecord {
    pub fn duration(&self) -> Option<Duration> {
        self.finished_at.and_then(|f| f.duration_since(self.started_at).ok())
    }
}

/// A job as the page and the metrics show it.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct JobView {
    pub name: String,
    pub kind: String,
    pub schedule: String,
    pub zone: String,
    pub timeout_seconds: u64,
    #[serde(with = "unix_opt")]
    pub next_run: Option<SystemTime>,
    pub interval_seconds: Option<f64>,
    /// When the run on this replica started, while it runs.
    #[serde(with = "unix_opt")]
    pub running_since: Option<SystemTime>,
    /// The last finished run (from the table: shared by every replica).
    pub last: Option<RunRecord>,
    #[serde(with = "unix_opt")]
    pub last_success: Option<SystemTime>,
    /// The second scheduled run after the last success (after `since` when there is none).
    #[serde(with = "unix_opt")]
    pub overdue_after: Option<SystemTime>,
    /// When this replica began scheduling the job.
    #[serde(skip)]
    pub since: SystemTime,
    /// The most recent runs, newest first.
    pub recent: Vec<RunRecord>,
}

/// Everything behind the HTTP endpoints.
#[derive(Debug)]
pub(crate) struct Status {
    pub replica: String,
    pub started_at: SystemTime,
    pub role: Role,
    pub jobs: Vec<JobView>,
    /// Runs this replica finished, by job and outcome.
    pub runs_total: BTreeMap<(String, Outcome), u64>,
}

/// The shared, locked [`Status`].
#[derive(Debug)]
pub(crate) struct Shared(Mutex<Status>);

impl Shared {
    pub(crate) fn new(status: Status) -> Self {
        Self(Mutex::new(status))
    }

    pub(crate) fn with<T>(&self, f: impl FnOnce(&mut Status) -> T) -> T {
        f(&mut self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner))
    }
}

/// A table the caller adds to the status page (the backup inventory, the last scorecard...).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Section {
    pub title: String,
    /// A sentence above the table (e.g. "no backups yet").
    pub note: Option<String>,
    pub headers: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

/// What the caller adds to the daemon's HTTP endpoints.
pub trait StatusSections: Send + Sync + 'static {
    /// Extra sections of the status page; called on a blocking thread for each page view.
    fn sections(&self) -> Vec<Section>;

    /// Collectors added to `/metrics`, asked once at start. They are encoded on the server's threads at
    /// each scrape, so they must only read what is already at hand (refresh it in the background).
    fn collectors(&self) -> Vec<Box<dyn prodready_metrics::prometheus_client::collector::Collector>> {
        Vec::new()
    }
}

impl StatusSections for () {
    fn sections(&self) -> Vec<Section> {
        Vec::new()
    }
}

pub(crate) fn unix_seconds(t: SystemTime) -> f64 {
    t.duration_since(SystemTime::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

mod unix {
    use std::time::SystemTime;

    pub(crate) fn serialize<S: serde::Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(super::unix_seconds(*t))
    }
}

mod unix_opt {
    use std::time::SystemTime;

    #[allow(clippy::ref_option)]
    pub(crate) fn serialize<S: serde::Serializer>(t: &Option<SystemTime>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => s.serialize_some(&super::unix_seconds(*t)),
            None => s.serialize_none(),
        }
    }
}
