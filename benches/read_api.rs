//! Read-API benchmark: 100,000 synced users across 500 tenants, then `m365Users(first: 100)` with
//! every nested field at 32 concurrent clients (requests/s, p50/p99), `mfaCoverage` for the whole
//! account, and `m365Tenants(first: 100)` with suggestions. The service is a child process
//! (release build) so its peak RSS is its own.
//!
//! ```sh
//! DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres cargo bench --bench read_api
//! ```
//! Knobs: BENCH_TENANTS (500), BENCH_USERS (200), BENCH_CLIENTS (32), BENCH_SECONDS (15).

mod common;

use std::{
    process::Command,
    sync::Arc,
    time::{Duration, Instant},
};

use common::{Service, env_or};
use m365_emulator::world::WorldSpec;
use m365_integration::graphql::types::encode_cursor;
use serde_json::{Value, json};
const USERS: &str = "query($after: String) { m365Users(first: 100, after: $after) { totalCount pageInfo { endCursor } edges { cursor node { id objectId displayName userPrincipalName mail aliases accountEnabled userType isAdmin isLicensed mfa { status methods source checkedAt unavailableReason } licenses { skuId skuPartNumber friendlyName } contact { name emails } contactMatch { status matchedAddress } tenant { id displayName defaultDomain mapping { client { name } } } client { name } } } } }";

async fn gql(http: &reqwest::Client, url: &str, token: &str, query: &str, vars: Value) -> Value {
    http.post(format!("{url}/graphql"))
        .bearer_auth(token)
        .json(&json!({"query": query, "variables": vars}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

#[tokio::main]
async fn main() {
    let tenants: usize = env_or("BENCH_TENANTS", 500);
    let users: usize = env_or("BENCH_USERS", 200);
    let clients: usize = env_or("BENCH_CLIENTS", 32);
    let seconds: u64 = env_or("BENCH_SECONDS", 15);
    let spec = WorldSpec { seed: 42, tenants, users_per_tenant: users };
    let (emu, svc) = Service::start("read", spec, Duration::ZERO, &[("SYNC_CONCURRENCY", "16".into())]).await;
    let (http, url, token, database_url) =
        (svc.http.clone(), svc.url.clone(), svc.token.clone(), svc.database_url.clone());
    svc.connect().await;
    println!("synced {} users", svc.wait_run().await["usersSynced"]);
    // Clients for half the tenants (by domain) with contacts, then map by suggestion.
    let world = emu.state.lock().world.clone();
    let mut cl = vec![];
    let mut contacts = vec![];
    for (i, t) in world.customers().iter().enumerate().filter(|(i, _)| i % 2 == 0) {
        cl.push(json!({"source": "psa", "externalId": i.to_string(), "name": t.display_name, "domains": [t.default_domain()]}));
        for (j, u) in t.users.iter().filter(|u| u.user_type == "Member").take(20).enumerate() {
            contacts.push(json!({"source": "psa", "externalId": format!("{i}-{j}"), "clientExternalId": i.to_string(), "name": u.display_name, "emails": [u.upn]}));
        }
    }
    gql(&http, &url, &token, "mutation($c: [ClientInput!]!) { upsertClients(clients: $c) { id } }", json!({"c": cl}))
        .await;
    for chunk in contacts.chunks(1000) {
        gql(
            &http,
            &url,
            &token,
            "mutation($c: [ContactInput!]!) { upsertContacts(contacts: $c) { id } }",
            json!({"c": chunk}),
        )
        .await;
    }
    let ids: Vec<Value> = {
        let d = gql(&http, &url, &token, "{ m365Tenants(first: 500) { edges { node { id } } } }", json!({})).await;
        d["data"]["m365Tenants"]["edges"].as_array().unwrap().iter().map(|e| e["node"]["id"].clone()).collect()
    };
    let d = gql(&http, &url, &token, "mutation($ids: [ID!]!) { acceptTenantSuggestions(tenantIds: $ids, minConfidence: 80) { mappings { method } } }", json!({"ids": ids})).await;
    println!(
        "mapped {} tenants by suggestion",
        d["data"]["acceptTenantSuggestions"]["mappings"].as_array().map_or(0, Vec::len)
    );

    if database_url.starts_with("postgres") {
        // Steady state: autovacuum would have run after the bulk write; do it now.
        let _ = Command::new("psql").args([database_url.as_str(), "-qc", "VACUUM ANALYZE"]).status();
        println!("VACUUM ANALYZE after the bulk sync (what autovacuum does in steady state)");
    }
    // m365Users(first: 100) with every nested field, 32 clients, random pages.
    let total = (tenants * users) as i64;
    for (label, query) in
        [("with totalCount", USERS.to_owned()), ("without totalCount", USERS.replace("totalCount ", ""))]
    {
        println!("\n[{label}] service pid {} (attach a profiler now: perf record -g -p PID)", svc.pid());
        let (cpu0, pg0) = (svc.cpu_seconds(), postgres_cpu_seconds());
        let deadline = Instant::now() + Duration::from_secs(seconds);
        let latencies = Arc::new(std::sync::Mutex::new(Vec::<f64>::new()));
        let mut tasks = vec![];
        for c in 0..clients {
            let (http, url, token, latencies, query) =
                (http.clone(), url.clone(), token.clone(), latencies.clone(), query.clone());
            tasks.push(tokio::spawn(async move {
                let mut n = c as i64 * 7919;
                while Instant::now() < deadline {
                    n = (n * 48271 + 11) % total;
                    let after = encode_cursor("user", n);
                    let t0 = Instant::now();
                    let r = gql(&http, &url, &token, &query, json!({"after": after})).await;
                    assert!(r["errors"].is_null(), "{r}");
                    latencies.lock().unwrap().push(t0.elapsed().as_secs_f64() * 1000.0);
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let (cpu, pg) = (svc.cpu_seconds() - cpu0, postgres_cpu_seconds() - pg0);
        let mut l = latencies.lock().unwrap().clone();
        l.sort_by(f64::total_cmp);
        println!(
            "m365Users(first: 100), every nested field, {label}, {clients} clients for {seconds}s: {} requests, {:.1} req/s, p50 {:.1} ms, p99 {:.1} ms",
            l.len(),
            l.len() as f64 / seconds as f64,
            pct(&l, 0.5),
            pct(&l, 0.99)
        );
        let n = l.len().max(1) as f64;
        println!(
            "  CPU per request: service {:.2} ms, PostgreSQL {:.2} ms (SQLite runs inside the service)",
            cpu * 1000.0 / n,
            pg * 1000.0 / n
        );
    }
    for (name, q) in [
        (
            "mfaCoverage (whole account)",
            "{ mfaCoverage { users enabled disabled unavailable coveragePercent adminsWithoutMfa licensedMembersWithoutMfa dataAsOf tenants { users enabled coveragePercent } } }",
        ),
        (
            "m365Tenants(first: 100) with suggestions",
            "{ m365Tenants(first: 100) { edges { node { displayName userCount mapping { client { name } } suggestions { confidence reasons client { name } } } } } }",
        ),
    ] {
        let mut l = vec![];
        for _ in 0..30 {
            let t0 = Instant::now();
            let r = gql(&http, &url, &token, q, json!({})).await;
            assert!(r["errors"].is_null(), "{r}");
            l.push(t0.elapsed().as_secs_f64() * 1000.0);
        }
        l.sort_by(f64::total_cmp);
        println!("{name}: p50 {:.1} ms, p99 {:.1} ms (30 sequential requests)", pct(&l, 0.5), pct(&l, 0.99));
    }
    println!("service peak RSS: {:.0} MB", svc.peak_rss_mb());
}

/// CPU seconds (user + system) used so far by every PostgreSQL process on this machine (the
/// server and its backends); 0 where there is none.
fn postgres_cpu_seconds() -> f64 {
    let Ok(dir) = std::fs::read_dir("/proc") else { return 0.0 };
    dir.filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().bytes().all(|b| b.is_ascii_digit()))
        .filter_map(|e| std::fs::read_to_string(e.path().join("stat")).ok())
        .filter_map(|stat| {
            let (name, rest) = stat.split_once(" (")?.1.rsplit_once(')')?;
            (name == "postgres").then(|| {
                let f: Vec<&str> = rest.split_whitespace().collect();
                let t = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
                (t(11) + t(12)) / 100.0
            })
        })
        .sum()
}
