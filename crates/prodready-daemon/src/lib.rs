//! A scheduler for production chores, safe on several replicas.
//!
//! - [`Schedule`]: cron expressions (5 fields, 6 with seconds first, `@daily`-style aliases) in an IANA
//!   time zone.
//! - Leader election through a PostgreSQL session-level advisory lock: only the replica holding it runs
//!   jobs. The lock session sets `idle_session_timeout` to the lease and is pinged several times per
//!   lease; a leader that cannot ping for half a lease closes the session and stops scheduling, so it
//!   has stopped before the server lets the lock go to a standby.
//! - Every run of a job is claimed in a table of the lock database (`prodready_daemon_runs`, one row per
//!   job and scheduled time, unique): a scheduled time runs at most once whichever replica is leader, and
//!   a new leader knows what ran while it stood by (the missed-run policy uses it).
//! - Jobs are child processes in their own process group, with a timeout; cancelled or timed out, they get
//!   `SIGTERM`, then `SIGKILL` after a grace period.
//! - HTTP on one address: `/metrics` (OpenMetrics or the classic format, through prodready-metrics),
//!   `/healthz`, `/readyz`, `/status.json` and a self-contained HTML status page at `/`.
//!
//! The caller owns signals and configuration: it starts [`run`] with [`Options`] and sends
//! [`Control::Reload`] or [`Control::Shutdown`].

mod daemon;
mod error;
mod http;
mod job;
mod leader;
mod metrics;
mod page;
mod schedule;
mod state;
mod status;

pub use daemon::{Control, run};
pub use error::{Error, Result};
pub use job::{Job, Missed, Outcome};
pub use schedule::{Schedule, check_expression, check_zone};
pub use status::{Role, RunRecord, Section, StatusSections};

use std::net::SocketAddr;
use std::time::Duration;

/// The advisory lock key every replica competes for (`pg_try_advisory_lock(bigint)`), unless
/// [`Options::lock_key`] says otherwise: the bytes of "prodrdmn".
pub const DEFAULT_LOCK_KEY: i64 = 0x7072_6f64_7264_6d6e;
/// How long a leader may go without reaching the lock database before it steps down (and the server
/// ends its session).
pub const DEFAULT_LEASE: Duration = Duration::from_secs(15);
/// How long a shutdown waits for running jobs before cancelling them.
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a cancelled or timed-out job has between `SIGTERM` and `SIGKILL`.
pub const DEFAULT_KILL_GRACE: Duration = Duration::from_secs(10);
/// The table of runs in the lock database.
pub const RUNS_TABLE: &str = "prodready_daemon_runs";
/// Runs kept per job in the table.
pub const RUNS_KEPT: i64 = 200;

/// What the daemon runs and where.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Options {
    /// The HTTP address (`/metrics`, `/healthz`, `/readyz`, `/`).
    pub listen: SocketAddr,
    /// The PostgreSQL database holding the leader lock and the table of runs (a libpq URL).
    pub lock_url: String,
    /// The advisory lock key.
    pub lock_key: i64,
    /// See [`DEFAULT_LEASE`]; at least 1 s.
    pub lease: Duration,
    /// See [`DEFAULT_SHUTDOWN_TIMEOUT`].
    pub shutdown_timeout: Duration,
    /// See [`DEFAULT_KILL_GRACE`]; capped at two fifths of the lease (see [`effective_kill_grace`]).
    pub kill_grace: Duration,
    /// This replica's name in the table of runs and on the status page (e.g. `host:pid`).
    pub replica: String,
    /// The jobs, in display order; names are unique.
    pub jobs: Vec<Job>,
}

/// The grace a cancelled job gets between `SIGTERM` and `SIGKILL`: [`Options::kill_grace`], at most two
/// fifths of the lease. A leader that cannot reach the lock database steps down half a lease after its
/// last answer and cancels its jobs, and the server ends its session (releasing the lock to another
/// replica) a whole lease after it: the jobs must be gone in the half lease between.
pub fn effective_kill_grace(options: &Options) -> Duration {
    options.kill_grace.min(options.lease * 2 / 5)
}

impl Options {
    pub fn new(
        listen: SocketAddr,
        lock_url: impl Into<String>,
        replica: impl Into<String>,
        jobs: Vec<Job>,
    ) -> Self {
        Self {
            listen,
            lock_url: lock_url.into(),
            lock_key: DEFAULT_LOCK_KEY,
            lease: DEFAULT_LEASE,
            shutdown_timeout: DEFAULT_SHUTDOWN_TIMEOUT,
            kill_grace: DEFAULT_KILL_GRACE,
            replica: replica.into(),
            jobs,
        }
    }
}
