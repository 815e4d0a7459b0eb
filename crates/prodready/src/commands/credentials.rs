//! Alert credentials taken from the secret store by name (`[alerts.email] password_secret`,
//! `[alerts.pagerduty] routing_key_secret`): read for `notify`, and written for Alertmanager, which reads
//! credentials from files, into `OUT/secrets/` beside the generated configuration (mode 0600, with a
//! `.gitignore` that keeps the folder out of any commit). The generated configuration names the file; the
//! value is in no generated text.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use prodready_secrets::{ExposeSecret as _, SecretSource as _, SecretString, Version};

use crate::config::Config;
use crate::env::Env;
use crate::error::UsageError;

/// The folder of `out` the credentials go to.
const FOLDER: &str = "secrets";

/// The current value of secret `name` in the configured store, for `key` (named in errors).
pub(super) fn read(cfg: &Config, env: &Env, key: &str, name: &str) -> anyhow::Result<SecretString> {
    let runtime = super::runtime(1)?;
    runtime.block_on(async {
        let store = super::secrets::open(cfg, env).await?;
        let secret = store
            .get(name, &Version::Current)
            .await
            .with_context(|| format!("cannot read secret `{name}` ({key}) from the [secrets] store"))?;
        let value = secret.value.expose_secret().trim_end_matches(['\r', '\n']);
        if value.is_empty() {
            return Err(UsageError(format!("secret `{name}` ({key}) is empty")).into());
        }
        Ok(SecretString::from(value.to_owned()))
    })
}

/// Where one credential comes from.
pub(super) enum Source<'a> {
    /// A file holding it (mode 0600).
    File(&'a Path),
    /// The name of a secret in the `[secrets]` store.
    Secret(&'a str),
}

/// The source of one credential of `[alerts.SECTION]`, given as `file_key` or `secret_key` but never both
/// (that is refused, naming both keys); `None` when neither is set.
pub(super) fn source<'a>(
    section: &str,
    (file_key, file): (&str, Option<&'a Path>),
    (secret_key, secret): (&str, Option<&'a str>),
) -> anyhow::Result<Option<Source<'a>>> {
    match (file, secret) {
        (Some(_), Some(_)) => Err(UsageError(format!(
            "[alerts.{section}] sets both {file_key} and {secret_key}; keep one of them"
        ))
        .into()),
        (Some(file), None) => Ok(Some(Source::File(file))),
        (None, Some(name)) => Ok(Some(Source::Secret(name))),
        (None, None) => Ok(None),
    }
}

/// The SMTP password's source.
pub(super) fn email_password(cfg: &Config) -> anyhow::Result<Option<Source<'_>>> {
    let email = &cfg.alerts.email;
    source(
        "email",
        ("password_file", email.password_file.as_deref()),
        ("password_secret", email.password_secret.as_deref()),
    )
}

/// The PagerDuty routing key's source.
pub(super) fn routing_key(cfg: &Config) -> anyhow::Result<Option<Source<'_>>> {
    let pagerduty = &cfg.alerts.pagerduty;
    source(
        "pagerduty",
        ("routing_key_file", pagerduty.routing_key_file.as_deref()),
        ("routing_key_secret", pagerduty.routing_key_secret.as_deref()),
    )
}

/// The credentials a generator writes for Alertmanager, read from the store, and the configuration that
/// names their files. Nothing is written until [`Materialized::write`], so that a generator checks its
/// input first and leaves no credential behind when it refuses it.
pub(super) struct Materialized {
    /// The configuration with each secret-named credential turned into its file under `OUT/secrets/`.
    pub(super) cfg: Config,
    /// `OUT/secrets/` (absolute), when there is a credential to write.
    dir: Option<PathBuf>,
    files: Vec<(PathBuf, SecretString)>,
}

impl Materialized {
    /// Writes the folder (mode 0700, with a `.gitignore` of `*`) and each credential (mode 0600).
    pub(super) fn write(&self) -> anyhow::Result<()> {
        let Some(dir) = &self.dir else { return Ok(()) };
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        std::fs::set_permissions(dir, std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .with_context(|| format!("cannot restrict {} to its owner", dir.display()))?;
        let ignore = dir.join(".gitignore");
        prodready_stdx::fs::write_atomic(&ignore, b"# credentials read from the secret store\n*\n")
            .with_context(|| format!("cannot write {}", ignore.display()))?;
        for (path, value) in &self.files {
            prodready_stdx::fs::AtomicWrite::new()
                .mode(0o600)
                .write(path, value.expose_secret().as_bytes())
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
        Ok(())
    }
}

/// Reads every credential `cfg` names by a secret and plans its file under `out/secrets/`: the returned
/// configuration names those files, so the generators see files only. `out` is made absolute: the stack
/// mounts credential files into containers at their own path.
pub(super) fn materialize(cfg: &Config, env: &Env, out: &Path) -> anyhow::Result<Materialized> {
    let secret = |source: Option<Source<'_>>| match source {
        Some(Source::Secret(name)) => Some(name.to_owned()),
        _ => None,
    };
    let email_secret = secret(email_password(cfg)?).filter(|_| !cfg.alerts.email.to.is_empty());
    let pagerduty_secret = secret(routing_key(cfg)?);
    let mut cfg = cfg.clone();
    if email_secret.is_none() && pagerduty_secret.is_none() {
        return Ok(Materialized { cfg, dir: None, files: Vec::new() });
    }
    let dir =
        std::path::absolute(out).with_context(|| format!("cannot resolve {}", out.display()))?.join(FOLDER);
    let mut files = Vec::new();
    if let Some(name) = email_secret {
        let path = dir.join("smtp-password");
        files.push((path.clone(), read(&cfg, env, "[alerts.email] password_secret", &name)?));
        cfg.alerts.email.password_file = Some(path);
        cfg.alerts.email.password_secret = None;
    }
    if let Some(name) = pagerduty_secret {
        let path = dir.join("pagerduty-routing-key");
        files.push((path.clone(), read(&cfg, env, "[alerts.pagerduty] routing_key_secret", &name)?));
        cfg.alerts.pagerduty.routing_key_file = Some(path);
        cfg.alerts.pagerduty.routing_key_secret = None;
    }
    Ok(Materialized { cfg, dir: Some(dir), files })
}
