use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// The server tests run against: `DATABASE_URL`, else the local server on 127.0.0.1:5432.
pub fn base_database_url() -> String {
    std::env::var("DATABASE_URL")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// A fresh database with a unique name, dropped (with `FORCE`) when this value is dropped.
#[derive(Debug)]
pub struct TestDb {
    name: String,
    url: String,
    admin_url: String,
}

impl TestDb {
    /// Creates the database. Panics, naming the fix, when PostgreSQL is not reachable.
    pub async fn create() -> Self {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
        let name = format!(
            "prt_{}_{}_{:06}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed),
            nanos % 1_000_000
        );
        let admin_url = base_database_url();
        let admin = connect(&admin_url).await;
        admin.batch_execute(&format!("CREATE DATABASE \"{name}\"")).await.expect("CREATE DATABASE");
        let url = with_database(&admin_url, &name);
        Self { name, url, admin_url }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// A URL for this database (same server and role as [`base_database_url`]).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// A new connection to this database.
    pub async fn connect(&self) -> tokio_postgres::Client {
        connect(&self.url).await
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let (name, admin_url) = (self.name.clone(), self.admin_url.clone());
        // Drop may run inside a runtime, so the cleanup gets its own thread and runtime.
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            rt.block_on(async {
                let admin = connect(&admin_url).await;
                admin.batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)")).await
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) && !std::thread::panicking() {
            panic!("could not drop test database {}: {dropped:?}", self.name);
        }
    }
}

/// Connects and drives the connection on the current runtime.
pub(crate) async fn connect(url: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await.unwrap_or_else(|e| {
        let shown = url.split_once('@').map_or(url, |(_, host)| host);
        panic!(
            "PostgreSQL is not reachable at {shown}: {e}; start it with \
             `pg_ctlcluster --skip-systemctl-redirect 15 main start` or set DATABASE_URL"
        )
    });
    tokio::spawn(async move {
        let _ = conn.await;
    });
    client
}

/// `url` with its database name replaced by `db`.
fn with_database(url: &str, db: &str) -> String {
    let authority_start = url.find("://").map_or(0, |i| i + 3);
    let (head, tail) = url.split_at(authority_start);
    let query = tail.find('?').map_or("", |i| &tail[i..]);
    let authority = tail.split(['/', '?']).next().unwrap_or("");
    format!("{head}{authority}/{db}{query}")
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn replaces_the_database_name() {
        let check = |url: &str, expected: &str| assert_eq!(with_database(url, "x"), expected, "{url}");
        check("postgres://postgres@127.0.0.1:5432/postgres", "postgres://postgres@127.0.0.1:5432/x");
        check("postgres://u:p@h:5432/db?sslmode=disable", "postgres://u:p@h:5432/x?sslmode=disable");
        check("postgres://h", "postgres://h/x");
        check("postgresql://h?connect_timeout=2", "postgresql://h/x?connect_timeout=2");
    }
}
