//! The tower layers over real HTTP: `ServerLayer` continues a caller's `traceparent` with a server span
//! carrying the HTTP attributes (a 500 is an error), and `ClientLayer` injects its client span's
//! context into the request a test server receives; the metrics crate's RED layer, inside
//! `ServerLayer`, takes the server span's trace id as its latency exemplar.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::routing::get;
use prodready_test_support::ZipkinReceiver;
use prodready_tracing::layer::{ClientLayer, ServerLayer};
use prodready_tracing::{Exporter, Guard, Options};
use serde_json::Value;
use tower_layer::Layer as _;
use tower_service::Service as _;
use tracing_subscriber::layer::SubscriberExt as _;

/// Tracing to a Zipkin receiver, the subscriber set for this thread (the tests run on a current-thread
/// runtime, so the servers' tasks share it).
fn traced(receiver: &ZipkinReceiver) -> (Guard, tracing::subscriber::DefaultGuard) {
    let mut options = Options::new("layers-test");
    options.exporter = Exporter::Zipkin { endpoint: receiver.url() };
    let guard = prodready_tracing::init(&options).unwrap();
    let subscriber = tracing_subscriber::registry().with(guard.layer("layers-test"));
    let default = tracing::subscriber::set_default(subscriber);
    (guard, default)
}

async fn serve(app: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

fn named<'a>(spans: &'a [Value], name: &str) -> &'a Value {
    spans.iter().find(|s| s["name"] == name).unwrap_or_else(|| panic!("no span {name} in {spans:#?}"))
}

/// The tags a test looks at, one per line.
fn tags(span: &Value, keys: &[&str]) -> String {
    keys.iter().map(|k| format!("{k}={}\n", span["tags"][*k])).collect()
}

#[tokio::test]
async fn the_server_layer_continues_the_callers_trace_with_http_attributes() {
    let receiver = ZipkinReceiver::start();
    let (guard, _default) = traced(&receiver);
    let app = axum::Router::new()
        .route("/items/{id}", get(|| async { "item" }))
        .route("/boom", get(|| async { (http::StatusCode::INTERNAL_SERVER_ERROR, "boom") }))
        .layer(ServerLayer);
    let url = serve(app).await;
    let http = reqwest::Client::new();
    let traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    let ok = http.get(format!("{url}/items/42")).header("traceparent", traceparent).send().await.unwrap();
    assert_eq!(ok.status(), 200);
    let failed = http.get(format!("{url}/boom")).send().await.unwrap();
    assert_eq!(failed.status(), 500);
    drop(guard);

    let spans = receiver.wait_for(2, Duration::from_secs(5));
    assert!(receiver.rejected().is_empty(), "{:?}", receiver.rejected());
    let server = named(&spans, "GET /items/{id}");
    assert_eq!(server["traceId"], "0af7651916cd43dd8448eb211c80319c");
    assert_eq!(server["parentId"], "b7ad6b7169203331", "the remote span is the parent");
    assert_eq!(server["kind"], "SERVER");
    let keys =
        ["http.request.method", "http.route", "url.path", "http.response.status_code", "otel.status_code"];
    expect_test::expect![[r#"
        http.request.method="GET"
        http.route="/items/{id}"
        url.path="/items/42"
        http.response.status_code="200"
        otel.status_code=null
    "#]]
    .assert_eq(&tags(server, &keys));

    // Without a traceparent the server span starts a trace; a 500 makes it an error.
    let boom = named(&spans, "GET /boom");
    assert!(boom.get("parentId").is_none(), "{boom}");
    assert_ne!(boom["traceId"], server["traceId"]);
    expect_test::expect![[r#"
        http.request.method="GET"
        http.route="/boom"
        url.path="/boom"
        http.response.status_code="500"
        otel.status_code="ERROR"
        error.type="500"
    "#]]
    .assert_eq(&tags(boom, &[&keys[..], &["error.type"]].concat()));
}

/// A tower HTTP client over reqwest, for the client layer to wrap.
#[derive(Clone)]
struct Reqwest(reqwest::Client);

impl tower_service::Service<http::Request<String>> for Reqwest {
    type Response = http::Response<String>;
    type Error = reqwest::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<String>) -> Self::Future {
        let client = self.0.clone();
        Box::pin(async move {
            let answer = client.execute(reqwest::Request::try_from(request)?).await?;
            let status = answer.status();
            let body = answer.text().await?;
            Ok(http::Response::builder().status(status).body(body).expect("a response"))
        })
    }
}

#[tokio::test]
async fn the_client_layer_injects_its_span_into_the_request() {
    let receiver = ZipkinReceiver::start();
    let (guard, _default) = traced(&receiver);
    // The server answers with the traceparent it received (not traced itself).
    let echo = |headers: http::HeaderMap| async move {
        match headers.get("traceparent") {
            Some(v) => (http::StatusCode::OK, v.to_str().unwrap().to_owned()),
            None => (http::StatusCode::NOT_FOUND, String::new()),
        }
    };
    let url = serve(axum::Router::new().route("/echo", get(echo))).await;
    let port = url.rsplit(':').next().unwrap().to_owned();
    let mut client = ClientLayer.layer(Reqwest(reqwest::Client::new()));

    let job = tracing::info_span!("nightly job");
    let job_trace = {
        let _entered = job.enter();
        prodready_tracing::current_trace_id().expect("a sampled trace")
    };
    // Credentials in the URL never reach the exported span.
    let with_secrets = format!("{}/echo?token=s3cret&page=2", url.replace("http://", "http://me:hunter2@"));
    let request = http::Request::get(with_secrets).body(String::new()).unwrap();
    let seen = tracing::Instrument::instrument(
        async {
            std::future::poll_fn(|cx| client.poll_ready(cx)).await.unwrap();
            client.call(request).await.unwrap()
        },
        job.clone(),
    )
    .await;
    drop(job);
    assert_eq!(seen.status(), 200, "the server saw no traceparent");
    let traceparent = seen.into_body();
    drop(guard);

    let spans = receiver.wait_for(2, Duration::from_secs(5));
    let job = named(&spans, "nightly job");
    let call = named(&spans, "GET");
    assert_eq!(call["kind"], "CLIENT");
    assert_eq!(job["traceId"], job_trace.as_str());
    assert_eq!(call["traceId"], job_trace.as_str());
    assert_eq!(call["parentId"], job["id"], "the client span is the job's child");
    // The server received the client span's own context: W3C version 00, sampled.
    assert_eq!(traceparent, format!("00-{job_trace}-{}-01", call["id"].as_str().unwrap()));
    assert_eq!(call["tags"]["server.port"], port.as_str());
    assert_eq!(call["tags"]["server.address"], "127.0.0.1");
    assert_eq!(call["tags"]["http.response.status_code"], "200");
    let shown = url.replace("http://", "http://me:[REDACTED]@");
    assert_eq!(call["tags"]["url.full"], format!("{shown}/echo?token=[REDACTED]&page=2").as_str());
    assert_eq!(call["remoteEndpoint"]["ipv4"], "127.0.0.1");
}

/// The trace ids in the OpenMetrics exemplars of `route`'s latency buckets.
fn exemplar_trace_ids(openmetrics: &str, route: &str) -> Vec<String> {
    let route = format!("route=\"{route}\"");
    openmetrics
        .lines()
        .filter(|l| l.starts_with("http_request_duration_seconds_bucket{") && l.contains(&route))
        .filter_map(|l| l.split_once("# {trace_id=\"").and_then(|(_, rest)| rest.split_once('"')))
        .map(|(id, _)| id.to_owned())
        .collect()
}

type RouteOf = fn(&http::Request<axum::body::Body>) -> Option<String>;

fn matched_route(req: &http::Request<axum::body::Body>) -> Option<String> {
    req.extensions().get::<axum::extract::MatchedPath>().map(|p| p.as_str().to_owned())
}

/// The RED layer with `current_trace_id` as its exemplar source, as docs/tracing.md shows it.
fn red_layer(
    registry: &mut prodready_metrics::prometheus_client::registry::Registry,
) -> prodready_metrics::exposition::RedLayer<RouteOf> {
    prodready_metrics::exposition::RedLayer::new(registry, matched_route as RouteOf)
        .with_exemplars(prodready_tracing::current_trace_id)
}

#[tokio::test]
async fn the_red_layer_inside_the_server_layer_takes_the_server_spans_trace_id_as_its_exemplar() {
    use prodready_metrics::exposition;
    use prodready_metrics::prometheus_client::registry::Registry;
    let receiver = ZipkinReceiver::start();
    let (guard, _default) = traced(&receiver);
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let traceparent = format!("00-{trace_id}-00f067aa0ba902b7-01");
    let http = reqwest::Client::new();

    // ServerLayer outermost (axum's last `.layer` wraps the others): its span is entered when the RED
    // layer reads the current trace id.
    let mut registry = Registry::default();
    let app = axum::Router::new()
        .route("/items/{id}", get(|| async { "item" }))
        .layer(red_layer(&mut registry))
        .layer(ServerLayer);
    let url = serve(app).await;
    let ok = http.get(format!("{url}/items/7")).header("traceparent", &traceparent).send().await.unwrap();
    assert_eq!(ok.status(), 200);
    let openmetrics = exposition::encode(&registry);
    assert_eq!(exemplar_trace_ids(&openmetrics, "/items/{id}"), [trace_id], "{openmetrics}");
    assert!(!exposition::encode_text(&registry).contains("trace_id"), "exemplars are OpenMetrics only");

    // The other way round the RED layer runs before the server span exists: no exemplar at all.
    let mut outside = Registry::default();
    let app = axum::Router::new()
        .route("/items/{id}", get(|| async { "item" }))
        .layer(ServerLayer)
        .layer(red_layer(&mut outside));
    let url = serve(app).await;
    let ok = http.get(format!("{url}/items/8")).header("traceparent", &traceparent).send().await.unwrap();
    assert_eq!(ok.status(), 200);
    let openmetrics = exposition::encode(&outside);
    assert!(openmetrics.contains("http_request_duration_seconds_count{"), "{openmetrics}");
    assert!(!openmetrics.contains("trace_id"), "{openmetrics}");
    drop(guard);

    // The exemplar's trace is the one of the server span ServerLayer exported.
    let spans = receiver.wait_for(2, Duration::from_secs(5));
    assert!(receiver.rejected().is_empty(), "{:?}", receiver.rejected());
    let server: Vec<&Value> = spans.iter().filter(|s| s["name"] == "GET /items/{id}").collect();
    assert_eq!(server.len(), 2, "{spans:#?}");
    assert!(server.iter().all(|s| s["traceId"] == trace_id && s["kind"] == "SERVER"), "{server:#?}");
}
