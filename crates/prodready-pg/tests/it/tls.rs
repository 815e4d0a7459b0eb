use std::path::Path;

use prodready_test_support::Cluster;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};

/// A CA; its certificate is written to `dir/NAME.pem`.
fn ca(dir: &Path, name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(rcgen::DnType::CommonName, format!("{name} test CA"));
    let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
    std::fs::write(dir.join(format!("{name}.pem")), issuer.pem()).unwrap();
    issuer
}

/// A cluster with `ssl = on` and a certificate for `localhost` (not for 127.0.0.1) signed by `ca`.
fn tls_cluster(ca: &CertifiedIssuer<'static, KeyPair>) -> Cluster {
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["localhost".to_owned()]).unwrap().signed_by(&key, ca).unwrap();
    Cluster::builder()
        .setting("ssl", "on")
        .file("server.crt", cert.pem(), 0o600)
        .file("server.key", key.serialize_pem(), 0o600)
        .start()
}

/// Connects with `url` and says whether the session is encrypted, or the error.
async fn try_connect(url: &str) -> Result<bool, String> {
    let (client, driver) = prodready_pg::connect(url, "tls-test").await.map_err(|e| e.to_string())?;
    let row = client
        .query_one("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()", &[])
        .await
        .map_err(|e| e.to_string())?;
    drop(client);
    let _ = driver.await;
    Ok(row.get(0))
}

#[tokio::test]
async fn every_sslmode_behaves_as_libpq_against_a_tls_server() {
    let dir = tempfile::tempdir().unwrap();
    let good = ca(dir.path(), "good");
    let _unknown = ca(dir.path(), "unknown");
    let cluster = tls_cluster(&good);
    let (good, unknown) = (dir.path().join("good.pem"), dir.path().join("unknown.pem"));
    let url = |host: &str, query: String| cluster.url(host, &format!("?connect_timeout=10&{query}"));
    let root = |mode: &str, pem: &Path| format!("sslmode={mode}&sslrootcert={}", pem.display());

    // (url, Ok(encrypted) or a part of the error)
    let cases: Vec<(String, Result<bool, &str>)> = vec![
        (url("localhost", root("verify-full", &good)), Ok(true)),
        (url("localhost", root("verify-full", &unknown)), Err("not signed by a CA in sslrootcert")),
        (url("127.0.0.1", root("verify-full", &good)), Err("not issued for the host")),
        (url("127.0.0.1", root("verify-ca", &good)), Ok(true)),
        (url("127.0.0.1", root("verify-ca", &unknown)), Err("not signed by a CA in sslrootcert")),
        (url("127.0.0.1", root("require", &unknown)), Err("not signed by a CA in sslrootcert")),
        (url("127.0.0.1", "sslmode=require".to_owned()), Ok(true)),
        (url("127.0.0.1", "sslmode=prefer".to_owned()), Ok(true)),
        (url("127.0.0.1", "sslmode=disable".to_owned()), Ok(false)),
        (
            url("localhost", "sslmode=verify-full".to_owned()),
            Err("sslmode=verify-full needs sslrootcert=FILE"),
        ),
        (
            url("localhost", root("verify-full", &dir.path().join("missing.pem"))),
            Err("missing.pem: cannot read it"),
        ),
    ];
    for (url, expected) in cases {
        let got = try_connect(&url).await;
        match (&got, expected) {
            (Ok(encrypted), Ok(want)) => assert_eq!(*encrypted, want, "{url}"),
            (Err(err), Err(part)) => assert!(err.contains(part), "{url}: {err}"),
            _ => panic!("{url}: expected {expected:?}, got {got:?}\nserver log:\n{}", cluster.log()),
        }
    }
}
