//! `m365_tenant`: a customer tenant discovered through GDAP.

use crate::{
    states::{MfaSource, TenantOutcome},
    types::{MfaPolicy, StringList, TenantGuid},
};
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "m365_tenant")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub account_id: i64,
    /// Microsoft's tenant id (the directory GUID); not our row id, which is `id` here and
    /// `tenant_id` in the tables that point at this one.
    #[sea_orm(column_name = "tenant_id")]
    pub microsoft_tenant_id: TenantGuid,
    pub display_name: String,
    pub default_domain: Option<String>,
    #[sea_orm(column_type = "Json")]
    pub domains: StringList,
    /// Names of the GDAP roles held in this tenant.
    #[sea_orm(column_type = "Json")]
    pub gdap_roles: StringList,
    /// Null before the first sync of this tenant.
    pub sync_status: Option<TenantOutcome>,
    pub sync_error_code: Option<String>,
    pub sync_error: Option<String>,
    pub remediation: Option<String>,
    pub mfa_source: Option<MfaSource>,
    pub last_synced_at: Option<DateTimeUtc>,
    /// The MFA policies as last read; null before.
    #[sea_orm(column_type = "Json", nullable)]
    pub mfa_policy: Option<MfaPolicy>,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
