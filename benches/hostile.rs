//! Hostile-input benchmark (issue: one request never takes the server down or starves other
//! accounts). The service is the release binary as a child process, so RSS is its own.
//!
//! 1. **CPU fairness**: account A has `BENCH_CLIENTS` (10,000) clients and synced users; four
//!    loops send A's expensive `m365Users(first: 100) { … tenant { suggestions(first: 20) … } }`
//!    while account B sends `{ m365Integration { enabled } }` one after another. Printed: B's
//!    p50/p99/max latency, and B's latency with nothing else running (the floor).
//! 2. **Amplification**: six parallel 800 KB bodies of `enabled(a:1 a:1 …)`. Printed: response
//!    sizes and the service's peak RSS before and after.
//!
//! ```sh
//! cargo bench --bench hostile
//! ```
//! Knobs: BENCH_CLIENTS (10000), BENCH_TENANTS (40), BENCH_SECONDS (20).

mod common;

use std::time::{Duration, Instant};

use common::{Service, env_or};
use m365_emulator::world::WorldSpec;
use m365_integration::{auth::AuthKeys, config::Secret};
use serde_json::{Value, json};

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

async fn victim_latencies(svc: &Service, token: &str, until: Instant) -> Vec<Duration> {
    let mut out = vec![];
    while Instant::now() < until {
        let t0 = Instant::now();
        let r = svc
            .http
            .post(format!("{}/graphql", svc.url))
            .bearer_auth(token)
            .json(&json!({"query": "{ m365Integration { enabled } }"}))
            .send()
            .await
            .unwrap();
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["data"]["m365Integration"]["enabled"], true, "{body}");
        out.push(t0.elapsed());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    out.sort();
    out
}

fn report(label: &str, l: &[Duration]) {
    println!(
        "{label}: n={} p50={:.1} ms p99={:.1} ms max={:.1} ms",
        l.len(),
        percentile(l, 0.5).as_secs_f64() * 1000.0,
        percentile(l, 0.99).as_secs_f64() * 1000.0,
        l.last().unwrap().as_secs_f64() * 1000.0
    );
}

#[tokio::main]
async fn main() {
    let clients: usize = env_or("BENCH_CLIENTS", 10_000);
    let tenants: usize = env_or("BENCH_TENANTS", 40);
    let seconds: u64 = env_or("BENCH_SECONDS", 20);
    let (_emu, svc) =
        Service::start("hostile", WorldSpec { seed: 3, tenants, users_per_tenant: 5 }, Duration::ZERO, &[]).await;
    svc.connect().await;
    println!("sync: {}", svc.wait_run().await["status"]);
    for batch in 0..clients.div_ceil(1000) {
        let items: Vec<Value> = (0..1000.min(clients - batch * 1000))
            .map(|i| json!({"source": "psa", "externalId": format!("{batch}-{i}"), "name": format!("Client {batch} {i} Holdings"), "domains": [format!("c{batch}x{i}.example")]}))
            .collect();
        let r =
            svc.gql("mutation($c: [ClientInput!]!) { upsertClients(clients: $c) { id } }", json!({"c": items})).await;
        assert!(r.get("errors").is_none(), "{r}");
    }
    // Account B, a quiet reader of another MSP.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_m365-integration"))
        .args(["account", "create", "--name", "Quiet MSP", "--enable-m365"])
        .env("DATABASE_URL", &svc.database_url)
        .output()
        .unwrap();
    let b: i64 = String::from_utf8_lossy(&out.stdout).trim().parse().expect("account id");
    let tb = AuthKeys::new(&Secret::new(common::JWT)).mint(b, "quiet", &[], Duration::from_secs(3600));

    let floor = victim_latencies(&svc, &tb, Instant::now() + Duration::from_secs(3)).await;
    report("B alone (floor)", &floor);
    let expensive = "{ m365Users(first: 100) { edges { node { tenant { suggestions(first: 20) { confidence } } } } } }";
    let until = Instant::now() + Duration::from_secs(seconds);
    let heavy: Vec<_> = (0..4)
        .map(|_| {
            let (http, url, token) = (svc.http.clone(), format!("{}/graphql", svc.url), svc.token.clone());
            tokio::spawn(async move {
                let mut runs = vec![];
                while Instant::now() < until {
                    let t0 = Instant::now();
                    let r = http.post(&url).bearer_auth(&token).json(&json!({"query": expensive})).send().await;
                    let code = match r {
                        Ok(r) => r
                            .json::<Value>()
                            .await
                            .ok()
                            .and_then(|b| b["errors"][0]["extensions"]["code"].as_str().map(str::to_owned)),
                        Err(e) => Some(format!("transport: {e}")),
                    };
                    runs.push((t0.elapsed(), code));
                }
                runs
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let loaded = victim_latencies(&svc, &tb, until).await;
    report("B while 4 expensive requests run", &loaded);
    for h in heavy {
        let runs = h.await.unwrap();
        let secs: Vec<String> = runs
            .iter()
            .map(|(d, c)| format!("{:.1}s{}", d.as_secs_f64(), c.as_ref().map(|c| format!(" {c}")).unwrap_or_default()))
            .collect();
        println!("expensive loop: {}", secs.join(", "));
    }
    println!(
        "B p99 ratio loaded/floor: {:.1}x",
        percentile(&loaded, 0.99).as_secs_f64() / percentile(&floor, 0.99).as_secs_f64()
    );

    // Amplification.
    let before = svc.peak_rss_mb();
    let body = json!({"query": format!("{{ m365Integration {{ enabled({}) }} }}", "a:1 ".repeat(200_000))}).to_string();
    println!("amplification body: {} KB", body.len() / 1024);
    let t0 = Instant::now();
    let attempts: Vec<_> = (0..6)
        .map(|_| {
            let (http, url, body) = (svc.http.clone(), format!("{}/graphql", svc.url), body.clone());
            tokio::spawn(async move {
                let r = http.post(url).header("content-type", "application/json").body(body).send().await.unwrap();
                r.bytes().await.unwrap().len()
            })
        })
        .collect();
    let mut sizes = vec![];
    for a in attempts {
        sizes.push(a.await.unwrap());
    }
    println!(
        "amplification: 6 answers of {:?} bytes in {:.2} s; peak RSS {before:.0} MB before, {:.0} MB after",
        sizes,
        t0.elapsed().as_secs_f64(),
        svc.peak_rss_mb()
    );
}
