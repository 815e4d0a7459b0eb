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
