//! HTTP: the axum router, GraphQL over HTTP and WebSocket, health, request ids and tracing.

pub mod callback;
pub mod graphql;
pub mod ws;

use axum::{
    Router,
    extract::{DefaultBodyLimit, State},
    http::{HeaderName, Request, StatusCode},
    routing::get,
};
use tower_http::{
    request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer},
    trace::TraceLayer,
};

use crate::{app::AppState, db, graphql::AppSchema};

/// State of the HTTP handlers.
#[derive(Clone)]
pub struct HttpState {
    /// The app.
    pub app: AppState,
    /// The GraphQL schema.
    pub schema: AppSchema,
}

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// All routes with their layers.
pub fn router(app: AppState, schema: AppSchema) -> Router {
    let body_limit = app.config.body_limit_bytes;
    let state = HttpState { app, schema };
    Router::new()
        .route("/graphql", get(graphql::get_handler).post(graphql::post_handler))
        .route("/graphql/ws", get(ws::handler))
        .route("/oauth/m365/callback", get(callback::handler))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .with_state(state)
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(TraceLayer::new_for_http().make_span_with(|req: &Request<_>| {
            let id = req.headers().get(REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or("-");
            tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id = %id)
        }))
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
}

/// 200 when the database answers, 503 otherwise.
async fn readyz(State(s): State<HttpState>) -> (StatusCode, &'static str) {
    if db::ping(&s.app.db).await {
        (StatusCode::OK, "ready")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "database unreachable")
    }
}
