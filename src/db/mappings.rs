//! Queries on `tenant_mapping`, and the client data suggestions are scored on.

use chrono::{DateTime, Utc};
use entity::{client, contact, states::MappingMethod, tenant_mapping, types::StringList};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, PaginatorTrait, QueryFilter, QuerySelect, Set,
};

/// Inserts a mapping; `None` when the tenant is already mapped (the unique index says so).
pub async fn create(
    db: &impl ConnectionTrait,
    account_id: i64,
    tenant_row: i64,
    client_id: i64,
    method: MappingMethod,
    by: &str,
    now: DateTime<Utc>,
) -> Result<Option<tenant_mapping::Model>, DbErr> {
    let res = tenant_mapping::ActiveModel {
        account_id: Set(account_id),
        tenant_id: Set(tenant_row),
        client_id: Set(client_id),
        method: Set(method),
        created_by: Set(by.to_owned()),
        created_at: Set(now),
        ..Default::default()
    }
    .insert(db)
    .await;
    super::unless_duplicate(res)
}

/// Deletes a tenant's mapping; false when there was none.
pub async fn delete(db: &impl ConnectionTrait, account_id: i64, tenant_row: i64) -> Result<bool, DbErr> {
    let res = tenant_mapping::Entity::delete_many()
        .filter(tenant_mapping::Column::AccountId.eq(account_id))
        .filter(tenant_mapping::Column::TenantId.eq(tenant_row))
        .exec(db)
        .await?;
    Ok(res.rows_affected > 0)
}

/// Mappings of the given tenants.
pub async fn by_tenants(db: &impl ConnectionTrait, tenant_rows: &[i64]) -> Result<Vec<tenant_mapping::Model>, DbErr> {
    tenant_mapping::Entity::find()
        .filter(tenant_mapping::Column::TenantId.is_in(tenant_rows.iter().copied()))
        .all(db)
        .await
}

/// Number of the account's mapped tenants.
pub async fn count(db: &impl ConnectionTrait, account_id: i64) -> Result<u64, DbErr> {
    tenant_mapping::Entity::find().filter(tenant_mapping::Column::AccountId.eq(account_id)).count(db).await
}

/// Tenants (rows) mapped to the given clients.
pub async fn tenants_of_clients(db: &impl ConnectionTrait, client_ids: &[i64]) -> Result<Vec<i64>, DbErr> {
    tenant_mapping::Entity::find()
        .select_only()
        .column(tenant_mapping::Column::TenantId)
        .filter(tenant_mapping::Column::ClientId.is_in(client_ids.iter().copied()))
        .into_tuple()
        .all(db)
        .await
}

/// What suggestions are scored from, as stored: every client of the account, each contact's
/// client and e-mail addresses, and every mapping as `(client id, tenant row)`. Three
/// statements whatever the number of tenants.
#[derive(Debug, Default)]
pub struct CandidateRows {
    pub clients: Vec<client::Model>,
    pub contact_emails: Vec<(i64, StringList)>,
    pub mappings: Vec<(i64, i64)>,
}

/// The account's [`CandidateRows`].
pub async fn candidate_rows(db: &impl ConnectionTrait, account_id: i64) -> Result<CandidateRows, DbErr> {
    let clients = client::Entity::find().filter(client::Column::AccountId.eq(account_id)).all(db).await?;
    let contact_emails = contact::Entity::find()
        .select_only()
        .columns([contact::Column::ClientId, contact::Column::Emails])
        .filter(contact::Column::AccountId.eq(account_id))
        .into_tuple()
        .all(db)
        .await?;
    let mappings = tenant_mapping::Entity::find()
        .select_only()
        .columns([tenant_mapping::Column::ClientId, tenant_mapping::Column::TenantId])
        .filter(tenant_mapping::Column::AccountId.eq(account_id))
        .into_tuple()
        .all(db)
        .await?;
    Ok(CandidateRows { clients, contact_emails, mappings })
}
