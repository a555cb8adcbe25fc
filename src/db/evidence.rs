//! Queries on `mfa_history`, `mfa_evidence_snapshot` and `mfa_evidence_chain`.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use entity::{mfa_evidence_chain, mfa_evidence_snapshot, mfa_history, types::TenantGuid};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DatabaseBackend, DbErr, EntityTrait, Order, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect, Set,
    sea_query::{Expr, OnConflict},
};

/// Rows per INSERT: 25 columns × 400 stays inside SQLite's bound-parameter limit.
const CHUNK: usize = 400;

/// The rows of a tenant that hold now (`valid_to` null).
pub async fn open_rows(db: &impl ConnectionTrait, tenant_row: i64) -> Result<Vec<mfa_history::Model>, DbErr> {
    mfa_history::Entity::find()
        .filter(mfa_history::Column::TenantId.eq(tenant_row))
        .filter(mfa_history::Column::ValidTo.is_null())
        .all(db)
        .await
}

/// Ends rows at `at`.
pub async fn close_rows(db: &impl ConnectionTrait, ids: &[i64], at: DateTime<Utc>) -> Result<(), DbErr> {
    for chunk in ids.chunks(CHUNK * 4) {
        mfa_history::Entity::update_many()
            .col_expr(mfa_history::Column::ValidTo, Expr::value(at))
            .filter(mfa_history::Column::Id.is_in(chunk.iter().copied()))
            .exec(db)
            .await?;
    }
    Ok(())
}

/// Inserts history rows, batched.
pub async fn insert_rows(db: &impl ConnectionTrait, rows: Vec<mfa_history::ActiveModel>) -> Result<(), DbErr> {
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        let chunk: Vec<_> = rows.by_ref().take(CHUNK).collect();
        mfa_history::Entity::insert_many(chunk).exec_without_returning(db).await?;
    }
    Ok(())
}

/// Rows that held at `at`: from `valid_from` (inclusive) until `valid_to` (exclusive).
pub fn valid_at(at: DateTime<Utc>) -> Condition {
    Condition::all()
        .add(mfa_history::Column::ValidFrom.lte(at))
        .add(Condition::any().add(mfa_history::Column::ValidTo.is_null()).add(mfa_history::Column::ValidTo.gt(at)))
}

/// The columns evidence covers (the canonical row), in the canonical order.
pub const EVIDENCE_COLUMNS: [mfa_history::Column; 12] = {
    use mfa_history::Column as C;
    [
        C::ObjectId,
        C::UserPrincipalName,
        C::DisplayName,
        C::UserType,
        C::AccountEnabled,
        C::IsAdmin,
        C::IsLicensed,
        C::MfaStatus,
        C::MfaMethods,
        C::MfaEnforcement,
        C::MfaEnforcementSources,
        C::MfaVerdict,
    ]
};

/// A tenant's rows as of `at` (only [`EVIDENCE_COLUMNS`], read into `M`), in object-id byte
/// order: the canonical order; PostgreSQL is told to compare bytes, as SQLite does by default.
pub fn rows_at<M: sea_orm::FromQueryResult>(
    backend: DatabaseBackend,
    tenant_row: i64,
    at: DateTime<Utc>,
) -> sea_orm::Selector<sea_orm::SelectModel<M>> {
    let q = mfa_history::Entity::find()
        .select_only()
        .columns(EVIDENCE_COLUMNS)
        .filter(mfa_history::Column::TenantId.eq(tenant_row))
        .filter(valid_at(at));
    let q = match backend {
        DatabaseBackend::Postgres => q.order_by(Expr::cust(r#""object_id" COLLATE "C""#), Order::Asc),
        _ => q.order_by_asc(mfa_history::Column::ObjectId),
    };
    q.into_model::<M>()
}

/// The chain of a Microsoft tenant in an account.
pub async fn chain(
    db: &impl ConnectionTrait,
    account_id: i64,
    tenant: &TenantGuid,
) -> Result<Option<mfa_evidence_chain::Model>, DbErr> {
    mfa_evidence_chain::Entity::find()
        .filter(mfa_evidence_chain::Column::AccountId.eq(account_id))
        .filter(mfa_evidence_chain::Column::MicrosoftTenantId.eq(tenant.clone()))
        .one(db)
        .await
}

/// Moves a chain's head to a new snapshot (creating the chain with its first).
pub async fn advance_chain(
    db: &impl ConnectionTrait,
    account_id: i64,
    tenant: &TenantGuid,
    sequence: i64,
    digest: &str,
) -> Result<(), DbErr> {
    let row = mfa_evidence_chain::ActiveModel {
        account_id: Set(account_id),
        microsoft_tenant_id: Set(tenant.clone()),
        head_sequence: Set(sequence),
        head_digest: Set(Some(digest.to_owned())),
        pruned_through: Set(0),
        ..Default::default()
    };
    mfa_evidence_chain::Entity::insert(row)
        .on_conflict(
            OnConflict::columns([mfa_evidence_chain::Column::AccountId, mfa_evidence_chain::Column::MicrosoftTenantId])
                .update_columns([mfa_evidence_chain::Column::HeadSequence, mfa_evidence_chain::Column::HeadDigest])
                .to_owned(),
        )
        .exec_without_returning(db)
        .await
        .map(|_| ())
}

/// Stores a snapshot.
pub async fn insert_snapshot(
    db: &impl ConnectionTrait,
    s: mfa_evidence_snapshot::ActiveModel,
) -> Result<mfa_evidence_snapshot::Model, DbErr> {
    use sea_orm::ActiveModelTrait;
    s.insert(db).await
}

/// The client a tenant is mapped to now: `(id, name)`.
pub async fn client_of_tenant(db: &impl ConnectionTrait, tenant_row: i64) -> Result<Option<(i64, String)>, DbErr> {
    use entity::{client, tenant_mapping};
    let Some(m) =
        tenant_mapping::Entity::find().filter(tenant_mapping::Column::TenantId.eq(tenant_row)).one(db).await?
    else {
        return Ok(None);
    };
    Ok(client::Entity::find_by_id(m.client_id).one(db).await?.map(|c| (c.id, c.name)))
}

/// Removes a tenant's per-user history and marks its snapshots' rows as purged (the snapshots
/// themselves stay). Returns the history rows removed.
pub async fn purge_tenant(
    db: &impl ConnectionTrait,
    tenant_row: i64,
    now: DateTime<Utc>,
    reason: &str,
) -> Result<u64, DbErr> {
    mark_purged(db, mfa_evidence_snapshot::Column::TenantId.eq(tenant_row), now, reason).await?;
    Ok(mfa_history::Entity::delete_many()
        .filter(mfa_history::Column::TenantId.eq(tenant_row))
        .exec(db)
        .await?
        .rows_affected)
}

/// What a disconnect did to evidence.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Purged {
    /// Per-user history rows removed.
    pub history_rows: u64,
    /// Snapshots kept (figures and digests only).
    pub snapshots_kept: u64,
}

/// Removes an account's per-user history and keeps its snapshots, marked as without rows.
pub async fn purge_account(
    db: &impl ConnectionTrait,
    account_id: i64,
    now: DateTime<Utc>,
    reason: &str,
) -> Result<Purged, DbErr> {
    mark_purged(db, mfa_evidence_snapshot::Column::AccountId.eq(account_id), now, reason).await?;
    let history_rows = mfa_history::Entity::delete_many()
        .filter(mfa_history::Column::AccountId.eq(account_id))
        .exec(db)
        .await?
        .rows_affected;
    let snapshots_kept = mfa_evidence_snapshot::Entity::find()
        .filter(mfa_evidence_snapshot::Column::AccountId.eq(account_id))
        .count(db)
        .await?;
    Ok(Purged { history_rows, snapshots_kept })
}

async fn mark_purged(
    db: &impl ConnectionTrait,
    scope: sea_orm::sea_query::SimpleExpr,
    now: DateTime<Utc>,
    reason: &str,
) -> Result<(), DbErr> {
    mfa_evidence_snapshot::Entity::update_many()
        .col_expr(mfa_evidence_snapshot::Column::RowsPurgedAt, Expr::value(now))
        .col_expr(mfa_evidence_snapshot::Column::RowsPurgeReason, Expr::value(reason))
        .filter(scope)
        .filter(mfa_evidence_snapshot::Column::RowsPurgedAt.is_null())
        .exec(db)
        .await
        .map(|_| ())
}

/// What retention removed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Pruned {
    pub snapshots: u64,
    pub history_rows: u64,
}

/// Removes an account's snapshots taken before `horizon` and history rows that ended before it.
/// Each chain records the last pruned snapshot (sequence and digest), so the first kept snapshot
/// still links to something and the chain stays verifiable. History rows that ended after the
/// horizon stay, so every kept snapshot can still be recomputed.
pub async fn prune(db: &impl ConnectionTrait, account_id: i64, horizon: DateTime<Utc>) -> Result<Pruned, DbErr> {
    let old = mfa_evidence_snapshot::Entity::find()
        .filter(mfa_evidence_snapshot::Column::AccountId.eq(account_id))
        .filter(mfa_evidence_snapshot::Column::TakenAt.lt(horizon))
        .order_by_asc(mfa_evidence_snapshot::Column::Sequence)
        .all(db)
        .await?;
    let mut last: HashMap<&TenantGuid, &mfa_evidence_snapshot::Model> = HashMap::new();
    for s in &old {
        last.insert(&s.microsoft_tenant_id, s);
    }
    for (tenant, s) in last {
        mfa_evidence_chain::Entity::update_many()
            .col_expr(mfa_evidence_chain::Column::PrunedThrough, Expr::value(s.sequence))
            .col_expr(mfa_evidence_chain::Column::PrunedDigest, Expr::value(s.digest.clone()))
            .col_expr(mfa_evidence_chain::Column::PrunedBefore, Expr::value(horizon))
            .filter(mfa_evidence_chain::Column::AccountId.eq(account_id))
            .filter(mfa_evidence_chain::Column::MicrosoftTenantId.eq(tenant.clone()))
            .exec(db)
            .await?;
    }
    for chunk in old.chunks(CHUNK * 4) {
        mfa_evidence_snapshot::Entity::delete_many()
            .filter(mfa_evidence_snapshot::Column::Id.is_in(chunk.iter().map(|s| s.id)))
            .exec(db)
            .await?;
    }
    let history_rows = mfa_history::Entity::delete_many()
        .filter(mfa_history::Column::AccountId.eq(account_id))
        .filter(mfa_history::Column::ValidTo.lt(horizon))
        .exec(db)
        .await?
        .rows_affected;
    Ok(Pruned { snapshots: old.len() as u64, history_rows })
}

/// One snapshot of the account.
pub async fn snapshot(
    db: &impl ConnectionTrait,
    account_id: i64,
    id: i64,
) -> Result<Option<mfa_evidence_snapshot::Model>, DbErr> {
    mfa_evidence_snapshot::Entity::find_by_id(id)
        .filter(mfa_evidence_snapshot::Column::AccountId.eq(account_id))
        .one(db)
        .await
}

/// Which snapshots to list.
#[derive(Clone, Debug, Default)]
pub struct SnapshotFilter {
    pub tenant_row: Option<i64>,
    pub client_id: Option<i64>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
}

/// A page of the account's snapshots, oldest first, after `after` (an id), and the total.
pub async fn snapshots_page(
    db: &impl ConnectionTrait,
    account_id: i64,
    f: &SnapshotFilter,
    after: Option<i64>,
    limit: u64,
    with_total: bool,
) -> Result<(Vec<mfa_evidence_snapshot::Model>, u64), DbErr> {
    use mfa_evidence_snapshot::Column as C;
    let mut q = mfa_evidence_snapshot::Entity::find().filter(C::AccountId.eq(account_id));
    if let Some(t) = f.tenant_row {
        q = q.filter(C::TenantId.eq(t));
    }
    if let Some(c) = f.client_id {
        q = q.filter(C::ClientId.eq(c));
    }
    if let Some(from) = f.from {
        q = q.filter(C::TakenAt.gte(from));
    }
    if let Some(to) = f.to {
        q = q.filter(C::TakenAt.lte(to));
    }
    let total = if with_total { q.clone().count(db).await? } else { 0 };
    if let Some(a) = after {
        q = q.filter(C::Id.gt(a));
    }
    Ok((q.order_by_asc(C::Id).limit(limit).all(db).await?, total))
}

/// Per tenant, when its newest snapshot at or before `at` was taken (how fresh an `asOf`
/// answer's data was).
pub async fn confirmed_at(
    db: &impl ConnectionTrait,
    account_id: i64,
    at: DateTime<Utc>,
) -> Result<HashMap<i64, DateTime<Utc>>, DbErr> {
    use mfa_evidence_snapshot::Column as C;
    let rows: Vec<(i64, Option<DateTime<Utc>>)> = mfa_evidence_snapshot::Entity::find()
        .select_only()
        .column(C::TenantId)
        .column_as(C::TakenAt.max(), "taken")
        .filter(C::AccountId.eq(account_id))
        .filter(C::TakenAt.lte(at))
        .group_by(C::TenantId)
        .into_tuple()
        .all(db)
        .await?;
    Ok(rows.into_iter().filter_map(|(t, at)| at.map(|at| (t, at))).collect())
}

/// Every chain (of one account, or of all).
pub async fn chains(
    db: &impl ConnectionTrait,
    account_id: Option<i64>,
) -> Result<Vec<mfa_evidence_chain::Model>, DbErr> {
    let mut q = mfa_evidence_chain::Entity::find();
    if let Some(a) = account_id {
        q = q.filter(mfa_evidence_chain::Column::AccountId.eq(a));
    }
    q.order_by_asc(mfa_evidence_chain::Column::AccountId).order_by_asc(mfa_evidence_chain::Column::Id).all(db).await
}

/// The `(account, tenant)` pairs that have snapshots.
pub async fn snapshot_chains(
    db: &impl ConnectionTrait,
    account_id: Option<i64>,
) -> Result<Vec<(i64, TenantGuid)>, DbErr> {
    use mfa_evidence_snapshot::Column as C;
    let mut q =
        mfa_evidence_snapshot::Entity::find().select_only().columns([C::AccountId, C::MicrosoftTenantId]).distinct();
    if let Some(a) = account_id {
        q = q.filter(C::AccountId.eq(a));
    }
    q.into_tuple().all(db).await
}

/// A chain's snapshots by sequence.
pub async fn chain_snapshots(
    db: &impl ConnectionTrait,
    account_id: i64,
    tenant: &TenantGuid,
) -> Result<Vec<mfa_evidence_snapshot::Model>, DbErr> {
    use mfa_evidence_snapshot::Column as C;
    mfa_evidence_snapshot::Entity::find()
        .filter(C::AccountId.eq(account_id))
        .filter(C::MicrosoftTenantId.eq(tenant.clone()))
        .order_by_asc(C::Sequence)
        .all(db)
        .await
}

/// Accounts holding evidence older than `horizon` (snapshots taken, or history rows ended, before
/// it).
pub async fn accounts_past(db: &impl ConnectionTrait, horizon: DateTime<Utc>) -> Result<Vec<i64>, DbErr> {
    let mut ids: Vec<i64> = mfa_evidence_snapshot::Entity::find()
        .select_only()
        .column(mfa_evidence_snapshot::Column::AccountId)
        .filter(mfa_evidence_snapshot::Column::TakenAt.lt(horizon))
        .distinct()
        .into_tuple()
        .all(db)
        .await?;
    ids.extend(
        mfa_history::Entity::find()
            .select_only()
            .column(mfa_history::Column::AccountId)
            .filter(mfa_history::Column::ValidTo.lt(horizon))
            .distinct()
            .into_tuple::<i64>()
            .all(db)
            .await?,
    );
    ids.sort_unstable();
    ids.dedup();
    Ok(ids)
}
