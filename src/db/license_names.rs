//! Queries on `license_name` (the cached product names; not scoped by account: Microsoft's).

use chrono::{DateTime, Utc};
use entity::license_name;
use sea_orm::{ConnectionTrait, DbErr, EntityTrait, Set, sea_query::OnConflict};

use crate::microsoft::licensing::ProductName;

/// Inserts or updates names, 500 rows per statement.
pub async fn upsert(db: &impl ConnectionTrait, names: &[ProductName], now: DateTime<Utc>) -> Result<(), DbErr> {
    for chunk in names.chunks(500) {
        let models = chunk.iter().map(|n| license_name::ActiveModel {
            sku_id: Set(n.sku_id.clone()),
            sku_part_number: Set(n.part_number.clone()),
            friendly_name: Set(n.display_name.clone()),
            fetched_at: Set(now),
        });
        license_name::Entity::insert_many(models)
            .on_conflict(
                OnConflict::column(license_name::Column::SkuId)
                    .update_columns([
                        license_name::Column::SkuPartNumber,
                        license_name::Column::FriendlyName,
                        license_name::Column::FetchedAt,
                    ])
                    .to_owned(),
            )
            .exec_without_returning(db)
            .await?;
    }
    Ok(())
}

/// Every cached name: `(sku id, product name)`.
pub async fn all(db: &impl ConnectionTrait) -> Result<Vec<(String, String)>, DbErr> {
    Ok(license_name::Entity::find().all(db).await?.into_iter().map(|r| (r.sku_id, r.friendly_name)).collect())
}
