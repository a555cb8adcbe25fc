//! Traces over OTLP: a collector (here a small HTTP server decoding OTLP/HTTP protobuf, the
//! format the OpenTelemetry specification defines) receives a span per request with its request
//! id, one per sync run and one per tenant inside it.
//!
//! Its own test binary: the trace layer is installed as the process's global subscriber, as
//! `serve` does (a thread-local one misses spans that database worker threads enter).

#[allow(dead_code)] // the API tests' helpers; this file uses a few
#[path = "api/helpers.rs"]
mod helpers;

use std::sync::{Arc, Mutex};

use axum::{body::Bytes, extract::State, routing::post};
use m365_emulator::world::WorldSpec;
use opentelemetry_proto::tonic::{
    collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse},
    common::v1::{KeyValue, any_value::Value as AnyValue},
    trace::v1::Span,
};
use prost::Message;
use serde_json::json;
use tracing_subscriber::{Layer, filter::LevelFilter, layer::SubscriberExt};

use crate::helpers::TestApp;

type Received = Arc<Mutex<Vec<(Vec<KeyValue>, Span)>>>;

/// An OTLP/HTTP collector on a free port: `POST /v1/traces` with a protobuf body.
async fn collector() -> (String, Received) {
    let got: Received = Arc::default();
    let router = axum::Router::new()
        .route(
            "/v1/traces",
            post(|State(got): State<Received>, body: Bytes| async move {
                let req = ExportTraceServiceRequest::decode(body).expect("an OTLP trace export");
                for rs in req.resource_spans {
                    let resource = rs.resource.map(|r| r.attributes).unwrap_or_default();
                    for ss in rs.scope_spans {
                        for s in ss.spans {
                            got.lock().unwrap().push((resource.clone(), s));
                        }
                    }
                }
                ([("content-type", "application/x-protobuf")], ExportTraceServiceResponse::default().encode_to_vec())
            }),
        )
        .with_state(got.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    (format!("http://{addr}/v1/traces"), got)
}

fn attr(kvs: &[KeyValue], key: &str) -> Option<String> {
    let v = kvs.iter().find(|kv| kv.key == key)?.value.as_ref()?.value.as_ref()?;
    Some(match v {
        AnyValue::StringValue(s) => s.clone(),
        AnyValue::IntValue(i) => i.to_string(),
        AnyValue::BoolValue(b) => b.to_string(),
        other => format!("{other:?}"),
    })
}

#[tokio::test]
async fn requests_sync_runs_and_tenants_are_exported_as_spans() {
    let (endpoint, got) = collector().await;
    let (layer, traces) = m365_integration::telemetry::layer(&endpoint).unwrap();
    let subscriber = tracing_subscriber::registry().with(layer.with_filter(LevelFilter::INFO));
    tracing::subscriber::set_global_default(subscriber).unwrap();

    let app = TestApp::spawn_world(WorldSpec { seed: 3, tenants: 4, users_per_tenant: 3 }, |_| {}).await;
    let acc = app.account("A", true).await;
    let t = app.admin_token(acc);
    app.connected(acc).await; // the first sync runs
    let r = reqwest::Client::new()
        .post(app.url("/graphql"))
        .bearer_auth(&t)
        .header("x-request-id", "trace-check-42")
        .json(&json!({"query": "{ m365Integration { enabled } }"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // Export what is buffered (blocking: off the runtime, which serves the collector). The run's
    // span closes just after its end is stored, so it may take one more flush.
    let traces = Arc::new(traces);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let t = traces.clone();
        tokio::task::spawn_blocking(move || t.flush()).await.unwrap();
        // The request's span closes just after its response went out, too.
        let arrived = |name: &str, id: Option<&str>| {
            got.lock().unwrap().iter().any(|(_, s)| {
                s.name == name && id.is_none_or(|id| attr(&s.attributes, "request_id").as_deref() == Some(id))
            })
        };
        if arrived("sync_run", None) && arrived("request", Some("trace-check-42")) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the run's and the request's spans did not arrive");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let spans = got.lock().unwrap().clone();
    let named = |n: &str| spans.iter().filter(|(_, s)| s.name == n).collect::<Vec<_>>();
    let (resource, _) = &spans[0];
    assert_eq!(attr(resource, "service.name").as_deref(), Some("m365-integration"));

    let request = named("request");
    assert!(
        request.iter().any(|(_, s)| attr(&s.attributes, "request_id").as_deref() == Some("trace-check-42")),
        "the request span carries the request id"
    );
    let runs = named("sync_run");
    assert_eq!(runs.len(), 1, "one span per run");
    let run = &runs[0].1;
    assert!(attr(&run.attributes, "run_id").is_some());
    assert_eq!(attr(&run.attributes, "status").as_deref(), Some("Succeeded"));
    assert_eq!(run.links.len(), 1, "linked to the request that started it");
    let tenants = named("sync_tenant");
    assert_eq!(tenants.len(), 4, "one span per tenant");
    for (_, s) in tenants {
        assert_eq!(s.trace_id, run.trace_id, "inside the run's trace");
        assert_eq!(s.parent_span_id, run.span_id, "a child of the run");
        assert_eq!(attr(&s.attributes, "outcome").as_deref(), Some("Ok"));
        assert!(attr(&s.attributes, "tenant").is_some_and(|t| !t.is_empty()));
    }
    // No secret in any attribute.
    for (_, s) in &spans {
        for kv in &s.attributes {
            let v = attr(std::slice::from_ref(kv), &kv.key).unwrap_or_default();
            assert!(!v.contains("refresh") && !v.contains(&t), "{}={v}", kv.key);
        }
    }
    drop(traces);
}
