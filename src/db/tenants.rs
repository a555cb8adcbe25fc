//! Queries on `m365_tenant` and `tenant_mapping`, scoped by account.

use chrono::{DateTime, Utc};
use entity::{
    m365_license, m365_tenant, m365_user, m365_user_count, m365_user_license,
    states::{MfaSource, TenantOutcome},
    tenant_mapping,
    types::{MfaPolicy, StringList, TenantGuid},
};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, Set,
    sea_query::OnConflict,
};

/// A tenant found through GDAP, as stored.
#[derive(Clone, Copy, Debug)]
pub struct NewTenant<'a> {
    pub tenant_id: &'a TenantGuid,
    pub display_name: &'a str,
    /// Role template ids held.
    pub gdap_roles: &'a [String],
}

/// Inserts newly discovered tenants and refreshes names and roles of known ones.
pub async fn upsert_discovered(
    db: &impl ConnectionTrait,
    account_id: i64,
    found: &[NewTenant<'_>],
    now: DateTime<Utc>,
) -> Result<Vec<m365_tenant::Model>, DbErr> {
    for chunk in found.chunks(500) {
        let rows = chunk.iter().map(|t| m365_tenant::ActiveModel {
            account_id: Set(account_id),
            microsoft_tenant_id: Set(t.tenant_id.clone()),
            display_name: Set(t.display_name.to_owned()),
            default_domain: Set(None),
            domains: Set(StringList::default()),
            gdap_roles: Set(StringList(t.gdap_roles.to_vec())),
            sync_status: Set(None),
            sync_error_code: Set(None),
            sync_error: Set(None),
            remediation: Set(None),
            mfa_source: Set(None),
            last_synced_at: Set(None),
            mfa_policy: Set(None),
            created_at: Set(now),
            ..Default::default()
        });
        m365_tenant::Entity::insert_many(rows)
            .on_conflict(
                OnConflict::columns([m365_tenant::Column::AccountId, m365_tenant::Column::MicrosoftTenantId])
                    .update_columns([m365_tenant::Column::DisplayName, m365_tenant::Column::GdapRoles])
                    .to_owned(),
            )
            .exec_without_returning(db)
            .await?;
    }
    list(db, account_id).await
}

/// The account's tenants, oldest first.
pub async fn list(db: &impl ConnectionTrait, account_id: i64) -> Result<Vec<m365_tenant::Model>, DbErr> {
    m365_tenant::Entity::find()
        .filter(m365_tenant::Column::AccountId.eq(account_id))
        .order_by_asc(m365_tenant::Column::Id)
        .all(db)
        .await
}

/// One tenant of the account.
pub async fn get(db: &impl ConnectionTrait, account_id: i64, id: i64) -> Result<Option<m365_tenant::Model>, DbErr> {
    m365_tenant::Entity::find_by_id(id).filter(m365_tenant::Column::AccountId.eq(account_id)).one(db).await
}

/// Removes a tenant and everything synced under it (used when GDAP no longer reaches it).
pub async fn remove(db: &impl ConnectionTrait, tenant_row: i64) -> Result<(), DbErr> {
    m365_user_license::Entity::delete_many()
        .filter(m365_user_license::Column::TenantId.eq(tenant_row))
        .exec(db)
        .await?;
    m365_user::Entity::delete_many().filter(m365_user::Column::TenantId.eq(tenant_row)).exec(db).await?;
    m365_user_count::Entity::delete_many().filter(m365_user_count::Column::TenantId.eq(tenant_row)).exec(db).await?;
    m365_license::Entity::delete_many().filter(m365_license::Column::TenantId.eq(tenant_row)).exec(db).await?;
    tenant_mapping::Entity::delete_many().filter(tenant_mapping::Column::TenantId.eq(tenant_row)).exec(db).await?;
    m365_tenant::Entity::delete_by_id(tenant_row).exec(db).await?;
    Ok(())
}

/// Sync outcome columns of a tenant.
pub struct OutcomeColumns<'a> {
    pub status: TenantOutcome,
    pub error_code: Option<&'a str>,
    pub error: Option<&'a str>,
    pub remediation: Option<&'a str>,
}

/// What a successful read of a tenant learned about it.
pub struct TenantDetails<'a> {
    pub display_name: &'a str,
    pub default_domain: Option<&'a str>,
    pub domains: &'a [String],
    pub mfa_source: Option<MfaSource>,
    pub mfa_policy: Option<&'a MfaPolicy>,
}

/// Records a tenant's sync outcome (and, when read, its organization details and MFA source).
pub async fn record_outcome(
    db: &impl ConnectionTrait,
    tenant: &m365_tenant::Model,
    outcome: OutcomeColumns<'_>,
    details: Option<TenantDetails<'_>>,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    let mut am: m365_tenant::ActiveModel = tenant.clone().into();
    am.sync_status = Set(Some(outcome.status));
    am.sync_error_code = Set(outcome.error_code.map(str::to_owned));
    am.sync_error = Set(outcome.error.map(str::to_owned));
    am.remediation = Set(outcome.remediation.map(str::to_owned));
    if let Some(d) = details {
        am.display_name = Set(d.display_name.to_owned());
        am.default_domain = Set(d.default_domain.map(str::to_owned));
        am.domains = Set(StringList(d.domains.to_vec()));
        am.mfa_source = Set(d.mfa_source);
        am.mfa_policy = Set(d.mfa_policy.cloned());
        am.last_synced_at = Set(Some(now));
    }
    am.update(db).await.map(|_| ())
}

/// The mapping of a tenant, if any.
pub async fn mapping_of(db: &impl ConnectionTrait, tenant_row: i64) -> Result<Option<tenant_mapping::Model>, DbErr> {
    tenant_mapping::Entity::find().filter(tenant_mapping::Column::TenantId.eq(tenant_row)).one(db).await
}

/// Filter of the tenant list.
#[derive(Clone, Debug, Default)]
pub struct TenantFilter {
    /// Only mapped (true) or unmapped (false) tenants.
    pub mapped: Option<bool>,
    /// Case-insensitive substring of the name or default domain.
    pub search: Option<String>,
}

/// Escapes a user string for `LIKE … ESCAPE '\'`, lower-cased, as `%text%`.
pub fn like_pattern(s: &str) -> String {
    format!("%{}%", s.to_lowercase().replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_"))
}

/// A page of the account's tenants ordered by id after `after`, and (when `with_total`) the
/// total matching.
pub async fn page(
    db: &impl ConnectionTrait,
    account_id: i64,
    filter: &TenantFilter,
    after: Option<i64>,
    limit: u64,
    with_total: bool,
) -> Result<(Vec<m365_tenant::Model>, u64), DbErr> {
    use sea_orm::{
        Condition, PaginatorTrait, QuerySelect,
        sea_query::{Expr, ExprTrait, Func, LikeExpr, Query},
    };
    let mut q = m365_tenant::Entity::find().filter(m365_tenant::Column::AccountId.eq(account_id));
    if let Some(mapped) = filter.mapped {
        let sub = Query::select().column(tenant_mapping::Column::TenantId).from(tenant_mapping::Entity).to_owned();
        q = if mapped {
            q.filter(m365_tenant::Column::Id.in_subquery(sub))
        } else {
            q.filter(m365_tenant::Column::Id.not_in_subquery(sub))
        };
    }
    if let Some(s) = filter.search.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        let p = like_pattern(s);
        q = q.filter(
            Condition::any()
                .add(
                    Expr::expr(Func::lower(Expr::col(m365_tenant::Column::DisplayName)))
                        .like(LikeExpr::new(p.clone()).escape('\\')),
                )
                .add(
                    Expr::expr(Func::lower(Expr::col(m365_tenant::Column::DefaultDomain)))
                        .like(LikeExpr::new(p).escape('\\')),
                ),
        );
    }
    let total = if with_total { q.clone().count(db).await? } else { 0 };
    if let Some(a) = after {
        q = q.filter(m365_tenant::Column::Id.gt(a));
    }
    Ok((q.order_by_asc(m365_tenant::Column::Id).limit(limit).all(db).await?, total))
}

/// Tenants by id (callers pass ids they already scoped).
pub async fn by_ids(db: &impl ConnectionTrait, ids: &[i64]) -> Result<Vec<m365_tenant::Model>, DbErr> {
    m365_tenant::Entity::find().filter(m365_tenant::Column::Id.is_in(ids.iter().copied())).all(db).await
}

/// Number of the account's tenants.
pub async fn count(db: &impl ConnectionTrait, account_id: i64) -> Result<u64, DbErr> {
    use sea_orm::PaginatorTrait;
    m365_tenant::Entity::find().filter(m365_tenant::Column::AccountId.eq(account_id)).count(db).await
}
