//! `m365SyncProgress`.

use std::sync::Arc;

use async_graphql::{Context, ErrorExtensions, Subscription};
use entity::sync_run;
use futures_util::Stream;
use tokio::sync::broadcast::{self, error::RecvError};

use crate::{
    db,
    error::AppError,
    graphql::{ContextExt, m365_reader, types::integration::SyncRun},
};

#[derive(Default)]
pub struct SyncSubscription;

enum Follow {
    /// Yield this first.
    Start(Option<Box<sync_run::Model>>, broadcast::Receiver<Arc<sync_run::Model>>),
    /// Following run `id` (or the next one newer than `after` when `id` is None).
    Following {
        id: Option<i64>,
        after: i64,
        rx: broadcast::Receiver<Arc<sync_run::Model>>,
    },
    Done,
}

fn terminal(m: &sync_run::Model) -> bool {
    m.status.is_terminal()
}

#[Subscription]
impl SyncSubscription {
    /// Live progress of the account's sync.
    ///
    /// Contract: the first event is the current state: the running run, or the last finished one.
    /// If that run is still going, every change follows (phase, tenants total/done/failed, users
    /// synced, current tenant, per-tenant results) and the stream ends after the run's terminal
    /// state (SUCCEEDED, PARTIAL, FAILED, CANCELLED). If it had already finished (or there was
    /// none), the stream waits for the next run and follows that one to its end. Many
    /// subscribers may watch at once; a slow subscriber never slows the sync: if it falls more
    /// than 256 updates behind, it gets an error with `extensions.code` `SUBSCRIPTION_LAGGED`
    /// and the stream ends; subscribe again to get the current state.
    /// Errors: `UNAUTHENTICATED`, `FEATURE_DISABLED`.
    async fn m365_sync_progress(
        &self,
        ctx: &Context<'_>,
    ) -> Result<impl Stream<Item = async_graphql::Result<SyncRun>> + use<>, AppError> {
        let r = m365_reader(ctx).await?;
        let app = ctx.state().clone();
        // Subscribe before reading, so nothing between the read and the first event is missed.
        let rx = app.sync.hub.subscribe(r.account.id);
        let latest = db::sync_runs::latest(&app.db, r.account.id).await?;
        Ok(futures_util::stream::unfold(Follow::Start(latest.map(Box::new), rx), |state| async move {
            match state {
                Follow::Done => None,
                Follow::Start(Some(m), rx) => {
                    let next = if terminal(&m) {
                        Follow::Following { id: None, after: m.id, rx }
                    } else {
                        Follow::Following { id: Some(m.id), after: m.id, rx }
                    };
                    Some((Ok(SyncRun::from(*m)), next))
                }
                Follow::Start(None, rx) => next_event(None, 0, rx).await,
                Follow::Following { id, after, rx } => next_event(id, after, rx).await,
            }
        }))
    }
}

async fn next_event(
    id: Option<i64>,
    after: i64,
    mut rx: broadcast::Receiver<Arc<sync_run::Model>>,
) -> Option<(async_graphql::Result<SyncRun>, Follow)> {
    loop {
        match rx.recv().await {
            Ok(m) => {
                let wanted = match id {
                    Some(id) => m.id == id,
                    None => m.id > after,
                };
                if !wanted {
                    continue;
                }
                let done = terminal(&m);
                let next = if done { Follow::Done } else { Follow::Following { id: Some(m.id), after: m.id, rx } };
                return Some((Ok(SyncRun::from((*m).clone())), next));
            }
            Err(RecvError::Lagged(missed)) => {
                metrics::counter!("sync_progress_lagged_total").increment(1);
                return Some((Err(AppError::SubscriptionLagged { missed }.extend()), Follow::Done));
            }
            Err(RecvError::Closed) => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use entity::states::{RunStatus, RunTrigger};

    use super::*;
    use crate::graphql::types::integration::SyncRunStatus;

    fn run(id: i64, status: RunStatus) -> Arc<sync_run::Model> {
        Arc::new(sync_run::Model {
            id,
            account_id: 1,
            trigger: RunTrigger::Manual,
            status,
            phase: None,
            current_tenant: None,
            tenants_total: 0,
            tenants_done: 0,
            tenants_failed: 0,
            users_synced: 0,
            error: None,
            error_code: None,
            tenant_results: Default::default(),
            lease_owner: None,
            lease_expires_at: None,
            created_by: None,
            created_at: chrono::Utc::now(),
            started_at: None,
            finished_at: None,
        })
    }

    #[tokio::test]
    async fn a_lagging_subscriber_is_told_how_to_recover() {
        let (tx, rx) = broadcast::channel(2);
        for _ in 0..5 {
            tx.send(run(1, RunStatus::Running)).unwrap();
        }
        let (item, next) = next_event(Some(1), 1, rx).await.unwrap();
        let err = item.unwrap_err();
        assert!(err.message.contains("Subscribe to m365SyncProgress again"));
        let ext = err.extensions.unwrap();
        assert_eq!(ext.get("code"), Some(&async_graphql::Value::from("SUBSCRIPTION_LAGGED")));
        assert!(matches!(next, Follow::Done));
    }

    #[tokio::test]
    async fn follows_one_run_to_its_terminal_state() {
        let (tx, rx) = broadcast::channel(8);
        tx.send(run(1, RunStatus::Succeeded)).unwrap(); // an older run: not followed
        tx.send(run(2, RunStatus::Running)).unwrap();
        tx.send(run(2, RunStatus::Partial)).unwrap();
        let (first, next) = next_event(None, 1, rx).await.unwrap();
        assert_eq!(first.unwrap().id, async_graphql::ID::from("2"));
        let Follow::Following { id, after, rx } = next else { panic!("keeps following") };
        let (last, next) = next_event(id, after, rx).await.unwrap();
        assert_eq!(last.unwrap().status, SyncRunStatus::Partial);
        assert!(matches!(next, Follow::Done));
    }
}
