//! prodready-pg against real PostgreSQL: the shared server for plain connections, and a throwaway
//! cluster with TLS (a CA and a server certificate made here) for every `sslmode`.

mod monitor;
mod passfile;
mod tls;

#[tokio::test]
async fn connects_to_the_shared_server_and_names_it_without_the_password_when_it_cannot() {
    let db = prodready_test_support::TestDb::create().await;
    let (client, driver) = prodready_pg::connect(db.url(), "prodready-pg-tests").await.unwrap();
    let row = client
        .query_one("SELECT current_database(), current_setting('application_name')", &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), db.name());
    assert_eq!(row.get::<_, String>(1), "prodready-pg-tests");
    drop(client);
    driver.await.unwrap();

    let port = prodready_test_support::free_port();
    let err = prodready_pg::connect(
        &format!("postgres://app:hunter2@127.0.0.1:{port}/shop?connect_timeout=2"),
        "t",
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(err.starts_with(&format!("cannot connect to 127.0.0.1:{port}/shop: ")), "{err}");
    assert!(!err.contains("hunter2"), "{err}");
}
