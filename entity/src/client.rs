//! `client`: the MSP's own customers, usually pushed from a PSA.

use crate::types::StringList;
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "client")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub account_id: i64,
    /// Where the client comes from, e.g. `connectwise`.
    pub source: String,
    /// The id in that source.
    pub external_id: String,
    pub name: String,
    /// Lower-case domain names.
    #[sea_orm(column_type = "Json")]
    pub domains: StringList,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
