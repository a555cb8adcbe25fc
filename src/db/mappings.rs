//! Queries on `tenant_mapping`, and the client data suggestions are scored on.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use entity::{client, contact, states::MappingMethod, tenant_mapping};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, PaginatorTrait, QueryFilter, QuerySelect, Set,
};

use crate::mapping::suggest::Candidate;

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

/// Every client of the account as a suggestion candidate (with its contacts' e-mail domains and
/// which tenant it is mapped to, if any): three statements whatever the number of tenants.
pub async fn candidates(
    db: &impl ConnectionTrait,
    account_id: i64,
) -> Result<(Vec<Candidate>, HashMap<i64, HashSet<i64>>), DbErr> {
    let clients = client::Entity::find().filter(client::Column::AccountId.eq(account_id)).all(db).await?;
    let contacts: Vec<(i64, entity::types::StringList)> = contact::Entity::find()
        .select_only()
        .columns([contact::Column::ClientId, contact::Column::Emails])
        .filter(contact::Column::AccountId.eq(account_id))
        .into_tuple()
        .all(db)
        .await?;
    let mappings: Vec<(i64, i64)> = tenant_mapping::Entity::find()
        .select_only()
        .columns([tenant_mapping::Column::ClientId, tenant_mapping::Column::TenantId])
        .filter(tenant_mapping::Column::AccountId.eq(account_id))
        .into_tuple()
        .all(db)
        .await?;
    let mut domains: HashMap<i64, HashMap<String, usize>> = HashMap::new();
    for (client_id, emails) in contacts {
        let mut seen = HashSet::new();
        for e in emails.0 {
            if let Some((_, d)) = e.rsplit_once('@')
                && seen.insert(d.to_owned())
            {
                *domains.entry(client_id).or_default().entry(d.to_owned()).or_default() += 1;
            }
        }
    }
    let mut mapped: HashMap<i64, HashSet<i64>> = HashMap::new();
    for (client_id, tenant) in mappings {
        mapped.entry(client_id).or_default().insert(tenant);
    }
    let candidates = clients
        .into_iter()
        .map(|c| Candidate::new(c.id, c.name, c.domains.0, domains.remove(&c.id).unwrap_or_default()))
        .collect();
    Ok((candidates, mapped))
}
