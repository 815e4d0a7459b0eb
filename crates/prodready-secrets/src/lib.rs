//! A secret store over AWS Secrets Manager, a local encrypted file and the process environment.
//!
//! Today this crate holds the typed `[secrets]` configuration section; the store, the `.env` migration and
//! `exec` land with their issue. The crate never reads files or environment variables by itself.

mod config;

pub use config::{Backend, SecretsConfig};
