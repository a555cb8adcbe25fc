//! What both benchmarks share: the emulator in this process, the service as a child process
//! (release build, so its peak RSS is its own), a fresh database, and the connect flow.

use std::{process::Command, time::Duration};

use base64::Engine;
use m365_emulator::{AuthorizeMode, Emulator, EmulatorConfig, world::WorldSpec};
use m365_integration::{
    auth::{AuthKeys, MANAGE_TENANT_SETTINGS},
    config::Secret,
};
use serde_json::{Value, json};

const BUILT: &str = env!("CARGO_BIN_EXE_m365-integration");

/// The service binary: this build's, or `BENCH_BIN` (another build, to compare two on one
/// machine in one sitting; it must accept this build's environment and GraphQL).
fn bin() -> String {
    std::env::var("BENCH_BIN").unwrap_or_else(|_| BUILT.to_owned())
}

/// The API-token secret the service runs with.
pub const JWT: &str = "bench-jwt-secret";

/// An environment variable parsed, or a default.
pub fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// The service under test.
pub struct Service {
    child: std::process::Child,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// HTTP client.
    pub http: reqwest::Client,
    /// An admin token of the bench account.
    pub token: String,
    /// The bench account's id.
    #[allow(dead_code)] // not every bench needs it
    pub account: i64,
    /// The database it uses.
    pub database_url: String,
    envs: Vec<(String, String)>,
    _dir: Option<tempfile::TempDir>,
    /// The PostgreSQL database this service created (server URL, name): dropped with it.
    created_db: Option<(String, String)>,
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some((server, db)) = &self.created_db {
            // FORCE: a replica still connected is cut off rather than keeping the database.
            let drop = format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)");
            let _ = Command::new("psql").args([server.as_str(), "-qc", &drop]).status();
        }
    }
}

impl Service {
    /// The emulator (in this process) and the service (a child) on a fresh database: PostgreSQL
    /// when `DATABASE_URL` says so, else SQLite in a temp dir.
    pub async fn start(
        name: &str,
        spec: WorldSpec,
        latency: Duration,
        extra_env: &[(&str, String)],
    ) -> (Emulator, Self) {
        let dir = tempfile::tempdir().unwrap();
        let mut created_db = None;
        let database_url = std::env::var("DATABASE_URL")
            .ok()
            .filter(|u| u.starts_with("postgres"))
            .map(|u| {
                let mut url = url::Url::parse(&u).unwrap();
                let db = format!("m365_bench_{name}_{}", std::process::id());
                let _ = Command::new("psql").args([url.as_str(), "-qc", &format!("CREATE DATABASE {db}")]).status();
                created_db = Some((url.to_string(), db.clone()));
                url.set_path(&format!("/{db}"));
                url.to_string()
            })
            .unwrap_or_else(|| format!("sqlite://{}?mode=rwc", dir.path().join("bench.db").display()));
        let emu_config = EmulatorConfig { spec, latency, ..EmulatorConfig::default() };
        let emu = Emulator::spawn("127.0.0.1:0".parse().unwrap(), emu_config.clone()).await.unwrap();
        emu.state.set_authorize(AuthorizeMode::AutoAccept { user: "admin".into() });
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let url = format!("http://127.0.0.1:{port}");
        emu.state.add_redirect_uri(&format!("{url}/oauth/m365/callback"));
        let mut envs: Vec<(&str, String)> = vec![
            ("DATABASE_URL", database_url.clone()),
            ("BIND_ADDR", format!("127.0.0.1:{port}")),
            ("AUTH_JWT_SECRET", JWT.into()),
            ("TOKEN_ENCRYPTION_KEY", base64::engine::general_purpose::STANDARD.encode([5u8; 32])),
            ("M365_CLIENT_ID", emu_config.client_id.clone()),
            ("M365_CLIENT_SECRET", emu_config.client_secret.clone()),
            ("M365_AUTHORITY_URL", emu.base_url()),
            ("M365_GRAPH_URL", emu.base_url()),
            ("M365_LICENSE_NAMES_URL", format!("{}/_emulator/licensing/product-names.csv", emu.base_url())),
            ("SYNC_INTERVAL", "0".into()),
            ("RUST_LOG", std::env::var("BENCH_SERVICE_LOG").unwrap_or_else(|_| "warn".into())),
        ];
        envs.extend(extra_env.iter().cloned());
        let out = Command::new(bin())
            .args(["account", "create", "--name", "Bench MSP", "--enable-m365"])
            .envs(envs.clone())
            .output()
            .unwrap();
        let account: i64 = String::from_utf8_lossy(&out.stdout).trim().parse().expect("account id");
        let child = Command::new(bin()).arg("serve").envs(envs.clone()).spawn().unwrap();
        let token = AuthKeys::new(&Secret::new(JWT)).mint(
            account,
            "bench",
            &[MANAGE_TENANT_SETTINGS.into()],
            Duration::from_secs(7200),
        );
        let envs = envs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
        let svc = Self {
            child,
            url,
            http: reqwest::Client::new(),
            token,
            account,
            database_url,
            envs,
            _dir: Some(dir),
            created_db,
        };
        svc.wait_ready().await;
        (emu, svc)
    }

    async fn wait_ready(&self) {
        while self.http.get(format!("{}/readyz", self.url)).send().await.is_err() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Another replica of this service on the same database (a second process, its own port).
    #[allow(dead_code)] // only the fan-out bench runs a fleet
    pub async fn replica(&self) -> Self {
        self.replica_from(&bin()).await
    }

    /// A replica run from another build (`bin`): two builds serving the same data side by side.
    #[allow(dead_code)] // only the read bench compares builds this way
    pub async fn replica_from(&self, bin: &str) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut envs = self.envs.clone();
        envs.retain(|(k, _)| k != "BIND_ADDR");
        envs.push(("BIND_ADDR".into(), format!("127.0.0.1:{port}")));
        let child = Command::new(bin).arg("serve").envs(envs.clone()).spawn().unwrap();
        let svc = Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
            http: reqwest::Client::new(),
            token: self.token.clone(),
            account: self.account,
            database_url: self.database_url.clone(),
            envs,
            _dir: None,
            created_db: None,
        };
        svc.wait_ready().await;
        svc
    }

    /// A GraphQL request with the admin token.
    pub async fn gql(&self, query: &str, vars: Value) -> Value {
        let r = self
            .http
            .post(format!("{}/graphql", self.url))
            .bearer_auth(&self.token)
            .json(&json!({"query": query, "variables": vars}))
            .send()
            .await
            .unwrap();
        r.json().await.unwrap()
    }

    /// Clicks Connect M365 and follows the browser to the callback (the first sync starts).
    pub async fn connect(&self) {
        let d = self.gql("mutation { connectM365 { authorizationUrl } }", json!({})).await;
        let auth_url = d["data"]["connectM365"]["authorizationUrl"].as_str().unwrap().to_owned();
        let browser = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        let mut url = auth_url;
        let mut cookie = String::new();
        // Our start URL (sets the browser cookie), Microsoft's consent, then our callback.
        loop {
            let r = browser.get(&url).header("cookie", &cookie).send().await.unwrap();
            if let Some(c) = r.headers().get("set-cookie") {
                cookie = c.to_str().unwrap().split(';').next().unwrap().to_owned();
            }
            match r.headers().get("location") {
                Some(l) => url = l.to_str().unwrap().to_owned(),
                None => {
                    assert_eq!(r.status(), 200);
                    break;
                }
            }
        }
    }

    /// Waits for the sync to end; returns the last run.
    pub async fn wait_run(&self) -> Value {
        loop {
            let d = self.gql("{ m365Integration { sync { state lastRun { status startedAt finishedAt tenantsDone tenantsFailed usersSynced error } } } }", json!({})).await;
            let sync = &d["data"]["m365Integration"]["sync"];
            if sync["state"] == "IDLE" && !sync["lastRun"].is_null() {
                return sync["lastRun"].clone();
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The child's peak resident set, in MB.
    #[allow(dead_code)]
    pub fn peak_rss_mb(&self) -> f64 {
        self.status_mb("VmHWM:")
    }

    /// The child's resident set now, in MB.
    #[allow(dead_code)] // not every bench samples it
    pub fn rss_mb(&self) -> f64 {
        self.status_mb("VmRSS:")
    }

    fn status_mb(&self, key: &str) -> f64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap_or_default();
        status
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<f64>().ok())
            .unwrap_or(0.0)
            / 1024.0
    }

    /// The child's process id.
    #[allow(dead_code)]
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// CPU seconds (user + system) the child has used.
    #[allow(dead_code)]
    pub fn cpu_seconds(&self) -> f64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap_or_default();
        // Fields after the command name (which may hold spaces) start after the last ')'.
        let fields: Vec<&str> = stat.rsplit_once(')').map(|(_, r)| r.split_whitespace().collect()).unwrap_or_default();
        let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
        // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
        (ticks(11) + ticks(12)) / 100.0
    }
}

/// CPU seconds (user + system) used so far by every PostgreSQL process on this machine (the
/// server and its backends, those that have exited included: pgbench's connections and
/// autovacuum's workers end before the reading); 0 where there is none.
#[allow(dead_code)] // not every bench runs on PostgreSQL
pub fn postgres_cpu_seconds() -> f64 {
    let Ok(dir) = std::fs::read_dir("/proc") else { return 0.0 };
    dir.filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().bytes().all(|b| b.is_ascii_digit()))
        .filter_map(|e| std::fs::read_to_string(e.path().join("stat")).ok())
        .filter_map(|stat| {
            let (name, rest) = stat.split_once(" (")?.1.rsplit_once(')')?;
            (name == "postgres").then(|| {
                let f: Vec<&str> = rest.split_whitespace().collect();
                let t = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
                // Its own user and system time, and that of its children it has reaped: the
                // postmaster's carries every backend that has exited (pgbench's, for one).
                (t(11) + t(12) + t(13) + t(14)) / 100.0
            })
        })
        .sum()
}
