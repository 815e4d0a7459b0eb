//! Database monitoring (feature `monitor`): what the statistics views say about a database, collected
//! with the least privilege (`pg_monitor`), and exported through prodready-metrics.
//!
//! - [`Monitor::collect`]: one database's [`Snapshot`] (connections, transactions, locks, cache, temp
//!   files, tables and indexes, replication and slots, WAL, checkpoints, and pg_stat_statements).
//! - pg_stat_statements counters are made monotonic across `pg_stat_statements_reset()` and evictions,
//!   bounded to the top N statements by total time plus one `other` total, and read without their text
//!   except for statements newly in the top N (see [`normalize`] for the text).
//! - [`Exporter`]: several databases scraped concurrently, each within a timeout, into one registry.

mod collect;
mod export;
mod statements;

pub use collect::{
    Archiving, CollectError, DatabaseStats, Families, IndexStats, Monitor, QUERY_CHARS, ReplicaStats,
    SlotStats, Snapshot, Statement, StatementStats, TableStats, TopBy, top,
};
pub use export::{Exporter, ExporterOptions, Notice, Scraped, render};
pub use statements::{Ranked, Totals, Tracker, normalize};

/// Statements, tables and indexes reported per database unless configured otherwise.
pub const DEFAULT_TOP_N: usize = 50;
