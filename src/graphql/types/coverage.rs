//! `MfaCoverage`: MFA evidence a GRC tool can file.

use async_graphql::{ComplexObject, Context, SimpleObject};
use chrono::{DateTime, Utc};

use crate::{
    db::users::MfaCounts,
    error::{AppError, AppResult},
    graphql::{
        loaders::{TenantById, load},
        types::tenant::M365Tenant,
    },
};

/// The MFA figures of a set of users.
#[derive(Clone, Debug, Default, SimpleObject)]
pub struct MfaFigures {
    /// Users counted (sign-in enabled accounts unless `includeDisabledAccounts`).
    pub users: i32,
    /// Users with MFA.
    pub enabled: i32,
    /// Users without MFA.
    pub disabled: i32,
    /// Users whose MFA could not be read.
    pub unavailable: i32,
    /// `enabled / (enabled + disabled) × 100`, over users whose MFA could be read; 0 when none.
    pub coverage_percent: f64,
    /// Admins whose MFA is not enabled (disabled or unreadable).
    pub admins_without_mfa: i32,
    /// Licensed, sign-in enabled members whose MFA is not enabled.
    pub licensed_members_without_mfa: i32,
    /// Users per MFA verdict (registration and enforcement together).
    pub verdicts: MfaVerdictCounts,
}

/// How many users have each MFA verdict.
#[derive(Clone, Copy, Debug, Default, SimpleObject)]
pub struct MfaVerdictCounts {
    /// Registered and enforced.
    pub protected: i32,
    /// Registered, not (or only conditionally) enforced.
    pub not_enforced: i32,
    /// Enforced, not registered.
    pub not_registered: i32,
    /// Neither.
    pub unprotected: i32,
    /// Registration or enforcement unreadable.
    pub unknown: i32,
}

impl MfaFigures {
    /// From one tenant's grouped counts.
    pub fn from_counts(c: &MfaCounts) -> Self {
        Self::from_evidence(&c.figures)
    }

    /// The figures of several sets together (the percentage is recomputed, not averaged).
    pub fn sum<'a>(parts: impl IntoIterator<Item = &'a MfaFigures>) -> Self {
        let mut t = Self::default();
        for p in parts {
            t.users += p.users;
            t.enabled += p.enabled;
            t.disabled += p.disabled;
            t.unavailable += p.unavailable;
            t.admins_without_mfa += p.admins_without_mfa;
            t.licensed_members_without_mfa += p.licensed_members_without_mfa;
            t.verdicts.protected += p.verdicts.protected;
            t.verdicts.not_enforced += p.verdicts.not_enforced;
            t.verdicts.not_registered += p.verdicts.not_registered;
            t.verdicts.unprotected += p.verdicts.unprotected;
            t.verdicts.unknown += p.verdicts.unknown;
        }
        t.coverage_percent = percent(t.enabled as i64, t.disabled as i64);
        t
    }
}

/// MFA coverage of a scope (an account, a client, or a tenant).
#[derive(Clone, Debug, SimpleObject)]
pub struct MfaCoverage {
    #[graphql(flatten)]
    pub figures: MfaFigures,
    /// The same figures per tenant.
    pub tenants: Vec<TenantCoverage>,
    /// When this answer was computed.
    pub generated_at: DateTime<Utc>,
    /// The oldest last successful sync among the tenants counted (the data is at least this
    /// fresh); null when no tenant has synced.
    pub data_as_of: Option<DateTime<Utc>>,
}

/// MFA coverage of one tenant.
#[derive(Clone, Debug, SimpleObject)]
#[graphql(complex)]
pub struct TenantCoverage {
    #[graphql(flatten)]
    pub figures: MfaFigures,
    /// The tenant's last successful sync.
    pub data_as_of: Option<DateTime<Utc>>,
    #[graphql(skip)]
    pub tenant_row: i64,
}

#[ComplexObject]
impl TenantCoverage {
    /// The tenant.
    async fn tenant(&self, ctx: &Context<'_>) -> AppResult<M365Tenant> {
        load::<TenantById>(ctx, self.tenant_row).await?.map(M365Tenant::from).ok_or(AppError::NotFound("tenant"))
    }
}

/// Percent of readable users with MFA, rounded to two decimals.
pub fn percent(enabled: i64, disabled: i64) -> f64 {
    let readable = enabled + disabled;
    if readable == 0 { 0.0 } else { (enabled as f64 * 10_000.0 / readable as f64).round() / 100.0 }
}

impl TenantCoverage {
    /// From grouped counts.
    pub fn new(c: &MfaCounts, data_as_of: Option<DateTime<Utc>>) -> Self {
        Self { figures: MfaFigures::from_counts(c), data_as_of, tenant_row: c.tenant_id }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn percent_over_readable_users() {
        assert_eq!(super::percent(0, 0), 0.0);
        assert_eq!(super::percent(2, 1), 66.67);
        assert_eq!(super::percent(5, 0), 100.0);
    }
}
