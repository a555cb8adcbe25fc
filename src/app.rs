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

use crate::{auth::AuthKeys, config::Config, db, graphql, http};

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
    pub async fn build(config: Config) -> Result<Self, BoxError> {
        let Some(jwt_secret) = config.auth_jwt_secret.clone().filter(|s| !s.expose().is_empty()) else {
            return Err(
                "AUTH_JWT_SECRET is not set: API tokens cannot be verified. Make one with `openssl rand -base64 32`."
                    .into(),
            );
        };
        let db = db::connect(&config.database_url)
            .await
            .map_err(|e| format!("cannot open the database at DATABASE_URL: {e}"))?;
        db::migrate(&db).await.map_err(|e| format!("database migration failed: {e}"))?;
        let listener = TcpListener::bind(config.bind_addr)
            .await
            .map_err(|e| format!("cannot listen on {}: {e}", config.bind_addr))?;
        let state = AppState(Arc::new(App { db, auth: AuthKeys::new(&jwt_secret), config, clock: Clock::default() }));
        let schema = graphql::build(state.clone());
        let router = http::router(state.clone(), schema);
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

    /// Serves until `shutdown` completes, then drains in-flight requests.
    pub async fn run_until_stopped(self, shutdown: impl Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
        tracing::info!(addr = %self.local_addr(), "listening");
        axum::serve(self.listener, self.router.into_make_service_with_connect_info::<SocketAddr>())
            .with_graceful_shutdown(shutdown)
            .await
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
