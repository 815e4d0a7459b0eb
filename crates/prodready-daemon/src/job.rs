//! A job: what runs, when, for how long; and one run of it as a supervised child process.

use std::collections::VecDeque;
use std::process::Stdio;
use std::time::Duration;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt as _, AsyncRead, BufReader};
use tokio::sync::watch;

use crate::Schedule;

/// Lines of a job's output kept for the table of runs and the status page.
const TAIL_LINES: usize = 20;
/// Bytes of one kept line.
const TAIL_LINE_BYTES: usize = 400;

/// What to do about runs that were due while no replica was leader (the daemon was down).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Missed {
    /// Run once as soon as a leader is elected, for the last missed time (never once per missed time).
    #[default]
    RunOnce,
    /// Wait for the next scheduled time.
    Skip,
}

/// A scheduled job: a command line run as a child process.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Job {
    /// Unique among the jobs; the `job` label of its metrics.
    pub name: String,
    /// What it does, for display (`backup-run`, `check`...).
    pub kind: String,
    pub schedule: Schedule,
    /// The program and its arguments.
    pub command: Vec<String>,
    /// Variables added to the child's environment (which is otherwise the daemon's).
    pub env: Vec<(String, String)>,
    /// A run still going after this long is stopped and counts as `timeout`.
    pub timeout: Duration,
    /// A run starts up to this long after its scheduled time (random), to spread load.
    pub jitter: Duration,
    pub missed: Missed,
}

impl Job {
    pub fn new(
        name: impl Into<String>,
        kind: impl Into<String>,
        schedule: Schedule,
        command: Vec<String>,
    ) -> Self {
        Self {
            name: name.into(),
            kind: kind.into(),
            schedule,
            command,
            env: Vec::new(),
            timeout: Duration::from_secs(3600),
            jitter: Duration::ZERO,
            missed: Missed::RunOnce,
        }
    }
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Success,
    Failure,
    Timeout,
    Cancelled,
}

impl Outcome {
    pub const ALL: [Self; 4] = [Self::Success, Self::Failure, Self::Timeout, Self::Cancelled];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Failure => "failure",
            Self::Timeout => "timeout",
            Self::Cancelled => "cancelled",
        }
    }
}

/// Runs `job` once: its output is logged line by line and the last lines kept; it is stopped
/// (`SIGTERM` to its process group, `SIGKILL` after `kill_grace`) when it outlives its timeout or when
/// `cancel` turns true. Returns the outcome and a detail: the exit status and the kept lines.
pub(crate) async fn execute(
    job: &Job,
    mut cancel: watch::Receiver<bool>,
    kill_grace: Duration,
) -> (Outcome, String) {
    let Some((program, args)) = job.command.split_first() else {
        return (Outcome::Failure, "the job has no command".to_owned());
    };
    let mut command = tokio::process::Command::new(program);
    command
        .args(args)
        .envs(job.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own process group: a Ctrl-C meant for the daemon does not hit the job directly, and
        // stopping the job stops the tools it started.
        .process_group(0);
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(e) => return (Outcome::Failure, format!("cannot start {program}: {e}")),
    };
    let pid = child.id().and_then(|id| i32::try_from(id).ok()).map(Pid::from_raw);
    let tail = std::sync::Arc::new(std::sync::Mutex::new(VecDeque::new()));
    let readers = [
        child.stdout.take().map(|out| tokio::spawn(forward(job.name.clone(), out, tail.clone()))),
        child.stderr.take().map(|err| tokio::spawn(forward(job.name.clone(), err, tail.clone()))),
    ];
    let stop = tokio::select! {
        status = child.wait() => Err(status),
        () = tokio::time::sleep(job.timeout) => Ok(Outcome::Timeout),
        () = cancelled(&mut cancel) => Ok(Outcome::Cancelled),
    };
    let (outcome, status) = match stop {
        Err(status) => {
            let outcome = match &status {
                Ok(s) if s.success() => Outcome::Success,
                _ => Outcome::Failure,
            };
            (outcome, status)
        }
        Ok(outcome) => {
            let deadline = tokio::time::Instant::now() + kill_grace;
            if let Some(pid) = pid {
                let _ = killpg(pid, Signal::SIGTERM);
            }
            let status = match tokio::time::timeout_at(deadline, child.wait()).await {
                Ok(status) => status,
                Err(_) => {
                    if let Some(pid) = pid {
                        let _ = killpg(pid, Signal::SIGKILL);
                    }
                    child.wait().await
                }
            };
            // The job may die of SIGTERM while a tool it started ignores it: the rest of its group
            // gets the rest of the grace period, then SIGKILL.
            if let Some(pid) = pid {
                while killpg(pid, None).is_ok() {
                    if tokio::time::Instant::now() >= deadline {
                        let _ = killpg(pid, Signal::SIGKILL);
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
            (outcome, status)
        }
    };
    for reader in readers.into_iter().flatten() {
        // The pipes close when the group is gone; a grandchild that keeps them open is not waited for.
        let _ = tokio::time::timeout(Duration::from_secs(2), reader).await;
    }
    let mut detail = match (&outcome, status) {
        (Outcome::Timeout, _) => format!("timed out after {}", humantime(job.timeout)),
        (Outcome::Cancelled, _) => "cancelled".to_owned(),
        (_, Ok(s)) => describe_exit(s),
        (_, Err(e)) => format!("cannot wait for the job: {e}"),
    };
    let tail = tail.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    for line in tail.iter() {
        detail.push('\n');
        detail.push_str(line);
    }
    (outcome, detail)
}

async fn cancelled(cancel: &mut watch::Receiver<bool>) {
    // A dropped sender means nobody can cancel any more: wait forever.
    if cancel.wait_for(|c| *c).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// The longest line logged whole; the rest of a longer one is left out (marked `…`), so a job that
/// writes without newlines cannot grow the daemon's memory.
const LOG_LINE_BYTES: usize = 64 * 1024;

/// Logs each line of `stream` and keeps the last ones in `tail`. Reads to the end whatever comes (bytes
/// that are not UTF-8 are replaced, not a reason to stop: a reader that stopped would close the pipe and
/// fail the job's next write).
async fn forward(
    job: String,
    stream: impl AsyncRead + Unpin,
    tail: std::sync::Arc<std::sync::Mutex<VecDeque<String>>>,
) {
    let mut reader = BufReader::new(stream);
    let mut line: Vec<u8> = Vec::new();
    let mut cut = false;
    loop {
        let (taken, ended) = match reader.fill_buf().await {
            Ok([]) | Err(_) => break,
            Ok(buf) => {
                let (taken, ended) = match buf.iter().position(|&b| b == b'\n') {
                    Some(i) => (i + 1, true),
                    None => (buf.len(), false),
                };
                let room = LOG_LINE_BYTES.saturating_sub(line.len());
                let body = &buf[..taken - usize::from(ended)];
                cut |= body.len() > room;
                line.extend_from_slice(&body[..body.len().min(room)]);
                (taken, ended)
            }
        };
        reader.consume(taken);
        if ended {
            emit(&job, &line, cut, &tail);
            line.clear();
            cut = false;
        }
    }
    if !line.is_empty() {
        emit(&job, &line, cut, &tail);
    }
}

fn emit(job: &str, line: &[u8], cut: bool, tail: &std::sync::Mutex<VecDeque<String>>) {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let mut text = String::from_utf8_lossy(line).into_owned();
    if cut {
        text.push('…');
    }
    tracing::info!(job = %job, "{text}");
    // Kept in a text column, where PostgreSQL refuses NUL.
    let mut kept = text.replace('\0', "");
    if kept.len() > TAIL_LINE_BYTES {
        let mut cut = TAIL_LINE_BYTES;
        while !kept.is_char_boundary(cut) {
            cut -= 1;
        }
        kept.truncate(cut);
        kept.push('…');
    }
    let mut tail = tail.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if tail.len() == TAIL_LINES {
        tail.pop_front();
    }
    tail.push_back(kept);
}

fn describe_exit(status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt as _;
    match (status.code(), status.signal()) {
        (Some(0), _) => "exited with code 0".to_owned(),
        (Some(code), _) => format!("exited with code {code}"),
        (None, Some(signal)) => format!("killed by signal {signal}"),
        (None, None) => "ended".to_owned(),
    }
}

pub(crate) fn humantime(d: Duration) -> String {
    let secs = d.as_secs();
    match secs {
        0 => format!("{} ms", d.as_millis()),
        s if s % 3600 == 0 => format!("{}h", s / 3600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{Job, Outcome, execute};
    use crate::Schedule;

    /// Output that is not UTF-8, carries a NUL, and has a line far longer than what is logged whole: the
    /// job still runs to its end (its writes never hit a closed pipe), and what is kept is readable text
    /// a PostgreSQL text column takes.
    #[tokio::test]
    async fn any_output_is_read_to_the_end() {
        let script = "printf 'a\\377b\\n'; printf 'nul\\000here\\n'; \
                      head -c 200000 /dev/zero | tr '\\000' y; echo; \
                      for i in $(seq 1 3000); do echo \"line $i\"; done; echo done";
        let job = Job::new(
            "noisy",
            "shell",
            Schedule::parse("@daily", "UTC").unwrap(),
            vec!["sh".to_owned(), "-c".to_owned(), script.to_owned()],
        );
        let (_cancel, cancelled) = tokio::sync::watch::channel(false);
        let (outcome, detail) = execute(&job, cancelled, Duration::from_secs(1)).await;
        assert_eq!(outcome, Outcome::Success, "{detail}");
        assert!(detail.starts_with("exited with code 0\n"), "{detail}");
        assert!(detail.contains("line 3000"), "{detail}");
        assert!(detail.contains("done"), "{detail}");
        assert!(!detail.contains('\0'), "{detail:?}");
    }

    #[tokio::test]
    async fn bytes_that_are_not_utf8_and_nul_are_kept_readable() {
        let job = Job::new(
            "odd",
            "shell",
            Schedule::parse("@daily", "UTC").unwrap(),
            vec![
                "sh".to_owned(),
                "-c".to_owned(),
                "printf 'a\\377b\\r\\nnul\\000here\\n'; printf 'no newline'".to_owned(),
            ],
        );
        let (_cancel, cancelled) = tokio::sync::watch::channel(false);
        let (outcome, detail) = execute(&job, cancelled, Duration::from_secs(1)).await;
        assert_eq!(outcome, Outcome::Success, "{detail}");
        assert_eq!(detail, "exited with code 0\na\u{fffd}b\nnulhere\nno newline");
    }
}
