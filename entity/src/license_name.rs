//! `license_name`: cached friendly names of SKUs from Microsoft's product-names CSV.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "license_name")]
pub struct Model {
    /// SKU id (GUID, lower case).
    #[sea_orm(primary_key, auto_increment = false)]
    pub sku_id: String,
    pub sku_part_number: String,
    pub friendly_name: String,
    pub fetched_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
