use std::process::Stdio;
use std::time::Instant;

use super::{Finding, millis};

/// The command exits 0. Its output is not shown beyond the last line of stderr on failure. The child
/// is killed if the check is abandoned (timeout).
pub async fn probe(run: &[String]) -> Finding {
    let Some((program, args)) = run.split_first() else {
        return Finding::error("empty command");
    };
    let started = Instant::now();
    let output = tokio::process::Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .output()
        .await;
    let output = match output {
        Ok(o) => o,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Finding::fail(format!("`{program}` is not installed or not on PATH"));
        }
        Err(e) => return Finding::error(format!("cannot run `{program}`: {e}")),
    };
    let elapsed = millis(started.elapsed());
    if output.status.success() {
        return Finding::pass(format!("`{program}` exited 0 in {elapsed}"));
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    let last = stderr
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .map(|l| format!(": {}", l.trim()))
        .unwrap_or_default();
    let how =
        output.status.code().map_or_else(|| "was killed by a signal".to_owned(), |c| format!("exited {c}"));
    Finding::fail(format!("`{program}` {how} after {elapsed}{last}"))
}
