//! `m365_user`: a user of a customer tenant, with MFA state and contact link.

use crate::{
    states::{MfaEnforcementState, MfaSource, MfaStatus, MfaVerdict},
    types::{EnforcementSources, StringList},
};
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "m365_user")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub account_id: i64,
    /// Our row id of the tenant (`m365_tenant.id`), not Microsoft's tenant GUID.
    pub tenant_id: i64,
    /// Microsoft object id.
    pub object_id: String,
    pub display_name: Option<String>,
    pub user_principal_name: String,
    pub mail: Option<String>,
    /// Lower-case addresses from `proxyAddresses` and `otherMails`.
    #[sea_orm(column_type = "Json")]
    pub aliases: StringList,
    pub account_enabled: bool,
    pub user_type: Option<String>,
    pub is_admin: Option<bool>,
    pub is_licensed: bool,
    pub mfa_status: MfaStatus,
    #[sea_orm(column_type = "Json")]
    pub mfa_methods: StringList,
    pub mfa_source: Option<MfaSource>,
    pub mfa_checked_at: Option<DateTimeUtc>,
    pub mfa_unavailable_reason: Option<String>,
    /// Whether MFA is required at sign-in (registration is `mfa_status`).
    pub mfa_enforcement: MfaEnforcementState,
    #[sea_orm(column_type = "Json")]
    pub mfa_enforcement_sources: EnforcementSources,
    /// Conditional Access policies that require MFA for the user.
    #[sea_orm(column_type = "Json")]
    pub mfa_policies: StringList,
    /// Why enforcement is unknown, and what to do.
    pub mfa_enforcement_reason: Option<String>,
    pub mfa_verdict: MfaVerdict,
    /// One sentence per fact the verdict used.
    #[sea_orm(column_type = "Json")]
    pub mfa_explanation: StringList,
    pub contact_id: Option<i64>,
    /// `linked:<address>`, or `ambiguous` when several contacts matched.
    pub contact_match: Option<String>,
    /// When a sync last wrote a change to the row (one that finds the user unchanged leaves it).
    pub synced_at: DateTimeUtc,
    /// Digest of the synced content (see `db::users::content_hash`): a sync rewrites the row only
    /// when it differs. 0 = unknown (the next sync rewrites it).
    pub content_hash: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
