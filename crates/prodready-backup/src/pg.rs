//! PostgreSQL helpers: connecting, quoting, and handing credentials to client tools without argv.

use std::str::FromStr as _;
use std::time::Duration;

use crate::{Error, Result};

/// Quotes an identifier the way `quote_ident` does when needed (always, here: simpler and safe).
pub fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Quotes a string literal.
pub fn literal(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

/// Connects and spawns the connection driver; the handle is returned so the caller can wait for it.
pub async fn connect(url: &str) -> Result<(tokio_postgres::Client, tokio::task::JoinHandle<()>)> {
    let mut config = parse(url)?;
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(Duration::from_secs(15));
    }
    if config.get_application_name().is_none() {
        config.application_name("prodready-backup");
    }
    let (client, conn) = config
        .connect(tls())
        .await
        .map_err(|e| Error::Database(format!("cannot connect to {}: {}", describe(url), chain(&e)).into()))?;
    let driver = tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok((client, driver))
}

pub fn parse(url: &str) -> Result<tokio_postgres::Config> {
    tokio_postgres::Config::from_str(url)
        .map_err(|e| Error::Invalid(format!("the database URL does not parse: {e}")))
}

/// `host:port/dbname`, never the password.
pub fn describe(url: &str) -> String {
    let Ok(config) = tokio_postgres::Config::from_str(url) else { return "<unparsable URL>".to_owned() };
    let host = match config.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
        Some(tokio_postgres::config::Host::Unix(p)) => p.display().to_string(),
        None => "localhost".to_owned(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    format!("{host}:{port}/{}", config.get_dbname().unwrap_or(""))
}

/// The database name of a URL.
pub fn dbname(url: &str) -> Result<String> {
    let config = parse(url)?;
    Ok(config
        .get_dbname()
        .map(str::to_owned)
        .or_else(|| config.get_user().map(str::to_owned))
        .unwrap_or_else(|| "postgres".to_owned()))
}

/// TLS as libpq's `sslmode=prefer`/`require` do it: the session is encrypted, the certificate is not
/// checked against a CA (tokio-postgres has no `verify-ca`/`verify-full`). Handshake signatures are still
/// verified, so it is a real TLS session.
fn tls() -> tokio_postgres_rustls::MakeRustlsConnect {
    use std::sync::Arc;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .expect("aws-lc-rs supports the default TLS versions")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(Unverified(provider)))
        .with_no_client_auth();
    tokio_postgres_rustls::MakeRustlsConnect::new(config)
}

#[derive(Debug)]
struct Unverified(std::sync::Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for Unverified {
    fn verify_server_cert(
        &self,
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &[rustls::pki_types::CertificateDer<'_>],
        _: &rustls::pki_types::ServerName<'_>,
        _: &[u8],
        _: rustls::pki_types::UnixTime,
    ) -> std::result::Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> std::result::Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> std::result::Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Connection settings for a libpq tool, as environment variables: nothing secret on argv.
pub fn libpq_env(url: &str) -> Result<Vec<(&'static str, String)>> {
    let config = parse(url)?;
    let mut env = Vec::new();
    match config.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(h)) => env.push(("PGHOST", h.clone())),
        Some(tokio_postgres::config::Host::Unix(p)) => env.push(("PGHOST", p.display().to_string())),
        None => {}
    }
    if let Some(port) = config.get_ports().first() {
        env.push(("PGPORT", port.to_string()));
    }
    if let Some(user) = config.get_user() {
        env.push(("PGUSER", user.to_owned()));
    }
    if let Some(password) = config.get_password() {
        env.push(("PGPASSWORD", String::from_utf8_lossy(password).into_owned()));
    }
    env.push(("PGDATABASE", dbname(url)?));
    let sslmode = match config.get_ssl_mode() {
        tokio_postgres::config::SslMode::Disable => "disable",
        tokio_postgres::config::SslMode::Require => "require",
        _ => "prefer",
    };
    env.push(("PGSSLMODE", sslmode.to_owned()));
    env.push(("PGAPPNAME", "prodready-backup".to_owned()));
    Ok(env)
}

/// A URL for another database on the same server and role.
pub fn with_dbname(url: &str, db: &str) -> String {
    let authority_start = url.find("://").map_or(0, |i| i + 3);
    let (head, tail) = url.split_at(authority_start);
    let query = tail.find('?').map_or("", |i| &tail[i..]);
    let authority = tail.split(['/', '?']).next().unwrap_or("");
    format!("{head}{authority}/{db}{query}")
}

/// An error and its causes on one line.
pub fn chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = cause.source();
    }
    out
}

/// Session settings a data dumper should use (as pg_dump does).
pub const DUMP_SESSION: &str = "SET search_path = pg_catalog; SET DATESTYLE = ISO; SET INTERVALSTYLE = POSTGRES; \
SET extra_float_digits = 3; SET synchronize_seqscans = off; SET statement_timeout = 0; \
SET idle_in_transaction_session_timeout = 0; SET row_security = off; SET client_encoding = 'UTF8';";

/// Session settings for loading data.
pub const LOAD_SESSION: &str = "SET search_path = pg_catalog; SET DATESTYLE = ISO; SET INTERVALSTYLE = POSTGRES; \
SET extra_float_digits = 3; SET statement_timeout = 0; SET row_security = off; SET client_encoding = 'UTF8'; \
SET synchronous_commit = off;";
