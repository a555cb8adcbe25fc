//! Prometheus metrics (`GET /metrics`, text format), recorded through the `metrics` facade and
//! rendered by `metrics-exporter-prometheus`. Labels hold kinds, codes and statuses, never
//! account data.
//!
//! | metric | labels | what |
//! |---|---|---|
//! | `http_requests_total`, `http_request_duration_seconds` | `route`, `status` / `route` | every HTTP request (the matched route, not the URL) |
//! | `graphql_operations_total`, `graphql_operation_duration_seconds` | `operation` (`query`, `mutation`, `subscription`, `invalid`), `outcome` (`ok`, `error`) | each GraphQL operation |
//! | `graphql_parse_cache_total` | `outcome` (`hit`, `miss`) | documents taken from the cache of parsed documents, or parsed |
//! | `websocket_connections`, `websocket_subscriptions` | | open sockets and running subscriptions (gauges) |
//! | `sync_runs_total`, `sync_run_duration_seconds` | `status`, `trigger` / `status` | ended sync runs |
//! | `sync_tenant_outcomes_total` | `outcome`, `code` | each tenant of a run |
//! | `sync_user_rows_total` | `write` (`written`, `unchanged`, `removed`) | user rows a sync wrote, left as they were (same content), removed |
//! | `microsoft_requests_total`, `microsoft_retries_total` | `api` (`graph`, `token`), `status` | Microsoft calls, 429s and retries included |
//! | `sync_progress_conflated_total` | | times a subscriber fell behind and skipped to the latest state |
//! | `sync_progress_relayed_total` | `kind` (`state`, `pointer`) | progress notifications sent to other replicas |
//! | `sync_progress_repairs_total`, `sync_progress_listener_reconnects_total` | | progress read from the row (a missed step, a reconnect), listener reconnects |
//! | `db_pool_connections` | `state` (`in_use`, `idle`) | database pool use at scrape time |

use std::sync::OnceLock;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Latency buckets in seconds, from 1 ms to 5 minutes (a sync run).
const BUCKETS: &[f64] = &[0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0];

/// Installs the process-wide recorder once (several apps in one process, as in tests, share it).
pub fn init() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new().set_buckets(BUCKETS).ok()?;
            match builder.install_recorder() {
                Ok(h) => Some(h),
                Err(e) => {
                    tracing::warn!(error = %e, "metrics recorder not installed");
                    None
                }
            }
        })
        .as_ref()
}

/// The metrics in Prometheus text format, with the pool gauges refreshed.
pub fn render(db: &sea_orm::DatabaseConnection) -> String {
    pool_gauges(db);
    init().map(|h| h.render()).unwrap_or_default()
}

fn pool_gauges(db: &sea_orm::DatabaseConnection) {
    let (size, idle) = match db.get_database_backend() {
        sea_orm::DatabaseBackend::Postgres => {
            let p = db.get_postgres_connection_pool();
            (p.size(), p.num_idle())
        }
        sea_orm::DatabaseBackend::Sqlite => {
            let p = db.get_sqlite_connection_pool();
            (p.size(), p.num_idle())
        }
        _ => return,
    };
    let idle = idle as f64;
    metrics::gauge!("db_pool_connections", "state" => "idle").set(idle);
    metrics::gauge!("db_pool_connections", "state" => "in_use").set((f64::from(size) - idle).max(0.0));
}

/// Counts a Microsoft call by API and status (`transport_error` when none came back).
pub fn microsoft_request(api: &'static str, status: Option<u16>) {
    let status = status.map_or_else(|| "transport_error".to_owned(), |s| s.to_string());
    metrics::counter!("microsoft_requests_total", "api" => api, "status" => status).increment(1);
}

/// Counts a retried Microsoft call.
pub fn microsoft_retry(api: &'static str) {
    metrics::counter!("microsoft_retries_total", "api" => api).increment(1);
}

/// Whether `given` is the configured metrics token (compared in constant time).
pub fn token_matches(expected: &str, given: &str) -> bool {
    let (a, b) = (expected.as_bytes(), given.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Adds one to a gauge for as long as it lives (an open socket, a running subscription): the
/// count stays right however the task ends, aborted included.
pub struct GaugeGuard(&'static str);

impl GaugeGuard {
    /// Increments `name` until dropped.
    pub fn new(name: &'static str) -> Self {
        metrics::gauge!(name).increment(1.0);
        Self(name)
    }
}

impl Drop for GaugeGuard {
    fn drop(&mut self) {
        metrics::gauge!(self.0).decrement(1.0);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn token_comparison() {
        assert!(super::token_matches("abc", "abc"));
        assert!(!super::token_matches("abc", "abd"));
        assert!(!super::token_matches("abc", "ab"));
    }
}
