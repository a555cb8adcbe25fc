//! `m365_tenant`: a customer tenant discovered through GDAP.

use crate::types::StringList;
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "m365_tenant")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub account_id: i64,
    /// Microsoft tenant id (GUID).
    pub tenant_id: String,
    pub display_name: String,
    pub default_domain: Option<String>,
    #[sea_orm(column_type = "Json")]
    pub domains: StringList,
    /// Names of the GDAP roles held in this tenant.
    #[sea_orm(column_type = "Json")]
    pub gdap_roles: StringList,
    /// `ok`, `partial`, `failed` (null before the first sync of this tenant).
    pub sync_status: Option<String>,
    pub sync_error_code: Option<String>,
    pub sync_error: Option<String>,
    pub remediation: Option<String>,
    /// `registration_report` or `authentication_methods`.
    pub mfa_source: Option<String>,
    pub last_synced_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
