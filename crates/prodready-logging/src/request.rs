//! [`RequestLogLayer`]: one log line per HTTP request, for axum, hyper and any tower service.
//!
//! - `x-request-id`: kept when the client sent a sane one (1 to 128 visible ASCII characters), generated
//!   (UUID v4) otherwise; set on the request (handlers see it, also as the [`RequestId`] extension), on
//!   the response, and as the `request_id` field of a `request` span around the handler, so every event
//!   the handler logs carries it.
//! - The line is written when the response body ends (or is dropped, with `aborted=true`): method, route
//!   (axum's matched path, never the raw path, when the `axum` feature is on), path with sensitive query
//!   parameters redacted, status, latency, bytes sent, user agent and client address. The level follows
//!   the status class: 5xx `error`, 4xx `warn`, anything else `info`.
//! - Headers with secret-looking names (`Authorization`, `Proxy-Authorization`, `Cookie`, `Set-Cookie`,
//!   `X-Api-Key`...) are always shown as `[REDACTED]` when asked to log headers; query parameters such as
//!   `token` and `password` likewise (the one list is `prodready_stdx::redact::is_secret_name`).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Buf as _;
use http::{HeaderName, HeaderValue, Request, Response};
use http_body::{Body, Frame};

/// The request id of the current request, in the request's extensions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(pub String);

const REDACTED: &str = prodready_stdx::redact::MASK;

type RouteFn = dyn Fn(&http::Extensions) -> Option<String> + Send + Sync;

/// The request-logging layer. `RequestLogLayer::default()` suits most services.
#[derive(Clone)]
pub struct RequestLogLayer {
    options: Arc<Options>,
}

struct Options {
    header: HeaderName,
    redact_query: Vec<String>,
    log_headers: Vec<HeaderName>,
    route: Option<Arc<RouteFn>>,
}

impl std::fmt::Debug for RequestLogLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestLogLayer")
            .field("header", &self.options.header)
            .field("redact_query", &self.options.redact_query)
            .field("log_headers", &self.options.log_headers)
            .finish_non_exhaustive()
    }
}

impl Default for RequestLogLayer {
    fn default() -> Self {
        Self {
            options: Arc::new(Options {
                header: HeaderName::from_static("x-request-id"),
                // Secret-looking names (`token`, `password`, `api_key`, `code`...) are always masked.
                redact_query: Vec::new(),
                log_headers: Vec::new(),
                route: None,
            }),
        }
    }
}

impl RequestLogLayer {
    pub fn new() -> Self {
        Self::default()
    }

    fn options_mut(&mut self) -> &mut Options {
        Arc::get_mut(&mut self.options).expect("the layer is configured before it is cloned")
    }

    /// Also redact this query parameter (case-insensitive).
    pub fn redact_query_param(mut self, name: &str) -> Self {
        self.options_mut().redact_query.push(name.to_ascii_lowercase());
        self
    }

    /// Log this request header (sensitive ones show as `[REDACTED]`).
    pub fn log_header(mut self, name: HeaderName) -> Self {
        self.options_mut().log_headers.push(name);
        self
    }

    /// Use another request-id header than `x-request-id`.
    pub fn request_id_header(mut self, name: HeaderName) -> Self {
        self.options_mut().header = name;
        self
    }

    /// How to name the route from the request's extensions (axum's `MatchedPath` by default with the
    /// `axum` feature). Never return the raw path: its cardinality is unbounded.
    pub fn route_with(
        mut self,
        route: impl Fn(&http::Extensions) -> Option<String> + Send + Sync + 'static,
    ) -> Self {
        self.options_mut().route = Some(Arc::new(route));
        self
    }
}

impl<S> tower_layer::Layer<S> for RequestLogLayer {
    type Service = RequestLog<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequestLog { inner, options: self.options.clone() }
    }
}

/// The service [`RequestLogLayer`] wraps around yours.
#[derive(Clone)]
pub struct RequestLog<S> {
    inner: S,
    options: Arc<Options>,
}

impl<S> std::fmt::Debug for RequestLog<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestLog").finish_non_exhaustive()
    }
}

/// What the line will say about the request.
struct Info {
    method: String,
    route: String,
    path: String,
    user_agent: String,
    client_ip: String,
    headers: String,
    start: Instant,
    span: tracing::Span,
}

fn valid_request_id(value: &HeaderValue) -> Option<String> {
    let text = value.to_str().ok()?;
    (!text.is_empty() && text.len() <= 128 && text.bytes().all(|b| b.is_ascii_graphic()))
        .then(|| text.to_owned())
}

/// `path?query` with the values of secret-looking parameters (and of those configured) masked.
pub(crate) fn redact_path(uri: &http::Uri, also: &[String]) -> String {
    match uri.query() {
        Some(query) => format!("{}?{}", uri.path(), prodready_stdx::redact::query(query, also)),
        None => uri.path().to_owned(),
    }
}

fn default_route(_extensions: &http::Extensions) -> Option<String> {
    #[cfg(feature = "axum")]
    {
        _extensions.get::<axum::extract::MatchedPath>().map(|m| m.as_str().to_owned())
    }
    #[cfg(not(feature = "axum"))]
    {
        None
    }
}

fn client_ip(_extensions: &http::Extensions) -> String {
    #[cfg(feature = "axum")]
    {
        if let Some(info) = _extensions.get::<axum::extract::ConnectInfo<std::net::SocketAddr>>() {
            return info.0.ip().to_string();
        }
    }
    String::new()
}

impl<S, B, RB> tower_service::Service<Request<B>> for RequestLog<S>
where
    S: tower_service::Service<Request<B>, Response = Response<RB>>,
    S::Error: std::fmt::Display,
    RB: Body,
{
    type Response = Response<LoggedBody<RB>>;
    type Error = S::Error;
    type Future = RequestLogFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        let options = &self.options;
        let id = request
            .headers()
            .get(&options.header)
            .and_then(valid_request_id)
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        if let Ok(value) = HeaderValue::from_str(&id) {
            request.headers_mut().insert(options.header.clone(), value);
        }
        request.extensions_mut().insert(RequestId(id.clone()));
        let route = match &options.route {
            Some(route) => route(request.extensions()),
            None => default_route(request.extensions()),
        }
        .unwrap_or_default();
        let span =
            tracing::info_span!("request", request_id = %id, method = %request.method(), route = %route);
        let headers = options
            .log_headers
            .iter()
            .filter_map(|name| {
                let value = request.headers().get(name)?;
                let shown = if prodready_stdx::redact::is_secret_name(name.as_str()) {
                    REDACTED.to_owned()
                } else {
                    String::from_utf8_lossy(value.as_bytes()).into_owned()
                };
                Some(format!("{name}: {shown}"))
            })
            .collect::<Vec<_>>()
            .join("; ");
        let info = Info {
            method: request.method().to_string(),
            route,
            path: redact_path(request.uri(), &options.redact_query),
            user_agent: request
                .headers()
                .get(http::header::USER_AGENT)
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                .unwrap_or_default(),
            client_ip: client_ip(request.extensions()),
            headers,
            start: Instant::now(),
            span: span.clone(),
        };
        let future = {
            let _entered = span.enter();
            self.inner.call(request)
        };
        RequestLogFuture { inner: future, info: Some(info), header: options.header.clone(), id }
    }
}

pin_project_lite::pin_project! {
    /// The response future of [`RequestLog`].
    pub struct RequestLogFuture<F> {
        #[pin]
        inner: F,
        info: Option<Info>,
        header: HeaderName,
        id: String,
    }

    impl<F> PinnedDrop for RequestLogFuture<F> {
        fn drop(this: Pin<&mut Self>) {
            // Dropped before the handler answered: the client went away, a timeout fired, or the handler
            // panicked. Still one line, as nginx does with 499.
            if let Some(info) = this.project().info.take() {
                Pending { info, status: 499, bytes: 0, done: false }.log(None);
            }
        }
    }
}

impl<F, RB, E> Future for RequestLogFuture<F>
where
    F: Future<Output = Result<Response<RB>, E>>,
    E: std::fmt::Display,
    RB: Body,
{
    type Output = Result<Response<LoggedBody<RB>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = {
            let _entered = this.info.as_ref().map(|i| i.span.enter());
            std::task::ready!(this.inner.poll(cx))
        };
        let Some(info) = this.info.take() else {
            // Polled after completion: a contract violation by the caller; answer as the inner did.
            return Poll::Ready(result.map(|r| r.map(|inner| LoggedBody { inner, pending: None })));
        };
        Poll::Ready(match result {
            Ok(response) => {
                let (mut parts, inner) = response.into_parts();
                if let Ok(value) = HeaderValue::from_str(this.id) {
                    parts.headers.insert(this.header.clone(), value);
                }
                let status = parts.status.as_u16();
                let mut pending = Pending { info, status, bytes: 0, done: false };
                // An empty body may never be polled: the server sees `is_end_stream` and drops it.
                let pending = if inner.is_end_stream() {
                    pending.done = true;
                    pending.log(None);
                    None
                } else {
                    Some(pending)
                };
                Ok(Response::from_parts(parts, LoggedBody { inner, pending }))
            }
            Err(err) => {
                let pending = Pending { info, status: 500, bytes: 0, done: true };
                pending.log(Some(&err.to_string()));
                Err(err)
            }
        })
    }
}

/// The line still to write; written on end of body, or on drop (an aborted response).
struct Pending {
    info: Info,
    status: u16,
    bytes: u64,
    done: bool,
}

impl Pending {
    fn log(&self, error: Option<&str>) {
        let i = &self.info;
        let latency_ms = i.start.elapsed().as_secs_f64() * 1000.0;
        let aborted = !self.done;
        i.span.in_scope(|| {
            macro_rules! line {
                ($level:expr) => {
                    tracing::event!(
                        $level,
                        method = %i.method,
                        route = %i.route,
                        path = %i.path,
                        status = self.status,
                        latency_ms,
                        bytes = self.bytes,
                        user_agent = %i.user_agent,
                        client_ip = %i.client_ip,
                        headers = %i.headers,
                        aborted,
                        error = error.unwrap_or(""),
                        "request"
                    )
                };
            }
            match self.status {
                500.. => line!(tracing::Level::ERROR),
                400..=499 => line!(tracing::Level::WARN),
                _ => line!(tracing::Level::INFO),
            }
        });
    }
}

pin_project_lite::pin_project! {
    /// A response body that counts its bytes and writes the request's line when it ends (or, dropped
    /// early, with `aborted=true`).
    pub struct LoggedBody<B> {
        #[pin]
        inner: B,
        pending: Option<Pending>,
    }

    impl<B> PinnedDrop for LoggedBody<B> {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            if let Some(pending) = this.pending.take() {
                pending.log(None);
            }
        }
    }
}

impl<B: Body> Body for LoggedBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let mut this = self.project();
        let frame = std::task::ready!(this.inner.as_mut().poll_frame(cx));
        match &frame {
            Some(Ok(frame)) => {
                if let (Some(data), Some(pending)) = (frame.data_ref(), this.pending.as_mut()) {
                    pending.bytes += data.remaining() as u64;
                }
                if this.inner.is_end_stream()
                    && let Some(mut pending) = this.pending.take()
                {
                    pending.done = true;
                    pending.log(None);
                }
            }
            None => {
                if let Some(mut pending) = this.pending.take() {
                    pending.done = true;
                    pending.log(None);
                }
            }
            Some(Err(_)) => {}
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}
