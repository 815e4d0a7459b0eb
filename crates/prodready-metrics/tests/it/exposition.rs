use prodready_metrics::exposition::{self, CONTENT_TYPE, TEXT_CONTENT_TYPE};
use prodready_test_support::instrumented_service;

#[tokio::test]
async fn the_layer_records_requests_by_matched_route_and_status_class() {
    let addr = instrumented_service().await;
    let http = reqwest::Client::new();
    for path in ["/orders/1", "/orders/2", "/fail", "/nowhere"] {
        http.get(format!("http://{addr}{path}")).send().await.unwrap();
    }
    let response = http
        .get(format!("http://{addr}/metrics"))
        .header("accept", "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["content-type"], CONTENT_TYPE);
    let body = response.text().await.unwrap();
    let line = |needle: &str| {
        body.lines()
            .find(|l| l.starts_with(needle))
            .unwrap_or_else(|| panic!("{needle} missing:\n{body}"))
            .to_owned()
    };
    assert!(line(r#"http_requests_total{method="GET",route="/orders/{id}",status="2xx"}"#).ends_with(" 2"));
    assert!(line(r#"http_requests_total{method="GET",route="/fail",status="5xx"}"#).ends_with(" 1"));
    assert!(
        line(r#"http_request_duration_seconds_count{method="GET",route="/fail",status="5xx"}"#)
            .ends_with(" 1")
    );
    assert!(!body.contains("/orders/1") && !body.contains("/nowhere"), "raw paths never become labels");
    assert!(line("process_cpu_seconds_total ").len() > "process_cpu_seconds_total ".len());
    assert!(line("process_open_fds ").len() > 17);
    assert!(body.ends_with("# EOF\n"));
}

#[tokio::test]
async fn scrapers_that_do_not_ask_for_openmetrics_get_the_classic_format_and_promtool_accepts_it() {
    let addr = instrumented_service().await;
    let http = reqwest::Client::new();
    http.get(format!("http://{addr}/orders/1")).send().await.unwrap();
    for accept in [None, Some("text/plain;version=0.0.4"), Some("application/openmetrics-text;q=0, */*")] {
        let mut request = http.get(format!("http://{addr}/metrics"));
        if let Some(accept) = accept {
            request = request.header("accept", accept);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.headers()["content-type"], TEXT_CONTENT_TYPE, "{accept:?}");
        let body = response.text().await.unwrap();
        assert!(body.contains("# TYPE http_requests_total counter\n"), "{body}");
        assert!(body.contains("# TYPE process_cpu_seconds_total counter\n"), "{body}");
        assert!(!body.contains("# EOF"), "{body}");
        crate::promtool_check_metrics(&body);
    }
}

#[test]
fn negotiation_follows_the_accept_header() {
    use exposition::Format::{OpenMetrics, Text};
    let cases = [
        (None, Text),
        (Some(""), Text),
        (Some("*/*"), Text),
        (Some("text/plain"), Text),
        (Some("application/openmetrics-text; version=1.0.0; charset=utf-8"), OpenMetrics),
        (Some("text/plain;q=0.5, Application/OpenMetrics-Text;version=0.0.1"), OpenMetrics),
        (Some("application/openmetrics-text; q=0"), Text),
    ];
    for (accept, expected) in cases {
        assert_eq!(exposition::Format::negotiate(accept), expected, "{accept:?}");
    }
}

/// A service answering 200 at once.
#[derive(Clone)]
struct Ok200;

impl tower_service::Service<http::Request<()>> for Ok200 {
    type Response = http::Response<()>;
    type Error = std::convert::Infallible;
    type Future = std::future::Ready<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, _: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: http::Request<()>) -> Self::Future {
        std::future::ready(Ok(http::Response::new(())))
    }
}

#[tokio::test]
async fn latency_carries_the_trace_id_as_an_exemplar_in_openmetrics_only() {
    use tower_layer::Layer as _;
    use tower_service::Service as _;
    let mut registry = prometheus_client::registry::Registry::default();
    let layer = exposition::RedLayer::new(&mut registry, |_: &http::Request<()>| Some("/orders".to_owned()))
        .with_exemplars(|| Some("0af7651916cd43dd8448eb211c80319c".to_owned()));
    let mut service = layer.layer(Ok200);
    service.call(http::Request::new(())).await.unwrap();
    let openmetrics = exposition::encode(&registry);
    assert!(
        openmetrics.lines().any(|l| l.starts_with("http_request_duration_seconds_bucket")
            && l.contains("# {trace_id=\"0af7651916cd43dd8448eb211c80319c\"}")),
        "{openmetrics}"
    );
    let classic = exposition::encode_text(&registry);
    assert!(!classic.contains("trace_id"), "{classic}");
}
