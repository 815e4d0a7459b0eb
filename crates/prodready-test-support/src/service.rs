//! A small axum service instrumented with prodready-metrics' RED layer and process metrics, serving its
//! own `/metrics`: the scrape target of the exposition and alerting tests.

use std::sync::{Arc, Mutex};

use axum::extract::MatchedPath;
use axum::http;
use axum::routing::get;
use prodready_metrics::exposition::{self, MetricsService, RedLayer};
use prodready_metrics::prometheus_client::registry::Registry;

/// Starts the service on a free loopback port and returns its address. Routes: `/orders/{id}` answers
/// 200, `/fail` answers 500, anything else 404 (`unmatched`).
pub async fn instrumented_service() -> std::net::SocketAddr {
    let mut registry = Registry::default();
    exposition::register_process_metrics(&mut registry);
    let layer = RedLayer::new(&mut registry, |req: &http::Request<axum::body::Body>| {
        req.extensions().get::<MatchedPath>().map(|p| p.as_str().to_owned())
    });
    let registry = Arc::new(Mutex::new(registry));
    let app = axum::Router::new()
        .route("/orders/{id}", get(|| async { "order" }))
        .route("/fail", get(|| async { (http::StatusCode::INTERNAL_SERVER_ERROR, "boom") }))
        .route_layer(layer)
        .route_service("/metrics", MetricsService::new(registry));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("a bound address");
    tokio::spawn(async move { axum::serve(listener, app).await.expect("the instrumented service runs") });
    addr
}
