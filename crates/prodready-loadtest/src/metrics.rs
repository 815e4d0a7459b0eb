//! Where samples go: one set of sinks per worker thread (HDR histograms for trends), merged when a
//! summary or a threshold needs them. Memory depends on the metrics and the worker count, never on how
//! long the run lasts.

use std::cell::Cell;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use hdrhistogram::Histogram;

use crate::threshold::{Aggregation, Metric, MetricType, Selector};

/// Microseconds; the unit of every trend sink (summaries show milliseconds, as k6 does).
pub(crate) type Micros = u64;

/// The distribution of one trend: an HDR histogram (3 significant figures, resized as values grow)
/// plus the exact count, sum, minimum and maximum.
#[derive(Clone)]
pub(crate) struct TrendSink {
    hist: Histogram<u64>,
    count: u64,
    sum: u128,
    min: Micros,
    max: Micros,
}

impl TrendSink {
    fn new() -> Self {
        Self {
            hist: Histogram::new(3).expect("3 significant figures is a valid histogram precision"),
            count: 0,
            sum: 0,
            min: Micros::MAX,
            max: 0,
        }
    }

    pub(crate) fn record(&mut self, value: Micros) {
        // The histogram grows to fit; recording fails only on absurd values, which saturate.
        if self.hist.record(value).is_err() {
            self.hist.saturating_record(value);
        }
        self.count += 1;
        self.sum += u128::from(value);
        self.min = self.min.min(value);
        self.max = self.max.max(value);
    }

    fn merge(&mut self, other: &TrendSink) {
        if other.count == 0 {
            return;
        }
        let _ = self.hist.add(&other.hist);
        self.count += other.count;
        self.sum += other.sum;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
    }

    pub(crate) fn count(&self) -> u64 {
        self.count
    }

    /// What this sink holds beyond `earlier`, an earlier state of the same sink: the counts of the
    /// non-empty buckets only.
    pub(crate) fn since(&self, earlier: Option<&TrendSink>) -> TrendDelta {
        let recorded = |h: &Histogram<u64>| -> Vec<(u64, u64)> {
            h.iter_recorded().map(|v| (v.value_iterated_to(), v.count_at_value())).collect()
        };
        match earlier {
            Some(e) if e.count > 0 => {
                let mut diff = self.hist.clone();
                // `earlier` is contained in `self`: nothing can go below zero.
                let _ = diff.subtract(&e.hist);
                TrendDelta { count: self.count - e.count, sum: self.sum - e.sum, buckets: recorded(&diff) }
            }
            _ => TrendDelta { count: self.count, sum: self.sum, buckets: recorded(&self.hist) },
        }
    }

    /// Adds a delta to this sink, or takes one away that was added before. The minimum and maximum
    /// then come from the histogram (to its precision).
    pub(crate) fn apply(&mut self, delta: &TrendDelta, add: bool) {
        if delta.count == 0 {
            return;
        }
        if add {
            for &(value, count) in &delta.buckets {
                if self.hist.record_n(value, count).is_err() {
                    self.hist.saturating_record(value);
                }
            }
            self.count += delta.count;
            self.sum += delta.sum;
        } else {
            let mut gone = Histogram::new_from(&self.hist);
            for &(value, count) in &delta.buckets {
                let _ = gone.record_n(value, count);
            }
            let _ = self.hist.subtract(&gone);
            self.count -= delta.count;
            self.sum -= delta.sum;
        }
        if self.count == 0 {
            (self.min, self.max) = (Micros::MAX, 0);
        } else {
            (self.min, self.max) = (self.hist.min(), self.hist.max());
        }
    }

    /// The sink as data: exact count, sum, minimum and maximum, and every histogram bucket with its
    /// count (each bucket's highest equivalent value), from which [`TrendSink::from_data`] rebuilds the
    /// same histogram.
    pub(crate) fn to_data(&self) -> TrendData {
        let empty = self.count == 0;
        TrendData {
            count: self.count,
            sum: self.sum,
            min: if empty { 0 } else { self.min },
            max: self.max,
            buckets: self.hist.iter_recorded().map(|v| [v.value_iterated_to(), v.count_at_value()]).collect(),
        }
    }

    pub(crate) fn from_data(data: &TrendData) -> Result<Self, String> {
        let mut sink = Self::new();
        for [value, count] in &data.buckets {
            sink.hist.record_n(*value, *count).map_err(|e| format!("histogram bucket {value}: {e:?}"))?;
        }
        if sink.hist.len() != data.count {
            return Err(format!(
                "the histogram holds {} values but the count says {}",
                sink.hist.len(),
                data.count
            ));
        }
        sink.count = data.count;
        sink.sum = data.sum;
        if data.count > 0 {
            sink.min = data.min;
            sink.max = data.max;
        }
        Ok(sink)
    }

    /// The statistic in milliseconds (0 when there is no sample, as in k6).
    pub(crate) fn stat(&self, agg: Aggregation) -> f64 {
        if self.count == 0 {
            return 0.0;
        }
        #[allow(clippy::cast_precision_loss)]
        let ms = |us: u64| us as f64 / 1000.0;
        match agg {
            #[allow(clippy::cast_precision_loss)]
            Aggregation::Avg => self.sum as f64 / self.count as f64 / 1000.0,
            Aggregation::Min => ms(self.min),
            Aggregation::Max => ms(self.max),
            Aggregation::Med => self.quantile(0.5) / 1000.0,
            Aggregation::Percentile(p) => self.quantile(p / 100.0) / 1000.0,
            #[allow(clippy::cast_precision_loss)]
            Aggregation::Count => self.count as f64,
            Aggregation::Rate | Aggregation::Value => 0.0,
        }
    }

    /// The `q` quantile in microseconds, as k6 computes it from its samples: between the order statistics
    /// around rank `q × (count − 1)`, linearly (the median of 100 and 200 is 150). Each order statistic is
    /// its histogram bucket's middle (within 0.1%), the smallest and largest the exact min and max.
    fn quantile(&self, q: f64) -> f64 {
        #[allow(clippy::cast_precision_loss)]
        let exact = |us: Micros| us as f64;
        let n = self.count.min(self.hist.len());
        if n <= 1 {
            return exact(self.min);
        }
        #[allow(clippy::cast_precision_loss)]
        let rank = q.clamp(0.0, 1.0) * (n - 1) as f64;
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let (lo, hi) = (rank.floor() as u64, rank.ceil() as u64);
        // The value of the order statistic `i` (from 0).
        let (mut lo_value, mut hi_value) = (None, None);
        let mut seen = 0u64;
        for bucket in self.hist.iter_recorded() {
            seen += bucket.count_at_value();
            let middle = exact(self.hist.median_equivalent(bucket.value_iterated_to()));
            if lo_value.is_none() && lo < seen {
                lo_value = Some(middle);
            }
            if hi < seen {
                hi_value = Some(middle);
                break;
            }
        }
        let at = |i: u64, value: Option<f64>| match i {
            0 => exact(self.min),
            i if i == n - 1 => exact(self.max),
            _ => value.unwrap_or_else(|| exact(self.max)).clamp(exact(self.min), exact(self.max)),
        };
        let (a, b) = (at(lo, lo_value), at(hi, hi_value));
        a + (b - a) * (rank - rank.floor())
    }
}

/// What a trend sink gained over some time: count, sum and the counts of its non-empty buckets.
pub(crate) struct TrendDelta {
    count: u64,
    sum: u128,
    buckets: Vec<(u64, u64)>,
}

/// A trend sink as data (values in microseconds).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct TrendData {
    pub(crate) count: u64,
    pub(crate) sum: u128,
    pub(crate) min: Micros,
    pub(crate) max: Micros,
    /// `[value, count]` per recorded histogram bucket.
    pub(crate) buckets: Vec<[u64; 2]>,
}

/// One slot's sink.
#[derive(Clone)]
pub(crate) enum Sink {
    Counter(u64),
    Rate {
        trues: u64,
        falses: u64,
    },
    Trend(Box<TrendSink>),
    /// Gauges are sampled by the run itself, not recorded per sample.
    Gauge,
}

impl Sink {
    fn new(t: MetricType) -> Self {
        match t {
            MetricType::Counter => Sink::Counter(0),
            MetricType::Rate => Sink::Rate { trues: 0, falses: 0 },
            MetricType::Trend => Sink::Trend(Box::new(TrendSink::new())),
            MetricType::Gauge => Sink::Gauge,
        }
    }

    /// An empty sink of the same kind.
    pub(crate) fn emptied(&self) -> Sink {
        match self {
            Sink::Counter(_) => Sink::Counter(0),
            Sink::Rate { .. } => Sink::Rate { trues: 0, falses: 0 },
            Sink::Trend(_) => Sink::Trend(Box::new(TrendSink::new())),
            Sink::Gauge => Sink::Gauge,
        }
    }

    fn merge(&mut self, other: &Sink) {
        match (self, other) {
            (Sink::Counter(a), Sink::Counter(b)) => *a += b,
            (Sink::Rate { trues, falses }, Sink::Rate { trues: t, falses: f }) => {
                *trues += t;
                *falses += f;
            }
            (Sink::Trend(a), Sink::Trend(b)) => a.merge(b),
            _ => {}
        }
    }
}

/// The metrics and sub-metrics of a run, each with a slot: slot `m.index()` is metric `m` itself,
/// the slots after [`Metric::COUNT`] are sub-metrics.
#[derive(Debug, Clone)]
pub(crate) struct Slots {
    /// Every sub-metric, by slot minus [`Metric::COUNT`].
    pub(crate) subs: Vec<Selector>,
    /// For each metric, its sub-metric slots.
    by_metric: Vec<Vec<usize>>,
}

impl Slots {
    pub(crate) fn new(selectors: impl IntoIterator<Item = Selector>) -> Self {
        let mut subs: Vec<Selector> = Vec::new();
        for s in selectors {
            if !s.tags.is_empty() && !subs.contains(&s) {
                subs.push(s);
            }
        }
        let mut by_metric = vec![Vec::new(); Metric::COUNT];
        for (i, s) in subs.iter().enumerate() {
            by_metric[s.metric.index()].push(Metric::COUNT + i);
        }
        Self { subs, by_metric }
    }

    pub(crate) fn len(&self) -> usize {
        Metric::COUNT + self.subs.len()
    }

    /// The metric type of a slot.
    pub(crate) fn type_of(&self, slot: usize) -> MetricType {
        self.metric_type(slot)
    }

    /// The slot of a metric or sub-metric.
    pub(crate) fn slot(&self, selector: &Selector) -> Option<usize> {
        if selector.tags.is_empty() {
            return Some(selector.metric.index());
        }
        self.subs.iter().position(|s| s == selector).map(|i| Metric::COUNT + i)
    }

    pub(crate) fn selector(&self, slot: usize) -> Selector {
        match slot.checked_sub(Metric::COUNT) {
            Some(i) => self.subs[i].clone(),
            None => Selector {
                metric: Metric::ALL.into_iter().find(|m| m.index() == slot).expect("slot of a metric"),
                tags: Vec::new(),
            },
        }
    }

    fn metric_type(&self, slot: usize) -> MetricType {
        self.selector(slot).metric.metric_type()
    }
}

/// A sample's tags, looked up only when a sub-metric filters on them.
pub(crate) trait Tags {
    fn matches(&self, key: &str, value: &str) -> bool;
}

/// Every sink of one worker (or the merge of all).
#[derive(Clone)]
pub(crate) struct Sinks {
    pub(crate) sinks: Vec<Sink>,
    /// Per check: passes and fails.
    pub(crate) checks: Vec<[u64; 2]>,
}

impl Sinks {
    pub(crate) fn new(slots: &Slots, checks: usize) -> Self {
        Self {
            sinks: (0..slots.len()).map(|s| Sink::new(slots.metric_type(s))).collect(),
            checks: vec![[0; 2]; checks],
        }
    }

    fn each(&mut self, slots: &Slots, metric: Metric, tags: &dyn Tags, mut f: impl FnMut(&mut Sink)) {
        f(&mut self.sinks[metric.index()]);
        for &slot in &slots.by_metric[metric.index()] {
            let filter = &slots.subs[slot - Metric::COUNT].tags;
            if filter.iter().all(|(k, v)| tags.matches(k, v)) {
                f(&mut self.sinks[slot]);
            }
        }
    }

    pub(crate) fn trend(&mut self, slots: &Slots, metric: Metric, tags: &dyn Tags, value: Micros) {
        self.each(slots, metric, tags, |s| {
            if let Sink::Trend(t) = s {
                t.record(value);
            }
        });
    }

    pub(crate) fn rate(&mut self, slots: &Slots, metric: Metric, tags: &dyn Tags, value: bool) {
        self.each(slots, metric, tags, |s| {
            if let Sink::Rate { trues, falses } = s {
                if value {
                    *trues += 1;
                } else {
                    *falses += 1;
                }
            }
        });
    }

    pub(crate) fn add(&mut self, slots: &Slots, metric: Metric, tags: &dyn Tags, n: u64) {
        self.each(slots, metric, tags, |s| {
            if let Sink::Counter(c) = s {
                *c += n;
            }
        });
    }

    pub(crate) fn merge(&mut self, other: &Sinks) {
        for (a, b) in self.sinks.iter_mut().zip(&other.sinks) {
            a.merge(b);
        }
        for (a, b) in self.checks.iter_mut().zip(&other.checks) {
            a[0] += b[0];
            a[1] += b[1];
        }
    }
}

/// A gauge sampled over the run: last value, minimum, maximum.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct GaugeValue {
    pub(crate) value: u64,
    pub(crate) min: u64,
    pub(crate) max: u64,
    pub(crate) seen: bool,
}

impl GaugeValue {
    pub(crate) fn sample(&mut self, v: u64) {
        if self.seen {
            self.min = self.min.min(v);
            self.max = self.max.max(v);
        } else {
            *self = GaugeValue { value: v, min: v, max: v, seen: true };
        }
        self.value = v;
    }
}

/// Sinks sharded by worker thread: a thread records into its own shard (an uncontended lock), and
/// [`Recorder::merged`] adds the shards up.
pub(crate) struct Recorder {
    pub(crate) slots: Slots,
    shards: Box<[Mutex<Sinks>]>,
}

static NEXT_SHARD: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static SHARD: Cell<usize> = const { Cell::new(usize::MAX) };
}

impl Recorder {
    pub(crate) fn new(slots: Slots, checks: usize, shards: usize) -> Self {
        let shards = (0..shards.max(1)).map(|_| Mutex::new(Sinks::new(&slots, checks))).collect();
        Self { slots, shards }
    }

    /// Runs `f` on this thread's shard.
    pub(crate) fn with<R>(&self, f: impl FnOnce(&mut Sinks, &Slots) -> R) -> R {
        let index = SHARD.with(|s| {
            let mut i = s.get();
            if i == usize::MAX {
                i = NEXT_SHARD.fetch_add(1, Ordering::Relaxed);
                s.set(i);
            }
            i
        }) % self.shards.len();
        let mut shard = self.shards[index].lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut shard, &self.slots)
    }

    /// Every shard added up.
    pub(crate) fn merged(&self) -> Sinks {
        let mut out: Option<Sinks> = None;
        for shard in &self.shards {
            let shard = shard.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            match &mut out {
                None => out = Some(shard.clone()),
                Some(o) => o.merge(&shard),
            }
        }
        out.expect("a recorder has at least one shard")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Status(u16);
    impl Tags for Status {
        fn matches(&self, key: &str, value: &str) -> bool {
            key == "status" && value.parse() == Ok(self.0)
        }
    }

    #[test]
    fn sub_metrics_and_merge() {
        let sub = Selector::parse("http_req_duration{status:200}").unwrap();
        let slots = Slots::new([sub.clone(), sub.clone()]);
        assert_eq!(slots.len(), Metric::COUNT + 1);
        let mut a = Sinks::new(&slots, 0);
        let mut b = Sinks::new(&slots, 0);
        for v in 1..=1000 {
            a.trend(&slots, Metric::HttpReqDuration, &Status(200), v * 1000);
        }
        b.trend(&slots, Metric::HttpReqDuration, &Status(500), 5_000_000);
        a.merge(&b);
        let Sink::Trend(all) = &a.sinks[Metric::HttpReqDuration.index()] else { panic!() };
        let Sink::Trend(ok) = &a.sinks[slots.slot(&sub).unwrap()] else { panic!() };
        assert_eq!((all.count(), ok.count()), (1001, 1000));
        assert_eq!(all.stat(Aggregation::Max), 5000.0);
        assert_eq!(ok.stat(Aggregation::Max), 1000.0);
        assert_eq!(ok.stat(Aggregation::Avg), 500.5);
        // 3 significant figures: within 0.1%.
        let p95 = ok.stat(Aggregation::Percentile(95.0));
        assert!((p95 - 950.0).abs() <= 1.0, "{p95}");
        assert_eq!(ok.stat(Aggregation::Min), 1.0);
    }

    /// k6's percentiles: linear between the order statistics around rank p × (n − 1). Checked against
    /// k6 1.1: two samples of 100 and 200 ms give med 150 and p(95) 195.
    #[test]
    fn percentiles_interpolate_as_k6_does() {
        let check = |samples_ms: &[u64], agg: Aggregation, expected: f64| {
            let mut sink = TrendSink::new();
            for ms in samples_ms {
                sink.record(ms * 1000);
            }
            let got = sink.stat(agg);
            assert!(
                (got - expected).abs() <= expected * 0.001,
                "{samples_ms:?} {agg:?}: {got}, k6 {expected}"
            );
        };
        check(&[100, 200], Aggregation::Med, 150.0);
        check(&[100, 200], Aggregation::Percentile(95.0), 195.0);
        check(&[100], Aggregation::Percentile(99.0), 100.0);
        check(&[10, 20, 30, 40], Aggregation::Med, 25.0);
        check(&[10, 20, 30, 40], Aggregation::Percentile(90.0), 37.0);
        check(&[10, 20, 30, 40], Aggregation::Percentile(0.0), 10.0);
        check(&[10, 20, 30, 40], Aggregation::Percentile(100.0), 40.0);
        check(&[5, 5, 5, 1000], Aggregation::Percentile(50.0), 5.0);
    }
}
