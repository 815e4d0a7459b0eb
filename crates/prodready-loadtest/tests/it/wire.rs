//! The HTTP/1.1 client on the wire: a raw TCP server answers with exact bytes, written in pieces
//! that arrive in separate reads, and the generator must frame every response right (chunked with
//! extensions and trailers, until close, HEAD, 1xx, large bodies), keep or replace connections as
//! the server says, and count every byte.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;

use crate::run::{count, load};

/// How the raw server treats a connection after each response.
#[derive(Clone, Copy, PartialEq)]
enum After {
    KeepOpen,
    /// Closes it, without having said so in the response.
    Close,
}

struct Raw {
    url: String,
    connections: Arc<AtomicU64>,
    /// Bytes of responses written, in all.
    written: Arc<AtomicU64>,
}

/// A server that answers every request with `pieces`, each written on its own after a short pause.
async fn raw(pieces: Vec<Vec<u8>>, after: After) -> Raw {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind 127.0.0.1:0");
    let url = format!("http://{}/", listener.local_addr().expect("local address"));
    let connections = Arc::new(AtomicU64::new(0));
    let written = Arc::new(AtomicU64::new(0));
    let (c, w) = (connections.clone(), written.clone());
    let pieces = Arc::new(pieces);
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else { return };
            c.fetch_add(1, Ordering::SeqCst);
            let (pieces, w) = (pieces.clone(), w.clone());
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buf = [0u8; 4096];
                loop {
                    // One request head (the requests here carry no body).
                    while !request.windows(4).any(|x| x == b"\r\n\r\n") {
                        match socket.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => request.extend_from_slice(&buf[..n]),
                        }
                    }
                    request.clear();
                    for piece in pieces.iter() {
                        if socket.write_all(piece).await.is_err() {
                            return;
                        }
                        w.fetch_add(piece.len() as u64, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(2)).await;
                    }
                    if after == After::Close {
                        return;
                    }
                }
            });
        }
    });
    Raw { url, connections, written }
}

fn pieces(parts: &[&str]) -> Vec<Vec<u8>> {
    parts.iter().map(|p| p.as_bytes().to_vec()).collect()
}

/// Runs `iterations` requests on one VU against `server` with `checks`, and returns the summary
/// after asserting that every request and check passed and every byte was counted.
async fn check_all_pass(server: &Raw, method: &str, checks: &str, iterations: u64, connections: u64) {
    let report = load(&format!(
        r#"
[scenarios.s]
executor = "shared-iterations"
vus = 1
iterations = {iterations}
[[scenarios.s.requests]]
method = "{method}"
url = "{url}"
checks = {{ status = 200, {checks} }}
"#,
        url = server.url
    ))
    .await;
    let s = &report.summary;
    assert_eq!(count(s, "http_reqs"), iterations, "{s:#?}");
    assert_eq!(s.value("http_req_failed", "rate"), Some(0.0), "{s:#?}");
    assert_eq!(s.value("checks", "rate"), Some(1.0), "{s:#?}");
    assert_eq!(server.connections.load(Ordering::SeqCst), connections, "connections opened");
    assert_eq!(
        count(s, "data_received"),
        server.written.load(Ordering::SeqCst),
        "every byte the server wrote is counted"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunked_bodies_with_extensions_and_trailers_on_one_connection() {
    let server = raw(
        pieces(&[
            "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\nx-trace: abc-1\r\n\r\n",
            "5;ext=1\r\nhel",
            "lo\r\n6\r\n world\r\n",
            "0\r\n",
            "x-trailer: t\r\n\r\n",
        ]),
        After::KeepOpen,
    )
    .await;
    check_all_pass(&server, "GET", r#"body_contains = "hello world", header = { x-trace = "abc" }"#, 5, 1)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_response_split_byte_by_byte_is_reassembled() {
    let response = "HTTP/1.1 200 OK\r\ncontent-length: 11\r\ncontent-type: text/plain\r\n\r\nhello world";
    let server = raw(response.bytes().map(|b| vec![b]).collect(), After::KeepOpen).await;
    check_all_pass(&server, "GET", r#"body_contains = "hello world""#, 3, 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_without_length_ends_when_the_server_closes() {
    let server = raw(pieces(&["HTTP/1.1 200 OK\r\n\r\nhello ", "world"]), After::Close).await;
    check_all_pass(&server, "GET", r#"body_contains = "hello world""#, 4, 4).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_drops_idle_connections_costs_a_reconnect_not_a_failure() {
    // The response says nothing about closing; the server closes anyway, as idle timeouts do.
    let server = raw(pieces(&["HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"]), After::Close).await;
    check_all_pass(&server, "GET", r#"body_contains = "ok""#, 6, 6).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn informational_responses_are_skipped() {
    let server = raw(
        pieces(&[
            "HTTP/1.1 100 Continue\r\n\r\n",
            "HTTP/1.1 103 Early Hints\r\nlink: </a.css>\r\n\r\nHTTP/1.1 200 OK\r\n",
            "x-final: yes\r\ncontent-length: 2\r\n\r\nok",
        ]),
        After::KeepOpen,
    )
    .await;
    check_all_pass(&server, "GET", r#"body_contains = "ok", header = { x-final = "yes" }"#, 3, 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_head_response_has_no_body_whatever_its_length_says() {
    let server =
        raw(pieces(&["HTTP/1.1 200 OK\r\ncontent-length: 1000\r\nx-kind: head\r\n\r\n"]), After::KeepOpen)
            .await;
    check_all_pass(&server, "HEAD", r#"header = { x-kind = "head" }"#, 4, 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_body_is_read_whole_and_checked_at_its_end() {
    let body = format!("{}END", "x".repeat(3 << 20));
    let head = format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n", body.len());
    let server = raw(vec![head.into_bytes(), body.into_bytes()], After::KeepOpen).await;
    check_all_pass(&server, "GET", r#"body_contains = "xEND""#, 2, 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_does_not_speak_http_fails_each_request() {
    let server = raw(pieces(&["SSH-2.0-OpenSSH_9.2\r\n\r\n"]), After::KeepOpen).await;
    let report = load(&format!(
        r#"
[scenarios.s]
executor = "shared-iterations"
iterations = 3
[[scenarios.s.requests]]
url = "{}"
checks = {{ status = 200 }}
"#,
        server.url
    ))
    .await;
    let s = &report.summary;
    assert_eq!(count(s, "http_reqs"), 3);
    assert_eq!(s.value("http_req_failed", "rate"), Some(1.0));
    assert_eq!(s.value("checks", "rate"), Some(0.0));
    assert_eq!(server.connections.load(Ordering::SeqCst), 3, "a connection that spoke garbage is not reused");
}
