//! The command-line surface. docs/cli.md is generated from these definitions.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

const ABOUT: &str = "Make a web platform production-ready: verified backups, secrets, logs, alerts, tracing, \
load tests and a launch checklist";

const AFTER_HELP: &str = "\
Configuration: --config FILE, else $PRODREADY_CONFIG, else ./prodready.toml, else embedded defaults.
Any key can be overridden as PRODREADY_<SECTION>__<KEY>, e.g. PRODREADY_BACKUP__JOBS=4.

Examples:
  prodready init                      write a commented starter prodready.toml
  prodready config show               print the effective configuration, secrets redacted
  prodready completions bash > /etc/bash_completion.d/prodready

Exit codes: 0 success, 1 the job failed, 2 usage or configuration error (docs/cli.md).";

#[derive(Debug, Parser)]
#[command(name = "prodready", version, about = ABOUT, after_help = AFTER_HELP, propagate_version = true)]
pub struct Cli {
    /// Configuration file [default: $PRODREADY_CONFIG, else ./prodready.toml if present]
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write a starter prodready.toml with every section and key commented
    #[command(
        after_help = "Examples:\n  prodready init\n  prodready init --path /etc/prodready/prodready.toml --force"
    )]
    Init(InitArgs),

    /// Inspect the configuration
    #[command(subcommand)]
    Config(ConfigCommand),

    /// Print a shell completion script to stdout
    #[command(
        after_help = "Examples:\n  prodready completions bash > ~/.local/share/bash-completion/completions/prodready\n  \
                            prodready completions zsh > ~/.zfunc/_prodready"
    )]
    Completions {
        /// The shell to complete for
        shell: clap_complete::Shell,
    },

    /// Write man pages for prodready and every subcommand
    #[command(after_help = "Examples:\n  prodready man --out /usr/local/share/man/man1")]
    Man {
        /// Directory the pages are written to (created if missing)
        #[arg(long, value_name = "DIR", default_value = "man")]
        out: PathBuf,
    },
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Where to write [default: --config FILE if given, else ./prodready.toml]
    #[arg(long, value_name = "FILE")]
    pub path: Option<PathBuf>,
    /// Overwrite an existing file
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print the effective configuration (file, overrides and defaults) with secret values redacted
    #[command(
        after_help = "Examples:\n  prodready config show\n  PRODREADY_BACKUP__JOBS=4 prodready config show --json"
    )]
    Show {
        /// Print JSON instead of TOML
        #[arg(long)]
        json: bool,
    },
}
