//! Database monitoring: the statement tracker and text normalisation as data, the collector against the
//! shared server (sessions, transactions, locks, deadlocks, privileges).

use std::time::{Duration, Instant};

use expect_test::{Expect, expect};
use prodready_pg::monitor::{CollectError, Families, Monitor, Snapshot, Totals, Tracker, normalize};
use prodready_test_support::TestDb;

fn t(calls: f64, exec_seconds: f64) -> Totals {
    Totals { calls, exec_seconds, rows: calls }
}

/// Feeds `scrapes` (each a list of `(queryid, calls, seconds)`) to a tracker with top 2 and renders what
/// each scrape exports.
fn check_tracker(scrapes: &[&[(i64, f64, f64)]], expected: Expect) {
    let mut tracker = Tracker::default();
    let mut out = String::new();
    for rows in scrapes {
        let rows: Vec<(i64, i64, Totals)> = rows.iter().map(|(id, c, s)| (*id, 0, t(*c, *s))).collect();
        let ranked = tracker.update(&rows, 2);
        let top: Vec<String> =
            ranked.top.iter().map(|(id, x)| format!("{id}={}/{}", x.calls, x.exec_seconds)).collect();
        out.push_str(&format!(
            "{} other={}/{}\n",
            top.join(" "),
            ranked.other.calls,
            ranked.other.exec_seconds
        ));
    }
    expected.assert_eq(&out);
}

#[test]
fn statement_counters_never_go_backwards_and_the_rest_is_other() {
    // Steady growth; then a reset (every counter restarts from zero); then statement 3 overtakes 2.
    check_tracker(
        &[
            &[(1, 10.0, 5.0), (2, 4.0, 3.0), (3, 1.0, 1.0)],
            &[(1, 12.0, 6.0), (2, 5.0, 3.5), (3, 2.0, 1.5)],
            &[(1, 1.0, 0.5), (2, 1.0, 0.1), (3, 1.0, 4.0)],
            &[(1, 2.0, 1.0), (2, 2.0, 0.2), (3, 3.0, 6.0)],
        ],
        expect![[r#"
            1=10/5 2=4/3 other=1/1
            1=12/6 2=5/3.5 other=2/1.5
            1=13/6.5 3=3/5.5 other=3/1.6
            3=5/7.5 1=14/7 other=4/1.7000000000000002
        "#]],
    );
    // A statement evicted then seen again starts from zero instead of being subtracted.
    check_tracker(
        &[&[(1, 5.0, 5.0), (2, 5.0, 1.0)], &[(1, 6.0, 6.0)], &[(1, 7.0, 7.0), (2, 1.0, 0.5)]],
        expect![[r#"
            1=5/5 2=5/1 other=0/0
            1=6/6 other=0/0
            1=7/7 2=6/1.5 other=0/0
        "#]],
    );
}

/// One statement run by two users (two entries of one queryid): one user's entry evicted, or reset on its
/// own, costs the statement's total nothing, and the other user's counts are never added twice.
#[test]
fn each_entry_of_a_statement_is_followed_on_its_own() {
    let mut tracker = Tracker::default();
    let mut totals = Vec::new();
    for rows in [
        vec![(1, 10, t(100.0, 10.0)), (1, 20, t(5.0, 1.0))],
        vec![(1, 10, t(101.0, 10.5)), (1, 20, t(6.0, 1.2))],
        // User 20's entry is evicted (or reset for that user alone).
        vec![(1, 10, t(102.0, 11.0))],
        // It comes back from zero.
        vec![(1, 10, t(103.0, 11.5)), (1, 20, t(1.0, 0.1))],
    ] {
        let ranked = tracker.update(&rows, 2);
        assert_eq!(ranked.tracked, 1);
        totals.push(ranked.top[0].1.calls);
    }
    assert_eq!(totals, [105.0, 107.0, 108.0, 110.0]);
}

/// A statement that had a series, absent from the server for longer than the tracker remembers absent
/// statements (60 scrapes), then back with small counts: its series goes on from where it stopped, and
/// `other` never goes down meanwhile.
#[test]
fn a_statement_back_after_a_long_absence_goes_on_from_its_last_total() {
    let mut tracker = Tracker::default();
    let mut exported = Vec::new();
    let mut others: Vec<Totals> = Vec::new();
    let mut scrape = |rows: Vec<(i64, i64, Totals)>| {
        let ranked = tracker.update(&rows, 2);
        others.push(ranked.other);
        ranked.top.iter().find(|(id, _)| *id == 1).map(|(_, x)| *x)
    };
    exported.push(scrape(vec![(1, 0, t(10.0, 5.0)), (2, 0, t(1.0, 1.0)), (3, 0, t(1.0, 0.05))]));
    for i in 1..=100 {
        let n = f64::from(i);
        assert_eq!(scrape(vec![(2, 0, t(1.0 + n, 1.0 + n)), (3, 0, t(1.0 + n, 0.05))]), None);
    }
    exported.push(scrape(vec![(1, 0, t(1.0, 0.1)), (2, 0, t(102.0, 102.0)), (3, 0, t(102.0, 0.05))]));
    let [Some(before), Some(after)] = exported[..] else { panic!("statement 1 not exported: {exported:?}") };
    assert_eq!(before, t(10.0, 5.0));
    assert_eq!(after, Totals { calls: 11.0, exec_seconds: 5.1, rows: 11.0 });
    for pair in others.windows(2) {
        let (was, now) = (pair[0], pair[1]);
        assert!(
            now.calls >= was.calls && now.exec_seconds >= was.exec_seconds && now.rows >= was.rows,
            "{was:?} -> {now:?}"
        );
    }
}

/// What an exporter keeps of statements gone from the server is bounded (20 times the top N): beyond it
/// the longest gone are forgotten and restart if they come back; the recently gone go on.
#[test]
fn statements_gone_for_long_are_kept_up_to_a_bound() {
    let mut tracker = Tracker::default();
    let mut top = |rows: Vec<(i64, i64, Totals)>| tracker.update(&rows, 1).top;
    // Thirty statements each have a series (each is the top one once), then the server forgets them all.
    for id in 0..30 {
        assert_eq!(top(vec![(id, 0, t(10.0, 5.0))])[0].0, id);
    }
    for _ in 0..70 {
        top(vec![(1000, 0, t(1.0, 0.001))]);
    }
    // The longest gone (statement 0) was forgotten: its series starts again; the last gone (29) goes on.
    assert_eq!(top(vec![(0, 0, t(1.0, 0.5))]), [(0, t(1.0, 0.5))]);
    assert_eq!(
        top(vec![(29, 0, t(1.0, 0.5))]),
        [(29, Totals { calls: 11.0, exec_seconds: 5.5, rows: 11.0 })]
    );
}

/// The server's eviction count restarts at zero on pg_stat_statements_reset(); the exported one goes on.
#[test]
fn deallocations_never_go_backwards() {
    let mut tracker = Tracker::default();
    let exported: Vec<i64> = [3, 5, 0, 2, 2].into_iter().map(|n| tracker.deallocations(n)).collect();
    assert_eq!(exported, [3, 5, 5, 7, 7]);
}

fn check_normalize(query: &str, expected: Expect) {
    expected.assert_eq(&normalize(query, 60));
}

#[test]
fn statement_texts_keep_no_literal() {
    check_normalize("SELECT * FROM t WHERE id = $1", expect!["SELECT * FROM t WHERE id = $1"]);
    check_normalize("SET application_name = 'secret-app'", expect!["SET application_name = ?"]);
    check_normalize("ALTER ROLE app PASSWORD 'hunter2''s'", expect!["ALTER ROLE app PASSWORD ?"]);
    check_normalize(r"SELECT E'it\'s', 42, 3.14, t1.c2", expect!["SELECT ?, ?, ?, t1.c2"]);
    check_normalize("DO $body$ BEGIN PERFORM 1; END $body$", expect!["DO ?"]);
    check_normalize("SELECT  a,\n\t b FROM   t", expect!["SELECT a, b FROM t"]);
    check_normalize(
        "SELECT aaaaaaaaaa, bbbbbbbbbb, cccccccccc, dddddddddd, eeeeeeeeee, ffffffffff",
        expect!["SELECT aaaaaaaaaa, bbbbbbbbbb, cccccccccc, dddddddddd, eeeee…"],
    );
}

async fn collect(db: &TestDb, monitor: &mut Monitor) -> Snapshot {
    let (client, _driver) = prodready_pg::connect(db.url(), "monitor-test").await.unwrap();
    monitor.collect(&client, 10).await.unwrap()
}

async fn until(what: &str, mut ok: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !ok().await {
        assert!(Instant::now() < deadline, "no {what} within 20 s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_transactions_locks_and_deadlocks_are_seen() {
    let db = TestDb::create().await;
    let setup = db.connect().await;
    setup.batch_execute("CREATE TABLE a (id int PRIMARY KEY); INSERT INTO a VALUES (1), (2)").await.unwrap();
    let mut monitor = Monitor::new();
    let before = collect(&db, &mut monitor).await;
    assert!(before.max_connections > 0);
    assert_eq!(before.statements, None, "the shared server has no pg_stat_statements");
    assert!(before.statements_note.as_deref().unwrap().contains("shared_preload_libraries"));
    assert!(before.tables.iter().any(|t| t.table == "a"), "{:?}", before.tables);

    // A transaction left idle: it is the longest and the longest idle one.
    let idle = db.connect().await;
    idle.batch_execute("BEGIN; SELECT 1 FROM a FOR UPDATE").await.unwrap();
    // A session waiting for the rows it holds.
    let waiter = db.connect().await;
    let waiting = tokio::spawn(async move { waiter.batch_execute("UPDATE a SET id = id").await });
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let now = collect(&db, &mut monitor).await;
    assert!(now.longest_transaction_seconds >= 1.0, "{}", now.longest_transaction_seconds);
    assert!(now.longest_idle_in_transaction_seconds >= 1.0, "{}", now.longest_idle_in_transaction_seconds);
    assert_eq!(now.waiting_sessions, 1);
    assert!(now.locks.iter().any(|(mode, n)| mode == "RowShareLock" && *n >= 1), "{:?}", now.locks);
    assert!(now.connections.iter().any(|(state, _)| state == "idle in transaction"), "{:?}", now.connections);
    idle.batch_execute("COMMIT").await.unwrap();
    waiting.await.unwrap().unwrap();

    // A deadlock between two sessions is counted.
    let (one, two) = (db.connect().await, db.connect().await);
    one.batch_execute("BEGIN; UPDATE a SET id = id WHERE id = 1").await.unwrap();
    two.batch_execute("BEGIN; UPDATE a SET id = id WHERE id = 2").await.unwrap();
    let first = tokio::spawn(async move {
        let r = one.batch_execute("UPDATE a SET id = id WHERE id = 2").await;
        let _ = one.batch_execute("ROLLBACK").await;
        r
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let second = two.batch_execute("UPDATE a SET id = id WHERE id = 1").await;
    let _ = two.batch_execute("ROLLBACK").await;
    let first = first.await.unwrap();
    assert!(first.is_err() || second.is_err(), "one of the two must be chosen as the deadlock victim");
    until("counted deadlock", async || {
        collect(&db, &mut monitor).await.database.deadlocks > before.database.deadlocks
    })
    .await;
}

#[tokio::test]
async fn a_role_without_pg_monitor_is_told_the_grant() {
    let db = TestDb::create().await;
    let admin = db.connect().await;
    let role = format!("{}_watcher", db.name());
    admin.batch_execute(&format!("CREATE ROLE \"{role}\" LOGIN")).await.unwrap();
    let url = prodready_pg::with_dbname(db.url(), db.name()).replacen("postgres@", &format!("{role}@"), 1);
    let (client, _driver) = prodready_pg::connect(&url, "monitor-test").await.unwrap();
    let err = Monitor::new().collect(&client, 10).await.unwrap_err();
    assert!(matches!(err, CollectError::Privilege { .. }));
    assert_eq!(
        err.to_string(),
        format!(
            "role {role} may not read other sessions' statistics: GRANT pg_monitor TO {role} (or run as a role \
             that has it)"
        )
    );
    drop(client);
    admin.batch_execute(&format!("GRANT pg_monitor TO \"{role}\"")).await.unwrap();
    let (client, _driver) = prodready_pg::connect(&url, "monitor-test").await.unwrap();
    Monitor::new().collect(&client, 10).await.unwrap();
    drop(client);
    tokio::time::sleep(Duration::from_millis(200)).await;
    admin.batch_execute(&format!("DROP OWNED BY \"{role}\"; DROP ROLE \"{role}\"")).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statements_are_ranked_bounded_and_survive_a_reset() {
    let cluster = prodready_test_support::Cluster::builder().pg_stat_statements().start();
    let url = cluster.url("127.0.0.1", "");
    let (client, _driver) = prodready_pg::connect(&url, "monitor-test").await.unwrap();
    client.batch_execute("SELECT pg_stat_statements_reset()").await.unwrap();
    // One slow statement, and many distinct cheap ones.
    client.batch_execute("SELECT pg_sleep(0.3) AS slow_one").await.unwrap();
    // Distinct shapes (constants and aliases do not make a statement distinct, its select list does).
    for i in 1..=300 {
        client.batch_execute(&format!("SELECT {}", vec!["1"; i].join(", "))).await.unwrap();
    }
    let mut monitor = Monitor::new();
    let first = monitor.collect(&client, 5).await.unwrap();
    let statements = first.statements.clone().expect("pg_stat_statements is loaded");
    assert!(statements.tracked > 300, "{}", statements.tracked);
    assert_eq!(statements.top.len(), 5);
    assert!(statements.top[0].query.contains("pg_sleep"), "{:?}", statements.top[0]);
    assert!(statements.top[0].totals.exec_seconds >= 0.3);
    assert!(statements.other.calls >= 290.0, "{:?}", statements.other);
    let series = |s: &Snapshot| {
        let st = s.statements.as_ref().unwrap();
        let mut all: Vec<(String, Totals)> =
            st.top.iter().map(|x| (x.queryid.to_string(), x.totals)).collect();
        all.push(("other".to_owned(), st.other));
        all
    };
    let before = series(&first);

    // A reset makes the server's counters restart; ours keep growing.
    client.batch_execute("SELECT pg_stat_statements_reset()").await.unwrap();
    client.batch_execute("SELECT pg_sleep(0.05) AS slow_one").await.unwrap();
    let second = monitor.collect(&client, 5).await.unwrap();
    for (id, after) in series(&second) {
        if let Some((_, was)) = before.iter().find(|(b, _)| *b == id) {
            assert!(
                after.calls >= was.calls && after.exec_seconds >= was.exec_seconds,
                "{id}: {was:?} -> {after:?}"
            );
        }
    }

    // db top, by mean: the slow statement first.
    let top =
        prodready_pg::monitor::top(&client, prodready_pg::monitor::TopBy::Mean, 3).await.unwrap().unwrap();
    assert!(top[0].query.contains("pg_sleep"), "{top:?}");
}

/// A database whose pg_stat_statements was never updated to the server's version (`CREATE EXTENSION ...
/// VERSION`, as after pg_upgrade without `ALTER EXTENSION ... UPDATE`): its statements are read through
/// the columns that version has, and `db top` works too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_old_pg_stat_statements_is_read_with_its_own_columns() {
    let cluster = prodready_test_support::Cluster::builder().pg_stat_statements().start();
    let url = cluster.url("127.0.0.1", "");
    let (admin, _admin_driver) = prodready_pg::connect(&url, "monitor-test").await.unwrap();
    for (db, version, has_info) in [("pss17", "1.7", false), ("pss18", "1.8", false), ("pss19", "1.9", true)]
    {
        admin.batch_execute(&format!("CREATE DATABASE {db}")).await.unwrap();
        let (client, _driver) =
            prodready_pg::connect(&prodready_pg::with_dbname(&url, db), "monitor-test").await.unwrap();
        client
            .batch_execute(&format!("CREATE EXTENSION pg_stat_statements VERSION '{version}'"))
            .await
            .unwrap();
        client.batch_execute("SELECT pg_sleep(0.05) AS slow_one").await.unwrap();
        let mut monitor = Monitor::new();
        let snapshot = monitor.collect(&client, 5).await.unwrap();
        let statements =
            snapshot.statements.unwrap_or_else(|| panic!("{version}: {:?}", snapshot.statements_note));
        assert!(statements.top.iter().any(|s| s.query.contains("pg_sleep")), "{version}: {statements:?}");
        assert_eq!(statements.deallocations.is_some(), has_info, "{version}");
        let top = prodready_pg::monitor::top(&client, prodready_pg::monitor::TopBy::Total, 3)
            .await
            .unwrap()
            .unwrap_or_else(|note| panic!("{version}: {note}"));
        assert!(!top.is_empty(), "{version}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replication_lag_comes_and_goes_and_an_inactive_slot_is_reported() {
    let primary = prodready_test_support::Cluster::builder().start();
    let replica = primary.replica();
    primary.psql("CREATE TABLE r (id int); SELECT pg_create_physical_replication_slot('forgotten', true)");
    let (client, _driver) =
        prodready_pg::connect(&primary.url("127.0.0.1", ""), "monitor-test").await.unwrap();
    let mut monitor = Monitor::new();
    let snapshot = monitor.collect(&client, 5).await.unwrap();
    assert_eq!(snapshot.replicas.len(), 1, "{:?}", snapshot.replicas);
    let slot = snapshot.slots.iter().find(|s| s.name == "forgotten").expect("the slot is listed");
    assert!(!slot.active);

    // The replay delay is measured from the last replayed commit: the replica must have replayed one (the
    // CREATE TABLE) before replay stops, or it has none to measure from (a loaded machine got there first).
    until("a replayed commit on the replica", async || {
        replica.psql("SELECT pg_last_xact_replay_timestamp() IS NOT NULL").trim() == "t"
    })
    .await;
    replica.psql("SELECT pg_wal_replay_pause()");
    primary.psql("INSERT INTO r SELECT generate_series(1, 10000)");
    until("replication lag", async || {
        let s = monitor.collect(&client, 5).await.unwrap();
        s.replicas.first().is_some_and(|r| r.lag_bytes > 0.0)
    })
    .await;
    let retained = monitor.collect(&client, 5).await.unwrap();
    assert!(retained.slots.iter().any(|s| s.name == "forgotten" && s.retained_wal_bytes > 0.0));
    let (rclient, _rdriver) =
        prodready_pg::connect(&replica.url("127.0.0.1", ""), "monitor-test").await.unwrap();
    let on_replica = Monitor::new().collect(&rclient, 5).await.unwrap();
    assert!(on_replica.in_recovery);
    assert!(on_replica.replay_delay_seconds.is_some());
    replica.psql("SELECT pg_wal_replay_resume()");
    until("caught up", async || {
        let s = monitor.collect(&client, 5).await.unwrap();
        s.replicas.first().is_some_and(|r| r.lag_bytes == 0.0)
    })
    .await;
    primary.psql("SELECT pg_drop_replication_slot('forgotten')");
}

/// PostgreSQL's side of WAL archiving: segments waiting while `archive_command` fails, none once it
/// works, `archive_timeout` as set; nothing on a server that does not archive.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn archiving_shows_waiting_segments_and_the_timeout() {
    let archive = prodready_test_support::server_dir();
    let open = archive.path().join("open");
    // Fails until the file `open` exists: the archiver keeps the segments as ready.
    let cluster = prodready_test_support::Cluster::builder()
        .setting("archive_mode", "on")
        .setting("archive_timeout", "90")
        .setting("archive_command", &format!("test -f {0}/open && cp %p {0}/%f", archive.path().display()))
        .start();
    let (client, _driver) =
        prodready_pg::connect(&cluster.url("127.0.0.1", ""), "monitor-test").await.unwrap();
    let mut monitor = Monitor::new();
    cluster.psql(
        "CREATE TABLE w (id int); SELECT pg_switch_wal(); INSERT INTO w VALUES (1); SELECT pg_switch_wal()",
    );
    let waiting = monitor.collect(&client, 5).await.unwrap().archiving.expect("archive_mode is on");
    assert!(waiting.ready_segments >= 2, "{waiting:?}");
    assert_eq!(waiting.timeout_seconds, 90);

    std::fs::write(&open, "").unwrap();
    prodready_test_support::give_to_server(&open);
    cluster.switch_and_archive();
    until("no segment waiting", async || {
        monitor.collect(&client, 5).await.unwrap().archiving.is_some_and(|a| a.ready_segments == 0)
    })
    .await;

    let plain = TestDb::create().await;
    assert_eq!(
        collect(&plain, &mut Monitor::new()).await.archiving,
        None,
        "the shared server does not archive"
    );
}

#[tokio::test]
async fn families_turned_off_are_not_read_and_the_rest_is_unchanged() {
    let db = TestDb::create().await;
    let admin = db.connect().await;
    admin.batch_execute("CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1)").await.unwrap();
    let (client, _driver) = prodready_pg::connect(db.url(), "monitor-test").await.unwrap();
    let mut monitor = Monitor::new();
    let all = monitor.collect(&client, 10).await.unwrap();
    assert_eq!(all.tables.iter().map(|t| t.table.as_str()).collect::<Vec<_>>(), ["t"]);
    assert_eq!(all.indexes.iter().map(|i| i.index.as_str()).collect::<Vec<_>>(), ["t_pkey"]);
    assert!(all.statements.is_some() || all.statements_note.is_some());

    let mut none = Families::all();
    none.tables = false;
    none.indexes = false;
    none.statements = false;
    // The same monitor and session: its prepared statements serve both.
    let some = monitor.collect_families(&client, 10, none).await.unwrap();
    assert!(some.tables.is_empty() && some.indexes.is_empty());
    assert_eq!((some.statements, some.statements_note), (None, None));
    assert_eq!(
        (some.server_version_num, some.max_connections, some.database.size_bytes > 0),
        (all.server_version_num, all.max_connections, true)
    );
}
