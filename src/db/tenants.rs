//! Queries on `m365_tenant` and `tenant_mapping`, scoped by account.

use chrono::{DateTime, Utc};
use entity::{m365_license, m365_tenant, m365_user, m365_user_license, tenant_mapping, types::StringList};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, Set,
    sea_query::OnConflict,
};

/// A tenant found through GDAP.
#[derive(Clone, Debug)]
pub struct Discovered {
    /// Microsoft tenant id.
    pub tenant_id: String,
    /// Name from the relationship.
    pub display_name: String,
    /// Role names held.
    pub gdap_roles: Vec<String>,
}

/// Inserts newly discovered tenants and refreshes names and roles of known ones.
pub async fn upsert_discovered(
    db: &impl ConnectionTrait,
    account_id: i64,
    found: &[Discovered],
    now: DateTime<Utc>,
) -> Result<Vec<m365_tenant::Model>, DbErr> {
    for chunk in found.chunks(500) {
        let rows = chunk.iter().map(|t| m365_tenant::ActiveModel {
            account_id: Set(account_id),
            tenant_id: Set(t.tenant_id.clone()),
            display_name: Set(t.display_name.clone()),
            default_domain: Set(None),
            domains: Set(StringList::default()),
            gdap_roles: Set(StringList(t.gdap_roles.clone())),
            sync_status: Set(None),
            sync_error_code: Set(None),
            sync_error: Set(None),
            remediation: Set(None),
            mfa_source: Set(None),
            last_synced_at: Set(None),
            created_at: Set(now),
            ..Default::default()
        });
        m365_tenant::Entity::insert_many(rows)
            .on_conflict(
                OnConflict::columns([m365_tenant::Column::AccountId, m365_tenant::Column::TenantId])
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
    m365_license::Entity::delete_many().filter(m365_license::Column::TenantId.eq(tenant_row)).exec(db).await?;
    tenant_mapping::Entity::delete_many().filter(tenant_mapping::Column::TenantId.eq(tenant_row)).exec(db).await?;
    m365_tenant::Entity::delete_by_id(tenant_row).exec(db).await?;
    Ok(())
}

/// Sync outcome columns of a tenant.
pub struct TenantOutcome<'a> {
    pub status: &'a str,
    pub error_code: Option<&'a str>,
    pub error: Option<&'a str>,
    pub remediation: Option<&'a str>,
}

/// What a successful read of a tenant learned about it.
pub struct TenantDetails<'a> {
    pub display_name: &'a str,
    pub default_domain: Option<&'a str>,
    pub domains: &'a [String],
    pub mfa_source: Option<&'a str>,
}

/// Records a tenant's sync outcome (and, when read, its organization details and MFA source).
pub async fn record_outcome(
    db: &impl ConnectionTrait,
    tenant: &m365_tenant::Model,
    outcome: TenantOutcome<'_>,
    details: Option<TenantDetails<'_>>,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    let mut am: m365_tenant::ActiveModel = tenant.clone().into();
    am.sync_status = Set(Some(outcome.status.to_owned()));
    am.sync_error_code = Set(outcome.error_code.map(str::to_owned));
    am.sync_error = Set(outcome.error.map(str::to_owned));
    am.remediation = Set(outcome.remediation.map(str::to_owned));
    if let Some(d) = details {
        am.display_name = Set(d.display_name.to_owned());
        am.default_domain = Set(d.default_domain.map(str::to_owned));
        am.domains = Set(StringList(d.domains.to_vec()));
        am.mfa_source = Set(d.mfa_source.map(str::to_owned));
        am.last_synced_at = Set(Some(now));
    }
    am.update(db).await.map(|_| ())
}

/// The mapping of a tenant, if any.
pub async fn mapping_of(db: &impl ConnectionTrait, tenant_row: i64) -> Result<Option<tenant_mapping::Model>, DbErr> {
    tenant_mapping::Entity::find().filter(tenant_mapping::Column::TenantId.eq(tenant_row)).one(db).await
}
