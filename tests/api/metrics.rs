//! `GET /metrics`: Prometheus text whose counters move with a sync, optionally behind a token.

use std::collections::HashMap;

use m365_integration::config::Secret;
use serde_json::json;

use crate::helpers::TestApp;

/// Parses Prometheus text exposition: every sample line is `name{labels} value` (labels
/// optional), comments are `# HELP` / `# TYPE`. Panics on anything else.
fn parse(text: &str) -> HashMap<String, f64> {
    let mut out = HashMap::new();
    for line in text.lines().filter(|l| !l.is_empty()) {
        if let Some(c) = line.strip_prefix('#') {
            assert!(c.starts_with(" HELP ") || c.starts_with(" TYPE "), "bad comment: {line}");
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("no value: {line}"));
        let name_end = series.find('{').unwrap_or(series.len());
        let name = &series[..name_end];
        assert!(
            !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "bad metric name: {line}"
        );
        if name_end < series.len() {
            assert!(series.ends_with('}'), "unclosed labels: {line}");
        }
        let v: f64 = value.parse().unwrap_or_else(|_| panic!("bad value: {line}"));
        out.insert(series.to_owned(), v);
    }
    out
}

/// The sum of a metric's series whose labels contain every given `key="value"`.
fn sum(m: &HashMap<String, f64>, name: &str, labels: &[&str]) -> f64 {
    m.iter()
        .filter(|(s, _)| {
            (s.as_str() == name || s.starts_with(&format!("{name}{{"))) && labels.iter().all(|l| s.contains(l))
        })
        .map(|(_, v)| v)
        .sum()
}

async fn scrape(app: &TestApp, token: Option<&str>) -> (u16, String) {
    let mut r = app.http.get(app.url("/metrics"));
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    let r = r.send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

#[tokio::test]
async fn metrics_parse_as_prometheus_text_and_move_with_a_sync() {
    let app = TestApp::spawn().await;
    let acc = app.account("A", true).await;
    let (status, before) = scrape(&app, None).await;
    assert_eq!(status, 200);
    let before = parse(&before);
    app.connected(acc).await;
    let (_, after) = scrape(&app, None).await;
    let after = parse(&after);
    let moved = |name: &str, labels: &[&str]| sum(&after, name, labels) - sum(&before, name, labels);
    // The recorder is process-wide (other tests run beside this one), so these are lower bounds.
    assert!(moved("sync_runs_total", &[]) >= 1.0, "{after:?}");
    assert!(moved("sync_tenant_outcomes_total", &[]) >= 4.0);
    assert!(moved("microsoft_requests_total", &["api=\"graph\"", "status=\"200\""]) >= 10.0);
    assert!(moved("microsoft_requests_total", &["api=\"token\""]) >= 5.0);
    assert!(moved("graphql_operations_total", &["operation=\"mutation\"", "outcome=\"ok\""]) >= 1.0);
    assert!(moved("http_requests_total", &["route=\"/graphql\""]) >= 1.0);
    assert!(moved("sync_run_duration_seconds_count", &[]) >= 1.0);
    assert!(sum(&after, "http_request_duration_seconds_bucket", &["le=\"+Inf\""]) >= 1.0, "histograms have buckets");
    assert!(after.keys().any(|k| k.starts_with("db_pool_connections{")));
    // Labels carry kinds and codes, never account data.
    let text = scrape(&app, None).await.1;
    let tenant = app.emu.state.lock().world.customers()[0].id.clone();
    assert!(!text.contains(&tenant) && !text.contains("user-of-"), "no ids or users in labels");
    // The same document again is taken from the cache of parsed documents (lower bounds: other
    // tests' documents count too, but these three add at least two hits and one miss).
    let before_again = parse(&scrape(&app, None).await.1);
    for _ in 0..3 {
        app.gql(None, "query MetricsParseCache { __typename }", json!({})).await;
    }
    let after_again = parse(&scrape(&app, None).await.1);
    let cache = |outcome: &str| {
        let label = format!("outcome=\"{outcome}\"");
        sum(&after_again, "graphql_parse_cache_total", &[&label])
            - sum(&before_again, "graphql_parse_cache_total", &[&label])
    };
    assert!(cache("hit") >= 2.0, "{after_again:?}");
    assert!(cache("miss") >= 1.0);
    // A failed GraphQL document is counted as invalid.
    app.gql(None, "{ not valid", json!({})).await;
    let after_bad = parse(&scrape(&app, None).await.1);
    assert!(sum(&after_bad, "graphql_operations_total", &["operation=\"invalid\""]) >= 1.0);
}

#[tokio::test]
async fn metrics_token_is_required_when_set() {
    let app = TestApp::spawn_with(|c| c.metrics_token = Some(Secret::new("scrape-me"))).await;
    assert_eq!(scrape(&app, None).await.0, 401);
    assert_eq!(scrape(&app, Some("wrong")).await.0, 401);
    let (status, text) = scrape(&app, Some("scrape-me")).await;
    assert_eq!(status, 200);
    parse(&text);
}
