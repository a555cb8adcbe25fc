//! WebSocket handshake and protocol close codes.

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::{Message, client::IntoClientRequest, http::HeaderValue};

use crate::helpers::TestApp;

pub type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

pub async fn connect(app: &TestApp, protocol: &str) -> Ws {
    let mut req = format!("ws://{}/graphql/ws", app.addr).into_client_request().unwrap();
    req.headers_mut().insert("sec-websocket-protocol", HeaderValue::from_str(protocol).unwrap());
    let (ws, resp) = tokio_tungstenite::connect_async(req).await.unwrap();
    assert_eq!(resp.headers()["sec-websocket-protocol"], protocol);
    ws
}

pub async fn send(ws: &mut Ws, v: Value) {
    ws.send(Message::Text(v.to_string().into())).await.unwrap();
}

/// The next JSON message (legacy keep-alives skipped), or the close code.
pub async fn next(ws: &mut Ws) -> Result<Value, u16> {
    loop {
        match tokio::time::timeout(std::time::Duration::from_secs(10), ws.next()).await.expect("message in time") {
            Some(Ok(Message::Text(t))) => {
                let v: Value = serde_json::from_str(&t).unwrap();
                if v["type"] == "ka" {
                    continue; // legacy keep-alive
                }
                return Ok(v);
            }
            Some(Ok(Message::Close(Some(f)))) => return Err(f.code.into()),
            Some(Ok(Message::Close(None))) | None => return Err(1005),
            Some(Ok(_)) => continue,
            Some(Err(e)) => panic!("ws error: {e}"),
        }
    }
}

#[tokio::test]
async fn handshake_with_a_valid_token_is_acknowledged() {
    let app = TestApp::spawn().await;
    let t = app.admin_token(app.account("A", true).await);
    let mut ws = connect(&app, "graphql-transport-ws").await;
    send(&mut ws, json!({"type": "connection_init", "payload": {"Authorization": format!("Bearer {t}")}})).await;
    assert_eq!(next(&mut ws).await.unwrap()["type"], "connection_ack");
    send(&mut ws, json!({"type": "ping", "payload": {"n": 1}})).await;
    assert_eq!(next(&mut ws).await.unwrap(), json!({"type": "pong", "payload": {"n": 1}}));
    // A second init is refused with 4429.
    send(&mut ws, json!({"type": "connection_init"})).await;
    assert_eq!(next(&mut ws).await, Err(4429));
    // The `token` form works too.
    let mut ws = connect(&app, "graphql-transport-ws").await;
    send(&mut ws, json!({"type": "connection_init", "payload": {"token": t}})).await;
    assert_eq!(next(&mut ws).await.unwrap()["type"], "connection_ack");
}

#[tokio::test]
async fn bad_or_missing_token_closes_4403() {
    let app = TestApp::spawn().await;
    let mut ws = connect(&app, "graphql-transport-ws").await;
    send(&mut ws, json!({"type": "connection_init", "payload": {"Authorization": "Bearer nonsense"}})).await;
    assert_eq!(next(&mut ws).await, Err(4403));
    let mut ws = connect(&app, "graphql-transport-ws").await;
    send(&mut ws, json!({"type": "connection_init"})).await;
    assert_eq!(next(&mut ws).await, Err(4403));
    // Legacy protocol: connection_error, then close.
    let mut ws = connect(&app, "graphql-ws").await;
    send(&mut ws, json!({"type": "connection_init", "payload": {}})).await;
    assert_eq!(next(&mut ws).await.unwrap()["type"], "connection_error");
    assert_eq!(next(&mut ws).await, Err(4403));
}

#[tokio::test]
async fn protocol_violations_close_with_their_codes() {
    let app = TestApp::spawn_with(|c| c.ws_init_timeout_secs = 1).await;
    let t = app.admin_token(app.account("A", true).await);
    // Subscribe before connection_ack: 4401.
    let mut ws = connect(&app, "graphql-transport-ws").await;
    send(&mut ws, json!({"type": "subscribe", "id": "1", "payload": {"query": "{ __typename }"}})).await;
    assert_eq!(next(&mut ws).await, Err(4401));
    // Not JSON: 4400.
    let mut ws = connect(&app, "graphql-transport-ws").await;
    ws.send(Message::Text("hello".into())).await.unwrap();
    assert_eq!(next(&mut ws).await, Err(4400));
    // Unknown type: 4400.
    let mut ws = connect(&app, "graphql-transport-ws").await;
    send(&mut ws, json!({"type": "connection_init", "payload": {"token": t}})).await;
    next(&mut ws).await.unwrap();
    send(&mut ws, json!({"type": "bogus"})).await;
    assert_eq!(next(&mut ws).await, Err(4400));
    // No connection_init in time: 4408.
    let mut ws = connect(&app, "graphql-transport-ws").await;
    assert_eq!(next(&mut ws).await, Err(4408));
}

#[tokio::test]
async fn queries_run_over_the_socket_with_the_connection_token() {
    let app = TestApp::spawn().await;
    let t = app.token(app.account("A", true).await, &[]);
    for protocol in ["graphql-transport-ws", "graphql-ws"] {
        let mut ws = connect(&app, protocol).await;
        send(&mut ws, json!({"type": "connection_init", "payload": {"token": t}})).await;
        assert_eq!(next(&mut ws).await.unwrap()["type"], "connection_ack");
        let start = if protocol == "graphql-ws" { "start" } else { "subscribe" };
        send(
            &mut ws,
            json!({"type": start, "id": "q1", "payload": {"query": "{ m365Integration { enabled canManage } }"}}),
        )
        .await;
        let msg = next(&mut ws).await.unwrap();
        assert_eq!(msg["type"], if protocol == "graphql-ws" { "data" } else { "next" });
        assert_eq!(msg["payload"]["data"]["m365Integration"], json!({"enabled": true, "canManage": false}));
        assert_eq!(next(&mut ws).await.unwrap(), json!({"type": "complete", "id": "q1"}));
        // A finished id may be used again (it is not a duplicate).
        send(&mut ws, json!({"type": start, "id": "q1", "payload": {"query": "{ m365Integration { enabled } }"}}))
            .await;
        assert_eq!(next(&mut ws).await.unwrap()["payload"]["data"]["m365Integration"]["enabled"], true);
        assert_eq!(next(&mut ws).await.unwrap(), json!({"type": "complete", "id": "q1"}));
        // A request error is an `error` message.
        send(&mut ws, json!({"type": start, "id": "q2", "payload": {"query": "{ nope }"}})).await;
        assert_eq!(next(&mut ws).await.unwrap()["type"], "error");
        // The id is free the moment its `complete` or `error` arrives: reused at once, again and
        // again, it is never refused as a duplicate (4409).
        for _ in 0..20 {
            send(&mut ws, json!({"type": start, "id": "q2", "payload": {"query": "{ nope }"}})).await;
            assert_eq!(next(&mut ws).await.unwrap()["type"], "error");
            send(&mut ws, json!({"type": start, "id": "q2", "payload": {"query": "{ m365Integration { enabled } }"}}))
                .await;
            assert_eq!(next(&mut ws).await.unwrap()["payload"]["data"]["m365Integration"]["enabled"], true);
            assert_eq!(next(&mut ws).await.unwrap(), json!({"type": "complete", "id": "q2"}));
        }
    }
}
