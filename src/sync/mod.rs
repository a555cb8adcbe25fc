//! Syncing Microsoft 365 data: the status the tab shows, the guards on triggers, and (as the
//! engine lands) the steps, the lease lock and the progress hub.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sea_orm::ConnectionTrait;

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

/// The account's sync status at `now`.
pub async fn status(
    db: &impl ConnectionTrait,
    account_id: i64,
    now: DateTime<Utc>,
    interval: Duration,
) -> Result<SyncStatus, sea_orm::DbErr> {
    let conn = db::connections::get(db, account_id).await?;
    let current = db::sync_runs::current(db, account_id).await?;
    let last = db::sync_runs::last_finished(db, account_id).await?;
    let state = match current.as_ref().map(|r| r.status.as_str()) {
        Some("running") => SyncState::Running,
        Some(_) => SyncState::Queued,
        None => SyncState::Idle,
    };
    let next_scheduled_at = match (&conn, interval.is_zero()) {
        (Some(c), false) if c.status == "connected" => {
            let base = last.as_ref().map(|r| r.created_at).unwrap_or(c.connected_at);
            Some(base + chrono::Duration::from_std(interval).unwrap_or(chrono::Duration::hours(6)))
        }
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
