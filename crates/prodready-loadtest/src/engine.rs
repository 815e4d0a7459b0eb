//! The generator: scenarios on a tokio runtime, VUs as tasks, k6's six executors. Arrival-rate
//! executors time every iteration from its intended start: an iteration that finds no free VU waits for
//! the next one and its first request's latency counts from when it should have started; iterations still
//! waiting when the scenario's duration ends are `dropped_iterations`.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::task::JoinSet;
use tokio::time::{Instant, sleep_until};
use tokio_util::sync::CancellationToken;

use crate::client::{Client, Connector, Encoder, Response, Target};
use crate::metrics::{GaugeValue, Recorder, Sinks, Slots, Tags};
use crate::result::RunResult;
use crate::scenario::{CheckKind, Executor, Plan, Request, Scenario, Stage, ThinkTime, VarSource, json_at};
use crate::segment::Segment;
use crate::summary::{self, Summary};
use crate::threshold::{Metric, Selector};
use crate::window::{Window, WindowFailure};

/// A live-view callback.
pub type OnProgress = Box<dyn Fn(&Progress) + Send + Sync>;

/// How a run is carried out, beyond its plan.
pub struct RunOptions {
    /// Called about once a second with the run so far (for a live view).
    pub progress: Option<OnProgress>,
    /// How long one request may take before it fails (k6's default: 60 s).
    pub request_timeout: Duration,
    /// Worker shards for the metric sinks (usually the runtime's worker count).
    pub shards: usize,
    /// The part of the run to carry out (`--segment I/N`); the whole run by default.
    pub segment: Segment,
    /// CA certificates (DER) that https targets' certificates must chain to: the system's, usually,
    /// which the caller loads. None, and https requests fail unless the plan sets
    /// `insecureSkipTLSVerify`. Needs the `tls` feature.
    pub tls_roots: Vec<Vec<u8>>,
    /// When this completes (SIGINT or SIGTERM, in the binary), the run stops as an abort does: running
    /// iterations are cut, and the report covers what ran, with [`Report::interrupted`] set.
    pub interrupt: Option<std::pin::Pin<Box<dyn Future<Output = ()> + Send>>>,
}

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            progress: None,
            request_timeout: Duration::from_secs(60),
            shards: std::thread::available_parallelism().map_or(2, std::num::NonZero::get),
            segment: Segment::WHOLE,
            tls_roots: Vec::new(),
            interrupt: None,
        }
    }
}

/// The live view of a run.
#[derive(Debug, Clone)]
pub struct Progress {
    pub elapsed: Duration,
    /// The longest the run can take.
    pub planned: Duration,
    pub requests: u64,
    pub iterations: u64,
    pub dropped_iterations: u64,
    pub failed_requests: u64,
    pub vus: u64,
    pub vus_max: u64,
}

/// The outcome of a run.
#[derive(Debug, Clone)]
pub struct Report {
    pub summary: Summary,
    /// Set when an abort-on-fail threshold stopped the run: which one.
    pub aborted_by: Option<String>,
    /// The run's metrics in mergeable form (`load merge` adds segments up).
    pub result: RunResult,
    /// The run was stopped from outside ([`RunOptions::interrupt`]) before its end.
    pub interrupted: bool,
}

impl Report {
    /// Whether every threshold held and none aborted the run (k6 exits 99 otherwise).
    pub fn thresholds_ok(&self) -> bool {
        self.aborted_by.is_none() && self.summary.thresholds_ok()
    }
}

struct Shared {
    plan: Arc<Plan>,
    recorder: Recorder,
    start: Instant,
    abort: CancellationToken,
    vus: AtomicU64,
    /// The most VUs active at once so far.
    vus_peak: AtomicU64,
    vus_max: AtomicU64,
    next_vu: AtomicU64,
    data_cursor: Vec<AtomicU64>,
    request_timeout: Duration,
    /// How VUs set up https connections.
    connector: Connector,
    /// Literal URLs, parsed once: per scenario, per request.
    targets: Vec<Vec<Option<Target>>>,
    segment: Segment,
}

/// Runs a plan to its end (every run is bounded: durations, `maxDuration`, graceful stops) or until an
/// abort-on-fail threshold fails. Call it inside a tokio runtime with time and I/O enabled.
pub async fn run(plan: Arc<Plan>, mut options: RunOptions) -> Report {
    let mut selectors: Vec<Selector> = plan.thresholds.iter().map(|(s, _)| s.clone()).collect();
    // k6 always reports this sub-metric.
    selectors.push(expected_response());
    let recorder = Recorder::new(Slots::new(selectors), plan.check_names.len(), options.shards);
    let targets = plan
        .scenarios
        .iter()
        .map(|s| s.requests.iter().map(|r| r.url.as_literal().and_then(|u| Target::parse(u).ok())).collect())
        .collect();
    let shared = Arc::new(Shared {
        data_cursor: plan.vars.data.iter().map(|_| AtomicU64::new(0)).collect(),
        plan: plan.clone(),
        recorder,
        start: Instant::now(),
        abort: CancellationToken::new(),
        vus: AtomicU64::new(0),
        vus_peak: AtomicU64::new(0),
        vus_max: AtomicU64::new(0),
        next_vu: AtomicU64::new(1),
        request_timeout: options.request_timeout,
        connector: Connector::new(&options.tls_roots, plan.insecure_skip_tls_verify),
        targets,
        segment: options.segment,
    });
    let interrupted = Arc::new(AtomicBool::new(false));
    let watcher = options.interrupt.take().map(|signal| {
        let (abort, flag) = (shared.abort.clone(), interrupted.clone());
        tokio::spawn(async move {
            signal.await;
            flag.store(true, Ordering::Relaxed);
            abort.cancel();
        })
    });
    let mut scenarios = JoinSet::new();
    for index in 0..plan.scenarios.len() {
        scenarios.spawn(run_scenario(shared.clone(), index));
    }
    let mut vus_gauge = GaugeValue::default();
    let mut vus_max_gauge = GaugeValue::default();
    let aborts: Vec<_> = plan
        .thresholds
        .iter()
        .flat_map(|(sel, ts)| {
            ts.iter().filter(|t| t.abort_on_fail && t.window.is_none()).map(move |t| (sel.clone(), t.clone()))
        })
        .collect();
    // Windowed thresholds are looked at every second, their abort-on-fail too.
    let mut windows = Window::of(&plan.thresholds, &shared.recorder.slots);
    let mut aborted_by = None;
    // Gauges are sampled, abort-on-fail thresholds (once their delay has passed) looked at, and progress
    // reported every second.
    let mut tick = tokio::time::interval_at(shared.start + Duration::from_secs(1), Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            joined = scenarios.join_next() => match joined {
                Some(Err(e)) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                Some(_) => {}
                None => break,
            },
            _ = tick.tick() => {
                vus_gauge.sample(shared.vus.load(Ordering::Relaxed));
                vus_max_gauge.sample(shared.vus_max.load(Ordering::Relaxed));
                let elapsed = shared.start.elapsed();
                let due: Vec<_> = aborts.iter().filter(|(_, t)| elapsed >= t.delay_abort_eval).collect();
                if (due.is_empty() || aborted_by.is_some()) && options.progress.is_none() && windows.is_empty() {
                    continue;
                }
                let sinks = shared.recorder.merged();
                for w in &mut windows {
                    let failed = w.look(&sinks, elapsed);
                    if failed
                        && aborted_by.is_none()
                        && w.threshold.abort_on_fail
                        && elapsed >= w.threshold.delay_abort_eval
                    {
                        aborted_by = Some(format!("{} {}", w.selector, w.key()));
                        shared.abort.cancel();
                    }
                }
                if aborted_by.is_none() {
                    for (sel, t) in due {
                        if !summary::has_samples(&sinks, &shared.recorder.slots, sel) {
                            continue;
                        }
                        let value = summary::observe(&sinks, &shared.recorder.slots, sel, t.expr.aggregation, elapsed, vus_gauge, vus_max_gauge);
                        if !t.expr.holds(value) {
                            aborted_by = Some(format!("{sel} {}", t.key()));
                            shared.abort.cancel();
                            break;
                        }
                    }
                }
                if let Some(progress) = &options.progress {
                    progress(&progress_of(&sinks, elapsed, &plan, vus_gauge.value, vus_max_gauge.value));
                }
            }
        }
    }
    let elapsed = shared.start.elapsed();
    // The peak counts even when it fell between two samples (a run shorter than a second has none).
    vus_gauge.sample(shared.vus_peak.load(Ordering::Relaxed));
    vus_gauge.sample(shared.vus.load(Ordering::Relaxed));
    vus_max_gauge.sample(shared.vus_max.load(Ordering::Relaxed));
    let sinks = shared.recorder.merged();
    for w in &mut windows {
        w.finish(&sinks, elapsed);
    }
    let window_failures: Vec<WindowFailure> = windows
        .iter()
        .filter(|w| w.failed.is_some())
        .map(|w| WindowFailure { metric: w.selector.to_string(), threshold: w.key() })
        .collect();
    let summary = summary::build(
        &plan,
        &sinks,
        &shared.recorder.slots,
        elapsed,
        vus_gauge,
        vus_max_gauge,
        &window_failures,
        aborted_by.as_deref(),
    );
    let result = RunResult::new(
        &plan,
        options.segment,
        &sinks,
        &shared.recorder.slots,
        elapsed,
        [vus_gauge, vus_max_gauge],
        aborted_by.clone(),
        window_failures,
    );
    if let Some(watcher) = watcher {
        watcher.abort();
    }
    Report { summary, aborted_by, result, interrupted: interrupted.load(Ordering::Relaxed) }
}

fn expected_response() -> Selector {
    Selector {
        metric: Metric::HttpReqDuration,
        tags: vec![("expected_response".to_owned(), "true".to_owned())],
    }
}

fn progress_of(sinks: &Sinks, elapsed: Duration, plan: &Plan, vus: u64, vus_max: u64) -> Progress {
    let counter = |m: Metric| match &sinks.sinks[m.index()] {
        crate::metrics::Sink::Counter(c) => *c,
        _ => 0,
    };
    let failed = match &sinks.sinks[Metric::HttpReqFailed.index()] {
        crate::metrics::Sink::Rate { trues, .. } => *trues,
        _ => 0,
    };
    Progress {
        elapsed,
        planned: plan.max_duration(),
        requests: counter(Metric::HttpReqs),
        iterations: counter(Metric::Iterations),
        dropped_iterations: counter(Metric::DroppedIterations),
        failed_requests: failed,
        vus,
        vus_max,
    }
}

/// A virtual user: its connections, its counters, its random numbers.
struct Vu {
    id: u64,
    iteration: u64,
    client: Client,
    rng: fastrand::Rng,
    buf: String,
    /// The request being sent, encoded.
    req: Vec<u8>,
}

impl Vu {
    fn new(shared: &Shared) -> Self {
        shared.vus_max.fetch_add(1, Ordering::Relaxed);
        let id = shared.next_vu.fetch_add(1, Ordering::Relaxed);
        Self {
            id,
            iteration: 0,
            client: Client::new(shared.connector.clone()),
            rng: fastrand::Rng::with_seed(id),
            buf: String::new(),
            req: Vec::new(),
        }
    }
}

/// Counts a VU as active while it lives (and keeps the peak).
struct Active<'a>(&'a AtomicU64);

impl<'a> Active<'a> {
    fn new(shared: &'a Shared) -> Self {
        let now = shared.vus.fetch_add(1, Ordering::Relaxed) + 1;
        shared.vus_peak.fetch_max(now, Ordering::Relaxed);
        Self(&shared.vus)
    }
}

impl Drop for Active<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Runs one scenario, bounded by its end and graceful stop.
async fn run_scenario(shared: Arc<Shared>, index: usize) {
    let scenario = &shared.plan.scenarios[index];
    let begin = shared.start + scenario.start_time;
    tokio::select! {
        () = sleep_until(begin) => {}
        () = shared.abort.cancelled() => return,
    }
    let end = begin + scenario.executor.max_duration();
    let hard_stop = end + scenario.graceful_stop;
    let work = drive_executor(shared.clone(), index, begin, end);
    tokio::select! {
        // The work first: with gracefulStop 0 the hard stop is the end itself, and the arrivals' count of
        // dropped iterations, made at the end, must run before the work is dropped.
        biased;
        () = work => {}
        () = sleep_until(hard_stop) => {}
        () = shared.abort.cancelled() => {}
    }
}

async fn drive_executor(shared: Arc<Shared>, index: usize, begin: Instant, end: Instant) {
    let scenario = &shared.plan.scenarios[index];
    let segment = shared.segment;
    let mut tasks = JoinSet::new();
    match scenario.executor.clone() {
        Executor::ConstantVus { vus, .. } => {
            for _ in 0..segment.share(vus) {
                let shared = shared.clone();
                let vu = Vu::new(&shared);
                tasks.spawn(async move {
                    let mut vu = vu;
                    let _active = Active::new(&shared);
                    while Instant::now() < end {
                        iteration(&shared, index, &mut vu, None).await;
                    }
                });
            }
        }
        Executor::PerVuIterations { vus, iterations, .. } => {
            for _ in 0..segment.share(vus) {
                let shared = shared.clone();
                let vu = Vu::new(&shared);
                tasks.spawn(async move {
                    let mut vu = vu;
                    let _active = Active::new(&shared);
                    for _ in 0..iterations {
                        if Instant::now() >= end {
                            break;
                        }
                        iteration(&shared, index, &mut vu, None).await;
                    }
                });
            }
        }
        Executor::SharedIterations { vus, iterations, .. } => {
            let iterations = segment.share(iterations);
            let claimed = Arc::new(AtomicU64::new(0));
            for _ in 0..segment.share(vus) {
                let (shared, claimed) = (shared.clone(), claimed.clone());
                let vu = Vu::new(&shared);
                tasks.spawn(async move {
                    let mut vu = vu;
                    let _active = Active::new(&shared);
                    while Instant::now() < end && claimed.fetch_add(1, Ordering::Relaxed) < iterations {
                        iteration(&shared, index, &mut vu, None).await;
                    }
                });
            }
        }
        Executor::RampingVus { start_vus, stages, graceful_ramp_down } => {
            // Level n of the whole ramp runs in segment n % N: every moment's VUs add up exactly.
            let most = scenario.executor.max_vus();
            shared.vus_max.fetch_add(segment.share(most), Ordering::Relaxed);
            for level in (0..most).filter(|l| segment.owns(*l)) {
                let shared = shared.clone();
                let stages = stages.clone();
                tasks.spawn(async move {
                    let mut vu: Option<Vu> = None;
                    let mut active = None;
                    loop {
                        let now = Instant::now();
                        if now >= end {
                            break;
                        }
                        let at = now - begin;
                        if level < vus_at(start_vus, &stages, at) {
                            if active.is_none() {
                                active = Some(Active::new(&shared));
                            }
                            let vu = vu.get_or_insert_with(|| {
                                let v = Vu::new(&shared);
                                // Counted once up front for the whole ramp.
                                shared.vus_max.fetch_sub(1, Ordering::Relaxed);
                                v
                            });
                            // k6's gracefulRampDown: once the ramp no longer wants this VU, its iteration
                            // may go on for that long, then it is interrupted (and not counted).
                            let surplus = first_time_at_or_below(start_vus, &stages, level, at)
                                .map(|t| begin + t + graceful_ramp_down);
                            let current = iteration(&shared, index, vu, None);
                            match surplus {
                                Some(deadline) => {
                                    tokio::select! {
                                        () = current => {}
                                        () = sleep_until(deadline) => {}
                                    }
                                }
                                None => current.await,
                            }
                        } else {
                            active = None;
                            match first_time_above(start_vus, &stages, level, at) {
                                Some(next) => sleep_until(begin + next).await,
                                None => break,
                            }
                        }
                    }
                    drop(active);
                });
            }
        }
        Executor::ConstantArrivalRate { rate, time_unit, duration, pre_allocated_vus, max_vus } => {
            let schedule = Schedule::new(rate, time_unit, vec![Stage { duration, target: rate }], segment);
            let (pre, max) = (segment.share(pre_allocated_vus), segment.share(max_vus));
            arrivals(&shared, index, begin, end, schedule, pre, max, &mut tasks).await;
        }
        Executor::RampingArrivalRate { start_rate, time_unit, stages, pre_allocated_vus, max_vus } => {
            let schedule = Schedule::new(start_rate, time_unit, stages, segment).ramping();
            let (pre, max) = (segment.share(pre_allocated_vus), segment.share(max_vus));
            arrivals(&shared, index, begin, end, schedule, pre, max, &mut tasks).await;
        }
    }
    while let Some(joined) = tasks.join_next().await {
        resume_panic(joined);
    }
}

/// Carries a VU task's panic on to the scenario (and the run): a panic is a bug, never a result.
fn resume_panic(joined: Result<(), tokio::task::JoinError>) {
    if let Err(e) = joined
        && e.is_panic()
    {
        std::panic::resume_unwind(e.into_panic());
    }
}

/// The VUs a ramping-vus scenario wants at `at`: linear within each stage, changing when the line crosses
/// a whole number, as in k6: going up, a VU joins when the line reaches its number (rounded down); going
/// down, one leaves when the line reaches the number below (rounded up), so 4 to 0 over 2 s keeps four
/// VUs for the first half second.
fn vus_at(start: u64, stages: &[Stage], at: Duration) -> u64 {
    let mut from = start;
    let mut t0 = Duration::ZERO;
    for stage in stages {
        let t1 = t0 + stage.duration;
        if at < t1 {
            let frac = (at - t0).as_secs_f64() / stage.duration.as_secs_f64();
            #[allow(clippy::cast_precision_loss, clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let line = from as f64 + (stage.target as f64 - from as f64) * frac;
            #[allow(clippy::cast_precision_loss, clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let v = if stage.target < from { line.ceil() } else { line.floor() } as u64;
            return v;
        }
        from = stage.target;
        t0 = t1;
    }
    from
}

/// The first moment at or after `at` when more than `level` VUs are wanted.
fn first_time_above(start: u64, stages: &[Stage], level: u64, at: Duration) -> Option<Duration> {
    let mut from = start;
    let mut t0 = Duration::ZERO;
    for stage in stages {
        let t1 = t0 + stage.duration;
        if t1 > at && stage.target > level {
            let when = if from > level {
                t0
            } else {
                // from + (target - from) * f >= level + 1
                #[allow(clippy::cast_precision_loss)]
                let f = (level + 1 - from) as f64 / (stage.target - from) as f64;
                t0 + stage.duration.mul_f64(f.min(1.0))
            };
            return Some(when.max(at));
        }
        from = stage.target;
        t0 = t1;
    }
    None
}

/// The first moment at or after `at` when at most `level` VUs are wanted, so that the VU of `level`
/// (counted from 0) is surplus; `None` when that never happens before the stages end.
fn first_time_at_or_below(start: u64, stages: &[Stage], level: u64, at: Duration) -> Option<Duration> {
    if vus_at(start, stages, at) <= level {
        return Some(at);
    }
    let mut from = start;
    let mut t0 = Duration::ZERO;
    for stage in stages {
        let t1 = t0 + stage.duration;
        if t1 > at && stage.target <= level {
            if from <= level {
                return Some(t0.max(at));
            }
            // Going down: ceil(from + (target - from) * f) <= level from f = (from - level) / (from - target) on.
            #[allow(clippy::cast_precision_loss)]
            let f = (from - level) as f64 / (from - stage.target) as f64;
            return Some((t0 + stage.duration.mul_f64(f.clamp(0.0, 1.0))).max(at));
        }
        from = stage.target;
        t0 = t1;
    }
    None
}

/// When iteration `n` of an arrival-rate scenario is due: the cumulative count of a piecewise-linear
/// rate reaches `n` (constant-arrival-rate: the first goes out at once, and rate × duration go out) or
/// `n + 1` (ramping-arrival-rate, as k6 counts: a ramp from 0 starts when one whole iteration has
/// accumulated, and one due at the very end still goes out).
#[derive(Debug, Clone)]
pub(crate) struct Schedule {
    /// Per stage: start offset, length, rate at start and at end (iterations per second).
    segments: Vec<(Duration, Duration, f64, f64)>,
    /// Iterations due before each segment.
    before: Vec<f64>,
    /// The execution segment whose arrivals these are (every N-th of the whole schedule).
    part: Segment,
    /// k6's ramping-arrival-rate count: the first iteration waits for the count to reach 1, and one is
    /// sent at the very end.
    ramping: bool,
}

impl Schedule {
    pub(crate) fn new(start_rate: u64, time_unit: Duration, stages: Vec<Stage>, part: Segment) -> Self {
        let unit = time_unit.as_secs_f64();
        #[allow(clippy::cast_precision_loss)]
        let per_sec = |r: u64| r as f64 / unit;
        let mut segments = Vec::new();
        let mut before = Vec::new();
        let (mut t0, mut r0, mut total) = (Duration::ZERO, per_sec(start_rate), 0.0);
        for stage in stages {
            let r1 = per_sec(stage.target);
            segments.push((t0, stage.duration, r0, r1));
            before.push(total);
            total += (r0 + r1) / 2.0 * stage.duration.as_secs_f64();
            t0 += stage.duration;
            r0 = r1;
        }
        // A constant rate starts at its rate, not at zero.
        Self { segments, before, part, ramping: false }
    }

    /// k6's ramping-arrival-rate count: the `n`-th iteration when the count reaches `n + 1`.
    pub(crate) fn ramping(mut self) -> Self {
        self.ramping = true;
        self
    }

    /// The offset at which this segment's iteration `n` (from 0) is due, or `None` past the end.
    pub(crate) fn at(&self, n: u64) -> Option<Duration> {
        #[allow(clippy::cast_precision_loss)]
        let n = self.part.nth(n) as f64 + if self.ramping { 1.0 } else { 0.0 };
        for (i, &(t0, len, r0, r1)) in self.segments.iter().enumerate() {
            let need = n - self.before[i];
            let d = len.as_secs_f64();
            let total = (r0 + r1) / 2.0 * d;
            // Counts are whole numbers computed in floating point (31 a minute for 60 s is
            // 31.000000000000004): this close, they are equal. The tolerance stays far below one
            // iteration however long the run.
            let at_end = (need - total).abs() <= (1e-9 * total.max(1.0)).min(1e-3);
            if need > total && !at_end {
                continue;
            }
            // An iteration due exactly at a stage's end belongs to that stage (k6 counts `i <=
            // endCount`), so a stage at rate 0 after it never has to place it. At the very end,
            // constant-arrival-rate does not send it (rate × duration iterations); ramping-arrival-rate
            // does.
            if at_end && !self.ramping {
                return None;
            }
            // A stage that sends nothing (rate 0 throughout, or no length) holds no iteration.
            if total <= 0.0 || d <= 0.0 {
                continue;
            }
            // r0 τ + (r1 - r0) τ² / (2d) = need
            let a = (r1 - r0) / (2.0 * d);
            let tau = if need <= 0.0 {
                0.0
            } else if a.abs() < 1e-12 {
                need / r0
            } else {
                let disc = (r0 * r0 + 4.0 * a * need).max(0.0);
                // The form without cancellation: the same root as (-r0 + √disc) / 2a.
                2.0 * need / (r0 + disc.sqrt())
            };
            let tau = if tau.is_finite() { tau.clamp(0.0, d) } else { d };
            return Some(t0 + Duration::from_secs_f64(tau));
        }
        None
    }
}

/// The open model: iterations start on schedule on a free VU (a new one up to `maxVUs`); without one they
/// wait, in order, for the first VU to come free and carry their lateness in their latency.
#[allow(clippy::too_many_arguments)]
async fn arrivals(
    shared: &Arc<Shared>,
    index: usize,
    begin: Instant,
    end: Instant,
    schedule: Schedule,
    pre_allocated: u64,
    max_vus: u64,
    tasks: &mut JoinSet<()>,
) {
    struct Pool {
        idle: Vec<Vu>,
        allocated: u64,
        /// Iterations in `[waiting_from, due)` are due and not yet started.
        waiting_from: u64,
        due: u64,
    }
    let pool = Arc::new(Mutex::new(Pool {
        idle: (0..pre_allocated).map(|_| Vu::new(shared)).collect(),
        allocated: pre_allocated,
        waiting_from: 0,
        due: 0,
    }));
    let closed = Arc::new(AtomicBool::new(false));
    let schedule = Arc::new(schedule);
    let mut n = 0;
    while let Some(offset) = schedule.at(n) {
        let due_at = begin + offset;
        if due_at > end {
            break;
        }
        // Tokio's timer turns on millisecond ticks: waiting on it for an arrival that is already due costs
        // a turn per arrival and capped the rate (2,400/s of 10,000/s in the benchmark). Due arrivals go
        // out at once, with a cooperative yield so a late schedule cannot starve the VUs.
        if due_at > Instant::now() {
            sleep_until(due_at).await;
        } else {
            tokio::task::consume_budget().await;
        }
        // Finished VU tasks are reaped as the schedule goes; one that panicked fails the run with its panic
        // (as at the scenario's end), instead of vanishing with its VU.
        while let Some(joined) = tasks.try_join_next() {
            resume_panic(joined);
        }
        let start = {
            let mut p = pool.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            p.due = n + 1;
            if p.waiting_from < n {
                None
            } else if let Some(vu) = p.idle.pop() {
                p.waiting_from = n + 1;
                Some(vu)
            } else if p.allocated < max_vus {
                p.allocated += 1;
                p.waiting_from = n + 1;
                Some(Vu::new(shared))
            } else {
                None
            }
        };
        if let Some(mut vu) = start {
            let (shared, pool, schedule, closed) =
                (shared.clone(), pool.clone(), schedule.clone(), closed.clone());
            let mut current = n;
            tasks.spawn(async move {
                let _active = Active::new(&shared);
                loop {
                    let intended = begin + schedule.at(current).unwrap_or_default();
                    iteration(&shared, index, &mut vu, Some(intended)).await;
                    let mut p = pool.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                    if !closed.load(Ordering::Relaxed) && p.waiting_from < p.due {
                        current = p.waiting_from;
                        p.waiting_from += 1;
                    } else {
                        p.idle.push(vu);
                        return;
                    }
                }
            });
        }
        n += 1;
    }
    sleep_until(end).await;
    closed.store(true, Ordering::Relaxed);
    let dropped = {
        let p = pool.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        p.due - p.waiting_from
    };
    let scenario = &shared.plan.scenarios[index];
    shared.recorder.with(|sinks, slots| {
        sinks.add(slots, Metric::DroppedIterations, &ScenarioTags { scenario, check: None }, dropped);
    });
}

/// The tags of one HTTP sample.
struct HttpTags<'a> {
    scenario: &'a Scenario,
    request: &'a Request,
    status: u16,
    expected: bool,
}

impl Tags for HttpTags<'_> {
    fn matches(&self, key: &str, value: &str) -> bool {
        match key {
            "status" => value.parse::<u16>() == Ok(self.status),
            "expected_response" => value == if self.expected { "true" } else { "false" },
            "name" => value == self.request.name,
            "method" => value == self.request.method.as_str(),
            "scenario" => value == self.scenario.name,
            "proto" => value == "HTTP/1.1",
            _ => self.request.tags.iter().chain(&self.scenario.tags).any(|(k, v)| k == key && v == value),
        }
    }
}

/// The tags of an iteration or a check sample.
struct ScenarioTags<'a> {
    scenario: &'a Scenario,
    check: Option<&'a str>,
}

impl Tags for ScenarioTags<'_> {
    fn matches(&self, key: &str, value: &str) -> bool {
        match key {
            "scenario" => value == self.scenario.name,
            "check" => self.check == Some(value),
            _ => self.scenario.tags.iter().any(|(k, v)| k == key && v == value),
        }
    }
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// Values of this iteration's variables: data rows and random values, chosen once per iteration.
struct IterVars {
    rows: Vec<Option<usize>>,
    random: Vec<(usize, String)>,
}

fn render(
    shared: &Shared,
    scenario: &Scenario,
    vu: &mut Vu,
    vars: &mut IterVars,
    template: &crate::template::Template,
    out: &mut String,
) {
    let plan = &shared.plan;
    let (id, iteration, rng) = (vu.id, vu.iteration, &mut vu.rng);
    template.render(out, |index, out| match &plan.vars.sources[index] {
        VarSource::Const(s) => out.push_str(s),
        VarSource::Vu => out.push_str(&id.to_string()),
        VarSource::Iter => out.push_str(&iteration.to_string()),
        VarSource::ScenarioName => out.push_str(&scenario.name),
        source @ (VarSource::RandomInt(..) | VarSource::OneOf(_)) => {
            if let Some((_, v)) = vars.random.iter().find(|(i, _)| *i == index) {
                out.push_str(v);
                return;
            }
            let value = match source {
                VarSource::RandomInt(lo, hi) => rng.i64(*lo..=*hi).to_string(),
                VarSource::OneOf(values) => values[rng.usize(..values.len())].clone(),
                _ => String::new(),
            };
            out.push_str(&value);
            vars.random.push((index, value));
        }
        VarSource::Column { data, column } => {
            let set = &plan.vars.data[*data];
            let row = *vars.rows[*data].get_or_insert_with(|| {
                if set.random {
                    rng.usize(..set.rows.len())
                } else {
                    // Segment I of N reads rows I-1, I-1+N, ...: segments of one run never share a row
                    // (as k6's instances do not, through iterationInTest).
                    let next = shared.segment.nth(shared.data_cursor[*data].fetch_add(1, Ordering::Relaxed));
                    usize::try_from(next % set.rows.len() as u64).unwrap_or(0)
                }
            });
            out.push_str(set.rows[row].get(*column).map_or("", String::as_str));
        }
    });
}

async fn pause(rng: &mut fastrand::Rng, think: Option<ThinkTime>) {
    if let Some(t) = think {
        let d = if t.max > t.min {
            t.min
                + Duration::from_nanos(
                    rng.u64(0..=u64::try_from((t.max - t.min).as_nanos()).unwrap_or(u64::MAX)),
                )
        } else {
            t.min
        };
        tokio::time::sleep(d).await;
    }
}

/// One iteration: every request in order, with checks and think times. `intended` is the scheduled
/// start of an open-model iteration.
async fn iteration(shared: &Shared, index: usize, vu: &mut Vu, intended: Option<Instant>) {
    let scenario = &shared.plan.scenarios[index];
    let started = Instant::now();
    let mut vars = IterVars { rows: vec![None; shared.plan.vars.data.len()], random: Vec::new() };
    for (i, request) in scenario.requests.iter().enumerate() {
        let mut buf = std::mem::take(&mut vu.buf);
        let mut req = std::mem::take(&mut vu.req);
        let parsed;
        let target = match &shared.targets[index][i] {
            Some(t) => Ok(t),
            None => {
                buf.clear();
                render(shared, scenario, vu, &mut vars, &request.url, &mut buf);
                parsed = Target::parse(&buf);
                parsed.as_ref()
            }
        };
        let response = match target {
            Ok(target) => {
                let mut encoder = Encoder::new(&mut req, &request.method, target, request.own_host);
                let mut bad = None;
                for (name, value) in &request.headers {
                    buf.clear();
                    render(shared, scenario, vu, &mut vars, value, &mut buf);
                    if let Err(e) = encoder.header(name, buf.as_bytes()) {
                        bad = Some(e);
                        break;
                    }
                }
                match (bad, &request.body) {
                    (Some(e), _) => failed(format!("cannot build the request: {e}")),
                    (None, body) => {
                        let body = match body {
                            Some(t) => match t.as_literal() {
                                Some(text) => text,
                                None => {
                                    buf.clear();
                                    render(shared, scenario, vu, &mut vars, t, &mut buf);
                                    buf.as_str()
                                }
                            },
                            None => "",
                        };
                        encoder.finish(&request.method, body.as_bytes());
                        let head = request.method == http::Method::HEAD;
                        let timeout = request.timeout.unwrap_or(shared.request_timeout);
                        let before = Instant::now();
                        let mut response = vu.client.send(target, &req, head, request.keep, timeout).await;
                        // A request that never got a connection (it failed to connect) counts from here,
                        // not from the iteration's start (earlier requests and think times).
                        response.timings.sent_at.get_or_insert(before);
                        response
                    }
                }
            }
            Err(e) => failed(e.clone()),
        };
        vu.buf = buf;
        vu.req = req;
        // The first request of a late open-model iteration also counts how late the iteration started
        // (no coordinated omission); connecting stays out of the duration, as in k6.
        let done = response.timings.done_at.unwrap_or_else(Instant::now);
        let sent = response.timings.sent_at.unwrap_or(done);
        let late = match intended {
            Some(t) if i == 0 => started.saturating_duration_since(t),
            _ => Duration::ZERO,
        };
        record(shared, scenario, request, &response, (done - sent) + late, done - sent);
        pause(&mut vu.rng, request.think_time).await;
    }
    pause(&mut vu.rng, scenario.think_time).await;
    // An iteration that never waited (every request refused before it was sent, no think time) still
    // gives the runtime a turn: a VU looping on it cannot hold a worker thread or miss its cancellation.
    tokio::task::consume_budget().await;
    let took = started.elapsed();
    shared.recorder.with(|sinks, slots| {
        let tags = ScenarioTags { scenario, check: None };
        sinks.add(slots, Metric::Iterations, &tags, 1);
        sinks.trend(slots, Metric::IterationDuration, &tags, micros(took));
    });
    vu.iteration += 1;
}

fn failed(error: String) -> Response {
    let now = Instant::now();
    Response {
        error: Some(error),
        timings: crate::client::Timings { sent_at: Some(now), done_at: Some(now), ..Default::default() },
        ..Default::default()
    }
}

fn record(
    shared: &Shared,
    scenario: &Scenario,
    request: &Request,
    r: &Response,
    corrected: Duration,
    service: Duration,
) {
    let expected = (200..400).contains(&r.status);
    // The scenario parser refuses more than MAX_CHECKS per request.
    let mut outcomes = [false; crate::scenario::MAX_CHECKS];
    let checks = &request.checks[..request.checks.len().min(outcomes.len())];
    for (slot, check) in outcomes.iter_mut().zip(checks) {
        *slot = r.error.is_none()
            && match &check.kind {
                CheckKind::Status(list) => list.contains(&r.status),
                CheckKind::BodyContains(text) => contains(&r.body, text.as_bytes()),
                CheckKind::Json { path, equals, .. } => serde_json::from_slice::<serde_json::Value>(&r.body)
                    .ok()
                    .and_then(|v| json_at(&v, path).cloned())
                    .is_some_and(|found| match equals {
                        Some(want) => json_equal(&found, want),
                        None => !found.is_null(),
                    }),
                CheckKind::Header { name, contains: text } => {
                    r.headers.get_all(name).iter().any(|v| contains(v.as_bytes(), text.as_bytes()))
                }
                CheckKind::MaxDuration(max) => service <= *max,
            };
    }
    shared.recorder.with(|sinks, slots| {
        let tags = HttpTags { scenario, request, status: r.status, expected };
        sinks.add(slots, Metric::HttpReqs, &tags, 1);
        sinks.rate(slots, Metric::HttpReqFailed, &tags, !expected);
        sinks.trend(slots, Metric::HttpReqDuration, &tags, micros(corrected));
        sinks.trend(slots, Metric::HttpReqServiceDuration, &tags, micros(service));
        sinks.trend(slots, Metric::HttpReqBlocked, &tags, micros(r.timings.blocked));
        sinks.trend(slots, Metric::HttpReqConnecting, &tags, micros(r.timings.connecting));
        sinks.trend(slots, Metric::HttpReqTlsHandshaking, &tags, micros(r.timings.tls_handshaking));
        sinks.trend(slots, Metric::HttpReqSending, &tags, micros(r.timings.sending));
        sinks.trend(slots, Metric::HttpReqWaiting, &tags, micros(r.timings.waiting));
        sinks.trend(slots, Metric::HttpReqReceiving, &tags, micros(r.timings.receiving));
        let stags = ScenarioTags { scenario, check: None };
        sinks.add(slots, Metric::DataSent, &stags, r.bytes_sent);
        sinks.add(slots, Metric::DataReceived, &stags, r.bytes_received);
        for (check, &ok) in checks.iter().zip(&outcomes) {
            let name = &shared.plan.check_names[check.id];
            sinks.rate(slots, Metric::Checks, &ScenarioTags { scenario, check: Some(name) }, ok);
            sinks.checks[check.id][usize::from(!ok)] += 1;
        }
    });
}

fn json_equal(found: &serde_json::Value, want: &serde_json::Value) -> bool {
    match (found.as_f64(), want.as_f64()) {
        (Some(a), Some(b)) => a == b,
        _ => found == want,
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_schedule_is_exact() {
        let s = Schedule::new(
            200,
            Duration::from_secs(1),
            vec![Stage { duration: Duration::from_secs(10), target: 200 }],
            Segment::WHOLE,
        );
        assert_eq!(s.at(0), Some(Duration::ZERO));
        assert_eq!(s.at(1), Some(Duration::from_millis(5)));
        assert_eq!(s.at(1999), Some(Duration::from_millis(9995)));
        assert_eq!(s.at(2000), None);
        let per_minute = Schedule::new(
            30,
            Duration::from_secs(60),
            vec![Stage { duration: Duration::from_secs(60), target: 30 }],
            Segment::WHOLE,
        );
        assert_eq!(per_minute.at(1), Some(Duration::from_secs(2)));
        // Rates whose count comes out a hair over a whole number in floating point: exactly rate ×
        // duration iterations all the same.
        for (rate, unit, seconds) in [(31, 60, 60), (23, 60, 300), (31, 60, 600), (11, 60, 300)] {
            let s = Schedule::new(
                rate,
                Duration::from_secs(unit),
                vec![Stage { duration: Duration::from_secs(seconds), target: rate }],
                Segment::WHOLE,
            );
            let expected = rate * seconds / unit;
            assert!(s.at(expected - 1).is_some(), "{rate}/{unit}s over {seconds}s");
            assert_eq!(s.at(expected), None, "{rate}/{unit}s over {seconds}s: {expected} iterations");
        }
    }

    #[test]
    fn ramping_schedule_follows_the_integral() {
        // 0 -> 100/s over 10 s: 500 iterations, the n-th (from 0) at sqrt((n + 1) / 5) s, as k6 counts.
        let s = Schedule::new(
            0,
            Duration::from_secs(1),
            vec![Stage { duration: Duration::from_secs(10), target: 100 }],
            Segment::WHOLE,
        )
        .ramping();
        let at = |n| s.at(n).map(|d| (d.as_secs_f64() * 1000.0).round() as u64);
        assert_eq!(at(0), Some(447));
        assert_eq!(at(4), Some(1000));
        assert_eq!(at(124), Some(5000));
        assert_eq!(at(498), Some(9990));
        assert_eq!(at(499), Some(10000));
        assert_eq!(at(500), None);
        // k6's own run: 0 -> 4/s over 2 s fires at 1.00, 1.41, 1.73 and 2.00 s.
        let k6 = Schedule::new(
            0,
            Duration::from_secs(1),
            vec![Stage { duration: Duration::from_secs(2), target: 4 }],
            Segment::WHOLE,
        )
        .ramping();
        let fired: Vec<u64> = (0..5).filter_map(|n| k6.at(n)).map(|d| d.as_millis() as u64).collect();
        assert_eq!(fired, [1000, 1414, 1732, 2000]);
        // Then down to 0 over 10 s: 500 more.
        let s = Schedule::new(
            0,
            Duration::from_secs(1),
            vec![
                Stage { duration: Duration::from_secs(10), target: 100 },
                Stage { duration: Duration::from_secs(10), target: 0 },
            ],
            Segment::WHOLE,
        )
        .ramping();
        // Ramps that end in a hold at 0, or in a stage of no length: the iteration due at the end of the
        // ramp goes out at that end, and nothing after it (one panicked on 0 / 0).
        for stages in [
            vec![(10, 100), (10, 0), (10, 0)],
            vec![(10, 100), (10, 0), (30, 0), (10, 100)],
            vec![(10, 100), (0, 100)],
        ] {
            let s = Schedule::new(
                0,
                Duration::from_secs(1),
                stages
                    .iter()
                    .map(|&(secs, target)| Stage { duration: Duration::from_secs(secs), target })
                    .collect(),
                Segment::WHOLE,
            )
            .ramping();
            let shown = format!("{stages:?}");
            assert_eq!(s.at(499).map(|d| d.as_millis()), Some(10_000), "{shown}");
            if stages[1].1 == 0 && stages[1].0 > 0 {
                assert_eq!(s.at(999).map(|d| d.as_millis()), Some(20_000), "{shown}");
            }
        }
        // The one before the last: 5τ² = 1 before the end, at 19.55 s; the last at the end.
        assert_eq!(s.at(998).map(|d| d.as_millis()), Some(19552));
        assert_eq!(s.at(999).map(|d| d.as_millis()), Some(20000));
        assert_eq!(s.at(1000), None);
    }

    #[test]
    fn ramping_vus() {
        let stages = [
            Stage { duration: Duration::from_secs(10), target: 10 },
            Stage { duration: Duration::from_secs(10), target: 0 },
        ];
        assert_eq!(vus_at(0, &stages, Duration::ZERO), 0);
        assert_eq!(vus_at(0, &stages, Duration::from_millis(5500)), 5);
        assert_eq!(vus_at(0, &stages, Duration::from_secs(15)), 5);
        assert_eq!(first_time_above(0, &stages, 0, Duration::ZERO), Some(Duration::from_secs(1)));
        assert_eq!(first_time_above(0, &stages, 4, Duration::ZERO), Some(Duration::from_secs(5)));
        assert_eq!(first_time_above(0, &stages, 4, Duration::from_secs(12)), None);
        assert_eq!(first_time_above(0, &stages, 10, Duration::ZERO), None);
        assert_eq!(first_time_above(3, &stages, 1, Duration::from_secs(2)), Some(Duration::from_secs(2)));
        let secs = |s: u64| Some(Duration::from_secs(s));
        // The fifth VU (level 4) is wanted from 5 s to 16 s (the line is above 4 until then).
        assert_eq!(vus_at(0, &stages, Duration::from_millis(15_900)), 5);
        assert_eq!(first_time_at_or_below(0, &stages, 4, Duration::from_secs(6)), secs(16));
        assert_eq!(first_time_at_or_below(0, &stages, 4, Duration::from_secs(16)), secs(16));
        assert_eq!(first_time_at_or_below(0, &stages, 9, Duration::ZERO), secs(0));
        assert_eq!(first_time_at_or_below(0, &stages[..1], 4, Duration::from_secs(6)), None);
        let down = [
            Stage { duration: Duration::from_secs(4), target: 4 },
            Stage { duration: Duration::from_secs(2), target: 0 },
        ];
        // From 4 VUs to 0 over 2 s, as k6 does it: the fourth (level 3) is surplus when the line reaches 3,
        // half a second into the ramp; the first (level 0) when it reaches 0, at its end.
        assert_eq!(vus_at(4, &down, Duration::from_millis(4100)), 4);
        assert_eq!(first_time_at_or_below(4, &down, 3, Duration::ZERO), Some(Duration::from_millis(4500)));
        assert_eq!(first_time_at_or_below(4, &down, 0, Duration::ZERO), secs(6));
    }
}
