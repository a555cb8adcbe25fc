//! HTTP: the axum router, GraphQL over HTTP and WebSocket, health, request ids and tracing.

pub mod callback;
pub mod evidence;
pub mod feeds;
pub mod graphql;
pub mod server;
pub mod web;
pub mod ws;

use axum::{
    Router,
    extract::{DefaultBodyLimit, State},
    http::{HeaderName, Request, StatusCode},
    routing::get,
};
use tower_http::{
    request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer},
    timeout::RequestBodyTimeoutLayer,
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
    /// Open WebSockets per token subject.
    pub sockets: ws::SocketCounts,
    /// Evidence exports streaming, per account and in all.
    pub exports: ws::SocketCounts,
    /// Subscriptions shared by subscribers who send the same one.
    pub feeds: std::sync::Arc<feeds::Feeds>,
}

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// All routes with their layers.
pub fn router(app: AppState, schema: AppSchema) -> Router {
    let body_limit = app.config.body_limit_bytes;
    let body_timeout = std::time::Duration::from_secs(app.config.http_body_timeout_secs.max(1));
    let state = HttpState {
        app,
        schema,
        sockets: ws::SocketCounts::default(),
        exports: ws::SocketCounts::default(),
        feeds: Default::default(),
    };
    Router::new()
        .route("/graphql", get(graphql::get_handler).post(graphql::post_handler))
        .route("/graphql/ws", get(ws::handler))
        .route("/oauth/m365/start", get(callback::start))
        .route("/oauth/m365/callback", get(callback::handler))
        .route("/evidence/mfa", get(evidence::export))
        .route("/metrics", get(metrics))
        .route("/", get(web::console))
        .route("/favicon.ico", get(web::favicon))
        .route("/console/{file}", get(web::console_asset))
        .route("/graphiql/{file}", get(web::graphiql_asset))
        .route("/vendor/{package}/{file}", get(web::vendor))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route_layer(axum::middleware::from_fn(track))
        .with_state(state)
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(RequestBodyTimeoutLayer::new(body_timeout))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(TraceLayer::new_for_http().make_span_with(|req: &Request<_>| {
            let id = req.headers().get(REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or("-");
            tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id = %id)
        }))
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
        .layer(axum::middleware::map_request(drop_unsafe_request_id))
}

/// A client's `X-Request-Id` is kept only when it is short and plain (letters, digits, `-_.:`),
/// so it cannot forge log lines or bloat them; otherwise a fresh id replaces it.
async fn drop_unsafe_request_id<B>(mut req: Request<B>) -> Request<B> {
    if req.headers().get(REQUEST_ID).is_some_and(|v| !is_safe_request_id(v.as_bytes())) {
        req.headers_mut().remove(REQUEST_ID);
    }
    req
}

fn is_safe_request_id(id: &[u8]) -> bool {
    (1..=128).contains(&id.len())
        && id.iter().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

/// Counts and times each request by its route (the matched pattern, never the URL) and status.
async fn track(req: Request<axum::body::Body>, next: axum::middleware::Next) -> axum::response::Response {
    let route = req.extensions().get::<axum::extract::MatchedPath>().map_or("unmatched", |p| p.as_str()).to_owned();
    let start = std::time::Instant::now();
    let resp = next.run(req).await;
    metrics::counter!("http_requests_total", "route" => route.clone(), "status" => resp.status().as_u16().to_string())
        .increment(1);
    metrics::histogram!("http_request_duration_seconds", "route" => route).record(start.elapsed().as_secs_f64());
    resp
}

/// `GET /metrics`: Prometheus text. With `METRICS_TOKEN` set, only with that Bearer token.
async fn metrics(State(s): State<HttpState>, headers: axum::http::HeaderMap) -> axum::response::Response {
    use axum::{http::header, response::IntoResponse};
    if let Some(expected) = &s.app.config.metrics_token {
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' ').filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer")))
            .map(|(_, t)| t.trim());
        if !given.is_some_and(|t| crate::metrics::token_matches(expected.expose(), t)) {
            let body = serde_json::json!({"errors": [{"message": "GET /metrics needs Authorization: Bearer <METRICS_TOKEN>", "extensions": {"code": "UNAUTHENTICATED"}}]});
            return (
                StatusCode::UNAUTHORIZED,
                [(header::CONTENT_TYPE, "application/json; charset=utf-8"), (header::WWW_AUTHENTICATE, "Bearer")],
                body.to_string(),
            )
                .into_response();
        }
    }
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        crate::metrics::render(&s.app.db),
    )
        .into_response()
}

/// 200 when the database answers, 503 otherwise.
async fn readyz(State(s): State<HttpState>) -> (StatusCode, &'static str) {
    if db::ping(&s.app.db).await {
        (StatusCode::OK, "ready")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "database unreachable")
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn request_ids() {
        assert!(super::is_safe_request_id(b"3f2a-11:req_7.x"));
        assert!(!super::is_safe_request_id(b""));
        assert!(!super::is_safe_request_id(b"a\nlevel=error forged"));
        assert!(!super::is_safe_request_id("caf\u{e9}".as_bytes()));
        assert!(!super::is_safe_request_id(&[b'a'; 129]));
    }
}
