//! The agent's counters, and their exposition through a `prometheus-client` registry.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use prodready_metrics::names;
use prodready_metrics::prometheus_client::collector::Collector;
use prodready_metrics::prometheus_client::encoding::{DescriptorEncoder, EncodeMetric as _};
use prodready_metrics::prometheus_client::metrics::MetricType;
use prodready_metrics::prometheus_client::metrics::counter::ConstCounter;
use prodready_metrics::prometheus_client::metrics::gauge::ConstGauge;
use prodready_metrics::prometheus_client::registry::Registry;

/// The agent's counters (also served as metrics).
#[derive(Debug, Default)]
pub struct ShipStats {
    pub lines_sent: AtomicU64,
    pub bytes_sent: AtomicU64,
    pub lines_rejected: AtomicU64,
    /// Files truncated in place before they were read to the end (the unread rest is lost).
    pub truncations: AtomicU64,
    /// Files found while another file with the same first line was being read (they wait their turn).
    pub fingerprint_collisions: AtomicU64,
    pub retries: AtomicU64,
    pub lines_resent: AtomicU64,
    pub files_watched: AtomicU64,
    /// Descriptors held for files being read.
    pub files_open: AtomicU64,
    pub lag_bytes: AtomicU64,
    pub last_sent_unix: AtomicU64,
    pub batches_sent: AtomicU64,
    /// Bytes read from files (newlines included), and of those acknowledged or rejected: the difference
    /// is in flight.
    pub bytes_read: AtomicU64,
    pub bytes_done: AtomicU64,
}

/// A registry serving `stats` and the process's own metrics, read at each scrape.
pub(super) fn registry(stats: Arc<ShipStats>) -> Registry {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(StatsCollector(stats)));
    prodready_metrics::exposition::register_process_metrics(&mut registry);
    registry
}

#[derive(Debug)]
struct StatsCollector(Arc<ShipStats>);

impl Collector for StatsCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let s = &self.0;
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let counters = [
            (names::LOGS_SHIP_LINES_SENT_TOTAL, "Lines Loki acknowledged", get(&s.lines_sent)),
            (names::LOGS_SHIP_BYTES_SENT_TOTAL, "Bytes of lines Loki acknowledged", get(&s.bytes_sent)),
            (
                names::LOGS_SHIP_FINGERPRINT_COLLISIONS_TOTAL,
                "Files found while another file with the same first line was being read",
                get(&s.fingerprint_collisions),
            ),
            (
                names::LOGS_SHIP_TRUNCATIONS_TOTAL,
                "Files truncated in place before they were read to the end",
                get(&s.truncations),
            ),
            (
                names::LOGS_SHIP_RETRIES_TOTAL,
                "Pushes retried after 429, 5xx or transport errors",
                get(&s.retries),
            ),
            (
                names::LOGS_SHIP_LINES_RESENT_TOTAL,
                "Lines sent again after a restart (possible duplicates)",
                get(&s.lines_resent),
            ),
        ];
        for (name, help, value) in counters {
            let family = name.strip_suffix("_total").unwrap_or(name);
            ConstCounter::new(value).encode(encoder.encode_descriptor(
                family,
                &format!("{help}."),
                None,
                MetricType::Counter,
            )?)?;
        }
        let dropped = names::LOGS_SHIP_LINES_DROPPED_TOTAL;
        let mut family = encoder.encode_descriptor(
            dropped.strip_suffix("_total").unwrap_or(dropped),
            "Lines given up on, by reason.",
            None,
            MetricType::Counter,
        )?;
        let labels = [("reason", "rejected")];
        ConstCounter::new(get(&s.lines_rejected)).encode(family.encode_family(&labels)?)?;
        let gauges = [
            (
                names::LOGS_SHIP_LAG_BYTES,
                "Bytes in watched files not yet acknowledged by Loki",
                get(&s.lag_bytes),
            ),
            (names::LOGS_SHIP_FILES_WATCHED, "Files being followed", get(&s.files_watched)),
            (names::LOGS_SHIP_FILES_OPEN, "Descriptors held for files being read", get(&s.files_open)),
            (names::LOGS_SHIP_LAST_SENT, "Unix time of the last acknowledged push", get(&s.last_sent_unix)),
        ];
        for (name, help, value) in gauges {
            let value = i64::try_from(value).unwrap_or(i64::MAX);
            ConstGauge::new(value).encode(encoder.encode_descriptor(
                name,
                &format!("{help}."),
                None,
                MetricType::Gauge,
            )?)?;
        }
        Ok(())
    }
}
