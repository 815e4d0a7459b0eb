use std::io::Write as _;
use std::path::Path;

use anyhow::Context as _;

use crate::cli::InitArgs;
use crate::config::{DEFAULT_FILE, STARTER};
use crate::error::UsageError;
use crate::exit::Exit;

pub(super) fn run(config_flag: Option<&Path>, args: &InitArgs) -> anyhow::Result<Exit> {
    let path = args.path.as_deref().or(config_flag).unwrap_or(Path::new(DEFAULT_FILE));
    if path.exists() && !args.force {
        return Err(
            UsageError(format!("{}: already exists; pass --force to overwrite it", path.display())).into()
        );
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    std::fs::write(path, STARTER).with_context(|| format!("cannot write {}", path.display()))?;
    writeln!(
        std::io::stderr(),
        "wrote {}; see the effective configuration with `prodready config show`",
        path.display()
    )?;
    Ok(Exit::Success)
}
