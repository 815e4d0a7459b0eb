//! Thresholds over a sliding window (beyond k6, which judges thresholds over the whole run only): a
//! threshold with `window = "30s"` must hold over every 30 s of the run, looked at once a second.
//!
//! Each windowed threshold keeps the slot's cumulative sink as of the last look and, for each second of
//! the window, what that second added (a histogram's non-empty buckets, not the histogram), plus their sum:
//! memory depends on the window's length, never on the run's.

use std::collections::VecDeque;
use std::time::Duration;

use crate::metrics::{Sink, Sinks, Slots, TrendDelta};
use crate::threshold::{Aggregation, Selector, Threshold};

/// A windowed threshold that failed in some window of the run: the metric (or sub-metric) and the
/// threshold's key (`p(95)<300 over 30s`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub(crate) struct WindowFailure {
    pub(crate) metric: String,
    pub(crate) threshold: String,
}

/// What one second added to a slot.
enum Delta {
    Counter(u64),
    Rate { trues: u64, falses: u64 },
    Trend(TrendDelta),
    None,
}

/// One windowed threshold as the run goes.
pub(crate) struct Window {
    pub(crate) selector: Selector,
    pub(crate) threshold: Threshold,
    slot: Option<usize>,
    /// Seconds (looks) the window spans.
    length: usize,
    /// The slot's cumulative sink at the last look.
    prev: Option<Sink>,
    /// The sum of `deltas`.
    sum: Option<Sink>,
    /// Per second (look) of the window: how long it lasted and what it added.
    deltas: VecDeque<(Duration, Delta)>,
    /// When the last look was.
    last: Duration,
    /// Looks so far.
    looks: usize,
    /// The first window that failed: its end (time into the run) and the value seen.
    pub(crate) failed: Option<(Duration, f64)>,
}

impl Window {
    /// The windowed thresholds of a plan.
    pub(crate) fn of(thresholds: &[(Selector, Vec<Threshold>)], slots: &Slots) -> Vec<Window> {
        thresholds
            .iter()
            .flat_map(|(selector, list)| list.iter().map(move |t| (selector, t)))
            .filter_map(|(selector, t)| {
                let window = t.window?;
                Some(Window {
                    selector: selector.clone(),
                    threshold: t.clone(),
                    slot: slots.slot(selector),
                    length: usize::try_from(window.as_secs()).unwrap_or(usize::MAX).max(1),
                    prev: None,
                    sum: None,
                    deltas: VecDeque::new(),
                    last: Duration::ZERO,
                    looks: 0,
                    failed: None,
                })
            })
            .collect()
    }

    /// Takes the second that ended at `elapsed` into the window and judges the window once it is full.
    /// Returns whether this look found the threshold failing.
    pub(crate) fn look(&mut self, sinks: &Sinks, elapsed: Duration) -> bool {
        self.looks += 1;
        self.advance(sinks, elapsed);
        if self.looks < self.length {
            return false;
        }
        self.judge(elapsed)
    }

    /// The run's end: the last (partial) second joins the last full window instead of pushing its
    /// oldest second out (judged alone, 1 response in 4 ms would read as 250/s), and a run shorter than
    /// the window is judged as a whole.
    pub(crate) fn finish(&mut self, sinks: &Sinks, elapsed: Duration) {
        self.push(sinks, elapsed);
        self.judge(elapsed);
    }

    fn advance(&mut self, sinks: &Sinks, elapsed: Duration) {
        self.push(sinks, elapsed);
        while self.deltas.len() > self.length {
            if let (Some((_, old)), Some(sum)) = (self.deltas.pop_front(), self.sum.as_mut()) {
                apply(sum, &old, false);
            }
        }
    }

    /// Adds what happened since the last look to the window, evicting nothing.
    fn push(&mut self, sinks: &Sinks, elapsed: Duration) {
        let Some(slot) = self.slot else { return };
        let now = &sinks.sinks[slot];
        let delta = match (now, &self.prev) {
            (Sink::Counter(c), Some(Sink::Counter(p))) => Delta::Counter(c - p),
            (Sink::Counter(c), _) => Delta::Counter(*c),
            (Sink::Rate { trues, falses }, Some(Sink::Rate { trues: t, falses: f })) => {
                Delta::Rate { trues: trues - t, falses: falses - f }
            }
            (Sink::Rate { trues, falses }, _) => Delta::Rate { trues: *trues, falses: *falses },
            (Sink::Trend(t), Some(Sink::Trend(p))) => Delta::Trend(t.since(Some(p))),
            (Sink::Trend(t), _) => Delta::Trend(t.since(None)),
            (Sink::Gauge, _) => Delta::None,
        };
        self.prev = Some(now.clone());
        let sum = self.sum.get_or_insert_with(|| now.emptied());
        apply(sum, &delta, true);
        self.deltas.push_back((elapsed.saturating_sub(self.last), delta));
        self.last = elapsed;
    }

    fn judge(&mut self, elapsed: Duration) -> bool {
        let Some(sum) = &self.sum else { return false };
        let agg = self.threshold.expr.aggregation;
        let value = match sum {
            #[allow(clippy::cast_precision_loss)]
            Sink::Counter(c) if agg == Aggregation::Rate => {
                // Per second over the time the window spans.
                let span: Duration = self.deltas.iter().map(|(d, _)| *d).sum();
                *c as f64 / span.as_secs_f64().max(1e-9)
            }
            #[allow(clippy::cast_precision_loss)]
            Sink::Counter(c) => *c as f64,
            Sink::Rate { trues, falses } => {
                let total = trues + falses;
                if total == 0 {
                    return false;
                }
                #[allow(clippy::cast_precision_loss)]
                let rate = *trues as f64 / total as f64;
                rate
            }
            Sink::Trend(t) if t.count() == 0 => return false,
            Sink::Trend(t) => t.stat(agg),
            Sink::Gauge => return false,
        };
        let fails = !self.threshold.expr.holds(value);
        if fails && self.failed.is_none() {
            self.failed = Some((elapsed, value));
        }
        fails
    }

    /// The key of this threshold in the summary.
    pub(crate) fn key(&self) -> String {
        self.threshold.key()
    }
}

fn apply(sum: &mut Sink, delta: &Delta, add: bool) {
    match (sum, delta) {
        (Sink::Counter(c), Delta::Counter(d)) => {
            if add {
                *c += d;
            } else {
                *c -= d;
            }
        }
        (Sink::Rate { trues, falses }, Delta::Rate { trues: t, falses: f }) => {
            if add {
                *trues += t;
                *falses += f;
            } else {
                *trues -= t;
                *falses -= f;
            }
        }
        (Sink::Trend(s), Delta::Trend(d)) => s.apply(d, add),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 100 responses a second for 3 s, then one more in the 4 ms before the end: `rate<200` over 1 s
    /// holds in every window, the last included (alone, the 4 ms tail read as 250/s).
    #[test]
    fn the_tail_of_a_run_joins_the_last_window() {
        let selector = Selector::parse("http_reqs").unwrap();
        let threshold = Threshold {
            expr: crate::threshold::Expr::parse("rate<200").unwrap(),
            abort_on_fail: false,
            delay_abort_eval: Duration::ZERO,
            window: Some(Duration::from_secs(1)),
        };
        let slots = Slots::new([selector.clone()]);
        let mut sinks = Sinks::new(&slots, 0);
        let slot = slots.slot(&selector).unwrap();
        let mut windows = Window::of(&[(selector, vec![threshold])], &slots);
        let window = &mut windows[0];
        for second in 1..=3 {
            sinks.sinks[slot] = Sink::Counter(100 * second);
            assert!(!window.look(&sinks, Duration::from_secs(second)), "second {second}");
        }
        sinks.sinks[slot] = Sink::Counter(301);
        window.finish(&sinks, Duration::from_millis(3004));
        assert_eq!(window.failed, None);
    }
}
