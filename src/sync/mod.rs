//! Syncing Microsoft 365 data: triggers and their guards (cooldown, the lease lock), the status
//! the tab shows, the engine's steps ([`engine`]), MFA rules ([`mfa`]), the progress hub
//! ([`hub`]) and the schedule ([`schedule`]).
//!
//! The lock is a lease on the sync run: claiming inserts a running run, and a partial unique
//! index allows one active run per account, in any number of processes. The worker renews the
//! lease while it lives; a dead worker's lease runs out and the next claim marks its run failed.
//! Every write of a worker is fenced: its transaction first takes the connection row shared and
//! checks it still holds the run. A takeover locks that row exclusively before failing the dead
//! run, and a disconnect deletes it, so both wait for in-flight writes, and a worker that lost its
//! lease (or whose account was disconnected) cannot write afterwards. Shared, the fence lets tenant
//! writes run in parallel on PostgreSQL.

pub mod engine;
pub mod hub;
pub mod mfa;
pub mod schedule;

use std::{collections::HashMap, sync::Mutex, time::Duration};

use entity::sync_run;
use tokio::sync::watch;

use crate::{
    app::AppState,
    error::{AppError, AppResult},
};

use chrono::{DateTime, Utc};

use crate::{
    db,
    graphql::types::integration::{SyncRun, SyncState, SyncStatus},
};

/// Minimum time between two manual syncs of an account (the guide's 30-second cooldown).
pub const MANUAL_COOLDOWN: Duration = Duration::from_secs(30);

/// Seconds left of the manual cooldown at `now`, given the last manual trigger.
pub fn cooldown_remaining(last_manual: Option<DateTime<Utc>>, now: DateTime<Utc>) -> i64 {
    let Some(last) = last_manual else { return 0 };
    let elapsed_ms = (now - last).num_milliseconds().max(0);
    let left_ms = MANUAL_COOLDOWN.as_millis() as i64 - elapsed_ms;
    // Round up so that "0 seconds left" really means "may trigger now".
    if left_ms <= 0 { 0 } else { (left_ms + 999) / 1000 }
}

/// The account's sync status now. A run whose worker died (its lease ran out) is failed here
/// first, so "Refresh Status" never shows a dead run as running.
pub async fn status(app: &AppState, account_id: i64) -> Result<SyncStatus, sea_orm::DbErr> {
    let (db, now, interval) = (&app.db, app.clock.now(), app.config.sync_interval);
    let conn = db::connections::get(db, account_id).await?;
    let mut current = db::sync_runs::current(db, account_id).await?;
    if current.as_ref().is_some_and(|r| r.lease_expires_at.is_some_and(|l| l < now)) {
        expire_dead(app, account_id).await?;
        current = db::sync_runs::current(db, account_id).await?;
    }
    let last = db::sync_runs::last_finished(db, account_id).await?;
    let state = match current.as_ref().map(|r| r.status.as_str()) {
        Some("running") => SyncState::Running,
        Some(_) => SyncState::Queued,
        None => SyncState::Idle,
    };
    let next_scheduled_at = match (&conn, interval.is_zero()) {
        (Some(c), false) if c.status == "connected" => c.next_sync_at,
        _ => None,
    };
    Ok(SyncStatus {
        state,
        cooldown_remaining_seconds: cooldown_remaining(conn.as_ref().and_then(|c| c.last_manual_sync_at), now) as i32,
        current_run: current.map(SyncRun::from),
        last_run: last.map(SyncRun::from),
        next_scheduled_at,
    })
}

/// Fails the account's runs whose worker died (lease expired), after in-flight writes of that
/// worker finished: the connection row is locked exclusively first.
pub async fn expire_dead(app: &AppState, account_id: i64) -> Result<u64, sea_orm::DbErr> {
    let txn = db::write_txn(&app.db).await?;
    db::connections::lock_exclusive(&txn, account_id).await?;
    let n = db::sync_runs::expire_dead(&txn, account_id, app.clock.now()).await?;
    txn.commit().await?;
    Ok(n)
}

/// What started a run (stored text).
pub mod trigger {
    /// Trigger Sync.
    pub const MANUAL: &str = "manual";
    /// The schedule.
    pub const SCHEDULED: &str = "scheduled";
    /// Right after connecting.
    pub const INITIAL: &str = "initial";
}

/// Starts and stops syncs; owns the progress hub.
pub struct SyncService {
    /// Progress of every run, per account.
    pub hub: hub::Hub,
    /// This process's worker id (lease owner).
    pub worker_id: String,
    cancels: Mutex<HashMap<i64, watch::Sender<bool>>>,
}

impl Default for SyncService {
    fn default() -> Self {
        Self {
            hub: hub::Hub::default(),
            worker_id: format!("worker-{}", uuid::Uuid::new_v4()),
            cancels: Mutex::default(),
        }
    }
}

impl SyncService {
    /// Starts a sync of the account: `NOT_CONNECTED`, `M365_AUTHORIZATION_REVOKED`,
    /// `SYNC_ALREADY_RUNNING` (a live lease), or for manual triggers `SYNC_COOLDOWN`.
    pub async fn trigger(
        &self,
        app: &AppState,
        account_id: i64,
        kind: &str,
        by: Option<&str>,
    ) -> AppResult<sync_run::Model> {
        let db = &app.db;
        let now = app.clock.now();
        let conn = db::connections::get(db, account_id).await?.ok_or(AppError::NotConnected)?;
        if conn.status != "connected" {
            return Err(AppError::AuthorizationRevoked);
        }
        expire_dead(app, account_id).await?;
        if db::sync_runs::current(db, account_id).await?.is_some() {
            return Err(AppError::SyncAlreadyRunning);
        }
        if kind == trigger::MANUAL {
            let cooldown = chrono::Duration::from_std(MANUAL_COOLDOWN).expect("30 s");
            if !db::connections::take_manual_slot(db, conn.id, now, cooldown).await? {
                let last = db::connections::get(db, account_id).await?.and_then(|c| c.last_manual_sync_at);
                return Err(AppError::SyncCooldown { retry_after_seconds: cooldown_remaining(last, now).max(1) });
            }
        }
        let lease_until =
            now + chrono::Duration::from_std(app.config.sync_lease()).unwrap_or(chrono::Duration::seconds(60));
        let run = db::sync_runs::claim(db, account_id, kind, by, &self.worker_id, now, lease_until)
            .await?
            .ok_or(AppError::SyncAlreadyRunning)?;
        self.hub.publish(&run);
        let (tx, rx) = watch::channel(false);
        self.cancels.lock().unwrap_or_else(|p| p.into_inner()).insert(account_id, tx);
        tracing::info!(account_id, run_id = run.id, trigger = kind, "sync started");
        tokio::spawn(engine::execute(app.clone(), run.clone(), conn, rx));
        Ok(run)
    }

    /// After a connect: the first sync. Failures are logged (the connect itself succeeded).
    pub async fn connected(&self, app: &AppState, account_id: i64) {
        if let Err(e) = self.trigger(app, account_id, trigger::INITIAL, None).await {
            tracing::warn!(account_id, error = %e, "the first sync after connecting did not start");
        }
    }

    /// After a disconnect: stops this process's worker at once and tells subscribers.
    pub async fn disconnected(&self, app: &AppState, account_id: i64) {
        if let Some(tx) = self.cancels.lock().unwrap_or_else(|p| p.into_inner()).remove(&account_id) {
            let _ = tx.send(true);
        }
        if let Ok(Some(run)) = db::sync_runs::latest(&app.db, account_id).await {
            self.hub.publish(&run);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cooldown_rounds_up_and_ends() {
        let t0 = Utc::now();
        assert_eq!(cooldown_remaining(None, t0), 0);
        assert_eq!(cooldown_remaining(Some(t0), t0), 30);
        assert_eq!(cooldown_remaining(Some(t0), t0 + chrono::Duration::milliseconds(29_001)), 1);
        assert_eq!(cooldown_remaining(Some(t0), t0 + chrono::Duration::seconds(30)), 0);
        assert_eq!(cooldown_remaining(Some(t0), t0 - chrono::Duration::seconds(5)), 30);
    }
}
