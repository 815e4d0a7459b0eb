use std::process::Stdio;
use std::time::Instant;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::io::AsyncReadExt as _;

use super::{Finding, millis};

/// How much of the end of stderr is kept for the failure message.
const STDERR_TAIL: usize = 8 * 1024;

/// Kills the command's whole process group when dropped: on a timeout (the probe future is dropped) and
/// after it exits, so a check never leaves processes behind.
struct Group(Option<i32>);

impl Drop for Group {
    fn drop(&mut self) {
        if let Some(pgid) = self.0 {
            let _ = killpg(Pid::from_raw(pgid), Signal::SIGKILL);
        }
    }
}

/// The command exits 0. Only the last line of stderr is shown on failure.
pub(super) async fn probe(run: &[String]) -> Finding {
    let Some((program, args)) = run.split_first() else {
        return Finding::error("empty command");
    };
    let started = Instant::now();
    let spawned = tokio::process::Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true)
        .spawn();
    let mut child = match spawned {
        Ok(c) => c,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Finding::fail(format!("`{program}` is not installed or not on PATH"));
        }
        Err(e) => return Finding::error(format!("cannot run `{program}`: {e}")),
    };
    let group = Group(child.id().and_then(|id| i32::try_from(id).ok()));
    let mut stderr = child.stderr.take().expect("stderr is piped");
    let tail = tokio::spawn(async move {
        let (mut tail, mut buf) = (Vec::new(), vec![0u8; 4096]);
        while let Ok(n) = stderr.read(&mut buf).await {
            if n == 0 {
                break;
            }
            tail.extend_from_slice(&buf[..n]);
            if tail.len() > STDERR_TAIL {
                tail.drain(..tail.len() - STDERR_TAIL);
            }
        }
        tail
    });
    let status = child.wait().await;
    // Whatever the command left running (and holding stderr open) goes now.
    drop(group);
    let stderr = tail.await.unwrap_or_default();
    let status = match status {
        Ok(s) => s,
        Err(e) => return Finding::error(format!("waiting for `{program}`: {e}")),
    };
    let elapsed = millis(started.elapsed());
    if status.success() {
        return Finding::pass(format!("`{program}` exited 0 in {elapsed}"));
    }
    let stderr = String::from_utf8_lossy(&stderr);
    let last = stderr
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .map(|l| format!(": {}", l.trim()))
        .unwrap_or_default();
    let how = status.code().map_or_else(|| "was killed by a signal".to_owned(), |c| format!("exited {c}"));
    Finding::fail(format!("`{program}` {how} after {elapsed}{last}"))
}
