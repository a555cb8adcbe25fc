//! `GET /oauth/m365/callback`: where Microsoft sends the browser back after consent. The
//! outcome goes to `FRONTEND_URL` (`?m365=connected` or `?m365_error=CODE`), or, without one, a
//! small page with the guide's message.

use axum::{
    extract::{RawQuery, State},
    http::StatusCode,
    response::{Html, IntoResponse, Redirect, Response},
};

use super::HttpState;
use crate::connect::{self, CallbackParams};

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        r#"<!doctype html><html><head><meta charset="utf-8"><title>{t}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:560px;margin:60px auto;line-height:1.5}}</style></head>
<body><h1>{t}</h1><p>{b}</p></body></html>"#,
        t = escape(title),
        b = escape(body)
    );
    (status, Html(html)).into_response()
}

/// Handles Microsoft's redirect.
pub async fn handler(State(s): State<HttpState>, RawQuery(raw): RawQuery) -> Response {
    let mut p = CallbackParams::default();
    for (k, v) in url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes()) {
        let slot = match k.as_ref() {
            "code" => &mut p.code,
            "state" => &mut p.state,
            "error" => &mut p.error,
            "error_description" => &mut p.error_description,
            "error_subcode" => &mut p.error_subcode,
            _ => continue,
        };
        slot.get_or_insert_with(|| v.into_owned());
    }
    let outcome = connect::callback(&s.app, p).await;
    if let Some(front) = &s.app.config.frontend_url {
        let mut url = front.clone();
        match &outcome {
            Ok(_) => url.query_pairs_mut().append_pair("m365", "connected"),
            Err(e) => url.query_pairs_mut().append_pair("m365_error", e.code()),
        };
        return Redirect::to(url.as_str()).into_response();
    }
    match outcome {
        Ok(_) => page(
            StatusCode::OK,
            "Microsoft 365 is connected",
            "Scopable stored the connection and started the first sync. You can close this tab and return to the Microsoft 365 page.",
        ),
        Err(e) => page(StatusCode::BAD_REQUEST, &e.message(), e.help()),
    }
}
