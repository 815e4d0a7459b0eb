//! The PostgreSQL client tools prodready drives: pg_dump for the schema, pg_restore to rebuild it.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use crate::{Error, Result};

const HINT: &str = "install the PostgreSQL client (Debian: `apt-get install postgresql-client-15`, matching the \
server's major version) or set the tool's path in BackupOptions";

/// Paths of the client tools.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tools {
    pub pg_dump: PathBuf,
    pub pg_restore: PathBuf,
}

impl Default for Tools {
    fn default() -> Self {
        Self { pg_dump: PathBuf::from("pg_dump"), pg_restore: PathBuf::from("pg_restore") }
    }
}

/// Runs `program args` with `env`, returning stdout; a missing program names the install step.
pub(crate) async fn run(
    tool: &'static str,
    program: &Path,
    args: &[String],
    env: &[(&'static str, String)],
) -> Result<String> {
    let output = tokio::process::Command::new(program)
        .args(args)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => Error::ToolMissing { tool, hint: HINT },
            _ => Error::Tool { tool, message: e.to_string() },
        })?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let message = stderr.lines().filter(|l| !l.trim().is_empty()).take(5).collect::<Vec<_>>().join("; ");
        return Err(Error::Tool { tool, message: format!("{} ({})", message.trim(), output.status) });
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// `pg_dump (PostgreSQL) 15.20 (Debian ...)` -> the version line.
pub(crate) async fn version(tool: &'static str, program: &Path) -> Result<String> {
    Ok(run(tool, program, &["--version".to_owned()], &[]).await?.trim().to_owned())
}
