//! The sync lock as a lease, and the fence every sync write passes. The whole protocol is here.
//!
//! **Claim.** Claiming inserts a `running` run with `lease_owner` = this worker and
//! `lease_expires_at` = now + `SYNC_LEASE_SECS`. A partial unique index allows one active
//! (`queued`/`running`) run per account, so of two claims in any number of processes one wins.
//!
//! **Renew.** While the worker lives it renews the lease every third of its lifetime; a renewal
//! is a conditional update (`status = running AND lease_owner = me`), so a worker whose run was
//! taken over or cancelled learns it at the next renewal and stops.
//!
//! **Fence.** Every write of a worker runs in a transaction that first (1) reads the account's
//! connection row, shared (`FOR SHARE` on PostgreSQL; SQLite has one writer at a time), and
//! (2) checks that this worker still holds the run. Progress writes are conditional updates with
//! the same check.
//!
//! **Take over / disconnect.** Expiring a dead worker's run locks the connection row exclusively
//! before failing the run; a disconnect deletes that row. Both therefore wait for every in-flight
//! fenced write, and once they commit, a fence of the old worker fails (the run is no longer its,
//! or the connection is gone), so it can never write after losing its lease. Shared, the fence
//! lets one worker's tenant writes run in parallel on PostgreSQL.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use chrono::{DateTime, Utc};
use entity::{states::RunTrigger, sync_run};
use sea_orm::{DatabaseTransaction, DbErr};

use crate::{app::AppState, db};

/// When a lease taken or renewed now runs out.
pub fn lease_until(app: &AppState) -> DateTime<Utc> {
    app.clock.now() + chrono::Duration::from_std(app.config.sync_lease()).unwrap_or(chrono::Duration::seconds(60))
}

/// Claims the account's sync lock for this process's worker; `None` when a run is active.
pub async fn claim(
    app: &AppState,
    account_id: i64,
    trigger: RunTrigger,
    by: Option<&str>,
) -> Result<Option<sync_run::Model>, DbErr> {
    let (now, until) = (app.clock.now(), lease_until(app));
    db::sync_runs::claim(&app.db, account_id, trigger, by, &app.sync.worker_id, now, until).await
}

/// Fails the account's runs whose worker died (lease expired), after in-flight writes of that
/// worker finished: the connection row is locked exclusively first.
pub async fn expire_dead(app: &AppState, account_id: i64) -> Result<u64, DbErr> {
    let txn = db::write_txn(&app.db).await?;
    db::connections::lock_exclusive(&txn, account_id).await?;
    let n = db::sync_runs::expire_dead(&txn, account_id, app.clock.now()).await?;
    txn.commit().await?;
    if n > 0 {
        // Subscribers following the dead run get its end.
        if let Some(run) = db::sync_runs::latest(&app.db, account_id).await? {
            app.sync.hub.publish(&run);
        }
    }
    Ok(n)
}

/// Fails runs whose worker died, in every account.
pub async fn expire_dead_everywhere(app: &AppState) -> Result<(), DbErr> {
    for account in db::sync_runs::accounts_with_dead_runs(&app.db, app.clock.now()).await? {
        expire_dead(app, account).await?;
    }
    Ok(())
}

/// Why a fenced write was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refused {
    /// The connection is gone.
    Disconnected,
    /// Another worker took the run over (or it was cancelled).
    TakenOver,
}

impl Refused {
    /// For the run's error.
    pub fn message(self) -> &'static str {
        match self {
            Self::Disconnected => "Microsoft 365 was disconnected.",
            Self::TakenOver => "The sync's lock was lost; another worker took over.",
        }
    }
}

/// Why a fenced write did not happen.
#[derive(Debug)]
pub enum FenceError {
    /// The lease is lost (see [`Refused`]).
    Refused(Refused),
    /// The database failed.
    Db(DbErr),
}

impl From<DbErr> for FenceError {
    fn from(e: DbErr) -> Self {
        Self::Db(e)
    }
}

/// A held lease: the run, its worker and its connection. Once lost, it stays lost.
#[derive(Debug)]
pub struct Lease {
    run_id: i64,
    worker: String,
    conn_id: i64,
    lost: AtomicBool,
    /// How many per-tenant results the run's row holds since this lease wrote it (`usize::MAX`
    /// before the first write, which therefore always writes them).
    results_saved: AtomicUsize,
}

impl Lease {
    /// The lease `worker` holds on `run_id`, fenced by connection `conn_id`.
    pub fn new(run_id: i64, worker: String, conn_id: i64) -> Self {
        Self { run_id, worker, conn_id, lost: AtomicBool::new(false), results_saved: AtomicUsize::new(usize::MAX) }
    }

    /// Whether a fence, a renewal or a progress write found the lease gone.
    pub fn is_lost(&self) -> bool {
        self.lost.load(Ordering::Relaxed)
    }

    /// Gives the lease up (the run stops at its next step).
    pub fn mark_lost(&self) {
        self.lost.store(true, Ordering::Relaxed);
    }

    /// The fence: call first in every write transaction of the run.
    pub async fn fence(&self, txn: &DatabaseTransaction) -> Result<(), FenceError> {
        if !db::connections::fence(txn, self.conn_id).await? {
            self.mark_lost();
            return Err(FenceError::Refused(Refused::Disconnected));
        }
        if !db::sync_runs::holds(txn, self.run_id, &self.worker).await? {
            self.mark_lost();
            return Err(FenceError::Refused(Refused::TakenOver));
        }
        Ok(())
    }

    /// Stores the run's progress if the lease is still held; `None` (and lost) otherwise.
    pub async fn save(&self, app: &AppState, run: &sync_run::Model) -> Result<Option<sync_run::Model>, DbErr> {
        let results = run.tenant_results.0.len();
        let with_results = results != self.results_saved.load(Ordering::Relaxed);
        let saved = db::sync_runs::save_progress(&app.db, run, &self.worker, with_results).await?;
        match &saved {
            Some(_) => self.results_saved.store(results, Ordering::Relaxed),
            None => self.mark_lost(),
        }
        Ok(saved)
    }

    /// Renews the lease every third of its lifetime until it is lost (abort the task to stop).
    pub async fn keep_alive(&self, app: &AppState) {
        let every = app.config.sync_lease() / 3;
        loop {
            tokio::time::sleep(every).await;
            match db::sync_runs::renew(&app.db, self.run_id, &self.worker, lease_until(app)).await {
                Ok(true) => {}
                Ok(false) => {
                    tracing::warn!(run_id = self.run_id, "sync lease lost; stopping");
                    self.mark_lost();
                    return;
                }
                Err(e) => tracing::warn!(run_id = self.run_id, error = %e, "renewing the sync lease failed"),
            }
        }
    }
}
