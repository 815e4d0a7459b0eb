//! [`Store`]: one type over every backend, chosen at run time from configuration.

use secrecy::SecretString;

use crate::store::{Delete, PutOutcome, Secret, SecretMeta, SecretSource, SecretStore, Version, VersionMeta};
use crate::{EnvStore, Error, FileStore, Result};

/// Any backend. The environment backend answers writes with [`Error::Unsupported`].
#[derive(Debug)]
pub enum Store {
    File(FileStore),
    #[cfg(feature = "aws")]
    Aws(crate::AwsStore),
    Env(EnvStore),
}

fn read_only(operation: &'static str) -> Error {
    Error::Unsupported {
        backend: "env",
        operation,
        hint: "the environment backend is read-only; use the file or aws backend",
    }
}

macro_rules! each {
    ($self:ident, $s:ident => $body:expr, $env:ident => $env_body:expr) => {
        match $self {
            Store::File($s) => $body,
            #[cfg(feature = "aws")]
            Store::Aws($s) => $body,
            Store::Env($env) => $env_body,
        }
    };
}

impl SecretSource for Store {
    fn backend(&self) -> &'static str {
        each!(self, s => s.backend(), e => e.backend())
    }

    async fn get(&self, name: &str, version: &Version) -> Result<Secret> {
        each!(self, s => s.get(name, version).await, e => e.get(name, version).await)
    }

    async fn list(&self, prefix: &str) -> Result<Vec<SecretMeta>> {
        each!(self, s => s.list(prefix).await, e => e.list(prefix).await)
    }

    async fn get_current_all(&self, names: &[String]) -> Result<Vec<Result<Secret>>> {
        each!(self, s => s.get_current_all(names).await, e => e.get_current_all(names).await)
    }
}

impl SecretStore for Store {
    async fn put(&self, name: &str, value: &SecretString) -> Result<PutOutcome> {
        each!(self, s => s.put(name, value).await, _e => Err(read_only("write")))
    }

    async fn put_all(&self, entries: &[(String, SecretString)]) -> Result<Vec<PutOutcome>> {
        each!(self, s => s.put_all(entries).await, _e => Err(read_only("write")))
    }

    async fn delete(&self, name: &str, how: Delete) -> Result<()> {
        each!(self, s => s.delete(name, how).await, _e => Err(read_only("delete")))
    }

    async fn history(&self, name: &str) -> Result<Vec<VersionMeta>> {
        each!(self, s => s.history(name).await, _e => Err(read_only("keep history")))
    }

    async fn rollback(&self, name: &str) -> Result<VersionMeta> {
        each!(self, s => s.rollback(name).await, _e => Err(read_only("roll back")))
    }

    async fn restore(&self, name: &str) -> Result<()> {
        each!(self, s => s.restore(name).await, _e => Err(read_only("restore")))
    }
}
