//! Local stand-ins for the alerting channels Alertmanager delivers to: an SMTP sink that records every
//! message (and the login it was sent with) and a PagerDuty Events API v2 receiver.

use std::io::{BufRead as _, BufReader, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

use base64::Engine as _;

/// One message the SMTP sink accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mail {
    /// The (username, password) of `AUTH PLAIN` or `AUTH LOGIN`, if the client logged in.
    pub auth: Option<(String, String)>,
    pub from: String,
    pub to: Vec<String>,
    /// Headers and body, dot-stuffing undone, lines joined with `\n`.
    pub data: String,
}

impl Mail {
    /// The value of header `name` (case-insensitive), unfolded.
    pub fn header(&self, name: &str) -> Option<String> {
        let head = self.data.split("\n\n").next().unwrap_or_default();
        let mut value: Option<String> = None;
        for line in head.lines() {
            if let Some(v) = value.as_mut().filter(|_| line.starts_with([' ', '\t'])) {
                v.push(' ');
                v.push_str(line.trim());
                continue;
            }
            if value.is_some() {
                break;
            }
            if let Some((key, rest)) = line.split_once(':')
                && key.eq_ignore_ascii_case(name)
            {
                value = Some(rest.trim().to_owned());
            }
        }
        value
    }

    /// The body: everything after the headers.
    pub fn body(&self) -> &str {
        self.data.split_once("\n\n").map_or("", |(_, body)| body)
    }
}

/// An SMTP server on loopback that accepts everything (no TLS; it offers `AUTH PLAIN` and `AUTH LOGIN`)
/// and records each message. Stops when dropped.
pub struct SmtpSink {
    addr: SocketAddr,
    mails: Arc<Mutex<Vec<Mail>>>,
}

impl SmtpSink {
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the SMTP sink");
        let addr = listener.local_addr().expect("the sink's address");
        let mails = Arc::new(Mutex::new(Vec::new()));
        let shared = mails.clone();
        std::thread::Builder::new()
            .name("smtp-sink".to_owned())
            .spawn(move || {
                for stream in listener.incoming().flatten() {
                    let mails = shared.clone();
                    std::thread::spawn(move || {
                        let _ = session(stream, &mails);
                    });
                }
            })
            .expect("start the SMTP sink");
        Self { addr, mails }
    }

    /// `127.0.0.1:PORT`, for a smarthost setting.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Every message accepted so far.
    pub fn mails(&self) -> Vec<Mail> {
        self.mails.lock().map(|m| m.clone()).unwrap_or_default()
    }
}

fn decode(b64: &str) -> String {
    let bytes = base64::engine::general_purpose::STANDARD.decode(b64.trim()).unwrap_or_default();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// The address of `<a@b> PARAMS` (or a bare `a@b`).
fn address(arg: &str) -> String {
    let arg = arg.trim();
    match (arg.find('<'), arg.find('>')) {
        (Some(open), Some(close)) if open < close => arg[open + 1..close].to_owned(),
        _ => arg.split_whitespace().next().unwrap_or_default().to_owned(),
    }
}

fn session(stream: TcpStream, mails: &Mutex<Vec<Mail>>) -> std::io::Result<()> {
    let mut out = stream.try_clone()?;
    let mut lines = BufReader::new(stream);
    let mut read = || -> std::io::Result<Option<String>> {
        let mut line = String::new();
        if lines.read_line(&mut line)? == 0 {
            return Ok(None);
        }
        Ok(Some(line.trim_end_matches(['\r', '\n']).to_owned()))
    };
    out.write_all(b"220 smtp-sink ESMTP\r\n")?;
    let mut mail = Mail { auth: None, from: String::new(), to: Vec::new(), data: String::new() };
    while let Some(line) = read()? {
        let upper = line.to_ascii_uppercase();
        let reply: &[u8] = if upper.starts_with("EHLO") {
            b"250-smtp-sink\r\n250-AUTH PLAIN LOGIN\r\n250 8BITMIME\r\n"
        } else if upper.starts_with("HELO") || upper.starts_with("RSET") || upper.starts_with("NOOP") {
            b"250 ok\r\n"
        } else if upper.starts_with("AUTH PLAIN") {
            let initial = line.get(10..).map(str::trim).unwrap_or_default().to_owned();
            let response = if initial.is_empty() {
                out.write_all(b"334 \r\n")?;
                read()?.unwrap_or_default()
            } else {
                initial
            };
            let decoded = decode(&response);
            let mut parts = decoded.split('\0').skip(1);
            mail.auth = Some((parts.next().unwrap_or("").to_owned(), parts.next().unwrap_or("").to_owned()));
            b"235 authenticated\r\n"
        } else if upper.starts_with("AUTH LOGIN") {
            out.write_all(b"334 VXNlcm5hbWU6\r\n")?;
            let user = decode(&read()?.unwrap_or_default());
            out.write_all(b"334 UGFzc3dvcmQ6\r\n")?;
            let password = decode(&read()?.unwrap_or_default());
            mail.auth = Some((user, password));
            b"235 authenticated\r\n"
        } else if upper.starts_with("MAIL FROM:") {
            mail.from = address(&line[10..]);
            b"250 ok\r\n"
        } else if upper.starts_with("RCPT TO:") {
            mail.to.push(address(&line[8..]));
            b"250 ok\r\n"
        } else if upper == "DATA" {
            out.write_all(b"354 end with <CRLF>.<CRLF>\r\n")?;
            let mut data = Vec::new();
            while let Some(line) = read()? {
                if line == "." {
                    break;
                }
                data.push(line.strip_prefix('.').map_or(line.clone(), str::to_owned));
            }
            mail.data = data.join("\n");
            if let Ok(mut mails) = mails.lock() {
                mails.push(mail.clone());
            }
            mail.from.clear();
            mail.to.clear();
            b"250 queued\r\n"
        } else if upper.starts_with("QUIT") {
            out.write_all(b"221 bye\r\n")?;
            return Ok(());
        } else {
            b"502 not implemented\r\n"
        };
        out.write_all(reply)?;
    }
    Ok(())
}

/// A PagerDuty Events API v2 stand-in on loopback: `POST /v2/enqueue` records the JSON event and answers
/// 202 as PagerDuty does. Stops when dropped.
pub struct PagerDutyReceiver {
    addr: SocketAddr,
    events: Arc<Mutex<Vec<serde_json::Value>>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl PagerDutyReceiver {
    pub fn start() -> Self {
        let events = Arc::new(Mutex::new(Vec::new()));
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the PagerDuty receiver");
        listener.set_nonblocking(true).expect("a non-blocking listener");
        let addr = listener.local_addr().expect("the receiver's address");
        let shared = events.clone();
        let app = axum::Router::new().route(
            "/v2/enqueue",
            axum::routing::post(move |body: String| {
                let shared = shared.clone();
                async move {
                    let event: serde_json::Value =
                        serde_json::from_str(&body).unwrap_or(serde_json::Value::String(body));
                    let dedup = event["dedup_key"].as_str().unwrap_or("generated").to_owned();
                    // An event summarised "invalid" is refused, the reply quoting the routing key back
                    // (as an error reply may): the caller must not show it.
                    if event["payload"]["summary"] == "invalid" {
                        let key = event["routing_key"].as_str().unwrap_or_default();
                        let answer = serde_json::json!({"status": "invalid event", "message": "Event object is invalid",
                            "errors": [format!("routing_key {key} has no service for this payload")]});
                        return (axum::http::StatusCode::BAD_REQUEST, axum::Json(answer));
                    }
                    if let Ok(mut events) = shared.lock() {
                        events.push(event);
                    }
                    let answer = serde_json::json!({"status": "success", "message": "Event processed", "dedup_key": dedup});
                    (axum::http::StatusCode::ACCEPTED, axum::Json(answer))
                }
            }),
        );
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let _thread = crate::loki::serve_on_thread("pagerduty-receiver", listener, app, stopped);
        Self { addr, events, stop: Some(stop) }
    }

    /// The Events API URL to configure: `http://127.0.0.1:PORT/v2/enqueue`.
    pub fn url(&self) -> String {
        format!("http://{}/v2/enqueue", self.addr)
    }

    /// Every event received so far.
    pub fn events(&self) -> Vec<serde_json::Value> {
        self.events.lock().map(|e| e.clone()).unwrap_or_default()
    }
}

impl Drop for PagerDutyReceiver {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// A Slack incoming-webhook stand-in in the caller's runtime: every JSON body posted to `/hook` (query
/// strings allowed, as a webhook URL's secret part may be) arrives on the channel; it answers "ok" as
/// Slack does.
pub async fn slack_receiver() -> (SocketAddr, tokio::sync::mpsc::UnboundedReceiver<serde_json::Value>) {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |body: String| {
            let tx = tx.clone();
            async move {
                let _ = tx.send(serde_json::from_str(&body).unwrap_or(serde_json::Value::String(body)));
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind the Slack receiver");
    let addr = listener.local_addr().expect("the receiver's address");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (addr, rx)
}
