//! Tower layers (feature `tower`): a server span per request, and context injected into outgoing
//! requests.
//!
//! [`ServerLayer`] extracts `traceparent`/`tracestate`/`baggage`, opens a `server` span named `METHOD
//! route` (the route from axum's `MatchedPath` when the `axum` feature is on, else the method alone)
//! with the HTTP semantic-convention attributes, and records the response status (5xx is an error). It
//! composes with the logging crate's request layer: put this one outside it and the request's log line
//! carries this span's trace id.
//!
//! [`ClientLayer`] opens a `client` span per outgoing request and injects its context, for hyper or any
//! tower HTTP client; with reqwest, call [`crate::inject`] on the request's headers inside a span.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use tracing::Instrument as _;
use tracing::field::Empty;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

/// A server span per request.
#[derive(Debug, Clone, Copy, Default)]
pub struct ServerLayer;

impl<S> tower_layer::Layer<S> for ServerLayer {
    type Service = ServerService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ServerService { inner }
    }
}

#[derive(Debug, Clone)]
pub struct ServerService<S> {
    inner: S,
}

fn route_of<B>(request: &http::Request<B>) -> Option<String> {
    #[cfg(feature = "axum")]
    if let Some(path) = request.extensions().get::<axum::extract::MatchedPath>() {
        return Some(path.as_str().to_owned());
    }
    let _ = request;
    None
}

impl<S, B, RB> tower_service::Service<http::Request<B>> for ServerService<S>
where
    S: tower_service::Service<http::Request<B>, Response = http::Response<RB>>,
    S::Future: Send + 'static,
    S::Error: std::fmt::Display,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let parent = crate::extract(request.headers());
        let method = request.method().as_str().to_owned();
        let route = route_of(&request);
        let name = match &route {
            Some(route) => format!("{method} {route}"),
            None => method.clone(),
        };
        let header = |h: http::header::HeaderName| {
            request.headers().get(h).and_then(|v| v.to_str().ok()).map(str::to_owned)
        };
        let span = tracing::info_span!(
            "HTTP request",
            otel.name = %name,
            otel.kind = "server",
            http.request.method = %method,
            url.path = %request.uri().path(),
            url.scheme = request.uri().scheme_str().unwrap_or("http"),
            http.route = route.as_deref(),
            server.address = header(http::header::HOST).as_deref(),
            user_agent.original = header(http::header::USER_AGENT).as_deref(),
            http.response.status_code = Empty,
            otel.status_code = Empty,
            error.type = Empty,
        );
        let _ = span.set_parent(parent);
        let future = {
            let _entered = span.enter();
            self.inner.call(request)
        };
        let recorded = span.clone();
        Box::pin(
            async move {
                let result = future.await;
                match &result {
                    Ok(response) => {
                        let status = response.status();
                        recorded.record("http.response.status_code", status.as_u16());
                        if status.is_server_error() {
                            recorded.record("otel.status_code", "ERROR");
                            recorded.record("error.type", status.as_str());
                        }
                    }
                    Err(e) => {
                        recorded.record("otel.status_code", "ERROR");
                        recorded.record("error.type", e.to_string().as_str());
                    }
                }
                result
            }
            .instrument(span),
        )
    }
}

/// A client span per outgoing request, its context injected into the request's headers.
#[derive(Debug, Clone, Copy, Default)]
pub struct ClientLayer;

impl<S> tower_layer::Layer<S> for ClientLayer {
    type Service = ClientService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ClientService { inner }
    }
}

#[derive(Debug, Clone)]
pub struct ClientService<S> {
    inner: S,
}

impl<S, B, RB> tower_service::Service<http::Request<B>> for ClientService<S>
where
    S: tower_service::Service<http::Request<B>, Response = http::Response<RB>>,
    S::Future: Send + 'static,
    S::Error: std::fmt::Display,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        let method = request.method().as_str().to_owned();
        let uri = request.uri().clone();
        let span = tracing::info_span!(
            "HTTP client request",
            otel.name = %method,
            otel.kind = "client",
            http.request.method = %method,
            url.full = %uri,
            server.address = uri.host(),
            server.port = uri.port_u16(),
            http.response.status_code = Empty,
            otel.status_code = Empty,
            error.type = Empty,
        );
        let future = {
            let _entered = span.enter();
            crate::inject(request.headers_mut());
            self.inner.call(request)
        };
        let recorded = span.clone();
        Box::pin(
            async move {
                let result = future.await;
                match &result {
                    Ok(response) => {
                        let status = response.status();
                        recorded.record("http.response.status_code", status.as_u16());
                        if status.is_client_error() || status.is_server_error() {
                            recorded.record("otel.status_code", "ERROR");
                            recorded.record("error.type", status.as_str());
                        }
                    }
                    Err(e) => {
                        recorded.record("otel.status_code", "ERROR");
                        recorded.record("error.type", e.to_string().as_str());
                    }
                }
                result
            }
            .instrument(span),
        )
    }
}
