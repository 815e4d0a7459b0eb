//! PostgreSQL access shared by the prodready crates: one way to connect, one way to show where, one way
//! to hand a connection to a client tool.
//!
//! - [`connect`] takes a libpq URL (`postgres://user:pw@host:port/db?sslmode=...`) or a `key=value`
//!   string and honours `sslmode` as libpq does, `verify-ca` and `verify-full` included, with the CA
//!   certificate from `sslrootcert` (see [`tls`]).
//! - [`describe`] shows `host:port/dbname`, never the password.
//! - [`ident`] and [`literal`] quote for SQL text.
//! - [`libpq_env`] gives a client tool (`pg_dump`, `psql`) the connection as `PG*` environment variables,
//!   so no password reaches an argv.
//!
//! The crate reads no environment variable, and no file but those named: the root certificate and password
//! file of a URL, and the default password file the program sets ([`passfile::set_default`]).

mod error;
#[cfg(feature = "monitor")]
pub mod monitor;
pub mod passfile;
mod quote;
pub mod tls;
mod url;

use std::time::Duration;

pub use error::{Error, Result};
pub use quote::{ident, literal};
pub use tls::SslMode;
pub use url::{ConnInfo, dbname, describe, libpq_env, with_dbname};

/// How long a connection attempt may take when the URL sets no `connect_timeout`.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

/// Connects as `url` says and spawns the connection's driver on the current runtime; the driver's handle
/// is returned so the caller can wait for the connection to close. `application_name` is used when the
/// URL sets none.
pub async fn connect(
    url: &str,
    application_name: &str,
) -> Result<(tokio_postgres::Client, tokio::task::JoinHandle<()>)> {
    let info = ConnInfo::parse(url)?;
    let mut config = info.config.clone();
    if config.get_password().is_none()
        && let Some(password) = info.passfile_password()
    {
        config.password(password);
    }
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(DEFAULT_CONNECT_TIMEOUT);
    }
    if config.get_application_name().is_none() {
        config.application_name(application_name);
    }
    let fail = |e: &dyn std::error::Error| Error::Connect {
        target: describe(url),
        message: explain(prodready_stdx::error::chain(e)),
    };
    let (client, conn) = match info.ssl_mode {
        SslMode::Disable => {
            let (client, conn) = config.connect(tokio_postgres::NoTls).await.map_err(|e| fail(&e))?;
            (client, tokio::spawn(async move { drop(conn.await) }))
        }
        mode => {
            let tls = tls::connector(mode, info.root_cert.as_deref())?;
            let (client, conn) = config.connect(tls).await.map_err(|e| fail(&e))?;
            (client, tokio::spawn(async move { drop(conn.await) }))
        }
    };
    Ok((client, conn))
}

/// Certificate failures in words an operator can act on.
fn explain(mut message: String) -> String {
    if message.contains("UnknownIssuer") {
        message.push_str(" (the server's certificate is not signed by a CA in sslrootcert)");
    } else if message.contains("NotValidForName") || message.contains("not valid for name") {
        message.push_str(
            " (the server's certificate is not issued for the host connected to: connect by a name the \
             certificate carries, or use sslmode=verify-ca)",
        );
    } else if message.contains("invalid peer certificate") {
        message.push_str(" (the server's certificate failed verification against sslrootcert)");
    }
    message
}
