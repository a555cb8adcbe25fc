//! One sync run, as steps: refresh the partner token, discover GDAP customers, then per tenant
//! (bounded concurrency) read organization, users, MFA and licenses, and write them in one
//! fenced transaction. One failing tenant never fails the others; an expired or revoked
//! authorization fails the run and marks the connection `NEEDS_RECONNECT`.

use std::{
    collections::{BTreeMap, HashMap},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
};

use chrono::Utc;
use entity::{m365_connection, m365_tenant, sync_run, types::TenantResult};
use futures_util::TryStreamExt;
use tokio::sync::watch;

use super::mfa::{self, Mfa};
use crate::{
    app::AppState,
    config::Secret,
    connect::{self, REVOKED_MESSAGE},
    contacts::{self, user_addresses},
    db::{
        self,
        tenants::{Discovered, TenantDetails, TenantOutcome},
        users::{LicenseRow, UserRow},
    },
    error::AppError,
    microsoft::{
        graph::{BatchGet, GraphClient, GraphError},
        identity::IdentityError,
        models::{
            DelegatedAdminRelationship, Organization, Page, SubscribedSku, USER_SELECT, User, UserRegistrationDetails,
        },
    },
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

/// An internal failure: the detail goes to the log under an error id; readers get `what`, the
/// id and `INTERNAL_SERVER_ERROR`, never database or key details.
pub fn internal_failure(what: &str, detail: impl std::fmt::Display) -> RunFailure {
    let id = uuid::Uuid::new_v4();
    tracing::error!(error_id = %id, error = %detail, "{what}");
    RunFailure::Failed("INTERNAL_SERVER_ERROR", format!("{what} (error id {id})."))
}

/// How often running progress is stored (subscribers get every change at once).
pub const PERSIST_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// A running sync's shared context.
pub struct RunCtx {
    app: AppState,
    worker: String,
    run: Mutex<sync_run::Model>,
    conn_id: i64,
    lost: AtomicBool,
    cancel: watch::Receiver<bool>,
    persisted: Mutex<std::time::Instant>,
}

impl RunCtx {
    fn account_id(&self) -> i64 {
        self.run.lock().unwrap_or_else(|p| p.into_inner()).account_id
    }

    fn stopped(&self) -> bool {
        self.lost.load(Ordering::Relaxed) || *self.cancel.borrow()
    }

    fn edit(&self, f: impl FnOnce(&mut sync_run::Model)) -> sync_run::Model {
        let mut g = self.run.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut g);
        g.clone()
    }

    /// Saves and publishes the run; marks the lease lost when the fenced write is refused.
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

    /// Stores and publishes progress now; marks the lease lost when the fenced write is refused.
    async fn persist(&self, snapshot: sync_run::Model) {
        match db::sync_runs::save_progress(&self.app.db, &snapshot, &self.worker).await {
            Ok(Some(saved)) => self.app.sync.hub.publish(&saved),
            Ok(None) => {
                self.lost.store(true, Ordering::Relaxed);
            }
            Err(e) => tracing::warn!(run_id = snapshot.id, error = %e, "saving sync progress failed"),
        }
    }

    fn lease_until(&self) -> chrono::DateTime<Utc> {
        self.app.clock.now()
            + chrono::Duration::from_std(self.app.config.sync_lease()).unwrap_or(chrono::Duration::seconds(60))
    }
}

/// Runs a claimed sync to its end. Never panics; every outcome lands on the run row.
pub async fn execute(app: AppState, run: sync_run::Model, conn: m365_connection::Model, cancel: watch::Receiver<bool>) {
    let run_id = run.id;
    let ctx = Arc::new(RunCtx {
        worker: app.sync.worker_id.clone(),
        app,
        run: Mutex::new(run),
        conn_id: conn.id,
        lost: AtomicBool::new(false),
        cancel,
        persisted: Mutex::new(std::time::Instant::now()),
    });
    let renewer = tokio::spawn(renew_lease(ctx.clone()));
    let result = steps(ctx.clone(), &conn).await;
    renewer.abort();
    finish(&ctx, result).await;
    tracing::info!(run_id, "sync run ended");
}

/// Keeps the lease alive while the worker lives; a refused renewal stops the worker.
async fn renew_lease(ctx: Arc<RunCtx>) {
    let every = ctx.app.config.sync_lease() / 3;
    loop {
        tokio::time::sleep(every).await;
        let id = ctx.run.lock().unwrap_or_else(|p| p.into_inner()).id;
        match db::sync_runs::renew(&ctx.app.db, id, &ctx.worker, ctx.lease_until()).await {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!(run_id = id, "sync lease lost; stopping");
                ctx.lost.store(true, Ordering::Relaxed);
                return;
            }
            Err(e) => tracing::warn!(run_id = id, error = %e, "renewing the sync lease failed"),
        }
    }
}

async fn phase(ctx: &RunCtx, name: &str) {
    let snap = ctx.edit(|r| r.phase = Some(name.to_owned()));
    ctx.persist(snap).await;
}

async fn steps(ctx: Arc<RunCtx>, conn: &m365_connection::Model) -> Result<(), RunFailure> {
    let app = &ctx.app.clone();
    let ctx_ref: &RunCtx = &ctx;
    phase(ctx_ref, "refreshing_token").await;
    let session = match connect::partner_session(app, conn).await {
        Ok(s) => s,
        Err(AppError::AuthorizationRevoked) => return Err(RunFailure::Revoked),
        Err(AppError::NotConnected) => return Err(RunFailure::Cancelled("Microsoft 365 was disconnected.".into())),
        Err(e) => return Err(internal_failure("Refreshing the Microsoft authorization failed", e)),
    };
    phase(ctx_ref, "discovering_tenants").await;
    let found = discover(&app.graph, session.access_token.expose()).await.map_err(|e| {
        RunFailure::Failed("DISCOVERY_FAILED", format!("Discovering customer tenants through GDAP failed: {e}"))
    })?;
    let tenants = write_discovered(ctx_ref, &found).await?;
    let snap = ctx.edit(|r| {
        r.tenants_total = tenants.len() as i64;
        r.phase = Some("syncing_tenants".into());
    });
    ctx.persist(snap).await;
    // Each tenant is its own task (at most `concurrency` at once), so a tenant in the middle of
    // its transaction never waits on this loop, and this loop's progress writes never wait on it.
    let permits = Arc::new(tokio::sync::Semaphore::new(app.config.sync_concurrency.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    for t in tenants {
        let (ctx, permits, rt) = (ctx.clone(), permits.clone(), session.refresh_token.clone());
        tasks.spawn(async move {
            let _permit = permits.acquire_owned().await.expect("the semaphore is never closed");
            sync_tenant(&ctx, &t, &rt).await
        });
    }
    let mut revoked = false;
    while let Some(joined) = tasks.join_next().await {
        let outcome = joined.unwrap_or_else(|e| {
            tracing::error!(error = %e, "a tenant task panicked");
            TenantRun::Skipped
        });
        match outcome {
            TenantRun::Revoked => {
                revoked = true;
                ctx.lost.store(true, Ordering::Relaxed);
            }
            TenantRun::Skipped => {}
            TenantRun::Done(result) => {
                let snap = ctx.edit(|r| {
                    r.tenants_done += 1;
                    r.tenants_failed += i64::from(result.outcome == "FAILED");
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
        return Err(RunFailure::Cancelled("Stopped: the sync was cancelled or its lock was taken over.".into()));
    }
    Ok(())
}

async fn finish(ctx: &RunCtx, result: Result<(), RunFailure>) {
    let now = ctx.app.clock.now();
    if matches!(result, Err(RunFailure::Revoked)) {
        // The partner session already marked the connection; a customer authority may be first.
        if let Err(e) = db::connections::mark_needs_reconnect(&ctx.app.db, ctx.conn_id, REVOKED_MESSAGE, now).await {
            tracing::warn!(error = %e, "marking the connection failed");
        }
    }
    let snap = ctx.edit(|r| {
        let any_bad = r.tenant_results.0.iter().any(|t| t.outcome != "OK");
        let (status, error) = match &result {
            Ok(()) if any_bad => ("partial", None),
            Ok(()) => ("succeeded", None),
            Err(RunFailure::Revoked) => ("failed", Some(("M365_AUTHORIZATION_REVOKED", REVOKED_MESSAGE.to_owned()))),
            Err(RunFailure::Cancelled(m)) => ("cancelled", Some(("CANCELLED", m.clone()))),
            Err(RunFailure::Failed(code, m)) => ("failed", Some((*code, m.clone()))),
        };
        r.status = status.into();
        r.error_code = error.as_ref().map(|e| e.0.to_owned());
        r.error = error.map(|e| e.1);
        r.current_tenant = None;
        r.finished_at = Some(now);
        r.lease_expires_at = None;
    });
    match db::sync_runs::save_progress(&ctx.app.db, &snap, &ctx.worker).await {
        Ok(Some(saved)) => ctx.app.sync.hub.publish(&saved),
        // Someone else ended the run (a disconnect cancelled it): publish what the row says.
        _ => {
            if let Ok(Some(row)) = db::sync_runs::get(&ctx.app.db, snap.account_id, snap.id).await {
                ctx.app.sync.hub.publish(&row);
            }
        }
    }
}

/// Customers with an active GDAP relationship, grouped by tenant, with the roles granted.
/// Relationships of Microsoft's transition tool (`MLT_*`) are skipped.
pub async fn discover(graph: &GraphClient, token: &str) -> Result<Vec<Discovered>, GraphError> {
    let pages: Vec<Vec<DelegatedAdminRelationship>> = graph
        .pages(token, "/tenantRelationships/delegatedAdminRelationships?$filter=status eq 'active'&$top=300")
        .try_collect()
        .await?;
    let mut by_tenant: BTreeMap<String, (String, Vec<String>)> = BTreeMap::new();
    for r in pages.into_iter().flatten() {
        if r.status != "active" || r.display_name.as_deref().is_some_and(|n| n.starts_with("MLT_")) {
            continue;
        }
        let Some(c) = r.customer else { continue };
        let entry = by_tenant
            .entry(c.tenant_id.clone())
            .or_insert_with(|| (c.display_name.clone().unwrap_or_else(|| c.tenant_id.clone()), vec![]));
        for role in r.access_details.map(|a| a.unified_roles).unwrap_or_default() {
            if !entry.1.contains(&role.role_definition_id) {
                entry.1.push(role.role_definition_id);
            }
        }
    }
    Ok(by_tenant
        .into_iter()
        .map(|(tenant_id, (display_name, mut gdap_roles))| {
            gdap_roles.sort();
            Discovered { tenant_id, display_name, gdap_roles }
        })
        .collect())
}

/// Stores discovered tenants and removes the data of tenants GDAP no longer reaches.
async fn write_discovered(ctx: &RunCtx, found: &[Discovered]) -> Result<Vec<m365_tenant::Model>, RunFailure> {
    let db_err = |e: sea_orm::DbErr| internal_failure("Storing the discovered tenants failed", e);
    let txn = db::write_txn(&ctx.app.db).await.map_err(db_err)?;
    fence(ctx, &txn).await?;
    let stored =
        db::tenants::upsert_discovered(&txn, ctx.account_id(), found, ctx.app.clock.now()).await.map_err(db_err)?;
    let keep: std::collections::HashSet<&str> = found.iter().map(|d| d.tenant_id.as_str()).collect();
    let mut tenants = vec![];
    for t in stored {
        if keep.contains(t.tenant_id.as_str()) {
            tenants.push(t);
        } else {
            tracing::info!(tenant = %t.tenant_id, "tenant no longer reachable through GDAP; removing its data");
            db::tenants::remove(&txn, t.id).await.map_err(db_err)?;
        }
    }
    txn.commit().await.map_err(db_err)?;
    Ok(tenants)
}

/// The fence every sync write passes first: the connection still exists (not disconnected) and
/// this worker still holds the run's lease.
async fn fence(ctx: &RunCtx, txn: &sea_orm::DatabaseTransaction) -> Result<(), RunFailure> {
    let db_err = |e: sea_orm::DbErr| internal_failure("Writing sync data failed", e);
    if !db::connections::fence(txn, ctx.conn_id).await.map_err(db_err)? {
        ctx.lost.store(true, Ordering::Relaxed);
        return Err(RunFailure::Cancelled("Microsoft 365 was disconnected.".into()));
    }
    let id = ctx.run.lock().unwrap_or_else(|p| p.into_inner()).id;
    if !db::sync_runs::holds(txn, id, &ctx.worker).await.map_err(db_err)? {
        ctx.lost.store(true, Ordering::Relaxed);
        return Err(RunFailure::Cancelled("The sync's lock was lost; another worker took over.".into()));
    }
    Ok(())
}

enum TenantRun {
    Done(TenantResult),
    Revoked,
    Skipped,
}

fn failed(t: &m365_tenant::Model, code: &str, error: String, remediation: &str) -> TenantResult {
    TenantResult {
        tenant_id: t.tenant_id.clone(),
        display_name: t.display_name.clone(),
        outcome: "FAILED".into(),
        error_code: Some(code.into()),
        error: Some(error),
        remediation: Some(remediation.into()),
        users_synced: 0,
    }
}

/// What was read from one tenant.
struct TenantData {
    org: Organization,
    users: Vec<User>,
    mfa: HashMap<String, Mfa>,
    is_admin: HashMap<String, bool>,
    mfa_source: Option<&'static str>,
    mfa_problem: Option<(String, String)>,
    licenses: Result<Vec<SubscribedSku>, GraphError>,
}

async fn sync_tenant(ctx: &RunCtx, t: &m365_tenant::Model, rt: &Secret) -> TenantRun {
    if ctx.stopped() {
        return TenantRun::Skipped;
    }
    let snap = ctx.edit(|r| r.current_tenant = Some(t.display_name.clone()));
    ctx.app.sync.hub.publish(&snap);
    let token = match ctx.app.identity.refresh(&t.tenant_id, rt).await {
        Ok(tok) => tok.access_token,
        Err(e) if e.is_authorization_revoked() => return TenantRun::Revoked,
        Err(e) => {
            let (code, remediation) = token_failure(&e);
            let r = failed(t, code, format!("Microsoft refused a token for this tenant: {e}."), remediation);
            record(ctx, t, &r).await;
            return TenantRun::Done(r);
        }
    };
    let data = match read_tenant(&ctx.app.graph, token.expose(), &t.gdap_roles.0).await {
        Ok(d) => d,
        Err(e) => {
            let r = failed(
                t,
                "USERS_UNREADABLE",
                format!("Reading the tenant's directory failed: {e}."),
                USERS_REMEDIATION,
            );
            record(ctx, t, &r).await;
            return TenantRun::Done(r);
        }
    };
    match write_tenant(ctx, t, &data).await {
        Ok(r) => TenantRun::Done(r),
        Err(RunFailure::Cancelled(_)) => TenantRun::Skipped,
        Err(e) => {
            // Cancelled is handled above; a write never sees a revocation.
            let message = match e {
                RunFailure::Failed(_, m) | RunFailure::Cancelled(m) => m,
                RunFailure::Revoked => REVOKED_MESSAGE.to_owned(),
            };
            let r = failed(t, "WRITE_FAILED", message, "Trigger the sync again; if it keeps failing, contact support.");
            TenantRun::Done(r)
        }
    }
}

const USERS_REMEDIATION: &str = "Check that the GDAP relationship is active and includes Global Reader (or Directory Readers), and that the consent included directory read access.";

fn token_failure(e: &IdentityError) -> (&'static str, &'static str) {
    match e {
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
    }
}

/// Reads one tenant: organization, users, MFA (report, else methods) and licenses.
async fn read_tenant(graph: &GraphClient, token: &str, held_roles: &[String]) -> Result<TenantData, GraphError> {
    let org: Page<Organization> = graph.get(token, "/organization?$select=id,displayName,verifiedDomains").await?;
    let org = org.value.into_iter().next().unwrap_or_default();
    let users: Vec<User> = graph
        .pages::<User>(token, &format!("/users?$select={USER_SELECT}&$top=999"))
        .try_collect::<Vec<_>>()
        .await?
        .into_iter()
        .flatten()
        .collect();
    let licenses: Result<Vec<SubscribedSku>, GraphError> = graph
        .pages(token, "/subscribedSkus")
        .try_collect::<Vec<Vec<SubscribedSku>>>()
        .await
        .map(|p| p.into_iter().flatten().collect());
    let mut mfa = HashMap::with_capacity(users.len());
    let mut is_admin = HashMap::new();
    let mut mfa_source = None;
    let mut mfa_problem = None;
    // The report needs Entra ID P1: when the tenant's SKUs show none, go straight to methods.
    let report: Result<Vec<Vec<UserRegistrationDetails>>, GraphError> = match &licenses {
        Ok(skus) if !has_p1(skus) => Err(GraphError::Api {
            status: 403,
            code: "Authentication_RequestFromNonPremiumTenantOrB2CTenant".into(),
            message: "no active Microsoft Entra ID P1 plan among the tenant's subscriptions".into(),
            request_id: None,
        }),
        _ => graph.pages(token, "/reports/authenticationMethods/userRegistrationDetails?$top=999").try_collect().await,
    };
    match report {
        Ok(pages) => {
            mfa_source = Some("registration_report");
            for r in pages.into_iter().flatten() {
                if let Some(a) = r.is_admin {
                    is_admin.insert(r.id.clone(), a);
                }
                mfa.insert(r.id.clone(), mfa::from_report(&r));
            }
            // Users created after the report was compiled are missing from it.
            for u in &users {
                mfa.entry(u.id.clone()).or_insert_with(|| {
                    mfa::unavailable("not in the registration report yet (it lags behind the directory)".into())
                });
            }
        }
        Err(report_err) => {
            let items: Vec<BatchGet> = users
                .iter()
                .map(|u| BatchGet { id: u.id.clone(), url: format!("/users/{}/authentication/methods", u.id) })
                .collect();
            // Probe with the first batch: when every item is refused, the rest would be too.
            let split = items.len().min(20);
            let mut answers = graph.batch_get(token, &items[..split]).await?;
            let all_refused =
                !answers.is_empty() && answers.values().all(|a| matches!(a, Err(e) if e.status() == Some(403)));
            if !all_refused && split < items.len() {
                answers.extend(graph.batch_get(token, &items[split..]).await?);
            }
            let mut refused: Option<GraphError> = None;
            for u in &users {
                match answers.get(&u.id) {
                    Some(Ok(body)) => {
                        let types: Vec<String> = body["value"]
                            .as_array()
                            .map(|v| v.iter().filter_map(|m| m["@odata.type"].as_str().map(str::to_owned)).collect())
                            .unwrap_or_default();
                        mfa.insert(u.id.clone(), mfa::from_methods(&types));
                    }
                    Some(Err(e)) => {
                        if e.status() == Some(403) {
                            refused.get_or_insert_with(|| e.clone());
                        }
                        mfa.insert(
                            u.id.clone(),
                            mfa::unavailable(format!("authentication methods could not be read: {e}")),
                        );
                    }
                    None if all_refused => {
                        mfa.insert(
                            u.id.clone(),
                            mfa::unavailable("authentication methods were refused for this tenant".into()),
                        );
                    }
                    None => {
                        mfa.insert(u.id.clone(), mfa::unavailable("Microsoft did not answer for this user".into()));
                    }
                }
            }
            if !users.is_empty() && mfa.values().all(|m| m.status == "unavailable") {
                let methods_why =
                    refused.map_or_else(|| "no answer".to_owned(), |e| e.code().unwrap_or("error").to_owned());
                let report_why = mfa::report_refusal(&report_err);
                let remediation = mfa::remediation(held_roles, report_why, &methods_why);
                let reason = format!(
                    "MFA is unavailable: {report_why}, and per-user authentication methods were refused ({methods_why})."
                );
                for m in mfa.values_mut() {
                    m.unavailable_reason = Some(reason.clone());
                }
                mfa_problem = Some((reason, remediation));
            } else {
                mfa_source = Some("authentication_methods");
            }
        }
    }
    Ok(TenantData { org, users, mfa, is_admin, mfa_source, mfa_problem, licenses })
}

/// Whether an enabled subscription includes Entra ID P1 (or P2), which the report needs.
fn has_p1(skus: &[SubscribedSku]) -> bool {
    skus.iter().any(|s| {
        matches!(s.capability_status.as_deref(), None | Some("Enabled") | Some("Warning"))
            && s.service_plans.iter().any(|p| matches!(p.service_plan_name.as_str(), "AAD_PREMIUM" | "AAD_PREMIUM_P2"))
    })
}

/// Records a tenant's outcome alone (when nothing was read).
async fn record(ctx: &RunCtx, t: &m365_tenant::Model, r: &TenantResult) {
    let outcome = TenantOutcome {
        status: "failed",
        error_code: r.error_code.as_deref(),
        error: r.error.as_deref(),
        remediation: r.remediation.as_deref(),
    };
    let Ok(txn) = db::write_txn(&ctx.app.db).await else { return };
    if fence(ctx, &txn).await.is_err() {
        return;
    }
    if db::tenants::record_outcome(&txn, t, outcome, None, ctx.app.clock.now()).await.is_ok() {
        let _ = txn.commit().await;
    }
}

/// Writes everything read from a tenant in one fenced transaction with batched statements.
async fn write_tenant(ctx: &RunCtx, t: &m365_tenant::Model, d: &TenantData) -> Result<TenantResult, RunFailure> {
    let db_err = |e: sea_orm::DbErr| internal_failure("Storing the tenant's data failed", e);
    let now = ctx.app.clock.now();
    let txn = db::write_txn(&ctx.app.db).await.map_err(db_err)?;
    fence(ctx, &txn).await?;
    let index = contacts::index_for_tenant(&txn, t.id).await.map_err(db_err)?;
    let rows: Vec<UserRow> = d
        .users
        .iter()
        .map(|u| {
            let mut aliases: Vec<String> = u
                .proxy_addresses
                .iter()
                .filter_map(|p| {
                    p.split_once(':')
                        .filter(|(s, _)| s.eq_ignore_ascii_case("smtp"))
                        .map(|(_, a)| a.trim().to_lowercase())
                })
                .chain(u.other_mails.iter().map(|m| m.trim().to_lowercase()))
                .collect();
            aliases.sort();
            aliases.dedup();
            let link = index
                .as_ref()
                .map(|ix| ix.matches(&user_addresses(u.mail.as_deref(), &u.user_principal_name, &aliases)));
            let (contact_id, contact_match) = link.map(|l| l.columns()).unwrap_or((None, None));
            let m = d.mfa.get(&u.id).cloned().unwrap_or_else(|| mfa::unavailable("no MFA answer".into()));
            UserRow {
                object_id: u.id.clone(),
                display_name: u.display_name.clone(),
                user_principal_name: u.user_principal_name.clone(),
                mail: u.mail.clone(),
                aliases,
                account_enabled: u.account_enabled.unwrap_or(true),
                user_type: u.user_type.clone(),
                is_admin: d.is_admin.get(&u.id).copied(),
                sku_ids: u.assigned_licenses.iter().map(|l| l.sku_id.to_lowercase()).collect(),
                mfa_status: m.status,
                mfa_methods: m.methods,
                mfa_source: m.source,
                mfa_unavailable_reason: m.unavailable_reason,
                contact_id,
                contact_match,
            }
        })
        .collect();
    let account = ctx.account_id();
    db::users::replace_users(&txn, account, t.id, &rows, now).await.map_err(db_err)?;
    db::users::replace_assignments(&txn, account, t.id, &rows).await.map_err(db_err)?;
    let mut problems: Vec<(&str, String, String)> = vec![];
    match &d.licenses {
        Ok(skus) => {
            let lic: Vec<LicenseRow> = skus
                .iter()
                .map(|s| LicenseRow {
                    sku_id: s.sku_id.to_lowercase(),
                    sku_part_number: s.sku_part_number.clone(),
                    capability_status: s.capability_status.clone().unwrap_or_else(|| "Enabled".into()),
                    enabled_units: s.prepaid_units.enabled,
                    consumed_units: s.consumed_units,
                    suspended_units: s.prepaid_units.suspended,
                    warning_units: s.prepaid_units.warning,
                })
                .collect();
            db::users::replace_licenses(&txn, account, t.id, &lic, now).await.map_err(db_err)?;
        }
        Err(e) => problems.push((
            "LICENSES_UNREADABLE",
            format!("Subscribed licenses could not be read: {e}."),
            "Give the GDAP relationship Global Reader (or Directory Readers) and make sure the consent includes organization read access.".into(),
        )),
    }
    if let Some((reason, remediation)) = &d.mfa_problem {
        problems.insert(0, ("MFA_UNAVAILABLE", reason.clone(), remediation.clone()));
    }
    let domains: Vec<String> = d.org.verified_domains.iter().map(|v| v.name.to_lowercase()).collect();
    let default_domain = d.org.verified_domains.iter().find(|v| v.is_default).map(|v| v.name.to_lowercase());
    let name = d.org.display_name.clone().unwrap_or_else(|| t.display_name.clone());
    let first = problems.first();
    let status = if first.is_some() { "partial" } else { "ok" };
    db::tenants::record_outcome(
        &txn,
        t,
        TenantOutcome {
            status,
            error_code: first.map(|p| p.0),
            error: first.map(|p| p.1.as_str()),
            remediation: first.map(|p| p.2.as_str()),
        },
        Some(TenantDetails {
            display_name: &name,
            default_domain: default_domain.as_deref(),
            domains: &domains,
            mfa_source: d.mfa_source,
        }),
        now,
    )
    .await
    .map_err(db_err)?;
    txn.commit().await.map_err(db_err)?;
    Ok(TenantResult {
        tenant_id: t.tenant_id.clone(),
        display_name: name,
        outcome: if first.is_some() { "PARTIAL" } else { "OK" }.into(),
        error_code: first.map(|p| p.0.to_owned()),
        error: first.map(|p| p.1.clone()),
        remediation: first.map(|p| p.2.clone()),
        users_synced: rows.len() as i64,
    })
}
