//! The progress hub: every state of a sync run is published to its account's channel, in order.
//!
//! - States are ordered by [`order`]: run id, then terminal after anything else, then `version`.
//!   The hub keeps the account's latest state and refuses anything older, so a subscriber's
//!   stream only goes forward even when states arrive from several places (this process's worker,
//!   another replica's relay, a repair read of the row).
//! - Buffers are bounded, so a slow subscriber never slows a sync: one that falls behind skips to
//!   the latest state (conflation) instead of replaying a backlog; see the subscription.
//! - Accepted states are handed to the relay (PostgreSQL `NOTIFY`, see [`super::fanout`]) in the
//!   order they were accepted, so other replicas see the same sequence.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, OnceLock},
};

use entity::sync_run;
use tokio::sync::{broadcast, mpsc};

/// How many states a subscriber may fall behind before it skips to the latest.
pub const BUFFER: usize = 256;

/// The order of a run's states: later runs after earlier ones; within a run, the terminal state
/// after every other (a disconnect writes it without knowing the worker's count), then `version`.
pub fn order(m: &sync_run::Model) -> (i64, bool, i64) {
    (m.id, m.status.is_terminal(), m.version)
}

struct Channel {
    tx: broadcast::Sender<Arc<sync_run::Model>>,
    latest: Option<Arc<sync_run::Model>>,
}

/// Per-account channels of run states.
#[derive(Default)]
pub struct Hub {
    channels: Mutex<HashMap<i64, Channel>>,
    relay: OnceLock<mpsc::UnboundedSender<Arc<sync_run::Model>>>,
}

impl Hub {
    fn with<T>(&self, account_id: i64, f: impl FnOnce(&mut Channel) -> T) -> T {
        let mut map = self.channels.lock().unwrap_or_else(|p| p.into_inner());
        let ch = map.entry(account_id).or_insert_with(|| Channel { tx: broadcast::channel(BUFFER).0, latest: None });
        f(ch)
    }

    /// Sends every state this process accepts from now on to `relay` as well (in order).
    pub fn relay_to(&self, relay: mpsc::UnboundedSender<Arc<sync_run::Model>>) {
        let _ = self.relay.set(relay);
    }

    /// Publishes a state this process produced (its worker, or a write it made): to local
    /// subscribers and to the relay. Older than the account's latest: ignored, returns false.
    pub fn publish(&self, run: &sync_run::Model) -> bool {
        self.accept(Arc::new(run.clone()), true)
    }

    /// Publishes a state another replica produced: to local subscribers only.
    pub fn publish_relayed(&self, run: Arc<sync_run::Model>) -> bool {
        self.accept(run, false)
    }

    fn accept(&self, run: Arc<sync_run::Model>, relay: bool) -> bool {
        let mut map = self.channels.lock().unwrap_or_else(|p| p.into_inner());
        let account = run.account_id;
        let ch = map.entry(account).or_insert_with(|| Channel { tx: broadcast::channel(BUFFER).0, latest: None });
        if ch.latest.as_ref().is_some_and(|l| order(l) >= order(&run)) {
            return false;
        }
        if relay && let Some(r) = self.relay.get() {
            let _ = r.send(run.clone());
        }
        if run.status.is_terminal() && ch.tx.receiver_count() == 0 {
            // Nobody here watches and the run is over: keep nothing (an account's last run
            // carries every tenant's result; a process serving many accounts must not hold them
            // all). A subscriber arriving later reads the row.
            map.remove(&account);
            return true;
        }
        ch.latest = Some(run.clone());
        let _ = ch.tx.send(run);
        true
    }

    /// The latest state published for the account, if any.
    pub fn latest(&self, account_id: i64) -> Option<Arc<sync_run::Model>> {
        self.channels.lock().unwrap_or_else(|p| p.into_inner()).get(&account_id).and_then(|c| c.latest.clone())
    }

    /// Whether anyone here is subscribed to the account's runs.
    pub fn watched(&self, account_id: i64) -> bool {
        self.channels
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&account_id)
            .is_some_and(|c| c.tx.receiver_count() > 0)
    }

    /// The accounts someone here is subscribed to.
    pub fn watched_accounts(&self) -> Vec<i64> {
        let map = self.channels.lock().unwrap_or_else(|p| p.into_inner());
        map.iter().filter(|(_, c)| c.tx.receiver_count() > 0).map(|(a, _)| *a).collect()
    }

    /// Subscribes to an account's runs.
    pub fn subscribe(&self, account_id: i64) -> broadcast::Receiver<Arc<sync_run::Model>> {
        self.with(account_id, |ch| ch.tx.subscribe())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use entity::states::{RunStatus, RunTrigger};

    use super::*;

    pub fn run(id: i64, version: i64, status: RunStatus) -> sync_run::Model {
        sync_run::Model {
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
            version,
            updated_at: None,
        }
    }

    #[tokio::test]
    async fn states_only_go_forward_and_reach_the_relay_in_order() {
        let hub = Hub::default();
        let (tx, mut relayed) = mpsc::unbounded_channel();
        hub.relay_to(tx);
        let mut rx = hub.subscribe(1);
        assert!(hub.publish(&run(1, 2, RunStatus::Running)));
        assert!(!hub.publish(&run(1, 1, RunStatus::Running)), "an older state");
        assert!(!hub.publish(&run(1, 2, RunStatus::Running)), "the same state again");
        // A disconnect's terminal state wins over the worker's higher count.
        assert!(hub.publish(&run(1, 1, RunStatus::Cancelled)));
        assert!(!hub.publish(&run(1, 9, RunStatus::Running)), "the worker after the cancel");
        assert!(hub.publish_relayed(Arc::new(run(2, 1, RunStatus::Running))), "a newer run");
        let got: Vec<_> = std::iter::from_fn(|| rx.try_recv().ok()).map(|m| order(&m)).collect();
        assert_eq!(got, vec![(1, false, 2), (1, true, 1), (2, false, 1)]);
        let sent: Vec<_> = std::iter::from_fn(|| relayed.try_recv().ok()).map(|m| order(&m)).collect();
        assert_eq!(sent, vec![(1, false, 2), (1, true, 1)], "relayed states are not relayed again");
        assert_eq!(hub.latest(1).map(|m| order(&m)), Some((2, false, 1)));
        assert_eq!(hub.watched_accounts(), vec![1]);
        drop(rx);
        assert!(!hub.watched(1));
    }

    #[test]
    fn an_ended_run_nobody_watches_is_not_kept() {
        let hub = Hub::default();
        hub.publish(&run(1, 1, RunStatus::Running));
        assert!(hub.latest(1).is_some());
        hub.publish(&run(1, 2, RunStatus::Succeeded));
        assert!(hub.latest(1).is_none(), "nothing held for an idle account");
        // Watched, the end is kept for those who watch.
        let _rx = hub.subscribe(1);
        hub.publish(&run(2, 1, RunStatus::Succeeded));
        assert_eq!(hub.latest(1).map(|m| order(&m)), Some((2, true, 1)));
    }
}
