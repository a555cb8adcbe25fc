//! Signals between replicas through PostgreSQL (`LISTEN`/`NOTIFY`), the database every replica
//! already shares: a disconnect on one replica stops the run another replica holds, at once
//! instead of at that run's next fenced write. SQLite is one process: nothing to send.
//!
//! Each replica listens on one dedicated connection (reconnecting after a failure). A
//! notification's payload is `<account id> <origin worker id>`; a replica ignores its own.

use sea_orm::{ConnectionTrait, DatabaseBackend, Statement};

use crate::app::AppState;

/// The channel cancel signals travel on.
pub const CANCEL_CHANNEL: &str = "m365_sync_cancel";

/// Tells every replica to stop the account's run (PostgreSQL only; a no-op on SQLite).
pub async fn send_cancel(app: &AppState, account_id: i64) {
    if app.db.get_database_backend() != DatabaseBackend::Postgres {
        return;
    }
    let payload = format!("{account_id} {}", app.sync.worker_id);
    let stmt = Statement::from_sql_and_values(
        DatabaseBackend::Postgres,
        "SELECT pg_notify($1, $2)",
        [CANCEL_CHANNEL.into(), payload.into()],
    );
    if let Err(e) = app.db.execute_raw(stmt).await {
        tracing::warn!(account_id, error = %e, "notifying other replicas of a cancel failed");
    }
}

/// Parses a cancel payload: the account, unless the signal came from `me`.
pub fn cancel_for(payload: &str, me: &str) -> Option<i64> {
    let (account, origin) = payload.split_once(' ')?;
    (origin != me).then(|| account.parse().ok()).flatten()
}

/// Listens for other replicas' signals until the runtime stops (PostgreSQL only).
pub async fn listen(app: AppState) {
    if app.db.get_database_backend() != DatabaseBackend::Postgres {
        return;
    }
    loop {
        match listen_once(&app).await {
            Ok(()) => return,
            Err(e) => {
                tracing::warn!(error = %e, "replica signal listener lost its connection; reconnecting");
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            }
        }
    }
}

async fn listen_once(app: &AppState) -> Result<(), sea_orm::sqlx::Error> {
    let mut listener = sea_orm::sqlx::postgres::PgListener::connect_with(app.db.get_postgres_connection_pool()).await?;
    listener.listen(CANCEL_CHANNEL).await?;
    loop {
        let n = listener.recv().await?;
        if let Some(account) = cancel_for(n.payload(), &app.sync.worker_id) {
            tracing::info!(account_id = account, "another replica cancelled this account's sync");
            app.sync.cancel(account);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::cancel_for;

    #[test]
    fn cancel_payloads() {
        assert_eq!(cancel_for("42 worker-b", "worker-a"), Some(42));
        assert_eq!(cancel_for("42 worker-a", "worker-a"), None, "its own signal");
        assert_eq!(cancel_for("x worker-b", "worker-a"), None);
        assert_eq!(cancel_for("garbage", "worker-a"), None);
    }
}
