//! The progress hub: every saved change of a sync run is published to the account's broadcast
//! channel. Buffers are bounded, so a slow subscriber never slows a sync: it lags, and is told.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use entity::sync_run;
use tokio::sync::broadcast;

/// How many updates a subscriber may fall behind before it is told it lagged.
pub const BUFFER: usize = 256;

/// Per-account broadcast channels of run snapshots.
#[derive(Default)]
pub struct Hub {
    channels: Mutex<HashMap<i64, broadcast::Sender<Arc<sync_run::Model>>>>,
}

impl Hub {
    fn sender(&self, account_id: i64) -> broadcast::Sender<Arc<sync_run::Model>> {
        let mut map = self.channels.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(account_id).or_insert_with(|| broadcast::channel(BUFFER).0).clone()
    }

    /// Publishes a run snapshot to its account's subscribers (none listening is fine).
    pub fn publish(&self, run: &sync_run::Model) {
        let _ = self.sender(run.account_id).send(Arc::new(run.clone()));
    }

    /// Subscribes to an account's runs.
    pub fn subscribe(&self, account_id: i64) -> broadcast::Receiver<Arc<sync_run::Model>> {
        self.sender(account_id).subscribe()
    }
}
