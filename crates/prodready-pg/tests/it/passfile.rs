use std::os::unix::fs::PermissionsExt as _;

use prodready_test_support::Cluster;

/// A server that wants a password: the URL carries none, the password file gives it (as libpq's
/// `~/.pgpass` does for psql and pg_dump), and client tools get the same file.
#[tokio::test]
async fn a_password_file_supplies_the_password_as_libpq_does() {
    let password = "pw with: colon";
    let cluster = Cluster::builder().password(password).start();
    let dir = tempfile::tempdir().unwrap();
    let passfile = dir.path().join("pgpass");
    std::fs::write(
        &passfile,
        format!(
            "# for the test cluster\nother:1:*:*:nope\n127.0.0.1:{}:*:postgres:pw with\\: colon\n",
            cluster.port()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&passfile, std::fs::Permissions::from_mode(0o600)).unwrap();
    let url = cluster.url("127.0.0.1", &format!("?sslmode=disable&passfile={}", passfile.display()));

    let (client, driver) = prodready_pg::connect(&url, "passfile-test").await.unwrap();
    assert_eq!(client.query_one("SELECT 1", &[]).await.unwrap().get::<_, i32>(0), 1);
    drop(client);
    let _ = driver.await;

    // psql gets the file through PGPASSFILE, never the password on its command line.
    let env = prodready_pg::libpq_env(&url, "passfile-test").unwrap();
    assert!(env.iter().all(|(k, _)| *k != "PGPASSWORD"), "{env:?}");
    let out = std::process::Command::new("psql")
        .args(["-X", "-Atc", "SELECT 2"])
        .env_clear()
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "2", "{}", String::from_utf8_lossy(&out.stderr));

    // A file others may read is ignored, as libpq ignores it; without a password the login fails.
    std::fs::set_permissions(&passfile, std::fs::Permissions::from_mode(0o644)).unwrap();
    let err = prodready_pg::connect(&url, "passfile-test").await.unwrap_err().to_string();
    assert!(err.contains("password"), "{err}");
    let bare = cluster.url("127.0.0.1", "?sslmode=disable");
    assert!(prodready_pg::connect(&bare, "passfile-test").await.is_err());

    // The program's default file applies to URLs that name none.
    std::fs::set_permissions(&passfile, std::fs::Permissions::from_mode(0o600)).unwrap();
    prodready_pg::passfile::set_default(passfile.clone());
    assert!(prodready_pg::connect(&bare, "passfile-test").await.is_ok());
}
