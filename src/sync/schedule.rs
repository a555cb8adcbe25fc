//! Scheduled syncs: every connected account is synced each `SYNC_INTERVAL`. Each process polls
//! for due connections; claiming a due slot is a conditional update (with `FOR UPDATE SKIP
//! LOCKED` on PostgreSQL), so with several processes each slot runs once.

use std::time::Duration;

use entity::states::RunTrigger;

use super::lease;
use crate::{app::AppState, db, error::AppError};

/// How often to look for due syncs.
pub fn tick(interval: Duration) -> Duration {
    interval.min(Duration::from_secs(30)).max(Duration::from_millis(200))
}

/// One pass: claims due connections and starts their syncs. Returns how many started.
pub async fn run_once(app: &AppState) -> Result<usize, sea_orm::DbErr> {
    if app.sync.is_draining() {
        // A draining process hands its slots to the other replicas.
        return Ok(0);
    }
    let interval = app.config.sync_interval;
    let now = app.clock.now();
    lease::expire_dead_everywhere(app).await?;
    let next = now + chrono::Duration::from_std(interval).unwrap_or(chrono::Duration::hours(6));
    let txn = db::write_txn(&app.db).await?;
    let due = db::connections::due_for_schedule(&txn, now, 50).await?;
    let mut claimed = vec![];
    for c in due {
        if db::connections::claim_schedule(&txn, c.id, c.next_sync_at, next).await? {
            claimed.push(c);
        }
    }
    txn.commit().await?;
    let mut started = 0;
    for c in claimed {
        // A connection that has never been scheduled only gets its first slot.
        if c.next_sync_at.is_none() {
            continue;
        }
        match super::trigger(app, c.account_id, RunTrigger::Scheduled, None).await {
            Ok(_) => started += 1,
            Err(AppError::SyncAlreadyRunning) => {}
            Err(e) => tracing::warn!(account_id = c.account_id, error = %e, "scheduled sync did not start"),
        }
    }
    Ok(started)
}

/// Polls forever (until the runtime stops). A zero interval disables scheduling, but dead
/// leases are still expired on a timer, so no run stays `RUNNING` after its worker died.
pub async fn run(app: AppState) {
    let interval = app.config.sync_interval;
    loop {
        if interval.is_zero() {
            tokio::time::sleep(tick(app.config.sync_lease())).await;
            if let Err(e) = lease::expire_dead_everywhere(&app).await {
                tracing::warn!(error = %e, "expiring dead sync runs failed");
            }
            continue;
        }
        tokio::time::sleep(tick(interval)).await;
        if let Err(e) = run_once(&app).await {
            tracing::warn!(error = %e, "scheduling syncs failed");
        }
    }
}
