//! `restore --force` over a database that holds tables: restored beside it, then swapped in; the previous
//! database is kept; a failure leaves the target as it was.

use prodready_backup::Error;
use prodready_test_support::TestDb;

use crate::{edge_case_database, fingerprints, options, quiet, restore_options, schema_only, temp_store};

async fn count(url: &str, sql: &str) -> i64 {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(conn);
    client.query_one(sql, &[]).await.unwrap().get(0)
}

/// The edge-case database (foreign keys, views, partitioned tables, large objects) restored over a copy
/// that was changed since, and that holds an extra table whose foreign key points into a restored one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn force_replaces_a_database_and_keeps_the_previous_one() {
    let source = TestDb::create().await;
    edge_case_database(&source, 20_000).await;
    let (_dir, store) = temp_store();
    let manifest = prodready_backup::backup(&store, &options(&source), quiet()).await.unwrap();
    let target = TestDb::create().await;
    prodready_backup::restore(&store, &manifest, &restore_options(target.url()), quiet()).await.unwrap();
    {
        let client = target.connect().await;
        client
            .batch_execute(
                "DELETE FROM app.orders WHERE id % 2 = 0;
                 CREATE TABLE public.extra (user_id bigint REFERENCES app.users (id), note text);
                 INSERT INTO public.extra SELECT id, 'kept' FROM app.users LIMIT 10;",
            )
            .await
            .unwrap();
    }
    let mut force = restore_options(target.url());
    force.force = true;
    let report = prodready_backup::restore(&store, &manifest, &force, quiet()).await.unwrap();

    assert_eq!(fingerprints(source.url()).await, fingerprints(target.url()).await);
    assert_eq!(schema_only(source.url()), schema_only(target.url()));
    let kept = report.replaced.expect("the previous database is kept");
    assert!(kept.starts_with(&format!("{}_prodready_replaced_", target.name())), "{kept}");
    let kept_url = prodready_pg::with_dbname(target.url(), &kept);
    assert_eq!(count(&kept_url, "SELECT count(*) FROM public.extra").await, 10, "nothing is destroyed");
    assert!(
        count(&kept_url, "SELECT count(*) FROM app.orders").await
            < count(target.url(), "SELECT count(*) FROM app.orders").await
    );
    let (admin, conn) = tokio_postgres::connect(target.url(), tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(conn);
    admin.batch_execute(&format!("DROP DATABASE {} WITH (FORCE)", prodready_pg::ident(&kept))).await.unwrap();
    let leftovers = count(
        target.url(),
        &format!("SELECT count(*) FROM pg_database WHERE datname LIKE '{}\\_prodready\\_%'", target.name()),
    )
    .await;
    assert_eq!(leftovers, 0, "the restore database took the target's name; the kept one was dropped");
}

/// A restore that fails half-way (a corrupt table object) leaves the target untouched and no database
/// behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_force_restore_leaves_the_target_as_it_was() {
    let source = TestDb::create().await;
    source
        .connect()
        .await
        .batch_execute(
            "CREATE TABLE parent (id int PRIMARY KEY); CREATE TABLE child (id int, parent int REFERENCES parent (id));
             INSERT INTO parent SELECT generate_series(1, 1000); INSERT INTO child SELECT i, i FROM generate_series(1, 1000) i;",
        )
        .await
        .unwrap();
    let (dir, store) = temp_store();
    let manifest = prodready_backup::backup(&store, &options(&source), quiet()).await.unwrap();
    let target = TestDb::create().await;
    target
        .connect()
        .await
        .batch_execute(
            "CREATE TABLE parent (id int PRIMARY KEY, v text); INSERT INTO parent VALUES (7, 'mine')",
        )
        .await
        .unwrap();
    let before = fingerprints(target.url()).await;
    let object = manifest.tables.iter().find(|t| t.name == "child").unwrap().parts[0].clone();
    let path = dir.path().join("backups").join(&manifest.id).join(&object);
    let mut bytes = std::fs::read(&path).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(&path, bytes).unwrap();

    let mut force = restore_options(target.url());
    force.force = true;
    let result = prodready_backup::restore(&store, &manifest, &force, quiet()).await;
    assert!(matches!(result, Err(Error::Corrupt { .. })), "{result:?}");
    assert_eq!(fingerprints(target.url()).await, before, "the target is untouched");
    let leftovers = count(
        target.url(),
        &format!("SELECT count(*) FROM pg_database WHERE datname LIKE '{}\\_prodready\\_%'", target.name()),
    )
    .await;
    assert_eq!(leftovers, 0, "no restore or replaced database is left behind");
}

/// Big tables get their indexes and keys built as soon as their data is loaded, beside other loads
/// (a plain table and a partition whose parent has a key of its own, with foreign keys pointing both into
/// and out of the big table, a trigger, a materialized view with an index): the restore is exact, and
/// the early builds happened.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn big_tables_are_indexed_as_soon_as_they_are_loaded() {
    let source = TestDb::create().await;
    let (client, conn) = tokio_postgres::connect(source.url(), tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(conn);
    // 120,000 rows: over the 100,000 from which a table gets early builds.
    client
        .batch_execute(
            "CREATE TABLE small (id int PRIMARY KEY, label text);
             INSERT INTO small SELECT i, 'label ' || i FROM generate_series(1, 100) i;
             CREATE TABLE big (id int PRIMARY KEY, k text NOT NULL, small_id int REFERENCES small, UNIQUE (k));
             INSERT INTO big SELECT i, md5(i::text) || md5((i * 7)::text), 1 + i % 100 FROM generate_series(1, 120000) i;
             CREATE INDEX big_small ON big (small_id);
             CREATE INDEX big_prefix ON big (left(k, 4)) WHERE id % 2 = 0;
             CREATE TABLE child (id int PRIMARY KEY, big_id int REFERENCES big);
             INSERT INTO child SELECT i, i * 3 FROM generate_series(1, 1000) i;
             CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RETURN NEW; END$$;
             CREATE TRIGGER big_touch BEFORE UPDATE ON big FOR EACH ROW EXECUTE FUNCTION touch();
             CREATE MATERIALIZED VIEW per_small AS SELECT small_id, count(*) AS n FROM big GROUP BY small_id;
             CREATE UNIQUE INDEX per_small_id ON per_small (small_id);
             CREATE TABLE events (id bigint, at date, payload text, PRIMARY KEY (id, at)) PARTITION BY RANGE (at);
             CREATE TABLE events_2026 PARTITION OF events FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
             INSERT INTO events SELECT i, date '2026-01-01' + i % 365, md5(i::text) || md5((i + 1)::text)
                 FROM generate_series(1, 120000) i;
             CREATE INDEX events_2026_payload ON events_2026 (payload);
             ANALYZE;",
        )
        .await
        .unwrap();
    let (_dir, store) = temp_store();
    let manifest = prodready_backup::backup(&store, &options(&source), quiet()).await.unwrap();
    let target = TestDb::create().await;
    let report =
        prodready_backup::restore(&store, &manifest, &restore_options(target.url()), quiet()).await.unwrap();
    assert_eq!(report.early_builds, 2, "big and events_2026: {report:?}");
    assert_eq!(schema_only(source.url()), schema_only(target.url()));
    assert_eq!(fingerprints(source.url()).await, fingerprints(target.url()).await);
    // The constraints hold in the copy: a foreign key into big, and big's own unique key.
    assert_eq!(count(target.url(), "SELECT count(*) FROM child c JOIN big b ON b.id = c.big_id").await, 1000);
    let (client, conn) = tokio_postgres::connect(target.url(), tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(conn);
    let duplicate = client.batch_execute("INSERT INTO big SELECT 0, k, 1 FROM big WHERE id = 1").await;
    let constraint =
        |e: tokio_postgres::Error| e.as_db_error().and_then(|d| d.constraint()).map(str::to_owned);
    assert_eq!(constraint(duplicate.unwrap_err()).as_deref(), Some("big_k_key"));
    let orphan = client.batch_execute("INSERT INTO child VALUES (0, -1)").await;
    assert_eq!(constraint(orphan.unwrap_err()).as_deref(), Some("child_big_id_fkey"));
}

/// What a database holds outside its schema, as one text: privileges, settings (its own and per role),
/// connection limit and comment.
async fn database_properties(url: &str, name: &str) -> String {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(conn);
    let row = client
        .query_one(
            "SELECT coalesce((SELECT string_agg(CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(a.grantee) END
                                                || ':' || a.privilege_type || ':' || a.is_grantable, ',' ORDER BY 1)
                              FROM aclexplode(d.datacl) a WHERE a.grantee <> d.datdba), 'default'),
                    d.datconnlimit::text, coalesce(shobj_description(d.oid, 'pg_database'), ''),
                    coalesce((SELECT string_agg(coalesce(pg_get_userbyid(nullif(s.setrole, 0)), '*') || ' ' || array_to_string(s.setconfig, ';'), '|' ORDER BY 1)
                              FROM pg_db_role_setting s WHERE s.setdatabase = d.oid), '')
             FROM pg_database d WHERE d.datname = $1",
            &[&name],
        )
        .await
        .unwrap();
    (0..4).map(|i| row.get::<_, String>(i)).collect::<Vec<_>>().join("\n")
}

/// `--force` keeps what the replaced database had at the database level: who may connect (a revoked
/// PUBLIC stays revoked), its settings and a role's settings in it, its connection limit and comment.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn force_keeps_the_targets_privileges_settings_limit_and_comment() {
    let source = TestDb::create().await;
    source.connect().await.batch_execute("CREATE TABLE t (id int); INSERT INTO t VALUES (1)").await.unwrap();
    let (_dir, store) = temp_store();
    let manifest = prodready_backup::backup(&store, &options(&source), quiet()).await.unwrap();
    let target = TestDb::create().await;
    let name = target.name().to_owned();
    let role = format!("{name}_reader");
    let admin = target.connect().await;
    admin
        .batch_execute(&format!(
            "CREATE TABLE mine (id int);
             CREATE ROLE \"{role}\";
             REVOKE ALL ON DATABASE \"{name}\" FROM PUBLIC;
             GRANT CONNECT ON DATABASE \"{name}\" TO \"{role}\" WITH GRANT OPTION;
             GRANT TEMPORARY ON DATABASE \"{name}\" TO \"{role}\";
             ALTER DATABASE \"{name}\" SET work_mem = '64MB';
             ALTER DATABASE \"{name}\" SET search_path = \"$user\", public, \"Odd Schema\";
             ALTER DATABASE \"{name}\" SET statement_timeout = '5min';
             ALTER DATABASE \"{name}\" SET app.tenant = 'acme, inc';
             ALTER ROLE \"{role}\" IN DATABASE \"{name}\" SET default_transaction_read_only = on;
             ALTER DATABASE \"{name}\" CONNECTION LIMIT 42;
             COMMENT ON DATABASE \"{name}\" IS 'orders, don''t drop';"
        ))
        .await
        .unwrap();
    drop(admin);
    let before = database_properties(target.url(), &name).await;
    assert!(before.contains("CONNECT") && before.contains("work_mem=64MB"), "{before}");

    let mut force = restore_options(target.url());
    force.force = true;
    let report = prodready_backup::restore(&store, &manifest, &force, quiet()).await.unwrap();
    assert_eq!(count(target.url(), "SELECT count(*) FROM t").await, 1);
    assert_eq!(database_properties(target.url(), &name).await, before);

    let (admin, conn) = tokio_postgres::connect(target.url(), tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(conn);
    let kept = report.replaced.unwrap();
    admin.batch_execute(&format!("DROP DATABASE {} WITH (FORCE)", prodready_pg::ident(&kept))).await.unwrap();
    drop(admin);
    drop(target);
    let cleanup = source.connect().await;
    cleanup.batch_execute(&format!("DROP ROLE \"{role}\"")).await.unwrap();
}
