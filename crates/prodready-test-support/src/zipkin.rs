//! A Zipkin v2 receiver (Zipkin itself does not install here). It follows Zipkin's published v2 API
//! (`zipkin2-api.yaml` of openzipkin/zipkin-api, and the checks of Zipkin's own JSON decoder):
//!
//! - `POST /api/v2/spans` with a JSON array of spans (`Content-Type` `application/json` or none); an
//!   empty array is fine. 202 with an empty body when every span holds, 400 naming the first problem
//!   otherwise (nothing of that post is kept), 415 for Zipkin's other encodings (protobuf, thrift).
//! - Each span: `traceId` (16 or 32 lower-case hex, not all zeros) and `id` (16 lower-case hex, not all
//!   zeros) required; `parentId` 16 lower-case hex; `name` a string; `kind` one of CLIENT, SERVER,
//!   PRODUCER, CONSUMER; `timestamp` an integer (epoch microseconds); `duration` an integer of
//!   microseconds, at least 1; `debug` and `shared` booleans; `localEndpoint`/`remoteEndpoint` objects
//!   with a string `serviceName`, `ipv4` and `ipv6` the text of such an address, `port` 0–65535;
//!   `annotations` an array of `{timestamp, value}` (an integer and a string); `tags` an object of
//!   strings. Other fields are ignored, as Zipkin does.
//! - Failure injection ([`ZipkinAnswer`]): answer every post with a status (500, 503...), or never
//!   answer (the request is held until the receiver stops), for exporters' failure paths.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

/// How the receiver answers `POST /api/v2/spans`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ZipkinAnswer {
    /// Check the spans: 202 and keep them when all hold, 400 with the reason otherwise.
    Validate,
    /// Answer every post with this status, spans unread (a collector in trouble).
    Status(u16),
    /// Never answer: the request is held open until the receiver stops (a collector that hangs).
    Never,
}

#[derive(Default)]
struct Stored {
    spans: Vec<Value>,
    rejected: Vec<String>,
    posts: usize,
}

struct Shared {
    stored: Mutex<Stored>,
    answer: Mutex<ZipkinAnswer>,
    /// Turns true when the receiver stops, releasing held requests.
    stopping: tokio::sync::watch::Sender<bool>,
}

/// The receiver, on a free loopback port with its own thread and runtime. Stops on drop.
pub struct ZipkinReceiver {
    port: u16,
    shared: Arc<Shared>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for ZipkinReceiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ZipkinReceiver").field("port", &self.port).finish_non_exhaustive()
    }
}

impl ZipkinReceiver {
    /// A receiver that checks and keeps spans.
    pub fn start() -> Self {
        Self::answering(ZipkinAnswer::Validate)
    }

    /// A receiver that answers every post as `answer` says.
    pub fn answering(answer: ZipkinAnswer) -> Self {
        let shared = Arc::new(Shared {
            stored: Mutex::new(Stored::default()),
            answer: Mutex::new(answer),
            stopping: tokio::sync::watch::channel(false).0,
        });
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind the Zipkin receiver");
        listener.set_nonblocking(true).expect("a non-blocking listener");
        let port = listener.local_addr().expect("the receiver's address").port();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let app = axum::Router::new()
            .route("/api/v2/spans", axum::routing::post(post_spans))
            .route("/health", axum::routing::get(|| async { "UP" }))
            .with_state(shared.clone());
        let thread = crate::loki::serve_on_thread("zipkin-receiver", listener, app, stopped);
        Self { port, shared, stop: Some(stop), thread: Some(thread) }
    }

    /// How posts are answered from now on.
    pub fn set_answer(&self, answer: ZipkinAnswer) {
        *self.shared.answer.lock().expect("answer lock") = answer;
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The spans URL, `http://127.0.0.1:PORT/api/v2/spans`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/api/v2/spans", self.port)
    }

    /// Every accepted span, in arrival order.
    pub fn spans(&self) -> Vec<Value> {
        self.shared.stored.lock().expect("store lock").spans.clone()
    }

    /// Why posts were refused (the text of each 400), in order.
    pub fn rejected(&self) -> Vec<String> {
        self.shared.stored.lock().expect("store lock").rejected.clone()
    }

    /// How many posts to `/api/v2/spans` arrived (whatever they were answered, or not answered).
    pub fn posts(&self) -> usize {
        self.shared.stored.lock().expect("store lock").posts
    }

    /// Waits until at least `n` spans were accepted (or `within` passed) and returns them all.
    pub fn wait_for(&self, n: usize, within: Duration) -> Vec<Value> {
        let deadline = Instant::now() + within;
        while self.spans().len() < n && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        self.spans()
    }

    /// The receiver's checks on one span, for a span built without a network hop.
    pub fn check(span: &Value) -> Result<(), String> {
        check_span(span)
    }
}

impl Drop for ZipkinReceiver {
    fn drop(&mut self) {
        // Release held requests first: the server's graceful shutdown waits for them.
        self.shared.stopping.send_replace(true);
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn post_spans(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    shared.stored.lock().expect("store lock").posts += 1;
    let answer = *shared.answer.lock().expect("answer lock");
    match answer {
        ZipkinAnswer::Validate => {}
        ZipkinAnswer::Status(status) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            return (status, "injected failure").into_response();
        }
        ZipkinAnswer::Never => {
            let mut stopping = shared.stopping.subscribe();
            let _ = stopping.wait_for(|stopping| *stopping).await;
            return (StatusCode::SERVICE_UNAVAILABLE, "stopping").into_response();
        }
    }
    let content_type =
        headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_ascii_lowercase();
    if content_type.starts_with("application/x-protobuf") || content_type.starts_with("application/x-thrift")
    {
        return (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("this receiver reads JSON only, not {content_type}"),
        )
            .into_response();
    }
    match check_spans(&body) {
        Ok(spans) => {
            shared.stored.lock().expect("store lock").spans.extend(spans);
            StatusCode::ACCEPTED.into_response()
        }
        Err(problem) => {
            shared.stored.lock().expect("store lock").rejected.push(problem.clone());
            (StatusCode::BAD_REQUEST, problem).into_response()
        }
    }
}

fn check_spans(body: &[u8]) -> Result<Vec<Value>, String> {
    let spans: Vec<Value> =
        serde_json::from_slice(body).map_err(|e| format!("the body is not a JSON array of spans: {e}"))?;
    for (i, span) in spans.iter().enumerate() {
        check_span(span).map_err(|problem| format!("span {i}: {problem}\n{span}"))?;
    }
    Ok(spans)
}

/// Lower-case hex, 16 characters (or 32 when `wide` is allowed), not all zeros.
fn hex_id(value: &Value, field: &str, wide: bool) -> Result<(), String> {
    let Some(s) = value.as_str() else {
        return Err(format!("{field} must be a string"));
    };
    if !(s.len() == 16 || (wide && s.len() == 32)) {
        let lengths = if wide { "16 or 32" } else { "16" };
        return Err(format!("{field} must be {lengths} hex characters, not {}", s.len()));
    }
    if !s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        return Err(format!("{field} should be lower-hex encoded with no prefix"));
    }
    if s.bytes().all(|b| b == b'0') {
        return Err(format!("{field} is all zeros"));
    }
    Ok(())
}

fn integer(value: &Value, field: &str) -> Result<u64, String> {
    value.as_u64().ok_or_else(|| format!("{field} must be a non-negative integer of microseconds"))
}

fn check_endpoint(endpoint: &Value, field: &str) -> Result<(), String> {
    let Some(endpoint) = endpoint.as_object() else {
        return Err(format!("{field} must be an object"));
    };
    if endpoint.get("serviceName").is_some_and(|s| !s.is_string()) {
        return Err(format!("{field}.serviceName must be a string"));
    }
    if let Some(ip) = endpoint.get("ipv4")
        && ip.as_str().and_then(|ip| ip.parse::<std::net::Ipv4Addr>().ok()).is_none()
    {
        return Err(format!("{field}.ipv4 must be the text of an IPv4 address, not {ip}"));
    }
    if let Some(ip) = endpoint.get("ipv6")
        && ip.as_str().and_then(|ip| ip.parse::<std::net::Ipv6Addr>().ok()).is_none()
    {
        return Err(format!("{field}.ipv6 must be the text of an IPv6 address, not {ip}"));
    }
    if let Some(port) = endpoint.get("port")
        && port.as_u64().and_then(|p| u16::try_from(p).ok()).is_none()
    {
        return Err(format!("{field}.port must be an integer from 0 to 65535, not {port}"));
    }
    Ok(())
}

fn check_span(span: &Value) -> Result<(), String> {
    let Some(object) = span.as_object() else {
        return Err("a span must be a JSON object".to_owned());
    };
    let field = |k: &str| object.get(k).filter(|v| !v.is_null());
    hex_id(field("traceId").ok_or("traceId is required")?, "traceId", true)?;
    hex_id(field("id").ok_or("id is required")?, "id", false)?;
    if let Some(parent) = field("parentId") {
        hex_id(parent, "parentId", false)?;
    }
    if field("name").is_some_and(|n| !n.is_string()) {
        return Err("name must be a string".to_owned());
    }
    if let Some(kind) = field("kind")
        && !matches!(kind.as_str(), Some("CLIENT" | "SERVER" | "PRODUCER" | "CONSUMER"))
    {
        return Err(format!("kind must be CLIENT, SERVER, PRODUCER or CONSUMER, not {kind}"));
    }
    if let Some(timestamp) = field("timestamp") {
        integer(timestamp, "timestamp")?;
    }
    if let Some(duration) = field("duration")
        && integer(duration, "duration")? < 1
    {
        return Err("duration must be at least 1 microsecond".to_owned());
    }
    for flag in ["debug", "shared"] {
        if field(flag).is_some_and(|f| !f.is_boolean()) {
            return Err(format!("{flag} must be a boolean"));
        }
    }
    for endpoint in ["localEndpoint", "remoteEndpoint"] {
        if let Some(e) = field(endpoint) {
            check_endpoint(e, endpoint)?;
        }
    }
    if let Some(annotations) = field("annotations") {
        let Some(annotations) = annotations.as_array() else {
            return Err("annotations must be an array".to_owned());
        };
        for annotation in annotations {
            let ok = annotation.get("timestamp").is_some_and(|t| t.as_u64().is_some())
                && annotation.get("value").is_some_and(Value::is_string);
            if !ok {
                return Err(format!(
                    "an annotation must be {{\"timestamp\": microseconds, \"value\": string}}, not {annotation}"
                ));
            }
        }
    }
    if let Some(tags) = field("tags") {
        let Some(tags) = tags.as_object() else {
            return Err("tags must be an object".to_owned());
        };
        if let Some((key, value)) = tags.iter().find(|(_, v)| !v.is_string()) {
            return Err(format!("tag {key} must be a string, not {value}"));
        }
    }
    Ok(())
}
