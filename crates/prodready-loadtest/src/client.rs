//! A lean HTTP/1.1 client per VU.
//!
//! The caller encodes each request into one buffer ([`Encoder`]) that goes out in one write; the
//! response is parsed in place (httparse) from one read buffer per VU, its headers copied out only
//! when a check reads them, and its body counted, or kept when a check reads it. One keep-alive
//! connection per host, driven inside the VU's own task: no task per connection, no pool lock, no
//! per-connection buffers while a VU thinks (an idle keep-alive connection is a socket and its
//! address).
//!
//! Framing follows RFC 9112 section 6.3: no body after `HEAD`, 1xx, 204 and 304; chunked when it is
//! the last transfer coding; otherwise `Content-Length`; otherwise until the server closes.
//! Informational responses (`100 Continue`, `103 Early Hints`) are skipped.

use std::io::{self, Write as _};
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _, Interest, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::Instant;

/// Where a URL points: what to connect to and what to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    /// `https`: TLS first.
    pub(crate) tls: bool,
    /// `host:port` to connect to.
    pub(crate) addr: String,
    /// The host name (or address) the server's certificate must be issued for.
    pub(crate) server_name: String,
    /// The `Host` header.
    pub(crate) host: String,
    /// The origin-form request target (`/path?query`).
    pub(crate) path: String,
}

impl Target {
    /// Errors show the URL with its secrets masked (a password, a token in the query).
    pub(crate) fn parse(raw: &str) -> Result<Self, String> {
        let url = prodready_stdx::redact::url(raw);
        let uri: http::Uri = raw.parse().map_err(|e| format!("`{url}` is not a URL: {e}"))?;
        let tls = scheme_is_tls(uri.scheme_str(), &url)?;
        let authority = uri.authority().ok_or_else(|| format!("`{url}` has no host"))?;
        if authority.as_str().contains('@') {
            return Err(format!(
                "`{url}`: credentials in the URL are not supported; send an Authorization header"
            ));
        }
        let host = authority.host().trim_start_matches('[').trim_end_matches(']');
        let port = authority.port_u16().unwrap_or(if tls { 443 } else { 80 });
        let addr = if host.contains(':') { format!("[{host}]:{port}") } else { format!("{host}:{port}") };
        let path = uri.path_and_query().map_or("/", |p| p.as_str());
        let path = if path.is_empty() { "/" } else { path };
        Ok(Self {
            tls,
            addr,
            server_name: host.to_owned(),
            host: authority.as_str().to_owned(),
            path: path.to_owned(),
        })
    }
}

/// Whether a URL's scheme means TLS; an error for a scheme this client does not speak (`url` is the
/// URL as shown in the message).
pub(crate) fn scheme_is_tls(scheme: Option<&str>, url: &str) -> Result<bool, String> {
    match scheme {
        Some("http") => Ok(false),
        Some("https") if cfg!(feature = "tls") => Ok(true),
        Some("https") => Err(format!("`{url}`: https needs prodready-loadtest's `tls` feature")),
        Some(other) => Err(format!(
            "`{url}`: unsupported scheme `{other}` (write http://HOST/PATH or https://HOST/PATH)"
        )),
        None => Err(format!("`{url}` has no scheme: write http://HOST/PATH")),
    }
}

/// Writes one request into a reusable buffer: the request line, the headers, the framing of the
/// body and the body.
pub(crate) struct Encoder<'a> {
    out: &'a mut Vec<u8>,
}

impl<'a> Encoder<'a> {
    /// Starts a request with its request line, and the target's `Host` unless `own_host` says the
    /// caller sends one.
    pub(crate) fn new(out: &'a mut Vec<u8>, method: &http::Method, target: &Target, own_host: bool) -> Self {
        out.clear();
        out.extend_from_slice(method.as_str().as_bytes());
        out.push(b' ');
        out.extend_from_slice(target.path.as_bytes());
        out.extend_from_slice(b" HTTP/1.1\r\n");
        let mut encoder = Self { out };
        if !own_host {
            encoder.raw_header("host", target.host.as_bytes());
        }
        encoder
    }

    /// Adds a header, refusing a value that would break the message (a line break, a control
    /// character), as `http::HeaderValue` does.
    pub(crate) fn header(&mut self, name: &http::HeaderName, value: &[u8]) -> Result<(), String> {
        if let Some(bad) = value.iter().find(|&&b| (b < 0x20 && b != b'\t') || b == 0x7f) {
            return Err(format!("the value of header `{name}` holds the control character 0x{bad:02x}"));
        }
        self.raw_header(name.as_str(), value);
        Ok(())
    }

    fn raw_header(&mut self, name: &str, value: &[u8]) {
        self.out.extend_from_slice(name.as_bytes());
        self.out.extend_from_slice(b": ");
        self.out.extend_from_slice(value);
        self.out.extend_from_slice(b"\r\n");
    }

    /// Ends the head and appends the body, with its length when there is one or the method
    /// usually carries one.
    pub(crate) fn finish(self, method: &http::Method, body: &[u8]) {
        let carries = matches!(*method, http::Method::POST | http::Method::PUT | http::Method::PATCH);
        if !body.is_empty() || carries {
            let _ = write!(self.out, "content-length: {}\r\n", body.len());
        }
        self.out.extend_from_slice(b"\r\n");
        self.out.extend_from_slice(body);
    }
}

/// The timings of one request, k6's phases.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Timings {
    /// From the call to a connection ready (includes connecting).
    pub(crate) blocked: Duration,
    pub(crate) connecting: Duration,
    pub(crate) tls_handshaking: Duration,
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
    /// Filled only when asked for.
    pub(crate) headers: http::HeaderMap,
    /// Kept only when asked for.
    pub(crate) body: Vec<u8>,
    pub(crate) error: Option<String>,
    pub(crate) timings: Timings,
    pub(crate) bytes_sent: u64,
    pub(crate) bytes_received: u64,
}

/// What a check needs from the response besides its status.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Keep {
    pub(crate) headers: bool,
    pub(crate) body: bool,
}

/// How https connections are set up: the run's trusted CA certificates, or none checked.
#[derive(Clone, Default)]
pub(crate) struct Connector {
    #[cfg(feature = "tls")]
    tls: Option<tokio_rustls::TlsConnector>,
}

impl Connector {
    /// `roots` are DER certificates (those that do not parse are left out); `insecure` accepts any
    /// certificate (k6's `insecureSkipTLSVerify`).
    #[cfg_attr(not(feature = "tls"), allow(unused_variables))]
    pub(crate) fn new(roots: &[Vec<u8>], insecure: bool) -> Self {
        #[cfg(feature = "tls")]
        {
            let provider = prodready_tls::provider();
            let builder = match rustls::ClientConfig::builder_with_provider(provider.clone())
                .with_safe_default_protocol_versions()
            {
                Ok(builder) => builder,
                Err(_) => return Self { tls: None },
            };
            let config = if insecure {
                builder
                    .dangerous()
                    .with_custom_certificate_verifier(std::sync::Arc::new(prodready_tls::AcceptAny::new(
                        provider,
                    )))
                    .with_no_client_auth()
            } else {
                let mut store = rustls::RootCertStore::empty();
                let (added, _) = store.add_parsable_certificates(
                    roots.iter().map(|der| rustls::pki_types::CertificateDer::from(der.as_slice())),
                );
                if added == 0 {
                    return Self { tls: None };
                }
                builder.with_root_certificates(store).with_no_client_auth()
            };
            let mut config = config;
            config.alpn_protocols = vec![b"http/1.1".to_vec()];
            Self { tls: Some(tokio_rustls::TlsConnector::from(std::sync::Arc::new(config))) }
        }
        #[cfg(not(feature = "tls"))]
        Self {}
    }
}

/// A connection's byte stream: plain TCP, or TLS over it.
enum Stream {
    Plain(TcpStream),
    #[cfg(feature = "tls")]
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl Stream {
    fn plain(&self) -> Option<&TcpStream> {
        match self {
            Self::Plain(tcp) => Some(tcp),
            #[cfg(feature = "tls")]
            Self::Tls(_) => None,
        }
    }
}

impl AsyncRead for Stream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_read(cx, buf),
            #[cfg(feature = "tls")]
            Self::Tls(s) => Pin::new(&mut **s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_write(cx, buf),
            #[cfg(feature = "tls")]
            Self::Tls(s) => Pin::new(&mut **s).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_flush(cx),
            #[cfg(feature = "tls")]
            Self::Tls(s) => Pin::new(&mut **s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_shutdown(cx),
            #[cfg(feature = "tls")]
            Self::Tls(s) => Pin::new(&mut **s).poll_shutdown(cx),
        }
    }
}

struct Conn {
    addr: String,
    tls: bool,
    stream: Stream,
    used: bool,
    /// A request is on it: set before the exchange, cleared when it completes. One still set means
    /// the iteration was cut off mid-request (gracefulRampDown, gracefulStop), and the connection may
    /// hold half a request or an unread answer: it is never used again.
    in_flight: bool,
}

/// A VU's connections, one per host, kept alive between requests, and its read buffer.
#[derive(Default)]
pub(crate) struct Client {
    conns: Vec<Conn>,
    buf: Vec<u8>,
    #[cfg_attr(not(feature = "tls"), allow(dead_code))]
    connector: Connector,
}

const BODY_LIMIT: usize = 64 << 20;
/// The read buffer's first size: most responses of a load test fit, and it stays small per VU.
const INITIAL_BUFFER: usize = 4 << 10;
/// Reads grow the buffer up to this size while they fill it (large bodies).
const MAX_BUFFER: usize = 64 << 10;
/// A response head (status line and headers) larger than this is refused.
const MAX_HEAD: usize = 64 << 10;

/// How far one exchange got.
#[derive(Default)]
struct Progress {
    written_at: Option<Instant>,
    head_at: Option<Instant>,
    sent: u64,
    received: u64,
}

impl Client {
    pub(crate) fn new(connector: Connector) -> Self {
        Self { conns: Vec::new(), buf: Vec::new(), connector }
    }

    /// Sends one encoded request and reads the whole response, within `timeout`. `head` says the
    /// method was `HEAD` (no body follows the response head).
    pub(crate) async fn send(
        &mut self,
        target: &Target,
        request: &[u8],
        head: bool,
        keep: Keep,
        timeout: Duration,
    ) -> Response {
        let started = Instant::now();
        let deadline = started + timeout;
        let mut out = Response::default();
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
            let conn = &mut self.conns[slot];
            let reused = std::mem::replace(&mut conn.used, true);
            conn.in_flight = true;
            let sent_at = Instant::now();
            out.timings.sent_at = Some(sent_at);
            let mut progress = Progress::default();
            let result = tokio::time::timeout_at(
                deadline,
                exchange(&mut conn.stream, &mut self.buf, request, head, keep, &mut progress, &mut out),
            )
            .await;
            let now = Instant::now();
            out.timings.done_at = Some(now);
            let written = progress.written_at.unwrap_or(now);
            let head_at = progress.head_at.unwrap_or(now);
            out.timings.sending = written - sent_at;
            out.timings.waiting = head_at.saturating_duration_since(written);
            out.timings.receiving = now - head_at.max(written);
            out.bytes_sent += progress.sent;
            out.bytes_received += progress.received;
            if self.buf.len() > MAX_BUFFER {
                self.buf = Vec::new();
            }
            let error = match result {
                Ok(Ok(reusable)) => {
                    if reusable {
                        self.conns[slot].in_flight = false;
                        if let Some(tcp) = self.conns[slot].stream.plain() {
                            settle(tcp);
                        }
                    } else {
                        self.conns.swap_remove(slot);
                    }
                    return out;
                }
                Ok(Err(e)) => e,
                Err(_) => format!("request timeout after {}", humantime::format_duration(timeout)),
            };
            self.conns.swap_remove(slot);
            if attempt == 0 && reused && progress.received == 0 && now < deadline {
                continue;
            }
            out.status = 0;
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
        if let Some(i) = self.conns.iter().position(|c| c.addr == target.addr && c.tls == target.tls) {
            // A TLS connection is not probed: bytes on its socket may be TLS records for rustls (a
            // session ticket); one the server closed fails its first write or read, and is retried.
            if !self.conns[i].in_flight && self.conns[i].stream.plain().is_none_or(idle_and_open) {
                return Ok(i);
            }
            self.conns.swap_remove(i);
        }
        let connect_start = Instant::now();
        let tcp = tokio::time::timeout_at(deadline, TcpStream::connect(&target.addr))
            .await
            .map_err(|_| format!("connect to {}: timeout", target.addr))?
            .map_err(|e| format!("connect to {}: {e}", target.addr))?;
        let _ = tcp.set_nodelay(true);
        out.timings.connecting = connect_start.elapsed();
        let stream =
            if target.tls { self.handshake(target, tcp, deadline, out).await? } else { Stream::Plain(tcp) };
        self.conns.push(Conn {
            addr: target.addr.clone(),
            tls: target.tls,
            stream,
            used: false,
            in_flight: false,
        });
        Ok(self.conns.len() - 1)
    }

    #[cfg(feature = "tls")]
    async fn handshake(
        &self,
        target: &Target,
        tcp: TcpStream,
        deadline: Instant,
        out: &mut Response,
    ) -> Result<Stream, String> {
        let Some(connector) = &self.connector.tls else {
            return Err(format!(
                "https to {}: no trusted CA certificate was given (or set insecureSkipTLSVerify)",
                target.addr
            ));
        };
        let name = rustls::pki_types::ServerName::try_from(target.server_name.clone()).map_err(|e| {
            format!("https to {}: `{}` is not a server name: {e}", target.addr, target.server_name)
        })?;
        let start = Instant::now();
        let tls = tokio::time::timeout_at(deadline, connector.connect(name, tcp))
            .await
            .map_err(|_| format!("TLS handshake with {}: timeout", target.addr))?
            .map_err(|e| format!("TLS handshake with {}: {e}", target.addr))?;
        out.timings.tls_handshaking = start.elapsed();
        Ok(Stream::Tls(Box::new(tls)))
    }

    #[cfg(not(feature = "tls"))]
    #[allow(clippy::unused_async)]
    async fn handshake(
        &self,
        target: &Target,
        _: TcpStream,
        _: Instant,
        _: &mut Response,
    ) -> Result<Stream, String> {
        Err(format!("https to {}: this build has no TLS (prodready-loadtest's `tls` feature)", target.addr))
    }
}

/// After a complete response, the socket has nothing more to read: forget the readiness the
/// last read left behind, so that the next request waits for the reactor instead of first
/// trying a read that would find nothing (a system call per request saved). The reactor's next
/// event (the next response, or the server closing) sets it again.
fn settle(stream: &TcpStream) {
    let _ = stream.try_io(Interest::READABLE, || Err::<(), _>(io::ErrorKind::WouldBlock.into()));
}

/// Whether a kept connection can take a request: nothing has arrived on it since its last
/// response (a server that closed it shows up as readable). Asks the reactor, not the socket.
fn idle_and_open(stream: &TcpStream) -> bool {
    let mut cx = Context::from_waker(Waker::noop());
    match stream.poll_read_ready(&mut cx) {
        Poll::Pending => true,
        Poll::Ready(Err(_)) => false,
        // Readable: the peer closed it, or sent bytes nobody asked for. Look once.
        Poll::Ready(Ok(())) => {
            let mut probe = [0u8; 1];
            matches!(stream.try_read(&mut probe), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
        }
    }
}

/// The end of a response body.
enum Framing {
    Length(u64),
    Chunked,
    Close,
}

/// A parsed response head, owned.
struct Head {
    len: usize,
    status: u16,
    framing: Framing,
    keep_alive: bool,
}

/// Parses a response head from `bytes`: `None` when more bytes are needed. Most heads fit 32 header
/// slots on the stack; a larger one is parsed again with 512.
fn parse_head(
    bytes: &[u8],
    head_request: bool,
    mut keep_headers: Option<&mut http::HeaderMap>,
) -> Result<Option<Head>, String> {
    let mut few = [httparse::EMPTY_HEADER; 32];
    match parse_head_with(bytes, head_request, &mut few, keep_headers.as_deref_mut()) {
        Err(Bad::TooManyHeaders) => {
            let mut many = vec![httparse::EMPTY_HEADER; 512];
            parse_head_with(bytes, head_request, &mut many, keep_headers).map_err(Bad::into_message)
        }
        other => other.map_err(Bad::into_message),
    }
}

enum Bad {
    TooManyHeaders,
    Other(String),
}

impl Bad {
    fn into_message(self) -> String {
        match self {
            Self::TooManyHeaders => "the response has more than 512 headers".to_owned(),
            Self::Other(m) => m,
        }
    }
}

fn parse_head_with<'b>(
    bytes: &'b [u8],
    head_request: bool,
    headers: &mut [httparse::Header<'b>],
    keep_headers: Option<&mut http::HeaderMap>,
) -> Result<Option<Head>, Bad> {
    let mut res = httparse::Response::new(headers);
    let len = match res.parse(bytes) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(Bad::TooManyHeaders),
        Err(e) => return Err(Bad::Other(format!("invalid response head: {e}"))),
    };
    let status = res.code.unwrap_or(0);
    let informational = (100..200).contains(&status);
    let mut chunked = None;
    let mut length: Option<u64> = None;
    let mut close = res.version != Some(1);
    for h in res.headers.iter() {
        if h.name.eq_ignore_ascii_case("transfer-encoding") {
            // Only the last coding of the last header decides.
            let last = h.value.rsplit(|&b| b == b',').next().unwrap_or_default();
            chunked = Some(last.trim_ascii().eq_ignore_ascii_case(b"chunked"));
        } else if h.name.eq_ignore_ascii_case("content-length") {
            for part in h.value.split(|&b| b == b',') {
                let n = std::str::from_utf8(part.trim_ascii())
                    .ok()
                    .and_then(|s| s.parse::<u64>().ok())
                    .ok_or_else(|| Bad::Other("invalid content-length in the response".to_owned()))?;
                if length.is_some_and(|l| l != n) {
                    return Err(Bad::Other("conflicting content-length values in the response".to_owned()));
                }
                length = Some(n);
            }
        } else if h.name.eq_ignore_ascii_case("connection") {
            for token in h.value.split(|&b| b == b',') {
                let token = token.trim_ascii();
                if token.eq_ignore_ascii_case(b"close") {
                    close = true;
                } else if token.eq_ignore_ascii_case(b"keep-alive") && res.version == Some(0) {
                    close = false;
                }
            }
        }
    }
    if let Some(map) = keep_headers
        && !informational
    {
        map.clear();
        for h in res.headers.iter() {
            if let (Ok(name), Ok(value)) =
                (http::HeaderName::from_bytes(h.name.as_bytes()), http::HeaderValue::from_bytes(h.value))
            {
                map.append(name, value);
            }
        }
    }
    let framing = if head_request || informational || status == 204 || status == 304 {
        Framing::Length(0)
    } else {
        match (chunked, length) {
            (Some(true), _) => Framing::Chunked,
            (Some(false), _) | (None, None) => Framing::Close,
            (None, Some(n)) => Framing::Length(n),
        }
    };
    let keep_alive = !close && !matches!(framing, Framing::Close);
    Ok(Some(Head { len, status, framing, keep_alive }))
}

/// The read buffer of one exchange: `buf[start..end]` is read and not yet consumed.
struct Reader<'a> {
    stream: &'a mut Stream,
    buf: &'a mut Vec<u8>,
    start: usize,
    end: usize,
    progress: &'a mut Progress,
}

impl Reader<'_> {
    fn available(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    /// Reads more bytes after the unconsumed ones, making room first; `Ok(false)` at the end of
    /// the stream. `limit` bounds how large the unconsumed part may grow.
    async fn fill(&mut self, limit: usize, what: &str) -> Result<bool, String> {
        if self.start == self.end {
            (self.start, self.end) = (0, 0);
        }
        if self.end == self.buf.len() {
            if self.start > 0 {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            } else if self.buf.len() >= limit {
                return Err(format!("{what} larger than {} KiB", limit >> 10));
            } else {
                let size = (self.buf.len() * 2).clamp(INITIAL_BUFFER, limit);
                self.buf.resize(size, 0);
            }
        }
        let n = self.stream.read(&mut self.buf[self.end..]).await.map_err(|e| format!("read: {e}"))?;
        self.progress.received += n as u64;
        self.end += n;
        // A read that filled the room suggests a large body: read more at a time.
        if n > 0 && self.end == self.buf.len() && self.buf.len() < MAX_BUFFER && self.start == 0 {
            let size = (self.buf.len() * 2).min(MAX_BUFFER);
            self.buf.resize(size, 0);
        }
        Ok(n > 0)
    }

    /// Consumes up to `n` bytes, handing them to `keep`.
    fn consume(&mut self, n: usize, keep: Option<&mut Vec<u8>>) -> usize {
        let n = n.min(self.end - self.start);
        if let Some(kept) = keep
            && kept.len() < BODY_LIMIT
        {
            kept.extend_from_slice(&self.buf[self.start..self.start + n]);
        }
        self.start += n;
        n
    }
}

/// Writes the request and reads its response into `out`; `Ok(true)` when the connection can take
/// another request.
async fn exchange(
    stream: &mut Stream,
    buf: &mut Vec<u8>,
    request: &[u8],
    head_request: bool,
    keep: Keep,
    progress: &mut Progress,
    out: &mut Response,
) -> Result<bool, String> {
    stream.write_all(request).await.map_err(|e| format!("write: {e}"))?;
    stream.flush().await.map_err(|e| format!("write: {e}"))?;
    progress.written_at = Some(Instant::now());
    progress.sent = request.len() as u64;
    if buf.len() < INITIAL_BUFFER {
        buf.resize(INITIAL_BUFFER, 0);
    }
    let mut r = Reader { stream, buf, start: 0, end: 0, progress };
    let head = loop {
        let headers = keep.headers.then_some(&mut out.headers);
        match parse_head(r.available(), head_request, headers)? {
            Some(head) if (100..200).contains(&head.status) && head.status != 101 => {
                r.start += head.len;
            }
            Some(head) => break head,
            None => {
                if !r.fill(MAX_HEAD, "the response head").await? {
                    return Err(if r.progress.received == 0 {
                        "connection closed before a response".to_owned()
                    } else {
                        "connection closed inside the response head".to_owned()
                    });
                }
            }
        }
    };
    r.progress.head_at = Some(Instant::now());
    r.start += head.len;
    out.status = head.status;
    let mut kept = keep.body.then_some(&mut out.body);
    match head.framing {
        Framing::Length(mut left) => {
            while left > 0 {
                let n = usize::try_from(left).unwrap_or(usize::MAX);
                left -= r.consume(n, kept.as_deref_mut()) as u64;
                if left > 0 && !r.fill(MAX_BUFFER, "the body").await? {
                    return Err(format!("connection closed {left} bytes before the end of the body"));
                }
            }
        }
        Framing::Close => loop {
            r.consume(usize::MAX, kept.as_deref_mut());
            if !r.fill(MAX_BUFFER, "the body").await? {
                break;
            }
        },
        Framing::Chunked => chunked(&mut r, kept).await?,
    }
    Ok(head.keep_alive && r.start == r.end)
}

/// Reads a chunked body (RFC 9112 section 7.1), trailers included.
async fn chunked(r: &mut Reader<'_>, mut kept: Option<&mut Vec<u8>>) -> Result<(), String> {
    const CLOSED: &str = "connection closed inside a chunked body";
    loop {
        let size = loop {
            match httparse::parse_chunk_size(r.available()) {
                Ok(httparse::Status::Complete((used, size))) => {
                    r.start += used;
                    break size;
                }
                Ok(httparse::Status::Partial) => {
                    if !r.fill(MAX_HEAD, "a chunk header").await? {
                        return Err(CLOSED.to_owned());
                    }
                }
                Err(_) => return Err("invalid chunk size in the response".to_owned()),
            }
        };
        if size == 0 {
            break;
        }
        let mut left = size;
        while left > 0 {
            left -= r.consume(usize::try_from(left).unwrap_or(usize::MAX), kept.as_deref_mut()) as u64;
            if left > 0 && !r.fill(MAX_BUFFER, "the body").await? {
                return Err(CLOSED.to_owned());
            }
        }
        while r.available().len() < 2 {
            if !r.fill(MAX_HEAD, "a chunk").await? {
                return Err(CLOSED.to_owned());
            }
        }
        if &r.available()[..2] != b"\r\n" {
            return Err("a chunk of the response does not end with CRLF".to_owned());
        }
        r.start += 2;
    }
    // Trailer fields, up to the empty line.
    loop {
        match r.available().windows(2).position(|w| w == b"\r\n") {
            Some(0) => {
                r.start += 2;
                return Ok(());
            }
            Some(at) => r.start += at + 2,
            None => {
                if !r.fill(MAX_HEAD, "the trailers").await? {
                    return Err(CLOSED.to_owned());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        let t = Target::parse("http://127.0.0.1:8080/api/items?page=2").unwrap();
        assert_eq!(
            (t.addr.as_str(), t.host.as_str(), t.path.as_str()),
            ("127.0.0.1:8080", "127.0.0.1:8080", "/api/items?page=2")
        );
        let t = Target::parse("http://example.com").unwrap();
        assert_eq!((t.addr.as_str(), t.path.as_str()), ("example.com:80", "/"));
        let t = Target::parse("http://[::1]:9/x").unwrap();
        assert_eq!(t.addr, "[::1]:9");
        if cfg!(feature = "tls") {
            let t = Target::parse("https://api.example.com/v1").unwrap();
            assert_eq!(
                (t.tls, t.addr.as_str(), t.server_name.as_str()),
                (true, "api.example.com:443", "api.example.com")
            );
        } else {
            assert!(Target::parse("https://example.com/").unwrap_err().contains("`tls` feature"));
        }
        assert!(Target::parse("/relative").unwrap_err().contains("no scheme"));
        let err = Target::parse("http://u:hunter2@h/").unwrap_err();
        assert_eq!(
            err,
            "`http://u:[REDACTED]@h/`: credentials in the URL are not supported; send an Authorization header"
        );
        let err = Target::parse("ftp://h/x?token=hunter2").unwrap_err();
        assert_eq!(
            err,
            "`ftp://h/x?token=[REDACTED]`: unsupported scheme `ftp` (write http://HOST/PATH or https://HOST/PATH)"
        );
    }

    /// A request cut off mid-exchange (its iteration interrupted by gracefulRampDown or gracefulStop)
    /// leaves its connection unusable: the next request gets a new one, and its own answer, not the
    /// late answer to the one cut off.
    #[tokio::test]
    async fn a_request_cut_off_mid_exchange_never_shares_its_connection() {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        // Answers the n-th request it sees (over all connections) with body n, the first after 300 ms.
        tokio::spawn(async move {
            let seen = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
            while let Ok((mut stream, _)) = listener.accept().await {
                let seen = seen.clone();
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 4096];
                    loop {
                        let mut request = Vec::new();
                        while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                            match stream.read(&mut buf).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => request.extend_from_slice(&buf[..n]),
                            }
                        }
                        let n = seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        if n == 0 {
                            tokio::time::sleep(Duration::from_millis(300)).await;
                        }
                        let answer = format!("HTTP/1.1 200 OK\r\ncontent-length: 1\r\n\r\n{n}");
                        if stream.write_all(answer.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        let target = Target::parse(&format!("http://{addr}/")).unwrap();
        let mut request = Vec::new();
        Encoder::new(&mut request, &http::Method::GET, &target, false).finish(&http::Method::GET, b"");
        let keep = Keep { headers: false, body: true };
        let mut client = Client::new(Connector::default());
        let cut = tokio::time::timeout(
            Duration::from_millis(50),
            client.send(&target, &request, false, keep, Duration::from_secs(5)),
        )
        .await;
        assert!(cut.is_err(), "the first request is cut off");
        let next = client.send(&target, &request, false, keep, Duration::from_secs(5)).await;
        assert_eq!((next.status, next.body.as_slice()), (200, b"1".as_slice()), "{:?}", next.error);
    }

    fn encode(method: http::Method, headers: &[(&str, &str)], body: &str) -> Result<String, String> {
        let target = Target::parse("http://127.0.0.1:8080/a?b=1").unwrap();
        let mut out = Vec::new();
        let own_host = headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("host"));
        let mut e = Encoder::new(&mut out, &method, &target, own_host);
        for (name, value) in headers {
            e.header(&http::HeaderName::from_bytes(name.as_bytes()).unwrap(), value.as_bytes())?;
        }
        e.finish(&method, body.as_bytes());
        Ok(String::from_utf8(out).unwrap())
    }

    #[test]
    fn requests_are_encoded() {
        assert_eq!(
            encode(http::Method::GET, &[("accept", "*/*")], "").unwrap(),
            "GET /a?b=1 HTTP/1.1\r\nhost: 127.0.0.1:8080\r\naccept: */*\r\n\r\n"
        );
        assert_eq!(
            encode(http::Method::POST, &[("Host", "api.test")], "{}").unwrap(),
            "POST /a?b=1 HTTP/1.1\r\nhost: api.test\r\ncontent-length: 2\r\n\r\n{}"
        );
        assert_eq!(
            encode(http::Method::PUT, &[], "").unwrap(),
            "PUT /a?b=1 HTTP/1.1\r\nhost: 127.0.0.1:8080\r\ncontent-length: 0\r\n\r\n"
        );
        let injected = encode(http::Method::GET, &[("x-id", "1\r\nx-evil: 1")], "").unwrap_err();
        assert_eq!(injected, "the value of header `x-id` holds the control character 0x0d");
    }

    /// Parses `head` and reports (status, framing, keep-alive).
    fn check_head(head: &str, head_request: bool, expected: &str) {
        let got = match parse_head(head.as_bytes(), head_request, None) {
            Ok(None) => "partial".to_owned(),
            Ok(Some(h)) => {
                let framing = match h.framing {
                    Framing::Length(n) => format!("length {n}"),
                    Framing::Chunked => "chunked".to_owned(),
                    Framing::Close => "until close".to_owned(),
                };
                format!("{} {framing}{}", h.status, if h.keep_alive { ", keep-alive" } else { "" })
            }
            Err(e) => format!("error: {e}"),
        };
        assert_eq!(got, expected, "{head:?}");
    }

    #[test]
    fn response_framing() {
        check_head("HTTP/1.1 200 OK\r\ncontent-length: 12\r\n\r\n", false, "200 length 12, keep-alive");
        check_head("HTTP/1.1 200 OK\r\ncontent-length: 12\r\n", false, "partial");
        check_head("HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n", true, "200 length 0, keep-alive");
        check_head("HTTP/1.1 204 No Content\r\n\r\n", false, "204 length 0, keep-alive");
        check_head(
            "HTTP/1.1 304 Not Modified\r\ncontent-length: 9\r\n\r\n",
            false,
            "304 length 0, keep-alive",
        );
        check_head("HTTP/1.1 200 OK\r\n\r\n", false, "200 until close");
        check_head(
            "HTTP/1.1 200 OK\r\ntransfer-encoding: gzip, Chunked\r\ncontent-length: 3\r\n\r\n",
            false,
            "200 chunked, keep-alive",
        );
        check_head("HTTP/1.1 200 OK\r\ntransfer-encoding: gzip\r\n\r\n", false, "200 until close");
        check_head(
            "HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 1\r\n\r\n",
            false,
            "200 length 1",
        );
        check_head("HTTP/1.0 200 OK\r\ncontent-length: 1\r\n\r\n", false, "200 length 1");
        check_head(
            "HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\ncontent-length: 1\r\n\r\n",
            false,
            "200 length 1, keep-alive",
        );
        check_head("HTTP/1.1 200 OK\r\ncontent-length: 3, 3\r\n\r\n", false, "200 length 3, keep-alive");
        check_head(
            "HTTP/1.1 200 OK\r\ncontent-length: 3\r\ncontent-length: 4\r\n\r\n",
            false,
            "error: conflicting content-length values in the response",
        );
        check_head(
            "HTTP/1.1 200 OK\r\ncontent-length: -1\r\n\r\n",
            false,
            "error: invalid content-length in the response",
        );
        check_head("SSH-2.0-OpenSSH\r\n\r\n", false, "error: invalid response head: invalid HTTP version");
        let many: String = (0..100).map(|i| format!("x-h{i}: {i}\r\n")).collect();
        check_head(
            &format!("HTTP/1.1 200 OK\r\n{many}content-length: 0\r\n\r\n"),
            false,
            "200 length 0, keep-alive",
        );
        let too_many: String = (0..600).map(|i| format!("x-h{i}: {i}\r\n")).collect();
        check_head(
            &format!("HTTP/1.1 200 OK\r\n{too_many}\r\n"),
            false,
            "error: the response has more than 512 headers",
        );
    }

    #[test]
    fn headers_are_kept_when_asked() {
        let mut map = http::HeaderMap::new();
        let head = "HTTP/1.1 200 OK\r\nx-a: 1\r\nX-A: 2\r\ncontent-type: text/plain\r\n\r\n";
        parse_head(head.as_bytes(), false, Some(&mut map)).unwrap().unwrap();
        let a: Vec<_> = map.get_all("x-a").iter().map(|v| v.to_str().unwrap()).collect();
        assert_eq!((a, map.len()), (vec!["1", "2"], 3));
    }
}
