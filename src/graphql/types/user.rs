//! `M365User`, `MfaInfo`, `ContactMatch`, `M365License`.

use std::{borrow::Cow, collections::HashMap};

use async_graphql::{
    ComplexObject, Context, ContextSelectionSet, Enum, ID, InputObject, OutputType, Positioned, ServerError,
    ServerResult, SimpleObject, Value, parser::types::Field, registry::Registry,
};
use chrono::{DateTime, Utc};
use entity::{m365_license, m365_user};

use crate::{
    connection,
    error::{AppError, AppResult},
    graphql::{
        ContextExt, fast,
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

impl M365User {
    /// How the user was matched to a contact.
    fn contact_match_of(&self) -> ContactMatch {
        match self.contact_match_raw.as_deref() {
            Some(m) if m.starts_with("linked:") => ContactMatch {
                status: ContactMatchStatus::Linked,
                matched_address: Some(m["linked:".len()..].to_owned()),
            },
            Some("ambiguous") => ContactMatch { status: ContactMatchStatus::Ambiguous, matched_address: None },
            _ => ContactMatch { status: ContactMatchStatus::None, matched_address: None },
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
        self.contact_match_of()
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

connection!(
    M365UserConnection,
    M365UserEdge,
    M365User,
    "A page of synced users.",
    "A user with its cursor.",
    edges = M365UserEdges
);

/// A page's edges, answered in one loop rather than a future per field (see
/// [`crate::graphql::fast`]). A page of 100 users with their MFA, licenses, contact, tenant and
/// client is about 3,000 fields; the tenant and the client are the same for every user of a
/// tenant, so each is answered once per tenant and selection and copied (an error inside one is
/// reported once, at the first user that asked).
pub struct M365UserEdges(pub Vec<M365UserEdge>);

impl OutputType for M365UserEdges {
    fn type_name() -> Cow<'static, str> {
        <Vec<M365UserEdge> as OutputType>::type_name()
    }

    fn qualified_type_name() -> String {
        <Vec<M365UserEdge> as OutputType>::qualified_type_name()
    }

    fn create_type_info(registry: &mut Registry) -> String {
        <Vec<M365UserEdge> as OutputType>::create_type_info(registry)
    }

    async fn resolve(&self, ctx: &ContextSelectionSet<'_>, field: &Positioned<Field>) -> ServerResult<Value> {
        if fast::derived(ctx) {
            return OutputType::resolve(&self.0, ctx, field).await;
        }
        Ok(Page::default().edges(ctx, &self.0).await)
    }
}

/// What the users of one page share: the answers for a tenant or client, by (field, tenant row).
#[derive(Default)]
struct Page {
    shared: HashMap<(usize, i64), Value>,
}

/// A resolver error as the derived resolvers report it: at the field, with its path.
fn field_error(ctx: &Context<'_>, e: AppError) -> ServerError {
    ctx.set_error_path(async_graphql::Error::from(e).into_server_error(ctx.item.pos))
}

impl Page {
    async fn edges(&mut self, ctx: &ContextSelectionSet<'_>, edges: &[M365UserEdge]) -> Value {
        let Some(fields) = fast::fields_or_null(ctx, "M365UserEdge") else { return Value::Null };
        // What each `node` selects, flattened once for the page.
        let mut node_fields = Vec::with_capacity(fields.len());
        for f in &fields {
            node_fields.push(match f.node.name.node.as_str() {
                "node" => match fast::fields_or_null(&ctx.with_selection_set(&f.node.selection_set), "M365User") {
                    Some(f) => f,
                    None => return Value::Null,
                },
                _ => vec![],
            });
        }
        let mut out = Vec::with_capacity(edges.len());
        for (i, edge) in edges.iter().enumerate() {
            let ctx = ctx.with_index(i);
            let mut obj = fast::Object::with_capacity(fields.len());
            for (f, node_fields) in fields.iter().zip(&node_fields) {
                let c = ctx.with_field(f);
                let answer = match f.node.name.node.as_str() {
                    "cursor" => Ok(fast::string(&edge.cursor)),
                    "node" => {
                        Ok(self.user(&c.with_selection_set(&f.node.selection_set), node_fields, &edge.node).await)
                    }
                    "__typename" => Ok(Value::String("M365UserEdge".into())),
                    _ => fast::derived_field(edge, &c).await,
                };
                obj.put(&c, answer);
            }
            out.push(obj.finish());
        }
        Value::List(out)
    }

    async fn user(&mut self, ctx: &ContextSelectionSet<'_>, fields: &[&Positioned<Field>], u: &M365User) -> Value {
        let mut obj = fast::Object::with_capacity(fields.len());
        for f in fields.iter().copied() {
            let c = ctx.with_field(f);
            let below = c.with_selection_set(&f.node.selection_set);
            let answer = match f.node.name.node.as_str() {
                "id" => Ok(fast::scalar(&u.id)),
                "objectId" => Ok(fast::string(&u.object_id)),
                "displayName" => Ok(fast::opt_string(u.display_name.as_deref())),
                "userPrincipalName" => Ok(fast::string(&u.user_principal_name)),
                "mail" => Ok(fast::opt_string(u.mail.as_deref())),
                "aliases" => Ok(fast::strings(&u.aliases)),
                "accountEnabled" => Ok(Value::Boolean(u.account_enabled)),
                "userType" => Ok(fast::opt_string(u.user_type.as_deref())),
                "isAdmin" => Ok(u.is_admin.map_or(Value::Null, Value::Boolean)),
                "isLicensed" => Ok(Value::Boolean(u.is_licensed)),
                "syncedAt" => Ok(fast::scalar(&u.synced_at)),
                "mfa" => Ok(mfa(&below, &u.mfa).await),
                "contactMatch" => {
                    let m = u.contact_match_of();
                    Ok(fast::object(&below, &m, |name| match name {
                        "status" => Some(fast::enum_value(m.status)),
                        "matchedAddress" => Some(fast::opt_string(m.matched_address.as_deref())),
                        _ => None,
                    })
                    .await)
                }
                "licenses" => self.licenses(&c, u).await,
                "contact" => contact(&c, u).await,
                "tenant" => self.tenant(&c, u.tenant_row).await,
                "client" => self.client(&c, u.tenant_row).await,
                "__typename" => Ok(Value::String("M365User".into())),
                _ => fast::derived_field(u, &c).await,
            };
            obj.put(&c, answer);
        }
        obj.finish()
    }

    async fn licenses(&mut self, ctx: &Context<'_>, u: &M365User) -> ServerResult<Value> {
        if u.historical {
            return Ok(Value::List(vec![]));
        }
        let rows = load::<LicensesByUser>(ctx, u.row).await.map_err(|e| field_error(ctx, e))?.unwrap_or_default();
        let names = &ctx.state().license_names;
        let sel = ctx.with_selection_set(&ctx.item.node.selection_set);
        let fields = fast::fields(&sel, "M365License")?;
        let mut out = Vec::with_capacity(rows.len());
        for (i, row) in rows.into_iter().enumerate() {
            let l = M365License::new(row, None, names);
            let ctx = sel.with_index(i);
            let mut obj = fast::Object::with_capacity(fields.len());
            for f in &fields {
                let c = ctx.with_field(f);
                let answer = match f.node.name.node.as_str() {
                    "skuId" => Ok(fast::string(&l.sku_id)),
                    "skuPartNumber" => Ok(fast::string(&l.sku_part_number)),
                    "friendlyName" => Ok(fast::string(&l.friendly_name)),
                    "capabilityStatus" => Ok(fast::string(&l.capability_status)),
                    "enabledUnits" => Ok(fast::scalar(&l.enabled_units)),
                    "consumedUnits" => Ok(fast::scalar(&l.consumed_units)),
                    "availableUnits" => Ok(fast::scalar(&l.available_units)),
                    "suspendedUnits" => Ok(fast::scalar(&l.suspended_units)),
                    "warningUnits" => Ok(fast::scalar(&l.warning_units)),
                    "assignedUsers" => Ok(fast::opt_scalar(l.assigned_users.as_ref())),
                    "tenant" => self.tenant(&c, l.tenant_row).await,
                    "__typename" => Ok(Value::String("M365License".into())),
                    _ => fast::derived_field(&l, &c).await,
                };
                obj.put(&c, answer);
            }
            out.push(obj.finish());
        }
        Ok(Value::List(out))
    }

    /// The tenant's answer for this field's selection, computed once per page.
    async fn tenant(&mut self, ctx: &Context<'_>, row: i64) -> ServerResult<Value> {
        let key = (std::ptr::from_ref(ctx.item) as usize, row);
        if let Some(v) = self.shared.get(&key) {
            return Ok(v.clone());
        }
        let t = load::<TenantById>(ctx, row)
            .await
            .map_err(|e| field_error(ctx, e))?
            .ok_or_else(|| field_error(ctx, AppError::NotFound("tenant")))?;
        let v = fast::resolve(&M365Tenant::from(t), ctx).await?;
        self.shared.insert(key, v.clone());
        Ok(v)
    }

    /// The client of the tenant's mapping (null while unmapped) for this field's selection,
    /// computed once per page.
    async fn client(&mut self, ctx: &Context<'_>, tenant_row: i64) -> ServerResult<Value> {
        let key = (std::ptr::from_ref(ctx.item) as usize, tenant_row);
        if let Some(v) = self.shared.get(&key) {
            return Ok(v.clone());
        }
        let v = match load::<MappingByTenant>(ctx, tenant_row).await.map_err(|e| field_error(ctx, e))?.flatten() {
            None => Value::Null,
            Some(m) => match load::<ClientById>(ctx, m.client_id).await.map_err(|e| field_error(ctx, e))? {
                None => Value::Null,
                Some(client) => fast::resolve(&Client::from(client), ctx).await?,
            },
        };
        self.shared.insert(key, v.clone());
        Ok(v)
    }
}

/// A user's MFA facts.
async fn mfa(ctx: &ContextSelectionSet<'_>, m: &MfaInfo) -> Value {
    let Some(fields) = fast::fields_or_null(ctx, "MfaInfo") else { return Value::Null };
    let mut obj = fast::Object::with_capacity(fields.len());
    for f in fields {
        let c = ctx.with_field(f);
        let answer = match f.node.name.node.as_str() {
            "status" => Ok(fast::enum_value(m.status)),
            "methods" => Ok(fast::strings(&m.methods)),
            "source" => Ok(m.source.map_or(Value::Null, fast::enum_value)),
            "checkedAt" => Ok(fast::opt_scalar(m.checked_at.as_ref())),
            "unavailableReason" => Ok(fast::opt_string(m.unavailable_reason.as_deref())),
            "enforcement" => {
                let e = &m.enforcement;
                Ok(fast::object(&c.with_selection_set(&f.node.selection_set), e, |name| match name {
                    "state" => Some(fast::enum_value(e.state)),
                    "sources" => Some(Value::List(e.sources.iter().map(|s| fast::enum_value(*s)).collect())),
                    "policies" => Some(fast::strings(&e.policies)),
                    "unknownReason" => Some(fast::opt_string(e.unknown_reason.as_deref())),
                    _ => None,
                })
                .await)
            }
            "verdict" => Ok(fast::enum_value(m.verdict)),
            "explanation" => Ok(fast::strings(&m.explanation)),
            "__typename" => Ok(Value::String("MfaInfo".into())),
            _ => fast::derived_field(m, &c).await,
        };
        obj.put(&c, answer);
    }
    obj.finish()
}

/// The user's linked contact; null when unlinked.
async fn contact(ctx: &Context<'_>, u: &M365User) -> ServerResult<Value> {
    let Some(id) = u.contact_id else { return Ok(Value::Null) };
    let Some(row) = load::<ContactById>(ctx, id).await.map_err(|e| field_error(ctx, e))? else {
        return Ok(Value::Null);
    };
    let c = Contact::from(row);
    Ok(fast::object(&ctx.with_selection_set(&ctx.item.node.selection_set), &c, |name| match name {
        "id" => Some(fast::scalar(&c.id)),
        "clientId" => Some(fast::scalar(&c.client_id)),
        "source" => Some(fast::string(&c.source)),
        "externalId" => Some(fast::string(&c.external_id)),
        "name" => Some(fast::string(&c.name)),
        "emails" => Some(fast::strings(&c.emails)),
        _ => None,
    })
    .await)
}

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
