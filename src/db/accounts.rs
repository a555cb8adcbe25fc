//! Queries on `account`.

use entity::account;
use sea_orm::{ActiveModelTrait, ConnectionTrait, DbErr, EntityTrait, QueryOrder, Set};

/// Creates an account.
pub async fn create(db: &impl ConnectionTrait, name: &str, m365_enabled: bool) -> Result<account::Model, DbErr> {
    account::ActiveModel {
        name: Set(name.to_owned()),
        m365_enabled: Set(m365_enabled),
        created_at: Set(chrono::Utc::now()),
        ..Default::default()
    }
    .insert(db)
    .await
}

/// One account by id.
pub async fn get(db: &impl ConnectionTrait, id: i64) -> Result<Option<account::Model>, DbErr> {
    account::Entity::find_by_id(id).one(db).await
}

/// All accounts, oldest first.
pub async fn list(db: &impl ConnectionTrait) -> Result<Vec<account::Model>, DbErr> {
    account::Entity::find().order_by_asc(account::Column::Id).all(db).await
}

/// Switches the Microsoft 365 tab on or off; `None` when there is no such account.
pub async fn set_m365_enabled(
    db: &impl ConnectionTrait,
    id: i64,
    enabled: bool,
) -> Result<Option<account::Model>, DbErr> {
    let Some(acc) = get(db, id).await? else { return Ok(None) };
    let mut am: account::ActiveModel = acc.into();
    am.m365_enabled = Set(enabled);
    am.update(db).await.map(Some)
}
