//! The browser's side of connecting:
//! - `GET /oauth/m365/start?t=…`: the URL `connectM365` returns. It opens the pending connect in
//!   this browser (once), sets an `HttpOnly`, `SameSite=Lax` cookie with a nonce (`Secure` when
//!   `PUBLIC_URL` is https) and redirects to Microsoft.
//! - `GET /oauth/m365/callback`: where Microsoft sends the browser back after consent. It needs
//!   that cookie (a callback URL completed in another browser is refused as an expired session)
//!   and clears it. The outcome goes to `FRONTEND_URL` (`?m365=connected` or
//!   `?m365_error=CODE`), or, without one, a small page with the guide's message.

use axum::{
    extract::{RawQuery, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{Html, IntoResponse, Redirect, Response},
};

use super::HttpState;
use crate::connect::{self, CallbackError, CallbackParams};

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

fn cookie(s: &HttpState, value: &str, max_age: u64) -> HeaderValue {
    let secure = if s.app.config.public_url().scheme() == "https" { "; Secure" } else { "" };
    let c = format!(
        "{}={value}; Path=/oauth/m365; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}",
        connect::BROWSER_COOKIE
    );
    HeaderValue::from_str(&c).expect("a cookie of URL-safe characters is a header value")
}

fn browser_nonce(headers: &HeaderMap) -> Option<String> {
    headers.get_all(header::COOKIE).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(';')).find_map(|kv| {
        let (k, v) = kv.trim().split_once('=')?;
        (k == connect::BROWSER_COOKIE).then(|| v.to_owned())
    })
}

fn outcome_response(s: &HttpState, outcome: Result<(), CallbackError>) -> Response {
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

/// `GET /oauth/m365/start?t=…`: binds the connect to this browser and goes to Microsoft.
pub async fn start(State(s): State<HttpState>, RawQuery(raw): RawQuery) -> Response {
    let token = url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes())
        .find(|(k, _)| k == "t")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    match connect::begin(&s.app, &token).await {
        Ok(begun) => {
            let mut r = Redirect::to(begun.microsoft_url.as_str()).into_response();
            let max_age = connect::STATE_TTL.as_secs();
            r.headers_mut().insert(header::SET_COOKIE, cookie(&s, &begun.browser_nonce, max_age));
            r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            r
        }
        Err(e) => outcome_response(&s, Err(e)),
    }
}

/// Handles Microsoft's redirect.
pub async fn handler(State(s): State<HttpState>, headers: HeaderMap, RawQuery(raw): RawQuery) -> Response {
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
    let outcome = connect::callback(&s.app, p, browser_nonce(&headers).as_deref()).await.map(|_| ());
    let mut r = outcome_response(&s, outcome);
    // The nonce is single-use: clear it whatever the outcome.
    r.headers_mut().insert(header::SET_COOKIE, cookie(&s, "", 0));
    r
}
