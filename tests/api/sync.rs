//! The sync engine against the emulator: guards, data, faults, the lease lock, the schedule and
//! the progress subscription.

use std::time::Duration;

use entity::prelude::*;
use entity::states::{ConnectionStatus, MfaSource, MfaStatus, RunStatus, RunTrigger, TenantOutcome};
use m365_emulator::{
    PartnerKnobs,
    world::{TenantKnobs, Throttle, WorldSpec},
};
use m365_integration::{db, microsoft::roles, sync};
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::{Value, json};

use crate::{
    helpers::{TestApp, data, error_code},
    ws::{connect as ws_connect, next, send},
};

const TRIGGER: &str = "mutation { triggerM365Sync { id status trigger } }";

#[tokio::test]
async fn manual_trigger_cooldown_and_lock() {
    let app = TestApp::spawn().await;
    let acc = app.account("A", true).await;
    let t = app.admin_token(acc);
    app.connected(acc).await;
    // The initial sync did not start the manual cooldown.
    let triggered = std::time::Instant::now();
    let run = data(app.gql(Some(&t), TRIGGER, json!({})).await);
    assert_eq!(run["triggerM365Sync"]["trigger"], "MANUAL");
    app.wait_idle(&t).await;
    // A second manual trigger within 30 s: SYNC_COOLDOWN with the seconds left.
    app.state.clock.advance(Duration::from_secs(10));
    let body = app.gql(Some(&t), TRIGGER, json!({})).await;
    assert_eq!(error_code(&body), Some("SYNC_COOLDOWN"));
    let left = body["errors"][0]["extensions"]["retryAfterSeconds"].as_i64().unwrap();
    // 30 s minus the 10 s advanced, minus the real time the sync took (rounded up).
    let lowest = 20 - triggered.elapsed().as_secs() as i64 - 1;
    assert!((lowest..=20).contains(&left), "{left} not in {lowest}..=20");
    let d = data(app.gql(Some(&t), "{ m365Integration { sync { cooldownRemainingSeconds } } }", json!({})).await);
    let left = d["m365Integration"]["sync"]["cooldownRemainingSeconds"].as_i64().unwrap();
    assert!((lowest - 1..=20).contains(&left), "{left}");
    // While a sync holds the lock: SYNC_ALREADY_RUNNING.
    app.state.clock.advance(Duration::from_secs(21));
    app.emu.state.lock().latency = Duration::from_millis(150);
    data(app.gql(Some(&t), TRIGGER, json!({})).await);
    app.state.clock.advance(Duration::from_secs(31));
    assert_eq!(error_code(&app.gql(Some(&t), TRIGGER, json!({})).await), Some("SYNC_ALREADY_RUNNING"));
    let d =
        data(app.gql(Some(&t), "{ m365Integration { sync { state currentRun { status phase } } } }", json!({})).await);
    assert_eq!(d["m365Integration"]["sync"]["state"], "RUNNING");
    assert_eq!(d["m365Integration"]["sync"]["currentRun"]["status"], "RUNNING");
    app.emu.state.lock().latency = Duration::ZERO;
    let sync = app.wait_idle(&t).await;
    assert_eq!(sync["lastRun"]["status"], "SUCCEEDED");
    // History lists every run, newest first.
    let runs = data(
        app.gql(Some(&t), "{ m365SyncRuns(first: 10) { totalCount edges { node { trigger status } } } }", json!({}))
            .await,
    );
    assert_eq!(runs["m365SyncRuns"]["totalCount"], 3);
    assert_eq!(runs["m365SyncRuns"]["edges"][2]["node"]["trigger"], "INITIAL");
}

#[tokio::test]
async fn synced_data_matches_microsoft() {
    let app = TestApp::spawn_world(WorldSpec { seed: 11, tenants: 10, users_per_tenant: 21 }, |_| {}).await;
    let acc = app.account("A", true).await;
    let sync = app.connected(acc).await;
    assert_eq!(sync["lastRun"]["status"], "SUCCEEDED", "{sync}");
    assert_eq!(sync["lastRun"]["tenantsDone"], 10);
    assert_eq!(sync["lastRun"]["usersSynced"], 210);
    let world = app.emu.state.lock().world.clone();
    let db = &app.state.db;
    assert_eq!(M365User::find().count(db).await.unwrap(), 210);
    for (i, t) in world.customers().iter().enumerate() {
        let tenant = M365Tenant::find()
            .filter(entity::m365_tenant::Column::MicrosoftTenantId.eq(&t.id))
            .one(db)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(tenant.display_name, t.display_name);
        assert_eq!(tenant.default_domain.as_deref(), Some(t.default_domain()));
        assert_eq!(tenant.sync_status, Some(TenantOutcome::Ok));
        assert!(tenant.gdap_roles.0.contains(&roles::GLOBAL_READER.to_owned()));
        // One tenant in ten has no P1: MFA comes from per-user methods through $batch.
        let source = if i == 9 { MfaSource::AuthenticationMethods } else { MfaSource::RegistrationReport };
        assert_eq!(tenant.mfa_source, Some(source), "{}", t.display_name);
        let users = M365User::find().filter(entity::m365_user::Column::TenantId.eq(tenant.id)).all(db).await.unwrap();
        for u in &t.users {
            let row = users.iter().find(|r| r.object_id == u.id).expect("every user is stored");
            let strong = u
                .methods
                .iter()
                .any(|m| !matches!(m, m365_emulator::world::Method::Password | m365_emulator::world::Method::Email));
            assert_eq!(row.mfa_status, if strong { MfaStatus::Enabled } else { MfaStatus::Disabled }, "{}", u.upn);
            assert_eq!(row.account_enabled, u.account_enabled);
            assert_eq!(row.is_licensed, !u.sku_ids.is_empty());
            if i != 9 {
                assert_eq!(row.is_admin, Some(u.is_admin));
            }
            assert!(row.mfa_checked_at.is_some());
        }
        let licenses =
            M365License::find().filter(entity::m365_license::Column::TenantId.eq(tenant.id)).all(db).await.unwrap();
        assert_eq!(licenses.len(), t.skus.len());
        for l in licenses {
            assert_eq!(l.consumed_units, t.consumed(&l.sku_id));
        }
    }
    let assignments = M365UserLicense::find().count(db).await.unwrap() as usize;
    assert_eq!(assignments, world.customers().iter().flat_map(|t| &t.users).map(|u| u.sku_ids.len()).sum::<usize>());

    // The users page decodes rows by column position: the same models the derived decoder reads
    // by name, every column; the larger columns it leaves out read empty and nothing else moves.
    use sea_orm::QueryOrder;
    let stored = M365User::find()
        .filter(entity::m365_user::Column::AccountId.eq(acc))
        .order_by_asc(entity::m365_user::Column::Id)
        .all(db)
        .await
        .unwrap();
    assert!(stored.iter().any(|u| !u.mfa_explanation.0.is_empty() && !u.aliases.0.is_empty() && u.content_hash != 0));
    let filter = db::users::UserFilter::default();
    let (all, _) = db::users::page(db, acc, &filter, None, 1000, false, db::users::UserColumns::ALL).await.unwrap();
    assert_eq!(all, stored);
    let slim = db::users::UserColumns { aliases: false, enforcement: false, explanation: false };
    let (page, _) = db::users::page(db, acc, &filter, None, 1000, false, slim).await.unwrap();
    let emptied: Vec<_> = stored
        .into_iter()
        .map(|mut u| {
            u.aliases = Default::default();
            u.mfa_enforcement_sources = Default::default();
            u.mfa_policies = Default::default();
            u.mfa_enforcement_reason = None;
            u.mfa_explanation = Default::default();
            u
        })
        .collect();
    assert_eq!(page, emptied);
}

#[tokio::test]
async fn one_failing_tenant_never_fails_the_others() {
    let app = TestApp::spawn_world(WorldSpec { seed: 5, tenants: 5, users_per_tenant: 4 }, |_| {}).await;
    let acc = app.account("A", true).await;
    let ids: Vec<String> = app.emu.state.lock().world.customers().iter().map(|t| t.id.clone()).collect();
    app.emu.state.set_tenant_knobs(&ids[0], TenantKnobs { consent_missing: true, ..Default::default() });
    app.emu.state.set_tenant_knobs(&ids[1], TenantKnobs { no_gdap_access: true, ..Default::default() });
    // MFA readable by neither path: no P1 and methods forbidden; the relationship holds what the
    // guide asks for (User Administrator), which Microsoft does not accept for methods.
    app.emu.state.set_tenant_knobs(
        &ids[2],
        TenantKnobs {
            p1: Some(false),
            roles: Some(vec![roles::DIRECTORY_READERS.into(), roles::USER_ADMINISTRATOR.into()]),
            ..Default::default()
        },
    );
    app.emu
        .state
        .set_tenant_knobs(&ids[3], TenantKnobs { fail_next: 100, fail_status: Some(500), ..Default::default() });
    let sync = app.connected(acc).await;
    assert_eq!(sync["lastRun"]["status"], "PARTIAL", "{sync}");
    assert_eq!(sync["lastRun"]["tenantsFailed"], 3);
    let by_id = |id: &str| {
        sync["lastRun"]["tenantResults"].as_array().unwrap().iter().find(|r| r["tenantId"] == id).unwrap().clone()
    };
    assert_eq!(by_id(&ids[0])["errorCode"], "CONSENT_MISSING");
    assert!(by_id(&ids[0])["remediation"].as_str().unwrap().contains("admin consent"));
    assert_eq!(by_id(&ids[1])["errorCode"], "NO_GDAP_ACCESS");
    let mfa = by_id(&ids[2]);
    assert_eq!((mfa["outcome"].as_str(), mfa["errorCode"].as_str()), (Some("PARTIAL"), Some("MFA_UNAVAILABLE")));
    let rem = mfa["remediation"].as_str().unwrap();
    assert!(
        rem.contains("User Administrator")
            && rem.contains("Global Reader")
            && rem.contains("holds: Directory Readers, User Administrator"),
        "{rem}"
    );
    assert_eq!(mfa["usersSynced"], 4, "users still sync when MFA is unavailable");
    assert_eq!(by_id(&ids[3])["errorCode"], "USERS_UNREADABLE");
    assert_eq!(by_id(&ids[4])["outcome"], "OK");
    let db = &app.state.db;
    let t2 = M365Tenant::find()
        .filter(entity::m365_tenant::Column::MicrosoftTenantId.eq(&ids[2]))
        .one(db)
        .await
        .unwrap()
        .unwrap();
    let users = M365User::find().filter(entity::m365_user::Column::TenantId.eq(t2.id)).all(db).await.unwrap();
    assert!(
        users
            .iter()
            .all(|u| u.mfa_status == MfaStatus::Unavailable
                && u.mfa_unavailable_reason.as_deref().unwrap().contains("P1"))
    );
}

#[tokio::test]
async fn throttling_storms_and_server_errors_lose_nothing() {
    let app = TestApp::spawn_world(WorldSpec { seed: 9, tenants: 10, users_per_tenant: 25 }, |_| {}).await;
    let acc = app.account("A", true).await;
    let ids: Vec<String> = app.emu.state.lock().world.customers().iter().map(|t| t.id.clone()).collect();
    for (i, id) in ids.iter().enumerate() {
        let knobs = if i % 2 == 0 {
            TenantKnobs {
                throttle: Some(Throttle { requests: 2, window_ms: 200, retry_after_secs: 0.2 }),
                ..Default::default()
            }
        } else {
            TenantKnobs { fail_next: 3, ..Default::default() }
        };
        app.emu.state.set_tenant_knobs(id, knobs);
    }
    let sync = app.connected(acc).await;
    assert_eq!(sync["lastRun"]["status"], "SUCCEEDED", "{sync}");
    assert_eq!(M365User::find().count(&app.state.db).await.unwrap(), 250);
    // The faults really happened, and were retried through.
    let stats = app.emu.state.stats();
    assert!(stats.get("429 responses").copied().unwrap_or(0) > 0, "{stats:?}");
    assert_eq!(stats.get("injected failures").copied().unwrap_or(0), 5 * 3, "{stats:?}");
}

#[tokio::test]
async fn removed_users_and_unmanaged_tenants_go_a_failed_listing_deletes_nothing() {
    let app = TestApp::spawn_world(WorldSpec { seed: 2, tenants: 3, users_per_tenant: 5 }, |_| {}).await;
    let acc = app.account("A", true).await;
    let t = app.admin_token(acc);
    app.connected(acc).await;
    let db = &app.state.db;
    assert_eq!(M365User::find().count(db).await.unwrap(), 15);
    let (gone_user, t1, t2) = {
        let mut g = app.emu.state.lock();
        let t1 = g.world.tenants[1].id.clone();
        let t2 = g.world.tenants[2].id.clone();
        let u = g.world.tenants[1].users.pop().unwrap().id;
        (u, t1, t2)
    };
    // A failing listing for tenant 2: its stored users stay.
    app.emu.state.set_tenant_knobs(&t2, TenantKnobs { fail_next: 100, ..Default::default() });
    app.state.clock.advance(Duration::from_secs(31));
    data(app.gql(Some(&t), TRIGGER, json!({})).await);
    app.wait_idle(&t).await;
    assert!(
        M365User::find().filter(entity::m365_user::Column::ObjectId.eq(&gone_user)).one(db).await.unwrap().is_none(),
        "deleted in Microsoft, deleted here"
    );
    assert_eq!(M365User::find().count(db).await.unwrap(), 14, "tenant 2's users survive its failed listing");
    let failed = M365Tenant::find()
        .filter(entity::m365_tenant::Column::MicrosoftTenantId.eq(&t2))
        .one(db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(failed.sync_status, Some(TenantOutcome::Failed));
    // The relationship with tenant 1 ends: its data goes.
    app.emu
        .state
        .lock()
        .world
        .relationships
        .iter_mut()
        .filter(|r| r.customer_tenant_id == t1)
        .for_each(|r| r.status = "terminated".into());
    app.emu.state.set_tenant_knobs(&t2, TenantKnobs::default());
    app.state.clock.advance(Duration::from_secs(31));
    data(app.gql(Some(&t), TRIGGER, json!({})).await);
    let sync = app.wait_idle(&t).await;
    assert_eq!(sync["lastRun"]["tenantsTotal"], 2);
    assert!(
        M365Tenant::find()
            .filter(entity::m365_tenant::Column::MicrosoftTenantId.eq(&t1))
            .one(db)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(M365User::find().count(db).await.unwrap(), 10);
}

#[tokio::test]
async fn refresh_token_revoked_mid_sync_fails_the_run_and_needs_reconnect() {
    let app =
        TestApp::spawn_world(WorldSpec { seed: 4, tenants: 8, users_per_tenant: 3 }, |c| c.sync_concurrency = 1).await;
    let acc = app.account("A", true).await;
    let t = app.admin_token(acc);
    app.emu.state.lock().latency = Duration::from_millis(30);
    assert_eq!(app.browser_connect(&t).await.status(), 200);
    // Revoke once the first tenant is done.
    loop {
        let d = data(app.gql(Some(&t), "{ m365Integration { sync { currentRun { tenantsDone } } } }", json!({})).await);
        if d["m365Integration"]["sync"]["currentRun"]["tenantsDone"].as_i64().unwrap_or(0) >= 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    app.emu.state.set_partner_knobs(PartnerKnobs { refresh_revoked: true, ..Default::default() });
    let sync = app.wait_idle(&t).await;
    assert_eq!(sync["lastRun"]["status"], "FAILED");
    assert_eq!(sync["lastRun"]["error"], "Your Microsoft authorization has expired or been revoked.");
    assert!(sync["lastRun"]["tenantsDone"].as_i64().unwrap() < 8);
    let conn = db::connections::get(&app.state.db, acc).await.unwrap().unwrap();
    assert_eq!(conn.status, ConnectionStatus::NeedsReconnect);
}

#[tokio::test]
async fn a_dead_workers_lease_expires_and_its_writes_are_refused() {
    let app = TestApp::spawn_with(|c| c.sync_lease_secs = 5).await;
    let acc = app.account("A", true).await;
    let t = app.admin_token(acc);
    app.connected(acc).await;
    // A worker of another process claims the lock and dies.
    let now = app.state.clock.now();
    let dead = db::sync_runs::claim(
        &app.state.db,
        acc,
        RunTrigger::Scheduled,
        None,
        "dead-worker",
        now,
        now + chrono::Duration::seconds(40),
    )
    .await
    .unwrap()
    .unwrap();
    app.state.clock.advance(Duration::from_secs(31));
    assert_eq!(error_code(&app.gql(Some(&t), TRIGGER, json!({})).await), Some("SYNC_ALREADY_RUNNING"));
    // Its lease runs out: the next trigger takes the lock and records why the old run ended.
    app.state.clock.advance(Duration::from_secs(10));
    data(app.gql(Some(&t), TRIGGER, json!({})).await);
    let sync = app.wait_idle(&t).await;
    assert_eq!(sync["lastRun"]["status"], "SUCCEEDED");
    let old = db::sync_runs::get(&app.state.db, acc, dead.id).await.unwrap().unwrap();
    assert_eq!(old.status, RunStatus::Failed);
    assert!(old.error.as_deref().unwrap().contains("lock expired"));
    // The dead worker wakes up: its fenced writes are refused.
    let later = app.state.clock.now() + chrono::Duration::seconds(60);
    assert!(!db::sync_runs::renew(&app.state.db, dead.id, "dead-worker", later).await.unwrap());
    let mut stale = old.clone();
    stale.users_synced = 999;
    assert!(db::sync_runs::save_progress(&app.state.db, &stale, "dead-worker", true).await.unwrap().is_none());
}

#[tokio::test]
async fn two_processes_on_one_database_race_for_the_lock() {
    let first = TestApp::spawn().await;
    let acc = first.account("A", true).await;
    first.connected(acc).await;
    let dir = tempfile::tempdir().unwrap();
    let second = TestApp::spawn_on(
        first.state.config.database_url.clone(),
        WorldSpec { seed: 7, tenants: 4, users_per_tenant: 6 },
        |c| {
            c.m365_client_id = first.state.config.m365_client_id.clone();
        },
        dir,
    )
    .await;
    assert_ne!(first.state.sync.worker_id, second.state.sync.worker_id);
    // Runs last long enough that the loser really meets a live lock.
    first.emu.state.lock().latency = Duration::from_millis(150);
    second.emu.state.lock().latency = Duration::from_millis(150);
    for _ in 0..5 {
        let (a, b) = tokio::join!(
            sync::trigger(&first.state, acc, RunTrigger::Scheduled, None),
            sync::trigger(&second.state, acc, RunTrigger::Scheduled, None),
        );
        let wins = [a.is_ok(), b.is_ok()].iter().filter(|w| **w).count();
        assert_eq!(wins, 1, "exactly one process holds the lock: {a:?} {b:?}");
        let loser = match (a, b) {
            (Ok(_), Err(e)) | (Err(e), Ok(_)) => e,
            _ => unreachable!("one won"),
        };
        assert_eq!(loser.code(), "SYNC_ALREADY_RUNNING");
        first.wait_idle(&first.admin_token(acc)).await;
    }
}

#[tokio::test]
async fn scheduled_syncs_run_every_interval() {
    let app = TestApp::spawn_with(|c| c.sync_interval = Duration::from_millis(400)).await;
    let acc = app.account("A", true).await;
    let t = app.admin_token(acc);
    app.connected(acc).await;
    let d = data(app.gql(Some(&t), "{ m365Integration { sync { nextScheduledAt } } }", json!({})).await);
    assert!(d["m365Integration"]["sync"]["nextScheduledAt"].is_string());
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let runs = data(app.gql(Some(&t), "{ m365SyncRuns { edges { node { trigger status } } } }", json!({})).await);
        let scheduled = runs["m365SyncRuns"]["edges"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["node"]["trigger"] == "SCHEDULED" && e["node"]["status"] == "SUCCEEDED")
            .count();
        if scheduled >= 2 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "scheduled syncs did not run: {runs}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

const PROGRESS: &str =
    "subscription { m365SyncProgress { id version status phase tenantsTotal tenantsDone usersSynced currentTenant } }";

async fn subscribe(app: &TestApp, token: &str, id: &str) -> crate::ws::Ws {
    let mut ws = ws_connect(app, "graphql-transport-ws").await;
    send(&mut ws, json!({"type": "connection_init", "payload": {"token": token}})).await;
    assert_eq!(next(&mut ws).await.unwrap()["type"], "connection_ack");
    send(&mut ws, json!({"type": "subscribe", "id": id, "payload": {"query": PROGRESS}})).await;
    ws
}

async fn collect_until_complete(ws: &mut crate::ws::Ws) -> Vec<Value> {
    let mut events = vec![];
    loop {
        let msg = next(ws).await.expect("stream open");
        match msg["type"].as_str().unwrap() {
            "next" => events.push(msg["payload"]["data"]["m365SyncProgress"].clone()),
            "complete" => return events,
            other => panic!("unexpected {other}: {msg}"),
        }
    }
}

/// Two subscribers of one run: each saw its states in order (a state skipped by one may reach the
/// other: see the conflation in `m365SyncProgress`), a state both saw is the same, and both saw
/// the same end.
fn same_run_seen_alike(a: &[Value], b: &[Value]) {
    let by_version = |events: &[Value]| -> std::collections::BTreeMap<i64, Value> {
        let v: Vec<i64> = events.iter().map(|e| e["version"].as_i64().unwrap()).collect();
        assert!(v.windows(2).all(|w| w[0] < w[1]), "versions only go forward: {v:?}");
        events.iter().map(|e| (e["version"].as_i64().unwrap(), e.clone())).collect()
    };
    let (a_states, b_states) = (by_version(a), by_version(b));
    for (version, state) in &a_states {
        if let Some(other) = b_states.get(version) {
            assert_eq!(state, other, "state {version}");
        }
    }
    assert_eq!(a.last(), b.last(), "the same end");
}

#[tokio::test]
async fn progress_streams_to_several_subscribers_and_ends_with_the_terminal_state() {
    let app = TestApp::spawn_world(WorldSpec { seed: 8, tenants: 6, users_per_tenant: 5 }, |_| {}).await;
    let acc = app.account("A", true).await;
    let t = app.admin_token(acc);
    let reader = app.token(acc, &[]);
    // Subscribed before any run: they wait for the next run and follow it to its end.
    let mut a = subscribe(&app, &reader, "a").await;
    let mut b = subscribe(&app, &t, "b").await;
    // A second subscription with the same id on the same socket closes it with 4409.
    send(&mut b, json!({"type": "subscribe", "id": "b", "payload": {"query": PROGRESS}})).await;
    assert_eq!(next(&mut b).await, Err(4409));
    let mut b = subscribe(&app, &t, "b").await;
    app.emu.state.lock().latency = Duration::from_millis(10);
    assert_eq!(app.browser_connect(&t).await.status(), 200);
    let ea = collect_until_complete(&mut a).await;
    let eb = collect_until_complete(&mut b).await;
    for events in [&ea, &eb] {
        // States that come together reach a subscriber as the newest of them (conflation), so
        // how many arrive depends on timing; their order and the end do not.
        assert_eq!(events.last().unwrap()["status"], "SUCCEEDED");
        assert_eq!(events.last().unwrap()["tenantsDone"], 6);
        let done: Vec<i64> = events.iter().map(|e| e["tenantsDone"].as_i64().unwrap()).collect();
        assert!(done.windows(2).all(|w| w[0] <= w[1]), "in order: {done:?}");
        assert!(
            events.iter().any(|e| e["status"] == "RUNNING" && e["phase"] == "syncing_tenants"),
            "progress while tenants sync: {events:?}"
        );
    }
    same_run_seen_alike(&ea, &eb);
    // Subscribing after the run: the current (terminal) state first, then the next run.
    let mut c = subscribe(&app, &reader, "c").await;
    let first = next(&mut c).await.unwrap();
    assert_eq!(first["payload"]["data"]["m365SyncProgress"]["status"], "SUCCEEDED");
    app.state.clock.advance(Duration::from_secs(31));
    data(app.gql(Some(&t), TRIGGER, json!({})).await);
    let events = collect_until_complete(&mut c).await;
    assert_eq!(events.last().unwrap()["status"], "SUCCEEDED");
    assert_ne!(events.last().unwrap()["id"], first["payload"]["data"]["m365SyncProgress"]["id"]);
}

#[tokio::test]
async fn progress_needs_the_tab_and_a_valid_token() {
    let app = TestApp::spawn().await;
    let off = app.account("Off", false).await;
    let mut ws = subscribe(&app, &app.admin_token(off), "x").await;
    // The resolver refuses: one result carrying the error, then the operation completes.
    let msg = next(&mut ws).await.unwrap();
    assert_eq!(msg["type"], "next");
    assert_eq!(msg["payload"]["errors"][0]["extensions"]["code"], "FEATURE_DISABLED");
    assert_eq!(next(&mut ws).await.unwrap()["type"], "complete");
    // A token for an account that does not exist is refused at the resolver.
    let mut ws = subscribe(&app, &app.admin_token(777), "y").await;
    let msg = next(&mut ws).await.unwrap();
    assert_eq!(msg["payload"]["errors"][0]["extensions"]["code"], "UNAUTHENTICATED");
}

/// Each user's `(id, synced_at)` and each assignment's id, to tell rewritten rows from kept ones.
async fn stored(app: &TestApp) -> (std::collections::BTreeMap<String, (i64, chrono::DateTime<chrono::Utc>)>, Vec<i64>) {
    let db = &app.state.db;
    let users =
        M365User::find().all(db).await.unwrap().into_iter().map(|u| (u.object_id, (u.id, u.synced_at))).collect();
    let mut assignments: Vec<i64> = M365UserLicense::find().all(db).await.unwrap().into_iter().map(|a| a.id).collect();
    assignments.sort_unstable();
    (users, assignments)
}

#[tokio::test]
async fn a_sync_that_finds_nothing_changed_rewrites_no_user_and_no_assignment() {
    let app = TestApp::spawn_world(WorldSpec { seed: 21, tenants: 3, users_per_tenant: 6 }, |_| {}).await;
    let acc = app.account("A", true).await;
    let t = app.admin_token(acc);
    app.connected(acc).await;
    let (users, assignments) = stored(&app).await;
    assert_eq!(users.len(), 18);
    assert!(!assignments.is_empty());
    let tuples = |app: &TestApp| {
        let db = app.state.db.clone();
        async move {
            use sea_orm::ConnectionTrait;
            if db.get_database_backend() != sea_orm::DatabaseBackend::Postgres {
                return None;
            }
            // PostgreSQL writes a new row version (a new xmin) for every UPDATE, even one that
            // sets the same values: an unchanged xmin proves the row was not written.
            let sql = "SELECT object_id, xmin::text AS x FROM m365_user ORDER BY object_id";
            let rows = db.query_all_raw(sea_orm::Statement::from_string(db.get_database_backend(), sql)).await.unwrap();
            Some(rows.iter().map(|r| r.try_get::<String>("", "x").unwrap()).collect::<Vec<_>>())
        }
    };
    let xmin_before = tuples(&app).await;
    let skus = |app: &TestApp| {
        let db = app.state.db.clone();
        async move {
            let mut rows: Vec<_> =
                M365License::find().all(&db).await.unwrap().into_iter().map(|l| (l.id, l.synced_at)).collect();
            rows.sort_unstable();
            rows
        }
    };
    let skus_before = skus(&app).await;

    // Nothing changed in Microsoft.
    app.state.clock.advance(Duration::from_secs(31));
    data(app.gql(Some(&t), TRIGGER, json!({})).await);
    let sync = app.wait_idle(&t).await;
    assert_eq!(sync["lastRun"]["status"], "SUCCEEDED");
    assert_eq!(sync["lastRun"]["usersSynced"], 18, "every user was read");
    assert_eq!(stored(&app).await, (users.clone(), assignments.clone()), "no user and no assignment rewritten");
    assert_eq!(tuples(&app).await, xmin_before, "no row version written");
    assert_eq!(skus(&app).await, skus_before, "no subscribed SKU rewritten");

    let consumed = |app: &TestApp, sku: String| {
        let db = app.state.db.clone();
        async move {
            let rows = M365License::find().filter(entity::m365_license::Column::SkuId.eq(sku)).all(&db).await.unwrap();
            rows.iter().map(|l| l.consumed_units).sum::<i64>()
        }
    };
    // One user changes: a new name and one license fewer. Only that user is rewritten.
    let (changed, dropped_sku) = {
        let mut g = app.emu.state.lock();
        // tenants[0] is the partner; customers follow.
        let u = g
            .world
            .tenants
            .iter_mut()
            .skip(1)
            .flat_map(|t| t.users.iter_mut())
            .find(|u| !u.sku_ids.is_empty())
            .unwrap();
        u.display_name = "Renamed Person".into();
        (u.id.clone(), u.sku_ids.pop().unwrap())
    };
    let consumed_before = consumed(&app, dropped_sku.to_owned()).await;
    app.state.clock.advance(Duration::from_secs(31));
    data(app.gql(Some(&t), TRIGGER, json!({})).await);
    app.wait_idle(&t).await;
    assert_eq!(consumed(&app, dropped_sku.to_owned()).await, consumed_before - 1, "the tenant's SKU counts follow");
    let (after, after_assignments) = stored(&app).await;
    for (oid, (id, synced)) in &after {
        assert_eq!(users[oid].0, *id, "ids are kept");
        assert_eq!(*synced != users[oid].1, *oid == changed, "only {changed} is rewritten ({oid})");
    }
    assert_eq!(after_assignments.len(), assignments.len() - 1, "{dropped_sku} unassigned");
    assert!(after_assignments.iter().all(|a| assignments.contains(a)), "the other assignments are kept");
    let renamed = M365User::find().filter(entity::m365_user::Column::ObjectId.eq(&changed)).one(&app.state.db);
    assert_eq!(renamed.await.unwrap().unwrap().display_name.as_deref(), Some("Renamed Person"));
}

/// `totalCount` from the tallies against a count of the users themselves, for every combination
/// of the filterable values (and one tenant).
async fn every_count_is_exact(app: &TestApp, acc: i64, when: &str) {
    use entity::states::MfaVerdict;
    use m365_integration::db::users::{UserFilter, page};
    let db = &app.state.db;
    let users = M365User::find().all(db).await.unwrap();
    let first_tenant = users.iter().map(|u| u.tenant_id).min();
    let bools = [None, Some(true), Some(false)];
    let statuses = [None, Some(MfaStatus::Enabled), Some(MfaStatus::Disabled), Some(MfaStatus::Unavailable)];
    let verdicts = [None, Some(MfaVerdict::Protected), Some(MfaVerdict::NotRegistered), Some(MfaVerdict::NotEnforced)];
    let mut checked = 0;
    for tenant in [None, first_tenant] {
        for status in statuses {
            for verdict in verdicts {
                for admin in bools {
                    for licensed in bools {
                        for linked in bools {
                            let f = UserFilter {
                                tenant_rows: tenant.map(|t| vec![t]),
                                mfa_status: status,
                                mfa_verdict: verdict,
                                is_admin: admin,
                                account_enabled: None,
                                licensed,
                                contact_linked: linked,
                                search: None,
                            };
                            let expected = users
                                .iter()
                                .filter(|u| tenant.is_none_or(|t| u.tenant_id == t))
                                .filter(|u| status.is_none_or(|s| u.mfa_status == s))
                                .filter(|u| verdict.is_none_or(|v| u.mfa_verdict == v))
                                .filter(|u| admin.is_none_or(|a| u.is_admin == Some(a)))
                                .filter(|u| licensed.is_none_or(|l| u.is_licensed == l))
                                .filter(|u| linked.is_none_or(|l| u.contact_id.is_some() == l))
                                .count() as u64;
                            let (_, total) =
                                page(db, acc, &f, None, 1, true, m365_integration::db::users::UserColumns::ALL)
                                    .await
                                    .unwrap();
                            assert_eq!(total, expected, "{when}: {f:?}");
                            checked += 1;
                        }
                    }
                }
            }
        }
    }
    assert_eq!(checked, 2 * 4 * 4 * 27);
}

#[tokio::test]
async fn total_count_stays_exact_through_syncs_links_and_removals() {
    let app = TestApp::spawn_world(WorldSpec { seed: 23, tenants: 4, users_per_tenant: 9 }, |_| {}).await;
    let acc = app.account("A", true).await;
    let t = app.admin_token(acc);
    app.connected(acc).await;
    every_count_is_exact(&app, acc, "after the first sync").await;
    // Another account's users never count.
    let other = app.account("B", true).await;
    let (_, total) =
        db::users::page(&app.state.db, other, &Default::default(), None, 1, true, db::users::UserColumns::ALL)
            .await
            .unwrap();
    assert_eq!(total, 0);

    // Contact links come and go (matching, unmapping).
    app.upsert_clients(&t, json!([{"source": "cw", "externalId": "1", "name": "One"}])).await;
    let q = "mutation { upsertContacts(contacts: [{source: \"cw\", externalId: \"c\", clientExternalId: \"1\", name: \"X\", emails: [\"x@example.com\"]}]) { id } }";
    let contact: i64 =
        data(app.gql(Some(&t), q, json!({})).await)["upsertContacts"][0]["id"].as_str().unwrap().parse().unwrap();
    let db = &app.state.db;
    let some: Vec<(i64, Option<i64>, Option<String>)> = M365User::find()
        .all(db)
        .await
        .unwrap()
        .iter()
        .step_by(3)
        .map(|u| (u.id, Some(contact), Some("linked:x@example.com".into())))
        .collect();
    db::users::set_links(db, &some).await.unwrap();
    every_count_is_exact(&app, acc, "after linking").await;
    let tenant = M365User::find().one(db).await.unwrap().unwrap().tenant_id;
    db::users::clear_links(db, tenant).await.unwrap();
    every_count_is_exact(&app, acc, "after unmapping one tenant").await;

    // Users change, one leaves; the next sync rewrites only them.
    {
        let mut g = app.emu.state.lock();
        g.world.tenants[1].users.pop();
        let u = &mut g.world.tenants[2].users[0];
        u.account_enabled = !u.account_enabled;
        u.methods.truncate(1);
        u.sku_ids.clear();
    }
    app.state.clock.advance(Duration::from_secs(31));
    data(app.gql(Some(&t), TRIGGER, json!({})).await);
    app.wait_idle(&t).await;
    every_count_is_exact(&app, acc, "after a sync with changes").await;

    // A tenant GDAP no longer reaches goes with its tallies.
    db::tenants::remove(db, tenant).await.unwrap();
    every_count_is_exact(&app, acc, "after a tenant went").await;
    // And a disconnect leaves nothing to count.
    data(app.gql(Some(&t), "mutation { disconnectM365 { syncsCancelled } }", json!({})).await);
    let (_, total) =
        db::users::page(db, acc, &Default::default(), None, 1, true, db::users::UserColumns::ALL).await.unwrap();
    assert_eq!(total, 0);
}

#[tokio::test]
async fn subscribers_of_one_account_share_a_feed_and_nobody_else_sees_it() {
    let app = TestApp::spawn_world(WorldSpec { seed: 31, tenants: 5, users_per_tenant: 4 }, |_| {}).await;
    let acc = app.account("A", true).await;
    let t = app.admin_token(acc);
    let viewer = app.token(acc, &[]);
    app.connected(acc).await;
    // Another account with the tab on, and the very same subscription document.
    let other = app.account("B", true).await;
    let mut stranger = subscribe(&app, &app.admin_token(other), "s").await;
    // Two viewers of account A with the same document (one feed), one with another selection.
    let mut first = subscribe(&app, &t, "a").await;
    let mut second = subscribe(&app, &viewer, "b").await;
    let mut own = ws_connect(&app, "graphql-transport-ws").await;
    send(&mut own, json!({"type": "connection_init", "payload": {"token": t}})).await;
    assert_eq!(next(&mut own).await.unwrap()["type"], "connection_ack");
    let q = "subscription { m365SyncProgress { id status tenantsDone } }";
    send(&mut own, json!({"type": "subscribe", "id": "c", "payload": {"query": q}})).await;
    // Each gets the current state first: the finished first sync.
    for ws in [&mut first, &mut second, &mut own] {
        let msg = next(ws).await.unwrap();
        assert_eq!(msg["payload"]["data"]["m365SyncProgress"]["status"], "SUCCEEDED", "{msg}");
    }
    app.emu.state.lock().latency = Duration::from_millis(10);
    app.state.clock.advance(Duration::from_secs(31));
    data(app.gql(Some(&t), TRIGGER, json!({})).await);
    let a = collect_until_complete(&mut first).await;
    let b = collect_until_complete(&mut second).await;
    let c = collect_until_complete(&mut own).await;
    same_run_seen_alike(&a, &b);
    assert_eq!(a.last().unwrap()["status"], "SUCCEEDED");
    assert_eq!(c.last().unwrap()["status"], "SUCCEEDED");
    assert!(c.last().unwrap().get("phase").is_none(), "its own selection: {}", c.last().unwrap());
    // The other account saw nothing of it (no run of its own, so no event at all).
    let quiet = tokio::time::timeout(Duration::from_millis(500), futures_util::StreamExt::next(&mut stranger)).await;
    assert!(quiet.is_err(), "another account's subscriber got {quiet:?}");
}

#[tokio::test]
async fn a_subscriber_may_wait_for_the_first_run_longer_than_a_request_may_take() {
    let app = TestApp::spawn_with(|c| c.request_timeout_secs = 1).await;
    let acc = app.account("A", true).await;
    let t = app.admin_token(acc);
    let mut ws = subscribe(&app, &t, "p").await;
    // No run yet: nothing to send, and no REQUEST_TIMEOUT either.
    let quiet = tokio::time::timeout(Duration::from_millis(2500), futures_util::StreamExt::next(&mut ws)).await;
    assert!(quiet.is_err(), "got {quiet:?}");
    // The first sync comes, and the subscriber follows it to its end.
    assert_eq!(app.browser_connect(&t).await.status(), 200);
    let events = collect_until_complete(&mut ws).await;
    assert_eq!(events.last().unwrap()["status"], "SUCCEEDED");
}

/// A sync that outlives its lease keeps it: renewals move the expiry on, and the progress the
/// run saves meanwhile must not move it back (that made every run longer than
/// `SYNC_LEASE_SECS` fail as WORKER_LOST while status was being polled).
#[tokio::test]
async fn a_sync_longer_than_its_lease_keeps_it_while_saving_progress() {
    let app = TestApp::spawn_with(|c| c.sync_lease_secs = 2).await;
    let acc = app.account("A", true).await;
    let ids: Vec<String> = app.emu.state.lock().world.customers().iter().map(|t| t.id.clone()).collect();
    for id in &ids {
        app.emu.state.set_tenant_knobs(id, TenantKnobs { latency_ms: 400, ..Default::default() });
    }
    // `connected` polls the status every 50 ms, which is when a run past its lease is expired.
    let sync = app.connected(acc).await;
    let run = &sync["lastRun"];
    assert_eq!(run["status"], "SUCCEEDED", "{sync}");
    assert_eq!(run["tenantsDone"], ids.len());
    let d = data(
        app.gql(
            Some(&app.admin_token(acc)),
            "{ m365SyncRuns(first: 1) { edges { node { startedAt finishedAt } } } }",
            json!({}),
        )
        .await,
    );
    let node = &d["m365SyncRuns"]["edges"][0]["node"];
    let at = |k: &str| chrono::DateTime::parse_from_rfc3339(node[k].as_str().unwrap()).unwrap();
    let took = at("finishedAt") - at("startedAt");
    assert!(took > chrono::Duration::seconds(3), "the run must outlive its 2 s lease to test this (took {took})");
}
