//! `TestApp`: the app on a random port with a fresh database, plus request helpers.

use std::{
    sync::atomic::{AtomicU32, Ordering},
    time::Duration,
};

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
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::defaults();
        config.bind_addr = "127.0.0.1:0".parse().unwrap();
        config.database_url = fresh_database_url(dir.path()).await;
        config.auth_jwt_secret = Some(Secret::new(JWT_SECRET));
        config.sync_interval = Duration::ZERO;
        tweak(&mut config);
        let app = Application::build(config).await.expect("app builds");
        let addr = app.local_addr();
        let state = app.state();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(app.run_until_stopped(async move {
            let _ = rx.await;
        }));
        Self { addr, state, http: reqwest::Client::new(), _dir: dir, stop: Some(tx) }
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
