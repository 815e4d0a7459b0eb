//! A Loki-compatible receiver (Loki itself does not install here). It follows Loki's push API:
//!
//! - `POST /loki/api/v1/push`: `application/x-protobuf` bodies are raw (block) snappy of
//!   `logproto.PushRequest` (Content-Encoding empty or `snappy`); `application/json` bodies are
//!   `{"streams":[{"stream":{..},"values":[["ns","line",{meta}]]}]}`. 204 on success.
//! - 400 for a bad body, bad label names, more than 15 labels, a line over 256 KB, an entry more than
//!   1 h behind the newest of its stream, or older than 7 days; valid entries of the same push are kept,
//!   as Loki does. 415 for another content type or encoding.
//! - Failure injection: answer the next N pushes with a status (429, 500, ...), or every push.
//! - `GET /loki/api/v1/query_range` with `{name="value", ...}` selectors (`=`, `!=`) and `|=` / `!=`
//!   line filters, `start`, `end`, `limit`, `direction`.
//! - `GET /stats`: lines, distinct lines and duplicates (for benchmarks), `GET /ready`.
//!
//! Its protobuf decoding uses prodready-logging's message definitions; a test cross-checks those against
//! Python's protobuf runtime compiled from Loki's schema.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use prodready_logging::loki::{Labels, MAX_LABELS, MAX_LINE_BYTES, proto};
use prodready_metrics::exposition;
use prodready_metrics::prometheus_client::metrics::counter::ConstCounter;
use prodready_metrics::prometheus_client::registry::Registry;

/// One accepted entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedEntry {
    pub labels: BTreeMap<String, String>,
    pub timestamp_ns: i64,
    pub line: String,
    pub metadata: Vec<(String, String)>,
}

/// What to answer pushes with, before looking at them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// Accept (after validation).
    None,
    /// Answer the next `times` pushes with `status`.
    Next { status: u16, times: usize },
    /// Answer every push with `status`.
    Always(u16),
}

#[derive(Default)]
struct Stored {
    entries: Vec<ReceivedEntry>,
    /// Newest timestamp per stream, for the out-of-order window.
    newest: HashMap<String, i64>,
    /// Line hash -> times received (for `counting` receivers that keep no entries).
    seen: HashMap<u64, u32>,
    lines: u64,
    statuses: Vec<u16>,
    bytes: u64,
}

struct Shared {
    stored: Mutex<Stored>,
    failure: Mutex<Failure>,
    keep_entries: bool,
    /// What `GET /config` answers, as Loki prints its running configuration.
    config: Mutex<String>,
}

/// A Loki configuration as `GET /config` prints it: retention on, 30 days (Loki prints 720h as `4w2d`).
pub const LOKI_CONFIG_30_DAYS: &str = "compactor:\n  working_directory: /loki/compactor\n  retention_enabled: true\nlimits_config:\n  retention_period: 4w2d\n";

/// Serves `app` on `listener` (non-blocking, loopback) from a thread with its own runtime, until `stopped`
/// resolves: a peer stand-in that outlives the test's own runtime flavour.
pub(crate) fn serve_on_thread(
    name: &str,
    listener: std::net::TcpListener,
    app: axum::Router,
    stopped: tokio::sync::oneshot::Receiver<()>,
) -> std::thread::JoinHandle<()> {
    std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(move || {
            let runtime =
                tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("a tokio listener");
                let _ = axum::serve(listener, app)
                    .with_graceful_shutdown(async move {
                        let _ = stopped.await;
                    })
                    .await;
            });
        })
        .expect("start a receiver thread")
}

/// The receiver, on a free loopback port with its own thread and runtime. Stops on drop.
pub struct LokiReceiver {
    port: u16,
    shared: Arc<Shared>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for LokiReceiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LokiReceiver").field("port", &self.port).finish_non_exhaustive()
    }
}

impl LokiReceiver {
    /// A receiver that keeps every entry.
    pub fn start() -> Self {
        Self::start_with(0, true)
    }

    /// A receiver that only counts lines and duplicates (constant memory per distinct line), for
    /// benchmarks.
    pub fn start_counting() -> Self {
        Self::start_with(0, false)
    }

    /// On a given port (0: any), e.g. to come back where a stopped receiver was.
    pub fn start_with(port: u16, keep_entries: bool) -> Self {
        let shared = Arc::new(Shared {
            stored: Mutex::new(Stored::default()),
            failure: Mutex::new(Failure::None),
            keep_entries,
            config: Mutex::new(LOKI_CONFIG_30_DAYS.to_owned()),
        });
        let listener = std::net::TcpListener::bind(("127.0.0.1", port)).expect("bind the Loki receiver");
        listener.set_nonblocking(true).expect("a non-blocking listener");
        let port = listener.local_addr().expect("the receiver's address").port();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let app = axum::Router::new()
            .route("/loki/api/v1/push", axum::routing::post(push))
            .route("/loki/api/v1/query_range", axum::routing::get(query_range))
            .route("/stats", axum::routing::get(stats))
            .route("/ready", axum::routing::get(|| async { "ready" }))
            .route(
                "/config",
                axum::routing::get(|State(shared): State<Arc<Shared>>| async move {
                    shared.config.lock().map(|c| c.clone()).unwrap_or_default()
                }),
            )
            // Loki serves its own metrics; a stack scraping it finds the receiver up too.
            .route("/metrics", axum::routing::get(metrics))
            .with_state(shared.clone());
        let thread = serve_on_thread("loki-receiver", listener, app, stopped);
        Self { port, shared, stop: Some(stop), thread: Some(thread) }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// What `GET /config` answers from now on (YAML, as Loki prints its configuration).
    pub fn set_config(&self, yaml: &str) {
        *self.shared.config.lock().expect("config lock") = yaml.to_owned();
    }

    pub fn set_failure(&self, failure: Failure) {
        *self.shared.failure.lock().expect("failure lock") = failure;
    }

    /// Every accepted entry, in arrival order.
    pub fn entries(&self) -> Vec<ReceivedEntry> {
        self.shared.stored.lock().expect("store lock").entries.clone()
    }

    /// The accepted lines, in arrival order.
    pub fn lines(&self) -> Vec<String> {
        self.entries().into_iter().map(|e| e.line).collect()
    }

    /// Lines accepted so far (kept or counted).
    pub fn line_count(&self) -> u64 {
        self.shared.stored.lock().expect("store lock").lines
    }

    /// The status of every push answered, in order.
    pub fn statuses(&self) -> Vec<u16> {
        self.shared.stored.lock().expect("store lock").statuses.clone()
    }

    /// Stops listening (connections are refused from now on).
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for LokiReceiver {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn answer(shared: &Shared, status: StatusCode, body: String) -> Response {
    shared.stored.lock().expect("store lock").statuses.push(status.as_u16());
    (status, body).into_response()
}

fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(0))
}

async fn push(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    let injected = {
        let mut failure = shared.failure.lock().expect("failure lock");
        match *failure {
            Failure::None => None,
            Failure::Always(status) => Some(status),
            Failure::Next { status, times } => {
                *failure =
                    if times <= 1 { Failure::None } else { Failure::Next { status, times: times - 1 } };
                Some(status)
            }
        }
    };
    if let Some(status) = injected {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        return answer(&shared, status, "injected failure".to_owned());
    }
    let header =
        |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("").to_ascii_lowercase();
    let content_type = header("content-type");
    let encoding = header("content-encoding");
    let streams = if content_type.starts_with("application/x-protobuf") {
        if !(encoding.is_empty() || encoding == "snappy") {
            return answer(
                &shared,
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!("unsupported content encoding {encoding}"),
            );
        }
        match decode_protobuf(&body) {
            Ok(streams) => streams,
            Err(e) => return answer(&shared, StatusCode::BAD_REQUEST, e),
        }
    } else if content_type.starts_with("application/json") {
        if !encoding.is_empty() {
            return answer(
                &shared,
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!("unsupported content encoding {encoding}"),
            );
        }
        match decode_json(&body) {
            Ok(streams) => streams,
            Err(e) => return answer(&shared, StatusCode::BAD_REQUEST, e),
        }
    } else {
        return answer(
            &shared,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("unsupported content type {content_type}"),
        );
    };
    let mut errors = Vec::new();
    let now = now_ns();
    let mut stored = shared.stored.lock().expect("store lock");
    stored.bytes += body.len() as u64;
    for (selector, entries) in streams {
        let labels = match Labels::parse(&selector) {
            Ok(labels) if labels.is_empty() => {
                errors.push("error at least one label pair is required per stream".to_owned());
                continue;
            }
            Ok(labels) if labels.len() > MAX_LABELS => {
                errors.push(format!("stream {selector} has {} labels, limit {MAX_LABELS}", labels.len()));
                continue;
            }
            Ok(labels) => labels,
            Err(e) => {
                errors.push(e.to_string());
                continue;
            }
        };
        let key = labels.selector();
        for (timestamp_ns, line, metadata) in entries {
            if line.len() > MAX_LINE_BYTES {
                errors.push(format!("line too long ({} bytes) for stream {key}", line.len()));
                continue;
            }
            if timestamp_ns < now - 7 * 24 * 3600 * 1_000_000_000 {
                errors.push(format!("entry for stream {key} has timestamp too old"));
                continue;
            }
            let newest = stored.newest.get(&key).copied().unwrap_or(i64::MIN);
            if timestamp_ns < newest.saturating_sub(3600 * 1_000_000_000) {
                errors.push(format!("entry too far behind for stream {key}"));
                continue;
            }
            if timestamp_ns > newest {
                stored.newest.insert(key.clone(), timestamp_ns);
            }
            stored.lines += 1;
            if shared.keep_entries {
                stored.entries.push(ReceivedEntry {
                    labels: labels.as_map().clone(),
                    timestamp_ns,
                    line,
                    metadata,
                });
            } else {
                *stored.seen.entry(hash(&line)).or_insert(0) += 1;
            }
        }
    }
    drop(stored);
    if errors.is_empty() {
        answer(&shared, StatusCode::NO_CONTENT, String::new())
    } else {
        answer(&shared, StatusCode::BAD_REQUEST, errors.join("\n"))
    }
}

fn hash(line: &str) -> u64 {
    use std::hash::{Hash as _, Hasher as _};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    line.hash(&mut hasher);
    hasher.finish()
}

/// Streams of a push: the selector and its entries (time in ns, line, structured metadata).
pub type Streams = Vec<(String, Vec<(i64, String, Vec<(String, String)>)>)>;

/// Decodes a push body as the receiver does: `protobuf` (snappy-compressed `PushRequest`) or JSON.
pub fn decode_push(protobuf: bool, body: &[u8]) -> Result<Streams, String> {
    if protobuf { decode_protobuf(body) } else { decode_json(body) }
}

fn decode_protobuf(body: &[u8]) -> Result<Streams, String> {
    use prost::Message as _;
    let raw = snap::raw::Decoder::new().decompress_vec(body).map_err(|e| format!("snappy: {e}"))?;
    let request = proto::PushRequest::decode(raw.as_slice()).map_err(|e| format!("protobuf: {e}"))?;
    request
        .streams
        .into_iter()
        .map(|s| {
            let entries = s
                .entries
                .into_iter()
                .map(|e| {
                    // A time beyond what nanoseconds in an i64 hold is refused, as Loki refuses it.
                    let ts = match e.timestamp {
                        None => 0,
                        Some(t) => t
                            .seconds
                            .checked_mul(1_000_000_000)
                            .and_then(|ns| ns.checked_add(i64::from(t.nanos)))
                            .ok_or_else(|| format!("protobuf: timestamp {}s out of range", t.seconds))?,
                    };
                    let meta = e.structured_metadata.into_iter().map(|p| (p.name, p.value)).collect();
                    Ok((ts, e.line, meta))
                })
                .collect::<Result<_, String>>()?;
            Ok((s.labels, entries))
        })
        .collect()
}

fn decode_json(body: &[u8]) -> Result<Streams, String> {
    let value: serde_json::Value = serde_json::from_slice(body).map_err(|e| format!("json: {e}"))?;
    let streams = value.get("streams").and_then(|s| s.as_array()).ok_or("json: no `streams` array")?;
    let mut out = Vec::new();
    for stream in streams {
        let labels =
            stream.get("stream").and_then(|s| s.as_object()).ok_or("json: a stream without `stream`")?;
        let pairs: Vec<(String, String)> =
            labels.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned())).collect();
        let selector = Labels::new(pairs).map_err(|e| e.to_string())?.selector();
        let mut entries = Vec::new();
        for value in
            stream.get("values").and_then(|v| v.as_array()).ok_or("json: a stream without `values`")?
        {
            let ts: i64 = value
                .get(0)
                .and_then(|t| t.as_str())
                .and_then(|t| t.parse().ok())
                .ok_or("json: a value without a nanosecond timestamp string")?;
            let line =
                value.get(1).and_then(|l| l.as_str()).ok_or("json: a value without a line")?.to_owned();
            let meta = value
                .get(2)
                .and_then(|m| m.as_object())
                .map(|m| {
                    m.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned())).collect()
                })
                .unwrap_or_default();
            entries.push((ts, line, meta));
        }
        out.push((selector, entries));
    }
    Ok(out)
}

/// `loki_receiver_lines_received_total`, through a registry like every other metric, in the format the
/// scraper asks for.
async fn metrics(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    let lines = shared.stored.lock().map_or(0, |s| s.lines);
    let mut registry = Registry::default();
    // OpenMetrics names the counter family without `_total`; its sample keeps it.
    let counter = ConstCounter::new(lines);
    registry.register("loki_receiver_lines_received", "Lines the receiver accepted", counter);
    let accept = headers.get(axum::http::header::ACCEPT).and_then(|v| v.to_str().ok());
    let format = exposition::Format::negotiate(accept);
    let content_type = [(axum::http::header::CONTENT_TYPE, format.content_type())];
    (content_type, format.encode(&registry)).into_response()
}

async fn stats(State(shared): State<Arc<Shared>>) -> Response {
    let stored = shared.stored.lock().expect("store lock");
    let (distinct, duplicates) = if shared.keep_entries {
        let mut seen: HashMap<(&BTreeMap<String, String>, &str), u32> = HashMap::new();
        for e in &stored.entries {
            *seen.entry((&e.labels, e.line.as_str())).or_insert(0) += 1;
        }
        (seen.len() as u64, seen.values().map(|n| u64::from(n - 1)).sum::<u64>())
    } else {
        (stored.seen.len() as u64, stored.seen.values().map(|n| u64::from(n - 1)).sum::<u64>())
    };
    axum::Json(serde_json::json!({
        "lines": stored.lines,
        "distinct": distinct,
        "duplicates": duplicates,
        "pushes": stored.statuses.len(),
        "bytes": stored.bytes,
    }))
    .into_response()
}

/// `(label, negated, value)` matchers and `(negated, text)` line filters.
type Parsed = (Vec<(String, bool, String)>, Vec<(bool, String)>);

/// A tiny LogQL subset: `{a="b", c!="d"} |= "x" != "y"`.
fn parse_logql(query: &str) -> Result<Parsed, String> {
    let query = query.trim();
    let end = query.find('}').ok_or("logql: expected a stream selector {name=\"value\"}")?;
    let selector = query[..=end].trim();
    let inner = selector.strip_prefix('{').and_then(|s| s.strip_suffix('}')).ok_or("logql: bad selector")?;
    let mut matchers = Vec::new();
    for part in inner.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (name, negate, value) = if let Some((n, v)) = part.split_once("!=") {
            (n, true, v)
        } else if let Some((n, v)) = part.split_once('=') {
            (n, false, v)
        } else {
            return Err(format!("logql: bad matcher `{part}`"));
        };
        let value = value.trim().trim_matches('"').to_owned();
        matchers.push((name.trim().to_owned(), negate, value));
    }
    let mut filters = Vec::new();
    let mut rest = query[end + 1..].trim();
    while !rest.is_empty() {
        let (negate, after) = if let Some(r) = rest.strip_prefix("|=") {
            (false, r)
        } else if let Some(r) = rest.strip_prefix("!=") {
            (true, r)
        } else {
            return Err(format!("logql: unsupported pipeline `{rest}` (this receiver knows |= and !=)"));
        };
        let after = after.trim_start();
        let after = after.strip_prefix('"').ok_or("logql: a line filter takes a \"string\"")?;
        let close = after.find('"').ok_or("logql: unterminated string")?;
        filters.push((negate, after[..close].to_owned()));
        rest = after[close + 1..].trim();
    }
    Ok((matchers, filters))
}

async fn query_range(
    State(shared): State<Arc<Shared>>,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let Some(query) = params.get("query") else {
        return (StatusCode::BAD_REQUEST, "query is required").into_response();
    };
    let (matchers, filters) = match parse_logql(query) {
        Ok(parsed) => parsed,
        Err(e) => return (StatusCode::BAD_REQUEST, e).into_response(),
    };
    let num =
        |key: &str, default: i64| params.get(key).and_then(|v| v.parse::<i64>().ok()).unwrap_or(default);
    let now = now_ns();
    let (start, end) = (num("start", now - 3600 * 1_000_000_000), num("end", now));
    let limit = usize::try_from(num("limit", 100)).unwrap_or(100);
    let forward = params.get("direction").is_some_and(|d| d == "forward");
    let stored = shared.stored.lock().expect("store lock");
    let mut hits: Vec<&ReceivedEntry> = stored
        .entries
        .iter()
        .filter(|e| e.timestamp_ns >= start && e.timestamp_ns < end)
        .filter(|e| {
            matchers.iter().all(|(name, negate, value)| {
                (e.labels.get(name).map(String::as_str) == Some(value)) != *negate
            })
        })
        .filter(|e| filters.iter().all(|(negate, text)| e.line.contains(text.as_str()) != *negate))
        .collect();
    hits.sort_by_key(|e| e.timestamp_ns);
    if !forward {
        hits.reverse();
    }
    hits.truncate(limit);
    let mut streams: BTreeMap<&BTreeMap<String, String>, Vec<serde_json::Value>> = BTreeMap::new();
    for e in hits {
        streams.entry(&e.labels).or_default().push(serde_json::json!([e.timestamp_ns.to_string(), e.line]));
    }
    let result: Vec<serde_json::Value> = streams
        .into_iter()
        .map(|(labels, values)| serde_json::json!({ "stream": labels, "values": values }))
        .collect();
    axum::Json(
        serde_json::json!({ "status": "success", "data": { "resultType": "streams", "result": result } }),
    )
    .into_response()
}

/// Waits until `done` holds for the receiver or `timeout` passes; returns whether it held.
pub fn wait_until(timeout: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + timeout;
    while std::time::Instant::now() < deadline {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    done()
}
