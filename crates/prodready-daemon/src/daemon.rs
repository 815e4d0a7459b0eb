//! The scheduler: follows the election, starts due jobs on the leader, records their runs, reloads and
//! shuts down gracefully.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::job::{self, Job, Missed};
use crate::leader::{Elector, Session};
use crate::status::{JobView, Shared, Status};
use crate::{Error, Options, Result, Role, StatusSections, state};

/// Runs shown per job on the status page.
const RECENT_RUNS: i64 = 10;

/// What the caller tells a running daemon.
#[derive(Debug)]
#[non_exhaustive]
pub enum Control {
    /// New jobs (a reloaded configuration). Running jobs finish; schedules change from now on.
    Reload(Vec<Job>),
    /// Start no new job, wait for the running ones up to the shutdown timeout, cancel what is left,
    /// release the lock and return.
    Shutdown,
}

struct Running {
    cancel: watch::Sender<bool>,
    handle: JoinHandle<()>,
}

/// Runs the daemon until [`Control::Shutdown`] (or until every sender of `control` is dropped).
/// Fails only when it cannot start: a bad option or an address it cannot listen on.
pub async fn run(
    options: Options,
    sections: Arc<dyn StatusSections>,
    mut control: mpsc::UnboundedReceiver<Control>,
) -> Result<()> {
    if options.lease < Duration::from_secs(1) {
        return Err(Error::Invalid(format!("the lease must be at least 1 s, not {:?}", options.lease)));
    }
    check_names(&options.jobs)?;
    let listener = tokio::net::TcpListener::bind(options.listen)
        .await
        .map_err(|source| Error::Listen { addr: options.listen, source })?;
    let now = SystemTime::now();
    let shared = Arc::new(Shared::new(Status {
        replica: options.replica.clone(),
        started_at: now,
        role: Role::Starting,
        jobs: options.jobs.iter().map(|j| view(j, now)).collect(),
        runs_total: BTreeMap::new(),
    }));
    let (http_stop, mut http_stopped) = watch::channel(false);
    let app = crate::http::router(shared.clone(), sections);
    let http = tokio::spawn(async move {
        let stopped = async move {
            let _ = http_stopped.wait_for(|s| *s).await;
        };
        if let Err(e) = axum::serve(listener, app).with_graceful_shutdown(stopped).await {
            tracing::error!("the HTTP server stopped: {e}");
        }
    });
    tracing::info!(listen = %options.listen, replica = %options.replica, jobs = options.jobs.len(), "daemon started");
    let (session_tx, session_rx) = watch::channel(Session { role: Role::Starting, client: None });
    let (elector_stop, elector_stopped) = watch::channel(false);
    let elector = tokio::spawn(
        Elector {
            url: options.lock_url.clone(),
            key: options.lock_key,
            lease: options.lease,
            application_name: format!("prodready-daemon {}", options.replica),
        }
        .run(session_tx, elector_stopped),
    );
    let mut scheduler = Scheduler {
        next: options
            .jobs
            .iter()
            .filter_map(|j| Some((j.name.clone(), j.schedule.next_after(now)?)))
            .collect(),
        jobs: options.jobs.clone(),
        options,
        shared,
        session: session_rx,
        running: HashMap::new(),
        catch_up: HashMap::new(),
        leader: false,
        stopping: watch::channel(false).0,
    };
    scheduler.run(&mut control).await;
    let _ = elector_stop.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(5), elector).await;
    let _ = http_stop.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(5), http).await;
    tracing::info!("daemon stopped");
    Ok(())
}

fn check_names(jobs: &[Job]) -> Result<()> {
    let mut seen = std::collections::HashSet::new();
    for job in jobs {
        if !seen.insert(job.name.as_str()) {
            return Err(Error::Invalid(format!(
                "two jobs are named `{}`; job names must be unique",
                job.name
            )));
        }
    }
    Ok(())
}

fn view(job: &Job, now: SystemTime) -> JobView {
    JobView {
        name: job.name.clone(),
        kind: job.kind.clone(),
        schedule: job.schedule.expression().to_owned(),
        zone: job.schedule.zone().to_owned(),
        timeout_seconds: job.timeout.as_secs(),
        next_run: job.schedule.next_after(now),
        interval_seconds: job.schedule.interval(now).map(|d| d.as_secs_f64()),
        running_since: None,
        last: None,
        last_success: None,
        overdue_after: job.schedule.second_run_after(now),
        since: now,
        recent: Vec::new(),
    }
}

struct Scheduler {
    options: Options,
    jobs: Vec<Job>,
    shared: Arc<Shared>,
    session: watch::Receiver<Session>,
    /// The next scheduled time of each job.
    next: HashMap<String, SystemTime>,
    /// Runs due now, for a missed scheduled time.
    catch_up: HashMap<String, SystemTime>,
    running: HashMap<String, Running>,
    leader: bool,
    /// Set when the daemon stops: a run still waiting out its jitter does not start.
    stopping: watch::Sender<bool>,
}

impl Scheduler {
    async fn run(&mut self, control: &mut mpsc::UnboundedReceiver<Control>) {
        let (done_tx, mut done_rx) = mpsc::unbounded_channel::<String>();
        let mut refresh = tokio::time::interval((self.options.lease / 3).max(Duration::from_secs(1)));
        refresh.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            self.follow_election().await;
            self.start_due(&done_tx);
            let delay = self.until_next();
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                changed = self.session.changed() => {
                    if changed.is_err() {
                        tracing::error!("the election stopped; stopping");
                        break;
                    }
                }
                message = control.recv() => match message {
                    Some(Control::Reload(jobs)) => self.reload(jobs),
                    Some(Control::Shutdown) | None => break,
                },
                Some(name) = done_rx.recv() => {
                    self.running.remove(&name);
                    self.refresh().await;
                }
                _ = refresh.tick() => self.refresh().await,
            }
        }
        self.shut_down(&mut done_rx).await;
    }

    /// Acts on a change of role: a new leader marks runs its predecessor left unfinished as abandoned
    /// and catches up on missed runs; a replica that stops leading starts nothing more and cancels its
    /// running jobs (the lock is gone: another replica may already be running the same jobs).
    async fn follow_election(&mut self) {
        let session = self.session.borrow_and_update().clone();
        self.shared.with(|s| s.role = session.role.clone());
        let leader = session.role == Role::Leader;
        if leader && !self.leader {
            if let Some(client) = &session.client {
                self.elected(client).await;
            }
        } else if !leader && self.leader {
            self.catch_up.clear();
            if !self.running.is_empty() {
                tracing::warn!(
                    running = ?self.running.keys().collect::<Vec<_>>(),
                    "no longer leader: cancelling the running jobs, no new job starts"
                );
                for running in self.running.values() {
                    let _ = running.cancel.send(true);
                }
            }
        }
        self.leader = leader;
    }

    async fn elected(&mut self, client: &tokio_postgres::Client) {
        let step = (self.options.lease / 5).max(Duration::from_millis(200));
        match tokio::time::timeout(
            step * 2,
            state::abandon_others(
                client,
                &self.options.replica,
                &self.running.keys().cloned().collect::<Vec<_>>(),
            ),
        )
        .await
        {
            Ok(Ok(n)) if n > 0 => {
                tracing::warn!(runs = n, "runs left unfinished by the previous leader marked abandoned");
            }
            Ok(Err(e)) => tracing::warn!("cannot mark abandoned runs: {}", prodready_stdx::error::chain(&e)),
            _ => {}
        }
        let names: Vec<String> = self.jobs.iter().map(|j| j.name.clone()).collect();
        let last = match tokio::time::timeout(step * 2, state::last_scheduled(client, &names)).await {
            Ok(Ok(last)) => last,
            Ok(Err(e)) => {
                tracing::warn!(
                    "cannot read past runs, so no missed run is caught up: {}",
                    prodready_stdx::error::chain(&e)
                );
                HashMap::new()
            }
            Err(_) => HashMap::new(),
        };
        let now = SystemTime::now();
        for job in &self.jobs {
            if let Some(next) = job.schedule.next_after(now) {
                self.next.insert(job.name.clone(), next);
            }
            let (Missed::RunOnce, Some(previous), Some(ran)) =
                (job.missed, job.schedule.last_at_or_before(now), last.get(&job.name))
            else {
                continue;
            };
            if *ran < previous {
                tracing::info!(job = %job.name, missed = %time(previous), "a scheduled run was missed; running it now");
                self.catch_up.insert(job.name.clone(), previous);
            }
        }
        self.refresh().await;
    }

    fn start_due(&mut self, done: &mpsc::UnboundedSender<String>) {
        let now = SystemTime::now();
        let client = self.session.borrow().client.clone();
        for job in &self.jobs {
            let due = self.catch_up.remove(&job.name).or_else(|| {
                let next = self.next.get(&job.name).copied().filter(|t| *t <= now)?;
                if let Some(after) = job.schedule.next_after(now.max(next)) {
                    self.next.insert(job.name.clone(), after);
                }
                Some(next)
            });
            let Some(scheduled) = due else { continue };
            let (true, Some(client)) = (self.leader, client.clone()) else { continue };
            if self.running.contains_key(&job.name) {
                tracing::warn!(job = %job.name, scheduled = %time(scheduled), "the previous run is still going: this run is skipped");
                continue;
            }
            let (cancel, cancelled) = watch::channel(false);
            let handle = tokio::spawn(run_once(RunContext {
                job: job.clone(),
                scheduled,
                client,
                session: self.session.clone(),
                shared: self.shared.clone(),
                replica: self.options.replica.clone(),
                kill_grace: crate::effective_kill_grace(&self.options),
                cancelled,
                stopping: self.stopping.subscribe(),
                done: done.clone(),
            }));
            self.running.insert(job.name.clone(), Running { cancel, handle });
        }
        let next = self.next.clone();
        self.shared.with(|s| {
            for view in &mut s.jobs {
                view.next_run = next.get(&view.name).copied();
            }
        });
    }

    fn until_next(&self) -> Duration {
        if !self.catch_up.is_empty() {
            return Duration::ZERO;
        }
        let now = SystemTime::now();
        self.next
            .values()
            .map(|t| t.duration_since(now).unwrap_or_default())
            .min()
            .unwrap_or(Duration::from_secs(60))
            .min(Duration::from_secs(60))
    }

    fn reload(&mut self, jobs: Vec<Job>) {
        if let Err(e) = check_names(&jobs) {
            tracing::error!("configuration not reloaded: {e}");
            return;
        }
        let now = SystemTime::now();
        // A scheduled time that has come but not started yet (the reload won the race with it) stays
        // due for a job of the same name and schedule; everything else is scheduled afresh.
        let due: HashMap<String, SystemTime> = self
            .jobs
            .iter()
            .filter(|old| {
                jobs.iter().any(|new| {
                    new.name == old.name
                        && new.schedule.expression() == old.schedule.expression()
                        && new.schedule.zone() == old.schedule.zone()
                })
            })
            .filter_map(|old| {
                Some((old.name.clone(), self.next.get(&old.name).copied().filter(|t| *t <= now)?))
            })
            .collect();
        self.next.clear();
        for job in &jobs {
            if let Some(next) = due.get(&job.name).copied().or_else(|| job.schedule.next_after(now)) {
                self.next.insert(job.name.clone(), next);
            }
        }
        self.catch_up.retain(|name, _| jobs.iter().any(|j| j.name == *name));
        self.shared.with(|s| {
            let old: HashMap<String, JobView> = s.jobs.drain(..).map(|v| (v.name.clone(), v)).collect();
            s.jobs = jobs
                .iter()
                .map(|j| {
                    let mut fresh = view(j, now);
                    if let Some(was) = old.get(&j.name) {
                        fresh.running_since = was.running_since;
                        fresh.last.clone_from(&was.last);
                        fresh.last_success = was.last_success;
                        fresh.since = was.since;
                        fresh.overdue_after =
                            j.schedule.second_run_after(was.last_success.unwrap_or(was.since));
                        fresh.recent.clone_from(&was.recent);
                    }
                    fresh
                })
                .collect();
        });
        tracing::info!(
            jobs = ?jobs.iter().map(|j| j.name.as_str()).collect::<Vec<_>>(),
            running = ?self.running.keys().collect::<Vec<_>>(),
            "configuration reloaded; running jobs continue"
        );
        self.jobs = jobs;
    }

    /// Reads the runs of every job from the table (what every replica shows).
    async fn refresh(&self) {
        let Some(client) = self.session.borrow().client.clone() else { return };
        let names: Vec<String> = self.jobs.iter().map(|j| j.name.clone()).collect();
        let step = (self.options.lease / 5).max(Duration::from_millis(200));
        let Ok(Ok(mut history)) =
            tokio::time::timeout(step, state::history(&client, &names, RECENT_RUNS)).await
        else {
            return;
        };
        self.shared.with(|s| {
            for view in &mut s.jobs {
                let (recent, last_success) = history.remove(&view.name).unwrap_or_default();
                view.last = recent.iter().find(|r| r.finished_at.is_some()).cloned();
                view.last_success = last_success;
                if let Some(job) = self.jobs.iter().find(|j| j.name == view.name) {
                    view.overdue_after = job.schedule.second_run_after(last_success.unwrap_or(view.since));
                }
                view.recent = recent;
            }
        });
    }

    async fn shut_down(&mut self, done: &mut mpsc::UnboundedReceiver<String>) {
        // Runs still waiting out their jitter end now, as not started.
        let _ = self.stopping.send(true);
        if self.running.is_empty() {
            tracing::info!("stopping");
            return;
        }
        let deadline = Instant::now() + self.options.shutdown_timeout;
        tracing::info!(
            running = ?self.running.keys().collect::<Vec<_>>(),
            wait = %job::humantime(self.options.shutdown_timeout),
            "stopping: no new job starts; waiting for the started ones"
        );
        // Leadership can be lost while the jobs finish (the lock database unreachable): then another
        // replica may take over and run the same jobs, so they are cancelled at once, as on a step-down.
        let mut leading = self.leader;
        while !self.running.is_empty() && leading {
            tokio::select! {
                Some(name) = done.recv() => { self.running.remove(&name); }
                () = tokio::time::sleep_until(deadline) => break,
                changed = self.session.changed() => {
                    leading = changed.is_ok() && self.session.borrow_and_update().role == Role::Leader;
                    self.shared.with(|s| s.role = self.session.borrow().role.clone());
                }
            }
        }
        if !self.running.is_empty() {
            let why = if leading { "shutdown deadline reached" } else { "no longer leader" };
            tracing::warn!(running = ?self.running.keys().collect::<Vec<_>>(), "{why}: cancelling");
            for running in self.running.values() {
                let _ = running.cancel.send(true);
            }
            for (_, running) in self.running.drain() {
                let _ = running.handle.await;
            }
        }
    }
}

struct RunContext {
    job: Job,
    scheduled: SystemTime,
    client: Arc<tokio_postgres::Client>,
    session: watch::Receiver<Session>,
    shared: Arc<Shared>,
    replica: String,
    kill_grace: Duration,
    cancelled: watch::Receiver<bool>,
    stopping: watch::Receiver<bool>,
    done: mpsc::UnboundedSender<String>,
}

/// Claims the run, waits out the jitter, runs the job and records how it ended.
async fn run_once(mut cx: RunContext) {
    let name = cx.job.name.clone();
    run_claimed(&mut cx).await;
    let _ = cx.done.send(name);
}

async fn run_claimed(cx: &mut RunContext) {
    let job = &cx.job;
    // A claim that fails (the lock database hiccuped) is tried again a few times before the run is given
    // up: a lost run is only caught up at the next election. ProdreadyDaemonJobOverdue tells when runs
    // keep being lost.
    let mut attempt = 0;
    let id = loop {
        attempt += 1;
        match state::claim(&cx.client, &job.name, cx.scheduled, &cx.replica).await {
            Ok(Some(id)) => break id,
            Ok(None) => {
                tracing::info!(job = %job.name, scheduled = %time(cx.scheduled), "already run by another replica");
                return;
            }
            Err(e) if attempt >= RECORD_ATTEMPTS || *cx.cancelled.borrow() => {
                tracing::warn!(job = %job.name, "cannot claim the run, so it does not start: {}", prodready_stdx::error::chain(&e));
                return;
            }
            Err(_) => tokio::time::sleep(RECORD_RETRY).await,
        }
    };
    if !job.jitter.is_zero() {
        let wait = job.jitter.mul_f64(random_fraction());
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            _ = cx.cancelled.wait_for(|c| *c) => {}
            _ = cx.stopping.wait_for(|s| *s) => {}
        }
    }
    let started = SystemTime::now();
    let (outcome, detail) = if *cx.cancelled.borrow() {
        (job::Outcome::Cancelled, "cancelled before it started".to_owned())
    } else if *cx.stopping.borrow() {
        (job::Outcome::Cancelled, "not started: the daemon is stopping".to_owned())
    } else {
        let _ = state::started(&cx.client, id).await;
        cx.shared.with(|s| {
            if let Some(v) = s.jobs.iter_mut().find(|v| v.name == job.name) {
                v.running_since = Some(started);
            }
        });
        tracing::info!(job = %job.name, kind = %job.kind, scheduled = %time(cx.scheduled), "job started");
        job::execute(job, cx.cancelled.clone(), cx.kill_grace).await
    };
    let elapsed = started.elapsed().unwrap_or_default();
    let first_line = detail.lines().next().unwrap_or_default().to_owned();
    match outcome {
        job::Outcome::Success => {
            tracing::info!(job = %job.name, result = outcome.as_str(), seconds = elapsed.as_secs_f64(), "job finished");
        }
        _ => {
            tracing::warn!(job = %job.name, result = outcome.as_str(), seconds = elapsed.as_secs_f64(), "job finished: {first_line}");
        }
    }
    cx.shared.with(|s| {
        if let Some(v) = s.jobs.iter_mut().find(|v| v.name == job.name) {
            v.running_since = None;
        }
        *s.runs_total.entry((job.name.clone(), outcome)).or_default() += 1;
    });
    // Recorded through the current session when the one the run was claimed on is gone.
    for attempt in 1..=RECORD_ATTEMPTS {
        let client = cx.session.borrow().client.clone().unwrap_or_else(|| cx.client.clone());
        match state::finish(&client, id, &job.name, outcome.as_str(), &detail).await {
            Ok(()) => break,
            Err(e) if attempt == RECORD_ATTEMPTS => {
                tracing::warn!(job = %job.name, "cannot record the run's result: {}", prodready_stdx::error::chain(&e));
            }
            Err(_) => tokio::time::sleep(RECORD_RETRY).await,
        }
    }
}

/// How often claiming or recording a run is tried, and the wait between tries.
const RECORD_ATTEMPTS: u32 = 3;
const RECORD_RETRY: Duration = Duration::from_millis(500);

fn random_fraction() -> f64 {
    let mut bytes = [0u8; 4];
    if getrandom::getrandom(&mut bytes).is_err() {
        return 0.5;
    }
    f64::from(u32::from_le_bytes(bytes)) / f64::from(u32::MAX)
}

fn time(t: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(t).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::{Duration, SystemTime};

    use tokio::sync::watch;

    use super::{Scheduler, view};
    use crate::job::Job;
    use crate::leader::Session;
    use crate::status::{Shared, Status};
    use crate::{Options, Role, Schedule};

    fn job(name: &str, expression: &str) -> Job {
        Job::new(name, "shell", Schedule::parse(expression, "UTC").unwrap(), vec!["true".to_owned()])
    }

    fn scheduler(jobs: Vec<Job>) -> Scheduler {
        let now = SystemTime::now();
        let options = Options::new(([127, 0, 0, 1], 0).into(), "postgres://nowhere", "r", jobs.clone());
        let shared = Arc::new(Shared::new(Status {
            replica: "r".to_owned(),
            started_at: now,
            role: Role::Starting,
            jobs: jobs.iter().map(|j| view(j, now)).collect(),
            runs_total: Default::default(),
        }));
        Scheduler {
            next: Default::default(),
            jobs,
            options,
            shared,
            session: watch::channel(Session { role: Role::Starting, client: None }).1,
            running: Default::default(),
            catch_up: Default::default(),
            leader: false,
            stopping: watch::channel(false).0,
        }
    }

    /// A reload that comes just as a run is due keeps that run due when the job's schedule is unchanged,
    /// and schedules afresh a job whose schedule changed or that is new.
    #[test]
    fn a_reload_keeps_a_due_run_of_an_unchanged_job() {
        let due = SystemTime::now() - Duration::from_secs(1);
        let mut s = scheduler(vec![job("same", "0 0 * * *"), job("changed", "0 0 * * *")]);
        s.next.insert("same".to_owned(), due);
        s.next.insert("changed".to_owned(), due);
        s.reload(vec![job("same", "0 0 * * *"), job("changed", "0 12 * * *"), job("new", "0 0 * * *")]);
        assert_eq!(s.next.get("same"), Some(&due));
        let now = SystemTime::now();
        assert!(s.next["changed"] > now && s.next["new"] > now, "{:?}", s.next);
    }
}
