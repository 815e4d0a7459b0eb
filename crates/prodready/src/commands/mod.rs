//! One module per command; [`run`] dispatches.

use crate::cli::{Cli, Command};
use crate::env::Env;
use crate::exit::Exit;

pub mod alerts;
pub(crate) mod backup;
mod check;
mod config;
mod credentials;
mod daemon;
mod db;
mod init;
mod load;
mod logs;
mod meta;
mod notify;
mod scan;
mod secrets;
mod stack;
mod trace;
mod wal;

/// The async runtime of a command: two workers (S3 stores and the log agent block in place, so a
/// multi-threaded runtime is needed), or one thread for commands that make a request or two.
fn runtime(workers: usize) -> anyhow::Result<tokio::runtime::Runtime> {
    let mut builder = if workers > 1 {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(workers);
        b
    } else {
        tokio::runtime::Builder::new_current_thread()
    };
    builder.enable_all().build().map_err(|e| anyhow::anyhow!("cannot start the async runtime: {e}"))
}

/// Resolves on SIGINT or SIGTERM (never, when the handlers cannot be installed).
async fn interrupted() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut int), Ok(mut term)) = (signal(SignalKind::interrupt()), signal(SignalKind::terminate()))
    else {
        std::future::pending::<()>().await;
        return;
    };
    tokio::select! {
        _ = int.recv() => {}
        _ = term.recv() => {}
    }
}

/// Runs one parsed command line against an environment snapshot.
pub fn run(cli: Cli, env: &Env) -> anyhow::Result<Exit> {
    // Database passwords from libpq's password file, as psql and pg_dump find them.
    let passfile = env
        .get(crate::env::PGPASSFILE)
        .map(std::path::PathBuf::from)
        .or_else(|| env.get(crate::env::HOME).map(|home| std::path::Path::new(home).join(".pgpass")));
    if let Some(passfile) = passfile {
        prodready_pg::passfile::set_default(passfile);
    }
    if let Some(parent) = cli.daemon_parent {
        daemon::die_with_parent(parent)?;
    }
    match cli.command {
        Command::Alerts(cmd) => alerts::run(cli.config.as_deref(), env, &cmd),
        Command::Backup(cmd) => backup::run(cli.config.as_deref(), env, &cmd),
        Command::Check(args) => check::run(cli.config.as_deref(), env, &args),
        Command::Secrets(cmd) => secrets::run(cli.config.as_deref(), env, &cmd),
        Command::Scan(cmd) => scan::run(cli.config.as_deref(), env, &cmd),
        Command::Logs(cmd) => logs::run(cli.config.as_deref(), env, &cmd),
        Command::Notify(cmd) => notify::run(cli.config.as_deref(), env, &cmd),
        Command::Stack(cmd) => stack::run(cli.config.as_deref(), env, &cmd),
        Command::Daemon(args) => daemon::run(cli.config.as_deref(), env, &args),
        Command::Db(cmd) => db::run(cli.config.as_deref(), env, &cmd),
        Command::Trace(cmd) => trace::run(cli.config.as_deref(), env, &cmd),
        Command::Load(cmd) => load::run(cli.config.as_deref(), env, &cmd),
        Command::Init(args) => init::run(cli.config.as_deref(), &args),
        Command::Config(cmd) => config::run(cli.config.as_deref(), env, &cmd),
        Command::Completions { shell } => meta::completions(shell),
        Command::Man { out } => meta::man(&out),
    }
}
