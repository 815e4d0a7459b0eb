use std::time::Instant;

use super::{Finding, millis};

/// Connects (TLS as the URL's `sslmode` says, `prefer` by default, as libpq), reads the server version and
/// whether it is a primary. The URL's password never appears in the finding: only host, port and database.
pub(super) async fn probe(url: &str) -> Finding {
    let place = prodready_pg::describe(url);
    let started = Instant::now();
    let (client, driver) = match prodready_pg::connect(url, "prodready-checklist").await {
        Ok(pair) => pair,
        Err(e @ prodready_pg::Error::Connect { .. }) => return Finding::fail(e.to_string()),
        Err(e) => return Finding::error(e.to_string()),
    };
    let row = client
        .query_one("SELECT current_setting('server_version'), pg_is_in_recovery(), coalesce((SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()), false)", &[])
        .await;
    let finding = match row {
        Ok(row) => {
            let (version, standby, tls): (String, bool, bool) = (row.get(0), row.get(1), row.get(2));
            let role = if standby { "standby (in recovery)" } else { "primary" };
            let link = if tls { "TLS" } else { "no TLS" };
            Finding::pass(format!(
                "PostgreSQL {version} at {place}, {role}, {link}, answered in {}",
                millis(started.elapsed())
            ))
        }
        Err(e) => Finding::fail(format!("{place}: {}", prodready_stdx::error::chain(&e))),
    };
    drop(client);
    let _ = driver.await;
    finding
}
