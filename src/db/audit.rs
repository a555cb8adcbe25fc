//! Queries on `audit_event` (insert and read only: the trail is append-only).

use chrono::{DateTime, Utc};
use entity::audit_event;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect, Set,
};
use serde_json::Value;

/// Appends one event.
pub async fn insert(
    db: &impl ConnectionTrait,
    account_id: i64,
    kind: &str,
    actor: &str,
    detail: Value,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    audit_event::ActiveModel {
        account_id: Set(account_id),
        kind: Set(kind.to_owned()),
        actor: Set(actor.to_owned()),
        detail: Set(detail),
        created_at: Set(now),
        ..Default::default()
    }
    .insert(db)
    .await
    .map(|_| ())
}

/// Which events to list.
#[derive(Clone, Copy, Debug, Default)]
pub struct Filter<'a> {
    /// Only this kind.
    pub kind: Option<&'a str>,
    /// Only events at or after this time.
    pub since: Option<DateTime<Utc>>,
}

/// A page of the account's events, newest first, starting below the id `before`.
pub async fn page(
    db: &impl ConnectionTrait,
    account_id: i64,
    filter: Filter<'_>,
    before: Option<i64>,
    limit: u64,
    with_total: bool,
) -> Result<(Vec<audit_event::Model>, u64), DbErr> {
    let mut q = audit_event::Entity::find().filter(audit_event::Column::AccountId.eq(account_id));
    if let Some(k) = filter.kind {
        q = q.filter(audit_event::Column::Kind.eq(k));
    }
    if let Some(s) = filter.since {
        q = q.filter(audit_event::Column::CreatedAt.gte(s));
    }
    let total = if with_total { q.clone().count(db).await? } else { 0 };
    if let Some(b) = before {
        q = q.filter(audit_event::Column::Id.lt(b));
    }
    let rows = q.order_by_desc(audit_event::Column::Id).limit(limit).all(db).await?;
    Ok((rows, total))
}
