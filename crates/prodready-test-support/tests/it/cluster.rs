//! Throwaway clusters with pg_stat_statements and streaming replicas, against real servers.

use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use prodready_test_support::Cluster;

/// Polls `probe` every 100 ms until it returns `Some`, for at most `limit`; then panics naming `what` and
/// the last value seen.
fn wait_for<T>(what: &str, limit: Duration, mut probe: impl FnMut() -> (Option<T>, String)) -> T {
    let started = Instant::now();
    loop {
        let (done, seen) = probe();
        if let Some(value) = done {
            return value;
        }
        assert!(started.elapsed() < limit, "{what}: not within {limit:?} (last seen: {seen})");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn accepts(port: u16) -> bool {
    TcpStream::connect_timeout(&SocketAddr::from(([127, 0, 0, 1], port)), Duration::from_secs(1)).is_ok()
}

#[test]
fn a_cluster_with_pg_stat_statements_records_a_statement() {
    let cluster = Cluster::builder().pg_stat_statements().start();
    assert_eq!(cluster.psql("SHOW shared_preload_libraries"), "pg_stat_statements");
    assert_eq!(cluster.psql("SHOW pg_stat_statements.track"), "all");
    assert_eq!(
        cluster.psql("SELECT extname FROM pg_extension WHERE extname = 'pg_stat_statements'"),
        "pg_stat_statements"
    );

    for _ in 0..3 {
        assert_eq!(cluster.psql("SELECT 42 AS prodready_probe"), "42");
    }
    let recorded = cluster.psql(
        "SELECT query || '|' || calls FROM pg_stat_statements \
         WHERE query LIKE '%prodready_probe%' AND query NOT LIKE '%pg_stat_statements%'",
    );
    // Normalised: the literal is a parameter.
    assert_eq!(
        recorded,
        "SELECT $1 AS prodready_probe|3",
        "{}",
        cluster.psql("SELECT query FROM pg_stat_statements")
    );

    let port = cluster.port();
    drop(cluster);
    assert!(!accepts(port), "nothing listens on {port} after drop");
}

#[test]
fn psql_fails_with_the_servers_message() {
    let cluster = Cluster::builder().start();
    assert_eq!(cluster.psql("SELECT 1, 'a'; SELECT 2, 'b'"), "1|a\n2|b");
    let failed = std::panic::catch_unwind(|| cluster.psql("SELECT * FROM no_such_table")).unwrap_err();
    let message = failed.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(message.contains("relation \"no_such_table\" does not exist"), "{message}");
}

#[test]
fn a_replica_streams_and_lags_while_its_replay_is_paused() {
    let primary = Cluster::builder().start();
    let replica = primary.replica();
    assert_ne!(replica.port(), primary.port());
    assert_eq!(replica.psql("SELECT pg_is_in_recovery()"), "t");
    assert_eq!(primary.psql("SELECT pg_is_in_recovery()"), "f");

    // A write on the primary is readable on the replica.
    primary.psql("CREATE TABLE t (id int); INSERT INTO t VALUES (1)");
    let lsn = primary.psql("SELECT pg_current_wal_lsn()");
    wait_for("the replica replays the primary's write", Duration::from_secs(10), || {
        let replayed = replica.psql(&format!("SELECT pg_last_wal_replay_lsn() >= '{lsn}'"));
        (Some(()).filter(|()| replayed == "t"), format!("replayed up to {lsn}: {replayed}"))
    });
    assert_eq!(replica.psql("SELECT id FROM t"), "1");

    // Paused replay: the primary's pg_stat_replication shows lag, which clears on resume.
    let lag_sql = format!(
        "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn) FROM pg_stat_replication \
         WHERE application_name = 'replica_{}'",
        replica.port()
    );
    let lag = || primary.psql(&lag_sql).parse::<f64>().unwrap_or(f64::NAN);
    replica.psql("SELECT pg_wal_replay_pause()");
    wait_for("replay pauses", Duration::from_secs(10), || {
        let state = replica.psql("SELECT pg_get_wal_replay_pause_state()");
        (Some(()).filter(|()| state == "paused"), state)
    });
    primary.psql("INSERT INTO t SELECT generate_series(2, 1000)");
    let paused_lag = wait_for("lag while replay is paused", Duration::from_secs(10), || {
        let lag = lag();
        (Some(lag).filter(|lag| *lag > 0.0), lag.to_string())
    });
    assert_eq!(replica.psql("SELECT count(*) FROM t"), "1", "a paused replica does not see new rows");

    replica.psql("SELECT pg_wal_replay_resume()");
    wait_for(
        &format!("lag back to 0 after resume (was {paused_lag} bytes)"),
        Duration::from_secs(10),
        || {
            let lag = lag();
            (Some(()).filter(|()| lag == 0.0), lag.to_string())
        },
    );
    assert_eq!(replica.psql("SELECT count(*) FROM t"), "1000");

    // Dropping the replica stops it: the primary no longer lists it.
    let port = replica.port();
    drop(replica);
    assert!(!accepts(port), "nothing listens on {port} after drop");
    wait_for("the primary forgets the dropped replica", Duration::from_secs(10), || {
        let rows = primary.psql("SELECT count(*) FROM pg_stat_replication");
        (Some(()).filter(|()| rows == "0"), rows)
    });
}

#[test]
fn a_password_cluster_has_psql_and_replicas_too() {
    let primary = Cluster::builder().password("s3cret pass").setting("log_connections", "on").start();
    assert_eq!(primary.psql("SHOW password_encryption"), "scram-sha-256");
    let replica = primary.replica();
    assert_eq!(replica.psql("SHOW log_connections"), "on", "a replica inherits the primary's settings");
    assert_eq!(replica.psql("SHOW hot_standby"), "on");
    let url = primary.url("127.0.0.1", "");
    let denied = std::process::Command::new("psql")
        .args(["-X", "-w", "-c", "SELECT 1", &url])
        .env_remove("PGPASSWORD")
        .output()
        .unwrap();
    assert!(!denied.status.success(), "no password, no connection");
    assert!(String::from_utf8_lossy(&denied.stderr).contains("password"), "{denied:?}");
}
