//! The daemon's metrics, read from its [`Status`](crate::status::Status) at each scrape.

use std::sync::Arc;

use prodready_metrics::names;
use prodready_metrics::prometheus_client::collector::Collector;
use prodready_metrics::prometheus_client::encoding::{DescriptorEncoder, EncodeMetric as _};
use prodready_metrics::prometheus_client::metrics::MetricType;
use prodready_metrics::prometheus_client::metrics::counter::ConstCounter;
use prodready_metrics::prometheus_client::metrics::gauge::ConstGauge;
use prodready_metrics::prometheus_client::registry::Registry;

use crate::job::Outcome;
use crate::status::{Role, Shared, unix_seconds};

/// A registry serving the daemon's state, the caller's collectors and the process's own metrics.
pub(crate) fn registry(shared: Arc<Shared>, extra: Vec<Box<dyn Collector>>) -> Registry {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(DaemonCollector(shared)));
    for collector in extra {
        registry.register_collector(collector);
    }
    prodready_metrics::exposition::register_process_metrics(&mut registry);
    registry
}

#[derive(Debug)]
struct DaemonCollector(Arc<Shared>);

type Series = Vec<(String, f64)>;

impl Collector for DaemonCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let (leader, gauges, runs) = self.0.with(|s| {
            let leader = i64::from(s.role == Role::Leader);
            let mut last_run = Series::new();
            let mut last_success = Series::new();
            let mut last_ok = Series::new();
            let mut last_duration = Series::new();
            let mut next_run = Series::new();
            let mut interval = Series::new();
            let mut overdue_after = Series::new();
            let mut running = Series::new();
            for job in &s.jobs {
                let name = || job.name.clone();
                if let Some(last) = &job.last {
                    last_run.push((name(), unix_seconds(last.started_at)));
                    if let Some(d) = last.duration() {
                        last_duration.push((name(), d.as_secs_f64()));
                    }
                }
                // The last run that came to a verdict: one cancelled (a shutdown, a lost leadership) or
                // abandoned (its replica died) says nothing of whether the job works. When no run
                // succeeds any more, ProdreadyDaemonJobOverdue says so.
                let verdict = job.recent.iter().find(|r| {
                    r.finished_at.is_some() && !matches!(r.result.as_deref(), Some("cancelled" | "abandoned"))
                });
                if let Some(run) = verdict {
                    last_ok.push((name(), f64::from(u8::from(run.result.as_deref() == Some("success")))));
                }
                if let Some(t) = job.last_success {
                    last_success.push((name(), unix_seconds(t)));
                }
                if let Some(t) = job.next_run {
                    next_run.push((name(), unix_seconds(t)));
                }
                if let Some(i) = job.interval_seconds {
                    interval.push((name(), i));
                }
                if let Some(t) = job.overdue_after {
                    overdue_after.push((name(), unix_seconds(t)));
                }
                running.push((name(), f64::from(u8::from(job.running_since.is_some()))));
            }
            let gauges = [
                (names::DAEMON_JOB_LAST_RUN, "Unix time the last finished run of the job started.", last_run),
                (
                    names::DAEMON_JOB_LAST_SUCCESS,
                    "Unix time the last successful run of the job started.",
                    last_success,
                ),
                (
                    names::DAEMON_JOB_LAST_RUN_SUCCESS,
                    "1 when the last run of the job that ran to an end succeeded (cancelled and abandoned runs left out).",
                    last_ok,
                ),
                (
                    names::DAEMON_JOB_LAST_DURATION,
                    "Duration of the last finished run of the job (seconds).",
                    last_duration,
                ),
                (names::DAEMON_JOB_NEXT_RUN, "Unix time of the job's next scheduled run.", next_run),
                (
                    names::DAEMON_JOB_INTERVAL,
                    "Time between the next two scheduled runs of the job (seconds).",
                    interval,
                ),
                (
                    names::DAEMON_JOB_OVERDUE_AFTER,
                    "Unix time of the second scheduled run after the job's last success (or after this replica began scheduling it): the job is overdue once that run has come and gone without a success.",
                    overdue_after,
                ),
                (names::DAEMON_JOB_RUNNING, "1 while the job runs on this replica.", running),
            ];
            let mut runs: Vec<(String, Outcome, u64)> = Vec::new();
            for job in &s.jobs {
                for outcome in Outcome::ALL {
                    let n = s.runs_total.get(&(job.name.clone(), outcome)).copied().unwrap_or(0);
                    runs.push((job.name.clone(), outcome, n));
                }
            }
            (leader, gauges, runs)
        });
        ConstGauge::new(leader).encode(encoder.encode_descriptor(
            names::DAEMON_LEADER,
            "1 on the replica that holds the leader lock and runs the jobs, 0 on a standby.",
            None,
            MetricType::Gauge,
        )?)?;
        for (name, help, series) in gauges {
            if series.is_empty() {
                continue;
            }
            let mut family = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
            for (job, value) in series {
                let labels = [("daemon_job", job)];
                ConstGauge::new(value).encode(family.encode_family(&labels)?)?;
            }
        }
        let family =
            names::DAEMON_JOB_RUNS_TOTAL.strip_suffix("_total").unwrap_or(names::DAEMON_JOB_RUNS_TOTAL);
        let mut counter = encoder.encode_descriptor(
            family,
            "Runs this replica finished, by job and result.",
            None,
            MetricType::Counter,
        )?;
        for (job, outcome, n) in runs {
            let labels = [("daemon_job", job), ("result", outcome.as_str().to_owned())];
            ConstCounter::new(n).encode(counter.encode_family(&labels)?)?;
        }
        Ok(())
    }
}
