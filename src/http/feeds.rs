//! Shared subscription feeds: subscribers of one account who send the same `m365SyncProgress`
//! subscription (same document, operation and variables) share one execution of it. Each state
//! is resolved and serialised once per distinct subscription, not once per subscriber; each
//! subscriber only wraps the shared payload in its own `{"type", "id"}` envelope.
//!
//! The stream a subscriber sees is the one it would see alone:
//! - It gets the feed's latest payload first (the current state), then every later one it is
//!   ready for: one that is not (its task has not run since the last payload, or its socket is
//!   still taking the one before) finds the newest waiting and skips to it (conflation), never a
//!   backlog. The feed keeps only its latest payload (a `watch` channel), however many members.
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
use tokio::sync::watch;

/// A feed's latest payload and its number (1 for the first), so a member knows how many it
/// skipped.
type Latest = (u64, Arc<str>);

/// What makes two subscriptions the same.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
pub struct FeedKey {
    pub account_id: i64,
    pub query: String,
    pub operation_name: Option<String>,
    /// The variables as JSON text.
    pub variables: String,
}

/// A feed's life.
enum Live {
    /// Its first subscriber is waiting for the first answer; others wait for it too.
    Starting,
    /// Running: the latest payload, held by its sender.
    Running(watch::Sender<Latest>),
    /// Ended, or its first answer was not data: nobody can join it.
    Over,
}

/// One execution shared by its members.
pub struct Feed {
    state: Mutex<Live>,
    /// Flips to true when the feed leaves `Starting`.
    settled: tokio::sync::watch::Sender<bool>,
}

impl Feed {
    fn lock(&self) -> std::sync::MutexGuard<'_, Live> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The latest payload and a receiver of the later ones; `None` unless running.
    fn join(&self) -> Option<watch::Receiver<Latest>> {
        match &*self.lock() {
            Live::Running(tx) => Some(tx.subscribe()),
            _ => None,
        }
    }

    fn settle(&self, live: Live) {
        *self.lock() = live;
        self.settled.send_replace(true);
    }
}

/// The running feeds.
#[derive(Default)]
pub struct Feeds {
    feeds: Mutex<HashMap<FeedKey, Arc<Feed>>>,
    /// Per account, the latest check of whether its subscribers may join (see [`Feeds::admits`]).
    checks: Mutex<HashMap<i64, Check>>,
}

/// One check of an account, shared by everyone who asks while it is fresh.
#[derive(Clone)]
struct Check {
    at: std::time::Instant,
    answer: Arc<tokio::sync::OnceCell<bool>>,
}

/// How long one answer to "may this account's subscribers join" serves everyone who asks.
pub const CHECK_FRESH: std::time::Duration = std::time::Duration::from_secs(1);

/// Where a subscriber is in a feed.
pub struct Member {
    /// The feed's latest payload; `changed` wakes the member when there is a newer one.
    rx: watch::Receiver<Latest>,
    /// The last payload handed out, and its number.
    sent: Option<Latest>,
    /// Payloads handed out from this feed.
    count: usize,
    /// Whether this member joined a feed another subscriber started.
    joined: bool,
}

/// A subscriber's way into the feed of its subscription.
pub enum Entry {
    /// A running feed, joined.
    Join(Member),
    /// No feed ran: this subscriber executes the subscription and starts one with
    /// [`Starter::start`] (or drops the starter when the first answer is an error).
    Start(Starter),
}

/// The right (and duty) to start a feed; concurrent subscribers of the same subscription wait
/// for it instead of executing it again.
pub struct Starter {
    feeds: Arc<Feeds>,
    key: FeedKey,
    feed: Arc<Feed>,
    started: bool,
}

impl Drop for Starter {
    fn drop(&mut self) {
        if !self.started {
            // The first answer was an error (or the subscriber left): whoever waits executes
            // the subscription on its own, and gets its own answer.
            self.feeds.forget(&self.key, &self.feed);
            self.feed.settle(Live::Over);
        }
    }
}

impl Feeds {
    /// Whether `account`'s subscribers may join its feeds, asking `check` at most once per
    /// account per [`CHECK_FRESH`]: when hundreds of dashboards connect at once, one database
    /// read answers them all, instead of hundreds of reads (each a large future) in flight
    /// together. A check that fails (`None`) is not kept.
    pub async fn admits<F, Fut>(&self, account: i64, check: F) -> bool
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Option<bool>>,
    {
        let cell = {
            let mut checks = self.checks.lock().unwrap_or_else(|p| p.into_inner());
            let now = std::time::Instant::now();
            checks.retain(|_, c| now.duration_since(c.at) < CHECK_FRESH);
            checks
                .entry(account)
                .or_insert_with(|| Check { at: now, answer: Arc::new(tokio::sync::OnceCell::new()) })
                .answer
                .clone()
        };
        match cell.get_or_try_init(|| async { check().await.ok_or(()) }).await {
            Ok(admitted) => *admitted,
            Err(()) => false,
        }
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<FeedKey, Arc<Feed>>> {
        self.feeds.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Removes `feed` from the map if it is still the one for `key`.
    fn forget(&self, key: &FeedKey, feed: &Arc<Feed>) {
        let mut map = self.map();
        if map.get(key).is_some_and(|f| Arc::ptr_eq(f, feed)) {
            map.remove(key);
        }
    }

    /// Joins the feed of `key`, waiting for one that is starting; or, when none runs, the right
    /// to start it.
    pub async fn enter(self: &Arc<Self>, key: &FeedKey) -> Entry {
        loop {
            let feed = {
                let mut map = self.map();
                match map.get(key) {
                    Some(f) => f.clone(),
                    None => {
                        let feed = Arc::new(Feed {
                            state: Mutex::new(Live::Starting),
                            settled: tokio::sync::watch::channel(false).0,
                        });
                        map.insert(key.clone(), feed.clone());
                        return Entry::Start(Starter { feeds: self.clone(), key: key.clone(), feed, started: false });
                    }
                }
            };
            let mut settled = feed.settled.subscribe();
            let _ = settled.wait_for(|s| *s).await;
            if let Some(rx) = feed.join() {
                return Entry::Join(Member::new(rx, true));
            }
            // It ended or failed (and left the map first): look again.
            self.forget(key, &feed);
        }
    }
}

impl Starter {
    /// Starts the feed from a stream whose first payload was `first` (checked to be data); the
    /// stream runs on its own task until it ends or nobody listens.
    pub fn start(mut self, first: Arc<str>, mut rest: BoxStream<'static, Arc<str>>) -> Member {
        self.started = true;
        let (tx, rx) = watch::channel((1, first));
        self.feed.settle(Live::Running(tx));
        metrics::counter!("subscription_feeds_started_total").increment(1);
        let (feeds, key, task_feed) = (self.feeds.clone(), self.key.clone(), self.feed.clone());
        tokio::spawn(async move {
            let mut number = 1;
            while let Some(payload) = rest.next().await {
                number += 1;
                let g = task_feed.lock();
                let Live::Running(tx) = &*g else { break };
                if tx.send((number, payload)).is_err() {
                    break; // nobody listens
                }
            }
            // Ended: out of the map first (so nobody finds it), then closed; members see the
            // end after what was sent.
            feeds.forget(&key, &task_feed);
            task_feed.settle(Live::Over);
        });
        Member::new(rx, false)
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
    /// A member whose first payload is the feed's latest now.
    fn new(mut rx: watch::Receiver<Latest>, joined: bool) -> Self {
        let first = rx.borrow_and_update().clone();
        Member { rx, sent: Some(first), count: 0, joined }
    }

    /// The first payload (the current state).
    pub fn first(&mut self) -> Arc<str> {
        self.count = 1;
        self.sent.as_ref().expect("set at creation").1.clone()
    }

    /// The next payload, or what to do instead. The feed's latest one: a member that was not
    /// ready when a payload came (its task had not run yet, or its socket was still taking the
    /// one before) finds a newer one waiting and skips to it (conflation: never a backlog).
    pub async fn next(&mut self) -> Next {
        loop {
            if self.rx.changed().await.is_err() {
                // The feed ended, and this member has its last payload.
                return match (self.joined, self.count, &self.sent) {
                    (true, 1, Some((_, only))) => Next::StartOver { repeat: only.clone() },
                    _ => Next::End,
                };
            }
            let (number, payload) = self.rx.borrow_and_update().clone();
            let before = self.sent.as_ref().map_or(0, |s| s.0);
            if number <= before {
                continue;
            }
            if number > before + 1 {
                metrics::counter!("sync_progress_conflated_total").increment(1);
            }
            self.sent = Some((number, payload.clone()));
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

    /// A burst of joiners of one account asks the database once; a failed check is not kept;
    /// the answer goes stale after `CHECK_FRESH`.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn one_check_serves_a_burst() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let feeds = Arc::new(Feeds::default());
        let asked = Arc::new(AtomicUsize::new(0));
        let check = |answer: Option<bool>| {
            let asked = asked.clone();
            move || async move {
                asked.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                answer
            }
        };
        assert!(!feeds.admits(7, check(None)).await, "a failed check admits nobody");
        let joiners: Vec<_> = (0..100)
            .map(|_| {
                let (feeds, check) = (feeds.clone(), check(Some(true)));
                tokio::spawn(async move { feeds.admits(7, check).await })
            })
            .collect();
        for j in joiners {
            assert!(j.await.unwrap());
        }
        assert_eq!(asked.load(Ordering::SeqCst), 2, "the failed check, then one for the burst");
        assert!(!feeds.admits(8, check(Some(false))).await, "another account has its own answer");
        tokio::time::sleep(CHECK_FRESH).await;
        assert!(!feeds.admits(7, check(Some(false))).await, "a stale answer is asked again");
        assert_eq!(asked.load(Ordering::SeqCst), 4);
    }

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
        let Entry::Start(starter) = feeds.enter(&key()).await else { panic!("nothing runs yet") };
        // B arrives while A still waits for its first answer: B waits for A's feed.
        let waiting = tokio::spawn({
            let feeds = feeds.clone();
            async move { feeds.enter(&key()).await }
        });
        tokio::task::yield_now().await;
        let mut a = starter.start("s0".into(), rest);
        tx.send("s1".into()).unwrap();
        tokio::task::yield_now().await;
        let Entry::Join(mut b) = waiting.await.unwrap() else { panic!("B joins A's feed") };
        tx.send("s2".into()).unwrap();
        tx.send("end".into()).unwrap();
        drop(tx);
        // Neither read while s1, s2 and the end came: each ends with the end, no backlog owed.
        let (got, over) = drain(&mut a).await;
        assert!(!over);
        assert_eq!(got.first().map(String::as_str), Some("s0"));
        assert_eq!(got.last().map(String::as_str), Some("end"));
        let (got, over) = drain(&mut b).await;
        assert!(!over);
        assert_eq!(got.last().map(String::as_str), Some("end"));
        assert!(got.first().is_some_and(|f| f == "s0" || f == "s1"), "the state current when it joined: {got:?}");
        tokio::task::yield_now().await;
        assert!(matches!(feeds.enter(&key()).await, Entry::Start(_)), "an ended feed is gone");
    }

    /// A running feed whose first payload was "s0", the sender of its later ones, and the member
    /// that started it.
    async fn started() -> (Arc<Feeds>, mpsc::UnboundedSender<Arc<str>>, Member) {
        let feeds = Arc::new(Feeds::default());
        let (tx, rest) = fed();
        let Entry::Start(starter) = feeds.enter(&key()).await else { panic!("nothing runs yet") };
        let first = starter.start("s0".into(), rest);
        (feeds, tx, first)
    }

    /// Polls the feed's task until it has taken everything sent so far.
    async fn settle() {
        for _ in 0..100 {
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test]
    async fn a_member_that_keeps_up_gets_every_payload_and_one_that_falls_behind_only_the_newest() {
        let (feeds, tx, mut quick) = started().await;
        let Entry::Join(mut slow) = feeds.enter(&key()).await else { panic!("running") };
        assert_eq!(&*quick.first(), "s0");
        assert_eq!(&*slow.first(), "s0");
        for i in 1..=5 {
            tx.send(format!("s{i}").into()).unwrap();
            settle().await;
            let Next::Payload(p) = quick.next().await else { panic!("running") };
            assert_eq!(&*p, format!("s{i}"), "in step: every payload, in order");
        }
        // The slow member did not read while five came: only the newest, no backlog.
        let Next::Payload(p) = slow.next().await else { panic!("running") };
        assert_eq!(&*p, "s5");
        tx.send("end".into()).unwrap();
        drop(tx);
        settle().await;
        for m in [&mut quick, &mut slow] {
            let Next::Payload(p) = m.next().await else { panic!("the end is delivered") };
            assert_eq!(&*p, "end");
            assert!(matches!(m.next().await, Next::End));
        }
    }

    #[tokio::test]
    async fn one_who_joined_after_the_end_starts_over_and_a_slow_one_skips_ahead() {
        let (feeds, tx, mut a) = started().await;
        for i in 0..300 {
            tx.send(format!("s{}", i + 1).into()).unwrap();
        }
        tx.send("end".into()).unwrap();
        // Let the feed publish everything before A reads anything.
        for _ in 0..1000 {
            tokio::task::yield_now().await;
        }
        // C joins after the terminal state but before the feed noticed its end.
        let Entry::Join(mut c) = feeds.enter(&key()).await else { panic!("not ended yet") };
        drop(tx);
        // A fell behind: it skips to the latest instead of replaying the backlog.
        let (got, over) = drain(&mut a).await;
        assert!(!over);
        assert_eq!(got, vec!["s0".to_string(), "end".to_string()], "no backlog");
        // C's only state was the end of a run: it follows the next run on a fresh feed.
        let (got, over) = drain(&mut c).await;
        assert_eq!(got, vec!["end".to_string()]);
        assert!(over);
    }

    #[tokio::test]
    async fn when_the_first_answer_is_an_error_whoever_waits_executes_on_its_own() {
        let feeds = Arc::new(Feeds::default());
        let Entry::Start(starter) = feeds.enter(&key()).await else { panic!("nothing runs yet") };
        let waiting = tokio::spawn({
            let feeds = feeds.clone();
            async move { feeds.enter(&key()).await }
        });
        tokio::task::yield_now().await;
        drop(starter);
        assert!(matches!(waiting.await.unwrap(), Entry::Start(_)), "the waiter starts its own");
    }
}
