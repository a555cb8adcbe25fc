//! Queries on `client` and `contact`, always scoped by account.

use std::collections::HashMap;

use entity::{client, contact, types::StringList};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect,
    sea_query::{Expr, ExprTrait, Func, LikeExpr, OnConflict},
};

/// A validated client to store.
pub struct ClientRow {
    pub source: String,
    pub external_id: String,
    pub name: String,
    pub domains: Vec<String>,
}

/// A validated contact to store, its client resolved.
pub struct ContactRow {
    pub client_id: i64,
    pub source: String,
    pub external_id: String,
    pub name: String,
    pub emails: Vec<String>,
}

/// How many rows go into one INSERT (keeps within SQLite's bound-parameter limit).
const CHUNK: usize = 500;

fn key_condition<C: ColumnTrait>(source: C, external: C, keys: &[(String, String)]) -> Condition {
    keys.iter().fold(Condition::any(), |cond, (s, e)| {
        cond.add(Condition::all().add(source.eq(s.as_str())).add(external.eq(e.as_str())))
    })
}

/// Inserts or updates clients by (source, external id); returns them in input order.
pub async fn upsert_clients(
    db: &impl ConnectionTrait,
    account_id: i64,
    rows: &[ClientRow],
) -> Result<Vec<client::Model>, DbErr> {
    if rows.is_empty() {
        return Ok(vec![]);
    }
    let now = chrono::Utc::now();
    for chunk in rows.chunks(CHUNK) {
        let models = chunk.iter().map(|r| client::ActiveModel {
            account_id: sea_orm::Set(account_id),
            source: sea_orm::Set(r.source.clone()),
            external_id: sea_orm::Set(r.external_id.clone()),
            name: sea_orm::Set(r.name.clone()),
            domains: sea_orm::Set(StringList(r.domains.clone())),
            created_at: sea_orm::Set(now),
            updated_at: sea_orm::Set(now),
            ..Default::default()
        });
        client::Entity::insert_many(models)
            .on_conflict(
                OnConflict::columns([client::Column::AccountId, client::Column::Source, client::Column::ExternalId])
                    .update_columns([client::Column::Name, client::Column::Domains, client::Column::UpdatedAt])
                    .to_owned(),
            )
            .exec_without_returning(db)
            .await?;
    }
    let keys: Vec<(String, String)> = rows.iter().map(|r| (r.source.clone(), r.external_id.clone())).collect();
    let mut found = HashMap::new();
    for chunk in keys.chunks(CHUNK) {
        for m in client::Entity::find()
            .filter(client::Column::AccountId.eq(account_id))
            .filter(key_condition(client::Column::Source, client::Column::ExternalId, chunk))
            .all(db)
            .await?
        {
            found.insert((m.source.clone(), m.external_id.clone()), m);
        }
    }
    Ok(keys.iter().filter_map(|k| found.remove(k)).collect())
}

/// Client ids by (source, external id), for the keys that exist in the account.
pub async fn client_ids_by_key(
    db: &impl ConnectionTrait,
    account_id: i64,
    keys: &[(String, String)],
) -> Result<HashMap<(String, String), i64>, DbErr> {
    let mut out = HashMap::new();
    for chunk in keys.chunks(CHUNK) {
        let rows: Vec<(i64, String, String)> = client::Entity::find()
            .select_only()
            .columns([client::Column::Id, client::Column::Source, client::Column::ExternalId])
            .filter(client::Column::AccountId.eq(account_id))
            .filter(key_condition(client::Column::Source, client::Column::ExternalId, chunk))
            .into_tuple()
            .all(db)
            .await?;
        out.extend(rows.into_iter().map(|(id, s, e)| ((s, e), id)));
    }
    Ok(out)
}

/// Client ids that the contacts with these (source, external id) keys belong to now.
pub async fn clients_of_contacts(
    db: &impl ConnectionTrait,
    account_id: i64,
    keys: &[(String, String)],
) -> Result<Vec<i64>, DbErr> {
    let mut out = vec![];
    for chunk in keys.chunks(CHUNK) {
        let ids: Vec<i64> = contact::Entity::find()
            .select_only()
            .column(contact::Column::ClientId)
            .distinct()
            .filter(contact::Column::AccountId.eq(account_id))
            .filter(key_condition(contact::Column::Source, contact::Column::ExternalId, chunk))
            .into_tuple()
            .all(db)
            .await?;
        out.extend(ids);
    }
    Ok(out)
}

/// Inserts or updates contacts by (source, external id); returns them in input order.
pub async fn upsert_contacts(
    db: &impl ConnectionTrait,
    account_id: i64,
    rows: &[ContactRow],
) -> Result<Vec<contact::Model>, DbErr> {
    if rows.is_empty() {
        return Ok(vec![]);
    }
    let now = chrono::Utc::now();
    for chunk in rows.chunks(CHUNK) {
        let models = chunk.iter().map(|r| contact::ActiveModel {
            account_id: sea_orm::Set(account_id),
            client_id: sea_orm::Set(r.client_id),
            source: sea_orm::Set(r.source.clone()),
            external_id: sea_orm::Set(r.external_id.clone()),
            name: sea_orm::Set(r.name.clone()),
            emails: sea_orm::Set(StringList(r.emails.clone())),
            created_at: sea_orm::Set(now),
            updated_at: sea_orm::Set(now),
            ..Default::default()
        });
        contact::Entity::insert_many(models)
            .on_conflict(
                OnConflict::columns([contact::Column::AccountId, contact::Column::Source, contact::Column::ExternalId])
                    .update_columns([
                        contact::Column::ClientId,
                        contact::Column::Name,
                        contact::Column::Emails,
                        contact::Column::UpdatedAt,
                    ])
                    .to_owned(),
            )
            .exec_without_returning(db)
            .await?;
    }
    let keys: Vec<(String, String)> = rows.iter().map(|r| (r.source.clone(), r.external_id.clone())).collect();
    let mut found = HashMap::new();
    for chunk in keys.chunks(CHUNK) {
        for m in contact::Entity::find()
            .filter(contact::Column::AccountId.eq(account_id))
            .filter(key_condition(contact::Column::Source, contact::Column::ExternalId, chunk))
            .all(db)
            .await?
        {
            found.insert((m.source.clone(), m.external_id.clone()), m);
        }
    }
    Ok(keys.iter().filter_map(|k| found.remove(k)).collect())
}

/// A page of the account's clients ordered by id, after `after`, optionally filtered by a
/// case-insensitive name search; and (when `with_total`) the total matching.
pub async fn page(
    db: &impl ConnectionTrait,
    account_id: i64,
    search: Option<&str>,
    after: Option<i64>,
    limit: u64,
    with_total: bool,
) -> Result<(Vec<client::Model>, u64), DbErr> {
    let mut q = client::Entity::find().filter(client::Column::AccountId.eq(account_id));
    if let Some(s) = search.map(str::trim).filter(|s| !s.is_empty()) {
        let pattern = format!("%{}%", s.to_lowercase().replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_"));
        q = q
            .filter(Expr::expr(Func::lower(Expr::col(client::Column::Name))).like(LikeExpr::new(pattern).escape('\\')));
    }
    let total = if with_total { q.clone().count(db).await? } else { 0 };
    if let Some(a) = after {
        q = q.filter(client::Column::Id.gt(a));
    }
    let rows = q.order_by_asc(client::Column::Id).limit(limit).all(db).await?;
    Ok((rows, total))
}

/// One client of the account.
pub async fn get(db: &impl ConnectionTrait, account_id: i64, id: i64) -> Result<Option<client::Model>, DbErr> {
    client::Entity::find_by_id(id).filter(client::Column::AccountId.eq(account_id)).one(db).await
}

/// Clients by id (any account; callers pass ids they already scoped).
pub async fn by_ids(db: &impl ConnectionTrait, ids: &[i64]) -> Result<Vec<client::Model>, DbErr> {
    client::Entity::find().filter(client::Column::Id.is_in(ids.iter().copied())).all(db).await
}

/// Contacts of the given clients, ordered by id.
pub async fn contacts_of(db: &impl ConnectionTrait, client_ids: &[i64]) -> Result<Vec<contact::Model>, DbErr> {
    contact::Entity::find()
        .filter(contact::Column::ClientId.is_in(client_ids.iter().copied()))
        .order_by_asc(contact::Column::Id)
        .all(db)
        .await
}

/// Contacts by id (callers pass ids they already scoped).
pub async fn contacts_by_ids(db: &impl ConnectionTrait, ids: &[i64]) -> Result<Vec<contact::Model>, DbErr> {
    contact::Entity::find().filter(contact::Column::Id.is_in(ids.iter().copied())).all(db).await
}
