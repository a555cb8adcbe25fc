//! GraphQL over HTTP, following the GraphQL-over-HTTP specification: `Accept` negotiation
//! (`application/graphql-response+json`, `application/json`), queries over GET (a mutation
//! over GET is 405), JSON-only POST (else 415, which also closes the cross-site form route),
//! request errors as 4xx under `application/graphql-response+json`, GraphiQL for browsers.

use async_graphql::{
    Request,
    parser::{parse_query, types::OperationType},
};
use axum::{
    body::Bytes,
    extract::rejection::BytesRejection,
    extract::{RawQuery, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde_json::{Value, json};

use super::HttpState;
use crate::{auth::Auth, error::codes, graphql::fast::Splice};

/// The media type the response uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Media {
    GraphqlResponse,
    Json,
}

impl Media {
    fn content_type(self) -> &'static str {
        match self {
            Self::GraphqlResponse => "application/graphql-response+json; charset=utf-8",
            Self::Json => "application/json; charset=utf-8",
        }
    }
}

/// Picks the response media type from `Accept`; `None` means 406.
fn negotiate(headers: &HeaderMap) -> Option<Media> {
    let Some(accept) = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) else {
        return Some(Media::Json);
    };
    let mut json = false;
    for part in accept.split(',') {
        let mut it = part.split(';');
        let ty = it.next().unwrap_or("").trim().to_ascii_lowercase();
        let refused = it.any(|p| matches!(p.trim().replace(' ', "").as_str(), "q=0" | "q=0.0" | "q=0.00" | "q=0.000"));
        if refused {
            continue;
        }
        match ty.as_str() {
            "application/graphql-response+json" => return Some(Media::GraphqlResponse),
            "application/json" | "application/*" | "*/*" => json = true,
            _ => {}
        }
    }
    json.then_some(Media::Json)
}

fn wants_html(headers: &HeaderMap) -> bool {
    headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|a| a.contains("text/html"))
}

/// A response carrying only a request error (no `data`), with a code.
fn request_error(status: StatusCode, media: Media, code: &str, message: impl Into<String>) -> Response {
    let body = json!({"errors": [{"message": message.into(), "extensions": {"code": code}}]});
    // Under legacy application/json the spec keeps 200 for GraphQL errors, but a request that
    // is not GraphQL at all (bad JSON, wrong method) is an HTTP error either way.
    (status, [(header::CONTENT_TYPE, media.content_type())], body.to_string()).into_response()
}

/// The answer to a request stopped at `REQUEST_TIMEOUT_SECS` (503, so clients may retry).
fn timed_out(s: &HttpState, media: Media) -> Response {
    let body = json!({"errors": [crate::graphql::timeout_error(&s.app.config)]});
    let headers = [(header::CONTENT_TYPE, media.content_type()), (header::RETRY_AFTER, "5")];
    (StatusCode::SERVICE_UNAVAILABLE, headers, body.to_string()).into_response()
}

fn not_acceptable() -> Response {
    request_error(
        StatusCode::NOT_ACCEPTABLE,
        Media::Json,
        "BAD_USER_INPUT",
        "Accept must allow application/graphql-response+json or application/json",
    )
}

fn auth_of(s: &HttpState, headers: &HeaderMap) -> Auth {
    Auth::from_header(&s.app.auth, headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()))
}

async fn execute(s: &HttpState, headers: &HeaderMap, req: Request, media: Media) -> Response {
    // The users page writes its JSON ahead; the response is written with it spliced in.
    let splice = std::sync::Arc::new(Splice::default());
    let req = crate::graphql::loaders::attach(req.data(auth_of(s, headers)).data(splice.clone()), &s.app.db);
    let Some(resp) = crate::graphql::execute_bounded(&s.schema, &s.app.config, req).await else {
        return timed_out(s, media);
    };
    let request_error = resp.data == async_graphql::Value::Null
        && !resp.errors.is_empty()
        && resp.errors.iter().all(|e| e.path.is_empty());
    if !request_error {
        // The common case: the response straight to bytes (no JSON tree in between; a profile
        // of the users page showed building one cost a tenth of the request).
        let body =
            splice.write(&resp).unwrap_or_else(|_| br#"{"errors":[{"message":"serialization failed"}]}"#.to_vec());
        return (StatusCode::OK, [(header::CONTENT_TYPE, media.content_type())], body).into_response();
    }
    let mut body =
        serde_json::to_value(&resp).unwrap_or_else(|_| json!({"errors":[{"message":"serialization failed"}]}));
    let status = {
        if let Value::Object(map) = &mut body {
            map.remove("data");
            // Parse and validation errors (depth, complexity, unknown fields) carry no code of
            // their own; give them the one callers branch on.
            if let Some(Value::Array(errors)) = map.get_mut("errors") {
                for e in errors.iter_mut().filter_map(Value::as_object_mut) {
                    let ext = e.entry("extensions").or_insert_with(|| json!({}));
                    if let Value::Object(ext) = ext {
                        ext.entry("code").or_insert_with(|| json!(codes::BAD_USER_INPUT));
                    }
                }
            }
        }
        if media == Media::GraphqlResponse { StatusCode::BAD_REQUEST } else { StatusCode::OK }
    };
    (status, [(header::CONTENT_TYPE, media.content_type())], body.to_string()).into_response()
}

/// A body that could not be read, answered with a code like every other limit: 413
/// `PAYLOAD_TOO_LARGE` over `BODY_LIMIT_BYTES`, 408 `BODY_TIMEOUT` past `HTTP_BODY_TIMEOUT_SECS`.
fn unreadable_body(s: &HttpState, media: Media, rejection: BytesRejection) -> Response {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        let limit = s.app.config.body_limit_bytes;
        let msg = format!("The request body is larger than {limit} bytes (BODY_LIMIT_BYTES).");
        return request_error(StatusCode::PAYLOAD_TOO_LARGE, media, codes::PAYLOAD_TOO_LARGE, msg);
    }
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&rejection);
    while let Some(e) = source {
        if e.is::<tower_http::timeout::TimeoutError>() {
            let secs = s.app.config.http_body_timeout_secs.max(1);
            let msg = format!("The request body did not arrive within {secs} seconds (HTTP_BODY_TIMEOUT_SECS).");
            return request_error(StatusCode::REQUEST_TIMEOUT, media, codes::BODY_TIMEOUT, msg);
        }
        source = e.source();
    }
    request_error(rejection.status(), media, "BAD_USER_INPUT", rejection.body_text())
}

/// `POST /graphql`.
pub async fn post_handler(
    State(s): State<HttpState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let Some(media) = negotiate(&headers) else { return not_acceptable() };
    let body = match body {
        Ok(b) => b,
        Err(rejection) => return unreadable_body(&s, media, rejection),
    };
    let ct = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let essence = ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    if essence != "application/json" {
        return request_error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            media,
            "BAD_USER_INPUT",
            "POST /graphql needs Content-Type: application/json",
        );
    }
    let req: Request = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return request_error(
                StatusCode::BAD_REQUEST,
                media,
                "BAD_USER_INPUT",
                format!("the body is not a GraphQL request: {e}"),
            );
        }
    };
    execute(&s, &headers, req, media).await
}

/// `GET /graphql`: GraphiQL for a browser, else a query from the URL parameters.
pub async fn get_handler(State(s): State<HttpState>, headers: HeaderMap, RawQuery(raw): RawQuery) -> Response {
    let params: Vec<(String, String)> =
        raw.as_deref().map(|q| url::form_urlencoded::parse(q.as_bytes()).into_owned().collect()).unwrap_or_default();
    let param = |name: &str| params.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    let Some(query) = param("query") else {
        if wants_html(&headers) {
            return super::web::graphiql(&headers);
        }
        let media = negotiate(&headers).unwrap_or(Media::Json);
        return request_error(StatusCode::BAD_REQUEST, media, "BAD_USER_INPUT", "GET /graphql needs a query parameter");
    };
    let Some(media) = negotiate(&headers) else { return not_acceptable() };
    let operation_name = param("operationName").filter(|s| !s.is_empty());
    // The lexical limits hold before this parse too (the parser is what deep values attack).
    if let Err(e) = crate::graphql::document_limits(&s.app.config).scan(&query) {
        let status = if media == Media::GraphqlResponse { StatusCode::BAD_REQUEST } else { StatusCode::OK };
        let body = json!({"errors": [e.into_server_error()]});
        return (status, [(header::CONTENT_TYPE, media.content_type())], body.to_string()).into_response();
    }
    // Over GET only queries run (a GET must not change anything).
    match parse_query(&query) {
        Ok(doc) => {
            let op = doc
                .operations
                .iter()
                .find(|(name, _)| operation_name.is_none() || name.map(|n| n.as_str()) == operation_name.as_deref());
            if let Some((_, op)) = op
                && op.node.ty != OperationType::Query
            {
                let mut r = request_error(
                    StatusCode::METHOD_NOT_ALLOWED,
                    media,
                    "BAD_USER_INPUT",
                    "only queries may be sent over GET; send mutations with POST",
                );
                r.headers_mut().insert(header::ALLOW, HeaderValue::from_static("POST"));
                return r;
            }
        }
        Err(e) => {
            return request_error(
                if media == Media::GraphqlResponse { StatusCode::BAD_REQUEST } else { StatusCode::OK },
                media,
                "BAD_USER_INPUT",
                e.to_string(),
            );
        }
    }
    let mut req = Request::new(query);
    if let Some(name) = operation_name {
        req = req.operation_name(name);
    }
    if let Some(vars) = param("variables").filter(|v| !v.is_empty()) {
        match serde_json::from_str::<Value>(&vars) {
            Ok(v) => req = req.variables(async_graphql::Variables::from_json(v)),
            Err(e) => {
                return request_error(
                    StatusCode::BAD_REQUEST,
                    media,
                    "BAD_USER_INPUT",
                    format!("variables is not JSON: {e}"),
                );
            }
        }
    }
    execute(&s, &headers, req, media).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT, HeaderValue::from_str(v).unwrap());
        h
    }

    #[test]
    fn negotiation() {
        assert_eq!(negotiate(&HeaderMap::new()), Some(Media::Json));
        assert_eq!(
            negotiate(&accept("application/graphql-response+json, application/json;q=0.9")),
            Some(Media::GraphqlResponse)
        );
        assert_eq!(negotiate(&accept("application/json")), Some(Media::Json));
        assert_eq!(negotiate(&accept("*/*")), Some(Media::Json));
        assert_eq!(negotiate(&accept("text/plain")), None);
        assert_eq!(negotiate(&accept("application/graphql-response+json;q=0, application/json")), Some(Media::Json));
    }
}
