//! Who may score suggestions now. Scoring is CPU work proportional to an account's clients, so
//! it runs on blocking threads behind `SUGGESTION_WORKERS` shared permits. On their own, shared
//! permits would be first come, first served: one account's request over 50 tenants queues 50
//! scorings at once and another account's single one waits behind all of them. So each account
//! first passes a lane of its own (one scoring at a time per account), and only then queues for
//! a shared permit: the shared queue holds at most one waiter per lane, and accounts take turns.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Lanes accounts are spread over (by id); two accounts sharing a lane only share its turn.
const LANES: usize = 64;

/// The shared permits and the per-account lanes.
pub struct ScoringPermits {
    shared: Arc<Semaphore>,
    lanes: Vec<Arc<Semaphore>>,
}

/// Held while one scoring runs.
pub struct ScoringTurn {
    _lane: OwnedSemaphorePermit,
    _shared: OwnedSemaphorePermit,
}

impl ScoringPermits {
    /// `workers` scorings at once across all accounts.
    pub fn new(workers: usize) -> Self {
        Self {
            shared: Arc::new(Semaphore::new(workers.max(1))),
            lanes: (0..LANES).map(|_| Arc::new(Semaphore::new(1))).collect(),
        }
    }

    /// Waits for the account's turn.
    pub async fn turn(&self, account_id: i64) -> ScoringTurn {
        let lane = self.lanes[account_id.rem_euclid(LANES as i64) as usize].clone();
        // Neither semaphore is ever closed.
        let _lane = lane.acquire_owned().await.expect("lanes stay open");
        let _shared = self.shared.clone().acquire_owned().await.expect("the shared semaphore stays open");
        ScoringTurn { _lane, _shared }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    #[tokio::test]
    async fn accounts_take_turns() {
        let permits = Arc::new(ScoringPermits::new(1));
        let order = Arc::new(Mutex::new(vec![]));
        let first = permits.turn(1).await;
        let mut tasks = vec![];
        // Account 1 queues five scorings, then account 2 queues one.
        for account in [1, 1, 1, 1, 1, 2] {
            let (permits, order) = (permits.clone(), order.clone());
            tasks.push(tokio::spawn(async move {
                let _turn = permits.turn(account).await;
                order.lock().unwrap().push(account);
                tokio::task::yield_now().await;
            }));
            tokio::task::yield_now().await;
        }
        drop(first);
        for t in tasks {
            t.await.unwrap();
        }
        let order = order.lock().unwrap().clone();
        // Account 2 waited for at most one more of account 1's scorings, not for all five.
        let pos = order.iter().position(|a| *a == 2).unwrap();
        assert!(pos <= 1, "{order:?}");
    }
}
