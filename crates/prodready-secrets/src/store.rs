//! The store interface every backend implements, and the types it speaks.

use std::future::Future;

use secrecy::SecretString;
use serde::Serialize;

use crate::{Error, Result};

/// The stage label of the version a plain `get` returns.
pub const CURRENT: &str = "AWSCURRENT";
/// The stage label of the version `rollback` returns to.
pub const PREVIOUS: &str = "AWSPREVIOUS";
/// Secrets Manager's limit on a value, applied by every backend.
pub const MAX_VALUE_BYTES: usize = 65_536;

/// Which version of a secret to read.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Version {
    /// The version labelled `AWSCURRENT`.
    #[default]
    Current,
    /// The version with this id.
    Id(String),
    /// The version carrying this stage label (`AWSPREVIOUS`, `AWSPENDING`, ...).
    Stage(String),
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Version::Current => write!(f, "{CURRENT}"),
            Version::Id(id) => write!(f, "with id {id}"),
            Version::Stage(stage) => write!(f, "labelled {stage}"),
        }
    }
}

/// One version of a secret, value included. `Debug` shows the value as `[REDACTED]`.
#[derive(Debug, Clone)]
pub struct Secret {
    pub name: String,
    pub version_id: String,
    pub stages: Vec<String>,
    pub value: SecretString,
}

/// A secret's metadata: what `list` shows. Never a value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SecretMeta {
    pub name: String,
    /// RFC 3339, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    /// RFC 3339 time of the last change of value or stages, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub changed: Option<String>,
    /// Number of versions kept.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub versions: Option<usize>,
}

/// One version in a secret's history: what `history` shows. Never a value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VersionMeta {
    pub version_id: String,
    pub stages: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
}

/// What a `put` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PutOutcome {
    /// The secret did not exist; it was created.
    Created,
    /// A new version became `AWSCURRENT`.
    Updated,
    /// The current value already equals the new one: nothing was written.
    Unchanged,
    /// The current version could not be read (it fails authentication: altered on disk): the new value
    /// became current and the damaged version is kept as `AWSPREVIOUS`. Callers should say so.
    Repaired,
}

/// How to delete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delete {
    /// Schedule the deletion after a recovery window of 7 to 30 days (Secrets Manager's range); the secret
    /// cannot be read meanwhile.
    After { days: u32 },
    /// Delete at once, without recovery.
    Now,
}

impl Delete {
    /// The recovery window Secrets Manager uses when none is given.
    pub const DEFAULT: Delete = Delete::After { days: 30 };

    pub(crate) fn check(self) -> Result<Self> {
        match self {
            Delete::After { days } if !(7..=30).contains(&days) => Err(Error::RecoveryWindow(days)),
            other => Ok(other),
        }
    }
}

/// Reading secrets: what the caching client, `load_env` and `exec` need. Every backend implements it.
pub trait SecretSource: Send + Sync {
    /// The backend's name for messages (`file`, `aws`, `env`).
    fn backend(&self) -> &'static str;

    /// One version of a secret (the current one by default).
    fn get(&self, name: &str, version: &Version) -> impl Future<Output = Result<Secret>> + Send;

    /// Every live secret whose name starts with `prefix`, sorted by name.
    fn list(&self, prefix: &str) -> impl Future<Output = Result<Vec<SecretMeta>>> + Send;

    /// The current version of each name, in order, read in one pass where the backend allows it (one
    /// read of the file store, however many names). The outer error is the store's (unreadable, wrong
    /// key); the inner ones are each name's (`NotFound`, a damaged version).
    fn get_current_all(&self, names: &[String]) -> impl Future<Output = Result<Vec<Result<Secret>>>> + Send {
        async move {
            let mut out = Vec::with_capacity(names.len());
            for name in names {
                out.push(self.get(name, &Version::Current).await);
            }
            Ok(out)
        }
    }
}

/// A full store: every backend but the read-only environment.
pub trait SecretStore: SecretSource {
    /// Makes `value` the current version. Writes nothing when the current value already equals it, so
    /// repeating a `put` is free and idempotent.
    fn put(&self, name: &str, value: &SecretString) -> impl Future<Output = Result<PutOutcome>> + Send;

    /// `put` of every entry, in as few writes as the backend allows: the file store checks them all,
    /// then rewrites itself once (all or nothing); Secrets Manager takes one call per secret. Outcomes in
    /// order.
    fn put_all(
        &self,
        entries: &[(String, SecretString)],
    ) -> impl Future<Output = Result<Vec<PutOutcome>>> + Send {
        async move {
            let mut out = Vec::with_capacity(entries.len());
            for (name, value) in entries {
                out.push(self.put(name, value).await?);
            }
            Ok(out)
        }
    }

    /// Deletes a secret, after a recovery window or at once.
    fn delete(&self, name: &str, how: Delete) -> impl Future<Output = Result<()>> + Send;

    /// The versions of a secret, newest first.
    fn history(&self, name: &str) -> impl Future<Output = Result<Vec<VersionMeta>>> + Send;

    /// Moves `AWSCURRENT` back to the `AWSPREVIOUS` version (and `AWSPREVIOUS` to the version that was
    /// current); returns the version that is current now.
    fn rollback(&self, name: &str) -> impl Future<Output = Result<VersionMeta>> + Send;

    /// Cancels a scheduled deletion: the secret is readable and writable again, with all its versions.
    fn restore(&self, name: &str) -> impl Future<Output = Result<()>> + Send;
}

/// Checks a secret name against Secrets Manager's rules, which every backend applies: 1 to 512 characters
/// from `A-Z a-z 0-9 / _ + = . @ -`.
pub fn check_name(name: &str) -> Result<()> {
    if name.is_empty() || name.len() > 512 {
        return Err(Error::Invalid(format!("secret name `{name}`: a name is 1 to 512 characters long")));
    }
    if let Some(bad) = name.chars().find(|c| !(c.is_ascii_alphanumeric() || "/_+=.@-".contains(*c))) {
        return Err(Error::Invalid(format!(
            "secret name `{name}`: `{bad}` is not allowed; use letters, digits and / _ + = . @ -"
        )));
    }
    Ok(())
}

pub(crate) fn check_value(name: &str, value: &SecretString) -> Result<()> {
    use secrecy::ExposeSecret as _;
    let size = value.expose_secret().len();
    if size > MAX_VALUE_BYTES {
        return Err(Error::TooLarge { name: name.to_owned(), size });
    }
    // An environment variable cannot hold a NUL byte: such a value could never be handed to a program.
    if value.expose_secret().contains('\0') {
        return Err(Error::Invalid(format!(
            "the value of `{name}` holds a NUL byte, which no environment variable can carry; remove it"
        )));
    }
    Ok(())
}
