//! What a request through [`ServerLayer`] costs, against tracing-opentelemetry's plain layer on the same
//! handler. `cargo bench -p prodready-tracing --bench overhead` (bench/RESULTS.md has the figures).
//!
//! Every case sends the same request (`GET /stock/7` with `Host`, `User-Agent` and a sampled
//! `traceparent`) through the same axum router and handler, called in-process (`poll_ready` + `call`,
//! what `tower::ServiceExt::oneshot` does; no network), and reads the whole response body, on a
//! current-thread runtime on the benchmark's thread, with a subscriber of a registry and
//! tracing-opentelemetry's `OpenTelemetryLayer` as that thread's default. Every span is sampled and
//! handed to a batch span processor whose own thread exports, beside the request path, as in a service.
//!
//! Two middlewares, compared on the same provider (same exporter, same batch processor, same subscriber):
//!
//! - plain (the peer): one `info_span!` per request around the handler with `otel.kind = server`, the
//!   method and the URI: the least a service does to get a server span per request with the plain layer.
//!   It reads no `traceparent` (its spans are roots) and records no status.
//! - [`ServerLayer`]: context extracted from `traceparent`, the route from `MatchedPath`, the HTTP
//!   semantic-convention attributes, the status recorded from the response by its own future (the
//!   handler's future wrapped in place, not boxed, polled inside the span as `Instrumented` polls it).
//!
//! Four exporters behind the batch processor, each measured with both middlewares:
//!
//! - one that drops every batch, on a bare SDK provider: the request path alone;
//! - `prodready_tracing::init` with OTLP http/protobuf to a loopback sink that reads each export and
//!   answers 200: an active exporter whose exports succeed. The sink is a child process (this program
//!   with `--otlp-sink`), so its CPU time is not counted as the service's;
//! - opentelemetry-otlp's own http/protobuf exporter (what a team using tracing-opentelemetry's plain
//!   layer sets up) on an SDK provider, to the same sink: the target's baseline is the plain span there;
//! - `prodready_tracing::init` with OTLP http/protobuf to a closed port: every export is refused, and
//!   the exporter retries it with backoff (100, 200, 400 ms), so the queue stays full and most spans
//!   are dropped when they end.
//!
//! With every exporter but the closed port, two more middlewares split the difference: the plain span plus
//! `ServerLayer`'s context extraction, and a span with `ServerLayer`'s attributes computed as it
//! computes them. Plus the router without tracing, for the floor.
//!
//! Three measures per request: wall time on the request thread; that thread's CPU time
//! (`CLOCK_THREAD_CPUTIME_ID`: what preemption by other threads does not inflate); and the whole
//! process's CPU time (`CLOCK_PROCESS_CPUTIME_ID`, taken after flushing the provider, so it includes
//! encoding and sending the run's spans). Runs interleave the cases (every other run in reverse order, a
//! 100 ms pause before each so the exporters catch up) so drift on a shared machine hits all of them
//! alike; each run is 50,000 requests after a warm-up of 20,000; the figure is the median of 11 runs, with
//! the fastest and slowest beside it.
//!
//! bench/tracing.sh (`cargo xtask bench tracing`) runs this with a batch queue large enough for a whole
//! run (`OTEL_BSP_MAX_QUEUE_SIZE`), so no span is dropped, and then each case alone under callgrind
//! (`--case EXPORTER/MIDDLEWARE --requests N`) to count instructions per request.

#![allow(clippy::print_stdout)]

use std::future::Future;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::Path;
use axum::routing::get;
use nix::time::{ClockId, clock_gettime};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{BatchSpanProcessor, SdkTracer, SdkTracerProvider, SpanData, SpanExporter};
use prodready_tracing::layer::ServerLayer;
use prodready_tracing::{Exporter, Options, Protocol};
use tower_service::Service as _;
use tracing::Instrument as _;
use tracing::instrument::Instrumented;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;
use tracing_subscriber::layer::SubscriberExt as _;

const WARMUP: u32 = 20_000;
const REQUESTS: u32 = 50_000;
const RUNS: usize = 11;
const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

/// An exporter that drops every batch.
#[derive(Debug)]
struct Discard;

impl SpanExporter for Discard {
    fn export(&self, batch: Vec<SpanData>) -> impl Future<Output = OTelSdkResult> + Send {
        std::hint::black_box(batch);
        std::future::ready(Ok(()))
    }
}

/// The plain middleware: one span per request around the handler. `Extract` and `Attributes` are for
/// the breakdown only: the plain span plus [`ServerLayer`]'s context extraction, or with
/// [`ServerLayer`]'s attributes computed as it computes them (but no extraction and no status recorded:
/// the handler's future is in tracing's `Instrumented`, not in [`ServerLayer`]'s own future).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PlainSpan {
    Minimal,
    Extract,
    Attributes,
}

impl<S> tower_layer::Layer<S> for PlainSpan {
    type Service = Plain<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Plain { inner, mode: *self }
    }
}

#[derive(Debug, Clone)]
struct Plain<S> {
    inner: S,
    mode: PlainSpan,
}

fn attributes_span<B>(request: &http::Request<B>) -> tracing::Span {
    let method = request.method().as_str().to_owned();
    let route = request.extensions().get::<axum::extract::MatchedPath>().map(|p| p.as_str().to_owned());
    let name = match &route {
        Some(route) => format!("{method} {route}"),
        None => method.clone(),
    };
    let header = |h: http::header::HeaderName| {
        request.headers().get(h).and_then(|v| v.to_str().ok()).map(str::to_owned)
    };
    let host = header(http::header::HOST).and_then(|h| h.parse::<http::uri::Authority>().ok());
    tracing::info_span!(
        "HTTP request",
        otel.name = %name,
        otel.kind = "server",
        http.request.method = %method,
        url.path = %request.uri().path(),
        url.scheme = request.uri().scheme_str().unwrap_or("http"),
        http.route = route.as_deref(),
        server.address = host.as_ref().map(http::uri::Authority::host),
        server.port = host.as_ref().and_then(http::uri::Authority::port_u16).map(i64::from),
        user_agent.original = header(http::header::USER_AGENT).as_deref(),
        http.response.status_code = tracing::field::Empty,
        otel.status_code = tracing::field::Empty,
        error.type = tracing::field::Empty,
    )
}

impl<S, B> tower_service::Service<http::Request<B>> for Plain<S>
where
    S: tower_service::Service<http::Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Instrumented<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let span = if self.mode == PlainSpan::Attributes {
            attributes_span(&request)
        } else {
            tracing::info_span!(
                "HTTP request",
                otel.kind = "server",
                method = %request.method(),
                uri = %request.uri(),
            )
        };
        if self.mode == PlainSpan::Extract {
            let _ = span.set_parent(prodready_tracing::extract(request.headers()));
        }
        let future = {
            let _entered = span.enter();
            self.inner.call(request)
        };
        future.instrument(span)
    }
}

fn handler() -> Router {
    Router::new()
        .route("/stock/{item}", get(|Path(item): Path<u32>| async move { (item * 7 % 13).to_string() }))
}

fn request() -> http::Request<Body> {
    http::Request::get("/stock/7")
        .header(http::header::HOST, "stock.internal:8080")
        .header(http::header::USER_AGENT, "orders/1.0")
        .header("traceparent", TRACEPARENT)
        .body(Body::empty())
        .expect("a valid request")
}

async fn one(router: &Router) {
    let mut service = router.clone();
    std::future::poll_fn(|cx| tower_service::Service::<http::Request<Body>>::poll_ready(&mut service, cx))
        .await
        .expect("the router is ready");
    let response = service.call(request()).await.expect("an answer");
    assert!(response.status().is_success());
    let body = axum::body::to_bytes(response.into_body(), 1024).await.expect("the body");
    std::hint::black_box(body);
}

/// CPU time of this thread or of the whole process, in nanoseconds.
fn cpu(clock: ClockId) -> f64 {
    let t = clock_gettime(clock).expect("a CPU clock");
    t.tv_sec() as f64 * 1e9 + t.tv_nsec() as f64
}

struct Case {
    exporter: &'static str,
    middleware: &'static str,
    router: Router,
    dispatch: tracing::Dispatch,
    /// Flushed after each run, so the run's CPU time includes exporting its spans.
    flush: Option<SdkTracerProvider>,
    /// Per request: wall time on the request thread, that thread's CPU time, the process's CPU time.
    wall: Vec<f64>,
    thread: Vec<f64>,
    process: Vec<f64>,
}

impl Case {
    fn new(
        exporter: &'static str,
        middleware: &'static str,
        router: Router,
        dispatch: tracing::Dispatch,
        flush: Option<SdkTracerProvider>,
    ) -> Self {
        Self {
            exporter,
            middleware,
            router,
            dispatch,
            flush,
            wall: Vec::new(),
            thread: Vec::new(),
            process: Vec::new(),
        }
    }

    fn run(&mut self, runtime: &tokio::runtime::Runtime, requests: u32) -> [f64; 3] {
        let n = f64::from(requests);
        tracing::dispatcher::with_default(&self.dispatch, || {
            let (thread, process) =
                (cpu(ClockId::CLOCK_THREAD_CPUTIME_ID), cpu(ClockId::CLOCK_PROCESS_CPUTIME_ID));
            let start = Instant::now();
            runtime.block_on(async {
                for _ in 0..requests {
                    one(&self.router).await;
                }
            });
            let wall = start.elapsed().as_nanos() as f64;
            let thread = cpu(ClockId::CLOCK_THREAD_CPUTIME_ID) - thread;
            if let Some(provider) = &self.flush {
                let _ = provider.force_flush();
            }
            let process = cpu(ClockId::CLOCK_PROCESS_CPUTIME_ID) - process;
            [wall / n, thread / n, process / n]
        })
    }
}

/// A loopback port nothing listens on.
fn closed_port() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
    let url = format!("http://127.0.0.1:{}", listener.local_addr().expect("its address").port());
    drop(listener);
    url
}

/// The OTLP/HTTP sink, a child process (this program with `--otlp-sink`) so that its CPU time is not the
/// service's: it reads each request, answers 200 with an empty body (an empty
/// `ExportTraceServiceResponse`: everything accepted) and counts the spans.
struct Sink {
    child: std::process::Child,
    lines: std::io::Lines<BufReader<std::process::ChildStdout>>,
    url: String,
}

impl Sink {
    fn start() -> Self {
        let mut child = std::process::Command::new(std::env::current_exe().expect("this program"))
            .arg("--otlp-sink")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("the sink starts");
        let mut lines = BufReader::new(child.stdout.take().expect("its stdout")).lines();
        let url = lines.next().expect("the sink's URL").expect("a line");
        Self { child, lines, url }
    }

    /// Stops the sink; the number of spans it received.
    fn finish(mut self) -> u64 {
        drop(self.child.stdin.take());
        let count = self.lines.next().and_then(Result::ok).and_then(|l| l.parse().ok()).unwrap_or(0);
        let _ = self.child.wait();
        count
    }
}

/// The child: serves until its stdin closes, then prints the spans received.
fn serve_sink() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
    println!("http://{}", listener.local_addr().expect("its address"));
    let received = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counted = received.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let counted = counted.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream);
                loop {
                    let mut length = 0usize;
                    let mut line = String::new();
                    loop {
                        line.clear();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        if line == "\r\n" {
                            break;
                        }
                        if let Some((name, value)) = line.split_once(':')
                            && name.eq_ignore_ascii_case("content-length")
                        {
                            length = value.trim().parse().unwrap_or(0);
                        }
                    }
                    let mut body = vec![0; length];
                    if reader.read_exact(&mut body).is_err() {
                        return;
                    }
                    counted.fetch_add(spans_in(&body), std::sync::atomic::Ordering::Relaxed);
                    let answer = concat!(
                        "HTTP/1.1 200 OK\r\n",
                        "content-type: application/x-protobuf\r\n",
                        "content-length: 0\r\n\r\n"
                    );
                    if reader.get_mut().write_all(answer.as_bytes()).is_err() {
                        return;
                    }
                }
            });
        }
    });
    let _ = std::io::copy(&mut std::io::stdin(), &mut std::io::sink());
    println!("{}", received.load(std::sync::atomic::Ordering::Relaxed));
}

/// The spans in an `ExportTraceServiceRequest`: field 1 (`ResourceSpans`) → field 2 (`ScopeSpans`) →
/// field 2 (`Span`), read with just enough protobuf to walk length-delimited fields.
fn spans_in(body: &[u8]) -> u64 {
    fn varint(buf: &mut &[u8]) -> Option<u64> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let (&byte, rest) = buf.split_first()?;
            *buf = rest;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Some(value);
            }
        }
        None
    }
    /// The length-delimited fields numbered `number` in a message.
    fn fields(mut buf: &[u8], number: u64) -> Vec<&[u8]> {
        let mut out = Vec::new();
        while let Some(key) = varint(&mut buf) {
            let skip = match key & 7 {
                0 => varint(&mut buf).map(|_| 0),
                1 => Some(8),
                2 => varint(&mut buf).and_then(|n| usize::try_from(n).ok()),
                5 => Some(4),
                _ => None,
            };
            let Some(len) = skip.filter(|&n| n <= buf.len()) else { break };
            let (field, rest) = buf.split_at(len);
            if key & 7 == 2 && key >> 3 == number {
                out.push(field);
            }
            buf = rest;
        }
        out
    }
    fields(body, 1)
        .into_iter()
        .flat_map(|resource| fields(resource, 2))
        .map(|scope| fields(scope, 2).len() as u64)
        .sum()
}

/// `queue`: the batch queue's size (`--queue N`; bench/tracing.sh makes it hold a whole run).
fn ours(endpoint: String, queue: Option<usize>) -> prodready_tracing::Guard {
    let mut options = Options::new("bench");
    options.exporter = Exporter::Otlp { endpoint, protocol: Protocol::HttpProtobuf, headers: Vec::new() };
    options.export_timeout = Duration::from_secs(2);
    options.shutdown_timeout = Duration::from_secs(2);
    options.batch.max_queue_size = queue.unwrap_or(options.batch.max_queue_size);
    prodready_tracing::init(&options).expect("tracing set up")
}

/// opentelemetry-otlp's http/protobuf exporter as its documentation sets it up, on an SDK provider.
fn stock(endpoint: &str) -> SdkTracerProvider {
    use opentelemetry_otlp::WithExportConfig as _;
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_endpoint(format!("{endpoint}/v1/traces"))
        .with_timeout(Duration::from_secs(2))
        .build()
        .expect("the stock exporter");
    SdkTracerProvider::builder()
        .with_resource(Resource::builder_empty().with_service_name("bench").build())
        .with_span_processor(BatchSpanProcessor::builder(exporter).build())
        .build()
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted[sorted.len() / 2]
}

/// The short name of a case, for `--case EXPORTER/MIDDLEWARE` (e.g. `sink/server`).
fn key(exporter: &str, middleware: &str) -> String {
    let exporter = match exporter {
        "none" => "none",
        e if e.starts_with("discards") => "discard",
        e if e.starts_with("opentelemetry-otlp") => "stock",
        e if e.contains("sink") => "sink",
        _ => "closed",
    };
    let middleware = match middleware {
        "plain" => "plain",
        "plain + extraction" => "extract",
        "plain with ServerLayer's attributes" => "attributes",
        "ServerLayer" => "server",
        _ => "none",
    };
    format!("{exporter}/{middleware}")
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--otlp-sink") {
        return serve_sink();
    }
    // `--case EXPORTER/MIDDLEWARE --requests N`: one case, one run after the warm-up, for counting
    // instructions under callgrind (bench/tracing.sh): the process's total at two values of N gives the
    // instructions per request, whatever else the machine is doing.
    let flag = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned();
    let only = flag("--case");
    let requests: u32 = flag("--requests").map_or(REQUESTS, |n| n.parse().expect("--requests N"));
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");

    let discard = SdkTracerProvider::builder()
        .with_span_processor(BatchSpanProcessor::builder(Discard).build())
        .build();
    let sink_process = Sink::start();
    // The SDK providers read OTEL_BSP_MAX_QUEUE_SIZE themselves; `init` reads no variable.
    let queue: Option<usize> = flag("--queue").map(|n| n.parse().expect("--queue N"));
    let sink = ours(sink_process.url.clone(), queue);
    let stock = stock(&sink_process.url);
    let closed = ours(closed_port(), queue);

    let registry = || tracing_subscriber::registry();
    // `Guard::layer` is `tracing_opentelemetry::layer().with_tracer(guard.tracer(..))`: one layer type.
    let layer = |tracer: SdkTracer| tracing_opentelemetry::layer().with_tracer(tracer);
    let mut cases = vec![Case::new("none", "no tracing", handler(), registry().into(), None)];
    const DISCARD: &str = "discards every batch (SDK provider)";
    // The closed port's provider is not flushed after a run: its exports wait out retries.
    const SINK: &str = "OTLP/HTTP to a loopback sink answering 200 (`init`)";
    const STOCK: &str = "opentelemetry-otlp's OTLP/HTTP exporter to the same sink (SDK provider)";
    let exporters = [
        (DISCARD, discard.tracer("bench"), Some(discard.clone())),
        (SINK, sink.tracer("bench"), Some(sink.provider().clone())),
        (STOCK, stock.tracer("bench"), Some(stock.clone())),
        ("OTLP/HTTP to a closed port (`init`)", closed.tracer("bench"), None),
    ];
    let names: Vec<&str> = exporters.iter().map(|(name, ..)| *name).collect();
    for (exporter, tracer, flush) in exporters {
        let mut middlewares = vec![("plain", handler().layer(PlainSpan::Minimal))];
        if exporter != "OTLP/HTTP to a closed port (`init`)" {
            middlewares.push(("plain + extraction", handler().layer(PlainSpan::Extract)));
            middlewares.push(("plain with ServerLayer's attributes", handler().layer(PlainSpan::Attributes)));
        }
        middlewares.push(("ServerLayer", handler().layer(ServerLayer)));
        for (middleware, router) in middlewares {
            let dispatch = registry().with(layer(tracer.clone())).into();
            cases.push(Case::new(exporter, middleware, router, dispatch, flush.clone()));
        }
    }

    if let Some(only) = only {
        let case = cases
            .iter_mut()
            .find(|c| key(c.exporter, c.middleware) == only)
            .unwrap_or_else(|| panic!("no case {only}: EXPORTER (none discard sink stock closed) / MIDDLEWARE (none plain extract attributes server)"));
        case.run(&runtime, WARMUP / 10);
        let [wall, ..] = case.run(&runtime, requests);
        println!("{only}: {requests} requests, {wall:.0} ns/request wall");
        return;
    }
    for case in &mut cases {
        case.run(&runtime, WARMUP);
    }
    for run in 0..RUNS {
        // Every other run in reverse order, and a pause before each case for the exporters to catch up:
        // no case always follows the same one.
        let order: Vec<usize> =
            if run % 2 == 0 { (0..cases.len()).collect() } else { (0..cases.len()).rev().collect() };
        for i in order {
            std::thread::sleep(Duration::from_millis(100));
            let [wall, thread, process] = cases[i].run(&runtime, REQUESTS);
            cases[i].wall.push(wall);
            cases[i].thread.push(thread);
            cases[i].process.push(process);
        }
    }

    println!(
        "{RUNS} interleaved runs of {REQUESTS} requests per case after {WARMUP} warm-up requests; \
         ns/request of the median run (fastest–slowest run)\n"
    );
    let find = |exporter: &str, middleware: &str| {
        cases.iter().find(|c| c.exporter == exporter && c.middleware == middleware).expect("a case")
    };
    let spread = |values: &[f64]| {
        let min = values.iter().copied().fold(f64::INFINITY, f64::min);
        let max = values.iter().copied().fold(0.0, f64::max);
        format!("{:.0} ({min:.0}–{max:.0})", median(values))
    };
    let ratio = |a: &[f64], b: &[f64]| median(b) / median(a);
    println!(
        "Wall time on the request thread, and CPU time of the whole process (request thread and exporter):\n"
    );
    println!(
        "| exporter (batch span processor) | plain: wall | ServerLayer: wall | ratio \
         | plain: CPU | ServerLayer: CPU | ratio |"
    );
    println!("|---|---|---|---|---|---|---|");
    let none = &cases[0];
    println!("| none (no tracing at all) | {} | | | {} | | |", spread(&none.wall), spread(&none.process));
    for exporter in names {
        let (p, s) = (find(exporter, "plain"), find(exporter, "ServerLayer"));
        println!(
            "| {exporter} | {} | {} | {:.2} | {} | {} | {:.2} |",
            spread(&p.wall),
            spread(&s.wall),
            ratio(&p.wall, &s.wall),
            spread(&p.process),
            spread(&s.process),
            ratio(&p.process, &s.process),
        );
    }
    for exporter in [DISCARD, SINK, STOCK] {
        println!("\nWhere the difference goes, exporter {exporter}:\n");
        println!(
            "| middleware | wall | ratio to plain | request thread CPU | ratio to plain | process CPU | ratio to plain |"
        );
        println!("|---|---|---|---|---|---|---|");
        let plain = find(exporter, "plain");
        for case in cases.iter().filter(|c| c.exporter == exporter) {
            println!(
                "| {} | {} | {:.2} | {} | {:.2} | {} | {:.2} |",
                case.middleware,
                spread(&case.wall),
                ratio(&plain.wall, &case.wall),
                spread(&case.thread),
                ratio(&plain.thread, &case.thread),
                spread(&case.process),
                ratio(&plain.process, &case.process),
            );
        }
    }
    let to_sink = cases.iter().filter(|c| c.exporter == SINK || c.exporter == STOCK).count() as u64;
    let sink_outcome = sink.shutdown();
    let _ = stock.shutdown();
    drop(cases);
    let closed_outcome = closed.shutdown();
    let _ = discard.shutdown();
    let received = sink_process.finish();
    let made = to_sink * (u64::from(WARMUP) + u64::from(REQUESTS) * RUNS as u64);
    println!(
        "\nspans received by the sink: {received} of {made} made; shutdown with the sink: {sink_outcome:?}; \
         with the closed port: {closed_outcome:?}"
    );
}
