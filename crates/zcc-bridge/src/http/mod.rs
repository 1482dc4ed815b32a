//! The HTTP surface: Zoom webhooks, the admin read API, health and metrics.

mod api;
mod chat;
pub mod connections;
mod deliveries;
pub mod error;
mod flow;
mod genesys;
mod live;
mod media;
pub mod openapi;
mod params;
mod webhooks;
mod zoomapp;

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use metrics_exporter_prometheus::PrometheusHandle;
use serde_json::json;
use zoom::WebhookVerifier;

use self::error::{ApiError, Problem};
use crate::config::Secret;
use crate::ingest::EventLog;
use crate::projection::Projection;
use crate::store::Store;

/// The `Range` and entity-tag parsers of `/media` links (public for the fuzz targets in `fuzz/`).
pub use media::{etag_matches, parse_range, RangeRequest};

#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    /// Reads logged events back; holds the Flow sources.
    pub decoder: crate::sources::Decoder,
    /// The live stream (`/api/v1/stream`).
    pub stream: Option<crate::stream::Stream>,
    /// Genesys push sources (`POST /webhooks/genesys/{source}`).
    pub genesys: crate::presence::GenesysOrgs,
    /// Orgs with API access: pushed ringing starts are followed until connected or ended.
    pub genesys_feeds:
        Arc<std::collections::BTreeMap<String, Arc<crate::connectors::genesys::Feed>>>,
    /// Turns true when the server starts shutting down (open streams end so that the shutdown is not held up).
    pub stopping: tokio::sync::watch::Receiver<bool>,
    pub log: EventLog,
    pub projection: Projection,
    pub verifier: Arc<WebhookVerifier>,
    pub admin_token: Option<Secret>,
    pub metrics: PrometheusHandle,
    /// Present when the Zoom REST app is configured.
    pub reconciler: Option<crate::reconcile::Reconciler>,
    /// The media archive's links (absent when the archive is turned off).
    pub media: Option<crate::media::SharedLinks>,
    /// The configured sinks (`/api/v1/sinks`).
    pub sinks: Arc<Vec<crate::config::SinkConfig>>,
    /// The Contact Center Zoom App's backend (`/zoomapp/`).
    pub zoom_app: Option<Arc<crate::zoomapp::ZoomApp>>,
    /// The chatbot channel (`/chat/*`, `/api/v1/chat/*`).
    pub chat: crate::chat::Chat,
}

/// The routes. The unauthenticated endpoints that read bodies or stream files (webhooks, media links) are limited
/// per client address (`connections::per_ip_limit`).
pub fn router(
    state: AppState,
    max_body_bytes: usize,
    connections: Arc<connections::Shared>,
) -> Router {
    let api = api::router(state.clone());
    let zoom_app = zoomapp::router(state.clone(), connections.clone());
    let per_ip = axum::middleware::from_fn_with_state(connections, connections::per_ip_limit);
    Router::new()
        .route("/webhooks/zoom", post(webhooks::zoom))
        .route("/webhooks/flow/{source}", post(flow::post))
        .route("/webhooks/genesys/{source}", post(genesys::post))
        .route("/chat/zoom/{channel}", post(chat::inbound))
        .route("/chat/bot/{channel}/callback", post(chat::callback))
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .route("/media/{kind}/{item_id}", get(media::serve))
        .route(
            "/media/{kind}/{item_id}/permalink/{token}",
            get(media::permalink),
        )
        .layer(per_ip)
        .nest("/api/v1", api)
        .merge(zoom_app)
        .route("/api/v1/openapi.json", get(openapi::document))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
}

/// Unknown routes answer a problem document like every other error.
async fn not_found() -> ApiError {
    ApiError::not_found("no such route")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "the route does not take this method",
    )
}

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "health", security(()),
    responses((status = 200, description = "`status`: `ok`", body = Object)))]
async fn healthz() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

/// The database is reachable, migrations are applied and the records caught up with the log at start.
#[utoipa::path(get, path = "/readyz", tag = "health", security(()),
    responses(
        (status = 200, description = "`status`: `ready`, and the `backend`", body = Object),
        (status = 503, description = "Not ready, and why", body = Problem, content_type = "application/problem+json"),
    ))]
async fn readyz(State(app): State<AppState>) -> Response {
    if !app.projection.recovered() {
        return ApiError::response(
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: merging events queued before start-up into records",
        );
    }
    match app.store.ready().await {
        Ok(()) => Json(json!({"status": "ready", "backend": app.store.backend()})).into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "not ready");
            ApiError::response(StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {e}"))
        }
    }
}

/// Prometheus metrics (text exposition format; README "Metrics").
#[utoipa::path(get, path = "/metrics", tag = "health", security(()),
    responses((status = 200, description = "The metrics", content_type = "text/plain")))]
async fn metrics(State(app): State<AppState>) -> Response {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        app.metrics.render(),
    )
        .into_response()
}

impl AppState {
    /// Records are merged moments after the acknowledgement; a read waits until everything acknowledged before it
    /// is merged, so a client always reads its own writes. Under extreme lag it serves what is there.
    pub async fn wait_for_projection(&self) {
        if !self.projection.caught_up(PROJECTION_WAIT).await {
            tracing::warn!(wait = ?PROJECTION_WAIT, "records lag behind the event log; serving them as they are");
        }
    }
}

const PROJECTION_WAIT: std::time::Duration = std::time::Duration::from_secs(5);
