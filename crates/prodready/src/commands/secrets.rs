//! `prodready secrets`: the store commands, `.env` migration and `exec`.

use std::ffi::OsString;
use std::io::{IsTerminal as _, Read as _, Write as _};
use std::path::Path;

use anyhow::Context as _;
use prodready_secrets::migrate::{self, Action};
use prodready_secrets::{
    AwsOptions, AwsStore, Delete, EnvStore, ExposeSecret as _, FileStore, Key, LoadOptions, PutOutcome,
    SecretSource as _, SecretStore as _, SecretString, Store, Version,
};
use serde::Serialize;

use crate::cli::SecretsCommand;
use crate::config::{self, Backend, Config};
use crate::env::{self, Env};
use crate::error::UsageError;
use crate::exit::Exit;

pub(super) fn run(config_flag: Option<&Path>, env: &Env, cmd: &SecretsCommand) -> anyhow::Result<Exit> {
    if let SecretsCommand::Exec { .. } = cmd
        && let Some(outer) = env.get(env::SECRETS_EXEC)
    {
        return Err(UsageError(format!(
            "refusing to nest `prodready secrets exec`: this process already runs under one (pid {outer}, \
             ${} is set); its secrets are already in the environment, so run the command directly",
            env::SECRETS_EXEC
        ))
        .into());
    }
    let cfg = config::load(config_flag, env)?.config;
    let runtime = super::runtime(1)?;
    runtime.block_on(async {
        let store = open(&cfg, env).await?;
        dispatch(&cfg, env, &store, cmd).await
    })
}

pub(super) async fn open(cfg: &Config, env: &Env) -> anyhow::Result<Store> {
    let secrets = &cfg.secrets;
    Ok(match secrets.backend {
        Backend::File => {
            let path = cfg.secrets_file().to_path_buf();
            let key = match env.get(env::SECRETS_KEY) {
                Some(hex) => Key::Hex {
                    source: format!("${}", env::SECRETS_KEY),
                    hex: SecretString::from(hex.to_owned()),
                },
                None => Key::File(cfg.secrets_key_file().to_path_buf()),
            };
            Store::File(FileStore::new(path, key))
        }
        Backend::Aws => {
            // The SDK's own resolution: AWS_* variables, profiles, instance roles, AWS_ENDPOINT_URL.
            let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest()).load().await;
            let options = AwsOptions {
                endpoint: secrets.aws_endpoint.clone(),
                region: secrets.aws_region.clone(),
                max_attempts: 5,
            };
            Store::Aws(AwsStore::new(&sdk, &options))
        }
        Backend::Env => Store::Env(EnvStore::new(env.iter())),
    })
}

async fn dispatch(cfg: &Config, env: &Env, store: &Store, cmd: &SecretsCommand) -> anyhow::Result<Exit> {
    let default_prefix = || cfg.secrets.prefix.clone();
    let mut out = std::io::stdout().lock();
    match cmd {
        SecretsCommand::Get { name, version_id, stage } => {
            let version = match (version_id, stage) {
                (Some(id), _) => Version::Id(id.clone()),
                (None, Some(stage)) => Version::Stage(stage.clone()),
                (None, None) => Version::Current,
            };
            let secret = store.get(name, &version).await?;
            out.write_all(secret.value.expose_secret().as_bytes())?;
            if std::io::stdout().is_terminal() && !secret.value.expose_secret().ends_with('\n') {
                out.write_all(b"\n")?;
            }
        }
        SecretsCommand::Put { name, from_file, refused_value } => {
            if !refused_value.is_empty() {
                return Err(UsageError(format!(
                    "`secrets put {name}` takes the value from stdin or --from-file, never from the command line \
                     (argv is visible to every local user and lands in shell history); nothing was stored. \
                     Rotate that value if it is real"
                ))
                .into());
            }
            let value = match from_file {
                Some(path) => read_value_file(path)?,
                None => read_value_stdin(name)?,
            };
            if value.expose_secret().is_empty() {
                return Err(UsageError(format!("the value for `{name}` is empty; nothing was stored")).into());
            }
            let outcome = store.put(name, &value).await?;
            let said = match outcome {
                PutOutcome::Created => "created",
                PutOutcome::Updated => "stored a new version of",
                PutOutcome::Unchanged => "unchanged (the value is already current):",
                PutOutcome::Repaired => {
                    let _ = writeln!(
                        std::io::stderr(),
                        "warning: the current version of `{name}` failed authentication (altered on disk); the \
                         new value replaced it, and the damaged version is kept as AWSPREVIOUS"
                    );
                    "repaired (the damaged current version was replaced):"
                }
            };
            writeln!(out, "{said} {name}")?;
        }
        SecretsCommand::List { prefix, json } => {
            let prefix = prefix.clone().unwrap_or_else(default_prefix);
            let secrets = store.list(&prefix).await?;
            if *json {
                print_json(&mut out, &serde_json::json!({ "backend": store.backend(), "secrets": secrets }))?;
            } else if secrets.is_empty() {
                writeln!(out, "no secrets under `{prefix}` in the {} store", store.backend())?;
            } else {
                let width = secrets.iter().map(|s| s.name.len()).max().unwrap_or(4).max(4);
                writeln!(out, "{:width$}  {:>8}  CHANGED", "NAME", "VERSIONS")?;
                for s in &secrets {
                    let versions = s.versions.map_or_else(|| "-".to_owned(), |v| v.to_string());
                    writeln!(
                        out,
                        "{:width$}  {versions:>8}  {}",
                        s.name,
                        s.changed.as_deref().unwrap_or("-")
                    )?;
                }
            }
        }
        SecretsCommand::Delete { name, recovery_days, force } => {
            let how = if *force { Delete::Now } else { Delete::After { days: recovery_days.unwrap_or(30) } };
            store.delete(name, how).await?;
            match how {
                Delete::Now => writeln!(out, "deleted {name} (no recovery)")?,
                Delete::After { days } => writeln!(
                    out,
                    "scheduled {name} for deletion in {days} days; it cannot be read until then"
                )?,
            }
        }
        SecretsCommand::History { name, json } => {
            let versions = store.history(name).await?;
            if *json {
                print_json(&mut out, &serde_json::json!({ "name": name, "versions": versions }))?;
            } else {
                writeln!(out, "{:36}  {:26}  STAGES", "VERSION", "CREATED")?;
                for v in &versions {
                    let created = v.created.as_deref().unwrap_or("-");
                    let stages = if v.stages.is_empty() { "-".to_owned() } else { v.stages.join(",") };
                    writeln!(out, "{:36}  {created:26}  {stages}", v.version_id)?;
                }
            }
        }
        SecretsCommand::Restore { name } => {
            store.restore(name).await?;
            writeln!(out, "restored {name}: its deletion is cancelled")?;
        }
        SecretsCommand::Rollback { name } => {
            let now = store.rollback(name).await?;
            writeln!(
                out,
                "{name}: AWSCURRENT is now version {} (the previous current is AWSPREVIOUS)",
                now.version_id
            )?;
        }
        SecretsCommand::Migrate { from, prefix, dry_run, json } => {
            let prefix = prefix.clone().unwrap_or_else(default_prefix);
            let text =
                zeroize::Zeroizing::new(std::fs::read_to_string(from).map_err(|e| {
                    UsageError(format!("{}: cannot read the .env file: {e}", from.display()))
                })?);
            let entries = prodready_secrets::parse_dotenv(&from.display().to_string(), &text)?;
            let plan = migrate::plan(store, &entries, &prefix).await?;
            let applied = if *dry_run { None } else { Some(migrate::apply(store, &entries, &plan).await?) };
            report_migration(&mut out, &plan, applied.as_ref(), *json)?;
        }
        SecretsCommand::Exec { prefix, only, pristine, command } => {
            let prefix = prefix.clone().unwrap_or_else(default_prefix);
            let options = LoadOptions { prefix, only: only.clone() };
            let secrets = prodready_secrets::load_env(store, &options).await?;
            drop(out);
            return exec(&secrets, env.get(env::PATH), *pristine, command).await;
        }
    }
    Ok(Exit::Success)
}

#[derive(Serialize)]
struct MigrationReport<'a> {
    dry_run: bool,
    plan: &'a [migrate::PlanItem],
    added: usize,
    changed: usize,
    unchanged: usize,
    /// Store writes made (0 on a dry run and on a second run).
    writes: usize,
}

fn report_migration(
    out: &mut impl std::io::Write,
    plan: &migrate::Plan,
    applied: Option<&migrate::Applied>,
    json: bool,
) -> anyhow::Result<()> {
    let report = MigrationReport {
        dry_run: applied.is_none(),
        plan: &plan.items,
        added: plan.count(Action::Add),
        changed: plan.count(Action::Change),
        unchanged: plan.count(Action::Unchanged),
        writes: applied.map_or(0, |a| a.writes),
    };
    if json {
        return print_json(out, &report);
    }
    for item in &plan.items {
        let (mark, what) = match item.action {
            Action::Add => ('+', "add"),
            Action::Change => ('~', "change"),
            Action::Unchanged => ('=', "unchanged"),
        };
        writeln!(out, "{mark} {:<9} {} -> {}", what, item.key, item.name)?;
    }
    let verb = if report.dry_run { "would write" } else { "wrote" };
    writeln!(
        out,
        "{} added, {} changed, {} unchanged; {verb} {} secrets{}",
        report.added,
        report.changed,
        report.unchanged,
        if report.dry_run { report.added + report.changed } else { report.writes },
        if report.dry_run { " (dry run: nothing was written)" } else { "" }
    )?;
    Ok(())
}

fn print_json(out: &mut impl std::io::Write, value: &impl Serialize) -> anyhow::Result<()> {
    serde_json::to_writer_pretty(&mut *out, value)?;
    writeln!(out)?;
    Ok(())
}

fn read_value_file(path: &Path) -> anyhow::Result<SecretString> {
    let bytes = zeroize::Zeroizing::new(
        std::fs::read(path)
            .map_err(|e| UsageError(format!("{}: cannot read the value: {e}", path.display())))?,
    );
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| UsageError(format!("{}: the value is not UTF-8 text", path.display())))?;
    Ok(SecretString::from(text.to_owned()))
}

/// The value from stdin: a pipe is read to its end (one trailing newline dropped); a terminal is asked
/// with echo off.
fn read_value_stdin(name: &str) -> anyhow::Result<SecretString> {
    let stdin = std::io::stdin();
    let mut text = zeroize::Zeroizing::new(String::new());
    if stdin.is_terminal() {
        write!(std::io::stderr(), "value for {name} (input hidden): ")?;
        std::io::stderr().flush()?;
        let saved = nix::sys::termios::tcgetattr(&stdin).context("cannot read the terminal settings")?;
        let mut quiet = saved.clone();
        // No echo, and no signals: Ctrl-C arrives as a character, so the terminal is always restored.
        quiet.local_flags.remove(nix::sys::termios::LocalFlags::ECHO | nix::sys::termios::LocalFlags::ISIG);
        nix::sys::termios::tcsetattr(&stdin, nix::sys::termios::SetArg::TCSANOW, &quiet)
            .context("cannot turn off terminal echo")?;
        let read = stdin.read_line(&mut text);
        let _ = nix::sys::termios::tcsetattr(&stdin, nix::sys::termios::SetArg::TCSANOW, &saved);
        writeln!(std::io::stderr())?;
        read.context("cannot read the value from the terminal")?;
        if text.contains(['\u{3}', '\u{1c}']) {
            return Err(UsageError("cancelled; nothing was stored".to_owned()).into());
        }
    } else {
        stdin
            .lock()
            .read_to_string(&mut text)
            .map_err(|e| UsageError(format!("stdin: cannot read the value: {e}")))?;
    }
    let trimmed = text.strip_suffix('\n').map(|t| t.strip_suffix('\r').unwrap_or(t)).unwrap_or(&text);
    Ok(SecretString::from(trimmed.to_owned()))
}

/// Runs the command with the secrets in its environment, passes signals on, and returns its exit code.
async fn exec(
    secrets: &prodready_secrets::SecretEnv,
    path: Option<&str>,
    pristine: bool,
    command: &[OsString],
) -> anyhow::Result<Exit> {
    use std::os::unix::process::ExitStatusExt as _;
    use tokio::signal::unix::{SignalKind, signal};

    let (program, args) = command.split_first().context("no command given after --")?;
    check_env_values(secrets)?;
    let mut child = tokio::process::Command::new(resolve(program, path, pristine));
    child.args(args);
    if pristine {
        child.env_clear();
    }
    for (var, _, value) in secrets.iter() {
        child.env(var, value.expose_secret());
    }
    // The store's key opens every secret, not just the chosen ones: it never reaches the child. Nor
    // through us: given in our environment, it stays readable in /proc/PID/environ to every process of
    // the same user while we wait on the child, unless we are not dumpable (which also closes ptrace).
    child.env_remove(env::SECRETS_KEY);
    nix::sys::prctl::set_dumpable(false)
        .context("cannot keep this process's environment from other processes")?;
    child.env(env::SECRETS_EXEC, std::process::id().to_string());
    // On a terminal, Ctrl-C and Ctrl-\ already reach the child (same foreground process group): passing
    // them on again would make it see two, which many servers take as "force quit".
    let tty_delivers = {
        let stdin = std::io::stdin();
        stdin.is_terminal()
            && nix::unistd::tcgetpgrp(&stdin).is_ok_and(|group| group == nix::unistd::getpgrp())
    };
    // Handlers go in before the child starts, so no signal meant for it can end us first.
    let kinds = [SignalKind::interrupt(), SignalKind::terminate(), SignalKind::hangup(), SignalKind::quit()];
    let mut streams = Vec::with_capacity(kinds.len());
    for kind in kinds {
        streams.push((kind, signal(kind).context("cannot install a signal handler")?));
    }
    let mut child = match child.spawn() {
        Ok(child) => child,
        Err(e) => {
            let code = if e.kind() == std::io::ErrorKind::NotFound { 127 } else { 126 };
            writeln!(std::io::stderr(), "error: cannot run `{}`: {e}", program.to_string_lossy())?;
            return Ok(Exit::Child(code));
        }
    };
    let pid = child.id().and_then(|id| i32::try_from(id).ok()).map(nix::unistd::Pid::from_raw);
    let [(k0, s0), (k1, s1), (k2, s2), (k3, s3)] = &mut streams[..] else {
        unreachable!("four signal kinds")
    };
    let status = loop {
        let kind = tokio::select! {
            status = child.wait() => break status.context("waiting for the command failed")?,
            _ = s0.recv() => *k0,
            _ = s1.recv() => *k1,
            _ = s2.recv() => *k2,
            _ = s3.recv() => *k3,
        };
        let from_tty = kind == SignalKind::interrupt() || kind == SignalKind::quit();
        if tty_delivers && from_tty {
            continue;
        }
        if let (Some(pid), Ok(sig)) = (pid, nix::sys::signal::Signal::try_from(kind.as_raw_value())) {
            let _ = nix::sys::signal::kill(pid, sig);
        }
    };
    let code = match (status.code(), status.signal()) {
        (Some(code), _) => u8::try_from(code).unwrap_or(1),
        (None, Some(sig)) => u8::try_from(128 + sig).unwrap_or(255),
        (None, None) => 1,
    };
    Ok(Exit::Child(code))
}

/// Refuses, before anything is started, a value that cannot be put in an environment (a NUL byte),
/// naming the secret and never quoting the value.
fn check_env_values(secrets: &prodready_secrets::SecretEnv) -> Result<(), UsageError> {
    match secrets.iter().find(|(_, _, value)| value.expose_secret().contains('\0')) {
        Some((_, name, _)) => Err(UsageError(format!(
            "secret `{name}` holds a NUL byte, which no environment variable can carry; overwrite it with \
             `prodready secrets put {name}`"
        ))),
        None => Ok(()),
    }
}

/// A bare program name is looked up in this process's PATH, so `--pristine` (which drops PATH) still
/// finds it.
fn resolve(program: &OsString, path: Option<&str>, pristine: bool) -> OsString {
    let as_path = Path::new(program);
    if !pristine || as_path.components().count() > 1 {
        return program.clone();
    }
    path.and_then(|path| std::env::split_paths(path).map(|dir| dir.join(as_path)).find(|p| p.is_file()))
        .map_or_else(|| program.clone(), OsString::from)
}
