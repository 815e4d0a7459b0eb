use prodready_test_support::TestDb;

async fn exists(name: &str) -> bool {
    let (admin, conn) =
        tokio_postgres::connect(&prodready_test_support::base_database_url(), tokio_postgres::NoTls)
            .await
            .expect("connect to the test server");
    tokio::spawn(conn);
    let row = admin.query_one("SELECT count(*) FROM pg_database WHERE datname = $1", &[&name]).await.unwrap();
    row.get::<_, i64>(0) == 1
}

#[tokio::test]
async fn a_test_database_is_fresh_usable_and_dropped_afterwards() {
    let db = TestDb::create().await;
    let name = db.name().to_owned();
    assert!(db.url().ends_with(&format!("/{name}")), "{}", db.url());
    assert!(exists(&name).await);

    let client = db.connect().await;
    let tables: i64 = client
        .query_one("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(tables, 0, "a fresh database has no tables");
    client.batch_execute("CREATE TABLE t (id int); INSERT INTO t VALUES (1), (2)").await.unwrap();
    let rows: i64 = client.query_one("SELECT count(*) FROM t", &[]).await.unwrap().get(0);
    assert_eq!(rows, 2);

    drop(db); // drops the database even though `client` is still connected
    assert!(!exists(&name).await, "{name} should be gone");
}

#[tokio::test]
async fn test_databases_are_isolated_from_each_other() {
    let (a, b) = (TestDb::create().await, TestDb::create().await);
    a.connect().await.batch_execute("CREATE TABLE only_in_a (id int)").await.unwrap();
    let seen: i64 = b
        .connect()
        .await
        .query_one("SELECT count(*) FROM pg_tables WHERE tablename = 'only_in_a'", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(seen, 0);
}
