//! A secret store over AWS Secrets Manager, a local encrypted file and the process environment.
//!
//! - [`SecretStore`] (and its read half, [`SecretSource`]): get, put, list, delete with a recovery window,
//!   history and rollback, with Secrets Manager's `AWSCURRENT`/`AWSPREVIOUS` stage model on every backend.
//! - Backends: [`FileStore`] (XChaCha20-Poly1305 per entry, name-bound; the embedded default),
//!   [`AwsStore`] (feature `aws`), [`EnvStore`] (read-only), and [`Store`] to choose one at run time.
//! - [`parse_dotenv`] and [`migrate`]: move a `.env` file into a store, idempotently.
//! - [`load_env`] and [`CachingClient`]: what a service uses at start-up and at run time.
//!
//! Values are [`secrecy::SecretString`]s, zeroized on drop; no error, `Debug` output or listing carries
//! one. The crate never reads environment variables or files behind the caller's back: the key, the
//! store path and the variables of [`EnvStore`] are passed in.

mod any;
#[cfg(feature = "aws")]
mod aws;
mod cache;
mod dotenv;
mod env;
mod error;
mod file;
mod load;
pub mod migrate;
mod names;
mod store;

pub use any::Store;
#[cfg(feature = "aws")]
pub use aws::{AwsOptions, AwsStore};
pub use cache::{CacheOptions, CacheStats, CachingClient};
pub use dotenv::{DotEnvEntry, parse_dotenv, render_dotenv};
pub use env::EnvStore;
pub use error::{Error, Result};
pub use file::{FileStore, Key};
pub use load::{LoadOptions, SecretEnv, load_env};
pub use names::{env_var_name, secret_name};
pub use secrecy::{ExposeSecret, SecretString};
pub use store::{
    CURRENT, Delete, MAX_VALUE_BYTES, PREVIOUS, PutOutcome, Secret, SecretMeta, SecretSource, SecretStore,
    Version, VersionMeta, check_name,
};
