//! Column value types shared by several entities.

use crate::states::{EnforcementSource, TenantOutcome};
use sea_orm::{DeriveValueType, FromJsonQueryResult};
use serde::{Deserialize, Serialize};

/// A list of strings stored as a JSON array (domains, e-mail addresses, role names, methods).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, FromJsonQueryResult)]
pub struct StringList(pub Vec<String>);

impl StringList {
    /// The strings as a slice.
    pub fn as_slice(&self) -> &[String] {
        &self.0
    }
}

impl From<Vec<String>> for StringList {
    fn from(v: Vec<String>) -> Self {
        Self(v)
    }
}

/// Microsoft's id of a tenant (the directory GUID, e.g. from `/organization` or a GDAP
/// relationship's `customer.tenantId`). Our own row ids of tenants are plain `i64`s named
/// `tenant_row` or `tenant_id` on the tables that point at `m365_tenant`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, DeriveValueType)]
#[serde(transparent)]
pub struct TenantGuid(pub String);

impl TenantGuid {
    /// The GUID as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for TenantGuid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<String> for TenantGuid {
    fn from(s: String) -> Self {
        Self(s)
    }
}

/// The outcome of one tenant inside a sync run, stored as JSON on the run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenantResult {
    /// Microsoft's tenant id (stored under the key `tenant_id`).
    pub tenant_id: TenantGuid,
    /// Tenant display name at the time of the run.
    pub display_name: String,
    /// Stored as `OK`, `PARTIAL` or `FAILED`.
    pub outcome: TenantOutcome,
    /// Machine-readable reason when not OK.
    pub error_code: Option<String>,
    /// Human-readable reason when not OK.
    pub error: Option<String>,
    /// What the MSP can do about it.
    pub remediation: Option<String>,
    /// Users written for this tenant.
    pub users_synced: i64,
}

/// All tenant results of a run.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, FromJsonQueryResult)]
pub struct TenantResults(pub Vec<TenantResult>);

/// What requires MFA for a user, stored as a JSON list.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, FromJsonQueryResult)]
pub struct EnforcementSources(pub Vec<EnforcementSource>);

/// A tenant's MFA policies as last read, stored as JSON on the tenant.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, FromJsonQueryResult)]
#[serde(rename_all = "camelCase")]
pub struct MfaPolicy {
    /// Null when it could not be read.
    pub security_defaults_enabled: Option<bool>,
    /// The policies that concern MFA (requiring it, or offering it), in Graph's order.
    pub conditional_access: Vec<CaPolicySummary>,
    /// Whether the tenant has Entra ID P1 (without it, no Conditional Access).
    pub conditional_access_licensed: bool,
    /// Everything needed was read.
    pub readable: bool,
    /// Why something could not be read, and what to do.
    pub unavailable_reason: Option<String>,
    pub read_at: chrono::DateTime<chrono::Utc>,
}

/// One Conditional Access policy as far as MFA is concerned.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CaPolicySummary {
    pub name: String,
    /// `enabled`, `disabled` or `enabledForReportingButNotEnforced`.
    pub state: String,
    pub requires_mfa: bool,
    pub all_users: bool,
    pub all_apps: bool,
    pub conditional: bool,
}

/// MFA figures of a set of users: an evidence snapshot's (over the tenant's sign-in enabled
/// accounts, as `mfaCoverage` by default; stored as JSON) and one row of the grouped coverage
/// query (read as columns).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, FromJsonQueryResult, sea_orm::FromQueryResult,
)]
pub struct EvidenceFigures {
    /// Sign-in enabled accounts counted.
    pub users: i64,
    /// Registration enabled.
    pub enabled: i64,
    /// Registration disabled.
    pub disabled: i64,
    /// Registration unreadable.
    pub unavailable: i64,
    /// Administrators whose registration is not enabled.
    pub admins_without_mfa: i64,
    /// Licensed members whose registration is not enabled.
    pub licensed_members_without_mfa: i64,
    /// Verdict `protected`.
    pub protected: i64,
    /// Verdict `not_enforced`.
    pub not_enforced: i64,
    /// Verdict `not_registered`.
    pub not_registered: i64,
    /// Verdict `unprotected`.
    pub unprotected: i64,
    /// Verdict `unknown`.
    pub unknown: i64,
}
