//! Sync benchmark (issue: full sync of 500 tenants x 200 users against the emulator).
//!
//! The service runs as a child process (`m365-integration serve`, release build), so its peak
//! RSS is its own; the emulator runs in this process. Numbers are printed, not asserted.
//!
//! ```sh
//! cargo bench --bench sync                       # SQLite in a temp dir
//! DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres cargo bench --bench sync
//! ```
//! Knobs: BENCH_TENANTS (500), BENCH_USERS (200), BENCH_LATENCY_MS (20), BENCH_CONCURRENCY (8),
//! BENCH_THROTTLE (1 = also run with throttling on every tenant).

mod common;

use std::time::Duration;

use common::{Service, env_or, postgres_cpu_seconds};
use m365_emulator::world::{TenantKnobs, Throttle, WorldSpec};
use serde_json::{Value, json};

fn seconds(run: &Value) -> f64 {
    let s: chrono::DateTime<chrono::Utc> = run["startedAt"].as_str().unwrap().parse().unwrap();
    let f: chrono::DateTime<chrono::Utc> = run["finishedAt"].as_str().unwrap().parse().unwrap();
    (f - s).num_milliseconds() as f64 / 1000.0
}

fn requests(stats: &std::collections::HashMap<String, u64>) -> (u64, u64) {
    let http = stats.get("http requests").copied().unwrap_or(0);
    let token = stats.get("POST /{tenant}/oauth2/v2.0/token").copied().unwrap_or(0);
    (http, token)
}

#[tokio::main]
async fn main() {
    let tenants: usize = env_or("BENCH_TENANTS", 500);
    let users: usize = env_or("BENCH_USERS", 200);
    let latency_ms: u64 = env_or("BENCH_LATENCY_MS", 20);
    let concurrency: usize = env_or("BENCH_CONCURRENCY", 8);
    let throttle: u8 = env_or("BENCH_THROTTLE", 1);
    let spec = WorldSpec { seed: 42, tenants, users_per_tenant: users };
    let (emu, svc) = Service::start(
        "sync",
        spec,
        Duration::from_millis(latency_ms),
        &[("SYNC_CONCURRENCY", concurrency.to_string())],
    )
    .await;
    println!(
        "emulator: {tenants} tenants x {users} users, {latency_ms} ms latency; database {}",
        svc.database_url.split('?').next().unwrap_or("")
    );

    // 1. The first (full) sync, started by connecting.
    emu.state.reset_stats();
    let (pg0, cpu0) = (postgres_cpu_seconds(), svc.cpu_seconds());
    svc.connect().await;
    let run = svc.wait_run().await;
    let (full_pg, full_cpu) = (postgres_cpu_seconds() - pg0, svc.cpu_seconds() - cpu0);
    let full_secs = seconds(&run);
    let stats = emu.state.stats();
    report("full sync", &run, &stats, latency_ms, concurrency, tenants, users, svc.peak_rss_mb());
    println!("  CPU: service {full_cpu:.2}s, PostgreSQL {full_pg:.2}s (0 on SQLite: it runs inside the service)");

    // What the full sync leaves PostgreSQL to do: vacuuming and analysing 100,000 new rows.
    // Autovacuum would do it during the next sync and bill it there; do it now and bill it here.
    if svc.database_url.starts_with("postgres") {
        let pg0 = postgres_cpu_seconds();
        let _ = std::process::Command::new("psql").args([svc.database_url.as_str(), "-qc", "VACUUM ANALYZE"]).status();
        let maintenance = postgres_cpu_seconds() - pg0;
        println!(
            "  then VACUUM ANALYZE (what autovacuum would do during the next sync): PostgreSQL {maintenance:.2}s; the full sync's PostgreSQL CPU with it {:.2}s",
            full_pg + maintenance
        );
    }

    // 2. Nothing changed.
    emu.state.reset_stats();
    let (pg0, cpu0) = (postgres_cpu_seconds(), svc.cpu_seconds());
    let d = svc.gql("mutation { triggerM365Sync { id } }", json!({})).await;
    assert!(d["errors"].is_null(), "{d}");
    let run = svc.wait_run().await;
    let (pg, cpu) = (postgres_cpu_seconds() - pg0, svc.cpu_seconds() - cpu0);
    report(
        "second sync, nothing changed",
        &run,
        &emu.state.stats(),
        latency_ms,
        concurrency,
        tenants,
        users,
        svc.peak_rss_mb(),
    );
    println!(
        "  CPU: service {cpu:.2}s, PostgreSQL {pg:.2}s; against the full sync: wall {:.2}x, service CPU {:.2}x, PostgreSQL CPU {:.2}x",
        seconds(&run) / full_secs,
        cpu / full_cpu.max(1e-9),
        if full_pg > 0.0 { pg / full_pg } else { f64::NAN }
    );

    // 3. Throttling on every tenant: 20 requests (each `$batch` item counts) per 500 ms, then
    //    429 with `Retry-After: 0.5`.
    if throttle == 1 {
        let ids: Vec<String> = emu.state.lock().world.customers().iter().map(|t| t.id.clone()).collect();
        for id in &ids {
            emu.state.set_tenant_knobs(
                id,
                TenantKnobs {
                    throttle: Some(Throttle { requests: 20, window_ms: 500, retry_after_secs: 0.5 }),
                    ..Default::default()
                },
            );
        }
        emu.state.reset_stats();
        tokio::time::sleep(Duration::from_secs(31)).await; // the manual cooldown
        let d = svc.gql("mutation { triggerM365Sync { id } }", json!({})).await;
        assert!(d["errors"].is_null(), "{d}");
        let run = svc.wait_run().await;
        let stats = emu.state.stats();
        report("throttled sync", &run, &stats, latency_ms, concurrency, tenants, users, svc.peak_rss_mb());
        println!(
            "  429 responses: {}; users stored: {} (expected {})",
            stats.get("429 responses").copied().unwrap_or(0),
            run["usersSynced"],
            tenants * users
        );
    }
}

#[allow(clippy::too_many_arguments)]
fn report(
    name: &str,
    run: &Value,
    stats: &std::collections::HashMap<String, u64>,
    latency_ms: u64,
    concurrency: usize,
    tenants: usize,
    users: usize,
    rss: f64,
) {
    let secs = seconds(run);
    let (http, token) = requests(stats);
    let total = http + token;
    // The partner token and the GDAP listing are serial; everything else spreads over `concurrency`.
    let serial = 1 + (tenants as u64).div_ceil(300);
    let floor = (serial as f64 + (total - serial) as f64 / concurrency as f64) * latency_ms as f64 / 1000.0;
    let no_p1 = tenants / 10;
    let registration = 1
        + (tenants as u64).div_ceil(300)
        + (tenants - no_p1) as u64 * (1 + 1 + (users as u64).div_ceil(999) * 2 + 1)
        + no_p1 as u64 * (1 + 1 + (users as u64).div_ceil(999) + 1 + (users as u64).div_ceil(20));
    // Enforcement: security defaults everywhere, Conditional Access where there is P1, the
    // memberships MFA policies name, and per-user MFA in batches of 20 for the users no policy
    // enforces (the emulator counts those items; the end-to-end test shows they are exactly the
    // users that need it).
    let stat = |k: &str| stats.get(k).copied().unwrap_or(0);
    let memberships = stat("GET /v1.0/groups/{id}/transitiveMembers")
        + stats.iter().filter(|(k, _)| k.contains("directoryRoles(")).map(|(_, n)| n).sum::<u64>();
    let per_user = stat("GET /beta/users/{id}/authentication/requirements");
    let enforcement = tenants as u64 + (tenants - no_p1) as u64 + memberships + per_user.div_ceil(20);
    let minimum = registration + enforcement;
    println!(
        "\n{name}: {} ({} tenants, {} failed, {} users)",
        run["status"], run["tenantsDone"], run["tenantsFailed"], run["usersSynced"]
    );
    println!(
        "  wall time {secs:.2}s; floor {floor:.2}s (requests x latency / concurrency {concurrency}); ratio {:.2}",
        secs / floor
    );
    println!("  requests: {total} (Graph {http}, token {token}); minimum needed {minimum}");
    println!(
        "  of which MFA enforcement: at least {enforcement} (security defaults, Conditional Access, {memberships} memberships, {} per-user batches for {per_user} users, {} beta $batch calls made)",
        per_user.div_ceil(20),
        stat("POST /beta/$batch")
    );
    println!("  service peak RSS: {rss:.0} MB");
}
