//! Signals between replicas through PostgreSQL (`LISTEN`/`NOTIFY`), the database every replica
//! already shares. SQLite is one process: the in-process hub is all there is.
//!
//! - **Progress** (`m365_sync_progress`): every state a replica's hub accepts from its own worker
//!   goes out, in order, as a notification; every other replica feeds it to its own hub, so a
//!   subscriber sees the same ordered stream whichever replica runs the sync. A notification
//!   carries the state itself: the whole run when it fits in PostgreSQL's 8,000-byte payload,
//!   otherwise the run's head and only the tenant results added since the previous notification
//!   (results only grow during a run). When even that does not fit, it carries a pointer and
//!   readers read the row (stored at least every [`super::engine::PERSIST_EVERY`]).
//! - **Repair**: a replica whose copy of a run lacks the results a notification builds on (it
//!   missed one), or whose listener reconnected (notifications sent meanwhile are gone), reads the
//!   run's row; the hub's ordering drops anything older than what its subscribers already have,
//!   and the terminal state is always stored, so it always arrives.
//! - **Cancel** (`m365_sync_cancel`): a disconnect on one replica stops the run another replica
//!   holds at once instead of at that run's next fenced write.
//!
//! Each replica listens on one dedicated connection (reconnecting after a failure) and ignores
//! its own notifications.

use std::{collections::HashMap, sync::Arc};

use entity::{sync_run, types::TenantResults};
use sea_orm::{ConnectionTrait, DatabaseBackend, Statement};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::{app::AppState, db};

/// The channel cancel signals travel on.
pub const CANCEL_CHANNEL: &str = "m365_sync_cancel";
/// The channel progress travels on.
pub const PROGRESS_CHANNEL: &str = "m365_sync_progress";
/// The largest payload sent (PostgreSQL refuses 8,000 bytes or more).
pub const MAX_PAYLOAD: usize = 7_900;
/// At most this many notifications go in one statement when progress comes faster than the
/// database round trip.
const BATCH: usize = 32;

/// A progress notification.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "k")]
enum Message {
    /// A state: `run` with only the tenant results from index `from` on.
    #[serde(rename = "s")]
    State { o: String, from: usize, run: Box<sync_run::Model> },
    /// Too large to carry: read run `r` of account `a`.
    #[serde(rename = "p")]
    Pointer { o: String, a: i64, r: i64 },
}

/// Tells every replica to stop the account's run (PostgreSQL only; a no-op on SQLite).
pub async fn send_cancel(app: &AppState, account_id: i64) {
    if app.db.get_database_backend() != DatabaseBackend::Postgres {
        return;
    }
    let payload = format!("{account_id} {}", app.sync.worker_id);
    let stmt = Statement::from_sql_and_values(
        DatabaseBackend::Postgres,
        "SELECT pg_notify($1, $2)",
        [CANCEL_CHANNEL.into(), payload.into()],
    );
    if let Err(e) = app.db.execute_raw(stmt).await {
        tracing::warn!(account_id, error = %e, "notifying other replicas of a cancel failed");
    }
}

/// Parses a cancel payload: the account, unless the signal came from `me`.
pub fn cancel_for(payload: &str, me: &str) -> Option<i64> {
    let (account, origin) = payload.split_once(' ')?;
    (origin != me).then(|| account.parse().ok()).flatten()
}

/// What a progress notification says, given how many of the run's results went out before.
/// Returns the payload, how many results the readers have after it, and its kind (`state` or
/// `pointer`, for the metric).
fn encode(run: &sync_run::Model, sent_before: usize, origin: &str) -> (String, usize, &'static str) {
    let results = &run.tenant_results.0;
    let all = results.len();
    let from = if sent_before <= all { sent_before } else { 0 };
    let state = |from: usize| {
        let run = Box::new(sync_run::Model { tenant_results: TenantResults(results[from..].to_vec()), ..head(run) });
        let json = serde_json::to_string(&Message::State { o: origin.to_owned(), from, run }).ok()?;
        (json.len() <= MAX_PAYLOAD).then_some(json)
    };
    // The whole run when it fits (a reader then needs nothing before it), else the new results.
    if let Some(json) = state(0).or_else(|| (from > 0).then(|| state(from)).flatten()) {
        return (json, all, "state");
    }
    let pointer = Message::Pointer { o: origin.to_owned(), a: run.account_id, r: run.id };
    (serde_json::to_string(&pointer).expect("a pointer serialises"), all, "pointer")
}

/// The run without its tenant results.
fn head(m: &sync_run::Model) -> sync_run::Model {
    sync_run::Model {
        id: m.id,
        account_id: m.account_id,
        trigger: m.trigger,
        status: m.status,
        phase: m.phase,
        current_tenant: m.current_tenant.clone(),
        tenants_total: m.tenants_total,
        tenants_done: m.tenants_done,
        tenants_failed: m.tenants_failed,
        users_synced: m.users_synced,
        error: m.error.clone(),
        error_code: m.error_code.clone(),
        tenant_results: TenantResults::default(),
        lease_owner: m.lease_owner.clone(),
        lease_expires_at: m.lease_expires_at,
        created_by: m.created_by.clone(),
        created_at: m.created_at,
        started_at: m.started_at,
        finished_at: m.finished_at,
        version: m.version,
        updated_at: m.updated_at,
    }
}

/// Relays the states this replica's hub accepts from its own worker to every other replica, in
/// order (PostgreSQL only). Runs until the hub is gone.
pub async fn relay(app: AppState, mut rx: mpsc::UnboundedReceiver<Arc<sync_run::Model>>) {
    let mut sent: HashMap<i64, usize> = HashMap::new();
    let mut batch = Vec::with_capacity(BATCH);
    while rx.recv_many(&mut batch, BATCH).await > 0 {
        let mut payloads = Vec::with_capacity(batch.len());
        for run in batch.drain(..) {
            let before = sent.get(&run.id).copied().unwrap_or(0);
            let (payload, after, kind) = encode(&run, before, &app.sync.worker_id);
            if run.status.is_terminal() {
                sent.remove(&run.id);
            } else {
                sent.insert(run.id, after);
            }
            metrics::counter!("sync_progress_relayed_total", "kind" => kind).increment(1);
            payloads.push(payload);
        }
        // One statement, one round trip: the notifications are delivered in this order.
        let calls: Vec<String> = (0..payloads.len()).map(|i| format!("pg_notify($1, ${})", i + 2)).collect();
        let mut values: Vec<sea_orm::Value> = vec![PROGRESS_CHANNEL.into()];
        values.extend(payloads.into_iter().map(Into::into));
        let stmt =
            Statement::from_sql_and_values(DatabaseBackend::Postgres, format!("SELECT {}", calls.join(", ")), values);
        if let Err(e) = app.db.execute_raw(stmt).await {
            // Readers repair from the row (stored at least every second, and at the end).
            tracing::warn!(error = %e, "relaying sync progress to other replicas failed");
            sent.clear();
        }
    }
}

/// Listens for other replicas' signals until the runtime stops (start it on PostgreSQL only).
pub async fn listen(app: AppState) {
    loop {
        if let Err(e) = listen_once(&app).await {
            tracing::warn!(error = %e, "replica signal listener lost its connection; reconnecting");
        }
        metrics::counter!("sync_progress_listener_reconnects_total").increment(1);
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

async fn listen_once(app: &AppState) -> Result<(), sea_orm::sqlx::Error> {
    let mut listener = sea_orm::sqlx::postgres::PgListener::connect_with(app.db.get_postgres_connection_pool()).await?;
    listener.ignore_pool_close_event(true);
    listener.listen_all([CANCEL_CHANNEL, PROGRESS_CHANNEL]).await?;
    // Anything sent before this point (or while the last connection was down) is gone: catch
    // up from the rows of every run someone here watches.
    for account in app.sync.hub.watched_accounts() {
        repair(app, account, None).await;
    }
    // `try_recv` says when the connection dropped (`Ok(None)`), so the repair above runs again.
    while let Some(n) = listener.try_recv().await? {
        match n.channel() {
            CANCEL_CHANNEL => {
                if let Some(account) = cancel_for(n.payload(), &app.sync.worker_id) {
                    tracing::info!(account_id = account, "another replica cancelled this account's sync");
                    app.sync.cancel(account);
                }
            }
            PROGRESS_CHANNEL => receive(app, n.payload()).await,
            _ => {}
        }
    }
    Ok(())
}

/// Feeds one progress notification to this replica's hub.
async fn receive(app: &AppState, payload: &str) {
    let msg = match serde_json::from_str::<Message>(payload) {
        Ok(m) => m,
        Err(e) => {
            tracing::warn!(error = %e, "an unreadable progress notification was ignored");
            return;
        }
    };
    match msg {
        Message::State { o, .. } | Message::Pointer { o, .. } if o == app.sync.worker_id => {}
        Message::State { from, run, .. } => {
            if !app.sync.hub.watched(run.account_id) {
                return;
            }
            let base = app.sync.hub.latest(run.account_id);
            match complete(base.as_deref(), from, run) {
                Ok(full) => {
                    app.sync.hub.publish_relayed(Arc::from(full));
                }
                Err(run) => repair(app, run.account_id, Some((from, run))).await,
            }
        }
        Message::Pointer { a, .. } => {
            if app.sync.hub.watched(a) {
                repair(app, a, None).await;
            }
        }
    }
}

/// The whole state a relayed one describes, from `base` (what this replica has of the run);
/// `Err` with the relayed state when `base` lacks the results it builds on.
fn complete(
    base: Option<&sync_run::Model>,
    from: usize,
    mut run: Box<sync_run::Model>,
) -> Result<Box<sync_run::Model>, Box<sync_run::Model>> {
    if from == 0 {
        return Ok(run);
    }
    match base {
        Some(b) if b.id == run.id && b.tenant_results.0.len() >= from => {
            let mut results = b.tenant_results.0[..from].to_vec();
            results.append(&mut run.tenant_results.0);
            run.tenant_results = TenantResults(results);
            Ok(run)
        }
        _ => Err(run),
    }
}

/// Reads the account's latest run from the database and publishes it (the hub drops it when its
/// subscribers already have something newer); with a relayed state, completes that one from the
/// row when the row has the results it builds on.
async fn repair(app: &AppState, account_id: i64, relayed: Option<(usize, Box<sync_run::Model>)>) {
    metrics::counter!("sync_progress_repairs_total").increment(1);
    let row = match db::sync_runs::latest(&app.db, account_id).await {
        Ok(Some(row)) => row,
        Ok(None) => return,
        Err(e) => {
            tracing::warn!(account_id, error = %e, "reading a run to repair its progress failed");
            return;
        }
    };
    if let Some((from, run)) = relayed
        && let Ok(full) = complete(Some(&row), from, run)
    {
        app.sync.hub.publish_relayed(Arc::from(full));
    }
    app.sync.hub.publish_relayed(Arc::new(row));
}

#[cfg(test)]
mod tests {
    use entity::{
        states::{RunStatus, TenantOutcome},
        types::TenantResult,
    };

    use super::*;

    #[test]
    fn cancel_payloads() {
        assert_eq!(cancel_for("42 worker-b", "worker-a"), Some(42));
        assert_eq!(cancel_for("42 worker-a", "worker-a"), None, "its own signal");
        assert_eq!(cancel_for("x worker-b", "worker-a"), None);
        assert_eq!(cancel_for("garbage", "worker-a"), None);
    }

    fn result(i: usize, message_len: usize) -> TenantResult {
        TenantResult {
            tenant_id: format!("tenant-{i}").into(),
            display_name: format!("Tenant {i}"),
            outcome: TenantOutcome::Failed,
            error_code: Some("GRAPH_ERROR".into()),
            error: Some("x".repeat(message_len)),
            remediation: None,
            users_synced: 0,
        }
    }

    fn run(version: i64, results: Vec<TenantResult>) -> sync_run::Model {
        let mut m = crate::sync::hub::tests::run(7, version, RunStatus::Running);
        m.tenant_results = TenantResults(results);
        m
    }

    fn decode(payload: &str) -> Message {
        assert!(payload.len() <= MAX_PAYLOAD, "{} bytes", payload.len());
        serde_json::from_str(payload).unwrap()
    }

    #[test]
    fn a_small_run_travels_whole_and_a_large_one_as_its_new_results() {
        // Small: the whole run, whatever went out before.
        let small = run(3, vec![result(0, 10), result(1, 10)]);
        let (p, sent, _) = encode(&small, 1, "a");
        assert_eq!(sent, 2);
        let Message::State { from: 0, run: got, .. } = decode(&p) else { panic!("{p}") };
        assert_eq!(*got, small, "every field survives the trip");

        // Large: 60 results of ~200 bytes do not fit; the two new ones do.
        let big = run(9, (0..60).map(|i| result(i, 200)).collect());
        let (p, sent, _) = encode(&big, 58, "a");
        assert_eq!(sent, 60);
        let Message::State { from: 58, run: delta, .. } = decode(&p) else { panic!("{p}") };
        assert_eq!(delta.tenant_results.0.len(), 2);
        // A reader with the first 58 rebuilds the whole state; one with fewer cannot.
        let base = run(8, big.tenant_results.0[..58].to_vec());
        assert_eq!(*complete(Some(&base), 58, delta).unwrap(), big);
        let Message::State { run: delta, .. } = decode(&encode(&big, 58, "a").0) else { unreachable!() };
        let short = run(5, big.tenant_results.0[..40].to_vec());
        assert!(complete(Some(&short), 58, delta).is_err(), "a missed step is repaired from the row");

        // One result too large for any payload: a pointer to the row.
        let huge = run(10, vec![result(0, 9_000)]);
        let (p, _, kind) = encode(&huge, 0, "a");
        assert!(matches!(decode(&p), Message::Pointer { a: 1, r: 7, .. }), "{p}");
        assert_eq!(kind, "pointer");
    }
}
