//! The console and GraphiQL as HTTP: every page and script comes from the binary, with a
//! Content-Security-Policy, cache validators, and nothing that points elsewhere. (What they look
//! like and do in a browser is `tests/browser.rs`.)

use crate::helpers::TestApp;

#[tokio::test]
async fn pages_come_from_the_binary_with_a_strict_policy() {
    let app = TestApp::spawn().await;
    for (path, accept) in [("/", "text/html"), ("/graphql", "text/html,application/xhtml+xml")] {
        let r = app.http.get(app.url(path)).header("accept", accept).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
        let h = r.headers().clone();
        assert_eq!(h["content-type"], "text/html; charset=utf-8");
        let csp = h["content-security-policy"].to_str().unwrap();
        for directive in ["default-src 'none'", "script-src 'self'", "connect-src 'self'", "frame-ancestors 'none'"] {
            assert!(csp.contains(directive), "{path}: {csp}");
        }
        assert!(!csp.contains("unsafe-eval") && !csp.contains("script-src 'self' 'unsafe-inline'"), "{csp}");
        assert_eq!(h["x-content-type-options"], "nosniff");
        assert_eq!(h["x-frame-options"], "DENY");
        let body = r.text().await.unwrap();
        // Every script and stylesheet the page names is served here.
        for attr in ["src=\"", "href=\""] {
            for (i, _) in body.match_indices(attr) {
                let rest = &body[i + attr.len()..];
                let url = &rest[..rest.find('"').unwrap()];
                if url.starts_with('#') {
                    continue;
                }
                assert!(url.starts_with('/'), "{path} names {url}");
                let r = app.http.get(app.url(url)).header("accept", "text/html, */*").send().await.unwrap();
                assert_eq!(r.status(), 200, "{path} → {url}");
            }
        }
    }
}

#[tokio::test]
async fn assets_are_cached_and_revalidated() {
    let app = TestApp::spawn().await;
    let vendor = app.http.get(app.url("/vendor/graphiql-3.9.0/graphiql.min.js")).send().await.unwrap();
    assert_eq!(vendor.status(), 200);
    assert_eq!(vendor.headers()["content-type"], "text/javascript; charset=utf-8");
    assert_eq!(vendor.headers()["cache-control"], "public, max-age=31536000, immutable");
    let r = app.http.get(app.url("/console/app.js")).send().await.unwrap();
    assert_eq!(r.headers()["cache-control"], "no-cache");
    let etag = r.headers()["etag"].to_str().unwrap().to_owned();
    let again = app.http.get(app.url("/console/app.js")).header("if-none-match", &etag).send().await.unwrap();
    assert_eq!(again.status(), 304);
    assert!(again.bytes().await.unwrap().is_empty());
    let changed = app.http.get(app.url("/console/app.js")).header("if-none-match", "\"other\"").send().await.unwrap();
    assert_eq!(changed.status(), 200);
    let icon = app.http.get(app.url("/favicon.ico")).send().await.unwrap();
    assert_eq!((icon.status().as_u16(), icon.headers()["content-type"].to_str().unwrap()), (200, "image/svg+xml"));
    // The licenses ship beside the builds.
    let license = app.http.get(app.url("/vendor/react-18.3.1/LICENSE")).send().await.unwrap();
    assert!(license.text().await.unwrap().contains("MIT License"));
    for missing in ["/console/nope.js", "/vendor/graphiql-3.9.0/../../Cargo.toml", "/vendor/x/y", "/graphiql/app.js"] {
        let r = app.http.get(app.url(missing)).send().await.unwrap();
        assert_eq!(r.status(), 404, "{missing}");
    }
}
