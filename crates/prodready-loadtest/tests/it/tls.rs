//! https targets: a TLS server on loopback with a certificate for 127.0.0.1 signed by a test CA. The
//! run trusts exactly the CA certificates it is given, or none checked under k6's
//! `insecureSkipTLSVerify`; a kept connection carries every request after one handshake.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use prodready_loadtest::{Report, RunOptions};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::run::count;

fn ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(rcgen::DnType::CommonName, format!("{name} test CA"));
    CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap()
}

/// An HTTPS server answering `ok` to every request; returns its base URL and its connection count.
async fn https_server(ca: &CertifiedIssuer<'static, KeyPair>) -> (String, Arc<AtomicU64>) {
    https_server_with(ca, rustls::DEFAULT_VERSIONS).await
}

/// The same, speaking only the given TLS versions.
async fn https_server_with(
    ca: &CertifiedIssuer<'static, KeyPair>,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> (String, Arc<AtomicU64>) {
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["127.0.0.1".to_owned()]).unwrap().signed_by(&key, ca).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(prodready_tls::provider())
        .with_protocol_versions(versions)
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![CertificateDer::from(cert.der().to_vec())],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        )
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("https://{}/", listener.local_addr().unwrap());
    let connections = Arc::new(AtomicU64::new(0));
    let counted = connections.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            counted.fetch_add(1, Ordering::SeqCst);
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(stream).await else { return };
                let (mut request, mut buf) = (Vec::new(), [0u8; 4096]);
                loop {
                    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                        match tls.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => request.extend_from_slice(&buf[..n]),
                        }
                    }
                    request.clear();
                    let reply = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
                    if tls.write_all(reply).await.is_err() || tls.flush().await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (url, connections)
}

async fn run(url: &str, options: &str, roots: Vec<Vec<u8>>) -> Report {
    let text = format!(
        r#"
{options}
[scenarios.s]
executor = "shared-iterations"
vus = 1
iterations = 5
[[scenarios.s.requests]]
url = "{url}"
checks = {{ status = 200, body_contains = "ok" }}
"#
    );
    let mut read = |_: &Path| Err(std::io::Error::from(std::io::ErrorKind::NotFound));
    let plan =
        prodready_loadtest::parse(Path::new("/t/load.toml"), &text, &mut read).expect("the scenario parses");
    prodready_loadtest::run(Arc::new(plan), RunOptions { tls_roots: roots, ..RunOptions::default() }).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_with_the_servers_ca_runs_on_one_handshake() {
    let ca = ca("load");
    let (url, connections) = https_server(&ca).await;
    let report = run(&url, "", vec![ca.der().to_vec()]).await;
    let s = &report.summary;
    assert_eq!(count(s, "http_reqs"), 5);
    assert_eq!(s.value("http_req_failed", "rate"), Some(0.0), "{s:#?}");
    assert_eq!(s.value("checks", "rate"), Some(1.0));
    assert_eq!(connections.load(Ordering::SeqCst), 1, "one handshake for the five requests");
    let handshake = s.value("http_req_tls_handshaking", "max").unwrap();
    assert!(handshake > 0.0, "the handshake is timed: {handshake}");
    assert_eq!(s.value("http_req_tls_handshaking", "min"), Some(0.0), "reused requests do not handshake");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_untrusted_certificate_fails_every_request_unless_verification_is_skipped() {
    let (url, _) = https_server(&ca("server")).await;
    for roots in [Vec::new(), vec![ca("other").der().to_vec()]] {
        let s = run(&url, "", roots).await.summary;
        assert_eq!(count(&s, "http_reqs"), 5);
        assert_eq!(s.value("http_req_failed", "rate"), Some(1.0), "{s:#?}");
        assert_eq!(s.value("checks", "rate"), Some(0.0));
    }
    let s = run(&url, "[options]\ninsecureSkipTLSVerify = true", Vec::new()).await.summary;
    assert_eq!(s.value("http_req_failed", "rate"), Some(0.0), "{s:#?}");
    assert_eq!(s.value("checks", "rate"), Some(1.0));
    // A TLS 1.2-only server, unverified: the handshake's signature is still checked (TLS 1.2's path).
    let (url, _) = https_server_with(&ca("old"), &[&rustls::version::TLS12]).await;
    let s = run(&url, "[options]\ninsecureSkipTLSVerify = true", Vec::new()).await.summary;
    assert_eq!(s.value("http_req_failed", "rate"), Some(0.0), "{s:#?}");
}
