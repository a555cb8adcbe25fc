//! `M365User`, `MfaInfo`, `ContactMatch`, `M365License`.

use async_graphql::{ComplexObject, Context, Enum, ID, InputObject, SimpleObject};
use chrono::{DateTime, Utc};
use entity::{m365_license, m365_user};

use crate::{
    connection,
    error::{AppError, AppResult},
    graphql::{
        ContextExt,
        loaders::{ClientById, ContactById, LicensesByUser, MappingByTenant, TenantById, load},
        types::{
            client::{Client, Contact},
            tenant::{M365Tenant, MfaSource},
        },
    },
};

/// Whether a user has *registered* multi-factor authentication (whether it is *required* is
/// `MfaInfo.enforcement`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Enum)]
#[graphql(remote = "entity::states::MfaStatus")]
pub enum MfaStatus {
    /// A second factor is registered (and, from the report, allowed by policy).
    Enabled,
    /// No second factor.
    Disabled,
    /// Could not be read; see `unavailableReason`.
    Unavailable,
}

/// Whether MFA is required when the user signs in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Enum)]
#[graphql(remote = "entity::states::MfaEnforcementState")]
pub enum MfaEnforcementState {
    /// Every sign-in to every app requires MFA.
    Enforced,
    /// Required only for some apps, locations, platforms or risk levels, or "when necessary"
    /// (security defaults for non-administrators).
    Conditional,
    /// Nothing requires it.
    NotEnforced,
    /// A policy could not be read; see `unknownReason`.
    Unknown,
}

/// What requires MFA for a user.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Enum)]
#[graphql(remote = "entity::states::EnforcementSource")]
pub enum MfaEnforcementSource {
    /// The tenant's security defaults (administrators at every sign-in).
    SecurityDefaults,
    /// A Conditional Access policy (named in `policies`).
    ConditionalAccess,
    /// Legacy per-user MFA (`enabled` or `enforced`).
    PerUser,
}

/// Registration and enforcement in one word.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Enum)]
#[graphql(remote = "entity::states::MfaVerdict")]
pub enum MfaVerdict {
    /// A strong method is registered and MFA is enforced.
    Protected,
    /// Registered, but nothing requires MFA (or only conditionally).
    NotEnforced,
    /// MFA is required, but no strong method is registered yet.
    NotRegistered,
    /// Neither registered nor required.
    Unprotected,
    /// Registration or enforcement could not be read.
    Unknown,
}

/// Whether MFA is required for a user, and from what.
#[derive(Clone, Debug, SimpleObject)]
pub struct MfaEnforcement {
    /// Enforced, conditional, not enforced, or unknown.
    pub state: MfaEnforcementState,
    /// What requires it; empty when nothing does.
    pub sources: Vec<MfaEnforcementSource>,
    /// Names of the Conditional Access policies that require MFA for the user.
    pub policies: Vec<String>,
    /// Why the state is unknown, and what to do (which role or consent is missing); null
    /// otherwise.
    pub unknown_reason: Option<String>,
}

/// A user's MFA state and the evidence behind it.
#[derive(Clone, Debug, SimpleObject)]
pub struct MfaInfo {
    /// Registration: enabled (a strong method is registered), disabled or unavailable. It does
    /// not say whether MFA is required; see `enforcement` and `verdict`.
    pub status: MfaStatus,
    /// Registered methods in Microsoft's report vocabulary (`microsoftAuthenticatorPush`,
    /// `mobilePhone`, `fido2`, `windowsHelloForBusiness`, `softwareOneTimePasscode`, `email`…).
    pub methods: Vec<String>,
    /// Where the answer came from; null when unavailable.
    pub source: Option<MfaSource>,
    /// When a sync last wrote a change to these facts (a sync that reads the same facts keeps
    /// the earlier time; the tenant's `lastSyncedAt` says when they were last read).
    pub checked_at: Option<DateTime<Utc>>,
    /// Why it is unavailable (missing GDAP role, missing consent scope, no Entra ID P1); null otherwise.
    pub unavailable_reason: Option<String>,
    /// Whether MFA is required at sign-in (security defaults, Conditional Access, per-user MFA).
    pub enforcement: MfaEnforcement,
    /// Registration and enforcement together.
    pub verdict: MfaVerdict,
    /// One sentence per fact the verdict used, e.g. `Conditional Access policy "Require MFA for
    /// all users" (enabled) requires MFA for all cloud apps; the user is included (All users) and
    /// not excluded.`
    pub explanation: Vec<String>,
}

/// Whether a user is linked to one of the mapped client's contacts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Enum)]
pub enum ContactMatchStatus {
    /// Exactly one contact shares an address with the user.
    Linked,
    /// Several contacts share the user's addresses; none is linked.
    Ambiguous,
    /// No contact matches (or the tenant is unmapped).
    None,
}

/// How a user was matched to a contact.
#[derive(Clone, Debug, SimpleObject)]
pub struct ContactMatch {
    /// Linked, ambiguous or none.
    pub status: ContactMatchStatus,
    /// The shared address when linked.
    pub matched_address: Option<String>,
}

/// A user of a customer tenant.
#[derive(Clone, Debug, SimpleObject)]
#[graphql(complex)]
pub struct M365User {
    /// Our id for the user.
    pub id: ID,
    /// Microsoft's object id.
    pub object_id: String,
    /// Display name.
    pub display_name: Option<String>,
    /// Sign-in name.
    pub user_principal_name: String,
    /// Primary e-mail address.
    pub mail: Option<String>,
    /// Other addresses (proxy addresses and other mails), lower case.
    pub aliases: Vec<String>,
    /// Whether sign-in is allowed.
    pub account_enabled: bool,
    /// `Member` or `Guest`.
    pub user_type: Option<String>,
    /// Whether the user holds an admin role; null when Microsoft did not say (per-user methods path).
    pub is_admin: Option<bool>,
    /// Whether any license is assigned.
    pub is_licensed: bool,
    /// MFA state.
    pub mfa: MfaInfo,
    /// When a sync last wrote a change to the user (a sync that finds nothing changed does not
    /// rewrite it; the tenant's `lastSyncedAt` says when it was last read).
    pub synced_at: DateTime<Utc>,
    #[graphql(skip)]
    pub row: i64,
    #[graphql(skip)]
    pub tenant_row: i64,
    #[graphql(skip)]
    pub contact_id: Option<i64>,
    #[graphql(skip)]
    pub contact_match_raw: Option<String>,
    /// Read from the MFA history (`asOf`): licenses and contact links are not kept there.
    #[graphql(skip)]
    pub historical: bool,
}

impl M365User {
    /// A user as the MFA history says it was (`m365Users(asOf:)`): `id` is the user row the facts
    /// were read into, `syncedAt` and `mfa.checkedAt` when this state was first recorded.
    pub fn historical(h: entity::mfa_history::Model) -> Self {
        let mut u = Self::from(history_as_user(h));
        u.historical = true;
        u
    }
}

/// A history row in the shape of a user row (no aliases, no contact link).
pub fn history_as_user(h: entity::mfa_history::Model) -> m365_user::Model {
    m365_user::Model {
        id: h.user_id,
        account_id: h.account_id,
        tenant_id: h.tenant_id,
        object_id: h.object_id,
        display_name: h.display_name,
        user_principal_name: h.user_principal_name,
        mail: h.mail,
        aliases: Default::default(),
        account_enabled: h.account_enabled,
        user_type: h.user_type,
        is_admin: h.is_admin,
        is_licensed: h.is_licensed,
        mfa_status: h.mfa_status,
        mfa_methods: h.mfa_methods,
        mfa_source: h.mfa_source,
        mfa_checked_at: Some(h.valid_from),
        mfa_unavailable_reason: h.mfa_unavailable_reason,
        mfa_enforcement: h.mfa_enforcement,
        mfa_enforcement_sources: h.mfa_enforcement_sources,
        mfa_policies: h.mfa_policies,
        mfa_enforcement_reason: h.mfa_enforcement_reason,
        mfa_verdict: h.mfa_verdict,
        mfa_explanation: h.mfa_explanation,
        contact_id: None,
        contact_match: None,
        synced_at: h.valid_from,
        content_hash: 0,
    }
}

impl From<m365_user::Model> for M365User {
    fn from(m: m365_user::Model) -> Self {
        Self {
            id: ID(m.id.to_string()),
            object_id: m.object_id,
            display_name: m.display_name,
            user_principal_name: m.user_principal_name,
            mail: m.mail,
            aliases: m.aliases.0,
            account_enabled: m.account_enabled,
            user_type: m.user_type,
            is_admin: m.is_admin,
            is_licensed: m.is_licensed,
            mfa: MfaInfo {
                status: m.mfa_status.into(),
                methods: m.mfa_methods.0,
                source: m.mfa_source.map(Into::into),
                checked_at: m.mfa_checked_at,
                unavailable_reason: m.mfa_unavailable_reason,
                enforcement: MfaEnforcement {
                    state: m.mfa_enforcement.into(),
                    sources: m.mfa_enforcement_sources.0.into_iter().map(Into::into).collect(),
                    policies: m.mfa_policies.0,
                    unknown_reason: m.mfa_enforcement_reason,
                },
                verdict: m.mfa_verdict.into(),
                explanation: m.mfa_explanation.0,
            },
            synced_at: m.synced_at,
            row: m.id,
            tenant_row: m.tenant_id,
            contact_id: m.contact_id,
            contact_match_raw: m.contact_match,
            historical: false,
        }
    }
}

#[ComplexObject]
impl M365User {
    /// Licenses assigned to the user; empty on an `asOf` answer (history keeps `isLicensed`, not
    /// the assignments).
    async fn licenses(&self, ctx: &Context<'_>) -> AppResult<Vec<M365License>> {
        if self.historical {
            return Ok(vec![]);
        }
        let rows = load::<LicensesByUser>(ctx, self.row).await?.unwrap_or_default();
        let names = &ctx.state().license_names;
        Ok(rows.into_iter().map(|l| M365License::new(l, None, names)).collect())
    }

    /// The linked contact of the mapped client; null when unlinked, and on an `asOf` answer
    /// (contact links are not kept in history).
    async fn contact(&self, ctx: &Context<'_>) -> AppResult<Option<Contact>> {
        let Some(id) = self.contact_id else { return Ok(None) };
        Ok(load::<ContactById>(ctx, id).await?.map(Contact::from))
    }

    /// How the user was matched to a contact.
    async fn contact_match(&self) -> ContactMatch {
        match self.contact_match_raw.as_deref() {
            Some(m) if m.starts_with("linked:") => ContactMatch {
                status: ContactMatchStatus::Linked,
                matched_address: Some(m["linked:".len()..].to_owned()),
            },
            Some("ambiguous") => ContactMatch { status: ContactMatchStatus::Ambiguous, matched_address: None },
            _ => ContactMatch { status: ContactMatchStatus::None, matched_address: None },
        }
    }

    /// The user's tenant.
    async fn tenant(&self, ctx: &Context<'_>) -> AppResult<M365Tenant> {
        load::<TenantById>(ctx, self.tenant_row).await?.map(M365Tenant::from).ok_or(AppError::NotFound("tenant"))
    }

    /// The client the user's tenant is mapped to; null while unmapped.
    async fn client(&self, ctx: &Context<'_>) -> AppResult<Option<Client>> {
        let Some(m) = load::<MappingByTenant>(ctx, self.tenant_row).await?.flatten() else { return Ok(None) };
        Ok(load::<ClientById>(ctx, m.client_id).await?.map(Client::from))
    }
}

connection!(M365UserConnection, M365UserEdge, M365User, "A page of synced users.", "A user with its cursor.");

/// Which users to list; every given field must hold.
#[derive(Clone, Debug, Default, InputObject)]
pub struct M365UserFilter {
    /// Only this tenant (our id).
    pub tenant_id: Option<ID>,
    /// Only tenants mapped to this client.
    pub client_id: Option<ID>,
    /// Only this MFA registration status.
    pub mfa_status: Option<MfaStatus>,
    /// Only this MFA verdict (e.g. `NOT_REGISTERED`: required but not registered).
    pub mfa_verdict: Option<MfaVerdict>,
    /// Only admins (true) or non-admins (false).
    pub is_admin: Option<bool>,
    /// Only enabled (true) or blocked (false) accounts.
    pub account_enabled: Option<bool>,
    /// Only licensed (true) or unlicensed (false) users.
    pub licensed: Option<bool>,
    /// Only users linked (true) or not linked (false) to a contact.
    pub contact_linked: Option<bool>,
    /// Case-insensitive part of the UPN, display name or mail.
    pub search: Option<String>,
}

/// A subscribed SKU of a tenant.
#[derive(Clone, Debug, SimpleObject)]
#[graphql(complex)]
pub struct M365License {
    /// SKU id (GUID).
    pub sku_id: String,
    /// SKU part number, e.g. `SPB`.
    pub sku_part_number: String,
    /// Product name from Microsoft's product-names list; the part number when unknown.
    pub friendly_name: String,
    /// `Enabled`, `Warning`, `Suspended`, `LockedOut`…
    pub capability_status: String,
    /// Seats bought.
    pub enabled_units: i32,
    /// Seats assigned.
    pub consumed_units: i32,
    /// Seats free (`enabledUnits - consumedUnits`, never negative).
    pub available_units: i32,
    /// Seats suspended.
    pub suspended_units: i32,
    /// Seats in the grace period.
    pub warning_units: i32,
    /// Users holding the SKU (in the inventory); null when listed under a user.
    pub assigned_users: Option<i32>,
    #[graphql(skip)]
    pub tenant_row: i64,
}

impl M365License {
    /// From a stored row.
    pub fn new(l: m365_license::Model, assigned: Option<i64>, names: &crate::licenses::LicenseNames) -> Self {
        Self {
            friendly_name: names.name(&l.sku_id, &l.sku_part_number),
            sku_id: l.sku_id,
            sku_part_number: l.sku_part_number,
            capability_status: l.capability_status,
            enabled_units: l.enabled_units as i32,
            consumed_units: l.consumed_units as i32,
            available_units: (l.enabled_units - l.consumed_units).max(0) as i32,
            suspended_units: l.suspended_units as i32,
            warning_units: l.warning_units as i32,
            assigned_users: assigned.map(|n| n as i32),
            tenant_row: l.tenant_id,
        }
    }
}

#[ComplexObject]
impl M365License {
    /// The tenant that subscribes to it.
    async fn tenant(&self, ctx: &Context<'_>) -> AppResult<M365Tenant> {
        load::<TenantById>(ctx, self.tenant_row).await?.map(M365Tenant::from).ok_or(AppError::NotFound("tenant"))
    }
}
