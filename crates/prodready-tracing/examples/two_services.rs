//! Two instrumented axum services, A calling B: one trace across the HTTP hop, and log lines that carry
//! its trace id.
//!
//! ```text
//! cargo run -p prodready-tracing --features axum --example two_services -- \
//!     [--exporter otlp|grpc|zipkin|none] [--endpoint URL] [--serve]
//! ```
//!
//! Service A (`orders`) answers `GET /order/{item}` by asking service B (`stock`) for
//! `GET /stock/{item}` with reqwest. Without `--serve` the example sends one request to A, prints the
//! answer and its trace id, and stops both services (which flushes their spans); with `--serve` it
//! keeps them running until Ctrl-C. The `OTEL_*` variables apply ([`Options::from_env`]); the flags win
//! over them. JSON log lines go to stderr.
//!
//! What each service does, as a process of its own would:
//!
//! - [`prodready_tracing::init`] with its own [`Options`]: its own tracer provider, so its spans carry
//!   its own `service.name`. (Both services live in one process here; each runs on a thread and a
//!   current-thread runtime of its own, with its own subscriber as that thread's default.)
//! - A subscriber of a filter, [`prodready_tracing::Guard::layer`] and the logging crate's
//!   [`JsonLayer`] (feature `otel`): every log line written inside a request carries `trace_id` and
//!   `span_id`.
//! - A router with [`RequestLogLayer`] inside [`ServerLayer`]: the server span (route from axum's
//!   `MatchedPath`, status from the response, context extracted from `traceparent`) is opened first,
//!   so the request log line belongs to its trace. The request layer's own `request` span shows up in
//!   the trace as an internal span between the server span and what the handler does.
//! - A's outgoing call inside a `client` span whose context [`prodready_tracing::inject`] writes into
//!   the request's headers; B's [`ServerLayer`] extracts it, so B's server span is the client span's
//!   child.
//!
//! The test `tests/example.rs` runs this file's functions against oteltap (OTLP/HTTP),
//! fake-opentelemetry-collector (OTLP/gRPC) and a Zipkin v2 receiver.

#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::error::Error;
use std::time::Duration;

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::routing::get;
use prodready_logging::{JsonLayer, RequestLogLayer};
use prodready_tracing::layer::ServerLayer;
use prodready_tracing::{Exporter, Guard, Options, Protocol};
use tracing::Instrument as _;
use tracing::field::Empty;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt as _;

type BoxError = Box<dyn Error + Send + Sync>;

/// The command line: which exporter, where to, and whether to keep serving.
#[derive(Debug, Clone, Default)]
pub(crate) struct Args {
    /// `otlp` (http/protobuf), `grpc`, `zipkin` or `none`.
    pub(crate) exporter: Option<String>,
    /// The collector: an OTLP base URL (`http://127.0.0.1:4318`), a gRPC endpoint
    /// (`http://127.0.0.1:4317`) or Zipkin's spans URL (`http://127.0.0.1:9411/api/v2/spans`).
    pub(crate) endpoint: Option<String>,
    pub(crate) serve: bool,
}

impl Args {
    pub(crate) fn parse(mut args: impl Iterator<Item = String>) -> Result<Self, String> {
        let mut parsed = Self::default();
        while let Some(arg) = args.next() {
            let mut value = |flag: &str| args.next().ok_or_else(|| format!("{flag} needs a value"));
            match arg.as_str() {
                "--exporter" => parsed.exporter = Some(value("--exporter")?),
                "--endpoint" => parsed.endpoint = Some(value("--endpoint")?),
                "--serve" => parsed.serve = true,
                other => {
                    return Err(format!(
                        "unknown argument `{other}` (use --exporter otlp|grpc|zipkin|none, \
                         --endpoint URL, --serve)"
                    ));
                }
            }
        }
        Ok(parsed)
    }
}

/// A service's options: the `OTEL_*` variables read through `env`, then the flags.
pub(crate) fn options(
    service: &str,
    args: &Args,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Options, BoxError> {
    let mut options = Options::new(service).from_env(env)?;
    // OTEL_SERVICE_NAME names a process; this one holds two services, each keeps its own name.
    options.service_name = service.to_owned();
    let endpoint = args.endpoint.clone();
    if let Some(exporter) = &args.exporter {
        let or = |default: &str| endpoint.clone().unwrap_or_else(|| default.to_owned());
        options.exporter = match exporter.as_str() {
            "otlp" => Exporter::Otlp {
                endpoint: or(prodready_tracing::DEFAULT_OTLP_ENDPOINT),
                protocol: Protocol::HttpProtobuf,
                headers: Vec::new(),
            },
            "grpc" => Exporter::Otlp {
                endpoint: or(prodready_tracing::DEFAULT_OTLP_GRPC_ENDPOINT),
                protocol: Protocol::Grpc,
                headers: Vec::new(),
            },
            "zipkin" => Exporter::Zipkin { endpoint: or(prodready_tracing::DEFAULT_ZIPKIN_ENDPOINT) },
            "none" => Exporter::None,
            other => return Err(format!("unknown exporter `{other}` (otlp, grpc, zipkin or none)").into()),
        };
    } else if let Some(url) = endpoint {
        match &mut options.exporter {
            Exporter::Otlp { endpoint, .. } | Exporter::Zipkin { endpoint } => *endpoint = url,
            _ => return Err("--endpoint needs an exporter (--exporter otlp|grpc|zipkin)".into()),
        }
    }
    options.validate()?;
    Ok(options)
}

/// Service B: how many of an item are in stock.
pub(crate) fn stock_router() -> Router {
    Router::new()
        .route(
            "/stock/{item}",
            get(|Path(item): Path<u32>| async move {
                let count = item * 7 % 13;
                tracing::info!(item, count, "stock looked up");
                count.to_string()
            }),
        )
        .layer(RequestLogLayer::new())
        .layer(ServerLayer)
}

/// Service A: places an order after asking B (at `stock_url`) what is in stock. Answers with the trace
/// id in `x-trace-id`, for looking the trace up.
pub(crate) fn orders_router(stock_url: String) -> Router {
    let client = reqwest::Client::new();
    Router::new()
        .route(
            "/order/{item}",
            get(move |Path(item): Path<u32>| order(client.clone(), stock_url.clone(), item)),
        )
        .layer(RequestLogLayer::new())
        .layer(ServerLayer)
}

async fn order(client: reqwest::Client, stock_url: String, item: u32) -> (StatusCode, HeaderMap, String) {
    let mut headers = HeaderMap::new();
    if let Some(id) = prodready_tracing::current_trace_id().and_then(|id| HeaderValue::from_str(&id).ok()) {
        headers.insert("x-trace-id", id);
    }
    match stock_level(&client, &format!("{stock_url}/stock/{item}")).await {
        Ok(0) => {
            tracing::warn!(item, "out of stock");
            (StatusCode::CONFLICT, headers, format!("item {item} is out of stock\n"))
        }
        Ok(count) => {
            tracing::info!(item, in_stock = count, "order placed");
            (StatusCode::OK, headers, format!("ordered item {item} ({count} in stock)\n"))
        }
        Err(error) => {
            tracing::error!(item, %error, "stock service failed");
            (StatusCode::BAD_GATEWAY, headers, format!("stock service failed: {error}\n"))
        }
    }
}

/// The outgoing call, in a `client` span whose context goes out in the request's headers.
async fn stock_level(client: &reqwest::Client, url: &str) -> Result<u32, String> {
    let uri = url.parse::<http::Uri>().ok();
    let span = tracing::info_span!(
        "stock request",
        otel.name = "GET /stock/{item}",
        otel.kind = "client",
        http.request.method = "GET",
        url.full = url,
        url.template = "/stock/{item}",
        server.address = uri.as_ref().and_then(http::Uri::host),
        server.port = uri.as_ref().and_then(http::Uri::port_u16).map(i64::from),
        http.response.status_code = Empty,
        otel.status_code = Empty,
        error.type = Empty,
    );
    let recorded = span.clone();
    async move {
        let mut headers = HeaderMap::new();
        prodready_tracing::inject(&mut headers);
        let outcome = async {
            let response = client.get(url).headers(headers).send().await.map_err(|e| e.to_string())?;
            let status = response.status();
            // An i64: tracing-opentelemetry would record a u16 as a string.
            recorded.record("http.response.status_code", i64::from(status.as_u16()));
            if !status.is_success() {
                return Err(format!("{url} answered {status}"));
            }
            let body = response.text().await.map_err(|e| e.to_string())?;
            body.trim().parse::<u32>().map_err(|_| format!("{url} answered `{body}`, not a count"))
        }
        .await;
        if let Err(error) = &outcome {
            recorded.record("otel.status_code", "ERROR");
            recorded.record("error.type", error.as_str());
        }
        outcome
    }
    .instrument(span)
    .await
}

/// One running service: its URL, its thread and runtime, and its tracing guard.
pub(crate) struct Service {
    pub(crate) url: String,
    stop: tokio::sync::oneshot::Sender<()>,
    thread: std::thread::JoinHandle<std::io::Result<()>>,
    guard: Guard,
}

impl Service {
    /// Starts `router` on a free loopback port, traced and logged as `options` and `logs` say.
    pub(crate) fn start<W>(options: &Options, logs: W, router: Router) -> Result<Self, BoxError>
    where
        W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
    {
        let guard = prodready_tracing::init(options)?;
        let subscriber = tracing_subscriber::registry()
            .with(prodready_logging::filter("info")?)
            .with(guard.layer("two_services"))
            .with(JsonLayer::new(logs));
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let url = format!("http://{}", listener.local_addr()?);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new().name(options.service_name.clone()).spawn(move || {
            // Everything this service does runs on this thread, so this subscriber sees all of it.
            let _default = tracing::subscriber::set_default(subscriber);
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener)?;
                axum::serve(listener, router)
                    .with_graceful_shutdown(async {
                        let _ = stopped.await;
                    })
                    .await
            })
        })?;
        Ok(Self { url, stop, thread, guard })
    }

    /// Stops serving (requests in flight finish, so their spans end), then flushes the spans within the
    /// guard's deadline.
    pub(crate) fn stop(self) -> Result<(), BoxError> {
        let _ = self.stop.send(());
        self.thread.join().map_err(|_| "the service's thread panicked")??;
        self.guard.shutdown()?;
        Ok(())
    }
}

/// What one request through both services answered.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) body: String,
    pub(crate) trace_id: Option<String>,
}

/// Starts B, then A calling B; both log JSON lines through `logs`.
pub(crate) fn start_both<W>(
    args: &Args,
    env: impl Fn(&str) -> Option<String>,
    logs: W,
) -> Result<[Service; 2], BoxError>
where
    W: for<'w> MakeWriter<'w> + Clone + Send + Sync + 'static,
{
    let stock = Service::start(&options("stock", args, &env)?, logs.clone(), stock_router())?;
    let orders = Service::start(&options("orders", args, &env)?, logs, orders_router(stock.url.clone()))?;
    Ok([orders, stock])
}

/// The demo: both services, one order from a caller without trace context (A's server span is the
/// trace's root), then both stopped and flushed (A first: its connections to B close with it).
pub(crate) fn run<W>(args: &Args, env: impl Fn(&str) -> Option<String>, logs: W) -> Result<Answer, BoxError>
where
    W: for<'w> MakeWriter<'w> + Clone + Send + Sync + 'static,
{
    let [orders, stock] = start_both(args, env, logs)?;
    let answer = order_once(&orders.url, 7);
    orders.stop()?;
    stock.stop()?;
    answer
}

/// `GET {orders}/order/{item}`, as a caller outside both services.
pub(crate) fn order_once(orders: &str, item: u32) -> Result<Answer, BoxError> {
    let client = reqwest::blocking::Client::builder().timeout(Duration::from_secs(10)).build()?;
    let response = client.get(format!("{orders}/order/{item}")).send()?;
    let status = response.status().as_u16();
    let trace_id = response.headers().get("x-trace-id").and_then(|v| v.to_str().ok()).map(str::to_owned);
    Ok(Answer { status, body: response.text()?, trace_id })
}

fn main() -> Result<(), BoxError> {
    let args = Args::parse(std::env::args().skip(1))?;
    #[allow(clippy::disallowed_methods)] // A program reads its environment; libraries do not.
    let env = |name: &str| std::env::var(name).ok();
    if args.serve {
        let [orders, stock] = start_both(&args, env, std::io::stderr)?;
        println!("orders (A): {}/order/7", orders.url);
        println!("stock (B): {}/stock/7", stock.url);
        println!("Ctrl-C stops both and flushes their spans");
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
            .block_on(tokio::signal::ctrl_c())?;
        orders.stop()?;
        stock.stop()?;
        return Ok(());
    }
    let answer = run(&args, env, std::io::stderr)?;
    print!("{} {}", answer.status, answer.body);
    match answer.trace_id {
        Some(id) => println!("trace id: {id}"),
        None => println!("no trace id (the trace was not sampled)"),
    }
    Ok(())
}
