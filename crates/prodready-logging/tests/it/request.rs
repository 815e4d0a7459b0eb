//! The request-logging layer in a real axum service: request ids, one line per request, redaction, and
//! trace ids on every line of a request.

use axum::routing::get;
use opentelemetry::trace::TracerProvider as _;
use prodready_logging::{JsonLayer, RequestId, RequestLogLayer};
use tracing_subscriber::layer::SubscriberExt as _;

use crate::Captured;

async fn serve() -> String {
    let app = axum::Router::new()
        .route(
            "/orders/{id}",
            get(|axum::extract::Extension(id): axum::extract::Extension<RequestId>| async move {
                tracing::info!("loading the order");
                format!("order for request {}", id.0)
            }),
        )
        .route("/boom", get(|| async { (http::StatusCode::INTERNAL_SERVER_ERROR, "boom") }))
        .route("/empty", get(|| async { http::StatusCode::NO_CONTENT }))
        .layer(
            RequestLogLayer::new()
                .log_header(http::header::AUTHORIZATION)
                .log_header(http::header::COOKIE)
                .log_header(http::header::ACCEPT),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app.into_make_service_with_connect_info::<std::net::SocketAddr>())
            .await
            .unwrap();
    });
    format!("http://{addr}")
}

fn request_lines(captured: &Captured) -> Vec<serde_json::Value> {
    captured.json_lines().into_iter().filter(|l| l["message"] == "request").collect()
}

#[tokio::test]
async fn request_ids_redaction_and_one_line_per_request() {
    let captured = Captured::default();
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")))
        .with(JsonLayer::new(captured.clone()));
    let _default = tracing::subscriber::set_default(subscriber);
    let base = serve().await;
    let http = reqwest::Client::new();

    // A client's id is kept and echoed; the handler sees it.
    let answer = http
        .get(format!("{base}/orders/17?token=s3cr3t-token&page=2"))
        .header("x-request-id", "client-abc-123")
        .header("authorization", "Bearer s3cr3t-bearer")
        .header("cookie", "session=s3cr3t-cookie")
        .header("accept", "text/plain")
        .header("user-agent", "probe/1.0")
        .send()
        .await
        .unwrap();
    assert_eq!(answer.headers()["x-request-id"], "client-abc-123");
    assert_eq!(answer.text().await.unwrap(), "order for request client-abc-123");

    // No id: one is generated (UUID v4) and returned.
    let answer = http.get(format!("{base}/orders/18")).send().await.unwrap();
    let generated = answer.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert_eq!(generated.len(), 36);
    answer.text().await.unwrap();
    // A garbage id is replaced.
    let answer =
        http.get(format!("{base}/boom")).header("x-request-id", "x".repeat(300)).send().await.unwrap();
    assert_ne!(answer.headers()["x-request-id"], "x".repeat(300).as_str());
    answer.text().await.unwrap();
    let answer = http.get(format!("{base}/empty")).send().await.unwrap();
    assert_eq!(answer.status(), 204);

    let text = captured.text();
    for secret in ["s3cr3t-token", "s3cr3t-bearer", "s3cr3t-cookie"] {
        assert!(!text.contains(secret), "{secret} reached the log:\n{text}");
    }
    let lines = request_lines(&captured);
    assert_eq!(lines.len(), 4, "one line per request:\n{text}");
    let first = &lines[0];
    assert_eq!(first["level"], "INFO");
    assert_eq!(first["method"], "GET");
    assert_eq!(first["route"], "/orders/{id}");
    assert_eq!(first["path"], "/orders/17?token=[REDACTED]&page=2");
    assert_eq!(first["status"], 200);
    assert_eq!(first["bytes"], "order for request client-abc-123".len());
    assert_eq!(first["user_agent"], "probe/1.0");
    assert_eq!(first["client_ip"], "127.0.0.1");
    assert_eq!(first["request_id"], "client-abc-123");
    assert_eq!(first["aborted"], false);
    assert!(first["latency_ms"].as_f64().unwrap() >= 0.0);
    assert_eq!(first["headers"], "authorization: [REDACTED]; cookie: [REDACTED]; accept: text/plain");
    assert_eq!(lines[1]["request_id"], generated);
    assert_eq!(lines[2]["level"], "ERROR");
    assert_eq!(lines[2]["status"], 500);
    assert_eq!(lines[3]["status"], 204);
    assert_eq!(lines[3]["bytes"], 0);

    // The handler's own line carries the request id and the same trace as the request line.
    let handler = captured.json_lines().into_iter().find(|l| l["message"] == "loading the order").unwrap();
    assert_eq!(handler["request_id"], "client-abc-123");
    let trace_id = handler["trace_id"].as_str().unwrap().to_owned();
    assert_eq!(trace_id.len(), 32);
    assert_eq!(first["trace_id"], trace_id.as_str());
    assert_ne!(lines[1]["trace_id"], trace_id.as_str(), "each request is its own trace");
    let _ = provider.shutdown();
}

/// A service whose answer never comes: the caller gives up and drops the future.
#[derive(Clone)]
struct Never;

impl tower_service::Service<http::Request<String>> for Never {
    type Response = http::Response<String>;
    type Error = std::convert::Infallible;
    type Future = std::future::Pending<Result<http::Response<String>, std::convert::Infallible>>;

    fn poll_ready(&mut self, _: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: http::Request<String>) -> Self::Future {
        std::future::pending()
    }
}

#[test]
fn a_request_dropped_before_its_answer_still_gets_its_one_line() {
    use tower_layer::Layer as _;
    use tower_service::Service as _;
    let captured = Captured::default();
    let subscriber = tracing_subscriber::registry().with(JsonLayer::new(captured.clone()));
    tracing::subscriber::with_default(subscriber, || {
        let mut service = RequestLogLayer::new().layer(Never);
        let future = service.call(http::Request::get("/slow?password=hunter2").body(String::new()).unwrap());
        drop(future);
    });
    let lines = request_lines(&captured);
    assert_eq!(lines.len(), 1, "{}", captured.text());
    assert_eq!(lines[0]["status"], 499);
    assert_eq!(lines[0]["aborted"], true);
    assert_eq!(lines[0]["level"], "WARN");
    assert_eq!(lines[0]["path"], "/slow?password=[REDACTED]");
}
