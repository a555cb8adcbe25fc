//! `TestApp`: the app on a random port with a fresh database, plus request helpers.

use std::{
    sync::atomic::{AtomicU32, Ordering},
    time::Duration,
};

use base64::Engine;
use m365_emulator::{AuthorizeMode, Emulator, EmulatorConfig, world::WorldSpec};
use m365_integration::{
    app::{AppState, Application},
    auth::{AuthKeys, MANAGE_TENANT_SETTINGS},
    config::{Config, Secret},
    db,
};
use sea_orm::{ConnectionTrait, Database};
use serde_json::{Value, json};

pub const JWT_SECRET: &str = "test-jwt-secret-of-reasonable-length";

pub struct TestApp {
    pub addr: std::net::SocketAddr,
    pub state: AppState,
    pub http: reqwest::Client,
    pub emu: Emulator,
    _dir: tempfile::TempDir,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

impl TestApp {
    /// Stops the app as SIGTERM would: it drains and shuts down.
    pub fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

static DB_SEQ: AtomicU32 = AtomicU32::new(0);

/// A fresh database URL: a new PostgreSQL database when DATABASE_URL points at PostgreSQL,
/// else an SQLite file in `dir`.
pub async fn fresh_database_url(dir: &std::path::Path) -> String {
    match std::env::var("DATABASE_URL") {
        Ok(url) if url.starts_with("postgres") => {
            let mut server = url::Url::parse(&url).expect("DATABASE_URL is a URL");
            server.set_path("/postgres");
            let admin = Database::connect(server.as_str()).await.expect("PostgreSQL reachable at DATABASE_URL");
            let name = format!("m365_test_{}_{}", std::process::id(), DB_SEQ.fetch_add(1, Ordering::Relaxed));
            admin.execute_unprepared(&format!("DROP DATABASE IF EXISTS {name}")).await.unwrap();
            admin.execute_unprepared(&format!("CREATE DATABASE {name}")).await.unwrap();
            admin.close().await.ok();
            let mut u = server;
            u.set_path(&format!("/{name}"));
            u.to_string()
        }
        _ => format!("sqlite://{}?mode=rwc", dir.join("test.db").display()),
    }
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(|_| {}).await
    }

    pub async fn spawn_with(tweak: impl FnOnce(&mut Config)) -> Self {
        Self::spawn_world(WorldSpec { seed: 7, tenants: 4, users_per_tenant: 6 }, tweak).await
    }

    /// The app against an emulator generating `spec`.
    pub async fn spawn_world(spec: WorldSpec, tweak: impl FnOnce(&mut Config)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let database_url = fresh_database_url(dir.path()).await;
        Self::spawn_on(database_url, spec, tweak, dir).await
    }

    /// The app on a given database (two apps may share one).
    pub async fn spawn_on(
        database_url: String,
        spec: WorldSpec,
        tweak: impl FnOnce(&mut Config),
        dir: tempfile::TempDir,
    ) -> Self {
        let _ = tracing_subscriber::fmt()
            .with_test_writer()
            .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()))
            .try_init();
        let emu_config = EmulatorConfig { spec, ..EmulatorConfig::default() };
        let emu = Emulator::spawn("127.0.0.1:0".parse().unwrap(), emu_config.clone()).await.unwrap();
        let emu_url = url::Url::parse(&emu.base_url()).unwrap();
        let mut config = Config::defaults();
        config.bind_addr = "127.0.0.1:0".parse().unwrap();
        config.database_url = database_url;
        config.auth_jwt_secret = Some(Secret::new(JWT_SECRET));
        config.token_encryption_key = Some(Secret::new(base64::engine::general_purpose::STANDARD.encode([7u8; 32])));
        config.m365_client_id = emu_config.client_id.clone();
        config.m365_client_secret = Secret::new(emu_config.client_secret.clone());
        config.m365_authority_url = emu_url.clone();
        config.m365_license_names_url = Some(emu_url.join("/_emulator/licensing/product-names.csv").unwrap());
        config.m365_graph_url = emu_url;
        config.sync_interval = Duration::ZERO;
        tweak(&mut config);
        let app = Application::build(config).await.expect("app builds");
        let addr = app.local_addr();
        let state = app.state();
        emu.state.add_redirect_uri(state.config.redirect_uri().as_str());
        emu.state.set_authorize(AuthorizeMode::AutoAccept { user: "admin".into() });
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(app.run_until_stopped(async move {
            let _ = rx.await;
        }));
        Self { addr, state, http: reqwest::Client::new(), emu, _dir: dir, stop: Some(tx) }
    }

    /// Clicks Connect M365 and follows the browser through Microsoft (the emulator answers as
    /// its authorize mode says) back to our callback. Returns the callback's response.
    pub async fn browser_connect(&self, token: &str) -> reqwest::Response {
        let body = self.gql(Some(token), "mutation { connectM365 { authorizationUrl expiresAt } }", json!({})).await;
        let url = data(body)["connectM365"]["authorizationUrl"].as_str().unwrap().to_owned();
        self.follow_to_callback(&url).await
    }

    /// Follows an authorization URL to the callback in a new browser and returns the
    /// callback's response.
    pub async fn follow_to_callback(&self, authorization_url: &str) -> reqwest::Response {
        let mut browser = Browser::default();
        let callback = browser.consent_to_callback(authorization_url).await;
        browser.get(&callback).await
    }

    /// Waits until no sync is queued or running; returns `m365Integration.sync`.
    pub async fn wait_idle(&self, token: &str) -> Value {
        let q = "{ m365Integration { sync { state lastRun { id status phase error tenantsTotal tenantsDone tenantsFailed usersSynced tenantResults { tenantId displayName outcome errorCode error remediation usersSynced } } } } }";
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            let d = data(self.gql(Some(token), q, json!({})).await);
            let sync = d["m365Integration"]["sync"].clone();
            if sync["state"] == "IDLE" && !sync["lastRun"].is_null() {
                return sync;
            }
            assert!(std::time::Instant::now() < deadline, "sync did not finish: {sync}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Connects (Global Administrator accepts) and waits for the first sync.
    pub async fn connected(&self, account: i64) -> Value {
        let t = self.admin_token(account);
        let r = self.browser_connect(&t).await;
        assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
        self.wait_idle(&t).await
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Creates an account; returns its id.
    pub async fn account(&self, name: &str, m365: bool) -> i64 {
        db::accounts::create(&self.state.db, name, m365).await.unwrap().id
    }

    /// A token of `account` with manage_tenant_settings.
    pub fn admin_token(&self, account: i64) -> String {
        self.token(account, &[MANAGE_TENANT_SETTINGS])
    }

    pub fn token(&self, account: i64, perms: &[&str]) -> String {
        let perms: Vec<String> = perms.iter().map(|p| p.to_string()).collect();
        AuthKeys::new(&Secret::new(JWT_SECRET)).mint(
            account,
            &format!("user-of-{account}"),
            &perms,
            Duration::from_secs(600),
        )
    }

    /// Upserts clients (a JSON list of `ClientInput`); returns them (`id`, `name`) in input order.
    pub async fn upsert_clients(&self, token: &str, clients: Value) -> Vec<Value> {
        let q = "mutation($c: [ClientInput!]!) { upsertClients(clients: $c) { id name } }";
        data(self.gql(Some(token), q, json!({"c": clients})).await)["upsertClients"].as_array().unwrap().clone()
    }

    /// Runs one SQL statement on the app's database (`$1`, `$2`… placeholders), to put stored
    /// state where a test needs it.
    pub async fn sql(&self, sql: &str, values: impl IntoIterator<Item = sea_orm::Value>) {
        let db = &self.state.db;
        let stmt = sea_orm::Statement::from_sql_and_values(db.get_database_backend(), sql, values);
        db.execute_raw(stmt).await.unwrap();
    }

    /// POSTs a GraphQL request; returns the JSON body.
    pub async fn gql(&self, token: Option<&str>, query: &str, variables: Value) -> Value {
        let mut req = self.http.post(self.url("/graphql")).json(&json!({"query": query, "variables": variables}));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.unwrap();
        resp.json().await.unwrap()
    }
}

/// The `extensions.code` of the first error, if any.
pub fn error_code(body: &Value) -> Option<&str> {
    body["errors"][0]["extensions"]["code"].as_str()
}

/// Asserts there are no errors and returns `data`.
pub fn data(body: Value) -> Value {
    assert!(body.get("errors").is_none(), "unexpected errors: {body}");
    body["data"].clone()
}

/// A browser: follows nothing by itself, keeps the connect cookie like a cookie jar would.
pub struct Browser {
    client: reqwest::Client,
    /// The `m365_connect` cookie, while set.
    pub cookie: Option<String>,
}

impl Default for Browser {
    fn default() -> Self {
        let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        Self { client, cookie: None }
    }
}

impl Browser {
    /// GETs a URL with the jar's cookie and stores any cookie set (an empty value clears it).
    pub async fn get(&mut self, url: &str) -> reqwest::Response {
        let mut req = self.client.get(url);
        if let Some(c) = &self.cookie {
            req = req.header("cookie", format!("m365_connect={c}"));
        }
        let r = req.send().await.unwrap();
        for v in r.headers().get_all("set-cookie") {
            let v = v.to_str().unwrap();
            if let Some(rest) = v.strip_prefix("m365_connect=") {
                let value = rest.split(';').next().unwrap_or_default();
                self.cookie = (!value.is_empty()).then(|| value.to_owned());
            }
        }
        r
    }

    /// Opens our start URL and Microsoft's consent (the emulator answers as its authorize mode
    /// says); returns the callback URL Microsoft redirects to, without opening it.
    pub async fn consent_to_callback(&mut self, start_url: &str) -> String {
        let microsoft = self.location(start_url).await;
        let callback = self.location(&microsoft).await;
        assert!(callback.contains("/oauth/m365/callback"), "{callback}");
        callback
    }

    /// Where a URL redirects to.
    pub async fn location(&mut self, url: &str) -> String {
        let r = self.get(url).await;
        r.headers()
            .get("location")
            .unwrap_or_else(|| panic!("{url} redirects, got {}", r.status()))
            .to_str()
            .unwrap()
            .to_owned()
    }
}
