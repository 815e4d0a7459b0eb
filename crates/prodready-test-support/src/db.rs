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
        Self::create_with("").await
    }

    /// Creates the database with `CREATE DATABASE` options, e.g. `TEMPLATE template0 ENCODING
    /// 'SQL_ASCII' LOCALE 'C'`.
    pub async fn create_with(options: &str) -> Self {
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
        admin.batch_execute(&format!("CREATE DATABASE \"{name}\" {options}")).await.expect("CREATE DATABASE");
        let url = prodready_pg::with_dbname(&admin_url, &name);
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
    let (client, _driver) = prodready_pg::connect(url, "prodready-tests").await.unwrap_or_else(|e| {
        panic!(
            "PostgreSQL is not reachable: {e}; start it with \
             `pg_ctlcluster --skip-systemctl-redirect 15 main start` or set DATABASE_URL"
        )
    });
    client
}
