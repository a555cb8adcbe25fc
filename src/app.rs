//! The running application: shared state ([`AppState`]) and [`Application::build`] /
//! [`Application::run_until_stopped`], used alike by `serve`, `demo` and the test harness.

use std::{
    future::Future,
    net::SocketAddr,
    ops::Deref,
    sync::{
        Arc,
        atomic::{AtomicI64, Ordering},
    },
};

use chrono::{DateTime, Utc};
use sea_orm::DatabaseConnection;
use tokio::net::TcpListener;

use crate::{
    auth::AuthKeys,
    config::Config,
    connect::vault::Vault,
    db, graphql, http,
    microsoft::{
        graph::{GraphClient, RetryPolicy},
        identity::IdentityClient,
    },
    sync::{self, SyncService},
};

/// Boxed error for start-up failures, printed to the operator.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The service's notion of "now"; tests move it forward instead of sleeping.
#[derive(Debug, Default)]
pub struct Clock {
    offset_ms: AtomicI64,
}

impl Clock {
    /// Now, plus any offset a test added.
    pub fn now(&self) -> DateTime<Utc> {
        Utc::now() + chrono::Duration::milliseconds(self.offset_ms.load(Ordering::Relaxed))
    }

    /// Moves the clock forward (tests only).
    pub fn advance(&self, by: std::time::Duration) {
        self.offset_ms.fetch_add(by.as_millis() as i64, Ordering::Relaxed);
    }
}

/// Everything shared by handlers, resolvers and workers.
pub struct App {
    /// The database pool.
    pub db: DatabaseConnection,
    /// Configuration.
    pub config: Config,
    /// API token keys.
    pub auth: AuthKeys,
    /// Time source.
    pub clock: Clock,
    /// Refresh-token encryption.
    pub vault: Vault,
    /// Microsoft identity platform client.
    pub identity: IdentityClient,
    /// Microsoft Graph client.
    pub graph: GraphClient,
    /// Sync triggers, workers and progress.
    pub sync: SyncService,
    /// License friendly names.
    pub license_names: crate::licenses::LicenseNames,
    /// SQL statements executed so far (tests and benchmarks read it).
    pub statements: Arc<std::sync::atomic::AtomicU64>,
    /// Turns for CPU-heavy suggestion scoring (`SUGGESTION_WORKERS`, fair between accounts).
    pub scoring: crate::mapping::scoring::ScoringPermits,
    /// Flips to true when the process starts draining (SIGTERM): WebSockets close with 1001.
    pub draining: tokio::sync::watch::Sender<bool>,
}

/// Cheap handle to [`App`].
#[derive(Clone)]
pub struct AppState(Arc<App>);

impl Deref for AppState {
    type Target = App;
    fn deref(&self) -> &App {
        &self.0
    }
}

/// A built, bound, not yet running service.
pub struct Application {
    listener: TcpListener,
    router: axum::Router,
    state: AppState,
}

impl Application {
    /// Connects and migrates the database, builds the schema and binds the listener
    /// (`BIND_ADDR` may use port 0).
    pub async fn build(mut config: Config) -> Result<Self, BoxError> {
        let Some(jwt_secret) = config.auth_jwt_secret.clone().filter(|s| !s.expose().is_empty()) else {
            return Err(
                "AUTH_JWT_SECRET is not set: API tokens cannot be verified. Make one with `openssl rand -base64 32`."
                    .into(),
            );
        };
        let Some(key) = config.token_encryption_key.clone() else {
            return Err("TOKEN_ENCRYPTION_KEY is not set: Microsoft authorizations are stored encrypted with it. Make one with `openssl rand -base64 32`.".into());
        };
        let vault = Vault::new(&key, &config.token_encryption_previous_keys)?;
        if config.m365_client_id.trim().is_empty() || config.m365_client_secret.expose().is_empty() {
            return Err("M365_CLIENT_ID and M365_CLIENT_SECRET must be set: they identify the shared multi-tenant app (`demo` runs without them).".into());
        }
        let mut db = db::connect(&config.database_url)
            .await
            .map_err(|e| format!("cannot open the database at DATABASE_URL: {e}"))?;
        let statements = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let counter = statements.clone();
        db.set_metric_callback(move |info| {
            counter.fetch_add(1, Ordering::Relaxed);
            tracing::trace!(target: "m365_integration::sql", elapsed_us = info.elapsed.as_micros() as u64, sql = %info.statement.sql);
        });
        db::migrate(&db).await.map_err(|e| format!("database migration failed: {e}"))?;
        let listener = TcpListener::bind(config.bind_addr)
            .await
            .map_err(|e| format!("cannot listen on {}: {e}", config.bind_addr))?;
        if config.public_url.is_none() {
            // Port 0 binds a random port: the redirect URI must name the real one.
            let addr = listener.local_addr()?;
            config.public_url = Some(url::Url::parse(&format!("http://{addr}"))?);
        }
        let identity = IdentityClient::new(
            config.m365_authority_url.clone(),
            &config.m365_client_id,
            config.m365_client_secret.clone(),
            config.redirect_uri(),
            std::time::Duration::from_secs(30),
        );
        let graph = GraphClient::new(config.m365_graph_url.clone(), RetryPolicy::default());
        let scoring = crate::mapping::scoring::ScoringPermits::new(config.suggestion_workers);
        let state = AppState(Arc::new(App {
            scoring,
            db,
            auth: AuthKeys::new(&jwt_secret),
            config,
            clock: Clock::default(),
            vault,
            identity,
            graph,
            sync: SyncService::default(),
            draining: tokio::sync::watch::channel(false).0,
            license_names: crate::licenses::LicenseNames::default(),
            statements,
        }));
        state.license_names.load(&state.db).await?;
        let schema = graphql::build(state.clone());
        let router = http::router(state.clone(), schema);
        tokio::spawn(sync::schedule::run(state.clone()));
        tokio::spawn(crate::evidence::retention_loop(state.clone()));
        crate::metrics::init();
        if state.db.get_database_backend() == sea_orm::DatabaseBackend::Postgres {
            // Replicas share progress through PostgreSQL; SQLite is one process.
            let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
            state.sync.hub.relay_to(tx);
            tokio::spawn(sync::fanout::relay(state.clone(), rx));
            tokio::spawn(sync::fanout::listen(state.clone()));
        }
        tokio::spawn(crate::licenses::run(state.clone()));
        Ok(Self { listener, router, state })
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("a bound listener has an address")
    }

    /// The shared state (tests reach the database and clock through it).
    pub fn state(&self) -> AppState {
        self.state.clone()
    }

    /// Serves until `shutdown` completes, then drains: stops accepting, closes WebSockets with
    /// 1001 (going away) so clients reconnect to another replica, lets running HTTP requests
    /// finish, and stops this process's syncs, releasing their locks at once and making their
    /// scheduled syncs due so another replica takes them over ([`sync::drain`]).
    pub async fn run_until_stopped(self, shutdown: impl Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
        tracing::info!(addr = %self.local_addr(), "listening");
        let c = &self.state.config;
        let limits = http::server::ServerLimits {
            header_timeout: std::time::Duration::from_secs(c.http_header_timeout_secs.max(1)),
            max_connections: c.http_max_connections,
        };
        let state = self.state.clone();
        let signal = {
            let state = state.clone();
            async move {
                shutdown.await;
                tracing::info!("draining");
                let _ = state.draining.send(true);
            }
        };
        // The signal flips `draining` before the server stops, so the sync drain always starts.
        let syncs = async {
            let mut rx = state.draining.subscribe();
            if rx.wait_for(|d| *d).await.is_ok() {
                sync::drain(&state, std::time::Duration::from_secs(10)).await;
            }
        };
        let (served, ()) = tokio::join!(http::server::serve(self.listener, self.router, limits, signal), syncs);
        served
    }
}

/// Completes on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutting down");
}
