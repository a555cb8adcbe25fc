//! `mfa_history`: a user's MFA facts over time, one row per *change*. A row holds from
//! `valid_from` until `valid_to` (null while current); the sync closes a row and opens the next
//! only when a fact changed, in the same fenced transaction as the user rows.

use crate::{
    states::{MfaEnforcementState, MfaSource, MfaStatus, MfaVerdict},
    types::{EnforcementSources, StringList},
};
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "mfa_history")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub account_id: i64,
    /// Our row id of the tenant (`m365_tenant.id`).
    pub tenant_id: i64,
    /// The `m365_user` row the facts were read into (it may be gone since).
    pub user_id: i64,
    pub object_id: String,
    pub user_principal_name: String,
    pub display_name: Option<String>,
    pub mail: Option<String>,
    pub user_type: Option<String>,
    pub account_enabled: bool,
    pub is_admin: Option<bool>,
    pub is_licensed: bool,
    pub mfa_status: MfaStatus,
    #[sea_orm(column_type = "Json")]
    pub mfa_methods: StringList,
    pub mfa_source: Option<MfaSource>,
    pub mfa_unavailable_reason: Option<String>,
    pub mfa_enforcement: MfaEnforcementState,
    #[sea_orm(column_type = "Json")]
    pub mfa_enforcement_sources: EnforcementSources,
    #[sea_orm(column_type = "Json")]
    pub mfa_policies: StringList,
    pub mfa_enforcement_reason: Option<String>,
    pub mfa_verdict: MfaVerdict,
    #[sea_orm(column_type = "Json")]
    pub mfa_explanation: StringList,
    pub valid_from: DateTimeUtc,
    pub valid_to: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
