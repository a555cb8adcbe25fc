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
use futures_util::{
    FutureExt, SinkExt, StreamExt,
    future::{AbortHandle, BoxFuture},
    stream::{BoxStream, SplitSink},
};
use serde_json::{Value, json};

use super::{
    HttpState,
    feeds::{Entry, FeedKey, Feeds, Next},
};
use crate::{
    app::AppState,
    auth::{Auth, Caller},
    graphql::fast::Splice,
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

/// Bytes a socket reads at a time. An idle subscriber's socket keeps this much allocated, and
/// clients send little (a heap profile of 2,000 subscribers put 4.1 KB of each one's cost here
/// at 4 KiB); a larger message just takes more reads.
const READ_BUFFER: usize = 1024;

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

/// The socket's sending half. Subscription tasks write their messages here themselves (one task
/// hop from the feed to the socket, not two), and the connection loop writes its own replies.
type Sink = Arc<tokio::sync::Mutex<SplitSink<WebSocket, Message>>>;

/// Sends one message; false when the socket is gone.
async fn send(sink: &Sink, msg: Message) -> bool {
    sink.lock().await.send(msg).await.is_ok()
}

/// Sends a JSON message as text; false when the socket is gone.
async fn send_json(sink: &Sink, v: &Value) -> bool {
    send(sink, Message::Text(v.to_string().into())).await
}

/// A socket's running subscriptions by id: the generation of the id's latest use and the handle
/// that stops it. A subscription takes itself out when it ends.
type Running = Arc<Mutex<HashMap<String, (u64, AbortHandle)>>>;

fn running(subs: &Running) -> std::sync::MutexGuard<'_, HashMap<String, (u64, AbortHandle)>> {
    subs.lock().unwrap_or_else(|p| p.into_inner())
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
    let (sink, mut stream) = socket.split();
    let sink: Sink = Arc::new(tokio::sync::Mutex::new(sink));
    let subs: Running = Arc::default();
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
                if !send_json(&sink, &json!({"type": "ka"})).await { break None; }
            }
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
                                if !send_json(&sink, &json!({"type": "connection_ack"})).await { break None; }
                            }
                            rejected => {
                                let why = match rejected { Auth::Rejected(w) => w, _ => "no token in the connection_init payload".into() };
                                if protocol == Protocol::Legacy {
                                    let err = json!({"type": "connection_error", "payload": {"message": why, "extensions": {"code": crate::error::codes::UNAUTHENTICATED}}});
                                    send_json(&sink, &err).await;
                                }
                                break Some(close(4403, "Forbidden"));
                            }
                        }
                    }
                    (Protocol::TransportWs, "ping") => {
                        let mut pong = json!({"type": "pong"});
                        if let Some(p) = msg.get("payload") { pong["payload"] = p.clone(); }
                        if !send_json(&sink, &pong).await { break None; }
                    }
                    (Protocol::TransportWs, "pong") => {}
                    (Protocol::TransportWs, "subscribe") | (Protocol::Legacy, "start") => {
                        let Some(id) = msg.get("id").and_then(Value::as_str).filter(|id| !id.is_empty()).map(str::to_owned) else {
                            break Some(close(4400, "Invalid message received: subscribe needs an id"));
                        };
                        let Some(caller_auth) = auth.clone() else { break Some(close(4401, "Unauthorized")); };
                        let open = { let subs = running(&subs); (subs.contains_key(&id), subs.len()) };
                        if open.0 {
                            break Some(close(4409, "Subscriber for this id already exists"));
                        }
                        if open.1 >= max_subs {
                            let err = json!([{
                                "message": format!("A connection may run at most {max_subs} subscriptions at once; complete one first."),
                                "extensions": {"code": TOO_MANY_SUBSCRIPTIONS_CODE, "max": max_subs},
                            }]);
                            let payload = if protocol == Protocol::Legacy { json!({"errors": err}) } else { err };
                            let msg = json!({"type": "error", "id": id, "payload": payload});
                            if !send_json(&sink, &msg).await { break None; }
                            continue;
                        }
                        let req: Request = match msg.get("payload").cloned().map(serde_json::from_value) {
                            Some(Ok(r)) => r,
                            _ => break Some(close(4400, "Invalid message received: subscribe payload is not a GraphQL request")),
                        };
                        let sub = Sub {
                            schema: s.schema.clone(),
                            app: s.app.clone(),
                            feeds: s.feeds.clone(),
                            auth: caller_auth,
                            protocol,
                            head: envelope_head(protocol, &id),
                            id: id.clone(),
                            generation: { generation += 1; generation },
                            sink: sink.clone(),
                            subs: subs.clone(),
                        };
                        // In the map before it runs, so that its end always finds its entry.
                        let (task, stop) = futures_util::future::abortable(sub.run(req));
                        running(&subs).insert(id, (generation, stop));
                        tokio::spawn(async move {
                            let _running = crate::metrics::GaugeGuard::new("websocket_subscriptions");
                            let _ = task.await;
                        });
                    }
                    (Protocol::TransportWs, "complete") | (Protocol::Legacy, "stop") => {
                        let stopped = msg.get("id").and_then(Value::as_str).and_then(|id| running(&subs).remove(id));
                        if let Some((_, stop)) = stopped {
                            stop.abort();
                            if protocol == Protocol::Legacy {
                                let done = json!({"type": "complete", "id": msg.get("id")});
                                if !send_json(&sink, &done).await { break None; }
                            }
                        }
                    }
                    (Protocol::Legacy, "connection_terminate") => break Some(close(1000, "Normal Closure")),
                    _ => break Some(close(4400, "Invalid message received: unknown message type")),
                }
            }
        }
    };
    for (_, (_, stop)) in running(&subs).drain() {
        stop.abort();
    }
    let mut sink = sink.lock().await;
    if let Some(frame) = closing {
        let _ = sink.send(frame).await;
    }
    let _ = sink.close().await;
}

/// The code of the `error` message a subscription over the per-socket cap gets.
pub const TOO_MANY_SUBSCRIPTIONS_CODE: &str = crate::error::codes::TOO_MANY_SUBSCRIPTIONS;

/// One subscription of a socket.
struct Sub {
    schema: crate::graphql::AppSchema,
    app: AppState,
    feeds: Arc<Feeds>,
    auth: Auth,
    protocol: Protocol,
    id: String,
    generation: u64,
    sink: Sink,
    subs: Running,
    /// `{"type":"next","id":…,"payload":` for this subscription.
    head: Box<str>,
}

impl Sub {
    /// A request ready to execute: the loaders and the caller attached.
    fn request(&self, req: Request) -> Request {
        crate::graphql::loaders::attach(req, &self.app.db).data(self.auth.clone())
    }

    /// `{"type": "next", "id": …, "payload": …}` around an already serialised payload (one
    /// allocation: the envelope's head is written once per subscription).
    async fn send_next(&self, payload: &str) -> bool {
        let mut text = String::with_capacity(self.head.len() + payload.len() + 1);
        text.push_str(&self.head);
        text.push_str(payload);
        text.push('}');
        send(&self.sink, Message::Text(text.into())).await
    }

    /// Takes this subscription out of the socket's map (unless its id was reused since).
    fn leave(&self) {
        let mut subs = running(&self.subs);
        if subs.get(&self.id).is_some_and(|(g, _)| *g == self.generation) {
            subs.remove(&self.id);
        }
    }

    /// Ends the subscription: out of the socket's map first (the client may reuse the id as
    /// soon as it sees `complete`), then `complete` when the stream ended rather than failed.
    async fn finish(self, complete: bool) {
        self.leave();
        if complete {
            send_json(&self.sink, &json!({"type": "complete", "id": self.id})).await;
        }
    }

    /// What runs the subscription (or a query or mutation sent over the socket) to its end.
    ///
    /// Not an `async fn`: the task it becomes holds only the path taken, boxed, not room for
    /// the largest of them. Heap profiles of 2,000 subscribers (`benches/idle_heap/run.sh`)
    /// showed each one's task at 5 KB, and the parsed request kept alive beside the feed loop at
    /// 2.2 KB more.
    fn run(self, mut req: Request) -> BoxFuture<'static, ()> {
        let kind = match crate::graphql::prepare(&self.app.config, &mut req) {
            Ok(kind) => kind,
            Err(e) => {
                let error = futures_util::stream::once(async move { async_graphql::Response::from_errors(vec![e]) });
                return self.answer(error.boxed(), true, None).boxed();
            }
        };
        if kind == "subscription" {
            // Counted once, when it starts; its events are not operations.
            metrics::counter!("graphql_operations_total", "operation" => "subscription", "outcome" => "started")
                .increment(1);
            let account = match &self.auth {
                Auth::Caller(c) => Some(c.account_id),
                _ => None,
            };
            let operation = req.operation_name.clone();
            let shared = req.parsed_query().is_ok_and(|doc| shareable(doc, operation.as_deref()));
            if let (Some(account_id), true) = (account, shared) {
                let key = FeedKey {
                    account_id,
                    query: req.query.clone(),
                    operation_name: req.operation_name.clone(),
                    variables: serde_json::to_string(&req.variables).unwrap_or_default(),
                };
                // Only what a fresh execution needs; the parsed document goes now.
                let source =
                    (std::mem::take(&mut req.query), req.operation_name.take(), std::mem::take(&mut req.variables));
                drop(req);
                return self.shared(key, source).boxed();
            }
        }
        // A query's or mutation's answer may embed JSON written ahead (`graphql::fast`).
        let splice = (kind != "subscription").then(Arc::<Splice>::default);
        let mut req = self.request(req);
        if let Some(splice) = &splice {
            req = req.data(splice.clone());
        }
        let stream = self.schema.execute_stream(req);
        self.answer(stream, kind != "subscription", splice).boxed()
    }

    /// The first answer of a stream: `Ok` with the stream when it is data, else the request
    /// error is sent and `None` returned. A query's or mutation's answer gets the request
    /// timeout; a subscription's first event may rightly wait (no run yet: the next one).
    async fn first_answer(
        &self,
        mut stream: BoxStream<'static, async_graphql::Response>,
        bounded: bool,
    ) -> Option<(async_graphql::Response, BoxStream<'static, async_graphql::Response>)> {
        let timeout = Duration::from_secs(self.app.config.request_timeout_secs.max(1));
        let timed_out = || async_graphql::Response::from_errors(vec![crate::graphql::timeout_error(&self.app.config)]);
        let mut resp = if bounded {
            tokio::time::timeout(timeout, stream.next()).await.unwrap_or_else(|_| Some(timed_out()))?
        } else {
            stream.next().await?
        };
        crate::graphql::limits::cap_errors(&mut resp.errors, self.app.config.graphql_max_errors);
        let request_error = resp.data == async_graphql::Value::Null
            && !resp.errors.is_empty()
            && resp.errors.iter().all(|e| e.path.is_empty());
        if request_error {
            let errors = serde_json::to_value(&resp.errors).unwrap_or(Value::Null);
            let payload = match self.protocol {
                Protocol::TransportWs => errors,
                Protocol::Legacy => json!({"errors": errors}),
            };
            self.leave();
            send_json(&self.sink, &json!({"type": "error", "id": self.id, "payload": payload})).await;
            return None;
        }
        Some((resp, stream))
    }

    /// Sends every answer of this subscriber's own stream, then `complete`.
    async fn answer(
        self,
        stream: BoxStream<'static, async_graphql::Response>,
        bounded: bool,
        splice: Option<Arc<Splice>>,
    ) {
        let Some((first, mut stream)) = self.first_answer(stream, bounded).await else {
            self.finish(false).await;
            return;
        };
        let mut next = Some(first);
        while let Some(resp) = next {
            if !self.send_next(&payload(resp, &self.app, splice.as_deref())).await {
                return;
            }
            next = stream.next().await;
        }
        self.finish(true).await;
    }

    /// Follows the shared feed of `key`, starting one when none runs.
    async fn shared(self, key: FeedKey, source: (String, Option<String>, async_graphql::Variables)) {
        let fresh = |sub: &Self| {
            let mut req = Request::new(source.0.clone()).variables(source.2.clone());
            if let Some(op) = &source.1 {
                req = req.operation_name(op.clone());
            }
            sub.schema.execute_stream(sub.request(req))
        };
        // The database read and the first execution are boxed: their futures are large and
        // only live for a moment, while this one lives as long as the subscriber.
        if !Box::pin(self.may_join(&key)).await {
            // Its own execution answers it (with the error the resolver gives).
            let stream = fresh(&self);
            self.answer(stream, false, None).await;
            return;
        }
        let mut skip: Option<Arc<str>> = None;
        loop {
            let mut member = match self.feeds.enter(&key).await {
                Entry::Join(m) => m,
                Entry::Start(starter) => {
                    let Some((first, rest)) = Box::pin(self.first_answer(fresh(&self), false)).await else {
                        drop(starter); // whoever waits executes on its own
                        self.finish(false).await;
                        return;
                    };
                    let app = self.app.clone();
                    let rest = rest.map(move |r| payload(r, &app, None)).boxed();
                    starter.start(payload(first, &self.app, None), rest)
                }
            };
            let first = member.first();
            if skip.as_ref().is_none_or(|s| **s != *first) && !self.send_next(&first).await {
                return;
            }
            loop {
                match member.next().await {
                    Next::Payload(p) => {
                        if !self.send_next(&p).await {
                            return;
                        }
                    }
                    Next::StartOver { repeat } => {
                        skip = Some(repeat);
                        break;
                    }
                    Next::End => {
                        self.finish(true).await;
                        return;
                    }
                }
            }
        }
    }

    /// Whether this caller may read what a running feed of its account sends (what the
    /// subscription's resolver checks for its own stream: the account exists, the tab is on).
    /// One answer serves every joiner of the account for [`super::feeds::CHECK_FRESH`].
    async fn may_join(&self, key: &FeedKey) -> bool {
        let db = self.app.db.clone();
        self.feeds
            .admits(key.account_id, || async move {
                match crate::db::accounts::get(&db, key.account_id).await {
                    Ok(account) => Some(account.is_some_and(|a| a.m365_enabled)),
                    Err(_) => None,
                }
            })
            .await
    }
}

/// The start of a subscription's `next` (`data` in the legacy protocol) messages, up to its
/// payload.
fn envelope_head(protocol: Protocol, id: &str) -> Box<str> {
    let id = serde_json::to_string(id).unwrap_or_else(|_| "\"\"".into());
    format!(r#"{{"type":"{}","id":{id},"payload":"#, protocol.next_type()).into()
}

/// A response as the `payload` of a `next` message (its errors capped), with the JSON its
/// execution wrote ahead spliced in.
fn payload(mut resp: async_graphql::Response, app: &AppState, splice: Option<&Splice>) -> Arc<str> {
    crate::graphql::limits::cap_errors(&mut resp.errors, app.config.graphql_max_errors);
    let json = match splice {
        Some(splice) => splice.write_string(&resp),
        None => serde_json::to_string(&resp),
    };
    match json {
        Ok(s) => s.into(),
        Err(e) => {
            tracing::warn!(error = %e, "a subscription event could not be serialised");
            r#"{"errors":[{"message":"serialization failed"}]}"#.into()
        }
    }
}

/// Whether a subscription can share a feed: one subscription operation whose root fields are all
/// `m365SyncProgress` (what it sends depends on the account only), without directives.
fn shareable(doc: &async_graphql::parser::types::ExecutableDocument, operation: Option<&str>) -> bool {
    use async_graphql::parser::types::{DocumentOperations, OperationType, Selection};
    let op = match (&doc.operations, operation) {
        (DocumentOperations::Single(op), _) => op,
        (DocumentOperations::Multiple(ops), Some(name)) => match ops.iter().find(|(k, _)| k.as_str() == name) {
            Some((_, op)) => op,
            None => return false,
        },
        _ => return false,
    };
    op.node.ty == OperationType::Subscription
        && op.node.directives.is_empty()
        && !op.node.selection_set.node.items.is_empty()
        && op.node.selection_set.node.items.iter().all(|s| match &s.node {
            Selection::Field(f) => f.node.name.node == "m365SyncProgress" && f.node.directives.is_empty(),
            _ => false,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_next_message_is_its_envelope_around_the_payload() {
        let head = envelope_head(Protocol::TransportWs, "a\"b");
        let text = format!("{head}{}}}", r#"{"data":{"x":1}}"#);
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v, json!({"type": "next", "id": "a\"b", "payload": {"data": {"x": 1}}}));
        assert!(envelope_head(Protocol::Legacy, "1").starts_with(r#"{"type":"data","id":"1","#));
    }

    #[test]
    fn token_locations() {
        assert_eq!(token_from_payload(&json!({"Authorization": "Bearer a"})).as_deref(), Some("Bearer a"));
        assert_eq!(token_from_payload(&json!({"headers": {"authorization": "Bearer b"}})).as_deref(), Some("Bearer b"));
        assert_eq!(token_from_payload(&json!({"token": "c"})).as_deref(), Some("Bearer c"));
        assert_eq!(token_from_payload(&json!(null)), None);
    }
}
