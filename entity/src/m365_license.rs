//! `m365_license`: a SKU a customer tenant subscribes to.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "m365_license")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub account_id: i64,
    /// `m365_tenant.id`.
    pub tenant_id: i64,
    pub sku_id: String,
    pub sku_part_number: String,
    pub capability_status: String,
    pub enabled_units: i64,
    pub consumed_units: i64,
    pub suspended_units: i64,
    pub warning_units: i64,
    pub synced_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
