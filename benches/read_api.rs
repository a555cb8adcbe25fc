//! Read-API benchmark: 100,000 synced users across 500 tenants, then `m365Users(first: 100)` with
//! every nested field at 32 concurrent clients (requests/s, p50/p99), `mfaCoverage` for the whole
//! account, and `m365Tenants(first: 100)` with suggestions. The service is a child process
//! (release build) so its peak RSS is its own.
//!
//! ```sh
//! DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres cargo bench --bench read_api
//! ```
//! Knobs: BENCH_TENANTS (500), BENCH_USERS (200), BENCH_CLIENTS (32), BENCH_SECONDS (15),
//! BENCH_ROUNDS (3: rounds of the page without `totalCount`, each followed by the floor).
//!
//! `BENCH_BIN_B=/path/to/another/build` also starts that build as a second replica on the same
//! database, runs the page on both in every round (in turn: A then B, then B then A), and prints
//! B's CPU per request over A's: two builds compared moments apart, which a noisy machine allows
//! where runs minutes apart do not.

mod common;

use std::{
    process::Command,
    sync::Arc,
    time::{Duration, Instant},
};

use common::{Service, env_or, postgres_cpu_seconds};
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
    let rounds: usize = env_or("BENCH_ROUNDS", 3);
    parse_or_reuse();
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
    // m365Users(first: 100) with every nested field, 32 clients, random pages: once with
    // `totalCount`, then without it in rounds alternating with the floor (the machine is noisy:
    // each round's ratio compares two measurements taken moments apart).
    let total = (tenants * users) as i64;
    let run = Run { http: http.clone(), token: token.clone(), clients, seconds, total };
    let other = match std::env::var("BENCH_BIN_B") {
        Ok(bin) => Some(svc.replica_from(&bin).await),
        Err(_) => None,
    };
    println!("\nservice pid {} (attach a profiler now: perf record -g -p PID)", svc.pid());
    run.users(&svc, "with totalCount", USERS).await;
    let without = USERS.replace("totalCount ", "");
    let (mut ratios, mut cpus, mut b_over_a) = (vec![], vec![], vec![]);
    for round in 1..=rounds {
        println!("\n[round {round} of {rounds}]");
        // With a second build: B's rate and the ratio of B's CPU per request to A's.
        let mut rate_b = None;
        let (rate, cpu) = match &other {
            None => run.users(&svc, "without totalCount", &without).await,
            Some(b) => {
                let ((rate, cpu), (rb, cpu_b)) = if round % 2 == 1 {
                    let a = run.users(&svc, "without totalCount (A)", &without).await;
                    (a, run.users(b, "without totalCount (B)", &without).await)
                } else {
                    let b = run.users(b, "without totalCount (B)", &without).await;
                    (run.users(&svc, "without totalCount (A)", &without).await, b)
                };
                println!("  B / A, service CPU per request: {:.3}", cpu_b / cpu);
                b_over_a.push(cpu_b / cpu);
                rate_b = Some(rb);
                (rate, cpu)
            }
        };
        if database_url.starts_with("postgres")
            && let Some(floor) = floor(&database_url, svc.account, total, clients, seconds)
        {
            ratios.push(rate / floor);
            match rate_b {
                None => println!("  ours / floor: {:.2}", rate / floor),
                Some(rb) => println!("  ours / floor: A {:.2}, B {:.2}", rate / floor, rb / floor),
            }
        }
        cpus.push(cpu);
    }
    ratios.sort_by(f64::total_cmp);
    cpus.sort_by(f64::total_cmp);
    println!(
        "\nwithout totalCount, median of {rounds} rounds: service CPU {:.2} ms per request; ours / floor {}",
        pct(&cpus, 0.5),
        if ratios.is_empty() { "-".to_owned() } else { format!("{:.2} (rounds: {ratios:.2?})", pct(&ratios, 0.5)) }
    );
    if !b_over_a.is_empty() {
        b_over_a.sort_by(f64::total_cmp);
        println!("B / A, service CPU per request: median {:.3} (rounds: {b_over_a:.3?})", pct(&b_over_a, 0.5));
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

/// What a request's document costs before execution: checked and parsed (a document not seen
/// before), or taken from the cache of parsed documents (a clone), in one run.
fn parse_or_reuse() {
    use m365_integration::{config::Config, graphql};
    let limits = graphql::document_limits(&Config::defaults());
    let rounds = 2000;
    let time = |f: &dyn Fn()| {
        let t0 = Instant::now();
        for _ in 0..rounds {
            f();
        }
        t0.elapsed().as_secs_f64() * 1e6 / f64::from(rounds)
    };
    let parse = time(&|| {
        limits.scan(USERS).unwrap();
        let doc = async_graphql::parser::parse_query(USERS).unwrap();
        limits.check(&doc).unwrap();
        std::hint::black_box(doc);
    });
    let cache = graphql::parsed::Cache::default();
    cache.put(limits, USERS, &async_graphql::parser::parse_query(USERS).unwrap());
    let reuse = time(&|| {
        std::hint::black_box(cache.get(limits, USERS).unwrap());
    });
    println!(
        "the users document ({} bytes): checked and parsed {parse:.1} us, from the cache {reuse:.1} us ({:.2}x)",
        USERS.len(),
        reuse / parse
    );
}

/// The same page as the users query (every field it asks for, with licenses, contact, tenant,
/// mapping and client) built as JSON by one SQL statement: the floor our service is measured
/// against. `:after` is a random user id, like the benchmark's random cursors.
const FLOOR_SQL: &str = r#"\set after random(0, TOTAL - 100)
SELECT json_build_object('data', json_build_object('m365Users', json_build_object(
  'pageInfo', json_build_object('endCursor', max(u.id)::text),
  'edges', json_agg(json_build_object('cursor', u.id::text, 'node', json_build_object(
    'id', u.id::text, 'objectId', u.object_id, 'displayName', u.display_name,
    'userPrincipalName', u.user_principal_name, 'mail', u.mail, 'aliases', u.aliases,
    'accountEnabled', u.account_enabled, 'userType', u.user_type, 'isAdmin', u.is_admin,
    'isLicensed', u.is_licensed,
    'mfa', json_build_object('status', upper(u.mfa_status), 'methods', u.mfa_methods,
      'source', upper(u.mfa_source), 'checkedAt', u.mfa_checked_at,
      'unavailableReason', u.mfa_unavailable_reason),
    'licenses', (SELECT coalesce(json_agg(json_build_object('skuId', l.sku_id,
        'skuPartNumber', l.sku_part_number, 'friendlyName', coalesce(n.friendly_name, l.sku_part_number))), '[]')
      FROM m365_user_license ul JOIN m365_license l ON l.tenant_id = ul.tenant_id AND l.sku_id = ul.sku_id
      LEFT JOIN license_name n ON n.sku_id = l.sku_id WHERE ul.user_id = u.id),
    'contact', (SELECT json_build_object('name', c.name, 'emails', c.emails) FROM contact c WHERE c.id = u.contact_id),
    'contactMatch', json_build_object(
      'status', CASE WHEN u.contact_match LIKE 'linked:%' THEN 'LINKED' WHEN u.contact_match = 'ambiguous' THEN 'AMBIGUOUS' ELSE 'NONE' END,
      'matchedAddress', CASE WHEN u.contact_match LIKE 'linked:%' THEN substr(u.contact_match, 8) END),
    'tenant', json_build_object('id', t.id::text, 'displayName', t.display_name, 'defaultDomain', t.default_domain,
      'mapping', CASE WHEN cl.id IS NULL THEN NULL ELSE json_build_object('client', json_build_object('name', cl.name)) END),
    'client', CASE WHEN cl.id IS NULL THEN NULL ELSE json_build_object('name', cl.name) END
  )) ORDER BY u.id))))
FROM (SELECT * FROM m365_user WHERE account_id = ACCOUNT AND id > :after ORDER BY id LIMIT 100) u
JOIN m365_tenant t ON t.id = u.tenant_id
LEFT JOIN tenant_mapping tm ON tm.tenant_id = t.id
LEFT JOIN client cl ON cl.id = tm.client_id;
"#;

/// Runs [`FLOOR_SQL`] with pgbench at the benchmark's concurrency, prints its rate and returns
/// it (requests per second).
fn floor(database_url: &str, account: i64, total: i64, clients: usize, seconds: u64) -> Option<f64> {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("floor.sql");
    let sql = FLOOR_SQL.replace("TOTAL", &total.to_string()).replace("ACCOUNT", &account.to_string());
    std::fs::write(&script, sql).unwrap();
    let pg0 = postgres_cpu_seconds();
    let out = Command::new("pgbench")
        .args(["-n", "-c", &clients.to_string(), "-j", "2", "-T", &seconds.to_string(), "-f"])
        .arg(&script)
        .arg(database_url)
        .output();
    let pg = postgres_cpu_seconds() - pg0;
    let Ok(out) = out else {
        println!("floor: pgbench not found; skipped");
        return None;
    };
    let text = String::from_utf8_lossy(&out.stdout);
    let tps = text.lines().find(|l| l.starts_with("tps")).and_then(|l| l.split_whitespace().nth(2)).unwrap_or("?");
    let done = text
        .lines()
        .find(|l| l.starts_with("number of transactions actually processed"))
        .and_then(|l| l.split(": ").nth(1))
        .and_then(|v| v.split('/').next())
        .and_then(|v| v.trim().parse::<f64>().ok())
        .unwrap_or(0.0);
    println!(
        "floor: the same page as one SQL statement (json_build_object), pgbench {clients} clients for {seconds}s: {tps} req/s; PostgreSQL CPU {:.2} ms per request{}",
        if done > 0.0 { pg * 1000.0 / done } else { f64::NAN },
        if out.status.success() {
            String::new()
        } else {
            format!(" (pgbench failed: {})", String::from_utf8_lossy(&out.stderr).trim())
        }
    );
    tps.parse().ok().filter(|_| out.status.success())
}

/// The users-page load: `clients` clients asking for random pages for `seconds`.
struct Run {
    http: reqwest::Client,
    token: String,
    clients: usize,
    seconds: u64,
    total: i64,
}

impl Run {
    /// Runs the load with `query`, prints its rate, latency and CPU per request, and returns the
    /// rate and the service's CPU per request (ms).
    async fn users(&self, svc: &Service, label: &str, query: &str) -> (f64, f64) {
        let (clients, seconds, total) = (self.clients, self.seconds, self.total);
        let (cpu0, pg0) = (svc.cpu_seconds(), postgres_cpu_seconds());
        let deadline = Instant::now() + Duration::from_secs(seconds);
        let latencies = Arc::new(std::sync::Mutex::new(Vec::<f64>::new()));
        let mut tasks = vec![];
        for c in 0..clients {
            let (http, url, token, latencies, query) =
                (self.http.clone(), svc.url.clone(), self.token.clone(), latencies.clone(), query.to_owned());
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
        let rate = l.len() as f64 / seconds as f64;
        println!(
            "m365Users(first: 100), every nested field, {label}, {clients} clients for {seconds}s: {} requests, {rate:.1} req/s, p50 {:.1} ms, p99 {:.1} ms",
            l.len(),
            pct(&l, 0.5),
            pct(&l, 0.99)
        );
        let n = l.len().max(1) as f64;
        let cpu_ms = cpu * 1000.0 / n;
        println!(
            "  CPU per request: service {cpu_ms:.2} ms, PostgreSQL {:.2} ms (SQLite runs inside the service)",
            pg * 1000.0 / n
        );
        (rate, cpu_ms)
    }
}
