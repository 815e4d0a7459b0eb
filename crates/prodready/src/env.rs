//! Every environment variable prodready reads, in one place.

/// Path of the configuration file, when `--config` is not given.
pub const CONFIG: &str = "PRODREADY_CONFIG";
/// Prefix of configuration overrides: `PRODREADY_<SECTION>__<KEY>` (nested keys join with `__`).
pub const OVERRIDE_PREFIX: &str = "PRODREADY_";
/// Separator between the section and key parts of an override.
pub const OVERRIDE_SEPARATOR: &str = "__";
/// Database URL used when `[database] url` is not set.
pub const DATABASE_URL: &str = "DATABASE_URL";
/// Base of the default data directory (`$XDG_DATA_HOME/prodready`).
pub const XDG_DATA_HOME: &str = "XDG_DATA_HOME";
/// Home directory (`$HOME/.local/share/prodready` when `XDG_DATA_HOME` is unset).
pub const HOME: &str = "HOME";
/// libpq's password file, as for psql and pg_dump; default `$HOME/.pgpass`.
pub const PGPASSFILE: &str = "PGPASSFILE";

/// The S3-specific endpoint the AWS SDK honours (path-style addressing follows a custom endpoint).
pub const AWS_ENDPOINT_URL_S3: &str = "AWS_ENDPOINT_URL_S3";

/// The key of the local secrets store (64 hex characters), used instead of `[secrets] key_file`.
pub const SECRETS_KEY: &str = "PRODREADY_SECRETS_KEY";
/// The executable search path; `secrets exec --pristine` resolves the program through it.
pub const PATH: &str = "PATH";
/// Set by `secrets exec` in its child, so a nested `secrets exec` is refused.
pub const SECRETS_EXEC: &str = "PRODREADY_SECRETS_EXEC";

/// Set (to anything) to turn off terminal escape codes: no animated progress bar (no-color.org).
pub const NO_COLOR: &str = "NO_COLOR";
/// `TERM=dumb`: a terminal that cannot move the cursor, so no animated progress bar either.
pub const TERM: &str = "TERM";

/// A snapshot of the environment, so configuration loading is a pure function of its inputs.
#[derive(Debug, Clone, Default)]
pub struct Env {
    vars: Vec<(String, String)>,
}

impl Env {
    /// The current process environment (variables that are not valid UTF-8 are ignored).
    #[allow(clippy::disallowed_methods)] // The one place the binary reads the process environment.
    pub fn capture() -> Self {
        let mut vars: Vec<(String, String)> = std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .collect();
        vars.sort();
        Self { vars }
    }

    /// An environment holding exactly `vars`.
    pub fn from_pairs<K: Into<String>, V: Into<String>>(vars: impl IntoIterator<Item = (K, V)>) -> Self {
        let mut vars: Vec<(String, String)> = vars.into_iter().map(|(k, v)| (k.into(), v.into())).collect();
        vars.sort();
        Self { vars }
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str()).filter(|v| !v.is_empty())
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.vars.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}
