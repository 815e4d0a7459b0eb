use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Which store holds the secrets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Backend {
    /// A local encrypted file (the embedded default: works with no configuration).
    #[default]
    File,
    /// AWS Secrets Manager.
    Aws,
    /// The process environment, read-only.
    Env,
}

/// The `[secrets]` section of `prodready.toml`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SecretsConfig {
    pub backend: Backend,
    /// The encrypted store file; `None` means `<data_dir>/secrets.enc`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<PathBuf>,
    /// The key file for the encrypted store (must be mode 0600; created on first write); `None` means
    /// `<data_dir>/secrets.key`. The `prodready` binary takes `$PRODREADY_SECRETS_KEY` instead when set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_file: Option<PathBuf>,
    /// Default `--prefix` of `secrets list`, `secrets migrate` and `secrets exec`, e.g. `prod/app/`.
    pub prefix: String,
    /// AWS region for the `aws` backend; `None` means the SDK's own resolution.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aws_region: Option<String>,
    /// A custom Secrets Manager endpoint (moto, LocalStack).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aws_endpoint: Option<String>,
}
