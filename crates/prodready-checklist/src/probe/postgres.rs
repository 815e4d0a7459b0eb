use std::str::FromStr as _;
use std::time::{Duration, Instant};

use super::{Finding, chain, millis};

/// Connects, reads the server version and whether it is a primary. The URL (and its password) never
/// appears in the finding: only host and port do.
pub async fn probe(url: &str) -> Finding {
    let mut config = match tokio_postgres::Config::from_str(url) {
        Ok(c) => c,
        Err(e) => return Finding::error(format!("the database URL does not parse: {e}")),
    };
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(Duration::from_secs(10));
    }
    let place = where_(&config);
    let started = Instant::now();
    let (client, connection) = match config.connect(tokio_postgres::NoTls).await {
        Ok(pair) => pair,
        Err(e) => return Finding::fail(format!("{place}: {}", chain(&e))),
    };
    let driver = tokio::spawn(connection);
    let row = client.query_one("SELECT current_setting('server_version'), pg_is_in_recovery()", &[]).await;
    let finding = match row {
        Ok(row) => {
            let (version, standby): (String, bool) = (row.get(0), row.get(1));
            let role = if standby { "standby (in recovery)" } else { "primary" };
            Finding::pass(format!(
                "PostgreSQL {version} at {place}, {role}, answered in {}",
                millis(started.elapsed())
            ))
        }
        Err(e) => Finding::fail(format!("{place}: {}", chain(&e))),
    };
    drop(client);
    let _ = driver.await;
    finding
}

fn where_(config: &tokio_postgres::Config) -> String {
    let host = match config.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
        Some(tokio_postgres::config::Host::Unix(p)) => p.display().to_string(),
        None => "localhost".to_owned(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let db = config.get_dbname().map(|d| format!("/{d}")).unwrap_or_default();
    format!("{host}:{port}{db}")
}
