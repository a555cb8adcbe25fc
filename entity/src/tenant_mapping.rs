//! `tenant_mapping`: a tenant mapped to one of the MSP's clients.

use crate::states::MappingMethod;
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "tenant_mapping")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub account_id: i64,
    /// `m365_tenant.id`; one mapping per tenant.
    #[sea_orm(unique)]
    pub tenant_id: i64,
    pub client_id: i64,
    pub method: MappingMethod,
    pub created_by: String,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
