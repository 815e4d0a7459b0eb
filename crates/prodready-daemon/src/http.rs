//! `/metrics`, `/healthz`, `/readyz`, `/status.json` and the status page `/`.

use std::sync::Arc;
use std::time::SystemTime;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::{StatusCode, header};

use crate::StatusSections;
use crate::status::Shared;

#[derive(Clone)]
struct App {
    shared: Arc<Shared>,
    sections: Arc<dyn StatusSections>,
}

pub(crate) fn router(shared: Arc<Shared>, sections: Arc<dyn StatusSections>) -> axum::Router {
    let registry =
        Arc::new(std::sync::Mutex::new(crate::metrics::registry(shared.clone(), sections.collectors())));
    axum::Router::new()
        .route("/", get(page))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/status.json", get(status_json))
        .route_service("/metrics", prodready_metrics::exposition::MetricsService::new(registry))
        .with_state(App { shared, sections })
}

async fn readyz(State(app): State<App>) -> Response {
    let role = app.shared.with(|s| s.role.clone());
    match &role {
        r if r.ready() => (StatusCode::OK, format!("ready: {}\n", r.name())).into_response(),
        crate::Role::Unreachable(problem) => {
            (StatusCode::SERVICE_UNAVAILABLE, format!("not ready: lock database unreachable: {problem}\n"))
                .into_response()
        }
        r => (StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {}\n", r.name())).into_response(),
    }
}

async fn status_json(State(app): State<App>) -> Response {
    let body = app.shared.with(|s| {
        serde_json::json!({
            "replica": s.replica,
            "role": s.role.name(),
            "problem": match &s.role { crate::Role::Unreachable(p) => Some(p.clone()), _ => None },
            "jobs": s.jobs,
        })
    });
    ([(header::CACHE_CONTROL, "no-store")], axum::Json(body)).into_response()
}

async fn page(State(app): State<App>) -> Response {
    let provider = app.sections.clone();
    let sections = tokio::task::spawn_blocking(move || provider.sections()).await.unwrap_or_default();
    let html = app.shared.with(|s| {
        crate::page::render(&crate::page::PageData {
            replica: &s.replica,
            role: &s.role,
            started_at: s.started_at,
            now: SystemTime::now(),
            jobs: &s.jobs,
            sections: &sections,
        })
    });
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CONTENT_SECURITY_POLICY, crate::page::CSP),
            (header::CACHE_CONTROL, "no-store"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        html,
    )
        .into_response()
}
