//! `migrate`: move the entries of a `.env` file into a store. The plan compares each entry with the
//! store's current value and names every entry added, changed or unchanged, never showing a value;
//! applying it writes only what was added or changed, so a second run writes nothing.

use std::collections::HashMap;

use secrecy::ExposeSecret as _;
use serde::Serialize;

use crate::dotenv::DotEnvEntry;
use crate::names::secret_name;
use crate::store::{PutOutcome, SecretStore};
use crate::{Error, Result};

/// What migrating one entry does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Add,
    Change,
    Unchanged,
}

/// One entry of the plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlanItem {
    /// The `.env` key.
    pub key: String,
    /// The secret it becomes.
    pub name: String,
    pub action: Action,
}

/// The plan, in `.env` order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Plan {
    pub items: Vec<PlanItem>,
}

impl Plan {
    pub fn count(&self, action: Action) -> usize {
        self.items.iter().filter(|i| i.action == action).count()
    }
}

/// Compares every entry with the store (reads only).
pub async fn plan<S: SecretStore>(store: &S, entries: &[DotEnvEntry], prefix: &str) -> Result<Plan> {
    let mut items = Vec::with_capacity(entries.len());
    // Two keys that become one secret (`DB_URL` and `db_url`), or one variable under `exec` (`db.url`
    // and `db-url`), would overwrite each other on every run: refuse them up front.
    let mut names: HashMap<String, &str> = HashMap::with_capacity(entries.len());
    let mut vars: HashMap<String, &str> = HashMap::with_capacity(entries.len());
    for entry in entries {
        let name = secret_name(&entry.key, prefix);
        let var = crate::env_var_name(&name, prefix);
        if let Some(first) = names.get(&name).or_else(|| vars.get(&var)) {
            return Err(Error::Invalid(format!(
                "keys {first} and {} both become the secret `{name}` (or the environment variable {var}); \
                 rename one",
                entry.key
            )));
        }
        names.insert(name.clone(), &entry.key);
        vars.insert(var, &entry.key);
        crate::check_name(&name)?;
        crate::store::check_value(&name, &entry.value)?;
        items.push(PlanItem { key: entry.key.clone(), name, action: Action::Add });
    }
    // One read of the store for the whole file, however many entries.
    let names: Vec<String> = items.iter().map(|i| i.name.clone()).collect();
    let current = store.get_current_all(&names).await?;
    for ((item, entry), current) in items.iter_mut().zip(entries).zip(current) {
        item.action = match current {
            Ok(current) if current.value.expose_secret() == entry.value.expose_secret() => Action::Unchanged,
            Ok(_) => Action::Change,
            Err(Error::NotFound(_)) => Action::Add,
            // A damaged current version: the new value repairs it.
            Err(Error::Corrupt { .. }) => Action::Change,
            Err(e) => return Err(e),
        };
    }
    Ok(Plan { items })
}

/// What applying a plan did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Applied {
    pub added: usize,
    pub changed: usize,
    pub unchanged: usize,
    /// Store writes made (creates and new versions).
    pub writes: usize,
}

/// Writes the added and changed entries of `plan` in one batch ([`SecretStore::put_all`]: one rewrite of
/// the file store). Each put compares again, so an entry changed by someone else since the plan is still
/// written once and an equal one not at all.
pub async fn apply<S: SecretStore>(store: &S, entries: &[DotEnvEntry], plan: &Plan) -> Result<Applied> {
    let mut applied = Applied::default();
    let mut batch = Vec::new();
    for (item, entry) in plan.items.iter().zip(entries) {
        if item.action == Action::Unchanged {
            applied.unchanged += 1;
        } else {
            batch.push((item.name.clone(), entry.value.clone()));
        }
    }
    for outcome in store.put_all(&batch).await? {
        match outcome {
            PutOutcome::Created => {
                applied.added += 1;
                applied.writes += 1;
            }
            PutOutcome::Updated | PutOutcome::Repaired => {
                applied.changed += 1;
                applied.writes += 1;
            }
            PutOutcome::Unchanged => applied.unchanged += 1,
        }
    }
    Ok(applied)
}
