//! Two instrumented axum services, A calling B: one trace, linked across the HTTP hop.

use std::time::Duration;

use axum::routing::get;
use prodready_test_support::ZipkinReceiver;
use prodready_tracing::Sampler;
use prodready_tracing::layer::ServerLayer;
use tracing::Instrument as _;
use tracing_subscriber::layer::SubscriberExt as _;

async fn serve(app: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

/// Tracing to `receiver` for the whole test process (the services' requests run on every worker
/// thread; each test is its own process).
fn traced(receiver: &ZipkinReceiver, service: &'static str, sampler: Sampler) -> prodready_tracing::Guard {
    let mut options = prodready_tracing::Options::new(service);
    options.exporter = prodready_tracing::Exporter::Zipkin { endpoint: receiver.url() };
    options.sampler = sampler;
    let guard = prodready_tracing::init(&options).unwrap();
    let subscriber = tracing_subscriber::registry().with(guard.layer(service));
    tracing::subscriber::set_global_default(subscriber).unwrap();
    guard
}

/// B serves `/stock/{item}`; A serves `/order/{item}`, which asks B inside a client span carrying the
/// trace context, and `/fail` (a 500). Returns A's base URL.
async fn two_services() -> String {
    let b =
        serve(axum::Router::new().route("/stock/{item}", get(|| async { "12" })).layer(ServerLayer)).await;
    let client = reqwest::Client::new();
    serve(
        axum::Router::new()
            .route(
                "/order/{item}",
                get(move || {
                    let (client, b) = (client.clone(), b.clone());
                    async move {
                        let span =
                            tracing::info_span!("GET /stock", otel.kind = "client", otel.name = "GET /stock");
                        async {
                            let mut headers = http::HeaderMap::new();
                            prodready_tracing::inject(&mut headers);
                            let reply = client.get(format!("{b}/stock/7")).headers(headers).send().await;
                            reply.unwrap().text().await.unwrap()
                        }
                        .instrument(span)
                        .await
                    }
                }),
            )
            .route("/fail", get(|| async { (http::StatusCode::INTERNAL_SERVER_ERROR, "boom") }))
            .layer(ServerLayer),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_through_two_services_is_one_trace() {
    let receiver = ZipkinReceiver::start();
    let guard = traced(&receiver, "two-services", Sampler::ParentBasedRatio(1.0));
    let a = two_services().await;
    // A caller's own trace context, as a gateway would send it.
    let parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let body = reqwest::Client::new()
        .get(format!("{a}/order/7"))
        .header("traceparent", parent)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(body, "12");
    reqwest::get(format!("{a}/fail")).await.unwrap();
    tokio::task::spawn_blocking(move || drop(guard)).await.unwrap();

    let spans = receiver.wait_for(4, Duration::from_secs(5));
    assert!(receiver.rejected().is_empty(), "{:?}", receiver.rejected());
    let named = |name: &str| {
        spans
            .iter()
            .find(|s| s["name"] == name)
            .unwrap_or_else(|| panic!("no span {name} in {spans:#?}"))
            .clone()
    };
    let a_server = named("GET /order/{item}");
    let a_client = named("GET /stock");
    let b_server = named("GET /stock/{item}");
    for span in [&a_server, &a_client, &b_server] {
        assert_eq!(span["traceId"], "4bf92f3577b34da6a3ce929d0e0e4736", "{span}");
    }
    assert_eq!(a_server["parentId"], "00f067aa0ba902b7");
    assert_eq!(a_client["parentId"], a_server["id"]);
    assert_eq!(b_server["parentId"], a_client["id"]);
    assert_eq!(a_server["kind"], "SERVER");
    assert_eq!(a_client["kind"], "CLIENT");
    assert_eq!(b_server["tags"]["http.route"], "/stock/{item}");
    assert_eq!(b_server["tags"]["http.response.status_code"], "200");
    assert_eq!(a_server["tags"]["http.request.method"], "GET");
    let failed = named("GET /fail");
    assert_eq!(failed["tags"]["otel.status_code"], "ERROR", "{failed}");
    assert_eq!(failed["tags"]["http.response.status_code"], "500");
}

/// Parent-based ratio sampling decides once, at the root, and the decision crosses the hop in
/// `traceparent`'s flags: of 1,000 requests through A and B at ratio 0.1, B records exactly the traces A
/// kept (B's own ratio never applies to a remote parent), so no kept trace lacks its B half and no B
/// span is an orphan.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parent_based_sampling_holds_across_the_http_hop() {
    let receiver = ZipkinReceiver::start();
    let guard = traced(&receiver, "sampled-services", Sampler::ParentBasedRatio(0.1));
    let a = two_services().await;
    let caller = reqwest::Client::new();
    for _ in 0..1000 {
        let body = caller.get(format!("{a}/order/7")).send().await.unwrap().text().await.unwrap();
        assert_eq!(body, "12");
    }
    tokio::task::spawn_blocking(move || drop(guard)).await.unwrap();

    let spans = receiver.spans();
    assert!(receiver.rejected().is_empty(), "{:?}", receiver.rejected());
    let of = |name: &str| spans.iter().filter(|s| s["name"] == name).collect::<Vec<_>>();
    let (a_servers, a_clients, b_servers) =
        (of("GET /order/{item}"), of("GET /stock"), of("GET /stock/{item}"));
    let kept = a_servers.len();
    assert!((40..=200).contains(&kept), "{kept} of 1000 traces kept at ratio 0.1");
    assert!(a_servers.iter().all(|s| s.get("parentId").is_none()), "A's server spans are the roots");
    assert_eq!((a_clients.len(), b_servers.len()), (kept, kept), "every kept trace whole, and only those");
    let ids = |list: &[&serde_json::Value], key: &str| -> std::collections::HashSet<String> {
        list.iter().map(|s| s[key].as_str().unwrap_or_default().to_owned()).collect()
    };
    let traces = ids(&a_servers, "traceId");
    assert_eq!(traces.len(), kept, "one root per trace");
    assert_eq!(ids(&b_servers, "traceId"), traces, "B recorded exactly the traces A kept");
    assert_eq!(ids(&b_servers, "parentId"), ids(&a_clients, "id"), "each B span's parent is A's client span");
    assert_eq!(ids(&a_clients, "parentId"), ids(&a_servers, "id"));
}
