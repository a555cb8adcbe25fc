//! Evidence benchmark: what history costs against full copies, and what an export costs.
//!
//! 1. **History**: syncs the 500-tenant × 200-user world ten times; before each resync 1 % of the
//!    users change MFA (a strong method added or removed in the emulator). Prints the history
//!    rows and (on PostgreSQL) the table's size after the ten syncs against ten full copies (the
//!    size after the first sync × 10), each sync's wall time and the history rows it wrote.
//! 2. **Export**: a tenant of 100,000 users written through the sync's own write path
//!    (`replace_users` + `evidence::record`), then `GET /evidence/mfa` (CSV and JSON) read as a
//!    stream: wall time, the service's CPU time and its RSS growth while streaming, and the
//!    digest recomputed from the file.
//!
//! ```sh
//! DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres cargo bench --bench evidence
//! cargo bench --bench evidence                    # SQLite (no table sizes)
//! ```
//! Knobs: BENCH_TENANTS (500), BENCH_USERS (200), BENCH_SYNCS (10), BENCH_CHANGE_PERCENT (1),
//! BENCH_LATENCY_MS (5), BENCH_EXPORT_USERS (100000), BENCH_PHASES (`history,export`).

mod common;

use std::time::Duration;

use chrono::Utc;
use common::{Service, env_or};
use entity::states::{MfaEnforcementState, MfaStatus, MfaVerdict};
use m365_emulator::world::{Method, WorldSpec};
use m365_integration::{
    db::{self, tenants::NewTenant, users::UserRow},
    evidence::{self, canonical::micros},
};
use rand::{Rng, SeedableRng, rngs::StdRng};
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};
use serde_json::json;
use sha2::Digest;

async fn scalar(db: &DatabaseConnection, sql: &str) -> i64 {
    let row = db.query_one_raw(Statement::from_string(db.get_database_backend(), sql)).await.unwrap().unwrap();
    row.try_get_by_index::<i64>(0).unwrap()
}

/// A table's total size in bytes, indexes included (PostgreSQL; `None` on SQLite).
async fn table_bytes(db: &DatabaseConnection, table: &str) -> Option<i64> {
    if db.get_database_backend() != sea_orm::DatabaseBackend::Postgres {
        return None;
    }
    Some(scalar(db, &format!("SELECT pg_total_relation_size('{table}')::bigint")).await)
}

fn mb(bytes: i64) -> f64 {
    bytes as f64 / 1_048_576.0
}

#[tokio::main]
async fn main() {
    let phases = std::env::var("BENCH_PHASES").unwrap_or_else(|_| "history,export".into());
    if phases.contains("history") {
        history().await;
    }
    if phases.contains("export") {
        export().await;
    }
}

async fn history() {
    let tenants: usize = env_or("BENCH_TENANTS", 500);
    let users: usize = env_or("BENCH_USERS", 200);
    let syncs: usize = env_or("BENCH_SYNCS", 10);
    let percent: f64 = env_or("BENCH_CHANGE_PERCENT", 1.0);
    let latency_ms: u64 = env_or("BENCH_LATENCY_MS", 5);
    let (emu, svc) = Service::start(
        "evidence",
        WorldSpec { seed: 42, tenants, users_per_tenant: users },
        Duration::from_millis(latency_ms),
        &[],
    )
    .await;
    let db = db::connect(&svc.database_url).await.unwrap();
    println!(
        "history: {tenants} tenants x {users} users, {syncs} syncs, {percent}% of users change MFA before each resync; database {}",
        svc.database_url.split('?').next().unwrap_or("").split('/').next_back().unwrap_or("")
    );
    let mut rng = StdRng::seed_from_u64(7);
    let mut copy_bytes = None;
    let mut last_trigger = std::time::Instant::now();
    for n in 1..=syncs {
        let before = scalar(&db, "SELECT COUNT(*) FROM mfa_history").await;
        if n == 1 {
            svc.connect().await;
        } else {
            let changed = {
                let mut g = emu.state.lock();
                let total = tenants * users;
                let k = ((total as f64) * percent / 100.0).round() as usize;
                for _ in 0..k {
                    let (t, u) = (1 + rng.gen_range(0..tenants), rng.gen_range(0..users));
                    let user = &mut g.world.tenants[t].users[u];
                    if user.methods.iter().any(|m| *m != Method::Password) {
                        user.methods.retain(|m| *m == Method::Password);
                    } else {
                        user.methods.push(Method::Authenticator);
                    }
                }
                k
            };
            // The manual cooldown is 30 s from the previous trigger.
            let wait = Duration::from_secs(31).saturating_sub(last_trigger.elapsed());
            tokio::time::sleep(wait).await;
            let d = svc.gql("mutation { triggerM365Sync { id } }", json!({})).await;
            assert!(d["errors"].is_null(), "{d}");
            println!("  {changed} users changed MFA");
        }
        last_trigger = std::time::Instant::now();
        let run = svc.wait_run().await;
        let secs = {
            let s: chrono::DateTime<Utc> = run["startedAt"].as_str().unwrap().parse().unwrap();
            let f: chrono::DateTime<Utc> = run["finishedAt"].as_str().unwrap().parse().unwrap();
            (f - s).num_milliseconds() as f64 / 1000.0
        };
        let after = scalar(&db, "SELECT COUNT(*) FROM mfa_history").await;
        let ended = scalar(&db, "SELECT COUNT(*) FROM mfa_history WHERE valid_to IS NOT NULL").await;
        println!(
            "  sync {n:>2}: {} in {secs:.2}s; history rows {after} (+{} written, {ended} ended so far)",
            run["status"],
            after - before
        );
        if n == 1 {
            copy_bytes = table_bytes(&db, "mfa_history").await;
        }
    }
    let rows = scalar(&db, "SELECT COUNT(*) FROM mfa_history").await;
    let users_now = scalar(&db, "SELECT COUNT(*) FROM m365_user").await;
    let copies = users_now * syncs as i64;
    println!(
        "history rows after {syncs} syncs: {rows} against {copies} for {syncs} full copies (ratio {:.3})",
        rows as f64 / copies as f64
    );
    if let (Some(one), Some(now)) = (copy_bytes, table_bytes(&db, "mfa_history").await) {
        println!(
            "mfa_history size: {:.1} MB against {:.1} MB for {syncs} full copies (one copy {:.1} MB; ratio {:.3}); snapshots {:.1} MB for {} snapshots",
            mb(now),
            mb(one * syncs as i64),
            mb(one),
            now as f64 / (one * syncs as i64) as f64,
            mb(table_bytes(&db, "mfa_evidence_snapshot").await.unwrap_or(0)),
            scalar(&db, "SELECT COUNT(*) FROM mfa_evidence_snapshot").await
        );
    }
    let r = evidence::verify::verify(&db, None).await.unwrap();
    println!("evidence verify: {} chains, {} snapshots recomputed, holds: {}", r.chains, r.rows_recomputed, r.holds());
}

/// A synthetic user as the sync writes it.
fn user(i: usize) -> UserRow {
    let enabled = !i.is_multiple_of(3);
    UserRow {
        object_id: format!("{:08x}-0000-4000-8000-{:012x}", i, i),
        display_name: Some(format!("User {i}")),
        user_principal_name: format!("user{i}@bigtenant.onmicrosoft.com"),
        mail: Some(format!("user{i}@bigtenant.com")),
        aliases: vec![],
        account_enabled: !i.is_multiple_of(50),
        user_type: Some("Member".into()),
        is_admin: Some(i.is_multiple_of(100)),
        sku_ids: vec!["c42b9cae-ea4f-4ab7-9717-81576235ccac".into()],
        mfa_status: if enabled { MfaStatus::Enabled } else { MfaStatus::Disabled },
        mfa_methods: if enabled { vec!["microsoftAuthenticatorPush".into()] } else { vec![] },
        mfa_source: None,
        mfa_unavailable_reason: None,
        mfa_enforcement: MfaEnforcementState::Enforced,
        mfa_enforcement_sources: vec![entity::states::EnforcementSource::ConditionalAccess],
        mfa_policies: vec!["Require MFA for all users".into()],
        mfa_enforcement_reason: None,
        mfa_verdict: if enabled { MfaVerdict::Protected } else { MfaVerdict::NotRegistered },
        mfa_explanation: vec!["Conditional Access policy \"Require MFA for all users\" requires MFA.".into()],
        contact_id: None,
        contact_match: None,
    }
}

async fn export() {
    let n: usize = env_or("BENCH_EXPORT_USERS", 100_000);
    let (_emu, svc) =
        Service::start("evidence_export", WorldSpec { seed: 1, tenants: 1, users_per_tenant: 1 }, Duration::ZERO, &[])
            .await;
    let db = db::connect(&svc.database_url).await.unwrap();
    // The tenant and its users, through the sync's write path.
    let guid = "0b1e5c6a-0000-4000-8000-000000000001".to_owned().into();
    let stored = db::tenants::upsert_discovered(
        &db,
        svc.account,
        &[NewTenant { tenant_id: &guid, display_name: "Big Tenant", gdap_roles: &[] }],
        Utc::now(),
    )
    .await
    .unwrap();
    let tenant = stored.into_iter().next().unwrap();
    let rows: Vec<UserRow> = (0..n).map(user).collect();
    let now = micros(Utc::now());
    let started = std::time::Instant::now();
    let txn = db::write_txn(&db).await.unwrap();
    let ids = db::users::replace_users(&txn, svc.account, tenant.id, &rows, now).await.unwrap().ids;
    let recorded = evidence::record(
        &txn,
        &evidence::Recording {
            account_id: svc.account,
            tenant: &tenant,
            run_id: 0,
            users: &rows,
            user_ids: &ids,
            snapshot: true,
            now,
        },
    )
    .await
    .unwrap();
    txn.commit().await.unwrap();
    let snap = recorded.snapshot.unwrap();
    println!(
        "\nexport: one tenant of {n} users written with its history and snapshot in {:.2}s",
        started.elapsed().as_secs_f64()
    );
    for format in ["csv", "json", "csv"] {
        let rss_before = svc.rss_mb();
        let cpu_before = svc.cpu_seconds();
        let sampler = {
            let pid_rss = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
            let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
            let (r, s) = (pid_rss.clone(), stop.clone());
            let path = format!("/proc/{}/status", svc.pid());
            let h = std::thread::spawn(move || {
                while !s.load(std::sync::atomic::Ordering::Relaxed) {
                    let kb = std::fs::read_to_string(&path)
                        .unwrap_or_default()
                        .lines()
                        .find(|l| l.starts_with("VmRSS:"))
                        .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse::<u64>().ok()))
                        .unwrap_or(0);
                    r.fetch_max(kb, std::sync::atomic::Ordering::Relaxed);
                    std::thread::sleep(Duration::from_millis(2));
                }
            });
            (pid_rss, stop, h)
        };
        let t = std::time::Instant::now();
        let resp = svc
            .http
            .get(format!("{}/evidence/mfa?snapshot={}&format={format}", svc.url, snap.id))
            .bearer_auth(&svc.token)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let mut resp = resp;
        let mut bytes = Vec::new();
        while let Some(chunk) = resp.chunk().await.unwrap() {
            bytes.extend_from_slice(&chunk);
        }
        let secs = t.elapsed().as_secs_f64();
        let cpu = svc.cpu_seconds() - cpu_before;
        sampler.1.store(true, std::sync::atomic::Ordering::Relaxed);
        sampler.2.join().unwrap();
        let peak = sampler.0.load(std::sync::atomic::Ordering::Relaxed) as f64 / 1024.0;
        let check = if format == "csv" {
            let text = String::from_utf8(bytes.clone()).unwrap();
            let split = text.lines().take_while(|l| l.starts_with("# ")).map(|l| l.len() + 1).sum::<usize>();
            let rows_hex: String =
                sha2::Sha256::digest(&text.as_bytes()[split..]).iter().map(|b| format!("{b:02x}")).collect();
            format!("; rows digest from the file {}", if rows_hex == snap.rows_sha256 { "matches" } else { "DIFFERS" })
        } else {
            String::new()
        };
        println!(
            "  {format}: {:.1} MB in {secs:.3}s wall, {cpu:.2}s service CPU (database included on SQLite); service RSS {rss_before:.0} MB before, peak {peak:.0} MB while streaming{check}",
            bytes.len() as f64 / 1_048_576.0
        );
    }
    println!("  snapshot {}: {} users, digest {}", snap.id, snap.user_count, &snap.digest[..16]);
}
