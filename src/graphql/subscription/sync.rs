//! `m365SyncProgress`.

use std::sync::Arc;

use async_graphql::{Context, Subscription};
use entity::sync_run;
use futures_util::Stream;
use tokio::sync::broadcast::{
    self,
    error::{RecvError, TryRecvError},
};

use crate::{
    app::AppState,
    db,
    error::AppError,
    graphql::{ContextExt, m365_reader, types::integration::SyncRun},
    sync::hub,
};

#[derive(Default)]
pub struct SyncSubscription;

/// Where a subscriber catches up from: the hub's latest state and the stored rows.
trait Source: Send + Sync + 'static {
    /// The latest state published for the account.
    fn latest(&self, account_id: i64) -> Option<Arc<sync_run::Model>>;
    /// Run `id` as stored.
    fn stored(&self, account_id: i64, id: i64) -> impl Future<Output = Option<sync_run::Model>> + Send;
}

impl Source for AppState {
    fn latest(&self, account_id: i64) -> Option<Arc<sync_run::Model>> {
        self.sync.hub.latest(account_id)
    }

    async fn stored(&self, account_id: i64, id: i64) -> Option<sync_run::Model> {
        db::sync_runs::get(&self.db, account_id, id).await.ok().flatten()
    }
}

/// One subscriber's place in its account's stream.
struct Follow<S> {
    source: S,
    account_id: i64,
    rx: broadcast::Receiver<Arc<sync_run::Model>>,
    /// The state to send first (the current one when subscribing).
    first: Option<Arc<sync_run::Model>>,
    /// A state taken from `rx` while looking for the newest of a run, which belongs to the next.
    pending: Option<Arc<sync_run::Model>>,
    /// The run followed; `None` until a run newer than `after` appears.
    run: Option<i64>,
    after: i64,
    /// The order of the last state sent: nothing older or equal is sent again.
    sent: Option<(i64, bool, i64)>,
}

impl<S: Source> Follow<S> {
    /// Whether `m` is a state this subscriber still needs.
    fn wants(&self, m: &sync_run::Model) -> bool {
        let run_ok = match self.run {
            Some(id) => m.id == id,
            None => m.id > self.after,
        };
        run_ok && self.sent.is_none_or(|s| hub::order(m) > s)
    }

    /// Records `m` as sent; `true` when the stream ends with it.
    fn sent(&mut self, m: &sync_run::Model) -> bool {
        self.sent = Some(hub::order(m));
        self.run = Some(m.id);
        m.status.is_terminal()
    }

    /// The next state to send: the newest of its run that has arrived (conflation: a subscriber
    /// that keeps up gets every state in order, one that fell behind skips to the newest, never
    /// a backlog); the followed run's terminal state always. `None` ends the stream; the flag
    /// says the state is the last one.
    async fn next(&mut self) -> Option<(Arc<sync_run::Model>, bool)> {
        if let Some(m) = self.first.take() {
            if m.status.is_terminal() {
                // A finished run: wait for the next one.
                self.sent = Some(hub::order(&m));
                self.after = m.id;
            } else {
                self.sent(&m);
            }
            return Some((m, false));
        }
        loop {
            let m = match self.pending.take() {
                Some(m) => Ok(m),
                None => self.rx.recv().await,
            };
            let m = match m {
                Ok(m) => self.newest(m),
                Err(RecvError::Lagged(_)) => {
                    // Skip the backlog: only what comes after the latest state.
                    metrics::counter!("sync_progress_conflated_total").increment(1);
                    self.rx = self.rx.resubscribe();
                    match self.source.latest(self.account_id) {
                        Some(m) => m,
                        None => continue,
                    }
                }
                Err(RecvError::Closed) => return None,
            };
            if let Some(run) = self.run
                && m.id > run
            {
                // A newer run began before this one's end reached us: its end is in the row.
                if let Some(row) = self.source.stored(self.account_id, run).await
                    && row.status.is_terminal()
                    && self.wants(&row)
                {
                    let end = self.sent(&row);
                    return Some((Arc::new(row), end));
                }
                continue;
            }
            if self.wants(&m) {
                let end = self.sent(&m);
                return Some((m, end));
            }
        }
    }

    /// The newest state of `m`'s run that has arrived; a state of a later run stays pending.
    fn newest(&mut self, mut m: Arc<sync_run::Model>) -> Arc<sync_run::Model> {
        let mut skipped = false;
        loop {
            let newer = match self.rx.try_recv() {
                Ok(n) => n,
                Err(TryRecvError::Lagged(_)) => {
                    self.rx = self.rx.resubscribe();
                    match self.source.latest(self.account_id) {
                        Some(n) => n,
                        None => break,
                    }
                }
                Err(TryRecvError::Empty | TryRecvError::Closed) => break,
            };
            if newer.id != m.id {
                self.pending = Some(newer);
                break;
            }
            if hub::order(&newer) > hub::order(&m) {
                m = newer;
                skipped = true;
            }
        }
        if skipped {
            metrics::counter!("sync_progress_conflated_total").increment(1);
        }
        m
    }
}

#[Subscription]
impl SyncSubscription {
    /// Live progress of the account's sync.
    ///
    /// Contract: the first event is the current state: the running run, or the last finished one.
    /// If that run is still going, its changes follow in order (phase, tenants total/done/failed,
    /// users synced, current tenant, per-tenant results; `version` goes up with each) and the
    /// stream ends after the run's terminal state (SUCCEEDED, PARTIAL, FAILED, CANCELLED). If it
    /// had already finished (or there was none), the stream waits for the next run and follows
    /// that one to its end. The same stream reaches subscribers on every server, whichever runs
    /// the sync. Many subscribers may watch at once and a slow one never slows the sync: a
    /// subscriber that is not ready for a change when the next one comes (it is still receiving
    /// the one before) gets only the newest, never a backlog (each state is complete, so nothing
    /// is lost but intermediate steps; `version` shows what was skipped), and the terminal state
    /// always arrives.
    /// Errors: `UNAUTHENTICATED`, `FEATURE_DISABLED`.
    async fn m365_sync_progress(
        &self,
        ctx: &Context<'_>,
    ) -> Result<impl Stream<Item = async_graphql::Result<SyncRun>> + use<>, AppError> {
        let r = m365_reader(ctx).await?;
        let app = ctx.state().clone();
        let account_id = r.account.id;
        // Subscribe before reading, so nothing between the read and the first event is missed.
        let rx = app.sync.hub.subscribe(account_id);
        let stored = db::sync_runs::latest(&app.db, account_id).await?.map(Arc::new);
        // The hub may be ahead of the row (progress is stored at most every second).
        let first = match (stored, app.sync.hub.latest(account_id)) {
            (Some(s), Some(h)) => Some(if hub::order(&h) > hub::order(&s) { h } else { s }),
            (s, h) => s.or(h),
        };
        let follow = Follow { source: app, account_id, rx, first, pending: None, run: None, after: 0, sent: None };
        Ok(futures_util::stream::unfold(Some(follow), |state| async move {
            let mut f = state?;
            let (m, last) = f.next().await?;
            Some((Ok(SyncRun::from(m)), (!last).then_some(f)))
        }))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use entity::states::RunStatus;

    use super::*;
    use crate::sync::hub::{Hub, tests::run};

    #[derive(Clone, Default)]
    struct Fake {
        hub: Arc<Hub>,
        rows: Arc<HashMap<i64, sync_run::Model>>,
    }

    impl Source for Fake {
        fn latest(&self, account_id: i64) -> Option<Arc<sync_run::Model>> {
            self.hub.latest(account_id)
        }

        async fn stored(&self, _: i64, id: i64) -> Option<sync_run::Model> {
            self.rows.get(&id).cloned()
        }
    }

    fn follow(fake: &Fake, first: Option<sync_run::Model>) -> Follow<Fake> {
        let rx = fake.hub.subscribe(1);
        Follow {
            source: fake.clone(),
            account_id: 1,
            rx,
            first: first.map(Arc::new),
            pending: None,
            run: None,
            after: 0,
            sent: None,
        }
    }

    async fn drain(f: &mut Follow<Fake>) -> Vec<(i64, bool, i64)> {
        let mut got = vec![];
        while let Some((m, last)) = f.next().await {
            got.push(hub::order(&m));
            if last {
                break;
            }
        }
        got
    }

    #[tokio::test]
    async fn follows_the_next_run_in_order_to_its_terminal_state() {
        let fake = Fake::default();
        let mut f = follow(&fake, Some(run(1, 5, RunStatus::Succeeded)));
        let mut got = vec![hub::order(&f.next().await.unwrap().0)];
        // Read as they come: every state, in order.
        for m in [run(2, 1, RunStatus::Running), run(2, 2, RunStatus::Running), run(2, 3, RunStatus::Partial)] {
            fake.hub.publish(&m);
            let (m, last) = f.next().await.unwrap();
            got.push(hub::order(&m));
            assert_eq!(last, m.status.is_terminal());
        }
        assert_eq!(got, vec![(1, true, 5), (2, false, 1), (2, false, 2), (2, true, 3)]);
    }

    #[tokio::test]
    async fn states_that_arrived_together_are_sent_as_the_newest_and_a_later_run_waits_its_turn() {
        let fake = Fake::default();
        let mut f = follow(&fake, Some(run(1, 5, RunStatus::Succeeded)));
        // Three states of run 2 before this subscriber reads: only the newest.
        for v in 1..=3 {
            fake.hub.publish(&run(2, v, RunStatus::Running));
        }
        assert_eq!(hub::order(&f.next().await.unwrap().0), (1, true, 5));
        assert_eq!(hub::order(&f.next().await.unwrap().0), (2, false, 3));
        // Run 2's end and run 3's start together: the end is not skipped for the newer run.
        fake.hub.publish(&run(2, 4, RunStatus::Succeeded));
        fake.hub.publish(&run(3, 1, RunStatus::Running));
        assert_eq!(drain(&mut f).await, vec![(2, true, 4)]);
    }

    #[tokio::test]
    async fn a_subscriber_that_fell_behind_gets_the_latest_state_then_the_end() {
        let fake = Fake::default();
        let mut f = follow(&fake, Some(run(2, 1, RunStatus::Running)));
        // Far more changes than the buffer holds, before this subscriber reads any.
        for v in 2..=(hub::BUFFER as i64 + 100) {
            fake.hub.publish(&run(2, v, RunStatus::Running));
        }
        let last = hub::BUFFER as i64 + 101;
        let got = drain_until(&mut f, 2, || fake.hub.publish(&run(2, last, RunStatus::Succeeded))).await;
        assert_eq!(got[0], (2, false, 1));
        assert!(got.len() < 10, "no backlog replayed: {} states", got.len());
        assert!(got.windows(2).all(|w| w[0] < w[1]), "only forward: {got:?}");
        assert_eq!(got.last(), Some(&(2, true, last)), "the terminal state arrives");
    }

    #[tokio::test]
    async fn one_that_falls_behind_while_looking_for_the_newest_takes_the_latest() {
        let fake = Fake::default();
        let mut f = follow(&fake, None);
        // Taken from the channel (v1), then more states than it holds before the next look.
        let taken = Arc::new(run(2, 1, RunStatus::Running));
        for v in 2..=(hub::BUFFER as i64 + 50) {
            fake.hub.publish(&run(2, v, RunStatus::Running));
        }
        let newest = f.newest(taken);
        assert_eq!(hub::order(&newest), (2, false, hub::BUFFER as i64 + 50), "the hub's latest, no backlog");
        // Caught up: the next state is the next one published.
        fake.hub.publish(&run(2, hub::BUFFER as i64 + 51, RunStatus::Succeeded));
        assert_eq!(drain(&mut f).await, vec![(2, true, hub::BUFFER as i64 + 51)]);
    }

    /// Reads `n` states, runs `then`, and reads the rest.
    async fn drain_until(f: &mut Follow<Fake>, n: usize, then: impl FnOnce() -> bool) -> Vec<(i64, bool, i64)> {
        let mut got = vec![];
        for _ in 0..n {
            got.push(hub::order(&f.next().await.unwrap().0));
        }
        then();
        got.extend(drain(f).await);
        got
    }

    #[tokio::test]
    async fn a_run_whose_end_was_overtaken_by_the_next_run_still_ends() {
        let mut rows = HashMap::new();
        rows.insert(2, run(2, 4, RunStatus::Cancelled));
        let fake = Fake { hub: Arc::default(), rows: Arc::new(rows) };
        let mut f = follow(&fake, Some(run(2, 3, RunStatus::Running)));
        // Run 3 reaches this replica before run 2's end (the hub then refuses run 2's end).
        fake.hub.publish(&run(3, 1, RunStatus::Running));
        fake.hub.publish(&run(2, 4, RunStatus::Cancelled));
        assert_eq!(drain(&mut f).await, vec![(2, false, 3), (2, true, 4)], "the end is read from the row");
    }
}
