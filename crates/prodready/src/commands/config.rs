use std::io::Write as _;
use std::path::Path;

use crate::cli::ConfigCommand;
use crate::config::{self, Source};
use crate::env::Env;
use crate::exit::Exit;

pub(super) fn run(config_flag: Option<&Path>, env: &Env, cmd: &ConfigCommand) -> anyhow::Result<Exit> {
    let ConfigCommand::Show { json } = cmd;
    let loaded = config::load(config_flag, env)?;
    let mut stdout = std::io::stdout().lock();
    if *json {
        serde_json::to_writer_pretty(&mut stdout, &loaded.config.redacted_json())?;
        writeln!(stdout)?;
    } else {
        let source = match &loaded.source {
            Source::Embedded => "embedded defaults (no configuration file)".to_owned(),
            Source::File(path) => path.display().to_string(),
        };
        writeln!(stdout, "# source: {source}")?;
        for var in &loaded.overrides {
            writeln!(stdout, "# overridden by {var}")?;
        }
        write!(stdout, "{}", toml::to_string_pretty(&loaded.config.redacted())?)?;
    }
    Ok(Exit::Success)
}
