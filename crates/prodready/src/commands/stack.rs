//! `prodready stack generate`: writes the monitoring stack.

use std::io::Write as _;
use std::path::Path;

use anyhow::Context as _;

use crate::cli::StackCommand;
use crate::config;
use crate::env::Env;
use crate::exit::Exit;

pub(super) fn run(config_flag: Option<&Path>, env: &Env, cmd: &StackCommand) -> anyhow::Result<Exit> {
    let cfg = config::load(config_flag, env)?.config;
    let StackCommand::Generate { out } = cmd;
    let credentials = super::credentials::materialize(&cfg, env, out)?;
    let files = crate::stack::files(&credentials.cfg)?;
    credentials.write()?;
    for (path, text) in files {
        let path = out.join(path);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        }
        prodready_stdx::fs::write_atomic(&path, text.as_bytes())
            .with_context(|| format!("cannot write {}", path.display()))?;
        writeln!(std::io::stdout(), "wrote {}", path.display())?;
    }
    Ok(Exit::Success)
}
