//! Execution segments (`--segment I/N`): one of N equal parts of a run, as k6 stripes its execution
//! segments. Every countable unit of the whole run (a VU, a shared iteration, an arrival of an
//! arrival-rate schedule, a level of a ramping-vus ramp) is numbered from 0, and unit `n` belongs to
//! segment `n % N + 1`: the N segments add up to the whole exactly, and an open-model segment keeps the
//! whole schedule's timing for the arrivals it owns.

use std::fmt;
use std::str::FromStr;

use crate::scenario::{Executor, Plan};

/// One of `count` equal segments, `index` from 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    index: u64,
    count: u64,
}

impl Default for Segment {
    fn default() -> Self {
        Self::WHOLE
    }
}

impl Segment {
    /// The whole run (`1/1`).
    pub const WHOLE: Segment = Segment { index: 1, count: 1 };

    /// Segment `index` (from 1) of `count`.
    pub fn new(index: u64, count: u64) -> Result<Self, String> {
        if count == 0 || index == 0 || index > count {
            return Err(format!(
                "segment {index}/{count}: write I/N with 1 <= I <= N (e.g. 2/3 for the second of three)"
            ));
        }
        Ok(Self { index, count })
    }

    /// The segment's number, from 1.
    pub fn index(self) -> u64 {
        self.index
    }

    /// How many segments the run is cut into.
    pub fn count(self) -> u64 {
        self.count
    }

    /// Whether this is the whole run.
    pub fn is_whole(self) -> bool {
        self.count == 1
    }

    /// How many of `total` units (VUs, iterations) are this segment's.
    pub fn share(self, total: u64) -> u64 {
        let offset = self.index - 1;
        if total <= offset { 0 } else { (total - 1 - offset) / self.count + 1 }
    }

    /// Whether unit `n` (from 0) of the whole run is this segment's.
    pub fn owns(self, n: u64) -> bool {
        n % self.count == self.index - 1
    }

    /// The whole run's number of this segment's `m`-th unit (both from 0).
    pub fn nth(self, m: u64) -> u64 {
        m.saturating_mul(self.count).saturating_add(self.index - 1)
    }

    /// Whether the plan can run as this segment: a segment that owns shared iterations or arrivals must
    /// own a VU to run them, and a run cut into segments has no windowed threshold (see
    /// [`windowed_refusal`]).
    pub fn check(self, plan: &Plan) -> Result<(), String> {
        if !self.is_whole()
            && let Some(why) = plan
                .thresholds
                .iter()
                .find_map(|(selector, list)| list.iter().find(|t| t.window.is_some()).map(|t| (selector, t)))
                .map(|(selector, t)| windowed_refusal(&format!("{selector} {}", t.key()), self.count))
        {
            return Err(why);
        }
        for s in &plan.scenarios {
            let (vus, what) = match &s.executor {
                Executor::SharedIterations { vus, iterations, .. } if self.share(*iterations) > 0 => {
                    (*vus, "vus")
                }
                Executor::ConstantArrivalRate { max_vus, .. }
                | Executor::RampingArrivalRate { max_vus, .. } => (*max_vus, "maxVUs"),
                _ => continue,
            };
            if self.share(vus) == 0 {
                return Err(format!(
                    "segment {self} of scenario `{}` gets none of its {vus} VU(s) ({what}) but has work to do: \
                     give the scenario at least {} VUs or cut the run into at most {vus} segments",
                    s.name, self.count
                ));
            }
        }
        Ok(())
    }
}

/// Why a run cut into `count` segments cannot have the windowed threshold `threshold` (`metric key`):
/// each segment sees only its share of every window (a counter's `count` and `rate` a 1/N part, a trend's
/// or rate's statistic on 1/N of the samples), and the merge has the segments' verdicts, not the windows'
/// samples, so it could not give the whole run's verdict.
pub(crate) fn windowed_refusal(threshold: &str, count: u64) -> String {
    format!(
        "the threshold `{threshold}` has a window, which a run cut into {count} segments cannot judge: each \
         segment sees only 1/{count} of every window's samples and a merge of their results gets their \
         verdicts, not the samples; run the plan whole or drop the window"
    )
}

impl fmt::Display for Segment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl FromStr for Segment {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let bad = || format!("`{text}` is not a segment: write I/N, e.g. 2/3 for the second of three");
        let (i, n) = text.trim().split_once('/').ok_or_else(bad)?;
        let i: u64 = i.trim().parse().map_err(|_| bad())?;
        let n: u64 = n.trim().parse().map_err(|_| bad())?;
        Self::new(i, n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_add_up_to_the_whole() {
        for count in 1..=7u64 {
            for total in 0..=50u64 {
                let segments: Vec<Segment> = (1..=count).map(|i| Segment::new(i, count).unwrap()).collect();
                assert_eq!(
                    segments.iter().map(|s| s.share(total)).sum::<u64>(),
                    total,
                    "{total} over {count}"
                );
                for n in 0..total {
                    assert_eq!(segments.iter().filter(|s| s.owns(n)).count(), 1);
                }
                for s in &segments {
                    let owned: Vec<u64> = (0..total).filter(|n| s.owns(*n)).collect();
                    let nth: Vec<u64> = (0..s.share(total)).map(|m| s.nth(m)).collect();
                    assert_eq!(owned, nth);
                }
            }
        }
        assert_eq!("2/3".parse::<Segment>().unwrap().share(10), 3);
        assert_eq!("1/3".parse::<Segment>().unwrap().share(10), 4);
        assert!("0/3".parse::<Segment>().is_err());
        assert!("4/3".parse::<Segment>().is_err());
        assert!("1-3".parse::<Segment>().is_err());
    }
}
