//! A lean HTTP/1.1 client per VU: hyper's connection-level API, one keep-alive connection per host,
//! the connection driven inside the VU's own task (no task per connection, no pool lock), byte counts
//! taken from the socket.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http_body_util::{BodyExt as _, Full};
use hyper::client::conn::http1;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::Instant;

/// Where a URL points: what to connect to and what to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    /// `host:port` to connect to.
    pub(crate) addr: String,
    /// The `Host` header.
    pub(crate) host: http::HeaderValue,
    /// The origin-form request target (`/path?query`).
    pub(crate) path: http::Uri,
}

impl Target {
    pub(crate) fn parse(url: &str) -> Result<Self, String> {
        let uri: http::Uri = url.parse().map_err(|e| format!("`{url}` is not a URL: {e}"))?;
        match uri.scheme_str() {
            Some("http") => {}
            Some("https") => {
                return Err(format!("`{url}`: only http:// URLs are supported (https is not yet)"));
            }
            Some(other) => {
                return Err(format!("`{url}`: unsupported scheme `{other}` (write http://HOST/PATH)"));
            }
            None => return Err(format!("`{url}` has no scheme: write http://HOST/PATH")),
        }
        let authority = uri.authority().ok_or_else(|| format!("`{url}` has no host"))?;
        if authority.as_str().contains('@') {
            return Err(format!(
                "`{url}`: credentials in the URL are not supported; send an Authorization header"
            ));
        }
        let host = authority.host().trim_start_matches('[').trim_end_matches(']');
        let port = authority.port_u16().unwrap_or(80);
        let addr = if host.contains(':') { format!("[{host}]:{port}") } else { format!("{host}:{port}") };
        let path = uri.path_and_query().map_or("/", |p| p.as_str());
        let path = if path.is_empty() { "/" } else { path };
        Ok(Self {
            addr,
            host: http::HeaderValue::from_str(authority.as_str()).map_err(|e| format!("`{url}`: {e}"))?,
            path: path.parse().map_err(|e| format!("`{url}`: {e}"))?,
        })
    }
}

/// Bytes through one socket and the moment of the last write.
#[derive(Debug)]
struct IoStats {
    sent: AtomicU64,
    received: AtomicU64,
    /// Nanoseconds from `base` to the end of the last write.
    last_write: AtomicU64,
    base: Instant,
}

impl IoStats {
    fn new() -> Self {
        Self {
            sent: AtomicU64::new(0),
            received: AtomicU64::new(0),
            last_write: AtomicU64::new(0),
            base: Instant::now(),
        }
    }

    fn wrote(&self, n: usize) {
        self.sent.fetch_add(n as u64, Ordering::Relaxed);
        let at = u64::try_from(self.base.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.last_write.store(at, Ordering::Relaxed);
    }

    fn last_write(&self) -> Instant {
        self.base + Duration::from_nanos(self.last_write.load(Ordering::Relaxed))
    }
}

/// A TCP stream that counts bytes both ways.
struct Counting {
    inner: TcpStream,
    stats: Arc<IoStats>,
}

impl AsyncRead for Counting {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let res = Pin::new(&mut this.inner).poll_read(cx, buf);
        let n = buf.filled().len() - before;
        this.stats.received.fetch_add(n as u64, Ordering::Relaxed);
        res
    }
}

impl AsyncWrite for Counting {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let res = Pin::new(&mut this.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = res {
            this.stats.wrote(n);
        }
        res
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let res = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(n)) = res {
            this.stats.wrote(n);
        }
        res
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

type Io = hyper_util::rt::TokioIo<Counting>;

struct Conn {
    addr: String,
    sender: http1::SendRequest<Full<Bytes>>,
    conn: Pin<Box<http1::Connection<Io, Full<Bytes>>>>,
    stats: Arc<IoStats>,
    used: bool,
}

/// The timings of one request, k6's phases.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Timings {
    /// From the call to a connection ready (includes connecting).
    pub(crate) blocked: Duration,
    pub(crate) connecting: Duration,
    /// From the send to the last byte of the request on the socket.
    pub(crate) sending: Duration,
    /// From the end of sending to the response head.
    pub(crate) waiting: Duration,
    /// From the response head to the end of the body.
    pub(crate) receiving: Duration,
    /// When the request was handed to the connection.
    pub(crate) sent_at: Option<Instant>,
    /// When the body ended (or the request failed).
    pub(crate) done_at: Option<Instant>,
}

/// What came back.
#[derive(Debug, Default)]
pub(crate) struct Response {
    /// 0 when no response arrived.
    pub(crate) status: u16,
    pub(crate) headers: http::HeaderMap,
    /// Kept only when asked for.
    pub(crate) body: Bytes,
    pub(crate) error: Option<String>,
    pub(crate) timings: Timings,
    pub(crate) bytes_sent: u64,
    pub(crate) bytes_received: u64,
}

/// A VU's connections, one per host, kept alive between requests.
#[derive(Default)]
pub(crate) struct Client {
    conns: Vec<Conn>,
}

/// Why driving a request stopped.
enum Drive<T> {
    Done(T),
    /// The connection ended first (closed by the peer, or failed).
    Closed(Option<hyper::Error>),
}

/// Polls `fut` while driving the connection it needs.
async fn drive<T>(
    conn: &mut Pin<Box<http1::Connection<Io, Full<Bytes>>>>,
    fut: impl Future<Output = T>,
) -> Drive<T> {
    let mut fut = std::pin::pin!(fut);
    std::future::poll_fn(|cx| {
        if let Poll::Ready(out) = fut.as_mut().poll(cx) {
            return Poll::Ready(Drive::Done(out));
        }
        match conn.as_mut().poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(res) => match fut.as_mut().poll(cx) {
                Poll::Ready(out) => Poll::Ready(Drive::Done(out)),
                Poll::Pending => Poll::Ready(Drive::Closed(res.err())),
            },
        }
    })
    .await
}

const BODY_LIMIT: usize = 64 << 20;

impl Client {
    /// Sends one request and reads the whole response, within `timeout`.
    pub(crate) async fn send(
        &mut self,
        target: &Target,
        request: http::Request<Full<Bytes>>,
        keep_body: bool,
        timeout: Duration,
    ) -> Response {
        let started = Instant::now();
        let deadline = started + timeout;
        let mut out = Response::default();
        let (parts, body) = request.into_parts();
        // One retry when a reused keep-alive connection turns out closed before any answer.
        for attempt in 0..2 {
            let slot = match self.connection(target, deadline, &mut out).await {
                Ok(i) => i,
                Err(e) => {
                    out.error = Some(e);
                    out.timings.blocked = started.elapsed();
                    out.timings.done_at = Some(Instant::now());
                    return out;
                }
            };
            out.timings.blocked = started.elapsed();
            let mut req = http::Request::from_parts(parts.clone(), body.clone());
            req.headers_mut().insert(http::header::HOST, target.host.clone());
            *req.uri_mut() = target.path.clone();
            let conn = &mut self.conns[slot];
            let reused = std::mem::replace(&mut conn.used, true);
            let before =
                (conn.stats.sent.load(Ordering::Relaxed), conn.stats.received.load(Ordering::Relaxed));
            let sent_at = Instant::now();
            out.timings.sent_at = Some(sent_at);
            let mut head_at = None;
            let exchange = async {
                let res = conn.sender.send_request(req).await?;
                head_at = Some(Instant::now());
                let (head, mut incoming) = res.into_parts();
                let mut kept = BytesMut::new();
                while let Some(frame) = incoming.frame().await {
                    if let Ok(data) = frame?.into_data()
                        && keep_body
                        && kept.len() < BODY_LIMIT
                    {
                        kept.extend_from_slice(&data);
                    }
                }
                Ok::<_, hyper::Error>((head, kept.freeze()))
            };
            let result = tokio::time::timeout_at(deadline, drive(&mut conn.conn, exchange)).await;
            let now = Instant::now();
            out.timings.done_at = Some(now);
            let written = conn.stats.last_write().max(sent_at);
            let head = head_at.unwrap_or(now);
            out.timings.sending = written.min(head) - sent_at;
            out.timings.waiting = head - written.min(head);
            out.timings.receiving = now - head;
            out.bytes_sent += conn.stats.sent.load(Ordering::Relaxed) - before.0;
            out.bytes_received += conn.stats.received.load(Ordering::Relaxed) - before.1;
            let error = match result {
                Err(_) => format!("request timeout after {}", humantime::format_duration(timeout)),
                Ok(Drive::Done(Ok((head, body)))) => {
                    out.status = head.status.as_u16();
                    out.headers = head.headers;
                    out.body = body;
                    if self.conns[slot].sender.is_closed() {
                        self.conns.swap_remove(slot);
                    }
                    return out;
                }
                Ok(Drive::Done(Err(e))) => e.to_string(),
                Ok(Drive::Closed(e)) => e.map_or_else(|| "connection closed".to_owned(), |e| e.to_string()),
            };
            self.conns.swap_remove(slot);
            if attempt == 0 && reused && head_at.is_none() && Instant::now() < deadline {
                continue;
            }
            out.error = Some(error);
            return out;
        }
        out
    }

    /// The index of a ready connection to the target's host, connecting if needed.
    async fn connection(
        &mut self,
        target: &Target,
        deadline: Instant,
        out: &mut Response,
    ) -> Result<usize, String> {
        if let Some(i) = self.conns.iter().position(|c| c.addr == target.addr) {
            let conn = &mut self.conns[i];
            if !conn.sender.is_closed() {
                // Ready is immediate on a live idle connection; a closed one shows up here.
                let ready =
                    drive(&mut conn.conn, std::future::poll_fn(|cx| conn.sender.poll_ready(cx))).await;
                if let Drive::Done(Ok(())) = ready {
                    return Ok(i);
                }
            }
            self.conns.swap_remove(i);
        }
        let connect_start = Instant::now();
        let stream = tokio::time::timeout_at(deadline, TcpStream::connect(&target.addr))
            .await
            .map_err(|_| format!("connect to {}: timeout", target.addr))?
            .map_err(|e| format!("connect to {}: {e}", target.addr))?;
        let _ = stream.set_nodelay(true);
        let stats = Arc::new(IoStats::new());
        let io = hyper_util::rt::TokioIo::new(Counting { inner: stream, stats: stats.clone() });
        let (sender, conn) = http1::Builder::new()
            .handshake(io)
            .await
            .map_err(|e| format!("HTTP handshake with {}: {e}", target.addr))?;
        out.timings.connecting = connect_start.elapsed();
        self.conns.push(Conn { addr: target.addr.clone(), sender, conn: Box::pin(conn), stats, used: false });
        Ok(self.conns.len() - 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        let t = Target::parse("http://127.0.0.1:8080/api/items?page=2").unwrap();
        assert_eq!(
            (t.addr.as_str(), t.host.to_str().unwrap(), t.path.to_string().as_str()),
            ("127.0.0.1:8080", "127.0.0.1:8080", "/api/items?page=2")
        );
        let t = Target::parse("http://example.com").unwrap();
        assert_eq!((t.addr.as_str(), t.path.to_string().as_str()), ("example.com:80", "/"));
        let t = Target::parse("http://[::1]:9/x").unwrap();
        assert_eq!(t.addr, "[::1]:9");
        assert!(Target::parse("https://example.com/").unwrap_err().contains("https is not yet"));
        assert!(Target::parse("/relative").unwrap_err().contains("no scheme"));
        assert!(Target::parse("http://u:p@h/").unwrap_err().contains("credentials"));
    }
}
