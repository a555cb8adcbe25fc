//! Database access: connecting, migrating, and the SeaORM queries of each domain.
//! Resolvers and services never build queries inline; they call these modules.

pub mod accounts;
pub mod audit;
pub mod clients;
pub mod connections;
pub mod evidence;
pub mod license_names;
pub mod mappings;
pub mod sync_runs;
pub mod tenants;
pub mod users;

use std::time::Duration;

use migration::{Migrator, MigratorTrait};
use sea_orm::{
    ConnectOptions, Database, DatabaseConnection, DatabaseTransaction, DbErr, SqliteTransactionMode,
    TransactionOptions, TransactionTrait,
};

/// Connects (creating an SQLite file if needed) and tunes the connection for the backend.
pub async fn connect(url: &str) -> Result<DatabaseConnection, DbErr> {
    let mut opts = ConnectOptions::new(url.to_owned());
    opts.sqlx_logging(false).connect_timeout(Duration::from_secs(10)).acquire_timeout(Duration::from_secs(30));
    // SQLx pings a connection when it goes back to the pool, and by default again when it is
    // taken out: two extra round trips per statement (a profile of the users page put them near
    // a fifth of the service's CPU). A connection returned moments ago was just checked; ping
    // on the way out only one idle long enough for the server or a firewall to have dropped it.
    opts.test_before_acquire_if_idle_for(Duration::from_secs(30));
    if url.starts_with("sqlite") {
        // SQLite allows one writer: WAL lets readers go on beside it, and writers wait for the
        // lock (busy timeout) instead of failing.
        opts.max_connections(4).min_connections(1).map_sqlx_sqlite_opts(|o| {
            o.journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
                .busy_timeout(Duration::from_secs(30))
                .foreign_keys(true)
                .synchronous(sea_orm::sqlx::sqlite::SqliteSynchronous::Normal)
        });
    } else {
        opts.max_connections(16);
    }
    Database::connect(opts).await
}

/// Begins a transaction that will write. On SQLite it takes the write lock at `BEGIN`
/// (IMMEDIATE), so two writers queue instead of one failing on a lock upgrade.
pub async fn write_txn(db: &DatabaseConnection) -> Result<DatabaseTransaction, DbErr> {
    db.begin_with_options(TransactionOptions {
        isolation_level: None,
        access_mode: None,
        sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
    })
    .await
}

/// An insert's result, with a unique-constraint violation turned into `None` (the row exists:
/// a lock already held, a tenant already mapped).
pub fn unless_duplicate<T>(res: Result<T, DbErr>) -> Result<Option<T>, DbErr> {
    match res {
        Ok(v) => Ok(Some(v)),
        Err(e) if is_unique_violation(&e) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Whether an error is a unique-constraint violation.
pub fn is_unique_violation(e: &DbErr) -> bool {
    matches!(e.sql_err(), Some(sea_orm::SqlErr::UniqueConstraintViolation(_)))
}

/// Applies every pending migration.
pub async fn migrate(db: &DatabaseConnection) -> Result<(), DbErr> {
    Migrator::up(db, None).await
}

/// Whether the database answers (`/readyz`).
pub async fn ping(db: &DatabaseConnection) -> bool {
    db.ping().await.is_ok()
}
