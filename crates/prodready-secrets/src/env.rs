//! The process environment as a read-only store. The caller hands over the variables (usually
//! `std::env::vars()`); the store never reads the environment by itself.

use secrecy::SecretString;

use crate::store::{SecretMeta, SecretSource, Version, check_name};
use crate::{Error, Result};

/// Environment variables as secrets: a name is a variable name; there is one version, `env`.
pub struct EnvStore {
    vars: Vec<(String, SecretString)>,
}

impl std::fmt::Debug for EnvStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnvStore")
            .field("vars", &self.vars.iter().map(|(k, _)| k).collect::<Vec<_>>())
            .finish()
    }
}

impl EnvStore {
    /// A store over these variables.
    pub fn new<K: Into<String>, V: Into<String>>(vars: impl IntoIterator<Item = (K, V)>) -> Self {
        let mut vars: Vec<(String, SecretString)> =
            vars.into_iter().map(|(k, v)| (k.into(), SecretString::from(v.into()))).collect();
        vars.sort_by(|a, b| a.0.cmp(&b.0));
        vars.dedup_by(|a, b| a.0 == b.0);
        Self { vars }
    }
}

impl SecretSource for EnvStore {
    fn backend(&self) -> &'static str {
        "env"
    }

    async fn get(&self, name: &str, version: &Version) -> Result<crate::Secret> {
        check_name(name)?;
        if *version != Version::Current {
            return Err(Error::Unsupported {
                backend: "env",
                operation: "read versions",
                hint: "a variable has one value; use the file or aws backend for versioned secrets",
            });
        }
        let (_, value) =
            self.vars.iter().find(|(k, _)| k == name).ok_or_else(|| Error::NotFound(name.to_owned()))?;
        Ok(crate::Secret {
            name: name.to_owned(),
            version_id: "env".to_owned(),
            stages: vec![crate::CURRENT.to_owned()],
            value: value.clone(),
        })
    }

    async fn list(&self, prefix: &str) -> Result<Vec<SecretMeta>> {
        Ok(self
            .vars
            .iter()
            .filter(|(k, _)| k.starts_with(prefix) && check_name(k).is_ok())
            .map(|(k, _)| SecretMeta { name: k.clone(), created: None, changed: None, versions: Some(1) })
            .collect())
    }
}
