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

use std::{
    process::Command,
    time::{Duration, Instant},
};

use base64::Engine;
use m365_integration::{
    auth::{AuthKeys, MANAGE_TENANT_SETTINGS},
    config::Secret,
    emulator::{
        AuthorizeMode, Emulator, EmulatorConfig,
        world::{TenantKnobs, Throttle, WorldSpec},
    },
};
use serde_json::{Value, json};

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

const BIN: &str = env!("CARGO_BIN_EXE_m365-integration");
const JWT: &str = "bench-jwt-secret";

struct Service {
    child: std::process::Child,
    url: String,
    http: reqwest::Client,
    token: String,
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

impl Service {
    async fn gql(&self, query: &str) -> Value {
        let r = self
            .http
            .post(format!("{}/graphql", self.url))
            .bearer_auth(&self.token)
            .json(&json!({"query": query}))
            .send()
            .await
            .unwrap();
        r.json().await.unwrap()
    }

    fn peak_rss_mb(&self) -> f64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap_or_default();
        status
            .lines()
            .find(|l| l.starts_with("VmHWM:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<f64>().ok())
            .unwrap_or(0.0)
            / 1024.0
    }

    async fn wait_run(&self) -> Value {
        loop {
            let d = self.gql("{ m365Integration { sync { state lastRun { status startedAt finishedAt tenantsDone tenantsFailed usersSynced error } } } }").await;
            let sync = &d["data"]["m365Integration"]["sync"];
            if sync["state"] == "IDLE" && !sync["lastRun"].is_null() {
                return sync["lastRun"].clone();
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

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
    let dir = tempfile::tempdir().unwrap();
    let database_url = std::env::var("DATABASE_URL")
        .ok()
        .filter(|u| u.starts_with("postgres"))
        .map(|u| {
            let mut url = url::Url::parse(&u).unwrap();
            let name = format!("m365_bench_{}", std::process::id());
            let admin = url.clone();
            let _ = Command::new("psql").args([admin.as_str(), "-qc", &format!("CREATE DATABASE {name}")]).status();
            url.set_path(&format!("/{name}"));
            url.to_string()
        })
        .unwrap_or_else(|| format!("sqlite://{}?mode=rwc", dir.path().join("bench.db").display()));

    let started = Instant::now();
    let emu_config = EmulatorConfig {
        spec: WorldSpec { seed: 42, tenants, users_per_tenant: users },
        latency: Duration::from_millis(latency_ms),
        ..EmulatorConfig::default()
    };
    let emu = Emulator::spawn("127.0.0.1:0".parse().unwrap(), emu_config.clone()).await.unwrap();
    emu.state.set_authorize(AuthorizeMode::AutoAccept { user: "admin".into() });
    println!(
        "emulator: {tenants} tenants x {users} users, {latency_ms} ms latency (generated in {:.1}s)",
        started.elapsed().as_secs_f64()
    );

    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("http://127.0.0.1:{port}");
    emu.state.add_redirect_uri(&format!("{url}/oauth/m365/callback"));
    let key = base64::engine::general_purpose::STANDARD.encode([5u8; 32]);
    let envs = [
        ("DATABASE_URL", database_url.clone()),
        ("BIND_ADDR", format!("127.0.0.1:{port}")),
        ("AUTH_JWT_SECRET", JWT.into()),
        ("TOKEN_ENCRYPTION_KEY", key),
        ("M365_CLIENT_ID", emu_config.client_id.clone()),
        ("M365_CLIENT_SECRET", emu_config.client_secret.clone()),
        ("M365_AUTHORITY_URL", emu.base_url()),
        ("M365_GRAPH_URL", emu.base_url()),
        ("SYNC_INTERVAL", "0".into()),
        ("SYNC_CONCURRENCY", concurrency.to_string()),
        ("RUST_LOG", "warn".into()),
    ];
    let out = Command::new(BIN)
        .args(["account", "create", "--name", "Bench MSP", "--enable-m365"])
        .envs(envs.clone())
        .output()
        .unwrap();
    let account: i64 = String::from_utf8_lossy(&out.stdout).trim().parse().expect("account id");
    let child = Command::new(BIN).arg("serve").envs(envs).spawn().unwrap();
    let token = AuthKeys::new(&Secret::new(JWT)).mint(
        account,
        "bench",
        &[MANAGE_TENANT_SETTINGS.into()],
        Duration::from_secs(3600),
    );
    let svc = Service { child, url: url.clone(), http: reqwest::Client::new(), token };
    while svc.http.get(format!("{url}/readyz")).send().await.is_err() {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // 1. The first (full) sync, started by connecting.
    emu.state.reset_stats();
    let d = svc.gql("mutation { connectM365 { authorizationUrl } }").await;
    let auth_url = d["data"]["connectM365"]["authorizationUrl"].as_str().unwrap().to_owned();
    let browser = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let cb = browser.get(&auth_url).send().await.unwrap().headers()["location"].to_str().unwrap().to_owned();
    assert_eq!(browser.get(&cb).send().await.unwrap().status(), 200);
    let run = svc.wait_run().await;
    let stats = emu.state.stats();
    report("full sync", &run, &stats, latency_ms, concurrency, tenants, users, svc.peak_rss_mb());

    // 2. Nothing changed.
    emu.state.reset_stats();
    let d = svc.gql("mutation { triggerM365Sync { id } }").await;
    assert!(d["errors"].is_null(), "{d}");
    let run = svc.wait_run().await;
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

    // 3. Throttling on every tenant: 20 requests (each `$batch` item counts) per 500 ms, then
    //    429 with `Retry-After: 0.5`.
    if throttle == 1 {
        let ids: Vec<String> = emu.state.lock().world.customers().iter().map(|t| t.id.clone()).collect();
        for id in &ids {
            emu.state.set_tenant_knobs(
                id,
                TenantKnobs {
                    throttle: Some(Throttle { requests: 3, window_ms: 1000, retry_after_secs: 0.5 }),
                    ..Default::default()
                },
            );
        }
        emu.state.reset_stats();
        tokio::time::sleep(Duration::from_secs(31)).await; // the manual cooldown
        let d = svc.gql("mutation { triggerM365Sync { id } }").await;
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
    let minimum = 1
        + (tenants as u64).div_ceil(300)
        + (tenants - no_p1) as u64 * (1 + 1 + (users as u64).div_ceil(999) * 2 + 1)
        + no_p1 as u64 * (1 + 1 + (users as u64).div_ceil(999) + 1 + (users as u64).div_ceil(20));
    println!(
        "\n{name}: {} ({} tenants, {} failed, {} users)",
        run["status"], run["tenantsDone"], run["tenantsFailed"], run["usersSynced"]
    );
    println!(
        "  wall time {secs:.2}s; floor {floor:.2}s (requests x latency / concurrency {concurrency}); ratio {:.2}",
        secs / floor
    );
    println!("  requests: {total} (Graph {http}, token {token}); minimum needed {minimum}");
    println!("  service peak RSS: {rss:.0} MB");
}
