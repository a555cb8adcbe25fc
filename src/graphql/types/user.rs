//! `M365User`, `MfaInfo`, `ContactMatch`, `M365License`.

use std::{
    borrow::Cow,
    collections::{HashMap, hash_map::Entry},
};

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

/// A page's edges, written as JSON in one loop rather than resolved as a future and a `Value`
/// per field (see [`crate::graphql::fast`]). A page of 100 users with their MFA, licenses,
/// contact, tenant and client is about 3,000 fields; the selection is planned once per page, and
/// the tenant and the client, the same for every user of a tenant, are answered once per tenant
/// and selection and copied (an error inside one is reported once, at the first user that asked).
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
        // About a kilobyte and a half per user with everything selected.
        let mut w = Vec::with_capacity(64 + 1536 * self.0.len());
        Page::default().edges(&mut w, ctx, &self.0).await;
        fast::embed(ctx, w)
    }
}

/// The objects of a page written from memory, by (parent type, field): the child's type.
fn child_type(ty: &str, field: &str) -> Option<String> {
    let table: [(Cow<'static, str>, &str, Cow<'static, str>); 6] = [
        (M365UserEdge::type_name(), "node", M365User::type_name()),
        (M365User::type_name(), "mfa", MfaInfo::type_name()),
        (M365User::type_name(), "contactMatch", ContactMatch::type_name()),
        (M365User::type_name(), "licenses", M365License::type_name()),
        (M365User::type_name(), "contact", Contact::type_name()),
        (MfaInfo::type_name(), "enforcement", MfaEnforcement::type_name()),
    ];
    table.into_iter().find(|(t, f, _)| t == ty && *f == field).map(|(_, _, c)| c.into_owned())
}

/// What the users of one page share: the JSON of a tenant or a client, by (field, tenant row).
#[derive(Default)]
struct Page {
    shared: HashMap<(usize, i64), Vec<u8>>,
}

/// A resolver error as the derived resolvers report it: at the field, with its path.
fn field_error(ctx: &Context<'_>, e: AppError) -> ServerError {
    ctx.set_error_path(async_graphql::Error::from(e).into_server_error(ctx.item.pos))
}

impl Page {
    async fn edges(&mut self, w: &mut Vec<u8>, ctx: &ContextSelectionSet<'_>, edges: &[M365UserEdge]) {
        let plan = match fast::plan(ctx, &[&ctx.item.node], &M365UserEdge::type_name(), &child_type) {
            Ok(plan) => plan,
            Err(e) => {
                ctx.add_error(e);
                w.extend_from_slice(b"null");
                return;
            }
        };
        w.push(b'[');
        for (i, edge) in edges.iter().enumerate() {
            if i > 0 {
                w.push(b',');
            }
            let ctx = ctx.with_index(i);
            let mut obj = fast::Obj::begin(w);
            for g in &plan {
                match g.name() {
                    "cursor" => {
                        let _ = obj.key(w, g.key());
                        fast::json(w, &edge.cursor);
                    }
                    "node" => {
                        let _ = obj.key(w, g.key());
                        let c = ctx.with_field(g.first());
                        self.user(w, &c.with_selection_set(&g.first().node.selection_set), &g.sub, &edge.node).await;
                    }
                    "__typename" => {
                        let _ = obj.key(w, g.key());
                        fast::json(w, &*M365UserEdge::type_name());
                    }
                    _ => {
                        let answer = fast::delegate(edge, &ctx, g).await;
                        obj.put(w, &ctx.with_field(g.first()), g.key(), answer);
                    }
                }
            }
            obj.end(w);
        }
        w.push(b']');
    }

    async fn user(&mut self, w: &mut Vec<u8>, ctx: &ContextSelectionSet<'_>, plan: &[fast::Group<'_>], u: &M365User) {
        let mut obj = fast::Obj::begin(w);
        for g in plan {
            let key = g.key();
            let c = ctx.with_field(g.first());
            let below = c.with_selection_set(&g.first().node.selection_set);
            match g.name() {
                "licenses" => match self.licenses(&c, u).await {
                    Ok(rows) => {
                        let _ = obj.key(w, key);
                        self.write_licenses(w, &below, &g.sub, rows, &c.state().license_names).await;
                    }
                    Err(e) => fast::fail(&c, e),
                },
                "contact" => match contact(&c, u).await {
                    Ok(contact) => {
                        let _ = obj.key(w, key);
                        write_contact(w, &below, &g.sub, contact.as_ref()).await;
                    }
                    Err(e) => fast::fail(&c, e),
                },
                name @ ("tenant" | "client") => {
                    let what = if name == "tenant" { Shared::Tenant } else { Shared::Client };
                    match self.shared(ctx, g, what, u.tenant_row).await {
                        Ok(json) => {
                            let _ = obj.key(w, key);
                            w.extend_from_slice(json);
                        }
                        Err(e) => fast::fail(&c, e),
                    }
                }
                name => {
                    let mark = obj.key(w, key);
                    match name {
                        "id" => fast::scalar(w, &u.id),
                        "objectId" => fast::json(w, &u.object_id),
                        "displayName" => fast::opt_json(w, u.display_name.as_deref()),
                        "userPrincipalName" => fast::json(w, &u.user_principal_name),
                        "mail" => fast::opt_json(w, u.mail.as_deref()),
                        "aliases" => fast::json(w, &u.aliases),
                        "accountEnabled" => fast::json(w, &u.account_enabled),
                        "userType" => fast::opt_json(w, u.user_type.as_deref()),
                        "isAdmin" => fast::opt_json(w, u.is_admin.as_ref()),
                        "isLicensed" => fast::json(w, &u.is_licensed),
                        "syncedAt" => fast::scalar(w, &u.synced_at),
                        "mfa" => mfa(w, &below, &g.sub, &u.mfa).await,
                        "contactMatch" => {
                            let m = u.contact_match_of();
                            fast::object(w, &below, &g.sub, &m, |w, name| {
                                match name {
                                    "status" => fast::enum_value(w, m.status),
                                    "matchedAddress" => fast::opt_json(w, m.matched_address.as_deref()),
                                    _ => return false,
                                }
                                true
                            })
                            .await;
                        }
                        "__typename" => fast::json(w, &*M365User::type_name()),
                        _ => {
                            obj.undo(w, mark);
                            let answer = fast::delegate(u, ctx, g).await;
                            obj.put(w, &c, key, answer);
                        }
                    }
                }
            }
        }
        obj.end(w);
    }

    /// The user's license rows (none on an `asOf` answer).
    async fn licenses(&self, ctx: &Context<'_>, u: &M365User) -> ServerResult<Vec<m365_license::Model>> {
        if u.historical {
            return Ok(vec![]);
        }
        Ok(load::<LicensesByUser>(ctx, u.row).await.map_err(|e| field_error(ctx, e))?.unwrap_or_default())
    }

    async fn write_licenses(
        &mut self,
        w: &mut Vec<u8>,
        ctx: &ContextSelectionSet<'_>,
        plan: &[fast::Group<'_>],
        rows: Vec<m365_license::Model>,
        names: &crate::licenses::LicenseNames,
    ) {
        w.push(b'[');
        for (i, row) in rows.into_iter().enumerate() {
            if i > 0 {
                w.push(b',');
            }
            let l = M365License::new(row, None, names);
            let ctx = ctx.with_index(i);
            let mut obj = fast::Obj::begin(w);
            for g in plan {
                let key = g.key();
                if g.name() == "tenant" {
                    match self.shared(&ctx, g, Shared::Tenant, l.tenant_row).await {
                        Ok(json) => {
                            let _ = obj.key(w, key);
                            w.extend_from_slice(json);
                        }
                        Err(e) => fast::fail(&ctx.with_field(g.first()), e),
                    }
                    continue;
                }
                let mark = obj.key(w, key);
                match g.name() {
                    "skuId" => fast::json(w, &l.sku_id),
                    "skuPartNumber" => fast::json(w, &l.sku_part_number),
                    "friendlyName" => fast::json(w, &l.friendly_name),
                    "capabilityStatus" => fast::json(w, &l.capability_status),
                    "enabledUnits" => fast::json(w, &l.enabled_units),
                    "consumedUnits" => fast::json(w, &l.consumed_units),
                    "availableUnits" => fast::json(w, &l.available_units),
                    "suspendedUnits" => fast::json(w, &l.suspended_units),
                    "warningUnits" => fast::json(w, &l.warning_units),
                    "assignedUsers" => fast::opt_json(w, l.assigned_users.as_ref()),
                    "__typename" => fast::json(w, &*M365License::type_name()),
                    _ => {
                        obj.undo(w, mark);
                        let answer = fast::delegate(&l, &ctx, g).await;
                        obj.put(w, &ctx.with_field(g.first()), key, answer);
                    }
                }
            }
            obj.end(w);
        }
        w.push(b']');
    }

    /// The JSON of the user's tenant, or of the client its mapping names (null while unmapped),
    /// for this group's selection (`ctx` is the object that selects it): computed once per page
    /// and tenant.
    async fn shared<'s>(
        &'s mut self,
        ctx: &ContextSelectionSet<'_>,
        g: &fast::Group<'_>,
        what: Shared,
        tenant_row: i64,
    ) -> ServerResult<&'s [u8]> {
        let key = (std::ptr::from_ref(g.first()) as usize, tenant_row);
        if let Entry::Vacant(slot) = self.shared.entry(key) {
            let c = ctx.with_field(g.first());
            let v = match what {
                Shared::Tenant => {
                    let t = load::<TenantById>(&c, tenant_row)
                        .await
                        .map_err(|e| field_error(&c, e))?
                        .ok_or_else(|| field_error(&c, AppError::NotFound("tenant")))?;
                    fast::resolve(&M365Tenant::from(t), ctx, g).await?
                }
                Shared::Client => {
                    match load::<MappingByTenant>(&c, tenant_row).await.map_err(|e| field_error(&c, e))?.flatten() {
                        None => Value::Null,
                        Some(m) => match load::<ClientById>(&c, m.client_id).await.map_err(|e| field_error(&c, e))? {
                            None => Value::Null,
                            Some(client) => fast::resolve(&Client::from(client), ctx, g).await?,
                        },
                    }
                }
            };
            let mut json = Vec::new();
            fast::json(&mut json, &v);
            slot.insert(json);
        }
        Ok(&self.shared[&key])
    }
}

/// What the users of a tenant share on a page.
#[derive(Clone, Copy)]
enum Shared {
    /// `tenant`.
    Tenant,
    /// `client`.
    Client,
}

/// Writes a user's MFA facts.
async fn mfa(w: &mut Vec<u8>, ctx: &ContextSelectionSet<'_>, plan: &[fast::Group<'_>], m: &MfaInfo) {
    let mut obj = fast::Obj::begin(w);
    for g in plan {
        let mark = obj.key(w, g.key());
        match g.name() {
            "status" => fast::enum_value(w, m.status),
            "methods" => fast::json(w, &m.methods),
            "source" => match m.source {
                Some(s) => fast::enum_value(w, s),
                None => w.extend_from_slice(b"null"),
            },
            "checkedAt" => fast::opt_scalar(w, m.checked_at.as_ref()),
            "unavailableReason" => fast::opt_json(w, m.unavailable_reason.as_deref()),
            "enforcement" => {
                let e = &m.enforcement;
                let c = ctx.with_field(g.first());
                fast::object(w, &c.with_selection_set(&g.first().node.selection_set), &g.sub, e, |w, name| {
                    match name {
                        "state" => fast::enum_value(w, e.state),
                        "sources" => fast::enum_values(w, &e.sources),
                        "policies" => fast::json(w, &e.policies),
                        "unknownReason" => fast::opt_json(w, e.unknown_reason.as_deref()),
                        _ => return false,
                    }
                    true
                })
                .await;
            }
            "verdict" => fast::enum_value(w, m.verdict),
            "explanation" => fast::json(w, &m.explanation),
            "__typename" => fast::json(w, &*MfaInfo::type_name()),
            _ => {
                obj.undo(w, mark);
                let answer = fast::delegate(m, ctx, g).await;
                obj.put(w, &ctx.with_field(g.first()), g.key(), answer);
            }
        }
    }
    obj.end(w);
}

/// The user's linked contact; none when unlinked.
async fn contact(ctx: &Context<'_>, u: &M365User) -> ServerResult<Option<Contact>> {
    let Some(id) = u.contact_id else { return Ok(None) };
    Ok(load::<ContactById>(ctx, id).await.map_err(|e| field_error(ctx, e))?.map(Contact::from))
}

/// Writes a contact, or null.
async fn write_contact(w: &mut Vec<u8>, ctx: &ContextSelectionSet<'_>, plan: &[fast::Group<'_>], c: Option<&Contact>) {
    let Some(c) = c else { return w.extend_from_slice(b"null") };
    fast::object(w, ctx, plan, c, |w, name| {
        match name {
            "id" => fast::scalar(w, &c.id),
            "clientId" => fast::scalar(w, &c.client_id),
            "source" => fast::json(w, &c.source),
            "externalId" => fast::json(w, &c.external_id),
            "name" => fast::json(w, &c.name),
            "emails" => fast::json(w, &c.emails),
            _ => return false,
        }
        true
    })
    .await
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
