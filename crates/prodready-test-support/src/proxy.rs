//! [`Proxy`]: a loopback HTTP proxy in front of a real peer (moto, say) that records every request and
//! can answer some of them itself, to inject faults the peer cannot produce (throttling, 5xx).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// Decides, by request number (0-based), whether the proxy answers itself: `Some((status, body))`.
pub type Intercept = dyn Fn(usize) -> Option<(u16, String)> + Send + Sync;

/// A forwarding proxy. Runs on the caller's tokio runtime (start it inside one).
pub struct Proxy {
    url: String,
    targets: Arc<Mutex<Vec<String>>>,
    intercepted: Arc<AtomicUsize>,
}

impl std::fmt::Debug for Proxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Proxy").field("url", &self.url).finish_non_exhaustive()
    }
}

impl Proxy {
    /// Forwards everything to `upstream`.
    pub async fn start(upstream: String) -> Self {
        Self::intercepting(upstream, |_| None).await
    }

    /// Forwards to `upstream` unless `intercept` answers first.
    pub async fn intercepting(
        upstream: String,
        intercept: impl Fn(usize) -> Option<(u16, String)> + Send + Sync + 'static,
    ) -> Self {
        let intercept: Arc<Intercept> = Arc::new(intercept);
        let targets = Arc::new(Mutex::new(Vec::new()));
        let intercepted = Arc::new(AtomicUsize::new(0));
        let count = Arc::new(AtomicUsize::new(0));
        let http = reqwest::Client::new();
        let app = {
            let (targets, intercepted) = (targets.clone(), intercepted.clone());
            axum::Router::new().fallback(move |request: axum::extract::Request| {
                let (http, upstream, targets, intercepted, count, intercept) = (
                    http.clone(),
                    upstream.clone(),
                    targets.clone(),
                    intercepted.clone(),
                    count.clone(),
                    intercept.clone(),
                );
                async move {
                    forward(request, &http, &upstream, &targets, &intercepted, &count, &*intercept).await
                }
            })
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind the proxy");
        let addr = listener.local_addr().expect("the proxy's address");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { url: format!("http://{addr}"), targets, intercepted }
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The AWS JSON-protocol operations seen so far (the last part of `X-Amz-Target`), then forgets them.
    pub fn take_operations(&self) -> Vec<String> {
        std::mem::take(&mut *self.targets.lock().expect("proxy lock"))
    }

    /// Requests the proxy answered itself.
    pub fn intercepted(&self) -> usize {
        self.intercepted.load(Ordering::SeqCst)
    }
}

async fn forward(
    request: axum::extract::Request,
    http: &reqwest::Client,
    upstream: &str,
    targets: &Mutex<Vec<String>>,
    intercepted: &AtomicUsize,
    count: &AtomicUsize,
    intercept: &Intercept,
) -> axum::response::Response {
    let number = count.fetch_add(1, Ordering::SeqCst);
    if let Some(target) = request.headers().get("x-amz-target").and_then(|v| v.to_str().ok()) {
        let operation = target.rsplit('.').next().unwrap_or(target).to_owned();
        targets.lock().expect("proxy lock").push(operation);
    }
    let respond = |status: u16, body: axum::body::Body| {
        axum::http::Response::builder().status(status).body(body).expect("a response")
    };
    if let Some((status, body)) = intercept(number) {
        intercepted.fetch_add(1, Ordering::SeqCst);
        return respond(status, body.into());
    }
    let (parts, body) = request.into_parts();
    let Ok(body) = axum::body::to_bytes(body, usize::MAX).await else {
        return respond(400, "unreadable request body".into());
    };
    let url = format!("{upstream}{}", parts.uri.path_and_query().map_or("/", |p| p.as_str()));
    let mut outgoing = http.request(parts.method.clone(), url).body(body);
    for (name, value) in &parts.headers {
        if name != "host" && name != "content-length" {
            outgoing = outgoing.header(name, value);
        }
    }
    let Ok(answer) = outgoing.send().await else {
        return respond(502, "upstream unreachable".into());
    };
    let mut response = axum::http::Response::builder().status(answer.status().as_u16());
    for (name, value) in answer.headers() {
        if name != "transfer-encoding" && name != "content-length" {
            response = response.header(name, value);
        }
    }
    let body = answer.bytes().await.unwrap_or_default();
    response.body(body.into()).expect("a response")
}
