//! The domain's states, one enum each. Stored as the same lower-case text as before
//! (`DeriveActiveEnum` maps each variant to its `string_value`), so no data migration; a value
//! outside the enum is a decode error, never a silent fallback.

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// Where a sync run is in its life (`sync_run.status`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Accepted, not started.
    #[sea_orm(string_value = "queued")]
    Queued,
    /// A worker holds its lease and runs it.
    #[sea_orm(string_value = "running")]
    Running,
    /// Every tenant synced.
    #[sea_orm(string_value = "succeeded")]
    Succeeded,
    /// Finished, but at least one tenant failed or was only partly read.
    #[sea_orm(string_value = "partial")]
    Partial,
    /// The run as a whole failed.
    #[sea_orm(string_value = "failed")]
    Failed,
    /// Stopped (a disconnect, or a lost lease).
    #[sea_orm(string_value = "cancelled")]
    Cancelled,
}

impl RunStatus {
    /// The statuses of a run that has not ended (it holds the account's sync lock).
    pub const ACTIVE: [RunStatus; 2] = [RunStatus::Queued, RunStatus::Running];

    /// Whether the run has ended.
    pub fn is_terminal(self) -> bool {
        !Self::ACTIVE.contains(&self)
    }
}

/// The step a run is at (`sync_run.phase`); a finished run keeps the last step it reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
#[serde(rename_all = "snake_case")]
pub enum RunPhase {
    /// Claimed, nothing done yet.
    #[sea_orm(string_value = "starting")]
    Starting,
    /// Refreshing the partner's token.
    #[sea_orm(string_value = "refreshing_token")]
    RefreshingToken,
    /// Listing GDAP customers.
    #[sea_orm(string_value = "discovering_tenants")]
    DiscoveringTenants,
    /// Reading and writing tenants.
    #[sea_orm(string_value = "syncing_tenants")]
    SyncingTenants,
}

/// What started a sync run (`sync_run.trigger`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
#[serde(rename_all = "snake_case")]
pub enum RunTrigger {
    /// Trigger Sync (subject to the 30-second cooldown).
    #[sea_orm(string_value = "manual")]
    Manual,
    /// The periodic schedule.
    #[sea_orm(string_value = "scheduled")]
    Scheduled,
    /// The first sync after connecting.
    #[sea_orm(string_value = "initial")]
    Initial,
}

/// Whether the stored authorization still works (`m365_connection.status`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
pub enum ConnectionStatus {
    /// Connected; syncs run.
    #[sea_orm(string_value = "connected")]
    Connected,
    /// Microsoft refused the stored authorization (expired or revoked).
    #[sea_orm(string_value = "needs_reconnect")]
    NeedsReconnect,
}

/// How one tenant fared in a sync: stored lower-case on `m365_tenant.sync_status`, and
/// upper-case (`OK`, `PARTIAL`, `FAILED`) in a run's JSON tenant results.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
#[serde(rename_all = "UPPERCASE")]
pub enum TenantOutcome {
    /// Everything was read and written.
    #[sea_orm(string_value = "ok")]
    Ok,
    /// Users were written, but something (MFA, licenses) could not be read.
    #[sea_orm(string_value = "partial")]
    Partial,
    /// Nothing was written; stored data was kept.
    #[sea_orm(string_value = "failed")]
    Failed,
}

/// A user's MFA status (`m365_user.mfa_status`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
pub enum MfaStatus {
    /// A second factor is registered (and, from the report, allowed by policy).
    #[sea_orm(string_value = "enabled")]
    Enabled,
    /// No second factor.
    #[sea_orm(string_value = "disabled")]
    Disabled,
    /// Microsoft refused to say; the reason is stored beside it.
    #[sea_orm(string_value = "unavailable")]
    Unavailable,
}

/// Where MFA status came from (`m365_user.mfa_source`, `m365_tenant.mfa_source`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
pub enum MfaSource {
    /// The authentication-methods registration report (needs Entra ID P1).
    #[sea_orm(string_value = "registration_report")]
    RegistrationReport,
    /// Each user's authentication methods, read through `$batch`.
    #[sea_orm(string_value = "authentication_methods")]
    AuthenticationMethods,
}

/// Whether MFA is required when a user signs in (`m365_user.mfa_enforcement`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum MfaEnforcementState {
    /// Every sign-in to every app requires MFA (security defaults for admins, a Conditional
    /// Access policy without conditions, or per-user MFA).
    #[sea_orm(string_value = "enforced")]
    Enforced,
    /// Required only for some apps, locations, platforms, risk levels, or "when necessary".
    #[sea_orm(string_value = "conditional")]
    Conditional,
    /// Nothing requires it.
    #[sea_orm(string_value = "not_enforced")]
    NotEnforced,
    /// A policy could not be read; the reason is stored beside it.
    #[sea_orm(string_value = "unknown")]
    Unknown,
}

/// What requires MFA for a user (stored as a JSON list on `m365_user`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, EnumIter, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum EnforcementSource {
    /// The tenant's security defaults.
    SecurityDefaults,
    /// A Conditional Access policy.
    ConditionalAccess,
    /// Legacy per-user MFA (`enabled` or `enforced`).
    PerUser,
}

/// Registration and enforcement in one word (`m365_user.mfa_verdict`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
pub enum MfaVerdict {
    /// Registered and enforced.
    #[sea_orm(string_value = "protected")]
    Protected,
    /// Registered, but nothing requires it (or only conditionally).
    #[sea_orm(string_value = "not_enforced")]
    NotEnforced,
    /// Required, but no strong method registered.
    #[sea_orm(string_value = "not_registered")]
    NotRegistered,
    /// Neither registered nor required.
    #[sea_orm(string_value = "unprotected")]
    Unprotected,
    /// Registration or enforcement could not be read.
    #[sea_orm(string_value = "unknown")]
    Unknown,
}

impl MfaVerdict {
    /// The verdict from registration and enforcement.
    pub fn of(registration: MfaStatus, enforcement: MfaEnforcementState) -> Self {
        use MfaEnforcementState as E;
        match (registration, enforcement) {
            (MfaStatus::Unavailable, _) | (_, E::Unknown) => Self::Unknown,
            (MfaStatus::Enabled, E::Enforced) => Self::Protected,
            (MfaStatus::Enabled, E::Conditional | E::NotEnforced) => Self::NotEnforced,
            (MfaStatus::Disabled, E::Enforced) => Self::NotRegistered,
            (MfaStatus::Disabled, E::Conditional | E::NotEnforced) => Self::Unprotected,
        }
    }
}

/// How a tenant mapping was made (`tenant_mapping.method`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
pub enum MappingMethod {
    /// One tenant, chosen by hand.
    #[sea_orm(string_value = "manual")]
    Manual,
    /// Map Selected.
    #[sea_orm(string_value = "bulk")]
    Bulk,
    /// An accepted suggestion.
    #[sea_orm(string_value = "suggestion")]
    Suggestion,
}

#[cfg(test)]
mod tests {
    use super::*;
    use sea_orm::{ActiveEnum, Iterable};

    /// The stored text of every variant is what rows written before the enums hold.
    #[test]
    fn stored_text_is_unchanged() {
        let texts = |v: Vec<String>| v.join(",");
        assert_eq!(
            texts(RunStatus::iter().map(|s| s.to_value()).collect()),
            "queued,running,succeeded,partial,failed,cancelled"
        );
        assert_eq!(
            texts(RunPhase::iter().map(|s| s.to_value()).collect()),
            "starting,refreshing_token,discovering_tenants,syncing_tenants"
        );
        assert_eq!(texts(RunTrigger::iter().map(|s| s.to_value()).collect()), "manual,scheduled,initial");
        assert_eq!(texts(ConnectionStatus::iter().map(|s| s.to_value()).collect()), "connected,needs_reconnect");
        assert_eq!(texts(TenantOutcome::iter().map(|s| s.to_value()).collect()), "ok,partial,failed");
        assert_eq!(texts(MfaStatus::iter().map(|s| s.to_value()).collect()), "enabled,disabled,unavailable");
        assert_eq!(
            texts(MfaSource::iter().map(|s| s.to_value()).collect()),
            "registration_report,authentication_methods"
        );
        assert_eq!(
            texts(MfaEnforcementState::iter().map(|s| s.to_value()).collect()),
            "enforced,conditional,not_enforced,unknown"
        );
        assert_eq!(
            texts(MfaVerdict::iter().map(|s| s.to_value()).collect()),
            "protected,not_enforced,not_registered,unprotected,unknown"
        );
        assert_eq!(texts(MappingMethod::iter().map(|s| s.to_value()).collect()), "manual,bulk,suggestion");
        assert!(RunStatus::try_from_value(&"done".to_owned()).is_err(), "unknown text is an error, not a fallback");
    }

    #[test]
    fn verdicts_combine_registration_and_enforcement() {
        use MfaEnforcementState as E;
        use MfaStatus as R;
        assert_eq!(MfaVerdict::of(R::Enabled, E::Enforced), MfaVerdict::Protected);
        assert_eq!(MfaVerdict::of(R::Enabled, E::Conditional), MfaVerdict::NotEnforced);
        assert_eq!(MfaVerdict::of(R::Enabled, E::NotEnforced), MfaVerdict::NotEnforced);
        assert_eq!(MfaVerdict::of(R::Disabled, E::Enforced), MfaVerdict::NotRegistered);
        assert_eq!(MfaVerdict::of(R::Disabled, E::Conditional), MfaVerdict::Unprotected);
        assert_eq!(MfaVerdict::of(R::Disabled, E::NotEnforced), MfaVerdict::Unprotected);
        for e in E::iter() {
            assert_eq!(MfaVerdict::of(R::Unavailable, e), MfaVerdict::Unknown);
        }
        for r in R::iter() {
            assert_eq!(MfaVerdict::of(r, E::Unknown), MfaVerdict::Unknown);
        }
    }

    /// A run's JSON tenant results spell outcomes in upper case, as stored runs do.
    #[test]
    fn outcome_json_is_upper_case() {
        assert_eq!(serde_json::to_string(&TenantOutcome::Partial).unwrap(), "\"PARTIAL\"");
        assert_eq!(serde_json::from_str::<TenantOutcome>("\"OK\"").unwrap(), TenantOutcome::Ok);
    }
}
