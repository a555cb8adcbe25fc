//! `contact`: a client's contact person.

use crate::types::StringList;
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "contact")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub account_id: i64,
    pub client_id: i64,
    pub source: String,
    pub external_id: String,
    pub name: String,
    /// Lower-case, trimmed e-mail addresses.
    #[sea_orm(column_type = "Json")]
    pub emails: StringList,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
