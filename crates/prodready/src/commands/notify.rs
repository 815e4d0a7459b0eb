//! `prodready notify slack`: one message to a Slack incoming webhook.

use std::io::{Read as _, Write as _};
use std::path::Path;
use std::time::Duration;

use anyhow::Context as _;

use crate::cli::NotifyCommand;
use crate::config;
use crate::env::Env;
use crate::error::UsageError;
use crate::exit::Exit;

pub(super) fn run(config_flag: Option<&Path>, env: &Env, cmd: &NotifyCommand) -> anyhow::Result<Exit> {
    let NotifyCommand::Slack { webhook_file, text, channel } = cmd;
    let cfg = config::load(config_flag, env)?.config;
    let file = webhook_file.clone().unwrap_or(cfg.alerts.slack.webhook_file);
    // The webhook URL is a credential: anyone who reads it can post to the channel.
    if let Some(mode) = std::fs::metadata(&file).ok().as_ref().and_then(prodready_stdx::fs::open_to_others) {
        return Err(UsageError(format!(
            "{}: the Slack webhook file is readable by group or others (mode {mode:o}); run `chmod 600 {}`",
            file.display(),
            file.display()
        ))
        .into());
    }
    let url = std::fs::read_to_string(&file)
        .map_err(|e| UsageError(format!("{}: cannot read the Slack webhook file: {e}", file.display())))?
        .trim()
        .to_owned();
    if !url.starts_with("https://") && !url.starts_with("http://") {
        return Err(UsageError(format!(
            "{}: does not hold a webhook URL (https://hooks.slack.com/...)",
            file.display()
        ))
        .into());
    }
    let text = if text == "-" {
        let mut buf = String::new();
        std::io::stdin().read_to_string(&mut buf).context("cannot read the message from stdin")?;
        buf.trim_end().to_owned()
    } else {
        text.clone()
    };
    if text.is_empty() {
        return Err(UsageError("--text: the message is empty".to_owned()).into());
    }
    let body = prodready_metrics_alerts::slack::payload(&text, channel.as_deref());
    let runtime = super::runtime(1)?;
    let answer = runtime.block_on(async {
        let client = reqwest::Client::builder().timeout(Duration::from_secs(15)).build()?;
        let response = client.post(&url).json(&body).send().await?;
        let status = response.status();
        Ok::<_, reqwest::Error>((status, response.text().await.unwrap_or_default()))
    });
    // The URL is the secret: errors are reported without it.
    let (status, reply) = answer.map_err(|e| anyhow::anyhow!("Slack did not answer: {}", e.without_url()))?;
    if !status.is_success() {
        anyhow::bail!("Slack refused the message: {status} {}", reply.trim());
    }
    writeln!(std::io::stderr(), "sent to Slack ({} characters)", text.chars().count())?;
    Ok(Exit::Success)
}
