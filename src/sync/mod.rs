//! Syncing Microsoft 365 data: triggers and their guards (cooldown, the lease lock), the status
//! the tab shows, and the engine:
//!
//! - [`lease`]: the sync lock as a lease, and the fence every write passes (its protocol is
//!   written at the top of that module);
//! - [`engine`]: one run, tenant by tenant: [`read`] → [`mfa::resolve`] (registration) and
//!   [`enforcement`] (is MFA required) → [`plan`] → a short fenced write;
//! - [`hub`]: live progress for subscribers; [`schedule`]: periodic syncs.
//!
//! This module answers in domain types ([`SyncStatus`], `sync_run::Model`); GraphQL maps them.

pub mod enforcement;
pub mod engine;
pub mod fanout;
pub mod hub;
pub mod lease;
pub mod mfa;
pub mod plan;
pub mod read;
pub mod schedule;

use std::{collections::HashMap, sync::Mutex, time::Duration};

use chrono::{DateTime, Utc};
use entity::{
    states::{ConnectionStatus, RunStatus, RunTrigger},
    sync_run,
};
use tokio::sync::watch;

use crate::{
    app::AppState,
    db,
    error::{AppError, AppResult},
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

/// Whether a sync is going on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyncState {
    /// No sync is queued or running.
    Idle,
    /// A sync was accepted and waits for a worker.
    Queued,
    /// A sync is running (it holds the sync lock).
    Running,
}

/// The account's sync status ("Refresh Status").
#[derive(Clone, Debug)]
pub struct SyncStatus {
    pub state: SyncState,
    /// Seconds before another manual sync may be triggered (0 when it may be now).
    pub cooldown_remaining_seconds: i64,
    /// The queued or running run.
    pub current_run: Option<sync_run::Model>,
    /// The most recent finished run.
    pub last_run: Option<sync_run::Model>,
    /// When the next scheduled sync is due; None when not connected or scheduling is off.
    pub next_scheduled_at: Option<DateTime<Utc>>,
}

/// The account's sync status now. A run whose worker died (its lease ran out) is failed here
/// first, so "Refresh Status" never shows a dead run as running.
pub async fn status(app: &AppState, account_id: i64) -> Result<SyncStatus, sea_orm::DbErr> {
    let (db, now, interval) = (&app.db, app.clock.now(), app.config.sync_interval);
    let conn = db::connections::get(db, account_id).await?;
    let mut current = db::sync_runs::current(db, account_id).await?;
    if current.as_ref().is_some_and(|r| r.lease_expires_at.is_some_and(|l| l < now)) {
        lease::expire_dead(app, account_id).await?;
        current = db::sync_runs::current(db, account_id).await?;
    }
    let last = db::sync_runs::last_finished(db, account_id).await?;
    let state = match current.as_ref().map(|r| r.status) {
        Some(RunStatus::Running) => SyncState::Running,
        Some(_) => SyncState::Queued,
        None => SyncState::Idle,
    };
    let next_scheduled_at = match (&conn, interval.is_zero()) {
        (Some(c), false) if c.status == ConnectionStatus::Connected => c.next_sync_at,
        _ => None,
    };
    Ok(SyncStatus {
        state,
        cooldown_remaining_seconds: cooldown_remaining(conn.as_ref().and_then(|c| c.last_manual_sync_at), now),
        current_run: current,
        last_run: last,
        next_scheduled_at,
    })
}

/// Starts a sync of the account: `NOT_CONNECTED`, `M365_AUTHORIZATION_REVOKED`,
/// `SYNC_ALREADY_RUNNING` (a live lease), or for manual triggers `SYNC_COOLDOWN`.
pub async fn trigger(
    app: &AppState,
    account_id: i64,
    kind: RunTrigger,
    by: Option<&str>,
) -> AppResult<sync_run::Model> {
    let db = &app.db;
    let now = app.clock.now();
    let conn = db::connections::get(db, account_id).await?.ok_or(AppError::NotConnected)?;
    if conn.status != ConnectionStatus::Connected {
        return Err(AppError::AuthorizationRevoked);
    }
    lease::expire_dead(app, account_id).await?;
    if db::sync_runs::current(db, account_id).await?.is_some() {
        return Err(AppError::SyncAlreadyRunning);
    }
    if kind == RunTrigger::Manual {
        let cooldown = chrono::Duration::from_std(MANUAL_COOLDOWN).expect("30 s");
        if !db::connections::take_manual_slot(db, conn.id, now, cooldown).await? {
            let last = db::connections::get(db, account_id).await?.and_then(|c| c.last_manual_sync_at);
            return Err(AppError::SyncCooldown { retry_after_seconds: cooldown_remaining(last, now).max(1) });
        }
    }
    let run = lease::claim(app, account_id, kind, by).await?.ok_or(AppError::SyncAlreadyRunning)?;
    app.sync.hub.publish(&run);
    let rx = app.sync.cancel_channel(account_id);
    tracing::info!(account_id, run_id = run.id, trigger = ?kind, "sync started");
    // A trace of its own (a run outlives the request that started it), linked to the request.
    let span = tracing::info_span!(parent: None, "sync_run", run_id = run.id, account_id, trigger = ?kind, status = tracing::field::Empty);
    span.follows_from(tracing::Span::current());
    tokio::spawn(tracing::Instrument::instrument(engine::execute(app.clone(), run.clone(), conn, rx), span));
    Ok(run)
}

/// After a connect: the first sync. Failures are logged (the connect itself succeeded).
pub async fn connected(app: &AppState, account_id: i64) {
    if let Err(e) = trigger(app, account_id, RunTrigger::Initial, None).await {
        tracing::warn!(account_id, error = %e, "the first sync after connecting did not start");
    }
}

/// After a disconnect: stops this process's worker at once and tells subscribers.
pub async fn disconnected(app: &AppState, account_id: i64) {
    app.sync.cancel(account_id);
    fanout::send_cancel(app, account_id).await;
    if let Ok(Some(run)) = db::sync_runs::latest(&app.db, account_id).await {
        app.sync.hub.publish(&run);
    }
}

/// The message a run stopped by a draining replica ends with.
pub const DRAINED_MESSAGE: &str = "Stopped: the server running this sync shut down. Another server takes it over at once (its scheduled sync is due now); trigger a sync to restart it yourself.";

/// Drains this process's syncs (SIGTERM): every run it holds is stopped, ends CANCELLED (which
/// releases the lock at once instead of after `SYNC_LEASE_SECS`), and its connection's scheduled
/// sync is made due now, so another replica's scheduler takes the account over. Waits up to
/// `wait` for the runs to end; returns how many were still running after it.
pub async fn drain(app: &AppState, wait: std::time::Duration) -> usize {
    app.sync.draining.store(true, std::sync::atomic::Ordering::Relaxed);
    // Only the accounts whose run this worker holds now: an account synced earlier by this
    // process must not get an extra sync from a deploy.
    let accounts = match db::sync_runs::active_accounts_of_worker(&app.db, &app.sync.worker_id).await {
        Ok(a) => a,
        Err(e) => {
            tracing::warn!(error = %e, "draining: reading runs failed");
            vec![]
        }
    };
    for a in &accounts {
        app.sync.cancel(*a);
    }
    let deadline = tokio::time::Instant::now() + wait;
    let mut left = usize::MAX;
    while tokio::time::Instant::now() < deadline {
        left = match db::sync_runs::active_of_worker(&app.db, &app.sync.worker_id).await {
            Ok(n) => n as usize,
            Err(e) => {
                tracing::warn!(error = %e, "draining: reading runs failed");
                break;
            }
        };
        if left == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    for a in accounts {
        if let Err(e) = db::connections::schedule_now(&app.db, a, app.clock.now()).await {
            tracing::warn!(account_id = a, error = %e, "draining: handing the sync over failed");
        }
    }
    let left = if left == usize::MAX { 0 } else { left };
    tracing::info!(still_running = left, "sync workers drained");
    left
}

/// This process's sync state: the progress hub, its worker id and its runs' cancel switches.
pub struct SyncService {
    /// Progress of every run, per account.
    pub hub: hub::Hub,
    /// This process's worker id (lease owner).
    pub worker_id: String,
    cancels: Mutex<HashMap<i64, watch::Sender<bool>>>,
    /// Set when this process drains (SIGTERM): its runs stop and say why.
    draining: std::sync::atomic::AtomicBool,
}

impl Default for SyncService {
    fn default() -> Self {
        Self {
            hub: hub::Hub::default(),
            worker_id: format!("worker-{}", uuid::Uuid::new_v4()),
            cancels: Mutex::default(),
            draining: std::sync::atomic::AtomicBool::new(false),
        }
    }
}

impl SyncService {
    /// A fresh cancel switch for the account's run in this process.
    fn cancel_channel(&self, account_id: i64) -> watch::Receiver<bool> {
        let (tx, rx) = watch::channel(false);
        self.cancels.lock().unwrap_or_else(|p| p.into_inner()).insert(account_id, tx);
        rx
    }

    /// Whether this process is draining.
    pub fn is_draining(&self) -> bool {
        self.draining.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Flips the account's cancel switch, if a run of this process has one.
    pub fn cancel(&self, account_id: i64) {
        if let Some(tx) = self.cancels.lock().unwrap_or_else(|p| p.into_inner()).remove(&account_id) {
            let _ = tx.send(true);
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
