//! Connection strings: libpq URLs and `key=value` strings, read once into a [`ConnInfo`].

use std::path::PathBuf;
use std::str::FromStr as _;

use tokio_postgres::config::Host;

use crate::{Error, Result, SslMode};

/// A parsed connection string: what tokio-postgres takes, plus the TLS settings it does not know
/// (`sslmode=verify-ca|verify-full`, `sslrootcert`).
#[derive(Debug, Clone)]
pub struct ConnInfo {
    pub config: tokio_postgres::Config,
    pub ssl_mode: SslMode,
    /// The CA certificate(s) that must have signed the server's, from `sslrootcert`.
    pub root_cert: Option<PathBuf>,
    /// The password file, from `passfile` (else [`crate::passfile::default_path`] applies).
    pub passfile: Option<PathBuf>,
}

impl ConnInfo {
    /// Parses a URL (`postgres://` or `postgresql://`) or a `key=value` string. `sslmode` defaults to
    /// `prefer`, as in libpq.
    pub fn parse(url: &str) -> Result<Self> {
        let (rest, tls) = if url.contains("://") { split_url(url) } else { split_conninfo(url) };
        let mut ssl_mode = SslMode::Prefer;
        let (mut root_cert, mut passfile) = (None, None);
        for (key, value) in tls {
            match key.as_str() {
                "sslmode" => ssl_mode = value.parse()?,
                "passfile" => passfile = Some(PathBuf::from(value)),
                _ => root_cert = Some(PathBuf::from(value)),
            }
        }
        let mut config = tokio_postgres::Config::from_str(&rest).map_err(|e| {
            Error::InvalidUrl(format!(
                "{e} (expected postgres://USER@HOST:PORT/DBNAME or host=... dbname=...)"
            ))
        })?;
        config.ssl_mode(ssl_mode.transport());
        Ok(Self { config, ssl_mode, root_cert, passfile })
    }

    /// The password file's password for this connection (the URL's `passfile`, else the program's
    /// default), when the URL carries none.
    pub fn passfile_password(&self) -> Option<String> {
        let path = self.passfile.as_deref().or(crate::passfile::default_path())?;
        let config = &self.config;
        let host = config.get_hosts().first().map_or_else(|| "localhost".to_owned(), host_text);
        let user = config.get_user()?;
        let database = config.get_dbname().unwrap_or(user);
        let port = config.get_ports().first().copied().unwrap_or(5432);
        crate::passfile::lookup(path, crate::passfile::Target { host: &host, port, database, user })
    }
}

/// Settings tokio-postgres does not take, read here.
const TLS_KEYS: [&str; 3] = ["sslmode", "sslrootcert", "passfile"];

/// The URL without `sslmode`/`sslrootcert`, and those settings (percent-decoded).
fn split_url(url: &str) -> (String, Vec<(String, String)>) {
    let Some((head, query)) = url.split_once('?') else { return (url.to_owned(), Vec::new()) };
    let mut kept = Vec::new();
    let mut tls = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let key = prodready_stdx::text::percent_decode(key);
        if TLS_KEYS.contains(&key.as_str()) {
            tls.push((key, prodready_stdx::text::percent_decode(value)));
        } else {
            kept.push(pair);
        }
    }
    let rest = if kept.is_empty() { head.to_owned() } else { format!("{head}?{}", kept.join("&")) };
    (rest, tls)
}

/// The `key=value` string without `sslmode`/`sslrootcert`, and those settings (unquoted).
fn split_conninfo(text: &str) -> (String, Vec<(String, String)>) {
    let mut kept = Vec::new();
    let mut tls = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let key: String = std::iter::from_fn(|| chars.next_if(|c| *c != '=' && !c.is_whitespace())).collect();
        if key.is_empty() {
            break;
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        chars.next_if_eq(&'=');
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let (raw, value) = if chars.next_if_eq(&'\'').is_some() {
            let (mut raw, mut value) = (String::from("'"), String::new());
            while let Some(c) = chars.next() {
                raw.push(c);
                match c {
                    '\\' => {
                        if let Some(next) = chars.next() {
                            raw.push(next);
                            value.push(next);
                        }
                    }
                    '\'' => break,
                    c => value.push(c),
                }
            }
            (raw, value)
        } else {
            let value: String = std::iter::from_fn(|| chars.next_if(|c| !c.is_whitespace())).collect();
            (value.clone(), value)
        };
        if TLS_KEYS.contains(&key.as_str()) {
            tls.push((key, value));
        } else {
            kept.push(format!("{key}={raw}"));
        }
    }
    (kept.join(" "), tls)
}

fn host_text(host: &Host) -> String {
    match host {
        Host::Tcp(h) => h.clone(),
        Host::Unix(p) => p.display().to_string(),
    }
}

/// `host:port/dbname` for messages, never the password (`<unparsable URL>` when it does not parse).
pub fn describe(url: &str) -> String {
    let Ok(info) = ConnInfo::parse(url) else { return "<unparsable URL>".to_owned() };
    let config = &info.config;
    let host = config.get_hosts().first().map_or_else(|| "localhost".to_owned(), host_text);
    let port = config.get_ports().first().copied().unwrap_or(5432);
    format!("{host}:{port}/{}", config.get_dbname().unwrap_or(""))
}

/// The database a URL connects to: its `dbname`, else the user's name, else `postgres` (as libpq).
pub fn dbname(url: &str) -> Result<String> {
    let info = ConnInfo::parse(url)?;
    Ok(info
        .config
        .get_dbname()
        .or_else(|| info.config.get_user())
        .map_or_else(|| "postgres".to_owned(), str::to_owned))
}

/// The same connection string for another database on the same server and role.
pub fn with_dbname(url: &str, db: &str) -> String {
    if !url.contains("://") {
        // libpq takes the last value of a repeated key.
        return format!("{url} dbname='{}'", db.replace('\\', "\\\\").replace('\'', "\\'"));
    }
    let authority_start = url.find("://").map_or(0, |i| i + 3);
    let (head, tail) = url.split_at(authority_start);
    let query = tail.find('?').map_or("", |i| &tail[i..]);
    let authority = tail.split(['/', '?']).next().unwrap_or("");
    format!("{head}{authority}/{db}{query}")
}

/// The connection as libpq environment variables for a client tool (`pg_dump`, `pg_restore`, `psql`):
/// host(s), port(s), user, password, database, `sslmode`, `sslrootcert`, and `application_name` when the
/// URL sets none. Nothing secret goes on the tool's command line.
pub fn libpq_env(url: &str, application_name: &str) -> Result<Vec<(&'static str, String)>> {
    let info = ConnInfo::parse(url)?;
    let config = &info.config;
    let mut env = Vec::new();
    let hosts: Vec<String> = config.get_hosts().iter().map(host_text).collect();
    if !hosts.is_empty() {
        env.push(("PGHOST", hosts.join(",")));
    }
    let ports: Vec<String> = config.get_ports().iter().map(u16::to_string).collect();
    if !ports.is_empty() {
        env.push(("PGPORT", ports.join(",")));
    }
    if let Some(user) = config.get_user() {
        env.push(("PGUSER", user.to_owned()));
    }
    if let Some(password) = config.get_password() {
        env.push(("PGPASSWORD", String::from_utf8_lossy(password).into_owned()));
    }
    env.push(("PGDATABASE", dbname(url)?));
    env.push(("PGSSLMODE", info.ssl_mode.as_str().to_owned()));
    if let Some(root) = &info.root_cert {
        env.push(("PGSSLROOTCERT", root.display().to_string()));
    }
    if let Some(passfile) = info.passfile.as_deref().or(crate::passfile::default_path()) {
        env.push(("PGPASSFILE", passfile.display().to_string()));
    }
    if let Some(timeout) = config.get_connect_timeout() {
        env.push(("PGCONNECT_TIMEOUT", timeout.as_secs().max(1).to_string()));
    }
    env.push(("PGAPPNAME", config.get_application_name().unwrap_or(application_name).to_owned()));
    Ok(env)
}

#[cfg(test)]
mod tests {
    use super::{ConnInfo, describe, libpq_env, with_dbname};
    use crate::SslMode;

    fn check(url: &str, mode: SslMode, root: Option<&str>, db: &str) {
        let info = ConnInfo::parse(url).unwrap_or_else(|e| panic!("{url}: {e}"));
        assert_eq!(info.ssl_mode, mode, "{url}");
        assert_eq!(info.root_cert.as_deref().map(|p| p.to_str().unwrap()), root, "{url}");
        assert_eq!(info.config.get_dbname(), Some(db), "{url}");
    }

    #[test]
    fn tls_settings_are_read_from_urls_and_key_value_strings() {
        check("postgres://u@h/app", SslMode::Prefer, None, "app");
        check("postgres://u@h/app?sslmode=disable", SslMode::Disable, None, "app");
        check(
            "postgres://u@h/app?sslmode=verify-full&sslrootcert=%2Ftmp%2Fca.pem&connect_timeout=3",
            SslMode::VerifyFull,
            Some("/tmp/ca.pem"),
            "app",
        );
        check(
            "postgresql://h:5433/app?sslrootcert=/ca.pem&sslmode=verify-ca",
            SslMode::VerifyCa,
            Some("/ca.pem"),
            "app",
        );
        check("host=h dbname=app sslmode=require", SslMode::Require, None, "app");
        check(
            "host=h sslrootcert='/a b/ca.pem' dbname = 'my app' sslmode=verify-full",
            SslMode::VerifyFull,
            Some("/a b/ca.pem"),
            "my app",
        );
        let err = ConnInfo::parse("postgres://h/app?sslmode=strict").unwrap_err().to_string();
        assert!(err.contains("sslmode `strict`") && err.contains("verify-full"), "{err}");
    }

    #[test]
    fn descriptions_and_other_databases() {
        assert_eq!(describe("postgres://app:hunter2@db:6432/shop"), "db:6432/shop");
        assert_eq!(describe("host=db password=hunter2 dbname=shop"), "db:5432/shop");
        assert_eq!(describe("postgres://db/shop?sslmode=bogus"), "<unparsable URL>");
        let cases = [
            ("postgres://postgres@127.0.0.1:5432/postgres", "postgres://postgres@127.0.0.1:5432/x"),
            ("postgres://u:p@h:5432/db?sslmode=disable", "postgres://u:p@h:5432/x?sslmode=disable"),
            ("postgres://h", "postgres://h/x"),
            ("postgresql://h?connect_timeout=2", "postgresql://h/x?connect_timeout=2"),
        ];
        for (url, expected) in cases {
            assert_eq!(with_dbname(url, "x"), expected, "{url}");
        }
        let info = ConnInfo::parse(&with_dbname("host=h dbname=a", "it's")).unwrap();
        assert_eq!(info.config.get_dbname(), Some("it's"));
    }

    #[test]
    fn client_tools_get_the_connection_in_their_environment() {
        let env =
            libpq_env("postgres://app:s3cr%40t@db:6432/shop?sslmode=verify-full&sslrootcert=/ca.pem", "tool")
                .unwrap();
        let get = |k: &str| env.iter().find(|(n, _)| *n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("PGHOST"), Some("db"));
        assert_eq!(get("PGPORT"), Some("6432"));
        assert_eq!(get("PGUSER"), Some("app"));
        assert_eq!(get("PGPASSWORD"), Some("s3cr@t"));
        assert_eq!(get("PGDATABASE"), Some("shop"));
        assert_eq!(get("PGSSLMODE"), Some("verify-full"));
        assert_eq!(get("PGSSLROOTCERT"), Some("/ca.pem"));
        assert_eq!(get("PGAPPNAME"), Some("tool"));
    }
}
