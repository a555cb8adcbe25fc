//! Traces over OpenTelemetry: when `OTEL_EXPORTER_OTLP_ENDPOINT` is set, every span (each HTTP
//! request with its `request_id`, each sync run, each tenant of a run) is exported over OTLP/HTTP
//! (protobuf) to `<endpoint>/v1/traces`, or to `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` as given.
//! The service is named by `OTEL_SERVICE_NAME` (default `m365-integration`). Spans carry ids,
//! kinds and counts, never tokens or account data beyond ids.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{SpanExporter, WithExportConfig};
use opentelemetry_sdk::{Resource, trace::SdkTracerProvider};
use tracing_subscriber::{Layer, registry::LookupSpan};

use crate::app::BoxError;

/// The default service name in traces.
pub const SERVICE_NAME: &str = "m365-integration";

/// Where spans go, from the standard environment variables; `None` when tracing export is off.
pub fn traces_endpoint_from_env() -> Option<String> {
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
    var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        .or_else(|| var("OTEL_EXPORTER_OTLP_ENDPOINT").map(|base| format!("{}/v1/traces", base.trim_end_matches('/'))))
}

/// The exporting side of tracing; flushes what is buffered when dropped (at shutdown).
pub struct Traces {
    provider: SdkTracerProvider,
}

impl Traces {
    /// Sends every finished span now (blocks until the collector answered or timed out).
    pub fn flush(&self) {
        if let Err(e) = self.provider.force_flush() {
            eprintln!("flushing traces failed: {e}");
        }
    }
}

impl Drop for Traces {
    fn drop(&mut self) {
        if let Err(e) = self.provider.shutdown() {
            eprintln!("shutting traces down failed: {e}");
        }
    }
}

/// A tracing layer that exports spans to `endpoint` (the full `/v1/traces` URL), and its handle.
/// Spans are batched and sent from a background thread, so a slow collector never slows a
/// request (a full buffer drops spans instead).
pub fn layer<S>(endpoint: &str) -> Result<(impl Layer<S> + use<S>, Traces), BoxError>
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
{
    let exporter = SpanExporter::builder().with_http().with_endpoint(endpoint).build()?;
    let mut resource = Resource::builder();
    if std::env::var_os("OTEL_SERVICE_NAME").is_none() {
        resource = resource.with_service_name(SERVICE_NAME);
    }
    let provider = SdkTracerProvider::builder().with_batch_exporter(exporter).with_resource(resource.build()).build();
    let tracer = provider.tracer(SERVICE_NAME);
    Ok((tracing_opentelemetry::layer().with_tracer(tracer), Traces { provider }))
}
