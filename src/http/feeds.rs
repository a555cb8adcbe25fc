//! Shared subscription feeds: subscribers of one account who send the same `m365SyncProgress`
//! subscription (same document, operation and variables) share one execution of it. Each state
//! is resolved and serialised once per distinct subscription, not once per subscriber; each
//! subscriber only wraps the shared payload in its own `{"type", "id"}` envelope.
//!
//! The stream a subscriber sees is the one it would see alone:
//! - It gets the feed's latest payload first (the current state) and then every later one.
//! - One that falls behind skips to the latest payload (conflation), never a stale backlog.
//! - A feed ends after the terminal state of the run it followed. A subscriber that joined after
//!   that state (so that state was its *first*, meaning "the last finished run: wait for the
//!   next") starts over on a fresh feed instead of ending, skipping the repeated first payload.
//! - Only a feed whose first answer was data (not a request error) is shared, so every subscriber
//!   still gets its own errors.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use futures_util::{StreamExt, stream::BoxStream};
use tokio::sync::broadcast;

/// Payloads a subscriber may fall behind before it skips to the latest.
const BUFFER: usize = 256;

/// What makes two subscriptions the same.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
pub struct FeedKey {
    pub account_id: i64,
    pub query: String,
    pub operation_name: Option<String>,
    /// The variables as JSON text.
    pub variables: String,
}

/// A running feed's sender and latest payload; `None` once it ended (nobody can join it).
type Live = Option<(broadcast::Sender<Arc<str>>, Arc<str>)>;

/// One running execution and its latest payload.
pub struct Feed {
    state: Mutex<Live>,
}

impl Feed {
    fn lock(&self) -> std::sync::MutexGuard<'_, Live> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The latest payload and a receiver of the later ones; `None` when the feed ended.
    fn join(&self) -> Option<(Arc<str>, broadcast::Receiver<Arc<str>>)> {
        self.lock().as_ref().map(|(tx, last)| (last.clone(), tx.subscribe()))
    }
}

/// The running feeds.
#[derive(Default)]
pub struct Feeds {
    feeds: Mutex<HashMap<FeedKey, Arc<Feed>>>,
}

/// Where a subscriber is in a feed.
pub struct Member {
    feed: Arc<Feed>,
    rx: broadcast::Receiver<Arc<str>>,
    /// The last payload handed out.
    sent: Option<Arc<str>>,
    /// Payloads handed out from this feed.
    count: usize,
    /// Whether this member joined a feed another subscriber started.
    joined: bool,
}

impl Feeds {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<FeedKey, Arc<Feed>>> {
        self.feeds.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Joins the running feed for `key`, if there is one.
    pub fn join(&self, key: &FeedKey) -> Option<Member> {
        let feed = self.map().get(key).cloned()?;
        let (first, rx) = feed.join()?;
        Some(Member { feed, rx, sent: None, count: 0, joined: true }.with_first(first))
    }

    /// Starts a feed for `key` from a stream whose first payload was `first` (already checked to
    /// be data); the stream runs on its own task until it ends or nobody listens.
    pub fn start(self: &Arc<Self>, key: FeedKey, first: Arc<str>, mut rest: BoxStream<'static, Arc<str>>) -> Member {
        let (tx, rx) = broadcast::channel(BUFFER);
        let feed = Arc::new(Feed { state: Mutex::new(Some((tx, first.clone()))) });
        self.map().insert(key.clone(), feed.clone());
        metrics::counter!("subscription_feeds_started_total").increment(1);
        let (feeds, task_feed) = (self.clone(), feed.clone());
        tokio::spawn(async move {
            while let Some(payload) = rest.next().await {
                let mut g = task_feed.lock();
                let Some((tx, last)) = g.as_mut() else { break };
                *last = payload.clone();
                if tx.send(payload).is_err() {
                    break; // nobody listens
                }
            }
            // Ended: nobody joins any more, and members see the end after what was sent.
            task_feed.lock().take();
            let mut map = feeds.map();
            if map.get(&key).is_some_and(|f| Arc::ptr_eq(f, &task_feed)) {
                map.remove(&key);
            }
        });
        Member { feed, rx, sent: None, count: 0, joined: false }.with_first(first)
    }
}

/// What a member does next.
pub enum Next {
    /// Send this payload.
    Payload(Arc<str>),
    /// The feed ended after this member's only payload, which stood for "the last finished run":
    /// follow the next run on a fresh feed, skipping a first payload equal to `repeat`.
    StartOver { repeat: Arc<str> },
    /// The stream is complete.
    End,
}

impl Member {
    fn with_first(mut self, first: Arc<str>) -> Self {
        self.sent = Some(first);
        self
    }

    /// The first payload (the current state).
    pub fn first(&mut self) -> Arc<str> {
        self.count = 1;
        self.sent.clone().expect("set at creation")
    }

    /// The next payload, or what to do instead.
    pub async fn next(&mut self) -> Next {
        loop {
            let payload = match self.rx.recv().await {
                Ok(p) => p,
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    // Skip the backlog: the latest payload, then only what comes after it.
                    metrics::counter!("sync_progress_conflated_total").increment(1);
                    match self.feed.join() {
                        Some((latest, rx)) => {
                            self.rx = rx;
                            if self.sent.as_ref().is_some_and(|s| Arc::ptr_eq(s, &latest)) {
                                continue;
                            }
                            latest
                        }
                        // Ended meanwhile: what is left in the buffer ends with its last payload.
                        None => continue,
                    }
                }
                Err(broadcast::error::RecvError::Closed) => {
                    return match (self.joined, self.count, &self.sent) {
                        (true, 1, Some(only)) => Next::StartOver { repeat: only.clone() },
                        _ => Next::End,
                    };
                }
            };
            if self.sent.as_ref().is_some_and(|s| Arc::ptr_eq(s, &payload)) {
                continue; // the first payload, sent already
            }
            self.sent = Some(payload.clone());
            self.count += 1;
            return Next::Payload(payload);
        }
    }
}

#[cfg(test)]
mod tests {
    use futures_util::stream;
    use tokio::sync::mpsc;

    use super::*;

    fn key() -> FeedKey {
        FeedKey {
            account_id: 1,
            query: "subscription { m365SyncProgress { id } }".into(),
            operation_name: None,
            variables: "{}".into(),
        }
    }

    fn fed() -> (mpsc::UnboundedSender<Arc<str>>, BoxStream<'static, Arc<str>>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (tx, stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|p| (p, rx)) }).boxed())
    }

    async fn drain(m: &mut Member) -> (Vec<String>, bool) {
        let mut got = vec![m.first().to_string()];
        loop {
            match m.next().await {
                Next::Payload(p) => got.push(p.to_string()),
                Next::StartOver { .. } => return (got, true),
                Next::End => return (got, false),
            }
        }
    }

    #[tokio::test]
    async fn members_share_one_execution_and_see_the_same_stream() {
        let feeds = Arc::new(Feeds::default());
        let (tx, rest) = fed();
        let mut a = feeds.start(key(), "s0".into(), rest);
        tx.send("s1".into()).unwrap();
        tokio::task::yield_now().await;
        // B joins now: the current state (s1) first, then what follows.
        let mut b = feeds.join(&key()).expect("a running feed");
        tx.send("s2".into()).unwrap();
        tx.send("end".into()).unwrap();
        drop(tx);
        assert_eq!(drain(&mut a).await, (vec!["s0".into(), "s1".into(), "s2".into(), "end".into()], false));
        assert_eq!(drain(&mut b).await, (vec!["s1".into(), "s2".into(), "end".into()], false));
        tokio::task::yield_now().await;
        assert!(feeds.join(&key()).is_none(), "an ended feed is gone");
    }

    #[tokio::test]
    async fn one_who_joined_after_the_end_starts_over_and_a_slow_one_skips_ahead() {
        let feeds = Arc::new(Feeds::default());
        let (tx, rest) = fed();
        let mut a = feeds.start(key(), "s0".into(), rest);
        for i in 0..(BUFFER + 50) {
            tx.send(format!("s{}", i + 1).into()).unwrap();
        }
        tx.send("end".into()).unwrap();
        // Let the feed publish everything before A reads anything.
        for _ in 0..1000 {
            tokio::task::yield_now().await;
        }
        // C joins after the terminal state but before the feed noticed its end.
        let mut c = feeds.join(&key()).expect("not ended yet");
        drop(tx);
        // A fell behind: it skips to the latest instead of replaying the backlog.
        let (got, over) = drain(&mut a).await;
        assert!(!over);
        assert!(got.len() < BUFFER, "no backlog: {}", got.len());
        assert_eq!(got.last().map(String::as_str), Some("end"));
        // C's only state was the end of a run: it follows the next run on a fresh feed.
        let (got, over) = drain(&mut c).await;
        assert_eq!(got, vec!["end".to_string()]);
        assert!(over);
    }
}
