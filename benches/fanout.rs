//! Progress fan-out benchmark: N `m365SyncProgress` subscribers over graphql-transport-ws, split
//! over the replicas (two on PostgreSQL, one on SQLite), during the 500-tenant sync.
//!
//! Reports, all from one run: the sync's wall time with the subscribers against the same sync
//! with none (the ratio); per progress state, the delay from when the state was reached on the
//! replica running the sync (`updatedAt`) to the last subscriber having it (that state or a
//! later one: a subscriber that was not ready skips to the newest), p50/p99, overall and per
//! replica; the spread between the first and the last subscriber having it; the share of states
//! a subscriber skipped; subscribers that did not end with the terminal state (must be none);
//! RSS per replica before, with the subscribers idle (the cost of one idle subscription) and at
//! peak; CPU seconds per replica. Then the client's floor: the same subscribers fed as many
//! states by a trivial broadcaster in this process, with nothing else running.
//!
//! ```sh
//! DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres cargo bench --bench fanout
//! cargo bench --bench fanout        # SQLite: one replica
//! ```
//! Knobs: BENCH_SUBSCRIBERS (1000), BENCH_TENANTS (500), BENCH_USERS (200), BENCH_LATENCY_MS
//! (20), BENCH_CONCURRENCY (8), BENCH_REPLICAS (2 on PostgreSQL, else 1).

mod common;

use std::{
    collections::BTreeMap,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use common::{JWT, Service, env_or};
use futures_util::{SinkExt, StreamExt};
use m365_emulator::world::WorldSpec;
use m365_integration::{auth::AuthKeys, config::Secret};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes, client::IntoClientRequest, http::HeaderValue};

const QUERY: &str = "subscription { m365SyncProgress { id version status tenantsDone updatedAt } }";

/// One state as a subscriber received it.
struct Got {
    run: String,
    version: i64,
    terminal: bool,
    /// When the state was reached (server clock), and when it arrived here (Unix seconds).
    reached: f64,
    received: f64,
}

fn now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs_f64()
}

fn unix(ts: &str) -> f64 {
    let t: chrono::DateTime<chrono::Utc> = ts.parse().unwrap();
    t.timestamp_micros() as f64 / 1e6
}

fn seconds(run: &Value) -> f64 {
    unix(run["finishedAt"].as_str().unwrap()) - unix(run["startedAt"].as_str().unwrap())
}

/// A subscriber: connects, subscribes, says it is ready once the current state arrived, then
/// keeps every state until the stream completes. A message is only stamped on arrival and kept;
/// it is decoded ([`decode`]) once every subscriber is done, so decoding never delays reading
/// (here or on another subscriber sharing this thread).
async fn subscriber(url: String, token: String, ready: Arc<AtomicUsize>) -> Vec<(Utf8Bytes, f64)> {
    let mut req = format!("{}/graphql/ws", url.replace("http://", "ws://")).into_client_request().unwrap();
    req.headers_mut().insert("sec-websocket-protocol", HeaderValue::from_static("graphql-transport-ws"));
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await.expect("websocket");
    let send = |v: Value| Message::Text(v.to_string().into());
    ws.send(send(json!({"type": "connection_init", "payload": {"token": token}}))).await.unwrap();
    ws.send(send(json!({"type": "subscribe", "id": "1", "payload": {"query": QUERY}}))).await.unwrap();
    let mut kept = Vec::with_capacity(1024);
    let mut first = true;
    while let Some(msg) = ws.next().await {
        let Ok(Message::Text(text)) = msg else { continue };
        let received = now();
        if text.contains(r#""type":"next""#) {
            if first {
                first = false;
                ready.fetch_add(1, Ordering::Relaxed);
                continue; // the last run's end, sent on subscribing
            }
            kept.push((text, received));
            continue;
        }
        let v: Value = serde_json::from_str(&text).unwrap();
        match v["type"].as_str() {
            Some("complete") => break,
            Some("connection_ack") => {}
            _ => panic!("unexpected message: {text}"),
        }
    }
    kept
}

/// The states a subscriber kept.
fn decode(kept: Vec<(Utf8Bytes, f64)>) -> Vec<Got> {
    kept.into_iter()
        .map(|(text, received)| {
            let v: Value = serde_json::from_str(&text).unwrap();
            let s = &v["payload"]["data"]["m365SyncProgress"];
            Got {
                run: s["id"].as_str().unwrap().to_owned(),
                version: s["version"].as_i64().unwrap(),
                terminal: s["status"] != "RUNNING",
                reached: unix(s["updatedAt"].as_str().unwrap()),
                received,
            }
        })
        .collect()
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// Delay and spread figures over some subscribers' records.
///
/// A subscriber may skip states (conflation: it gets the newest waiting), so it *has* a state
/// from when it received that state or any later one. Per state: the delay from when it was
/// reached to the last subscriber having it, and the spread between the first and the last
/// subscriber having it. A subscriber that skipped a state counts from when it got a later one,
/// so skipping never shortens either figure.
fn figures(name: &str, subs: &[&Vec<Got>], all: &BTreeMap<i64, f64>) {
    let mut span: BTreeMap<i64, (f64, f64)> = all.keys().map(|v| (*v, (f64::MAX, 0.0))).collect(); // first, last
    let mut skipped = 0usize;
    let mut without_end = 0usize;
    for s in subs {
        if !s.last().is_some_and(|g| g.terminal) {
            without_end += 1;
            continue; // counted apart: it never had the later states
        }
        let mut got = s.iter().peekable();
        for (v, (first, last)) in span.iter_mut() {
            while got.peek().is_some_and(|g| g.version < *v) {
                got.next();
            }
            let Some(g) = got.peek() else { break };
            if g.version != *v {
                skipped += 1;
            }
            *first = first.min(g.received);
            *last = last.max(g.received);
        }
    }
    let mut delay: Vec<f64> = span.iter().map(|(v, (_, l))| (l - all[v]) * 1000.0).collect();
    let mut spread: Vec<f64> = span.values().map(|(f, l)| (l - f) * 1000.0).collect();
    delay.sort_by(f64::total_cmp);
    spread.sort_by(f64::total_cmp);
    println!(
        "  {name}: {} subscribers, {} states; delay to the last subscriber p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; spread p50 {:.1} ms, p99 {:.1} ms; skipped (conflated) {:.1} % of states; without the terminal state {without_end}",
        subs.len(),
        span.len(),
        percentile(&delay, 0.5),
        percentile(&delay, 0.99),
        delay.last().copied().unwrap_or(f64::NAN),
        percentile(&spread, 0.5),
        percentile(&spread, 0.99),
        100.0 * skipped as f64 / (span.len() * subs.len()).max(1) as f64,
    );
}

/// Every state anyone received, with when it was reached.
fn received_states(results: &[Vec<Got>]) -> BTreeMap<i64, f64> {
    results.iter().flat_map(|r| r.iter().map(|g| (g.version, g.reached))).collect()
}

#[tokio::main]
async fn main() {
    let n: usize = env_or("BENCH_SUBSCRIBERS", 1000);
    let tenants: usize = env_or("BENCH_TENANTS", 500);
    let users: usize = env_or("BENCH_USERS", 200);
    let latency_ms: u64 = env_or("BENCH_LATENCY_MS", 20);
    let concurrency: usize = env_or("BENCH_CONCURRENCY", 8);
    let on_pg = std::env::var("DATABASE_URL").is_ok_and(|u| u.starts_with("postgres"));
    let replicas: usize = env_or("BENCH_REPLICAS", if on_pg { 2 } else { 1 }).clamp(1, 2);
    let spec = WorldSpec { seed: 42, tenants, users_per_tenant: users };
    let extra = [("SYNC_CONCURRENCY", concurrency.to_string()), ("HTTP_MAX_CONNECTIONS", "4096".into())];
    let (_emu, a) = Service::start("fanout", spec, Duration::from_millis(latency_ms), &extra).await;
    let mut fleet = vec![a];
    if replicas == 2 {
        let b = fleet[0].replica().await;
        fleet.push(b);
    }
    println!(
        "emulator: {tenants} tenants x {users} users, {latency_ms} ms latency; {replicas} replica(s) on {}; {n} subscribers",
        fleet[0].database_url.split('?').next().unwrap_or("")
    );
    let a = &fleet[0];
    a.connect().await;
    a.wait_run().await;

    // The same sync with nobody watching: the reference.
    let d = a.gql("mutation { triggerM365Sync { id } }", json!({})).await;
    assert!(d["errors"].is_null(), "{d}");
    let cooldown_ends = tokio::time::Instant::now() + Duration::from_secs(31);
    let alone = seconds(&a.wait_run().await);
    let rss_before: Vec<f64> = fleet.iter().map(Service::rss_mb).collect();

    // N viewers (each its own token subject), spread over the replicas.
    let keys = AuthKeys::new(&Secret::new(JWT));
    let ready = Arc::new(AtomicUsize::new(0));
    let mut tasks = vec![];
    for i in 0..n {
        let token = keys.mint(a.account, &format!("viewer-{i}"), &[], Duration::from_secs(7200));
        let url = fleet[i % replicas].url.clone();
        tasks.push(tokio::spawn(subscriber(url, token, ready.clone())));
    }
    while ready.load(Ordering::Relaxed) < n {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_idle: Vec<f64> = fleet.iter().map(Service::rss_mb).collect();
    tokio::time::sleep_until(cooldown_ends).await;

    // The sync again, watched.
    let cpu_before: Vec<f64> = fleet.iter().map(Service::cpu_seconds).collect();
    let d = a.gql("mutation { triggerM365Sync { id } }", json!({})).await;
    assert!(d["errors"].is_null(), "{d}");
    let run_id = d["data"]["triggerM365Sync"]["id"].as_str().unwrap().to_owned();
    let mut peak = rss_idle.clone();
    let mut results = vec![];
    for t in tasks {
        while !t.is_finished() {
            for (p, s) in peak.iter_mut().zip(&fleet) {
                *p = p.max(s.rss_mb());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        results.push(t.await.unwrap());
    }
    let watched = seconds(&a.wait_run().await);
    let cpu: Vec<f64> = fleet.iter().zip(&cpu_before).map(|(s, b)| s.cpu_seconds() - b).collect();

    let mut results: Vec<Vec<Got>> = results.into_iter().map(decode).collect();
    for r in &mut results {
        r.retain(|g| g.run == run_id);
    }
    let all = received_states(&results);
    if let Ok(path) = std::env::var("BENCH_DUMP") {
        use std::fmt::Write;
        let mut out = String::new();
        for (i, r) in results.iter().enumerate() {
            for g in r {
                writeln!(out, "{} {i} {} {:.6} {:.6}", i % replicas, g.version, g.reached, g.received).unwrap();
            }
        }
        std::fs::write(path, out).unwrap();
    }
    println!("\nsync wall time: {alone:.2}s alone, {watched:.2}s watched; ratio {:.2}", watched / alone);
    println!("states published (seen by anyone): {}", all.len());
    figures("all", &results.iter().collect::<Vec<_>>(), &all);
    for (i, name) in ["replica A (runs the sync)", "replica B (relayed)"].iter().take(replicas).enumerate() {
        let subs: Vec<&Vec<Got>> = results.iter().skip(i).step_by(replicas).collect();
        figures(name, &subs, &all);
        let per_sub_kb = (rss_idle[i] - rss_before[i]) * 1024.0 / subs.len() as f64;
        println!(
            "    RSS {:.0} MB before, {:.0} MB with its subscribers idle ({per_sub_kb:.1} KB each), {:.0} MB peak; CPU {:.2}s during the sync",
            rss_before[i], rss_idle[i], peak[i], cpu[i]
        );
    }
    // The replica first, so the database (dropped with A) has nobody connected.
    while let Some(s) = fleet.pop() {
        drop(s);
    }
    client_floor(n, all.len()).await;
}

/// The client's floor: the same `n` readers, fed `states` states 25 ms apart by a trivial
/// broadcaster in this process (each state serialised once, one task per connection; no
/// service, no database, no sync running). The spread it shows is what this machine and this
/// client manage at best.
async fn client_floor(n: usize, states: usize) {
    use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (tx, _) = tokio::sync::broadcast::channel::<Arc<str>>(states + 8);
    let server_tx = tx.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let mut rx = server_tx.subscribe();
            tokio::spawn(async move {
                // The error type is tungstenite's (`ErrorResponse`), not ours to shrink.
                #[allow(clippy::result_large_err)]
                let protocol = |_: &Request, mut resp: Response| {
                    resp.headers_mut()
                        .insert("sec-websocket-protocol", HeaderValue::from_static("graphql-transport-ws"));
                    Ok(resp)
                };
                let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(tcp, protocol).await else { return };
                let _init = ws.next().await;
                ws.send(Message::Text(r#"{"type":"connection_ack"}"#.into())).await.ok();
                let _subscribe = ws.next().await;
                ws.send(Message::Text(frame(0, "SUCCEEDED").into())).await.ok(); // the current state
                while let Ok(f) = rx.recv().await {
                    if ws.send(Message::Text(f.to_string().into())).await.is_err() || f.contains(r#""complete""#) {
                        return;
                    }
                }
            });
        }
    });
    let ready = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..n).map(|_| tokio::spawn(subscriber(url.clone(), String::new(), ready.clone()))).collect();
    while ready.load(Ordering::Relaxed) < n {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    for v in 1..=states as i64 {
        let status = if v == states as i64 { "SUCCEEDED" } else { "RUNNING" };
        tx.send(frame(v, status).into()).unwrap();
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    tx.send(r#"{"type":"complete","id":"1"}"#.into()).unwrap();
    let mut results = vec![];
    for t in tasks {
        results.push(decode(t.await.unwrap()));
    }
    let all = received_states(&results);
    println!("\nclient floor: the same readers fed by a trivial broadcaster, nothing else running");
    figures("floor", &results.iter().collect::<Vec<_>>(), &all);
}

/// A progress state as the service sends it, stamped now.
fn frame(version: i64, status: &str) -> String {
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    json!({"type": "next", "id": "1", "payload": {"data": {"m365SyncProgress": {"id": "floor", "version": version, "status": status, "tenantsDone": 0, "updatedAt": now}}}}).to_string()
}
