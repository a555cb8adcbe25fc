//! Running as one of several replicas: a drain (SIGTERM) closes WebSockets with 1001 and hands
//! its running sync over at once instead of after the lease.

use std::time::Duration;

use m365_emulator::world::WorldSpec;
use serde_json::json;

use m365_integration::config::Config;

use crate::helpers::{TestApp, data, error_code, fresh_database_url};

/// Two replicas on one fresh database, an account connected through replica A (its first sync
/// done), and an admin token of it.
async fn two_replicas(spec: WorldSpec, tweak: fn(&mut Config)) -> (TestApp, TestApp, i64, String) {
    let dir = tempfile::tempdir().unwrap();
    let url = fresh_database_url(dir.path()).await;
    let a = TestApp::spawn_on(url.clone(), spec.clone(), tweak, tempfile::tempdir().unwrap()).await;
    let b = TestApp::spawn_on(url, spec, tweak, dir).await;
    let acc = a.account("A", true).await;
    let t = a.admin_token(acc);
    a.connected(acc).await;
    (a, b, acc, t)
}

#[tokio::test]
async fn a_drain_closes_sockets_with_1001_and_releases_its_sync_at_once() {
    // Long leases: a handover that waited for one would take a minute.
    let spec = WorldSpec { seed: 7, tenants: 6, users_per_tenant: 6 };
    let (mut a, b, acc, t) = two_replicas(spec, |c| c.sync_lease_secs = 60).await;

    // A slow sync runs on replica A; a dashboard listens on A.
    a.emu.state.lock().latency = Duration::from_millis(300);
    a.state.clock.advance(Duration::from_secs(31));
    let run = data(a.gql(Some(&t), "mutation { triggerM365Sync { id } }", json!({})).await);
    let run_id = run["triggerM365Sync"]["id"].clone();
    let mut ws = crate::ws::connect(&a, "graphql-transport-ws").await;
    crate::ws::send(&mut ws, json!({"type": "connection_init", "payload": {"token": t}})).await;
    assert_eq!(crate::ws::next(&mut ws).await.unwrap()["type"], "connection_ack");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let q = "{ m365Integration { sync { state } } }";
    assert_eq!(data(b.gql(Some(&t), q, json!({})).await)["m365Integration"]["sync"]["state"], "RUNNING");

    // SIGTERM on A.
    let started = std::time::Instant::now();
    a.shutdown();
    let closed = crate::ws::next(&mut ws).await;
    assert_eq!(closed, Err(1001), "the socket is closed as going away");
    // The run ends CANCELLED with the reason, well within the lease, and the lock is free.
    let q = "{ m365SyncRuns(first: 5) { edges { node { id status error } } } }";
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    let ended = loop {
        let d = data(b.gql(Some(&t), q, json!({})).await);
        let node = d["m365SyncRuns"]["edges"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["node"].clone())
            .find(|n| n["id"] == run_id)
            .unwrap();
        if node["status"] != "RUNNING" {
            break node;
        }
        assert!(std::time::Instant::now() < deadline, "the drained run did not end: {node}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(ended["status"], "CANCELLED", "{ended}");
    assert!(ended["error"].as_str().unwrap().contains("shut down"), "{ended}");
    assert!(started.elapsed() < Duration::from_secs(15), "no wait for the 60 s lease");
    // The account's scheduled sync is due now, for another replica's scheduler (B's test clock
    // is moved as A's was).
    b.state.clock.advance(Duration::from_secs(31));
    // It is set once the run has ended (so no scheduler can claim it while the lock is held).
    loop {
        let conn = m365_integration::db::connections::get(&b.state.db, acc).await.unwrap().unwrap();
        if conn.next_sync_at.is_some_and(|n| n <= b.state.clock.now()) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "not handed over: {:?}", conn.next_sync_at);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Replica B may start a sync at once: no SYNC_ALREADY_RUNNING.
    let r = b.gql(Some(&t), "mutation { triggerM365Sync { id } }", json!({})).await;
    assert_ne!(error_code(&r), Some("SYNC_ALREADY_RUNNING"), "{r}");
}

#[tokio::test]
async fn a_disconnect_on_one_replica_stops_the_run_another_replica_holds_within_a_second() {
    if !std::env::var("DATABASE_URL").is_ok_and(|u| u.starts_with("postgres")) {
        return; // replicas share PostgreSQL; SQLite is one process
    }
    let (a, b, _, t) = two_replicas(WorldSpec { seed: 7, tenants: 6, users_per_tenant: 6 }, |_| {}).await;
    // A slow sync on A: every Microsoft request takes 300 ms.
    a.emu.state.lock().latency = Duration::from_millis(300);
    a.state.clock.advance(Duration::from_secs(31));
    data(a.gql(Some(&t), "mutation { triggerM365Sync { id } }", json!({})).await);
    tokio::time::sleep(Duration::from_millis(700)).await;
    let requests = || a.emu.state.stats().get("http requests").copied().unwrap_or(0);
    let before = requests();
    assert!(before > 0);
    // The disconnect lands on B.
    let d = data(b.gql(Some(&t), "mutation { disconnectM365 { syncsCancelled } }", json!({})).await);
    assert_eq!(d["disconnectM365"]["syncsCancelled"], 1);
    // Within a second A's worker has stopped asking Microsoft anything (requests already sent
    // may still complete, so allow the ones in flight).
    tokio::time::sleep(Duration::from_secs(1)).await;
    let settled = requests();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(requests(), settled, "A's worker kept calling Microsoft after the disconnect on B");
}

#[tokio::test]
async fn a_drain_hands_over_only_the_runs_it_holds() {
    let mut a = TestApp::spawn().await;
    let acc = a.account("A", true).await;
    a.connected(acc).await; // its run ended before the drain
    let before = m365_integration::db::connections::get(&a.state.db, acc).await.unwrap().unwrap().next_sync_at;
    a.shutdown();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = m365_integration::db::connections::get(&a.state.db, acc).await.unwrap().unwrap().next_sync_at;
    assert_eq!(after, before, "an idle account gets no extra sync from a deploy");
}

fn on_postgres() -> bool {
    std::env::var("DATABASE_URL").is_ok_and(|u| u.starts_with("postgres"))
}

const PROGRESS: &str = "subscription { m365SyncProgress { id version status phase tenantsDone currentTenant \
                        tenantResults { tenantId outcome } } }";

/// A live `m365SyncProgress` subscription whose first event (the last finished run) arrived.
async fn watch(app: &TestApp, token: &str) -> crate::ws::Ws {
    let mut ws = crate::ws::connect(app, "graphql-transport-ws").await;
    crate::ws::send(&mut ws, json!({"type": "connection_init", "payload": {"token": token}})).await;
    assert_eq!(crate::ws::next(&mut ws).await.unwrap()["type"], "connection_ack");
    crate::ws::send(&mut ws, json!({"type": "subscribe", "id": "p", "payload": {"query": PROGRESS}})).await;
    let first = crate::ws::next(&mut ws).await.unwrap();
    assert_eq!(first["payload"]["data"]["m365SyncProgress"]["status"], "SUCCEEDED", "{first}");
    ws
}

/// Every state until the stream completes.
async fn states(ws: &mut crate::ws::Ws) -> Vec<serde_json::Value> {
    let mut out = vec![];
    loop {
        let msg = crate::ws::next(ws).await.expect("stream open");
        match msg["type"].as_str().unwrap() {
            "next" => out.push(msg["payload"]["data"]["m365SyncProgress"].clone()),
            "complete" => return out,
            other => panic!("unexpected {other}: {msg}"),
        }
    }
}

fn versions(states: &[serde_json::Value]) -> Vec<i64> {
    states.iter().map(|s| s["version"].as_i64().unwrap()).collect()
}

#[tokio::test]
async fn a_subscriber_on_another_replica_sees_the_run_as_the_worker_published_it() {
    if !on_postgres() {
        return; // replicas share PostgreSQL; SQLite is one process
    }
    let (a, b, _, t) = two_replicas(WorldSpec { seed: 11, tenants: 8, users_per_tenant: 5 }, |_| {}).await;
    // Dashboards on both replicas; the sync runs on A.
    let mut on_a = watch(&a, &t).await;
    let mut on_b = watch(&b, &t).await;
    a.emu.state.lock().latency = Duration::from_millis(20);
    a.state.clock.advance(Duration::from_secs(31));
    data(a.gql(Some(&t), "mutation { triggerM365Sync { id } }", json!({})).await);
    let seen_on_a = states(&mut on_a).await;
    let seen_on_b = states(&mut on_b).await;
    // States that come together reach a subscriber as the newest of them (conflation), so the
    // two may skip different ones; each goes forward, a state both got is the same on both
    // (B rebuilt it from the relayed changes), and both end alike.
    for seen in [&seen_on_a, &seen_on_b] {
        let v = versions(seen);
        assert!(v.windows(2).all(|w| w[0] < w[1]), "versions only go forward: {v:?}");
        assert!(seen.iter().any(|s| s["status"] == "RUNNING"), "progress while it runs: {seen:?}");
    }
    for state in &seen_on_b {
        if let Some(on_a) = seen_on_a.iter().find(|s| s["version"] == state["version"]) {
            assert_eq!(state, on_a, "replica B relays exactly what A's worker published");
        }
    }
    assert_eq!(seen_on_b.last(), seen_on_a.last());
    let last = seen_on_b.last().unwrap();
    assert_eq!(last["status"], "SUCCEEDED");
    assert_eq!(last["tenantsDone"], 8);
    assert_eq!(last["tenantResults"].as_array().unwrap().len(), 8);
}

#[tokio::test]
async fn a_subscriber_still_gets_the_end_when_the_listener_connection_is_killed_mid_run() {
    if !on_postgres() {
        return;
    }
    let (a, b, acc, t) = two_replicas(WorldSpec { seed: 12, tenants: 6, users_per_tenant: 5 }, |_| {}).await;
    let mut on_b = watch(&b, &t).await;
    a.emu.state.lock().latency = Duration::from_millis(150);
    a.state.clock.advance(Duration::from_secs(31));
    data(a.gql(Some(&t), "mutation { triggerM365Sync { id } }", json!({})).await);
    // The run is under way on B's screen.
    let mut seen = vec![];
    while seen.len() < 3 {
        let msg = crate::ws::next(&mut on_b).await.unwrap();
        seen.push(msg["payload"]["data"]["m365SyncProgress"].clone());
    }
    // Every replica's listening connection dies (as in a failover or a network cut); progress
    // sent until it is back is lost to B.
    use sea_orm::ConnectionTrait;
    let kill = "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                WHERE datname = current_database() AND pid <> pg_backend_pid() AND query ILIKE 'LISTEN%'";
    let killed = a.state.db.query_all_raw(sea_orm::Statement::from_string(a.state.db.get_database_backend(), kill));
    assert_eq!(killed.await.unwrap().len(), 2, "both replicas' listeners");
    seen.extend(states(&mut on_b).await);
    let v = versions(&seen);
    assert!(v.windows(2).all(|w| w[0] < w[1]), "versions only go forward: {v:?}");
    let last = seen.last().unwrap();
    assert_eq!(last["status"], "SUCCEEDED", "{last}");
    assert_eq!(last["tenantsDone"], 6);
    // The stored run agrees with what B ended on.
    let row = m365_integration::db::sync_runs::latest(&b.state.db, acc).await.unwrap().unwrap();
    assert_eq!(row.version, last["version"].as_i64().unwrap());
}
