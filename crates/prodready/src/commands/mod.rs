//! One module per command; [`run`] dispatches.

use crate::cli::{Cli, Command};
use crate::env::Env;
use crate::exit::Exit;

pub mod alerts;
mod backup;
mod check;
mod config;
mod init;
mod logs;
mod meta;
mod notify;
mod secrets;

/// Runs one parsed command line against an environment snapshot.
pub fn run(cli: Cli, env: &Env) -> anyhow::Result<Exit> {
    match cli.command {
        Command::Alerts(cmd) => alerts::run(cli.config.as_deref(), env, &cmd),
        Command::Backup(cmd) => backup::run(cli.config.as_deref(), env, &cmd),
        Command::Check(args) => check::run(cli.config.as_deref(), env, &args),
        Command::Secrets(cmd) => secrets::run(cli.config.as_deref(), env, &cmd),
        Command::Logs(cmd) => logs::run(cli.config.as_deref(), env, &cmd),
        Command::Notify(cmd) => notify::run(cli.config.as_deref(), env, &cmd),
        Command::Init(args) => init::run(cli.config.as_deref(), &args),
        Command::Config(cmd) => config::run(cli.config.as_deref(), env, &cmd),
        Command::Completions { shell } => meta::completions(shell),
        Command::Man { out } => meta::man(&out),
    }
}
