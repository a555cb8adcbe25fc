//! `M365Tenant`, `TenantMapping`, `ClientSuggestion`.

use std::sync::Arc;

use async_graphql::{ComplexObject, Context, Enum, ID, InputObject, SimpleObject};
use chrono::{DateTime, Utc};
use entity::{m365_tenant, tenant_mapping};

use crate::{
    connection,
    error::{AppError, AppResult},
    graphql::{
        ContextExt,
        loaders::{ClientById, MappingByTenant, SuggestionCache, TenantById, UserCountByTenant, load},
        types::client::Client,
    },
    microsoft::roles,
};

/// How a tenant's last sync went.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Enum)]
#[graphql(remote = "entity::states::TenantOutcome")]
pub enum TenantSyncStatus {
    /// Everything was read.
    Ok,
    /// Users were read but not everything (see `syncErrorCode`, e.g. MFA_UNAVAILABLE).
    Partial,
    /// Nothing could be read; stored data was kept.
    Failed,
}

/// Where MFA answers came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Enum)]
#[graphql(remote = "entity::states::MfaSource")]
pub enum MfaSource {
    /// The authentication-methods registration report (needs Entra ID P1 and a reports role).
    RegistrationReport,
    /// Each user's authentication methods (through `$batch`).
    AuthenticationMethods,
}

/// A customer tenant discovered through GDAP.
#[derive(Clone, Debug, SimpleObject)]
#[graphql(complex)]
pub struct M365Tenant {
    /// Our id for the tenant (use it in mappings and filters).
    pub id: ID,
    /// Microsoft's tenant id (GUID).
    pub tenant_id: String,
    /// Organization name.
    pub display_name: String,
    /// Primary verified domain; null until the first sync of the tenant.
    pub default_domain: Option<String>,
    /// When the tenant's data was last written; null before its first successful read.
    pub last_synced_at: Option<DateTime<Utc>>,
    /// Outcome of the tenant's last sync; null before its first sync.
    pub sync_status: Option<TenantSyncStatus>,
    /// Machine-readable reason when not OK (e.g. `CONSENT_MISSING`, `NO_GDAP_ACCESS`, `MFA_UNAVAILABLE`).
    pub sync_error_code: Option<String>,
    /// What went wrong, for a person; null when OK.
    pub sync_error: Option<String>,
    /// What to do about it; null when OK.
    pub remediation: Option<String>,
    /// Where the tenant's MFA answers came from; null when MFA could not be read.
    pub mfa_source: Option<MfaSource>,
    #[graphql(skip)]
    pub row: i64,
    #[graphql(skip)]
    pub account_id: i64,
    /// The stored row, shared (the request's loader holds it once for every user of the tenant).
    #[graphql(skip)]
    pub model: Arc<m365_tenant::Model>,
}

impl From<m365_tenant::Model> for M365Tenant {
    fn from(m: m365_tenant::Model) -> Self {
        Self::from(Arc::new(m))
    }
}

impl From<Arc<m365_tenant::Model>> for M365Tenant {
    /// Copies the small fields; the lists and the MFA policy are read from the shared row only
    /// when a query selects them.
    fn from(m: Arc<m365_tenant::Model>) -> Self {
        Self {
            id: ID(m.id.to_string()),
            tenant_id: m.microsoft_tenant_id.0.clone(),
            display_name: m.display_name.clone(),
            default_domain: m.default_domain.clone(),
            last_synced_at: m.last_synced_at,
            sync_status: m.sync_status.map(Into::into),
            sync_error_code: m.sync_error_code.clone(),
            sync_error: m.sync_error.clone(),
            remediation: m.remediation.clone(),
            mfa_source: m.mfa_source.map(Into::into),
            row: m.id,
            account_id: m.account_id,
            model: m,
        }
    }
}

#[ComplexObject]
impl M365Tenant {
    /// Verified domains (empty until the first sync of the tenant).
    async fn domains(&self) -> &[String] {
        &self.model.domains.0
    }

    /// Names of the GDAP roles your relationships with the customer grant.
    async fn gdap_roles(&self) -> Vec<String> {
        self.model.gdap_roles.0.iter().map(|r| roles::name(r)).collect()
    }

    /// The policies that decide whether MFA is required, as last read; null before the first
    /// sync that read them.
    async fn mfa_policy(&self) -> Option<TenantMfaPolicy> {
        self.model.mfa_policy.clone().map(TenantMfaPolicy::from)
    }

    /// The client the tenant is mapped to; null while unmapped (its users are then not linked
    /// to contacts).
    async fn mapping(&self, ctx: &Context<'_>) -> AppResult<Option<TenantMapping>> {
        Ok(load::<MappingByTenant>(ctx, self.row).await?.flatten().map(TenantMapping::from))
    }

    /// Clients this tenant most likely belongs to, best first, with a confidence (0–100) and the
    /// reasons. Clients already mapped to another tenant rank lower. Scoring compares the tenant
    /// with every client of the account, so it costs 25 plus `first` times the selection in the
    /// query's complexity; each tenant is scored at most once per request.
    #[graphql(complexity = "25 + (first.clamp(0, 20) as usize) * child_complexity")]
    async fn suggestions(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 3, desc = "How many suggestions, 0 to 20.")] first: i32,
    ) -> AppResult<Vec<ClientSuggestion>> {
        if !(0..=20).contains(&first) {
            return Err(AppError::bad_input("first", "first must be between 0 and 20"));
        }
        let found = ctx
            .data_unchecked::<SuggestionCache>()
            .get(ctx.state(), self.account_id, self.row, &self.display_name, &self.model.domains.0)
            .await?;
        let mut out = Vec::with_capacity(first as usize);
        for s in found.iter().take(first as usize) {
            if let Some(client) = load::<ClientById>(ctx, s.client_id).await? {
                out.push(ClientSuggestion {
                    client: client.into(),
                    confidence: s.confidence,
                    reasons: s.reasons.clone(),
                });
            }
        }
        Ok(out)
    }

    /// Users synced for the tenant.
    async fn user_count(&self, ctx: &Context<'_>) -> AppResult<i32> {
        Ok(load::<UserCountByTenant>(ctx, self.row).await?.unwrap_or(0) as i32)
    }
}

connection!(
    M365TenantConnection,
    M365TenantEdge,
    M365Tenant,
    "A page of discovered tenants.",
    "A tenant with its cursor."
);

/// Which tenants to list.
#[derive(Clone, Debug, Default, InputObject)]
pub struct M365TenantFilter {
    /// Only mapped (true) or unmapped (false) tenants; null for both.
    pub mapped: Option<bool>,
    /// Case-insensitive part of the name or default domain.
    pub search: Option<String>,
}

/// How a mapping was made.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Enum)]
#[graphql(remote = "entity::states::MappingMethod")]
pub enum MappingMethod {
    /// Create Mapping on one tenant.
    Manual,
    /// Map Selected.
    Bulk,
    /// An accepted suggestion.
    Suggestion,
}

/// A tenant mapped to one of the MSP's clients (one client per tenant).
#[derive(Clone, Debug, SimpleObject)]
#[graphql(complex)]
pub struct TenantMapping {
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// Who made it (token subject).
    pub created_by: String,
    /// How it was made.
    pub method: MappingMethod,
    #[graphql(skip)]
    pub tenant_row: i64,
    #[graphql(skip)]
    pub client_id: i64,
}

impl From<tenant_mapping::Model> for TenantMapping {
    fn from(m: tenant_mapping::Model) -> Self {
        Self {
            created_at: m.created_at,
            created_by: m.created_by,
            method: m.method.into(),
            tenant_row: m.tenant_id,
            client_id: m.client_id,
        }
    }
}

#[ComplexObject]
impl TenantMapping {
    /// The mapped tenant.
    async fn tenant(&self, ctx: &Context<'_>) -> AppResult<M365Tenant> {
        load::<TenantById>(ctx, self.tenant_row).await?.map(M365Tenant::from).ok_or(AppError::NotFound("tenant"))
    }

    /// The client it is mapped to.
    async fn client(&self, ctx: &Context<'_>) -> AppResult<Client> {
        load::<ClientById>(ctx, self.client_id).await?.map(Client::from).ok_or(AppError::NotFound("client"))
    }
}

/// A client a tenant probably belongs to.
#[derive(Clone, Debug, SimpleObject)]
pub struct ClientSuggestion {
    /// The client.
    pub client: Client,
    /// 0–100: 95 for a shared domain, 85 for a contacts' e-mail domain, up to 80 for names.
    pub confidence: i32,
    /// Why, in words (each signal that counted).
    pub reasons: Vec<String>,
}

/// Total, mapped and unmapped tenants (the Tenant Mapping page's counts).
#[derive(Clone, Debug, SimpleObject)]
pub struct TenantMappingSummary {
    /// Discovered tenants.
    pub total: i32,
    /// Tenants mapped to a client.
    pub mapped: i32,
    /// Tenants not mapped yet.
    pub unmapped: i32,
}

/// One mapping to create.
#[derive(Clone, Debug, InputObject)]
pub struct TenantMappingInput {
    /// Our tenant id (`M365Tenant.id`).
    pub tenant_id: ID,
    /// The client's id.
    pub client_id: ID,
}

/// What a bulk mapping did.
#[derive(Clone, Debug, SimpleObject)]
pub struct BulkTenantMappingPayload {
    /// The mappings created, in input order.
    pub mappings: Vec<TenantMapping>,
    /// Tenants not mapped (only `acceptTenantSuggestions` skips; `bulkCreateTenantMappings` is
    /// all or nothing).
    pub skipped: Vec<SkippedTenant>,
}

/// A tenant a bulk action left unmapped, and why.
#[derive(Clone, Debug, SimpleObject)]
pub struct SkippedTenant {
    /// Our tenant id.
    pub tenant_id: ID,
    /// Why it was skipped.
    pub reason: String,
}

/// A tenant's MFA policies as last read.
#[derive(Clone, Debug, SimpleObject)]
pub struct TenantMfaPolicy {
    /// Whether security defaults are on; null when they could not be read.
    pub security_defaults_enabled: Option<bool>,
    /// The Conditional Access policies that require or offer MFA.
    pub conditional_access: Vec<ConditionalAccessPolicySummary>,
    /// Whether the tenant has Microsoft Entra ID P1 (without it there is no Conditional Access).
    pub conditional_access_licensed: bool,
    /// Whether everything needed was read.
    pub readable: bool,
    /// What could not be read, and what to do; null when readable.
    pub unavailable_reason: Option<String>,
    /// When it was read.
    pub read_at: DateTime<Utc>,
}

/// One Conditional Access policy, as far as MFA is concerned.
#[derive(Clone, Debug, SimpleObject)]
pub struct ConditionalAccessPolicySummary {
    /// The policy's display name.
    pub name: String,
    /// `enabled`, `disabled` or `enabledForReportingButNotEnforced` (report-only).
    pub state: String,
    /// MFA is required by its grant (not just one option of an `OR`).
    pub requires_mfa: bool,
    /// It includes all users.
    pub all_users: bool,
    /// It covers all cloud apps.
    pub all_apps: bool,
    /// Locations, platforms, client apps or risk levels narrow it.
    pub conditional: bool,
}

impl From<entity::types::MfaPolicy> for TenantMfaPolicy {
    fn from(p: entity::types::MfaPolicy) -> Self {
        Self {
            security_defaults_enabled: p.security_defaults_enabled,
            conditional_access: p
                .conditional_access
                .into_iter()
                .map(|c| ConditionalAccessPolicySummary {
                    name: c.name,
                    state: c.state,
                    requires_mfa: c.requires_mfa,
                    all_users: c.all_users,
                    all_apps: c.all_apps,
                    conditional: c.conditional,
                })
                .collect(),
            conditional_access_licensed: p.conditional_access_licensed,
            readable: p.readable,
            unavailable_reason: p.unavailable_reason,
            read_at: p.read_at,
        }
    }
}
