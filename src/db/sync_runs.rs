//! Queries on `sync_run`.

use entity::sync_run;
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect};

/// Statuses of a run that has not ended.
pub const ACTIVE: [&str; 2] = ["queued", "running"];

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
