//! The OTLP/HTTP exporter against a collector that answers from a script: retries where OTLP/HTTP says
//! to retry (429, 502, 503, 504) and nowhere else, `Retry-After` waited for, the request's headers and
//! body on every attempt, a partial success reported (a warning alone is a success), an error answer's
//! `google.rpc.Status` message shown, redirects not followed, credentials never shown, bad headers
//! refused; gzip bodies, and a collector behind mutual TLS with a test CA.

use std::io::{BufRead as _, BufReader, Read as _};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prodready_tracing::{Exporter, Options, Protocol};
use prost::Message as _;

/// One request as the collector saw it.
#[derive(Debug, Clone)]
struct Request {
    head: String,
    body: Vec<u8>,
}

/// A collector that answers the n-th request with the n-th answer of its script (and the last one after
/// that), and keeps every request.
struct Scripted {
    url: String,
    requests: Arc<Mutex<Vec<Request>>>,
}

impl Scripted {
    /// Each answer: the status line and headers after `HTTP/1.1 ` (e.g. `503 Busy\r\nretry-after: 0`),
    /// and the body.
    fn start(script: Vec<(&'static str, Vec<u8>)>) -> Self {
        Self::start_with(None, script)
    }

    /// Over TLS when `tls` is given (`https://`).
    fn start_with(tls: Option<Arc<rustls::ServerConfig>>, script: Vec<(&'static str, Vec<u8>)>) -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let scheme = if tls.is_some() { "https" } else { "http" };
        let url = format!("{scheme}://127.0.0.1:{}/v1/traces", listener.local_addr().unwrap().port());
        let requests = Arc::new(Mutex::new(Vec::new()));
        let kept = requests.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (kept, script, tls) = (kept.clone(), script.clone(), tls.clone());
                std::thread::spawn(move || match tls {
                    None => serve(stream, &kept, &script),
                    Some(config) => {
                        let Ok(connection) = rustls::ServerConnection::new(config) else { return };
                        serve(rustls::StreamOwned::new(connection, stream), &kept, &script);
                    }
                });
            }
        });
        Self { url, requests }
    }

    fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }
}

fn serve(
    stream: impl std::io::Read + std::io::Write,
    kept: &Mutex<Vec<Request>>,
    script: &[(&str, Vec<u8>)],
) {
    let mut reader = BufReader::new(stream);
    loop {
        let mut head = String::new();
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            if line == "\r\n" {
                break;
            }
            head.push_str(&line);
        }
        let length = head
            .lines()
            .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_owned()))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let n = {
            let mut kept = kept.lock().unwrap();
            kept.push(Request { head: head.to_ascii_lowercase(), body });
            kept.len()
        };
        let (status, answer) = &script[(n - 1).min(script.len() - 1)];
        let mut out = format!("HTTP/1.1 {status}\r\ncontent-length: {}\r\n\r\n", answer.len()).into_bytes();
        out.extend_from_slice(answer);
        if reader.get_mut().write_all(&out).and_then(|()| reader.get_mut().flush()).is_err() {
            return;
        }
    }
}

fn options(endpoint: &str, headers: &[(&str, &str)]) -> Options {
    let mut options = Options::new("otlp-http-test");
    options.exporter = Exporter::Otlp {
        endpoint: endpoint.to_owned(),
        protocol: Protocol::HttpProtobuf,
        headers: headers.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
    };
    options.export_timeout = Duration::from_secs(5);
    options
}

/// `ExportTraceServiceResponse { partial_success { rejected_spans, error_message } }`.
fn partial_success(rejected: u8, message: &str) -> Vec<u8> {
    let mut inner = vec![0x08, rejected, 0x12, message.len() as u8];
    inner.extend_from_slice(message.as_bytes());
    let mut out = vec![0x0a, inner.len() as u8];
    out.extend(inner);
    out
}

#[test]
fn throttled_and_unavailable_answers_are_retried_with_the_same_request() {
    let collector = Scripted::start(vec![
        ("429 Too Many Requests\r\nretry-after: 0", Vec::new()),
        ("503 Service Unavailable", b"overloaded".to_vec()),
        ("502 Bad Gateway", Vec::new()),
        ("200 OK\r\ncontent-type: application/x-protobuf", partial_success(1, "span too big")),
    ]);
    let error = prodready_tracing::ping(&options(&collector.url, &[("api-key", "s3cret-value")]))
        .expect_err("a partial success with a rejected span is not a success")
        .to_string();
    assert_eq!(
        error,
        format!(
            "the collector at {} did not accept the trace: Operation failed: the collector rejected 1 of 2 spans: span too big",
            collector.url
        )
    );
    let requests = collector.requests();
    assert_eq!(requests.len(), 4, "three retries: {requests:#?}");
    for request in &requests {
        assert!(request.head.starts_with("post /v1/traces http/1.1\r\n"), "{}", request.head);
        assert!(request.head.contains("user-agent: prodready-tracing/"), "{}", request.head);
        assert!(request.head.contains("content-type: application/x-protobuf\r\n"), "{}", request.head);
        assert!(request.head.contains("api-key: s3cret-value\r\n"), "{}", request.head);
        assert_eq!(request.body, requests[0].body, "every attempt sends the same batch");
    }
    let sent = ExportTraceServiceRequest::decode(requests[0].body.as_slice()).expect("a protobuf request");
    let spans: Vec<&str> =
        sent.resource_spans[0].scope_spans[0].spans.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(spans, ["ping child", "ping"]);
    assert!(!error.contains("s3cret"), "{error}");
}

#[test]
fn other_errors_are_not_retried_and_show_the_collectors_message() {
    // google.rpc.Status { code: 3, message: "invalid trace id" }, as OTLP/HTTP answers errors.
    let mut status = vec![0x08, 0x03, 0x12, 16];
    status.extend_from_slice(b"invalid trace id");
    let cases = [
        (
            "400 Bad Request\r\ncontent-type: application/x-protobuf",
            status,
            "400 Bad Request: invalid trace id",
        ),
        ("401 Unauthorized", Vec::new(), "401 Unauthorized"),
        ("404 Not Found", b"no such page".to_vec(), "404 Not Found: no such page"),
        ("408 Request Timeout", Vec::new(), "408 Request Timeout"),
        ("500 Internal Server Error", b"boom".to_vec(), "500 Internal Server Error: boom"),
    ];
    for (answer, body, expected) in cases {
        let collector = Scripted::start(vec![(answer, body)]);
        let error = prodready_tracing::ping(&options(&collector.url, &[])).unwrap_err().to_string();
        assert!(error.ends_with(&format!("answered {expected}")), "{error}");
        assert_eq!(collector.requests().len(), 1, "{answer} is not retried");
    }
}

#[test]
fn a_throttled_export_waits_as_long_as_the_collector_asks() {
    let collector = Scripted::start(vec![
        ("503 Service Unavailable\r\nretry-after: 1", Vec::new()),
        ("200 OK", Vec::new()),
    ]);
    let started = std::time::Instant::now();
    prodready_tracing::ping(&options(&collector.url, &[])).expect("accepted on the second attempt");
    assert_eq!(collector.requests().len(), 2);
    // A lower bound: the exporter waited the second the collector asked for, not its 100 ms backoff.
    assert!(started.elapsed() >= Duration::from_secs(1), "{:?}", started.elapsed());
}

#[test]
fn credentials_never_reach_the_error() {
    // The collector echoes the API key it was sent, as some do in a 401.
    let collector =
        Scripted::start(vec![("401 Unauthorized", b"invalid api key hdr-secret-value for tenant".to_vec())]);
    let endpoint = collector.url.replace("http://", "http://user:url-secret@");
    let error = prodready_tracing::ping(&options(&endpoint, &[("api-key", "hdr-secret-value")]))
        .unwrap_err()
        .to_string();
    assert!(!error.contains("secret"), "{error}");
    assert!(error.ends_with("answered 401 Unauthorized: invalid api key [REDACTED] for tenant"), "{error}");
    assert!(error.contains("http://user:[REDACTED]@127.0.0.1:"), "{error}");

    // Unreachable, with credentials in the URL.
    let closed =
        format!("http://user:url-secret@127.0.0.1:{}/v1/traces", prodready_test_support::free_port());
    let mut options = options(&closed, &[]);
    options.export_timeout = Duration::from_secs(1);
    let error = prodready_tracing::ping(&options).unwrap_err().to_string();
    assert!(!error.contains("url-secret"), "{error}");
    assert!(error.contains("cannot reach http://user:[REDACTED]@127.0.0.1:"), "{error}");
}

#[test]
fn a_redirect_is_not_followed() {
    let collector =
        Scripted::start(vec![("302 Found\r\nlocation: http://127.0.0.1:9/elsewhere?token=abc", Vec::new())]);
    let error =
        prodready_tracing::ping(&options(&collector.url, &[("api-key", "k-123")])).unwrap_err().to_string();
    assert!(
        error.ends_with(
            "answered 302 Found, redirecting to http://127.0.0.1:9/elsewhere?token=[REDACTED]: spans are not \
             posted to a redirect (set the endpoint to the final URL)"
        ),
        "{error}"
    );
    assert_eq!(collector.requests().len(), 1);
}

#[test]
fn retries_end_within_the_export_timeout() {
    // Always 503, asking for a minute's pause: the next attempt would pass the deadline, so none is made.
    let collector = Scripted::start(vec![("503 Service Unavailable\r\nretry-after: 60", Vec::new())]);
    let mut options = options(&collector.url, &[]);
    options.export_timeout = Duration::from_secs(2);
    let started = std::time::Instant::now();
    let error = prodready_tracing::ping(&options).unwrap_err().to_string();
    assert!(error.ends_with("answered 503 Service Unavailable"), "{error}");
    assert_eq!(collector.requests().len(), 1);
    // Loose: a loaded machine is slow, and a wait of a minute is what would show.
    assert!(started.elapsed() < Duration::from_secs(30), "{:?}", started.elapsed());
}

#[test]
fn a_success_with_nothing_rejected_is_a_success() {
    let collector = Scripted::start(vec![
        ("200 OK", partial_success(0, "")),
        ("200 OK", partial_success(0, "attribute values truncated")),
        ("200 OK", Vec::new()),
    ]);
    prodready_tracing::ping(&options(&collector.url, &[])).expect("accepted");
    prodready_tracing::ping(&options(&collector.url, &[])).expect("accepted with a warning");
    prodready_tracing::ping(&options(&collector.url, &[])).expect("accepted, empty answer");
    assert_eq!(collector.requests().len(), 3);
}

#[test]
fn bad_headers_are_refused_without_showing_their_values() {
    let check = |headers: &[(&str, &str)], expected: &str| {
        let error =
            prodready_tracing::init(&options("http://127.0.0.1:4318", headers)).unwrap_err().to_string();
        assert_eq!(error, expected);
    };
    check(&[("x-api key", "v")], "`x-api key` is not a valid HTTP header name");
    check(&[("api-key", "line\nbreak-secret")], "the value of header `api-key` is not a valid header value");
}

#[test]
fn gzip_compression_sends_a_gzip_body() {
    let collector = Scripted::start(vec![("200 OK", Vec::new())]);
    let mut options = options(&collector.url, &[]);
    options.compression = prodready_tracing::Compression::Gzip;
    prodready_tracing::ping(&options).expect("accepted");
    let request = &collector.requests()[0];
    assert!(request.head.contains("content-encoding: gzip\r\n"), "{}", request.head);
    let mut body = Vec::new();
    flate2::read::GzDecoder::new(request.body.as_slice()).read_to_end(&mut body).expect("a gzip body");
    let sent = ExportTraceServiceRequest::decode(body.as_slice()).expect("a protobuf request inside");
    assert_eq!(sent.resource_spans[0].scope_spans[0].spans.len(), 2);
}

/// A test CA, and a certificate it signed (for 127.0.0.1 or a client), as PEM files in `dir`.
mod pki {
    use std::path::{Path, PathBuf};

    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};

    pub(super) struct Pki {
        pub(super) ca: CertifiedIssuer<'static, KeyPair>,
        pub(super) ca_file: PathBuf,
    }

    pub(super) fn ca(dir: &Path, name: &str) -> Pki {
        let mut params = CertificateParams::new(Vec::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(rcgen::DnType::CommonName, format!("{name} test CA"));
        let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        let ca_file = dir.join(format!("{name}-ca.pem"));
        std::fs::write(&ca_file, ca.pem()).unwrap();
        Pki { ca, ca_file }
    }

    impl Pki {
        /// A certificate for `names` (DER), its key (PKCS#8 DER), and the two as PEM files.
        pub(super) fn issue(
            &self,
            dir: &Path,
            file: &str,
            names: &[&str],
        ) -> (Vec<u8>, Vec<u8>, PathBuf, PathBuf) {
            let key = KeyPair::generate().unwrap();
            let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
            let cert = CertificateParams::new(names).unwrap().signed_by(&key, &self.ca).unwrap();
            let (cert_file, key_file) = (dir.join(format!("{file}.pem")), dir.join(format!("{file}.key")));
            std::fs::write(&cert_file, cert.pem()).unwrap();
            std::fs::write(&key_file, key.serialize_pem()).unwrap();
            (cert.der().to_vec(), key.serialize_der(), cert_file, key_file)
        }
    }
}

#[test]
fn a_collector_behind_mutual_tls_takes_spans_from_a_client_with_its_certificate() {
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

    let dir = tempfile::tempdir().unwrap();
    let pki = pki::ca(dir.path(), "collector");
    let (server_cert, server_key, ..) = pki.issue(dir.path(), "server", &["127.0.0.1"]);
    let (.., client_cert, client_key) = pki.issue(dir.path(), "client", &["orders"]);
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from(pki.ca.der().to_vec())).unwrap();
    let provider = prodready_tls::provider();
    let verifier =
        rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
            .build()
            .unwrap();
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(
            vec![CertificateDer::from(server_cert)],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(server_key)),
        )
        .unwrap();
    let collector = Scripted::start_with(Some(Arc::new(config)), vec![("200 OK", Vec::new())]);
    let port = collector.url.split(':').nth(2).and_then(|p| p.split('/').next()).unwrap().to_owned();
    let attempt = |tls: prodready_tracing::Tls| {
        let mut options = options(&collector.url, &[]);
        options.export_timeout = Duration::from_secs(2);
        options.tls = tls;
        prodready_tracing::ping(&options).map(drop).map_err(|e| e.to_string().replace(&port, "PORT"))
    };
    let mut tls = prodready_tracing::Tls::default();
    tls.certificate = Some(pki.ca_file.clone());
    tls.client_certificate = Some(client_cert.clone());
    tls.client_key = Some(client_key.clone());
    attempt(tls.clone()).expect("the collector's CA trusted, the client's certificate shown");
    assert_eq!(collector.requests().len(), 1);

    // Without a client certificate the collector ends the handshake; without the CA the client does.
    let mut no_identity = tls.clone();
    (no_identity.client_certificate, no_identity.client_key) = (None, None);
    let error = attempt(no_identity).unwrap_err();
    assert!(error.contains("cannot reach https://127.0.0.1:PORT/v1/traces: "), "{error}");
    let mut system_roots = tls.clone();
    system_roots.certificate = None;
    let error = attempt(system_roots).unwrap_err();
    assert!(error.contains("cannot reach https://127.0.0.1:PORT/v1/traces: "), "{error}");
    assert!(error.contains("certificate"), "{error}");
    assert_eq!(collector.requests().len(), 1, "no spans went anywhere without both");

    // Files that are not there or not PEM: one clear error at set-up.
    let mut missing = tls.clone();
    missing.certificate = Some(dir.path().join("nope.pem"));
    let error = attempt(missing).unwrap_err();
    assert!(
        error.ends_with(
            "nope.pem: cannot read the collector's CA certificate: No such file or directory (os error 2)"
        ),
        "{error}"
    );
    let mut not_pem = tls.clone();
    not_pem.certificate = Some(client_key.clone());
    let error = attempt(not_pem).unwrap_err();
    assert!(error.ends_with("client.key: no PEM certificate in it (the collector's CA certificate: -----BEGIN CERTIFICATE-----)"), "{error}");
    let mut swapped = tls;
    swapped.client_key = Some(pki.ca_file.clone());
    let error = attempt(swapped).unwrap_err();
    assert!(
        error.contains("client.pem and ") && error.contains("not a PEM certificate and its private key"),
        "{error}"
    );
}
