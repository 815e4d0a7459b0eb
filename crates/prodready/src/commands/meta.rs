//! Commands about prodready itself: shell completions and man pages.

use std::io::Write as _;
use std::path::Path;

use anyhow::Context as _;
use clap::CommandFactory as _;

use crate::cli::Cli;
use crate::exit::Exit;

pub(super) fn completions(shell: clap_complete::Shell) -> anyhow::Result<Exit> {
    let mut cmd = Cli::command();
    // clap_complete panics when its writer fails; render first so a closed pipe is an ordinary error.
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut cmd, "prodready", &mut script);
    std::io::stdout().lock().write_all(&script)?;
    Ok(Exit::Success)
}

pub(super) fn man(out: &Path) -> anyhow::Result<Exit> {
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    clap_mangen::generate_to(Cli::command(), out)
        .with_context(|| format!("cannot write man pages to {}", out.display()))?;
    Ok(Exit::Success)
}
