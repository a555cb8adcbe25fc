//! The browser's pages, embedded in the binary: the console at `/` and GraphiQL at
//! `GET /graphql` (for a browser), with the vendored, pinned GraphiQL, React and graphql-ws
//! builds under `/vendor/`. Nothing is fetched from anywhere else at run time, and every page
//! carries a Content-Security-Policy that would refuse it.

use std::{collections::HashMap, sync::LazyLock};

use axum::{
    extract::Path,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use sha2::{Digest, Sha256};

/// One embedded file.
struct Asset {
    bytes: &'static [u8],
    content_type: &'static str,
    /// Versioned paths never change: browsers may keep them a year.
    immutable: bool,
    etag: String,
}

macro_rules! assets {
    ($($path:literal => $file:literal, $ty:expr;)*) => {
        &[$(($path, include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/web/", $file)).as_slice(), $ty)),*]
    };
}

const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const HTML: &str = "text/html; charset=utf-8";
const SVG: &str = "image/svg+xml";
const TEXT: &str = "text/plain; charset=utf-8";

/// Every file served, by URL path.
const FILES: &[(&str, &[u8], &str)] = assets! {
    "/" => "console/index.html", HTML;
    "/console/app.js" => "console/app.js", JS;
    "/console/app.css" => "console/app.css", CSS;
    "/console/icon.svg" => "console/icon.svg", SVG;
    "/favicon.ico" => "console/icon.svg", SVG;
    "/graphiql" => "graphiql/index.html", HTML;
    "/graphiql/init.js" => "graphiql/init.js", JS;
    "/graphiql/graphiql.css" => "graphiql/graphiql.css", CSS;
    "/vendor/graphiql-3.9.0/graphiql.min.js" => "vendor/graphiql-3.9.0/graphiql.min.js", JS;
    "/vendor/graphiql-3.9.0/graphiql.min.css" => "vendor/graphiql-3.9.0/graphiql.min.css", CSS;
    "/vendor/graphiql-3.9.0/LICENSE" => "vendor/graphiql-3.9.0/LICENSE", TEXT;
    "/vendor/react-18.3.1/react.production.min.js" => "vendor/react-18.3.1/react.production.min.js", JS;
    "/vendor/react-18.3.1/LICENSE" => "vendor/react-18.3.1/LICENSE", TEXT;
    "/vendor/react-dom-18.3.1/react-dom.production.min.js" => "vendor/react-dom-18.3.1/react-dom.production.min.js", JS;
    "/vendor/react-dom-18.3.1/LICENSE" => "vendor/react-dom-18.3.1/LICENSE", TEXT;
    "/vendor/graphql-ws-5.16.2/graphql-ws.min.js" => "vendor/graphql-ws-5.16.2/graphql-ws.min.js", JS;
    "/vendor/graphql-ws-5.16.2/LICENSE.md" => "vendor/graphql-ws-5.16.2/LICENSE.md", TEXT;
};

static ASSETS: LazyLock<HashMap<&'static str, Asset>> = LazyLock::new(|| {
    FILES
        .iter()
        .map(|&(path, bytes, content_type)| {
            let digest = Sha256::digest(bytes);
            let etag = format!("\"{}\"", digest.iter().take(12).map(|b| format!("{b:02x}")).collect::<String>());
            (path, Asset { bytes, content_type, immutable: path.starts_with("/vendor/"), etag })
        })
        .collect()
});

/// The console's policy: its own scripts and styles only, API calls to this origin (HTTP and
/// WebSocket), no framing, no plugins, no inline script.
const CONSOLE_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
     connect-src 'self'; font-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// GraphiQL's: the same for scripts; its dialogs add a `<style>` element at run time (the
/// scroll lock of its dialog library), so styles may be inline there, and its stylesheet
/// carries its fonts and icons as `data:` URLs.
const GRAPHIQL_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
     img-src 'self' data:; font-src 'self' data:; connect-src 'self'; form-action 'self'; \
     frame-ancestors 'none'; base-uri 'none'";

/// Serves the embedded file at `path`, or `None` when there is none.
fn serve(path: &str, headers: &HeaderMap) -> Option<Response> {
    let asset = ASSETS.get(path)?;
    let mut r = if headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == asset.etag || t.trim() == "*"))
    {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        ([(header::CONTENT_TYPE, asset.content_type)], asset.bytes).into_response()
    };
    let h = r.headers_mut();
    h.insert(header::ETAG, HeaderValue::from_str(&asset.etag).expect("hex in quotes"));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(if asset.immutable { "public, max-age=31536000, immutable" } else { "no-cache" }),
    );
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    if asset.content_type == HTML {
        let csp = if path == "/graphiql" { GRAPHIQL_CSP } else { CONSOLE_CSP };
        h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(csp));
        h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    }
    Some(r)
}

fn not_found() -> Response {
    (StatusCode::NOT_FOUND, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], "not found").into_response()
}

/// `GET /`: the console.
pub async fn console(headers: HeaderMap) -> Response {
    serve("/", &headers).unwrap_or_else(not_found)
}

/// `GET /favicon.ico`: what browsers ask for on pages that name no icon (the callback's).
pub async fn favicon(headers: HeaderMap) -> Response {
    serve("/favicon.ico", &headers).unwrap_or_else(not_found)
}

/// `GET /console/{file}`: the console's script, styles and icon.
pub async fn console_asset(Path(file): Path<String>, headers: HeaderMap) -> Response {
    serve(&format!("/console/{file}"), &headers).unwrap_or_else(not_found)
}

/// `GET /graphiql/{file}`: GraphiQL's start-up script and styles.
pub async fn graphiql_asset(Path(file): Path<String>, headers: HeaderMap) -> Response {
    serve(&format!("/graphiql/{file}"), &headers).unwrap_or_else(not_found)
}

/// `GET /vendor/{package}/{file}`: the pinned third-party builds.
pub async fn vendor(Path((package, file)): Path<(String, String)>, headers: HeaderMap) -> Response {
    serve(&format!("/vendor/{package}/{file}"), &headers).unwrap_or_else(not_found)
}

/// GraphiQL's page (what `GET /graphql` answers a browser).
pub fn graphiql(headers: &HeaderMap) -> Response {
    serve("/graphiql", headers).unwrap_or_else(not_found)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(bytes: &[u8]) -> String {
        Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The vendored builds are the published ones (see `web/vendor/README.md`).
    #[test]
    fn vendored_assets_are_pinned() {
        let pinned = [
            (
                "/vendor/graphiql-3.9.0/graphiql.min.js",
                "a330a2be1d2389486840a9d0a834767d9083a23f105879e0de54e4fce83d3513",
            ),
            (
                "/vendor/graphiql-3.9.0/graphiql.min.css",
                "bdddd50aac5bdb0edd83e5c862ba2fed9db2964e4c75d4655ab62b0a7d5bd730",
            ),
            (
                "/vendor/react-18.3.1/react.production.min.js",
                "d949f1c3687aedadcedac85261865f29b17cd273997e7f6b2bfc53b2f9d4c4dd",
            ),
            (
                "/vendor/react-dom-18.3.1/react-dom.production.min.js",
                "35f4f974f4b2bcd44da73963347f8952e341f83909e4498227d4e26b98f66f0d",
            ),
            (
                "/vendor/graphql-ws-5.16.2/graphql-ws.min.js",
                "deb8cd1b4feadd52ae0365a4df8a89847f2904c2a8cbdac8756b8d962c0cb8e4",
            ),
        ];
        for (path, digest) in pinned {
            assert_eq!(hex(ASSETS[path].bytes), digest, "{path}");
        }
        // Production builds, not development ones.
        assert!(
            !String::from_utf8_lossy(ASSETS["/vendor/react-18.3.1/react.production.min.js"].bytes)
                .contains("development")
        );
    }

    /// No page or script of ours names another origin: everything comes from the service.
    #[test]
    fn pages_name_no_other_origin() {
        for (path, bytes, _) in FILES.iter().filter(|(p, _, _)| !p.starts_with("/vendor/")) {
            let text = String::from_utf8_lossy(bytes);
            for scheme in ["http://", "https://", "//unpkg", "//cdn"] {
                let hits: Vec<_> =
                    text.match_indices(scheme).filter(|(i, _)| !text[*i..].starts_with("http://www.w3.org/")).collect();
                assert!(hits.is_empty(), "{path} names {scheme}");
            }
            assert!(!text.contains("<script>") && !text.contains(" onclick="), "{path} has inline script");
        }
    }
}
