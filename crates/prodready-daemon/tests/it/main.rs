//! prodready-daemon as data (schedules) and as a whole, in process, against the real PostgreSQL server:
//! jobs are real child processes, the endpoints real sockets, and every wait has a deadline.

mod cable;
mod daemon;
mod page;
mod schedule;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use prodready_daemon::{Control, Job, Options, Schedule, StatusSections};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// An instant written as RFC 3339 (`2025-01-15T12:00:00Z`, fractions allowed).
pub fn at(rfc3339: &str) -> SystemTime {
    let t = chrono::DateTime::parse_from_rfc3339(rfc3339).unwrap_or_else(|e| panic!("{rfc3339}: {e}"));
    let since_epoch = Duration::new(
        u64::try_from(t.timestamp()).expect("an instant after 1970"),
        t.timestamp_subsec_nanos(),
    );
    SystemTime::UNIX_EPOCH + since_epoch
}

/// An instant as RFC 3339 in UTC, with a fraction only when it has one.
pub fn utc(t: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(t).to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

pub fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// Probes until `probe` is `Ok` or `within` has passed; then panics naming `what` and the last thing
/// the probe saw.
pub async fn eventually<T>(
    what: &str,
    within: Duration,
    mut probe: impl AsyncFnMut() -> Result<T, String>,
) -> T {
    let deadline = Instant::now() + within;
    loop {
        match probe().await {
            Ok(found) => return found,
            Err(last) if Instant::now() >= deadline => {
                panic!("waited {within:?} in vain for {what}; last seen:\n{last}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// Options for a test daemon: a free loopback port, a two-second lease, a one-second kill grace.
pub fn options(lock_url: &str, replica: &str, jobs: Vec<Job>) -> Options {
    let listen = SocketAddr::from(([127, 0, 0, 1], prodready_test_support::free_port()));
    let mut options = Options::new(listen, lock_url, replica, jobs);
    options.lease = secs(2);
    options.shutdown_timeout = secs(10);
    options.kill_grace = secs(1);
    options
}

/// A job running `sh -c script` on `expression` (UTC), with `env` added to its environment (paths are
/// handed over there, so scripts need no quoting).
pub fn sh(name: &str, expression: &str, script: &str, env: &[(&str, &Path)]) -> Job {
    let schedule = Schedule::parse(expression, "UTC").unwrap();
    let mut job = Job::new(name, "shell", schedule, vec!["sh".into(), "-c".into(), script.into()]);
    job.env = env.iter().map(|(k, v)| ((*k).to_owned(), v.display().to_string())).collect();
    job
}

/// A daemon running on the test's runtime.
pub struct Daemon {
    pub addr: SocketAddr,
    control: mpsc::UnboundedSender<Control>,
    handle: JoinHandle<prodready_daemon::Result<()>>,
}

impl Daemon {
    pub fn start(options: Options) -> Self {
        Self::start_with(options, Arc::new(()))
    }

    pub fn start_with(options: Options, sections: Arc<dyn StatusSections>) -> Self {
        let addr = options.listen;
        let (control, received) = mpsc::unbounded_channel();
        let handle = tokio::spawn(Box::pin(prodready_daemon::run(options, sections, received)));
        Self { addr, control, handle }
    }

    pub fn reload(&self, jobs: Vec<Job>) {
        self.control.send(Control::Reload(jobs)).expect("the daemon is running");
    }

    /// Sends [`Control::Shutdown`] and waits for [`prodready_daemon::run`] to return `Ok`.
    pub async fn stop(self) {
        self.control.send(Control::Shutdown).expect("the daemon is running");
        self.finish().await;
    }

    /// Waits for [`prodready_daemon::run`] to return `Ok`.
    pub async fn finish(self) {
        tokio::time::timeout(secs(30), self.handle)
            .await
            .expect("the daemon did not stop within 30 s")
            .expect("the daemon panicked")
            .expect("run returns Ok once stopped");
    }

    pub async fn get(&self, path: &str) -> Reply {
        get(self.addr, path, None).await.unwrap_or_else(|e| panic!("GET {path}: {e}"))
    }

    /// `/status.json`, parsed.
    pub async fn status(&self) -> serde_json::Value {
        let reply = self.get("/status.json").await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        serde_json::from_str(&reply.body).unwrap()
    }

    /// Waits until `/readyz` answers 200 `ready: ROLE`.
    pub async fn wait_ready(&self, role: &str) {
        let expected = format!("ready: {role}\n");
        eventually(&format!("`{expected}` from /readyz of {}", self.addr), secs(20), async || {
            match get(self.addr, "/readyz", None).await {
                Ok(reply) if reply.status == 200 && reply.body == expected => Ok(()),
                Ok(reply) => Err(format!("{} {}", reply.status, reply.body)),
                Err(e) => Err(e),
            }
        })
        .await;
    }
}

/// An HTTP answer.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl Reply {
    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).map_or("", |v| v.to_str().unwrap())
    }
}

pub async fn get(addr: SocketAddr, path: &str, accept: Option<&str>) -> Result<Reply, String> {
    let mut request = reqwest::Client::new().get(format!("http://{addr}{path}")).timeout(secs(10));
    if let Some(accept) = accept {
        request = request.header("accept", accept);
    }
    let response = request.send().await.map_err(|e| e.to_string())?;
    let (status, headers) = (response.status().as_u16(), response.headers().clone());
    let body = response.text().await.map_err(|e| e.to_string())?;
    Ok(Reply { status, headers, body })
}

/// A row of the table of runs.
#[derive(Debug, Clone)]
pub struct Run {
    pub job: String,
    /// Unix seconds.
    pub scheduled_at: f64,
    pub finished: bool,
    pub result: Option<String>,
    pub detail: String,
    pub replica: String,
}

/// Every row of the table of runs, oldest scheduled time first.
pub async fn runs(pg: &tokio_postgres::Client) -> Vec<Run> {
    pg.query(
        "SELECT job, extract(epoch FROM scheduled_at)::float8, finished_at IS NOT NULL, result, detail, replica
         FROM prodready_daemon_runs ORDER BY scheduled_at, job",
        &[],
    )
    .await
    .expect("reading the table of runs")
    .iter()
    .map(|r| Run {
        job: r.get(0),
        scheduled_at: r.get(1),
        finished: r.get(2),
        result: r.get(3),
        detail: r.get(4),
        replica: r.get(5),
    })
    .collect()
}

/// The runs of `job` that ended with `result`.
pub fn with_result<'a>(runs: &'a [Run], job: &str, result: &str) -> Vec<&'a Run> {
    runs.iter().filter(|r| r.job == job && r.result.as_deref() == Some(result)).collect()
}

/// Waits until `job` has at least `n` runs that ended with `result`.
pub async fn wait_for_runs(pg: &tokio_postgres::Client, job: &str, result: &str, n: usize) -> Vec<Run> {
    eventually(&format!("{n} runs of `{job}` ending in `{result}`"), secs(30), async || {
        let runs = runs(pg).await;
        if with_result(&runs, job, result).len() >= n { Ok(runs) } else { Err(format!("{runs:#?}")) }
    })
    .await
}

/// The lines of a file a job appends to (none when it does not exist yet).
pub fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path).map(|text| text.lines().map(str::to_owned).collect()).unwrap_or_default()
}

/// Whether process `pid` is alive: it exists and is not a zombie (this machine's init does not
/// always reap orphans, and a zombie is dead).
pub fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| stat.rsplit_once(") ").and_then(|(_, rest)| rest.chars().next()))
        .is_some_and(|state| !matches!(state, 'Z' | 'X'))
}

/// Creates the table of runs in the database of `lock_url` the way replicas do: a daemon without jobs
/// stands on it once.
pub async fn create_runs_table(lock_url: &str) {
    let daemon = Daemon::start(options(lock_url, "first", Vec::new()));
    daemon.wait_ready("leader").await;
    daemon.stop().await;
}
