//! A Zipkin v2 receiver: `POST /api/v2/spans` with a JSON array, each span checked against the rules of
//! Zipkin's published v2 schema (ids, kind, microsecond times with a duration of at least 1, endpoints,
//! annotations, string tags): 202 when every span holds, 400 naming the first problem otherwise.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A running receiver on a free loopback port (a thread; it stops with the test process).
#[derive(Debug, Clone)]
pub struct ZipkinReceiver {
    port: u16,
    spans: Arc<Mutex<Vec<serde_json::Value>>>,
    rejected: Arc<Mutex<Vec<String>>>,
}

impl ZipkinReceiver {
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let port = listener.local_addr().expect("a bound address").port();
        let receiver = Self {
            port,
            spans: Arc::new(Mutex::new(Vec::new())),
            rejected: Arc::new(Mutex::new(Vec::new())),
        };
        let state = receiver.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let state = state.clone();
                std::thread::spawn(move || state.serve(stream));
            }
        });
        receiver
    }

    /// The spans URL, `http://127.0.0.1:PORT/api/v2/spans`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/api/v2/spans", self.port)
    }

    /// Every valid span received so far.
    pub fn spans(&self) -> Vec<serde_json::Value> {
        self.spans.lock().expect("not poisoned").clone()
    }

    /// Why requests were refused.
    pub fn rejected(&self) -> Vec<String> {
        self.rejected.lock().expect("not poisoned").clone()
    }

    /// Waits until at least `n` spans arrived (or `within` passed) and returns them.
    pub fn wait_for(&self, n: usize, within: Duration) -> Vec<serde_json::Value> {
        let deadline = Instant::now() + within;
        while self.spans().len() < n && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        self.spans()
    }

    fn serve(&self, stream: std::net::TcpStream) {
        let mut reader = BufReader::new(stream);
        loop {
            let mut request_line = String::new();
            if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
                return;
            }
            let mut length = 0usize;
            loop {
                let mut header = String::new();
                if reader.read_line(&mut header).unwrap_or(0) == 0 {
                    return;
                }
                if header.trim().is_empty() {
                    break;
                }
                if let Some((name, value)) = header.split_once(':')
                    && name.trim().eq_ignore_ascii_case("content-length")
                {
                    length = value.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; length];
            if reader.read_exact(&mut body).is_err() {
                return;
            }
            let (status, text) = if request_line.starts_with("POST /api/v2/spans ") {
                match check_spans(&body) {
                    Ok(spans) => {
                        self.spans.lock().expect("not poisoned").extend(spans);
                        ("202 Accepted", String::new())
                    }
                    Err(problem) => {
                        self.rejected.lock().expect("not poisoned").push(problem.clone());
                        ("400 Bad Request", problem)
                    }
                }
            } else {
                ("404 Not Found", "not found".to_owned())
            };
            let response = format!("HTTP/1.1 {status}\r\ncontent-length: {}\r\n\r\n{text}", text.len());
            if reader.get_mut().write_all(response.as_bytes()).is_err() {
                return;
            }
        }
    }
}

fn check_spans(body: &[u8]) -> Result<Vec<serde_json::Value>, String> {
    let spans: Vec<serde_json::Value> =
        serde_json::from_slice(body).map_err(|e| format!("the body is not a JSON array of spans: {e}"))?;
    for span in &spans {
        check_span(span)?;
    }
    Ok(spans)
}

fn hex(value: Option<&serde_json::Value>, lengths: &[usize]) -> bool {
    value.and_then(serde_json::Value::as_str).is_some_and(|s| {
        lengths.contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

fn check_span(span: &serde_json::Value) -> Result<(), String> {
    let field = |k: &str| span.get(k);
    if !hex(field("traceId"), &[16, 32]) {
        return Err(format!("traceId must be 16 or 32 lowercase hex: {span}"));
    }
    if !hex(field("id"), &[16]) {
        return Err(format!("id must be 16 lowercase hex: {span}"));
    }
    if field("parentId").is_some() && !hex(field("parentId"), &[16]) {
        return Err(format!("parentId must be 16 lowercase hex: {span}"));
    }
    if let Some(kind) = field("kind")
        && !matches!(kind.as_str(), Some("CLIENT" | "SERVER" | "PRODUCER" | "CONSUMER"))
    {
        return Err(format!("kind must be CLIENT, SERVER, PRODUCER or CONSUMER: {span}"));
    }
    if field("timestamp").is_some_and(|t| t.as_u64().is_none()) {
        return Err(format!("timestamp must be an integer of microseconds: {span}"));
    }
    if field("duration").is_some_and(|d| d.as_u64().is_none_or(|d| d < 1)) {
        return Err(format!("duration must be an integer of microseconds, at least 1: {span}"));
    }
    for endpoint in ["localEndpoint", "remoteEndpoint"] {
        if let Some(e) = field(endpoint) {
            let ok = e.is_object()
                && e.get("serviceName").is_none_or(serde_json::Value::is_string)
                && e.get("ipv4").is_none_or(serde_json::Value::is_string)
                && e.get("ipv6").is_none_or(serde_json::Value::is_string)
                && e.get("port").is_none_or(|p| p.as_u64().is_some_and(|p| p <= 65_535));
            if !ok {
                return Err(format!("{endpoint} is malformed: {span}"));
            }
        }
    }
    if let Some(annotations) = field("annotations") {
        let ok = annotations.as_array().is_some_and(|a| {
            a.iter().all(|x| {
                x.get("timestamp").is_some_and(|t| t.as_u64().is_some())
                    && x.get("value").is_some_and(serde_json::Value::is_string)
            })
        });
        if !ok {
            return Err(format!("annotations must be [{{timestamp, value}}]: {span}"));
        }
    }
    if let Some(tags) = field("tags")
        && !tags.as_object().is_some_and(|t| t.values().all(serde_json::Value::is_string))
    {
        return Err(format!("tags must map strings to strings: {span}"));
    }
    Ok(())
}
