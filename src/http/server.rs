//! The accept loop: HTTP/1.1 (with WebSocket upgrades) on hyper, with the limits `axum::serve`
//! has no switch for.
//!
//! - **Header timeout** (`HTTP_HEADER_TIMEOUT_SECS`): hyper starts it whenever it waits for a
//!   request head, on a new connection and between keep-alive requests alike, so a client that
//!   trickles half a header (slowloris) or sits idle is closed after it.
//! - **Body timeout** (`HTTP_BODY_TIMEOUT_SECS`, a layer in the router): a body that stops
//!   arriving ends the request with 408.
//! - **Connection cap** (`HTTP_MAX_CONNECTIONS`): one connection over the cap is answered
//!   `503 Service Unavailable` with `Retry-After` and closed, rather than left waiting.
//! - **Graceful shutdown**: stop accepting, let open connections finish their requests.

use std::{future::Future, sync::Arc, time::Duration};

use axum::Router;
use hyper_util::{
    rt::{TokioIo, TokioTimer},
    service::TowerToHyperService,
};
use tokio::{io::AsyncWriteExt, net::TcpListener, sync::Semaphore};

/// Connection-level limits.
#[derive(Clone, Copy, Debug)]
pub struct ServerLimits {
    /// Time to receive a request head (also bounds keep-alive idleness).
    pub header_timeout: Duration,
    /// Most open connections.
    pub max_connections: usize,
}

/// What a connection over the cap gets before it is closed.
const OVER_CAPACITY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nRetry-After: 1\r\nConnection: close\r\nContent-Length: 113\r\n\r\n{\"errors\":[{\"message\":\"The server has too many open connections.\",\"extensions\":{\"code\":\"TOO_MANY_CONNECTIONS\"}}]}";

/// Serves `router` on `listener` until `shutdown` completes, then waits for open connections.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ServerLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let max = limits.max_connections.max(1);
    let permits = Arc::new(Semaphore::new(max));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(limits.header_timeout);
    tokio::pin!(shutdown);
    loop {
        let (mut stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            tokio::spawn(async move {
                let _ = tokio::time::timeout(Duration::from_secs(1), async {
                    stream.write_all(OVER_CAPACITY).await?;
                    stream.shutdown().await
                })
                .await;
            });
            continue;
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(router.clone());
        let conn = builder.serve_connection(TokioIo::new(stream), service).with_upgrades();
        let mut stop = stop_rx.clone();
        tokio::spawn(async move {
            tokio::pin!(conn);
            let ended = tokio::select! {
                r = conn.as_mut() => r,
                _ = async { let _ = stop.wait_for(|s| *s).await; } => {
                    // Finish the request in flight, then close.
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            };
            if let Err(e) = ended {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    let _ = stop_tx.send(true);
    // Every connection task holds a permit until it ends.
    let _ = permits.acquire_many(max as u32).await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn over_capacity_answer_is_well_formed() {
        let text = std::str::from_utf8(OVER_CAPACITY).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        let len: usize = head.lines().find_map(|l| l.strip_prefix("Content-Length: ")).unwrap().parse().unwrap();
        assert_eq!(body.len(), len);
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(v["errors"][0]["extensions"]["code"], crate::error::codes::TOO_MANY_CONNECTIONS);
    }
}
