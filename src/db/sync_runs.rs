//! Queries on `sync_run`.

use entity::{
    states::{RunPhase, RunStatus, RunTrigger},
    sync_run,
};
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect};

/// Statuses of a run that has not ended.
pub const ACTIVE: [RunStatus; 2] = RunStatus::ACTIVE;

/// The account's queued or running run, if any.
pub async fn current(db: &impl ConnectionTrait, account_id: i64) -> Result<Option<sync_run::Model>, DbErr> {
    sync_run::Entity::find()
        .filter(sync_run::Column::AccountId.eq(account_id))
        .filter(sync_run::Column::Status.is_in(ACTIVE))
        .order_by_desc(sync_run::Column::Id)
        .one(db)
        .await
}

/// The account's most recent finished run.
pub async fn last_finished(db: &impl ConnectionTrait, account_id: i64) -> Result<Option<sync_run::Model>, DbErr> {
    sync_run::Entity::find()
        .filter(sync_run::Column::AccountId.eq(account_id))
        .filter(sync_run::Column::Status.is_not_in(ACTIVE))
        .order_by_desc(sync_run::Column::Id)
        .one(db)
        .await
}

/// A page of the account's runs, newest first, before `after` (an id); and the total.
pub async fn page(
    db: &impl ConnectionTrait,
    account_id: i64,
    after: Option<i64>,
    limit: u64,
) -> Result<(Vec<sync_run::Model>, u64), DbErr> {
    let q = sync_run::Entity::find().filter(sync_run::Column::AccountId.eq(account_id));
    let total = q.clone().count(db).await?;
    let q = match after {
        Some(a) => q.filter(sync_run::Column::Id.lt(a)),
        None => q,
    };
    Ok((q.order_by_desc(sync_run::Column::Id).limit(limit).all(db).await?, total))
}

use chrono::{DateTime, Utc};
use entity::types::TenantResults;
use sea_orm::{ActiveModelTrait, Set, sea_query::Expr};

/// Fails the account's active runs whose lease expired (their worker died), so the lock frees.
/// Call inside a transaction that holds the account's connection row exclusively
/// ([`super::connections::lock_exclusive`]), so no write of the dead worker is in flight.
pub async fn expire_dead(db: &impl ConnectionTrait, account_id: i64, now: DateTime<Utc>) -> Result<u64, DbErr> {
    let q = sync_run::Entity::update_many()
        .col_expr(sync_run::Column::Status, Expr::value(RunStatus::Failed))
        .col_expr(
            sync_run::Column::Error,
            Expr::value("The sync worker stopped responding; its lock expired and was released."),
        )
        .col_expr(sync_run::Column::ErrorCode, Expr::value("WORKER_LOST"))
        .col_expr(sync_run::Column::FinishedAt, Expr::value(now))
        .col_expr(
            sync_run::Column::Version,
            sea_orm::sea_query::ExprTrait::add(Expr::col(sync_run::Column::Version), 1),
        )
        .col_expr(sync_run::Column::UpdatedAt, Expr::value(now))
        .filter(sync_run::Column::AccountId.eq(account_id))
        .filter(sync_run::Column::Status.is_in(ACTIVE))
        .filter(sync_run::Column::LeaseExpiresAt.lt(now));
    Ok(q.exec(db).await?.rows_affected)
}

/// Accounts with an active run whose lease expired.
pub async fn accounts_with_dead_runs(db: &impl ConnectionTrait, now: DateTime<Utc>) -> Result<Vec<i64>, DbErr> {
    sync_run::Entity::find()
        .select_only()
        .column(sync_run::Column::AccountId)
        .distinct()
        .filter(sync_run::Column::Status.is_in(ACTIVE))
        .filter(sync_run::Column::LeaseExpiresAt.lt(now))
        .into_tuple()
        .all(db)
        .await
}

/// Whether `worker` still holds run `id` (read inside a fenced transaction).
pub async fn holds(db: &impl ConnectionTrait, id: i64, worker: &str) -> Result<bool, DbErr> {
    let found = sync_run::Entity::find()
        .select_only()
        .column(sync_run::Column::Id)
        .filter(sync_run::Column::Id.eq(id))
        .filter(sync_run::Column::Status.eq(RunStatus::Running))
        .filter(sync_run::Column::LeaseOwner.eq(worker))
        .into_tuple::<i64>()
        .one(db)
        .await?;
    Ok(found.is_some())
}

/// Claims the account's sync lock by inserting a running run with a lease. `None` when another
/// run is active (the partial unique index refuses the insert, in any process).
pub async fn claim(
    db: &impl ConnectionTrait,
    account_id: i64,
    trigger: RunTrigger,
    by: Option<&str>,
    worker: &str,
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
) -> Result<Option<sync_run::Model>, DbErr> {
    let res = sync_run::ActiveModel {
        account_id: Set(account_id),
        trigger: Set(trigger),
        status: Set(RunStatus::Running),
        phase: Set(Some(RunPhase::Starting)),
        current_tenant: Set(None),
        tenants_total: Set(0),
        tenants_done: Set(0),
        tenants_failed: Set(0),
        users_synced: Set(0),
        error: Set(None),
        error_code: Set(None),
        tenant_results: Set(TenantResults::default()),
        lease_owner: Set(Some(worker.to_owned())),
        lease_expires_at: Set(Some(lease_until)),
        created_by: Set(by.map(str::to_owned)),
        created_at: Set(now),
        started_at: Set(Some(now)),
        finished_at: Set(None),
        version: Set(1),
        updated_at: Set(Some(now)),
        ..Default::default()
    }
    .insert(db)
    .await;
    super::unless_duplicate(res)
}

/// Renews the lease of run `id` held by `worker`; false when the lease was lost (expired and
/// taken over, or the run was cancelled).
pub async fn renew(
    db: &impl ConnectionTrait,
    id: i64,
    worker: &str,
    lease_until: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let res = sync_run::Entity::update_many()
        .col_expr(sync_run::Column::LeaseExpiresAt, Expr::value(lease_until))
        .filter(sync_run::Column::Id.eq(id))
        .filter(sync_run::Column::Status.eq(RunStatus::Running))
        .filter(sync_run::Column::LeaseOwner.eq(worker))
        .exec(db)
        .await?;
    Ok(res.rows_affected == 1)
}

/// Writes a run's progress, fenced by its lease; `None` when the lease was lost. The row's
/// `version` becomes the snapshot's (the worker numbers the states it publishes).
///
/// `with_results`: whether the per-tenant results changed since the last write. They only grow
/// during a run and half the states add none (a tenant starting, a phase); the column holds up
/// to one result per tenant, so rewriting it with every state would write the run's results
/// over and over (quadratic in its tenants).
pub async fn save_progress(
    db: &impl ConnectionTrait,
    m: &sync_run::Model,
    worker: &str,
    with_results: bool,
) -> Result<Option<sync_run::Model>, DbErr> {
    let mut update = sync_run::Entity::update_many();
    // The lease's expiry belongs to `renew`: the snapshot carries the one set at the claim, and
    // writing it back with every state made any run longer than `SYNC_LEASE_SECS` look dead
    // (WORKER_LOST) between renewals. Only the terminal state clears it.
    if m.lease_expires_at.is_none() {
        update = update.col_expr(sync_run::Column::LeaseExpiresAt, Expr::value(m.lease_expires_at));
    }
    if with_results {
        update = update.col_expr(
            sync_run::Column::TenantResults,
            Expr::value(serde_json::to_value(&m.tenant_results.0).unwrap_or_default()),
        );
    }
    let res = update
        .col_expr(sync_run::Column::Status, Expr::value(m.status))
        .col_expr(sync_run::Column::Phase, Expr::value(m.phase))
        .col_expr(sync_run::Column::CurrentTenant, Expr::value(m.current_tenant.clone()))
        .col_expr(sync_run::Column::TenantsTotal, Expr::value(m.tenants_total))
        .col_expr(sync_run::Column::TenantsDone, Expr::value(m.tenants_done))
        .col_expr(sync_run::Column::TenantsFailed, Expr::value(m.tenants_failed))
        .col_expr(sync_run::Column::UsersSynced, Expr::value(m.users_synced))
        .col_expr(sync_run::Column::Error, Expr::value(m.error.clone()))
        .col_expr(sync_run::Column::ErrorCode, Expr::value(m.error_code.clone()))
        .col_expr(sync_run::Column::FinishedAt, Expr::value(m.finished_at))
        .col_expr(sync_run::Column::Version, Expr::value(m.version))
        .col_expr(sync_run::Column::UpdatedAt, Expr::value(m.updated_at))
        .filter(sync_run::Column::Id.eq(m.id))
        .filter(sync_run::Column::Status.eq(RunStatus::Running))
        .filter(sync_run::Column::LeaseOwner.eq(worker))
        .exec(db)
        .await?;
    Ok((res.rows_affected == 1).then(|| m.clone()))
}

/// One run of the account.
pub async fn get(db: &impl ConnectionTrait, account_id: i64, id: i64) -> Result<Option<sync_run::Model>, DbErr> {
    sync_run::Entity::find_by_id(id).filter(sync_run::Column::AccountId.eq(account_id)).one(db).await
}

/// The account's latest run (active or not).
pub async fn latest(db: &impl ConnectionTrait, account_id: i64) -> Result<Option<sync_run::Model>, DbErr> {
    sync_run::Entity::find()
        .filter(sync_run::Column::AccountId.eq(account_id))
        .order_by_desc(sync_run::Column::Id)
        .one(db)
        .await
}

/// The accounts whose queued or running run a worker holds.
pub async fn active_accounts_of_worker(db: &impl ConnectionTrait, worker: &str) -> Result<Vec<i64>, DbErr> {
    sync_run::Entity::find()
        .select_only()
        .column(sync_run::Column::AccountId)
        .filter(sync_run::Column::LeaseOwner.eq(worker))
        .filter(sync_run::Column::Status.is_in(ACTIVE))
        .into_tuple()
        .all(db)
        .await
}

/// How many queued or running runs a worker holds.
pub async fn active_of_worker(db: &impl ConnectionTrait, worker: &str) -> Result<u64, DbErr> {
    use sea_orm::PaginatorTrait;
    sync_run::Entity::find()
        .filter(sync_run::Column::LeaseOwner.eq(worker))
        .filter(sync_run::Column::Status.is_in(ACTIVE))
        .count(db)
        .await
}
