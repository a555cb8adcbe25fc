//! Queries on `tenant_mapping`, and the client data suggestions are scored on.

use chrono::{DateTime, Utc};
use entity::{client, contact, m365_tenant, states::MappingMethod, tenant_mapping, types::StringList};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, IdenStatic, PaginatorTrait, QueryFilter,
    QuerySelect, Set, sea_query::Expr,
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

/// The given tenants with their mapping and its client, if mapped (one statement: the tenants
/// left-joined to both).
pub async fn tenants_with_clients(
    db: &impl ConnectionTrait,
    tenant_rows: &[i64],
) -> Result<Vec<(m365_tenant::Model, Option<tenant_mapping::Model>, Option<client::Model>)>, DbErr> {
    use sea_orm::{
        FromQueryResult, Iterable,
        sea_query::{Alias, ExprTrait, Query},
    };
    use {client::Column as C, m365_tenant::Column as T, tenant_mapping::Column as M};
    if tenant_rows.is_empty() {
        return Ok(vec![]);
    }
    let (tenant, mapping, cl) = (m365_tenant::Entity, tenant_mapping::Entity, client::Entity);
    let mut q = Query::select();
    // Each table's columns under its own prefix, read back with `from_query_result(row, prefix)`.
    for c in T::iter() {
        q.expr_as(Expr::col((tenant, c)), Alias::new(format!("t_{}", c.as_str())));
    }
    for c in M::iter() {
        q.expr_as(Expr::col((mapping, c)), Alias::new(format!("m_{}", c.as_str())));
    }
    for c in C::iter() {
        q.expr_as(Expr::col((cl, c)), Alias::new(format!("c_{}", c.as_str())));
    }
    q.from(tenant)
        .left_join(mapping, Expr::col((mapping, M::TenantId)).equals((tenant, T::Id)))
        .left_join(cl, Expr::col((cl, C::Id)).equals((mapping, M::ClientId)))
        .and_where(Expr::col((tenant, T::Id)).is_in(tenant_rows.iter().copied()));
    let mut out = vec![];
    for r in db.query_all(&q).await? {
        let t = m365_tenant::Model::from_query_result(&r, "t_")?;
        // A null id means the left join found nothing.
        let m = match r.try_get::<Option<i64>>("", "m_id")? {
            Some(_) => Some(tenant_mapping::Model::from_query_result(&r, "m_")?),
            None => None,
        };
        let c = match r.try_get::<Option<i64>>("", "c_id")? {
            Some(_) => Some(client::Model::from_query_result(&r, "c_")?),
            None => None,
        };
        out.push((t, m, c));
    }
    Ok(out)
}
