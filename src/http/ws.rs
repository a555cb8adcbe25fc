//! GraphQL over WebSocket on `/graphql/ws`: the `graphql-transport-ws` protocol and the legacy
//! `graphql-ws` (subscriptions-transport-ws) protocol, chosen by `Sec-WebSocket-Protocol`.
//!
//! Written here rather than taken from async-graphql because the protocol's close codes are
//! part of our contract: 4400 bad message, 4401 subscribe before `connection_ack`, 4403 token
//! rejected, 4408 no `connection_init` in time, 4409 duplicate subscription id, 4429 a second
//! `connection_init`. The token comes from the `connection_init` payload
//! (`{"Authorization": "Bearer …"}` or `{"token": "…"}`).

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use async_graphql::Request;
use axum::{
    extract::{
        State, WebSocketUpgrade,
        ws::{CloseFrame, Message, Utf8Bytes, WebSocket},
    },
    response::Response,
};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::{sync::mpsc, task::JoinHandle};

use super::HttpState;
use crate::{
    app::AppState,
    auth::{Auth, Caller},
};

/// Which dialect the client speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// `graphql-transport-ws` (the graphql-ws library).
    TransportWs,
    /// `graphql-ws` (the legacy subscriptions-transport-ws).
    Legacy,
}

impl Protocol {
    fn next_type(self) -> &'static str {
        match self {
            Self::TransportWs => "next",
            Self::Legacy => "data",
        }
    }
}

/// Upgrades the connection, agreeing on a subprotocol. Messages and frames are bounded by the
/// same `BODY_LIMIT_BYTES` as HTTP bodies; a larger one closes the socket with 1009.
pub async fn handler(State(s): State<HttpState>, ws: WebSocketUpgrade) -> Response {
    let limit = s.app.config.body_limit_bytes;
    // Small buffers: an idle subscriber costs little (tungstenite's defaults allocate 128 KiB to
    // read into per socket; our messages are small and a larger one just takes more reads).
    let ws = ws
        .protocols(["graphql-transport-ws", "graphql-ws"])
        .max_message_size(limit)
        .max_frame_size(limit)
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(0);
    let protocol = match ws.selected_protocol().and_then(|p| p.to_str().ok()) {
        Some("graphql-ws") => Protocol::Legacy,
        _ => Protocol::TransportWs,
    };
    ws.on_upgrade(move |socket| serve(socket, protocol, s))
}

/// Bytes a socket reads at a time.
const READ_BUFFER: usize = 4 * 1024;

/// Open sockets per token subject (account + `sub`), for `WS_MAX_SOCKETS_PER_TOKEN`.
#[derive(Clone, Default)]
pub struct SocketCounts(Arc<Mutex<HashMap<(i64, String), usize>>>);

/// A socket (or another long holder) counted against its key until dropped.
pub(crate) struct SocketSlot {
    counts: SocketCounts,
    key: (i64, String),
}

impl SocketCounts {
    /// Counts one more socket for `caller`, unless it already has `max`.
    fn claim(&self, caller: &Caller, max: usize) -> Option<SocketSlot> {
        self.claim_key((caller.account_id, caller.user.clone()), max)
    }

    /// Counts one more holder of `key`, unless it already has `max` (also used for exports).
    pub(crate) fn claim_key(&self, key: (i64, String), max: usize) -> Option<SocketSlot> {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let n = map.entry(key.clone()).or_default();
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(SocketSlot { counts: self.clone(), key })
    }
}

impl Drop for SocketSlot {
    fn drop(&mut self) {
        let mut map = self.counts.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = map.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.key);
            }
        }
    }
}

/// What subscription tasks send back to the connection loop.
enum Outgoing {
    Message(Value),
    /// A message already serialised (a subscription's event: straight to text, no JSON tree).
    Text(String),
    /// Subscription `id` of a generation ended (a reused id has a newer generation).
    Finished(String, u64),
}

/// A close frame. Reasons are our own fixed texts (never client input), cut to the 123 bytes a
/// close frame can carry.
fn close(code: u16, reason: &str) -> Message {
    let mut end = reason.len().min(123);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    Message::Close(Some(CloseFrame { code, reason: Utf8Bytes::from(&reason[..end]) }))
}

/// Whether a read error is a message or frame over the size limit.
fn is_too_big(e: axum::Error) -> bool {
    e.into_inner().downcast_ref::<tungstenite::Error>().is_some_and(|e| matches!(e, tungstenite::Error::Capacity(_)))
}

/// Seconds from now until `exp` (at least zero).
fn until(exp: i64) -> Duration {
    Duration::from_secs(u64::try_from(exp - chrono::Utc::now().timestamp()).unwrap_or(0))
}

fn token_from_payload(payload: &Value) -> Option<String> {
    let obj = payload.as_object()?;
    for key in ["Authorization", "authorization"] {
        if let Some(v) = obj.get(key).and_then(Value::as_str) {
            return Some(v.to_owned());
        }
    }
    if let Some(t) = obj.get("headers").and_then(token_from_payload) {
        return Some(t);
    }
    obj.get("token").and_then(Value::as_str).map(|t| format!("Bearer {t}"))
}

async fn serve(socket: WebSocket, protocol: Protocol, s: HttpState) {
    let _open = crate::metrics::GaugeGuard::new("websocket_connections");
    let (mut sink, mut stream) = socket.split();
    let (out_tx, mut out_rx) = mpsc::channel::<Outgoing>(64);
    let mut subs: HashMap<String, (u64, JoinHandle<()>)> = HashMap::new();
    let mut generation = 0u64;
    let mut auth: Option<Auth> = None;
    let mut _slot: Option<SocketSlot> = None;
    let mut init_seen = false;
    let init_deadline = tokio::time::sleep(Duration::from_secs(s.app.config.ws_init_timeout_secs));
    tokio::pin!(init_deadline);
    // Armed at connection_ack with the token's `exp`: the socket closes when the token expires.
    let expiry = tokio::time::sleep(Duration::from_secs(u64::from(u32::MAX)));
    tokio::pin!(expiry);
    let max_subs = s.app.config.ws_max_subscriptions_per_socket;
    let mut keepalive = tokio::time::interval(Duration::from_secs(15));

    let mut draining = s.app.draining.subscribe();
    let closing: Option<Message> = loop {
        tokio::select! {
            _ = async { let _ = draining.wait_for(|d| *d).await; } => {
                break Some(close(1001, "Going away: the server is shutting down; reconnect"))
            }
            _ = &mut init_deadline, if !init_seen => break Some(close(4408, "Connection initialisation timeout")),
            _ = &mut expiry, if auth.is_some() => break Some(close(4403, "Forbidden: the token has expired")),
            _ = keepalive.tick(), if protocol == Protocol::Legacy && auth.is_some() => {
                if sink.send(Message::Text(json!({"type": "ka"}).to_string().into())).await.is_err() { break None; }
            }
            out = out_rx.recv() => match out {
                Some(Outgoing::Message(v)) => {
                    if sink.send(Message::Text(v.to_string().into())).await.is_err() { break None; }
                }
                Some(Outgoing::Text(t)) => {
                    if sink.send(Message::Text(t.into())).await.is_err() { break None; }
                }
                Some(Outgoing::Finished(id, sub_gen)) => {
                    if subs.get(&id).is_some_and(|(g, _)| *g == sub_gen) { subs.remove(&id); }
                }
                None => break None,
            },
            msg = stream.next() => {
                let text = match msg {
                    Some(Ok(Message::Text(t))) => t,
                    Some(Ok(Message::Binary(_))) => break Some(close(4400, "Binary messages are not supported")),
                    Some(Err(e)) => break is_too_big(e).then(|| close(1009, "Message too big")),
                    Some(Ok(Message::Close(_))) | None => break None,
                    Some(Ok(_)) => continue,
                };
                let msg: Value = match serde_json::from_str(text.as_str()) {
                    Ok(v @ Value::Object(_)) => v,
                    _ => break Some(close(4400, "Invalid message received")),
                };
                let ty = msg.get("type").and_then(Value::as_str).unwrap_or_default().to_owned();
                match (protocol, ty.as_str()) {
                    (_, "connection_init") => {
                        if init_seen { break Some(close(4429, "Too many initialisation requests")); }
                        init_seen = true;
                        let payload = msg.get("payload").cloned().unwrap_or(Value::Null);
                        let header = token_from_payload(&payload);
                        match Auth::from_header(&s.app.auth, header.as_deref()) {
                            Auth::Caller(c) => {
                                let Some(slot) = s.sockets.claim(&c, s.app.config.ws_max_sockets_per_token) else {
                                    break Some(close(4429, "Too many open connections for this token"));
                                };
                                _slot = Some(slot);
                                expiry.as_mut().reset(tokio::time::Instant::now() + until(c.expires_at));
                                auth = Some(Auth::Caller(c));
                                let ack = json!({"type": "connection_ack"});
                                if sink.send(Message::Text(ack.to_string().into())).await.is_err() { break None; }
                            }
                            rejected => {
                                let why = match rejected { Auth::Rejected(w) => w, _ => "no token in the connection_init payload".into() };
                                if protocol == Protocol::Legacy {
                                    let err = json!({"type": "connection_error", "payload": {"message": why, "extensions": {"code": crate::error::codes::UNAUTHENTICATED}}});
                                    let _ = sink.send(Message::Text(err.to_string().into())).await;
                                }
                                break Some(close(4403, "Forbidden"));
                            }
                        }
                    }
                    (Protocol::TransportWs, "ping") => {
                        let mut pong = json!({"type": "pong"});
                        if let Some(p) = msg.get("payload") { pong["payload"] = p.clone(); }
                        if sink.send(Message::Text(pong.to_string().into())).await.is_err() { break None; }
                    }
                    (Protocol::TransportWs, "pong") => {}
                    (Protocol::TransportWs, "subscribe") | (Protocol::Legacy, "start") => {
                        let Some(id) = msg.get("id").and_then(Value::as_str).filter(|id| !id.is_empty()).map(str::to_owned) else {
                            break Some(close(4400, "Invalid message received: subscribe needs an id"));
                        };
                        let Some(caller_auth) = auth.clone() else { break Some(close(4401, "Unauthorized")); };
                        if subs.contains_key(&id) {
                            break Some(close(4409, "Subscriber for this id already exists"));
                        }
                        if subs.len() >= max_subs {
                            let err = json!([{
                                "message": format!("A connection may run at most {max_subs} subscriptions at once; complete one first."),
                                "extensions": {"code": TOO_MANY_SUBSCRIPTIONS_CODE, "max": max_subs},
                            }]);
                            let payload = if protocol == Protocol::Legacy { json!({"errors": err}) } else { err };
                            let msg = json!({"type": "error", "id": id, "payload": payload});
                            if sink.send(Message::Text(msg.to_string().into())).await.is_err() { break None; }
                            continue;
                        }
                        let req: Request = match msg.get("payload").cloned().map(serde_json::from_value) {
                            Some(Ok(r)) => r,
                            _ => break Some(close(4400, "Invalid message received: subscribe payload is not a GraphQL request")),
                        };
                        let schema = s.schema.clone();
                        let config = s.app.clone();
                        let req = crate::graphql::loaders::attach(req, &s.app.db);
                        let tx = out_tx.clone();
                        let sub_id = id.clone();
                        generation += 1;
                        let sub_gen = generation;
                        subs.insert(id, (sub_gen, tokio::spawn(async move {
                            let _running = crate::metrics::GaugeGuard::new("websocket_subscriptions");
                            run_subscription(schema, config, req.data(caller_auth), protocol, sub_id, sub_gen, tx).await;
                        })));
                    }
                    (Protocol::TransportWs, "complete") | (Protocol::Legacy, "stop") => {
                        if let Some(id) = msg.get("id").and_then(Value::as_str)
                            && let Some((_, task)) = subs.remove(id)
                        {
                            task.abort();
                            if protocol == Protocol::Legacy {
                                let done = json!({"type": "complete", "id": id});
                                if sink.send(Message::Text(done.to_string().into())).await.is_err() { break None; }
                            }
                        }
                    }
                    (Protocol::Legacy, "connection_terminate") => break Some(close(1000, "Normal Closure")),
                    _ => break Some(close(4400, "Invalid message received: unknown message type")),
                }
            }
        }
    };
    for (_, (_, task)) in subs {
        task.abort();
    }
    if let Some(frame) = closing {
        let _ = sink.send(frame).await;
    }
    let _ = sink.close().await;
}

/// The code of the `error` message a subscription over the per-socket cap gets.
pub const TOO_MANY_SUBSCRIPTIONS_CODE: &str = crate::error::codes::TOO_MANY_SUBSCRIPTIONS;

async fn run_subscription(
    schema: crate::graphql::AppSchema,
    app: AppState,
    req: Request,
    protocol: Protocol,
    id: String,
    sub_gen: u64,
    tx: mpsc::Sender<Outgoing>,
) {
    let mut req = req;
    let mut stream = match crate::graphql::prepare(&app.config, &mut req) {
        Ok(kind) => {
            if kind == "subscription" {
                // Counted once, when it starts; its events are not operations.
                metrics::counter!("graphql_operations_total", "operation" => "subscription", "outcome" => "started")
                    .increment(1);
            }
            schema.execute_stream(req)
        }
        Err(e) => futures_util::stream::once(async move { async_graphql::Response::from_errors(vec![e]) }).boxed(),
    };
    let mut first = true;
    // The first answer (a query's only one, a subscription's current state) gets the request
    // timeout; later events come when they come.
    let timeout = Duration::from_secs(app.config.request_timeout_secs.max(1));
    let timed_out = || async_graphql::Response::from_errors(vec![crate::graphql::timeout_error(&app.config)]);
    loop {
        let next = if first {
            tokio::time::timeout(timeout, stream.next()).await.unwrap_or_else(|_| Some(timed_out()))
        } else {
            stream.next().await
        };
        let Some(mut resp) = next else { break };
        crate::graphql::limits::cap_errors(&mut resp.errors, app.config.graphql_max_errors);
        let request_error = first
            && resp.data == async_graphql::Value::Null
            && !resp.errors.is_empty()
            && resp.errors.iter().all(|e| e.path.is_empty());
        first = false;
        let msg = if request_error {
            let errors = serde_json::to_value(&resp.errors).unwrap_or(Value::Null);
            let payload = match protocol {
                Protocol::TransportWs => errors,
                Protocol::Legacy => json!({"errors": errors}),
            };
            let _ = tx.send(Outgoing::Message(json!({"type": "error", "id": id, "payload": payload}))).await;
            let _ = tx.send(Outgoing::Finished(id, sub_gen)).await;
            return;
        } else {
            /// `{"type": "next", "id": …, "payload": …}`, serialised in one pass.
            #[derive(serde::Serialize)]
            struct Next<'a> {
                r#type: &'static str,
                id: &'a str,
                payload: &'a async_graphql::Response,
            }
            let next = Next { r#type: protocol.next_type(), id: &id, payload: &resp };
            match serde_json::to_string(&next) {
                Ok(text) => Outgoing::Text(text),
                Err(e) => {
                    tracing::warn!(error = %e, "a subscription event could not be serialised");
                    continue;
                }
            }
        };
        if tx.send(msg).await.is_err() {
            return;
        }
    }
    let _ = tx.send(Outgoing::Message(json!({"type": "complete", "id": id}))).await;
    let _ = tx.send(Outgoing::Finished(id, sub_gen)).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_locations() {
        assert_eq!(token_from_payload(&json!({"Authorization": "Bearer a"})).as_deref(), Some("Bearer a"));
        assert_eq!(token_from_payload(&json!({"headers": {"authorization": "Bearer b"}})).as_deref(), Some("Bearer b"));
        assert_eq!(token_from_payload(&json!({"token": "c"})).as_deref(), Some("Bearer c"));
        assert_eq!(token_from_payload(&json!(null)), None);
    }
}
