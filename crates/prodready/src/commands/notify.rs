//! `prodready notify slack|email|pagerduty`: one notification, for scripts. Every credential (the Slack
//! webhook URL, the SMTP password, the PagerDuty routing key) comes from a file that only its owner may
//! read or, for the SMTP password and the routing key, from the secret store by name, and is never
//! printed.

use std::io::{Read as _, Write as _};
use std::path::Path;
use std::time::Duration;

use anyhow::Context as _;
use prodready_metrics_alerts::pagerduty;
use prodready_secrets::ExposeSecret as _;

use super::credentials::Source;
use crate::cli::NotifyCommand;
use crate::config;
use crate::env::Env;
use crate::error::UsageError;
use crate::exit::Exit;

pub(super) fn run(config_flag: Option<&Path>, env: &Env, cmd: &NotifyCommand) -> anyhow::Result<Exit> {
    let cfg = config::load(config_flag, env)?.config;
    match cmd {
        NotifyCommand::Slack { webhook_file, text, channel } => {
            let file = webhook_file.clone().unwrap_or(cfg.alerts.slack.webhook_file);
            let url = credential(&file, "Slack webhook file")?;
            if !url.starts_with("https://") && !url.starts_with("http://") {
                return Err(UsageError(format!(
                    "{}: does not hold a webhook URL (https://hooks.slack.com/...)",
                    file.display()
                ))
                .into());
            }
            let text = message(text)?;
            let body = prodready_metrics_alerts::slack::payload(&text, channel.as_deref());
            let (status, reply) = post("Slack", &url, &body)?;
            if !status.is_success() {
                anyhow::bail!("Slack refused the message: {status} {}", reply.trim());
            }
            writeln!(std::io::stderr(), "sent to Slack ({} characters)", text.chars().count())?;
        }
        NotifyCommand::Email { to, subject, text } => {
            let email = &cfg.alerts.email;
            let to = if to.is_empty() { email.to.clone() } else { to.clone() };
            if to.is_empty() {
                return Err(UsageError("no recipient: give --to or set [alerts.email] to".to_owned()).into());
            }
            let password = match super::credentials::email_password(&cfg)? {
                Some(Source::File(file)) => Some(credential(file, "SMTP password file")?),
                Some(Source::Secret(name)) => Some(
                    super::credentials::read(&cfg, env, "[alerts.email] password_secret", name)?
                        .expose_secret()
                        .to_owned(),
                ),
                None => None,
            };
            let text = message(text)?;
            send_email(email, password, &to, subject, &text)?;
            writeln!(std::io::stderr(), "sent to {} through {}", to.join(", "), email.smarthost)?;
        }
        NotifyCommand::Pagerduty { routing_key_file, summary, severity, source, dedup_key, resolve } => {
            let pd = &cfg.alerts.pagerduty;
            // --routing-key-file wins over the configuration.
            let configured = super::credentials::routing_key(&cfg)?;
            let key = match (routing_key_file.as_deref().map(Source::File), configured) {
                (Some(Source::File(file)), _) | (None, Some(Source::File(file))) => {
                    credential(file, "PagerDuty routing key file")?
                }
                (None, Some(Source::Secret(name))) => {
                    super::credentials::read(&cfg, env, "[alerts.pagerduty] routing_key_secret", name)?
                        .expose_secret()
                        .to_owned()
                }
                _ => {
                    return Err(UsageError(
                        "no routing key: give --routing-key-file or set [alerts.pagerduty] routing_key_file or \
                         routing_key_secret"
                            .to_owned(),
                    )
                    .into());
                }
            };
            let source = source.clone().unwrap_or_else(hostname);
            let action = if *resolve { pagerduty::Action::Resolve } else { pagerduty::Action::Trigger };
            let body = pagerduty::event(&key, action, summary, severity, &source, dedup_key.as_deref());
            let (status, reply) = post("PagerDuty", &pd.url, &body)?;
            if status.as_u16() != 202 {
                // A reply may quote the event, routing key included.
                let mut reply = reply.trim().to_owned();
                if !key.is_empty() {
                    reply = reply.replace(key.as_str(), prodready_stdx::redact::MASK);
                }
                anyhow::bail!("PagerDuty refused the event: {status} {reply}");
            }
            let dedup = serde_json::from_str::<serde_json::Value>(&reply)
                .ok()
                .and_then(|v| v["dedup_key"].as_str().map(str::to_owned))
                .unwrap_or_default();
            let what = if *resolve { "resolved" } else { "triggered" };
            writeln!(std::io::stdout(), "{what} (dedup key {dedup})")?;
        }
    }
    Ok(Exit::Success)
}

/// A credential from a file that only its owner may read (trimmed); refused with the `chmod 600` fix
/// otherwise. Errors name the file, never its contents.
fn credential(file: &Path, what: &str) -> anyhow::Result<String> {
    if let Some(mode) = std::fs::metadata(file).ok().as_ref().and_then(prodready_stdx::fs::open_to_others) {
        return Err(UsageError(format!(
            "{}: the {what} is readable by group or others (mode {mode:o}); run `chmod 600 {}`",
            file.display(),
            file.display()
        ))
        .into());
    }
    let text = std::fs::read_to_string(file)
        .map_err(|e| UsageError(format!("{}: cannot read the {what}: {e}", file.display())))?;
    let text = text.trim().to_owned();
    if text.is_empty() {
        return Err(UsageError(format!("{}: the {what} is empty", file.display())).into());
    }
    Ok(text)
}

/// The message: the text given, or stdin for `-`; never empty.
fn message(text: &str) -> anyhow::Result<String> {
    let text = if text == "-" {
        let mut buf = String::new();
        std::io::stdin().read_to_string(&mut buf).context("cannot read the message from stdin")?;
        buf.trim_end().to_owned()
    } else {
        text.to_owned()
    };
    if text.is_empty() {
        return Err(UsageError("--text: the message is empty".to_owned()).into());
    }
    Ok(text)
}

/// POSTs `body` as JSON to `who`'s `url`; the status and the reply. The URL never reaches the error (a
/// Slack webhook URL is the credential itself).
fn post(who: &str, url: &str, body: &serde_json::Value) -> anyhow::Result<(reqwest::StatusCode, String)> {
    let runtime = super::runtime(1)?;
    let answer = runtime.block_on(async {
        let client = reqwest::Client::builder().timeout(Duration::from_secs(15)).build()?;
        let response = client.post(url).json(body).send().await?;
        let status = response.status();
        Ok::<_, reqwest::Error>((status, response.text().await.unwrap_or_default()))
    });
    answer.map_err(|e| {
        anyhow::anyhow!("{who} did not answer: {}", prodready_stdx::error::chain(&e.without_url()))
    })
}

/// This host's name, for the PagerDuty event's source.
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "prodready".to_owned())
}

/// Sends one plain-text email through the relay; STARTTLS unless `require_tls` is off.
fn send_email(
    email: &crate::sections::EmailConfig,
    password: Option<String>,
    to: &[String],
    subject: &str,
    text: &str,
) -> anyhow::Result<()> {
    use lettre::message::header::ContentType;
    use lettre::transport::smtp::authentication::Credentials;
    use lettre::{AsyncSmtpTransport, AsyncTransport as _, Message, Tokio1Executor};

    let (host, port) = email
        .smarthost
        .rsplit_once(':')
        .and_then(|(h, p)| Some((h.to_owned(), p.parse::<u16>().ok()?)))
        .ok_or_else(|| {
            UsageError(format!(
                "[alerts.email] smarthost `{}`: expected HOST:PORT such as smtp.example.com:587",
                email.smarthost
            ))
        })?;
    let address = |text: &str, what: &str| {
        text.parse::<lettre::message::Mailbox>()
            .map_err(|e| UsageError(format!("{what} `{text}` is not an email address: {e}")))
    };
    let mut builder = Message::builder().from(address(&email.from, "[alerts.email] from")?).subject(subject);
    for recipient in to {
        builder = builder.to(address(recipient, "recipient")?);
    }
    let message =
        builder.header(ContentType::TEXT_PLAIN).body(text.to_owned()).context("cannot build the message")?;
    let relay = if email.require_tls {
        AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&host).context("the SMTP relay")?
    } else {
        AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&host)
    };
    let mut relay = relay.port(port).timeout(Some(Duration::from_secs(15)));
    if let Some(user) = &email.username {
        relay = relay.credentials(Credentials::new(user.clone(), password.unwrap_or_default()));
    }
    let mailer = relay.build();
    let runtime = super::runtime(1)?;
    runtime.block_on(mailer.send(message)).map_err(|e| {
        anyhow::anyhow!(
            "the SMTP relay {} refused the message: {}",
            email.smarthost,
            prodready_stdx::error::chain(&e)
        )
    })?;
    Ok(())
}
