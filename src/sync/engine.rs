//! One sync run: refresh the partner token, discover GDAP customers, then per tenant (bounded
//! concurrency) **read** ([`super::read`]), resolve MFA ([`super::mfa::resolve`]), **plan**
//! ([`super::plan`], pure) and **write** in one short fenced transaction ([`super::lease`]).
//! One failing tenant never fails the others; an expired or revoked authorization fails the run
//! and marks the connection `NEEDS_RECONNECT`.

use std::sync::{Arc, Mutex};

use entity::{
    m365_connection, m365_tenant,
    states::{RunPhase, RunStatus, TenantOutcome},
    sync_run,
    types::TenantResult,
};
use tokio::sync::watch;

use super::{
    lease::{FenceError, Lease},
    mfa,
    plan::{self, Problem},
    read::{self, Discovered, TenantRead},
};
use crate::{
    app::AppState,
    config::Secret,
    connect::{self, REVOKED_MESSAGE},
    contacts,
    db::{
        self,
        tenants::{NewTenant, OutcomeColumns, TenantDetails},
    },
    error::AppError,
    evidence,
    microsoft::identity::IdentityError,
};

/// Why a run stopped early.
#[derive(Debug)]
pub enum RunFailure {
    /// The stored authorization expired or was revoked.
    Revoked,
    /// Disconnected, or the lease was lost to another worker.
    Cancelled(String),
    /// Anything else that stops the whole run: a code and a message for a person.
    Failed(&'static str, String),
}

impl From<FenceError> for RunFailure {
    fn from(e: FenceError) -> Self {
        match e {
            FenceError::Refused(r) => Self::Cancelled(r.message().into()),
            FenceError::Db(e) => internal_failure("Writing sync data failed", e),
        }
    }
}

/// An internal failure: the detail goes to the log under an error id; readers get `what`, the
/// id and `INTERNAL_SERVER_ERROR`, never database or key details.
pub fn internal_failure(what: &str, detail: impl std::fmt::Display) -> RunFailure {
    let id = uuid::Uuid::new_v4();
    tracing::error!(error_id = %id, error = %detail, "{what}");
    RunFailure::Failed("INTERNAL_SERVER_ERROR", format!("{what} (error id {id})."))
}

/// How a run ends: its status and, when it did not finish, the code and message. Pure.
pub fn verdict(
    results: &[TenantResult],
    result: &Result<(), RunFailure>,
) -> (RunStatus, Option<(&'static str, String)>) {
    match result {
        Ok(()) if results.iter().any(|t| t.outcome != TenantOutcome::Ok) => (RunStatus::Partial, None),
        Ok(()) => (RunStatus::Succeeded, None),
        Err(RunFailure::Revoked) => {
            (RunStatus::Failed, Some(("M365_AUTHORIZATION_REVOKED", REVOKED_MESSAGE.to_owned())))
        }
        Err(RunFailure::Cancelled(m)) => (RunStatus::Cancelled, Some(("CANCELLED", m.clone()))),
        Err(RunFailure::Failed(code, m)) => (RunStatus::Failed, Some((*code, m.clone()))),
    }
}

/// How often running progress is stored (subscribers are sent each change at once).
pub const PERSIST_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// A running sync's shared context.
struct RunCtx {
    app: AppState,
    lease: Arc<Lease>,
    run: Mutex<sync_run::Model>,
    cancel: watch::Receiver<bool>,
    persisted: Mutex<std::time::Instant>,
}

impl RunCtx {
    fn account_id(&self) -> i64 {
        self.run.lock().unwrap_or_else(|p| p.into_inner()).account_id
    }

    fn run_id(&self) -> i64 {
        self.run.lock().unwrap_or_else(|p| p.into_inner()).id
    }

    fn stopped(&self) -> bool {
        self.lease.is_lost() || *self.cancel.borrow()
    }

    /// Changes the run's state; the change gets the next version and the time it happened.
    fn edit(&self, f: impl FnOnce(&mut sync_run::Model)) -> sync_run::Model {
        let now = self.app.clock.now();
        let mut g = self.run.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut g);
        g.version += 1;
        g.updated_at = Some(now);
        g.clone()
    }

    /// Publishes progress to subscribers at once, and stores it at most every
    /// [`PERSIST_EVERY`] (the run row carries every tenant's result, so storing it per tenant
    /// would write the whole list again each time).
    async fn save(&self, snapshot: sync_run::Model) {
        let due = {
            let mut last = self.persisted.lock().unwrap_or_else(|p| p.into_inner());
            let due = last.elapsed() >= PERSIST_EVERY;
            if due {
                *last = std::time::Instant::now();
            }
            due
        };
        if due {
            self.persist(snapshot).await;
        } else {
            self.app.sync.hub.publish(&snapshot);
        }
    }

    /// Stores and publishes progress now (the lease is marked lost when the write is refused).
    async fn persist(&self, snapshot: sync_run::Model) {
        match self.lease.save(&self.app, &snapshot).await {
            Ok(Some(saved)) => {
                self.app.sync.hub.publish(&saved);
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(run_id = snapshot.id, error = %e, "saving sync progress failed"),
        }
    }

    async fn phase(&self, phase: RunPhase) {
        let snap = self.edit(|r| r.phase = Some(phase));
        self.persist(snap).await;
    }
}

/// Runs a claimed sync to its end. Never panics; every outcome lands on the run row.
pub async fn execute(app: AppState, run: sync_run::Model, conn: m365_connection::Model, cancel: watch::Receiver<bool>) {
    let run_id = run.id;
    let lease = Arc::new(Lease::new(run.id, app.sync.worker_id.clone(), conn.id));
    let ctx = Arc::new(RunCtx {
        lease: lease.clone(),
        run: Mutex::new(run),
        cancel,
        persisted: Mutex::new(std::time::Instant::now()),
        app: app.clone(),
    });
    let renewer = tokio::spawn(async move { lease.keep_alive(&app).await });
    let result = steps(ctx.clone(), &conn).await;
    renewer.abort();
    let status = finish(&ctx, conn.id, result).await;
    tracing::Span::current().record("status", tracing::field::debug(status));
    tracing::info!(run_id, ?status, "sync run ended");
}

async fn steps(ctx: Arc<RunCtx>, conn: &m365_connection::Model) -> Result<(), RunFailure> {
    let app = &ctx.app;
    ctx.phase(RunPhase::RefreshingToken).await;
    let session = match connect::partner_session(app, conn).await {
        Ok(s) => s,
        Err(AppError::AuthorizationRevoked) => return Err(RunFailure::Revoked),
        Err(AppError::NotConnected) => return Err(RunFailure::Cancelled("Microsoft 365 was disconnected.".into())),
        Err(e) => return Err(internal_failure("Refreshing the Microsoft authorization failed", e)),
    };
    ctx.phase(RunPhase::DiscoveringTenants).await;
    let found = read::discover(&app.graph, session.access_token.expose()).await.map_err(|e| {
        RunFailure::Failed("DISCOVERY_FAILED", format!("Discovering customer tenants through GDAP failed: {e}"))
    })?;
    let tenants = write_discovered(&ctx, &found).await?;
    let snap = ctx.edit(|r| {
        r.tenants_total = tenants.len() as i64;
        r.phase = Some(RunPhase::SyncingTenants);
    });
    ctx.persist(snap).await;
    // Each tenant is its own task (at most `concurrency` at once), so a tenant in the middle of
    // its transaction never waits on this loop, and this loop's progress writes never wait on it.
    let permits = Arc::new(tokio::sync::Semaphore::new(app.config.sync_concurrency.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    for t in tenants {
        let (ctx, permits, rt) = (ctx.clone(), permits.clone(), session.refresh_token.clone());
        let span = tracing::info_span!(
            "sync_tenant",
            tenant = %t.microsoft_tenant_id,
            tenant_row = t.id,
            outcome = tracing::field::Empty,
            users = tracing::field::Empty,
        );
        let task = async move {
            let _permit = permits.acquire_owned().await.expect("the semaphore is never closed");
            let run = sync_tenant(&ctx, &t, &rt).await;
            let span = tracing::Span::current();
            match &run {
                TenantRun::Done(r) => {
                    span.record("outcome", tracing::field::debug(r.outcome));
                    span.record("users", r.users_synced);
                }
                TenantRun::Revoked => {
                    span.record("outcome", "revoked");
                }
                TenantRun::Skipped => {
                    span.record("outcome", "skipped");
                }
            }
            run
        };
        tasks.spawn(tracing::Instrument::instrument(task, span));
    }
    let mut revoked = false;
    let mut cancel = ctx.cancel.clone();
    loop {
        let joined = tokio::select! {
            joined = tasks.join_next() => match joined {
                Some(j) => j,
                None => break,
            },
            _ = async {
                // A closed switch (never flipped) is not a cancel.
                if cancel.wait_for(|c| *c).await.is_err() {
                    std::future::pending::<()>().await;
                }
            } => {
                // Cancelled (a disconnect here or on another replica, or a drain): stop now.
                // Tenants in flight are dropped mid-read; one inside its transaction rolls back.
                tasks.abort_all();
                break;
            }
        };
        let outcome = joined.unwrap_or_else(|e| {
            tracing::error!(error = %e, "a tenant task panicked");
            TenantRun::Skipped
        });
        match outcome {
            TenantRun::Revoked => {
                revoked = true;
                ctx.lease.mark_lost();
            }
            TenantRun::Skipped => {}
            TenantRun::Done(result) => {
                metrics::counter!(
                    "sync_tenant_outcomes_total",
                    "outcome" => sea_orm::ActiveEnum::to_value(&result.outcome),
                    "code" => result.error_code.clone().unwrap_or_else(|| "none".into())
                )
                .increment(1);
                let snap = ctx.edit(|r| {
                    r.tenants_done += 1;
                    r.tenants_failed += i64::from(result.outcome == TenantOutcome::Failed);
                    r.users_synced += result.users_synced;
                    r.tenant_results.0.push(result);
                });
                ctx.save(snap).await;
            }
        }
    }
    if revoked {
        return Err(RunFailure::Revoked);
    }
    if ctx.stopped() {
        let why = if ctx.app.sync.is_draining() {
            super::DRAINED_MESSAGE
        } else {
            "Stopped: the sync was cancelled or its lock was taken over."
        };
        return Err(RunFailure::Cancelled(why.into()));
    }
    Ok(())
}

/// Ends the run; returns the status it ended with (as stored).
async fn finish(ctx: &RunCtx, conn_id: i64, result: Result<(), RunFailure>) -> RunStatus {
    let now = ctx.app.clock.now();
    if matches!(result, Err(RunFailure::Revoked)) {
        // The partner session already marked the connection; a customer authority may be first.
        if let Err(e) = db::connections::mark_needs_reconnect(&ctx.app.db, conn_id, REVOKED_MESSAGE, now).await {
            tracing::warn!(error = %e, "marking the connection failed");
        }
    }
    // Evidence past retention goes before the run is seen to end, so whoever waits for the end
    // sees it pruned.
    let days = ctx.app.config.evidence_retention_days;
    if let Err(e) = evidence::apply_retention(&ctx.app.db, ctx.account_id(), now, days).await {
        tracing::warn!(account_id = ctx.account_id(), error = %e, "pruning evidence past retention failed");
    }
    let snap = ctx.edit(|r| {
        let (status, error) = verdict(&r.tenant_results.0, &result);
        r.status = status;
        r.error_code = error.as_ref().map(|e| e.0.to_owned());
        r.error = error.map(|e| e.1);
        r.current_tenant = None;
        r.finished_at = Some(now);
        r.lease_expires_at = None;
    });
    let took = snap.started_at.map_or(0.0, |s| (now - s).num_milliseconds().max(0) as f64 / 1000.0);
    let status = sea_orm::ActiveEnum::to_value(&snap.status);
    let trigger = sea_orm::ActiveEnum::to_value(&snap.trigger);
    metrics::counter!("sync_runs_total", "status" => status.clone(), "trigger" => trigger).increment(1);
    metrics::histogram!("sync_run_duration_seconds", "status" => status).record(took);
    match ctx.lease.save(&ctx.app, &snap).await {
        Ok(Some(saved)) => {
            ctx.app.sync.hub.publish(&saved);
            saved.status
        }
        // Someone else ended the run (a disconnect cancelled it): publish what the row says.
        _ => match db::sync_runs::get(&ctx.app.db, snap.account_id, snap.id).await {
            Ok(Some(row)) => {
                ctx.app.sync.hub.publish(&row);
                row.status
            }
            _ => snap.status,
        },
    }
}

/// Stores discovered tenants and removes the data of tenants GDAP no longer reaches.
async fn write_discovered(ctx: &RunCtx, found: &[Discovered]) -> Result<Vec<m365_tenant::Model>, RunFailure> {
    let db_err = |e: sea_orm::DbErr| internal_failure("Storing the discovered tenants failed", e);
    let txn = db::write_txn(&ctx.app.db).await.map_err(db_err)?;
    ctx.lease.fence(&txn).await?;
    let rows: Vec<NewTenant> = found
        .iter()
        .map(|d| NewTenant { tenant_id: &d.tenant_id, display_name: &d.display_name, gdap_roles: &d.gdap_roles })
        .collect();
    let stored =
        db::tenants::upsert_discovered(&txn, ctx.account_id(), &rows, ctx.app.clock.now()).await.map_err(db_err)?;
    let keep: std::collections::HashSet<_> = found.iter().map(|d| &d.tenant_id).collect();
    let mut tenants = vec![];
    for t in stored {
        if keep.contains(&t.microsoft_tenant_id) {
            tenants.push(t);
        } else {
            tracing::info!(tenant = %t.microsoft_tenant_id, "tenant no longer reachable through GDAP; removing its data");
            db::evidence::purge_tenant(&txn, t.id, ctx.app.clock.now(), evidence::PURGED_TENANT_REMOVED)
                .await
                .map_err(db_err)?;
            db::tenants::remove(&txn, t.id).await.map_err(db_err)?;
        }
    }
    txn.commit().await.map_err(db_err)?;
    Ok(tenants)
}

enum TenantRun {
    Done(TenantResult),
    Revoked,
    Skipped,
}

async fn sync_tenant(ctx: &RunCtx, t: &m365_tenant::Model, rt: &Secret) -> TenantRun {
    if ctx.stopped() {
        return TenantRun::Skipped;
    }
    let snap = ctx.edit(|r| r.current_tenant = Some(t.display_name.clone()));
    ctx.app.sync.hub.publish(&snap);
    let token = match ctx.app.identity.refresh(t.microsoft_tenant_id.as_str(), rt).await {
        Ok(tok) => tok.access_token,
        Err(e) if e.is_authorization_revoked() => return TenantRun::Revoked,
        Err(e) => return TenantRun::Done(record_failure(ctx, t, token_problem(&e)).await),
    };
    let read = match read::tenant(&ctx.app.graph, token.expose()).await {
        Ok(d) => d,
        Err(e) => {
            let problem = Problem {
                code: "USERS_UNREADABLE",
                message: format!("Reading the tenant's directory failed: {e}."),
                remediation: USERS_REMEDIATION.into(),
            };
            return TenantRun::Done(record_failure(ctx, t, problem).await);
        }
    };
    match write_tenant(ctx, t, &read).await {
        Ok(r) => TenantRun::Done(r),
        Err(RunFailure::Cancelled(_)) => TenantRun::Skipped,
        Err(RunFailure::Failed(_, message)) => TenantRun::Done(plan::failed(
            t,
            &Problem {
                code: "WRITE_FAILED",
                message,
                remediation: "Trigger the sync again; if it keeps failing, contact support.".into(),
            },
        )),
        // A write never sees a revocation.
        Err(RunFailure::Revoked) => TenantRun::Revoked,
    }
}

const USERS_REMEDIATION: &str = "Check that the GDAP relationship is active and includes Global Reader (or Directory Readers), and that the consent included directory read access.";

/// Why Microsoft refused a customer tenant's token, and what to do.
fn token_problem(e: &IdentityError) -> Problem {
    let (code, remediation) = match e {
        IdentityError::ConsentMissing(_) => (
            "CONSENT_MISSING",
            "Scopable's app is not consented in this customer tenant. Have a Global Administrator of the customer approve it (admin consent), or push the consent through Partner Center's application consent.",
        ),
        IdentityError::NoGdapAccess(_) => (
            "NO_GDAP_ACCESS",
            "Your account has no GDAP access to this customer: check that the relationship is active and that the user who connected is in the security group its access assignment names.",
        ),
        IdentityError::InteractionRequired(_) => (
            "INTERACTION_REQUIRED",
            "A conditional access or MFA policy needs the signed-in administrator: reconnect Microsoft 365.",
        ),
        IdentityError::TenantNotFound(_) => {
            ("TENANT_NOT_FOUND", "Microsoft no longer knows this tenant; it may have been deleted.")
        }
        IdentityError::InvalidClient(_) => {
            ("APP_CREDENTIALS_REJECTED", "Microsoft rejected Scopable's app credentials; contact support.")
        }
        _ => ("TOKEN_ERROR", "Trigger the sync again later; if it keeps failing, contact support."),
    };
    Problem {
        code,
        message: format!("Microsoft refused a token for this tenant: {e}."),
        remediation: remediation.into(),
    }
}

/// Records a tenant that could not be read: its outcome only, so stored data is kept.
async fn record_failure(ctx: &RunCtx, t: &m365_tenant::Model, problem: Problem) -> TenantResult {
    let outcome = OutcomeColumns {
        status: TenantOutcome::Failed,
        error_code: Some(problem.code),
        error: Some(&problem.message),
        remediation: Some(&problem.remediation),
    };
    if let Ok(txn) = db::write_txn(&ctx.app.db).await
        && ctx.lease.fence(&txn).await.is_ok()
        && db::tenants::record_outcome(&txn, t, outcome, None, ctx.app.clock.now()).await.is_ok()
    {
        let _ = txn.commit().await;
    }
    plan::failed(t, &problem)
}

/// Plans and writes everything read from a tenant in one fenced transaction with batched
/// statements.
async fn write_tenant(ctx: &RunCtx, t: &m365_tenant::Model, read: &TenantRead) -> Result<TenantResult, RunFailure> {
    let user_ids: Vec<&str> = read.users.iter().map(|u| u.id.as_str()).collect();
    let mfa = mfa::resolve(&user_ids, &read.report, &read.methods, &t.gdap_roles.0);
    let db_err = |e: sea_orm::DbErr| internal_failure("Storing the tenant's data failed", e);
    // Microseconds: what both databases store exactly, so history and snapshots compare equal.
    let now = evidence::canonical::micros(ctx.app.clock.now());
    let txn = db::write_txn(&ctx.app.db).await.map_err(db_err)?;
    ctx.lease.fence(&txn).await?;
    let index = contacts::index_for_tenant(&txn, t.id).await.map_err(db_err)?;
    let p = plan::plan(&t.display_name, read, &mfa, index.as_ref(), now);
    let account = ctx.account_id();
    let written = db::users::replace_users(&txn, account, t.id, &p.users, now).await.map_err(db_err)?;
    metrics::counter!("sync_user_rows_total", "write" => "written").increment(written.written as u64);
    metrics::counter!("sync_user_rows_total", "write" => "unchanged")
        .increment(p.users.len().saturating_sub(written.written) as u64);
    metrics::counter!("sync_user_rows_total", "write" => "removed").increment(written.removed as u64);
    let user_ids = &written.ids;
    db::users::replace_assignments(&txn, account, t.id, &p.users, user_ids).await.map_err(db_err)?;
    evidence::record(
        &txn,
        &evidence::Recording {
            account_id: account,
            tenant: t,
            run_id: ctx.run_id(),
            users: &p.users,
            user_ids,
            snapshot: matches!(p.outcome, TenantOutcome::Ok | TenantOutcome::Partial),
            now,
        },
    )
    .await
    .map_err(db_err)?;
    if let Some(licenses) = &p.licenses {
        db::users::replace_licenses(&txn, account, t.id, licenses, now).await.map_err(db_err)?;
    }
    let first = p.first_problem();
    let d = &p.details;
    db::tenants::record_outcome(
        &txn,
        t,
        OutcomeColumns {
            status: p.outcome,
            error_code: first.map(|p| p.code),
            error: first.map(|p| p.message.as_str()),
            remediation: first.map(|p| p.remediation.as_str()),
        },
        Some(TenantDetails {
            display_name: &d.display_name,
            default_domain: d.default_domain.as_deref(),
            domains: &d.domains,
            mfa_source: d.mfa_source,
            mfa_policy: Some(&d.mfa_policy),
        }),
        now,
    )
    .await
    .map_err(db_err)?;
    txn.commit().await.map_err(db_err)?;
    Ok(p.result(t))
}

#[cfg(test)]
mod tests {
    use entity::types::TenantGuid;

    use super::*;

    fn result(outcome: TenantOutcome) -> TenantResult {
        TenantResult {
            tenant_id: TenantGuid("t".into()),
            display_name: "T".into(),
            outcome,
            error_code: None,
            error: None,
            remediation: None,
            users_synced: 1,
        }
    }

    #[test]
    fn verdict_of_every_ending() {
        let ok = [result(TenantOutcome::Ok), result(TenantOutcome::Ok)];
        assert_eq!(verdict(&ok, &Ok(())), (RunStatus::Succeeded, None));
        assert_eq!(verdict(&[], &Ok(())), (RunStatus::Succeeded, None));
        for bad in [TenantOutcome::Partial, TenantOutcome::Failed] {
            assert_eq!(verdict(&[result(TenantOutcome::Ok), result(bad)], &Ok(())), (RunStatus::Partial, None));
        }
        let (s, e) = verdict(&ok, &Err(RunFailure::Revoked));
        assert_eq!((s, e.unwrap().0), (RunStatus::Failed, "M365_AUTHORIZATION_REVOKED"));
        let (s, e) = verdict(&ok, &Err(RunFailure::Cancelled("gone".into())));
        assert_eq!((s, e), (RunStatus::Cancelled, Some(("CANCELLED", "gone".into()))));
        let (s, e) = verdict(&[], &Err(RunFailure::Failed("DISCOVERY_FAILED", "no".into())));
        assert_eq!((s, e), (RunStatus::Failed, Some(("DISCOVERY_FAILED", "no".into()))));
    }

    #[test]
    fn token_refusals_name_their_cause() {
        let p = token_problem(&IdentityError::ConsentMissing(65001));
        assert_eq!(p.code, "CONSENT_MISSING");
        assert!(p.message.starts_with("Microsoft refused a token for this tenant"));
        assert_eq!(token_problem(&IdentityError::NoGdapAccess(50020)).code, "NO_GDAP_ACCESS");
    }
}
