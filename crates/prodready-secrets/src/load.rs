//! [`load_env`]: read a service's secrets once at start-up, under the same names `exec` would give them.

use std::collections::BTreeMap;

use secrecy::SecretString;

use crate::names::env_var_name;
use crate::store::{SecretSource, Version};
use crate::{Error, Result};

/// Which secrets to load.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// Only secrets whose names start with this; it is stripped from the variable names.
    pub prefix: String,
    /// Only these (variable names such as `DATABASE_URL`, or secret names without the prefix such as
    /// `database-url`); empty means all. Naming one that does not exist is an error.
    pub only: Vec<String>,
}

/// Secrets keyed by variable name. `Debug` shows names only.
#[derive(Default)]
pub struct SecretEnv {
    vars: BTreeMap<String, (String, SecretString)>,
}

impl std::fmt::Debug for SecretEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.vars.iter().map(|(var, (name, _))| (var, name))).finish()
    }
}

impl SecretEnv {
    /// The value of a variable.
    pub fn get(&self, var: &str) -> Option<&SecretString> {
        self.vars.get(var).map(|(_, v)| v)
    }

    /// The value of a variable that must be there, or an error naming it.
    pub fn require(&self, var: &str) -> Result<&SecretString> {
        self.get(var).ok_or_else(|| Error::MissingVariable(var.to_owned()))
    }

    /// `(variable, secret name, value)`, sorted by variable.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str, &SecretString)> {
        self.vars.iter().map(|(var, (name, value))| (var.as_str(), name.as_str(), value))
    }

    pub fn len(&self) -> usize {
        self.vars.len()
    }

    pub fn is_empty(&self) -> bool {
        self.vars.is_empty()
    }
}

/// Reads every secret under `options.prefix` (or only the named ones) and maps each to its variable name
/// (see [`env_var_name`]). Two secrets that map to one variable are refused.
pub async fn load_env<S: SecretSource>(store: &S, options: &LoadOptions) -> Result<SecretEnv> {
    let listed = store.list(&options.prefix).await?;
    let mut chosen: BTreeMap<String, String> = BTreeMap::new();
    for meta in &listed {
        let var = env_var_name(&meta.name, &options.prefix);
        let short = meta.name.strip_prefix(&options.prefix).unwrap_or(&meta.name);
        if !options.only.is_empty() && !options.only.iter().any(|o| *o == var || o == short) {
            continue;
        }
        if let Some(first) = chosen.get(&var) {
            let (first, second) = (first.clone(), meta.name.clone());
            return Err(Error::Collision { var, first, second });
        }
        chosen.insert(var, meta.name.clone());
    }
    for wanted in &options.only {
        let found = chosen
            .iter()
            .any(|(var, name)| var == wanted || name.strip_prefix(&options.prefix).unwrap_or(name) == wanted);
        if !found {
            return Err(Error::UnknownVariable { wanted: wanted.clone(), prefix: options.prefix.clone() });
        }
    }
    let mut env = SecretEnv::default();
    for (var, name) in chosen {
        let secret = store.get(&name, &Version::Current).await?;
        env.vars.insert(var, (name, secret.value));
    }
    Ok(env)
}
