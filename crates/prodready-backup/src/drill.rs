//! Recovery drills: start the server on a prepared data directory, wait until recovery reached its target
//! and the server was promoted, check it (the base backup's files against its `backup_manifest`, row counts
//! of chosen tables, amcheck on every btree index, smoke SQL), stop it, remove the data directory, and
//! record the result beside the base backup (`verify-<time>.json`, mode `pitr`).
//!
//! The server listens on no TCP address: only on a Unix socket in a private directory (mode 0700), with
//! trust authentication for local connections. Its archiving is off (`archive_mode = off` on the command
//! line), so a drill never pushes its new timeline into the archive it recovered from. When run as root,
//! the server runs as the owner of the data directory (see [`crate::pitr::prepare`]).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::base::BaseManifest;
use crate::manifest::Verification;
use crate::pitr::{Prepared, Target};
use crate::store::Store;
use crate::{Error, Result};

/// The `mode` of a drill's verification record.
pub const MODE: &str = "pitr";

/// A table whose rows a drill counts: `DATABASE:TABLE` or `DATABASE:TABLE=ROWS` (exactly that many).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableCheck {
    pub database: String,
    /// As written in SQL (`public.orders`).
    pub table: String,
    pub rows: Option<u64>,
}

impl std::str::FromStr for TableCheck {
    type Err = String;

    fn from_str(text: &str) -> std::result::Result<Self, String> {
        let bad =
            || format!("`{text}` is not DATABASE:TABLE or DATABASE:TABLE=ROWS (e.g. app:public.orders=1200)");
        let (database, rest) = text.split_once(':').ok_or_else(bad)?;
        let (table, rows) = match rest.rsplit_once('=') {
            Some((table, rows)) => (table, Some(rows.trim().parse::<u64>().map_err(|_| bad())?)),
            None => (rest, None),
        };
        if database.trim().is_empty() || table.trim().is_empty() {
            return Err(bad());
        }
        Ok(Self { database: database.trim().to_owned(), table: table.trim().to_owned(), rows })
    }
}

/// How to run a drill.
#[derive(Debug, Clone)]
pub struct DrillOptions {
    /// The server's binaries (`postgres`, `pg_verifybackup`) of the backup's major version.
    pub bin_dir: PathBuf,
    /// The role the checks connect as (trust authentication on the private socket).
    pub superuser: String,
    pub tables: Vec<TableCheck>,
    /// Statements that must succeed, run in `smoke_database`.
    pub smoke_sql: Vec<String>,
    pub smoke_database: String,
    /// How long recovery may take before the drill fails.
    pub timeout: Duration,
    /// For a drill to `latest`: the newest WAL segment the archive holds on the timeline recovery
    /// follows (its file name). PostgreSQL ends recovery to `latest` at the first segment it cannot
    /// fetch and promotes as if all were well, so a recovery that ends in an earlier segment fails the
    /// drill: a segment in between is missing or unreadable. `None`: not compared.
    pub latest_segment: Option<String>,
}

impl DrillOptions {
    /// Debian's layout: `/usr/lib/postgresql/MAJOR/bin`.
    pub fn for_major(major: i32) -> Self {
        Self {
            bin_dir: PathBuf::from(format!("/usr/lib/postgresql/{major}/bin")),
            superuser: "postgres".to_owned(),
            tables: Vec::new(),
            smoke_sql: Vec::new(),
            smoke_database: "postgres".to_owned(),
            timeout: Duration::from_secs(3600),
            latest_segment: None,
        }
    }
}

/// Runs the drill on `prepared` (a directory [`crate::pitr::prepare`] wrote from `base`), removes the data
/// directory's contents whatever happened, and records the result beside the base backup.
pub async fn drill(
    store: &Store,
    base: &BaseManifest,
    prepared: &Prepared,
    target: &Target,
    options: &DrillOptions,
) -> Result<Verification> {
    let started = Instant::now();
    let mut problems = Vec::new();
    let mut checked = vec![format!("recovery of base backup {} to {target}", base.id)];
    let latest = match target {
        Target::Latest => options.latest_segment.as_deref(),
        _ => None,
    };
    let outcome = run(prepared, options, latest, &mut problems, &mut checked).await;
    crate::pitr::empty(&prepared.into);
    checked.push(format!("data directory {} emptied", prepared.into.display()));
    if let Err(e) = outcome {
        problems.push(e.to_string());
    }
    record(store, base, started, problems, checked)
}

/// Records a drill that could not even prepare its data directory (a corrupt archive, a missing base).
pub fn record_failure(
    store: &Store,
    base: &BaseManifest,
    target: &Target,
    problem: String,
) -> Result<Verification> {
    record(
        store,
        base,
        Instant::now(),
        vec![problem],
        vec![format!("recovery of base backup {} to {target}", base.id)],
    )
}

fn record(
    store: &Store,
    base: &BaseManifest,
    started: Instant,
    problems: Vec<String>,
    checked: Vec<String>,
) -> Result<Verification> {
    crate::verify::finish(store, &base.id, MODE, started, problems, checked)
}

async fn run(
    prepared: &Prepared,
    options: &DrillOptions,
    latest: Option<&str>,
    problems: &mut Vec<String>,
    checked: &mut Vec<String>,
) -> Result<()> {
    let dir = &prepared.into;
    // The files against the backup's own manifest (checksums of every file), before the server touches them.
    let mut verify = tokio::process::Command::new(options.bin_dir.join("pg_verifybackup"));
    verify.arg("-n").arg("-q"); // --no-parse-wal (the WAL is in the archive), --quiet
    for added in &prepared.added {
        verify.arg(format!("--ignore={added}"));
    }
    let out =
        verify.arg(dir).stdin(Stdio::null()).output().await.map_err(|e| tool_error("pg_verifybackup", &e))?;
    if out.status.success() {
        checked.push("pg_verifybackup: every file matches the base backup's backup_manifest".to_owned());
    } else {
        let text = String::from_utf8_lossy(&out.stderr);
        let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).take(5).collect();
        problems.push(format!("pg_verifybackup: {}", lines.join("; ")));
        return Ok(());
    }

    let private = tempfile::Builder::new()
        .prefix("prodready-drill-")
        .tempdir()
        .map_err(|e| Error::io("temporary directory", e))?;
    let sockets = private.path();
    let hba = sockets.join("pg_hba.conf");
    std::fs::write(&hba, "local all all trust\n").map_err(|e| Error::io(&hba, e))?;
    let log_path = sockets.join("postgres.log");
    let log = std::fs::File::create(&log_path).map_err(|e| Error::io(&log_path, e))?;
    if let Some((uid, gid)) = prepared.owner {
        for path in [sockets, hba.as_path(), log_path.as_path()] {
            std::os::unix::fs::chown(path, Some(uid), Some(gid)).map_err(|e| Error::io(path, e))?;
        }
    }
    let port = free_port();
    let mut postgres = tokio::process::Command::new(options.bin_dir.join("postgres"));
    postgres.arg("-D").arg(dir).arg("-p").arg(port.to_string());
    let settings = [
        ("listen_addresses", String::new()),
        ("unix_socket_directories", sockets.display().to_string()),
        ("hba_file", hba.display().to_string()),
        ("archive_mode", "off".to_owned()),
        ("hot_standby", "off".to_owned()),
        ("recovery_target_action", "promote".to_owned()),
        ("ssl", "off".to_owned()),
        ("logging_collector", "off".to_owned()),
        ("log_destination", "stderr".to_owned()),
        ("shared_buffers", "128MB".to_owned()),
    ];
    for (name, value) in &settings {
        postgres.arg("-c").arg(format!("{name}={value}"));
    }
    postgres.stdin(Stdio::null()).stdout(Stdio::null()).stderr(log).kill_on_drop(true);
    if let Some((uid, gid)) = prepared.owner {
        postgres.uid(uid).gid(gid);
    }
    let mut child = postgres.spawn().map_err(|e| tool_error("postgres", &e))?;
    let conninfo = |db: &str| {
        format!(
            "host={} port={port} user={} dbname='{}' sslmode=disable",
            sockets.display(),
            options.superuser,
            db.replace('\'', "\\'")
        )
    };
    let outcome = async {
        let deadline = Instant::now() + options.timeout;
        loop {
            if let Some(status) = child.try_wait().map_err(|e| tool_error("postgres", &e))? {
                problems.push(format!(
                    "the server stopped during recovery ({status}): {}",
                    log_excerpt(&log_path)
                ));
                return Ok(());
            }
            if Instant::now() > deadline {
                problems.push(format!(
                    "recovery did not finish within {}: {}",
                    humantime::format_duration(options.timeout),
                    log_excerpt(&log_path)
                ));
                return Ok(());
            }
            if let Ok((client, driver)) = crate::pg::connect(&conninfo("postgres")).await {
                let recovering = client
                    .query_one("SELECT pg_catalog.pg_is_in_recovery()", &[])
                    .await
                    .map(|r| r.get::<_, bool>(0));
                drop(client);
                let _ = driver.await;
                if recovering.is_ok_and(|r| !r) {
                    break;
                }
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        let log = std::fs::read_to_string(&log_path).unwrap_or_default();
        for line in log.lines().filter(|l| RECOVERY_FACTS.iter().any(|fact| l.contains(fact))) {
            checked.push(format!("server: {}", line.split_once(": ").map_or(line, |(_, rest)| rest).trim()));
        }
        checked.push("recovery finished and the server was promoted".to_owned());
        if let Some(newest) = latest {
            reached_the_end(&conninfo, newest, problems, checked).await?;
        }
        check(&conninfo, options, problems, checked).await
    }
    .await;
    stop(&mut child).await;
    outcome
}

/// Whether recovery to `latest` replayed the archive up to its newest segment: the promoted server's
/// current WAL file holds the end of recovery (on the new timeline, with the same log and segment
/// numbers), which must not come before `newest`.
async fn reached_the_end(
    conninfo: &dyn Fn(&str) -> String,
    newest: &str,
    problems: &mut Vec<String>,
    checked: &mut Vec<String>,
) -> Result<()> {
    let (client, driver) = crate::pg::connect(&conninfo("postgres")).await?;
    let reached: String = client
        .query_one("SELECT pg_catalog.pg_walfile_name(pg_catalog.pg_current_wal_lsn())", &[])
        .await
        .map_err(Error::db)?
        .get(0);
    drop(client);
    let _ = driver.await;
    // Log and segment numbers: the 16 hex digits after the timeline, fixed width, uppercase.
    let position = |name: &str| name.get(8..24).unwrap_or_default().to_ascii_uppercase();
    if position(&reached) < position(newest) {
        problems.push(format!(
            "recovery to latest ended in WAL segment {reached}, before {newest}, the newest the archive \
             holds on that timeline: a segment in between is missing or unreadable"
        ));
    } else {
        checked.push(format!("recovery replayed the archive through its newest segment {newest}"));
    }
    Ok(())
}

/// The server's log lines that say where recovery went.
const RECOVERY_FACTS: [&str; 6] = [
    "starting point-in-time recovery",
    "consistent recovery state reached",
    "recovery stopping",
    "last completed transaction",
    "selected new timeline ID",
    "archive recovery complete",
];

async fn check(
    conninfo: &dyn Fn(&str) -> String,
    options: &DrillOptions,
    problems: &mut Vec<String>,
    checked: &mut Vec<String>,
) -> Result<()> {
    let (client, driver) = crate::pg::connect(&conninfo("postgres")).await?;
    let databases: Vec<String> = client
        .query(
            "SELECT datname FROM pg_catalog.pg_database WHERE datallowconn AND NOT datistemplate ORDER BY 1",
            &[],
        )
        .await
        .map_err(Error::db)?
        .iter()
        .map(|r| r.get(0))
        .collect();
    drop(client);
    let _ = driver.await;
    for wanted in options
        .tables
        .iter()
        .map(|t| &t.database)
        .chain(std::iter::once(&options.smoke_database).filter(|_| !options.smoke_sql.is_empty()))
    {
        if !databases.contains(wanted) {
            problems.push(format!("database {wanted} does not exist in the recovered cluster"));
        }
    }
    for database in &databases {
        let (client, driver) = crate::pg::connect(&conninfo(database)).await?;
        for table in options.tables.iter().filter(|t| &t.database == database) {
            match client.query_one(&format!("SELECT count(*) FROM {}", table.table), &[]).await {
                Err(e) => problems.push(format!(
                    "{database}: {}: {}",
                    table.table,
                    prodready_stdx::error::chain(&e)
                )),
                Ok(row) => {
                    let count = u64::try_from(row.get::<_, i64>(0)).unwrap_or(0);
                    match table.rows {
                        Some(expected) if expected != count => problems.push(format!(
                            "{database}: {}: {count} rows recovered, {expected} expected",
                            table.table
                        )),
                        _ => checked.push(format!("{database}: {}: {count} rows", table.table)),
                    }
                }
            }
        }
        crate::verify::amcheck(&client, &format!("{database}: "), problems, checked).await?;
        if *database == options.smoke_database {
            for sql in &options.smoke_sql {
                match client.batch_execute(sql).await {
                    Ok(()) => checked.push(format!("{database}: smoke SQL: {sql}")),
                    Err(e) => problems
                        .push(format!("{database}: smoke SQL `{sql}`: {}", prodready_stdx::error::chain(&e))),
                }
            }
        }
        drop(client);
        let _ = driver.await;
    }
    Ok(())
}

/// A fast shutdown (SIGINT), then SIGKILL after a minute.
async fn stop(child: &mut tokio::process::Child) {
    if let Some(pid) = child.id() {
        let _ = tokio::process::Command::new("kill").args(["-INT", &pid.to_string()]).status().await;
    }
    if tokio::time::timeout(Duration::from_secs(60), child.wait()).await.is_err() {
        let _ = child.kill().await;
    }
}

fn tool_error(tool: &'static str, e: &std::io::Error) -> Error {
    match e.kind() {
        std::io::ErrorKind::NotFound => Error::ToolMissing {
            tool,
            hint: "install the PostgreSQL server of the backup's major version (Debian: `apt-get install \
                   postgresql-15`) or give the directory of its binaries",
        },
        _ => Error::Tool { tool, message: e.to_string() },
    }
}

/// The log's errors (or its last lines), for a message.
fn log_excerpt(path: &Path) -> String {
    let log = std::fs::read_to_string(path).unwrap_or_default();
    // The drill's own connection attempts while the server starts are refused with FATAL too: not news.
    const NOISE: [&str; 3] = [
        "the database system is starting up",
        "not yet accepting connections",
        "the database system is shutting down",
    ];
    let errors: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("FATAL") || l.contains("PANIC") || l.contains("ERROR"))
        .filter(|l| !NOISE.iter().any(|n| l.contains(n)))
        .collect();
    let lines: Vec<&str> = if errors.is_empty() {
        log.lines().rev().take(3).collect::<Vec<_>>().into_iter().rev().collect()
    } else {
        errors.iter().rev().take(3).rev().copied().collect()
    };
    let text = lines.join("; ");
    if text.is_empty() { "the server's log is empty".to_owned() } else { text }
}

/// A port no one listens on (the socket file's name; the server listens on no TCP address).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map_or(54_329, |a| a.port())
}

#[cfg(test)]
mod tests {
    use super::TableCheck;

    #[test]
    fn table_checks_parse() {
        let t: TableCheck = "app:public.orders=1200".parse().unwrap();
        assert_eq!((t.database.as_str(), t.table.as_str(), t.rows), ("app", "public.orders", Some(1200)));
        let t: TableCheck = "app:orders".parse().unwrap();
        assert_eq!(t.rows, None);
        for bad in ["orders", ":orders", "app:", "app:orders=many"] {
            assert!(bad.parse::<TableCheck>().is_err(), "{bad}");
        }
    }
}
