//! A real HTTP server on 127.0.0.1:0 for the generator to load: counts requests, remembers query
//! strings and when each `/mark/{name}` request arrived, answers any status, and can pause the whole
//! server once.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{any, get};
use tokio::time::Instant;

#[derive(Default)]
pub(crate) struct Stats {
    /// Requests seen, all paths.
    pub(crate) requests: AtomicU64,
    /// Query strings of /echo, in arrival order.
    pub(crate) queries: Mutex<Vec<String>>,
    /// The name of each /mark/{name} request and when it arrived.
    marks: Mutex<Vec<(String, Instant)>>,
    /// The request number (from 1) that pauses the whole server for one second.
    pub(crate) stall_at: AtomicU64,
    stalled_until: Mutex<Option<Instant>>,
}

pub(crate) struct Server {
    pub(crate) base: String,
    pub(crate) stats: Arc<Stats>,
}

impl Server {
    pub(crate) async fn start() -> Self {
        Self::with_stall(0).await
    }

    /// A server whose `stall_at`-th request pauses every request for one second.
    pub(crate) async fn with_stall(stall_at: u64) -> Self {
        let stats = Arc::new(Stats { stall_at: AtomicU64::new(stall_at), ..Stats::default() });
        let app = Router::new()
            .route("/items", get(items))
            .route("/status/{code}", any(status))
            .route("/echo", any(echo))
            .route("/slow/{ms}", get(slow))
            .route("/mark/{name}", get(mark))
            .with_state(stats.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind 127.0.0.1:0");
        let base = format!("http://{}", listener.local_addr().expect("local address"));
        tokio::spawn(async move { axum::serve(listener, app).await.expect("the test server runs") });
        Self { base, stats }
    }

    pub(crate) fn requests(&self) -> u64 {
        self.stats.requests.load(Ordering::SeqCst)
    }

    /// When the `/mark/{name}` requests arrived, earliest first.
    pub(crate) fn arrivals(&self, name: &str) -> Vec<Instant> {
        let marks = self.stats.marks.lock().unwrap();
        let mut times: Vec<Instant> = marks.iter().filter(|(n, _)| n == name).map(|(_, at)| *at).collect();
        times.sort();
        times
    }
}

async fn arrive(stats: &Stats) {
    let n = stats.requests.fetch_add(1, Ordering::SeqCst) + 1;
    let until = {
        let mut until = stats.stalled_until.lock().unwrap();
        if n == stats.stall_at.load(Ordering::SeqCst) {
            *until = Some(Instant::now() + Duration::from_secs(1));
        }
        *until
    };
    if let Some(until) = until {
        tokio::time::sleep_until(until).await;
    }
}

async fn items(State(stats): State<Arc<Stats>>) -> impl IntoResponse {
    arrive(&stats).await;
    ([(header::CONTENT_TYPE, "application/json")], r#"{"items":[{"id":1,"name":"first"},{"id":2}]}"#)
}

async fn status(State(stats): State<Arc<Stats>>, Path(code): Path<u16>) -> impl IntoResponse {
    arrive(&stats).await;
    (StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_REQUEST), format!("status {code}"))
}

async fn echo(State(stats): State<Arc<Stats>>, RawQuery(query): RawQuery, body: String) -> impl IntoResponse {
    arrive(&stats).await;
    stats.queries.lock().unwrap().push(query.unwrap_or_default());
    body
}

/// Answers after `ms` milliseconds.
async fn slow(State(stats): State<Arc<Stats>>, Path(ms): Path<u64>) -> impl IntoResponse {
    arrive(&stats).await;
    tokio::time::sleep(Duration::from_millis(ms)).await;
    "slow"
}

/// Notes when the request arrived, under its `name`.
async fn mark(State(stats): State<Arc<Stats>>, Path(name): Path<String>) -> impl IntoResponse {
    stats.marks.lock().unwrap().push((name, Instant::now()));
    arrive(&stats).await;
    "marked"
}
