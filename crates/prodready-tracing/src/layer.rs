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

fn route_of<B>(request: &http::Request<B>) -> Option<&str> {
    #[cfg(feature = "axum")]
    if let Some(path) = request.extensions().get::<axum::extract::MatchedPath>() {
        return Some(path.as_str());
    }
    let _ = request;
    None
}

/// `METHOD route`, or the method alone, written straight into the span's name.
struct SpanName<'a> {
    method: &'a str,
    route: Option<&'a str>,
}

impl std::fmt::Display for SpanName<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.route {
            Some(route) => write!(f, "{} {route}", self.method),
            None => f.write_str(self.method),
        }
    }
}

/// `server.address` and `server.port` from a `Host` header (`host`, `host:port`, `[v6]:port`).
fn host_and_port(host: &str) -> (&str, Option<u16>) {
    match host.rsplit_once(':') {
        Some((name, port)) if !name.is_empty() && (!name.contains(':') || name.ends_with(']')) => {
            match port.parse() {
                Ok(port) => (name.trim_start_matches('[').trim_end_matches(']'), Some(port)),
                Err(_) => (host, None),
            }
        }
        _ => (host.trim_start_matches('[').trim_end_matches(']'), None),
    }
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
        // Everything is borrowed from the request until the span exists: no copies per request.
        let method = request.method().as_str();
        let route = route_of(&request);
        let header = |h: http::header::HeaderName| request.headers().get(h).and_then(|v| v.to_str().ok());
        // `server.address` is the host alone; the Host header's port goes to `server.port`.
        let (address, port) = match header(http::header::HOST) {
            Some(host) => {
                let (address, port) = host_and_port(host);
                (Some(address), port)
            }
            None => (None, None),
        };
        let span = tracing::info_span!(
            "HTTP request",
            otel.name = %SpanName { method, route },
            otel.kind = "server",
            http.request.method = method,
            url.path = request.uri().path(),
            url.scheme = request.uri().scheme_str().unwrap_or("http"),
            http.route = route,
            server.address = address,
            server.port = port.map(i64::from),
            user_agent.original = header(http::header::USER_AGENT),
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
                        // An integer, as the conventions say (tracing-opentelemetry makes a u16 a string).
                        recorded.record("http.response.status_code", i64::from(status.as_u16()));
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
            server.port = uri.port_u16().map(i64::from),
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
                        recorded.record("http.response.status_code", i64::from(status.as_u16()));
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

#[cfg(test)]
mod tests {
    #[track_caller]
    fn check(host: &str, expected: (&str, Option<u16>)) {
        assert_eq!(super::host_and_port(host), expected, "Host: {host}");
    }

    #[test]
    fn host_header_splits_into_address_and_port() {
        check("example.com", ("example.com", None));
        check("example.com:8080", ("example.com", Some(8080)));
        check("127.0.0.1:3000", ("127.0.0.1", Some(3000)));
        check("[::1]:8080", ("::1", Some(8080)));
        check("[::1]", ("::1", None));
        check("::1", ("::1", None));
        check("example.com:http", ("example.com:http", None));
        check("example.com:99999", ("example.com:99999", None));
    }
}
