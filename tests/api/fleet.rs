//! Running as one of several replicas: a drain (SIGTERM) closes WebSockets with 1001 and hands
//! its running sync over at once instead of after the lease.

use std::time::Duration;

use m365_emulator::world::WorldSpec;
use serde_json::json;

use crate::helpers::{TestApp, data, error_code, fresh_database_url};

#[tokio::test]
async fn a_drain_closes_sockets_with_1001_and_releases_its_sync_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let url = fresh_database_url(dir.path()).await;
    let spec = WorldSpec { seed: 7, tenants: 6, users_per_tenant: 6 };
    // Long leases: a handover that waited for one would take a minute.
    let tweak = |c: &mut m365_integration::config::Config| c.sync_lease_secs = 60;
    let mut a = TestApp::spawn_on(url.clone(), spec.clone(), tweak, tempfile::tempdir().unwrap()).await;
    let b = TestApp::spawn_on(url, spec, tweak, dir).await;
    let acc = a.account("A", true).await;
    let t = a.admin_token(acc);
    a.connected(acc).await;

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
    let dir = tempfile::tempdir().unwrap();
    let url = fresh_database_url(dir.path()).await;
    let spec = WorldSpec { seed: 7, tenants: 6, users_per_tenant: 6 };
    let a = TestApp::spawn_on(url.clone(), spec.clone(), |_| {}, tempfile::tempdir().unwrap()).await;
    let b = TestApp::spawn_on(url, spec, |_| {}, dir).await;
    let acc = a.account("A", true).await;
    let t = a.admin_token(acc);
    a.connected(acc).await;
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
