use std::io::{BufRead as _, BufReader, Write as _};
use std::net::TcpListener;

use prodready_test_support::{check_page, check_page_async};

/// Serves `html` at `/` (404 elsewhere) from a thread on loopback, for the life of the test process.
/// Returns the page's URL.
fn serve(html: &'static str) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind the page server");
    let addr = listener.local_addr().expect("the server's address");
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream.try_clone().expect("clone the stream"));
            let mut request_line = String::new();
            if reader.read_line(&mut request_line).is_err() {
                continue;
            }
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                line.clear();
            }
            let (status, body) = match request_line.split_whitespace().nth(1) {
                Some("/") => ("200 OK", html),
                _ => ("404 Not Found", "not found"),
            };
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\ncontent-type: text/html; charset=utf-8\r\ncontent-length: {}\r\n\
                 connection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    format!("http://{addr}/")
}

fn assert_png(path: &std::path::Path) {
    let bytes = std::fs::read(path).expect("read the screenshot");
    assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"), "{} is a PNG", path.display());
    assert!(bytes.len() > 1000, "{} has content ({} bytes)", path.display(), bytes.len());
}

#[test]
fn a_self_contained_page_is_clean_and_screenshotted() {
    let url = serve(
        "<!doctype html><html><head><title>Status</title><style>h1 { color: #0a0 }</style></head>\
         <body><h1>All good</h1><p id=n></p><img alt=dot src=\"data:image/gif;base64,R0lGODlhAQABAAAAACw=\">\
         <script>document.getElementById('n').textContent = 'rendered by script';</script></body></html>",
    );
    let dir = tempfile::tempdir().unwrap();
    let shot = dir.path().join("clean.png");

    let report = check_page(&url, &shot);

    report.assert_clean();
    assert_eq!(report.title, "Status");
    assert_eq!(report.status, Some(200));
    assert_eq!(report.text, "All good\n\nrendered by script");
    assert_png(&shot);
}

#[test]
fn console_errors_and_requests_to_other_origins_are_reported() {
    let url = serve(
        "<!doctype html><html><head><title>Leaky</title></head><body><h1>Leaky</h1>\
         <img src=\"http://192.0.2.1/x.png\"><script>console.error('x')</script></body></html>",
    );
    let dir = tempfile::tempdir().unwrap();
    let shot = dir.path().join("leaky.png");

    let report = check_page(&url, &shot);

    assert_eq!(report.console_errors, ["x"]);
    assert_eq!(report.external_requests, ["GET http://192.0.2.1/x.png"], "reported (and blocked)");
    assert_eq!(report.failed_requests, Vec::<String>::new(), "the blocked request is not counted twice");
    assert_png(&shot);
    let clean = std::panic::catch_unwind(|| report.assert_clean());
    assert!(clean.is_err(), "assert_clean rejects the page");
}

#[test]
fn uncaught_exceptions_and_failed_same_origin_requests_are_reported() {
    let url = serve(
        "<!doctype html><html><head><title>Broken</title><link rel=stylesheet href=\"/missing.css\"></head>\
         <body>Broken<script>throw new Error('boom')</script></body></html>",
    );
    let dir = tempfile::tempdir().unwrap();

    let report = check_page(&url, &dir.path().join("broken.png"));

    assert!(report.console_errors.contains(&"uncaught: boom".to_owned()), "{report:#?}");
    assert_eq!(report.failed_requests, [format!("GET {url}missing.css: HTTP 404")]);
    assert_eq!(report.external_requests, Vec::<String>::new());
}

/// The server runs on the test's own single-threaded runtime: the async variant must not block it.
#[tokio::test]
async fn the_async_variant_leaves_the_runtime_free_to_serve_the_page() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    let app = axum::Router::new().route(
        "/",
        axum::routing::get(|| async { axum::response::Html("<title>Async</title><p>served in process</p>") }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    let dir = tempfile::tempdir().unwrap();

    let report = check_page_async(&url, &dir.path().join("async.png")).await;

    report.assert_clean();
    assert_eq!((report.title.as_str(), report.text.as_str()), ("Async", "served in process"));
}
