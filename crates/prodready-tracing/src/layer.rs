//! Tower layers (feature `tower`): a server span per request, and context injected into outgoing
//! requests.
//!
//! [`ServerLayer`] extracts the W3C `traceparent`, `tracestate` and `baggage` whatever global
//! propagator is set (for another format, call [`crate::extract`] in your own layer), opens a `server`
//! span named `METHOD route` (the route from axum's `MatchedPath` when the `axum` feature is on, else the method alone)
//! with the HTTP semantic-convention attributes, and records the response status (5xx is an error). It
//! composes with the logging crate's request layer: put this one outside it and the request's log line
//! carries this span's trace id.
//!
//! [`ClientLayer`] opens a `client` span per outgoing request and injects its context, for hyper or any
//! tower HTTP client; with reqwest, call [`crate::inject`] on the request's headers inside a span.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

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
    S::Error: std::fmt::Display,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
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
        // With neither a `traceparent` nor a `baggage` header the span keeps its default parent (the
        // current span, or none).
        if let Some(parent) = crate::propagation::extract_w3c(request.headers()) {
            let _ = span.set_parent(parent);
        }
        let inner = {
            let _entered = span.enter();
            self.inner.call(request)
        };
        ResponseFuture { inner, span, client: false }
    }
}

pin_project_lite::pin_project! {
    /// The response of a [`ServerService`] or a [`ClientService`]: the inner future polled inside the
    /// request's span, the status recorded on it when the response comes (a 5xx, and for a client a 4xx
    /// too, is an error).
    #[derive(Debug)]
    pub struct ResponseFuture<F> {
        #[pin]
        inner: F,
        span: tracing::Span,
        client: bool,
    }
}

impl<F, RB, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<http::Response<RB>, E>>,
    E: std::fmt::Display,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let _entered = this.span.enter();
        let result = std::task::ready!(this.inner.poll(cx));
        match &result {
            Ok(response) => {
                let status = response.status();
                // An integer, as the conventions say (tracing-opentelemetry makes a u16 a string).
                this.span.record("http.response.status_code", i64::from(status.as_u16()));
                if status.is_server_error() || (*this.client && status.is_client_error()) {
                    this.span.record("otel.status_code", "ERROR");
                    this.span.record("error.type", status.as_str());
                }
            }
            Err(e) => {
                this.span.record("otel.status_code", "ERROR");
                this.span.record("error.type", e.to_string().as_str());
            }
        }
        Poll::Ready(result)
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
    S::Error: std::fmt::Display,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        let uri = request.uri();
        let span = tracing::info_span!(
            "HTTP client request",
            otel.name = request.method().as_str(),
            otel.kind = "client",
            http.request.method = request.method().as_str(),
            // Without the password of the user information and the values of secret-looking query
            // parameters (`token`, `signature`...), as the semantic conventions ask.
            url.full = prodready_stdx::redact::url(&uri.to_string()),
            server.address = uri.host(),
            server.port = uri.port_u16().map(i64::from),
            http.response.status_code = Empty,
            otel.status_code = Empty,
            error.type = Empty,
        );
        let inner = {
            let _entered = span.enter();
            crate::inject(request.headers_mut());
            self.inner.call(request)
        };
        ResponseFuture { inner, span, client: true }
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
