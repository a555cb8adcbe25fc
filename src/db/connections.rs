//! Queries on `m365_connection`.

use entity::m365_connection;
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter};

/// The account's connection, if any.
pub async fn get(db: &impl ConnectionTrait, account_id: i64) -> Result<Option<m365_connection::Model>, DbErr> {
    m365_connection::Entity::find().filter(m365_connection::Column::AccountId.eq(account_id)).one(db).await
}
