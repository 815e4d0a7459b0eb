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
pub mod docs;
pub mod env;
pub mod error;
pub mod exit;
mod progress;
pub mod schedule;
pub mod sections;

pub use error::UsageError;
pub use exit::Exit;

/// Parses the command line, runs the command and returns the exit code.
pub fn main() -> ExitCode {
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            let _ = err.print();
            return if err.use_stderr() { Exit::Usage.into() } else { Exit::Success.into() };
        }
    };
    match commands::run(cli, &env::Env::capture()) {
        Ok(exit) => exit.into(),
        Err(err) if error::is_broken_pipe(&err) => Exit::Success.into(),
        Err(err) => {
            let _ = match error::hint(&err) {
                Some(hint) => writeln!(std::io::stderr(), "error: {err:#}; {hint}"),
                None => writeln!(std::io::stderr(), "error: {err:#}"),
            };
            error::exit_for(&err).into()
        }
    }
}
