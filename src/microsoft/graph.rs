//! The Microsoft Graph client: typed GETs, a page-at-a-time stream over `@odata.nextLink`,
//! `$batch` (at most 20 per call, only throttled items retried), and retries: 429/503/504 honour
//! `Retry-After` (fractional seconds too), other 5xx and timeouts back off exponentially with
//! jitter, attempts are bounded and every request has a timeout.

use std::{collections::HashMap, time::Duration};

use futures_util::Stream;
use rand::Rng;
use reqwest::{StatusCode, header};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use url::Url;

use super::{
    models::{BatchResponse, Page},
    parse_retry_after,
};

/// A Graph failure.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum GraphError {
    /// Graph answered with an error body.
    #[error("Graph {status} {code}: {message}")]
    Api {
        /// HTTP status.
        status: u16,
        /// `error.code`, e.g. `Authorization_RequestDenied`.
        code: String,
        /// `error.message`.
        message: String,
        /// `request-id`, for Microsoft support.
        request_id: Option<String>,
    },
    /// Graph could not be reached or timed out.
    #[error("Graph could not be reached: {0}")]
    Transport(String),
    /// The answer was not what the model expects.
    #[error("unexpected Graph response: {0}")]
    Decode(String),
}

impl GraphError {
    /// `error.code` of an API error.
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::Api { code, .. } => Some(code),
            _ => None,
        }
    }

    /// HTTP status of an API error.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Api { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The error a Graph error body (`{"error":{"code","message",…}}`) describes.
    pub fn from_body(status: u16, body: &Value, request_id: Option<String>) -> Self {
        let e = &body["error"];
        Self::Api {
            status,
            code: e["code"].as_str().unwrap_or("unknown").to_owned(),
            message: e["message"].as_str().unwrap_or("").to_owned(),
            request_id: request_id.or_else(|| {
                e["innerError"]["request-id"]
                    .as_str()
                    .or_else(|| e["innererror"]["request-id"].as_str())
                    .map(str::to_owned)
            }),
        }
    }
}

/// How hard to retry.
#[derive(Clone, Debug)]
pub struct RetryPolicy {
    /// Attempts in all (first try included).
    pub max_attempts: u32,
    /// First backoff step when no `Retry-After` is given.
    pub base_delay: Duration,
    /// Longest backoff step.
    pub max_delay: Duration,
    /// Longest `Retry-After` honoured (a longer one is capped).
    pub max_retry_after: Duration,
    /// Timeout of each request.
    pub timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 6,
            base_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(15),
            max_retry_after: Duration::from_secs(120),
            timeout: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// Exponential backoff with full jitter for attempt `n` (1-based).
    pub fn backoff(&self, n: u32) -> Duration {
        let exp = self.base_delay.saturating_mul(1u32 << (n.saturating_sub(1)).min(16)).min(self.max_delay);
        exp.mul_f64(rand::thread_rng().gen_range(0.5..=1.0))
    }

    fn wait_for(&self, retry_after: Option<Duration>, attempt: u32) -> Duration {
        retry_after.map(|d| d.min(self.max_retry_after)).unwrap_or_else(|| self.backoff(attempt))
    }
}

fn retryable(status: u16) -> bool {
    matches!(status, 429 | 500 | 502 | 503 | 504)
}

/// One item of a `$batch`.
#[derive(Clone, Debug)]
pub struct BatchGet {
    /// Unique id within the batch.
    pub id: String,
    /// URL relative to the version, e.g. `/users/{id}/authentication/methods`.
    pub url: String,
}

/// The Graph client.
#[derive(Clone)]
pub struct GraphClient {
    http: reqwest::Client,
    base: Url,
    retry: RetryPolicy,
}

impl GraphClient {
    /// A client for Graph at `base` (`https://graph.microsoft.com` or the emulator).
    pub fn new(base: Url, retry: RetryPolicy) -> Self {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(retry.timeout)
            .pool_max_idle_per_host(64)
            .build()
            .expect("a TLS backend is compiled in");
        Self { http, base, retry }
    }

    /// The absolute URL of a `/v1.0/...` path, or a nextLink on the same origin.
    fn resolve(&self, path_or_url: &str) -> Result<Url, GraphError> {
        if path_or_url.starts_with("http://") || path_or_url.starts_with("https://") {
            let u = Url::parse(path_or_url).map_err(|e| GraphError::Decode(format!("bad nextLink: {e}")))?;
            // Never send the token anywhere but the configured Graph origin.
            if u.origin() != self.base.origin() {
                return Err(GraphError::Decode(format!(
                    "nextLink points at another host: {}",
                    u.host_str().unwrap_or("")
                )));
            }
            return Ok(u);
        }
        let base = self.base.as_str().trim_end_matches('/');
        // `/beta/...` paths name their version; every other path is v1.0.
        let versioned =
            if path_or_url.starts_with("/beta/") { path_or_url.to_owned() } else { format!("/v1.0{path_or_url}") };
        Url::parse(&format!("{base}{versioned}")).map_err(|e| GraphError::Decode(e.to_string()))
    }

    async fn send(
        &self,
        token: &str,
        method: reqwest::Method,
        url: &Url,
        body: Option<&Value>,
    ) -> Result<Value, GraphError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut req = self
                .http
                .request(method.clone(), url.clone())
                .bearer_auth(token)
                .header(header::ACCEPT, "application/json");
            if let Some(b) = body {
                req = req.json(b);
            }
            let sent = req.send().await;
            crate::metrics::microsoft_request("graph", sent.as_ref().ok().map(|r| r.status().as_u16()));
            let (wait, err) = match sent {
                Err(e) => {
                    let err = GraphError::Transport(if e.is_timeout() {
                        "request timed out".into()
                    } else {
                        e.without_url().to_string()
                    });
                    (self.retry.backoff(attempt), err)
                }
                Ok(resp) => {
                    let status = resp.status();
                    let retry_after = resp
                        .headers()
                        .get(header::RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(parse_retry_after);
                    let request_id = resp.headers().get("request-id").and_then(|v| v.to_str().ok()).map(str::to_owned);
                    let bytes = resp.bytes().await.map_err(|e| GraphError::Transport(e.without_url().to_string()));
                    match bytes {
                        Err(e) => (self.retry.backoff(attempt), e),
                        Ok(bytes) if status.is_success() => {
                            return serde_json::from_slice(&bytes).map_err(|e| GraphError::Decode(e.to_string()));
                        }
                        Ok(bytes) => {
                            let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
                            let err = GraphError::from_body(status.as_u16(), &body, request_id);
                            if !retryable(status.as_u16()) {
                                return Err(err);
                            }
                            let honour = matches!(
                                status,
                                StatusCode::TOO_MANY_REQUESTS
                                    | StatusCode::SERVICE_UNAVAILABLE
                                    | StatusCode::GATEWAY_TIMEOUT
                            );
                            (self.retry.wait_for(if honour { retry_after } else { None }, attempt), err)
                        }
                    }
                }
            };
            if attempt >= self.retry.max_attempts {
                return Err(err);
            }
            tracing::debug!(attempt, wait_ms = wait.as_millis() as u64, error = %err, "retrying Graph request");
            crate::metrics::microsoft_retry("graph");
            tokio::time::sleep(wait).await;
        }
    }

    /// GETs a `/v1.0/...` path (or a nextLink) into a model.
    pub async fn get<T: DeserializeOwned>(&self, token: &str, path_or_url: &str) -> Result<T, GraphError> {
        let url = self.resolve(path_or_url)?;
        let v = self.send(token, reqwest::Method::GET, &url, None).await?;
        serde_json::from_value(v).map_err(|e| GraphError::Decode(e.to_string()))
    }

    /// Pages of a collection, one at a time, following `@odata.nextLink`; nothing is collected.
    pub fn pages<'a, T: DeserializeOwned + 'a>(
        &'a self,
        token: &'a str,
        first: &str,
    ) -> impl Stream<Item = Result<Vec<T>, GraphError>> + 'a {
        futures_util::stream::try_unfold(Some(first.to_owned()), move |next| async move {
            let Some(url) = next else { return Ok(None) };
            let page: Page<T> = self.get(token, &url).await?;
            Ok(Some((page.value, page.next_link)))
        })
    }

    /// Runs GETs through `$batch` (20 per call). Throttled or failed-transiently items are
    /// retried alone, after the longest `Retry-After` among them. Each item answers with its
    /// JSON body or its own error.
    pub async fn batch_get(
        &self,
        token: &str,
        items: &[BatchGet],
    ) -> Result<HashMap<String, Result<Value, GraphError>>, GraphError> {
        self.batch_get_at("/$batch", token, items).await
    }

    /// [`Self::batch_get`] on the beta endpoint (item URLs are relative to beta).
    pub async fn batch_get_beta(
        &self,
        token: &str,
        items: &[BatchGet],
    ) -> Result<HashMap<String, Result<Value, GraphError>>, GraphError> {
        self.batch_get_at("/beta/$batch", token, items).await
    }

    async fn batch_get_at(
        &self,
        batch_path: &str,
        token: &str,
        items: &[BatchGet],
    ) -> Result<HashMap<String, Result<Value, GraphError>>, GraphError> {
        let url = self.resolve(batch_path)?;
        let mut out = HashMap::with_capacity(items.len());
        for chunk in items.chunks(20) {
            let mut pending: Vec<&BatchGet> = chunk.iter().collect();
            // Rounds without progress: a round in which some item was answered (a throttled
            // tenant answers a few per window) does not count against the retry budget.
            let mut stalled = 0;
            while !pending.is_empty() {
                stalled += 1;
                let body = json!({"requests": pending.iter().map(|i| json!({"id": i.id, "method": "GET", "url": i.url})).collect::<Vec<_>>()});
                let resp = self.send(token, reqwest::Method::POST, &url, Some(&body)).await?;
                let resp: BatchResponse = serde_json::from_value(resp)
                    .map_err(|e| GraphError::Decode(format!("a $batch answer that is not one: {e}")))?;
                let mut retry: Vec<(&BatchGet, GraphError)> = vec![];
                let mut longest: Option<Duration> = None;
                let mut answered = false;
                for r in resp.responses {
                    let (id, status) = (r.id.clone(), r.status);
                    if (200..300).contains(&status) {
                        out.insert(id, Ok(r.body));
                        answered = true;
                        continue;
                    }
                    let ra = r.retry_after().and_then(|v| parse_retry_after(&v));
                    let err = GraphError::from_body(status, &r.body, None);
                    match pending.iter().find(|i| i.id == id) {
                        Some(item) if retryable(status) => {
                            retry.push((*item, err));
                            longest = longest.max(ra);
                        }
                        _ => {
                            out.insert(id, Err(err));
                            answered = true;
                        }
                    }
                }
                if answered {
                    stalled = 0;
                }
                if !retry.is_empty() && stalled >= self.retry.max_attempts {
                    for (item, err) in retry.drain(..) {
                        out.insert(item.id.clone(), Err(err));
                    }
                }
                if !retry.is_empty() {
                    let wait = self.retry.wait_for(longest, stalled.max(1));
                    tracing::debug!(items = retry.len(), wait_ms = wait.as_millis() as u64, "retrying $batch items");
                    tokio::time::sleep(wait).await;
                }
                pending = retry.into_iter().map(|(item, _)| item).collect();
            }
        }
        Ok(out)
    }
}
