//! `audit_event`: the append-only audit trail of an account (never updated, kept on disconnect).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "audit_event")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub account_id: i64,
    /// What happened, e.g. `connected`, `mapping_created`.
    pub kind: String,
    /// Who did it: the token's `sub`.
    pub actor: String,
    /// A small JSON object (counts, tenant ids, codes); never a secret.
    #[sea_orm(column_type = "Json")]
    pub detail: Json,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
