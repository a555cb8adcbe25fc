//! `m365_user_count`: how many of a tenant's users share one combination of the values the user
//! list filters on. The sync (and contact linking) keeps it exact in the transaction that writes
//! the users, so `totalCount` sums a few rows per tenant instead of counting users.

use sea_orm::entity::prelude::*;

use crate::states::{MfaStatus, MfaVerdict};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "m365_user_count")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub account_id: i64,
    /// `m365_tenant.id`.
    pub tenant_id: i64,
    pub mfa_status: MfaStatus,
    pub mfa_verdict: MfaVerdict,
    pub is_admin: Option<bool>,
    pub account_enabled: bool,
    pub is_licensed: bool,
    pub contact_linked: bool,
    /// Users with exactly these values.
    pub users: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
