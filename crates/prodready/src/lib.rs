//! The `prodready` command: parsing, configuration, dispatch and exit codes.
//!
//! The binary is thin: [`main`] parses, runs one command and maps the outcome to an exit code here, in one
//! place. The work itself lives in the library crates.

use std::io::Write as _;
use std::process::ExitCode;

use clap::Parser as _;

pub mod cli;
pub mod commands;
pub mod config;
pub mod default_checklist;
pub mod deploy;
pub mod docs;
pub mod env;
pub mod error;
pub mod exit;
mod progress;
pub mod schedule;
pub mod sections;
pub mod stack;

pub use error::UsageError;
pub use exit::Exit;

/// Parses the command line, runs the command and returns the exit code.
pub fn main() -> ExitCode {
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            let _ = err.print();
            return match err.use_stderr() {
                // PostgreSQL takes an exit code up to 125 from restore_command for "no such file" and ends
                // recovery there: a mistyped restore_command must stop recovery instead.
                true if std::env::args_os().any(|a| a == "wal-fetch") => Exit::WalFetchFailed.into(),
                true => Exit::Usage.into(),
                false => Exit::Success.into(),
            };
        }
    };
    let wal_fetch = matches!(cli.command, cli::Command::Backup(cli::BackupCommand::WalFetch { .. }));
    let env = env::Env::capture();
    progress::configure(&env);
    match commands::run(cli, &env) {
        Ok(exit) => exit.into(),
        Err(err) if error::is_broken_pipe(&err) => Exit::Success.into(),
        Err(err) => {
            // The chain without repeats: library errors often quote their source in their own message.
            let text = prodready_stdx::error::chain(err.as_ref());
            let _ = match error::hint(&err) {
                Some(hint) => writeln!(std::io::stderr(), "error: {text}; {hint}"),
                None => writeln!(std::io::stderr(), "error: {text}"),
            };
            // Whatever stopped wal-fetch (an unreadable configuration too) must stop recovery, not end it.
            if wal_fetch { Exit::WalFetchFailed.into() } else { error::exit_for(&err).into() }
        }
    }
}
