//! Queries on `m365_user`, `m365_license` and `m365_user_license`: the batched per-tenant
//! writes of a sync (no round trip per user) and the reads behind the API.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use entity::{
    m365_license, m365_user, m365_user_count, m365_user_license, mfa_history,
    states::{EnforcementSource, MfaEnforcementState, MfaSource, MfaStatus, MfaVerdict},
    types::{EnforcementSources, EvidenceFigures, StringList},
};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QuerySelect, Set,
    sea_query::{Expr, OnConflict},
};

/// A user as the sync writes it.
#[derive(Clone, Debug)]
pub struct UserRow {
    pub object_id: String,
    pub display_name: Option<String>,
    pub user_principal_name: String,
    pub mail: Option<String>,
    pub aliases: Vec<String>,
    pub account_enabled: bool,
    pub user_type: Option<String>,
    pub is_admin: Option<bool>,
    pub sku_ids: Vec<String>,
    pub mfa_status: MfaStatus,
    pub mfa_methods: Vec<String>,
    pub mfa_source: Option<MfaSource>,
    pub mfa_unavailable_reason: Option<String>,
    pub mfa_enforcement: MfaEnforcementState,
    pub mfa_enforcement_sources: Vec<EnforcementSource>,
    pub mfa_policies: Vec<String>,
    pub mfa_enforcement_reason: Option<String>,
    pub mfa_verdict: MfaVerdict,
    pub mfa_explanation: Vec<String>,
    pub contact_id: Option<i64>,
    pub contact_match: Option<String>,
}

/// A subscribed SKU as the sync writes it.
#[derive(Clone, Debug)]
pub struct LicenseRow {
    pub sku_id: String,
    pub sku_part_number: String,
    pub capability_status: String,
    pub enabled_units: i64,
    pub consumed_units: i64,
    pub suspended_units: i64,
    pub warning_units: i64,
}

/// Rows per INSERT: 27 columns × 400 stays well inside SQLite's bound-parameter limit (32,766).
const CHUNK: usize = 400;

/// What a sync changed in a tenant's users.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UsersWritten {
    /// Rows inserted or rewritten (new users, and users whose content changed).
    pub written: usize,
    /// Rows removed (users the listing no longer has).
    pub removed: usize,
    /// `object_id → id` of the tenant's users after the write (what [`ids_of_tenant`] reads;
    /// read again only when users were added).
    pub ids: HashMap<String, i64>,
}

/// What is stored of a user, to tell whether a sync must rewrite it.
#[derive(Debug, sea_orm::FromQueryResult)]
struct StoredUser {
    id: i64,
    object_id: String,
    content_hash: i64,
    contact_id: Option<i64>,
    contact_match: Option<String>,
}

/// A digest of what a sync writes to a user's row, except its contact link (contact matching
/// also writes that, on its own, so it is compared as stored) and the timestamps. Stable across
/// builds: SHA-256 over length-prefixed fields, first 8 bytes.
pub fn content_hash(u: &UserRow) -> i64 {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    let mut put = |tag: u8, b: &[u8]| {
        h.update([tag]);
        h.update((b.len() as u64).to_le_bytes());
        h.update(b);
    };
    let text = |put: &mut dyn FnMut(u8, &[u8]), v: Option<&str>| match v {
        Some(v) => put(1, v.as_bytes()),
        None => put(0, &[]),
    };
    let list = |put: &mut dyn FnMut(u8, &[u8]), v: &[String]| {
        put(2, &(v.len() as u64).to_le_bytes());
        for s in v {
            put(1, s.as_bytes());
        }
    };
    text(&mut put, Some(&u.object_id));
    text(&mut put, u.display_name.as_deref());
    text(&mut put, Some(&u.user_principal_name));
    text(&mut put, u.mail.as_deref());
    list(&mut put, &u.aliases);
    put(3, &[u.account_enabled as u8]);
    text(&mut put, u.user_type.as_deref());
    put(3, &[u.is_admin.map_or(2, u8::from)]);
    put(3, &[u8::from(!u.sku_ids.is_empty())]);
    text(&mut put, Some(&sea_orm::ActiveEnum::to_value(&u.mfa_status)));
    list(&mut put, &u.mfa_methods);
    text(&mut put, u.mfa_source.map(|s| sea_orm::ActiveEnum::to_value(&s)).as_deref());
    text(&mut put, u.mfa_unavailable_reason.as_deref());
    text(&mut put, Some(&sea_orm::ActiveEnum::to_value(&u.mfa_enforcement)));
    text(&mut put, Some(&serde_json::to_string(&u.mfa_enforcement_sources).unwrap_or_default()));
    list(&mut put, &u.mfa_policies);
    text(&mut put, u.mfa_enforcement_reason.as_deref());
    text(&mut put, Some(&sea_orm::ActiveEnum::to_value(&u.mfa_verdict)));
    list(&mut put, &u.mfa_explanation);
    let d = h.finalize();
    i64::from_le_bytes(d[..8].try_into().expect("8 bytes"))
}

/// Writes a tenant's complete user listing: inserts new users, rewrites (stamped `synced_at =
/// now`) only users whose content or contact link changed, and removes the tenant's users the
/// listing no longer has. A sync that finds nothing changed writes no user row. Call only with a
/// complete listing.
pub async fn replace_users(
    db: &impl ConnectionTrait,
    account_id: i64,
    tenant_row: i64,
    users: &[UserRow],
    now: DateTime<Utc>,
) -> Result<UsersWritten, DbErr> {
    let stored = m365_user::Entity::find()
        .select_only()
        .columns([
            m365_user::Column::Id,
            m365_user::Column::ObjectId,
            m365_user::Column::ContentHash,
            m365_user::Column::ContactId,
            m365_user::Column::ContactMatch,
        ])
        .filter(m365_user::Column::TenantId.eq(tenant_row))
        .into_model::<StoredUser>()
        .all(db)
        .await?;
    let mut ids: HashMap<String, i64> = stored.iter().map(|s| (s.object_id.clone(), s.id)).collect();
    let mut stored: HashMap<&str, &StoredUser> = stored.iter().map(|s| (s.object_id.as_str(), s)).collect();
    let mut changed: Vec<(&UserRow, i64)> = vec![];
    let mut added = false;
    for u in users {
        let hash = content_hash(u);
        match stored.remove(u.object_id.as_str()) {
            Some(s) if s.content_hash == hash && s.contact_id == u.contact_id && s.contact_match == u.contact_match => {
            }
            Some(_) => changed.push((u, hash)),
            None => {
                added = true;
                changed.push((u, hash));
            }
        }
    }
    let gone: Vec<i64> = stored.values().map(|s| s.id).collect();
    for s in stored.values() {
        ids.remove(&s.object_id);
    }
    for chunk in changed.chunks(CHUNK) {
        let rows = chunk.iter().map(|(u, hash)| m365_user::ActiveModel {
            account_id: Set(account_id),
            tenant_id: Set(tenant_row),
            object_id: Set(u.object_id.clone()),
            display_name: Set(u.display_name.clone()),
            user_principal_name: Set(u.user_principal_name.clone()),
            mail: Set(u.mail.clone()),
            aliases: Set(StringList(u.aliases.clone())),
            account_enabled: Set(u.account_enabled),
            user_type: Set(u.user_type.clone()),
            is_admin: Set(u.is_admin),
            is_licensed: Set(!u.sku_ids.is_empty()),
            mfa_status: Set(u.mfa_status),
            mfa_methods: Set(StringList(u.mfa_methods.clone())),
            mfa_source: Set(u.mfa_source),
            mfa_checked_at: Set(Some(now)),
            mfa_unavailable_reason: Set(u.mfa_unavailable_reason.clone()),
            mfa_enforcement: Set(u.mfa_enforcement),
            mfa_enforcement_sources: Set(EnforcementSources(u.mfa_enforcement_sources.clone())),
            mfa_policies: Set(StringList(u.mfa_policies.clone())),
            mfa_enforcement_reason: Set(u.mfa_enforcement_reason.clone()),
            mfa_verdict: Set(u.mfa_verdict),
            mfa_explanation: Set(StringList(u.mfa_explanation.clone())),
            contact_id: Set(u.contact_id),
            contact_match: Set(u.contact_match.clone()),
            content_hash: Set(*hash),
            synced_at: Set(now),
            ..Default::default()
        });
        m365_user::Entity::insert_many(rows)
            .on_conflict(
                OnConflict::columns([m365_user::Column::TenantId, m365_user::Column::ObjectId])
                    .update_columns([
                        m365_user::Column::DisplayName,
                        m365_user::Column::UserPrincipalName,
                        m365_user::Column::Mail,
                        m365_user::Column::Aliases,
                        m365_user::Column::AccountEnabled,
                        m365_user::Column::UserType,
                        m365_user::Column::IsAdmin,
                        m365_user::Column::IsLicensed,
                        m365_user::Column::MfaStatus,
                        m365_user::Column::MfaMethods,
                        m365_user::Column::MfaSource,
                        m365_user::Column::MfaCheckedAt,
                        m365_user::Column::MfaUnavailableReason,
                        m365_user::Column::MfaEnforcement,
                        m365_user::Column::MfaEnforcementSources,
                        m365_user::Column::MfaPolicies,
                        m365_user::Column::MfaEnforcementReason,
                        m365_user::Column::MfaVerdict,
                        m365_user::Column::MfaExplanation,
                        m365_user::Column::ContactId,
                        m365_user::Column::ContactMatch,
                        m365_user::Column::ContentHash,
                        m365_user::Column::SyncedAt,
                    ])
                    .to_owned(),
            )
            .exec_without_returning(db)
            .await?;
    }
    for chunk in gone.chunks(CHUNK) {
        m365_user_license::Entity::delete_many()
            .filter(m365_user_license::Column::UserId.is_in(chunk.iter().copied()))
            .exec(db)
            .await?;
        m365_user::Entity::delete_many().filter(m365_user::Column::Id.is_in(chunk.iter().copied())).exec(db).await?;
    }
    if !changed.is_empty() || !gone.is_empty() {
        recount(db, &[tenant_row]).await?;
    }
    if added {
        ids = ids_of_tenant(db, tenant_row).await?;
    }
    Ok(UsersWritten { written: changed.len(), removed: gone.len(), ids })
}

/// The columns of `m365_user_count`, in the order [`TALLY`] selects them.
const TALLY_COLUMNS: &str =
    "account_id, tenant_id, mfa_status, mfa_verdict, is_admin, account_enabled, is_licensed, contact_linked, users";
/// The tally of one tenant's users (bind the tenant row as the only parameter).
const TALLY: &str = "SELECT account_id, tenant_id, mfa_status, mfa_verdict, is_admin, account_enabled, is_licensed, \
     contact_id IS NOT NULL, COUNT(*) FROM m365_user WHERE tenant_id = $1 GROUP BY account_id, tenant_id, mfa_status, \
     mfa_verdict, is_admin, account_enabled, is_licensed, contact_id IS NOT NULL";

/// Recounts the tenants' user tallies (`m365_user_count`) from their users. Call in the
/// transaction that changed the users, so a reader sees users and tallies from the same moment.
pub async fn recount(db: &impl ConnectionTrait, tenant_rows: &[i64]) -> Result<(), DbErr> {
    use sea_orm::{DatabaseBackend, Statement};
    let backend = db.get_database_backend();
    let tally = match backend {
        DatabaseBackend::Postgres => TALLY.to_owned(),
        _ => TALLY.replace("$1", "?"),
    };
    for &t in tenant_rows {
        m365_user_count::Entity::delete_many().filter(m365_user_count::Column::TenantId.eq(t)).exec(db).await?;
        let sql = format!("INSERT INTO m365_user_count ({TALLY_COLUMNS}) {tally}");
        db.execute_raw(Statement::from_sql_and_values(backend, sql, [t.into()])).await?;
    }
    Ok(())
}

/// The number of the account's users a filter without `search` matches, from the tallies
/// (exact: they change with the users, in the same transaction). `None` when the filter needs
/// the users themselves (`search`).
async fn tallied(db: &impl ConnectionTrait, account_id: i64, f: &UserFilter) -> Result<Option<u64>, DbErr> {
    if f.search.as_deref().is_some_and(|s| !s.trim().is_empty()) {
        return Ok(None);
    }
    // PostgreSQL sums BIGINT as NUMERIC: cast back.
    let mut q = m365_user_count::Entity::find()
        .select_only()
        .expr_as(Expr::cust("CAST(COALESCE(SUM(users), 0) AS BIGINT)"), "n")
        .filter(m365_user_count::Column::AccountId.eq(account_id));
    if let Some(rows) = &f.tenant_rows {
        q = q.filter(m365_user_count::Column::TenantId.is_in(rows.iter().copied()));
    }
    if let Some(s) = f.mfa_status {
        q = q.filter(m365_user_count::Column::MfaStatus.eq(s));
    }
    if let Some(v) = f.mfa_verdict {
        q = q.filter(m365_user_count::Column::MfaVerdict.eq(v));
    }
    if let Some(a) = f.is_admin {
        q = q.filter(m365_user_count::Column::IsAdmin.eq(a));
    }
    if let Some(e) = f.account_enabled {
        q = q.filter(m365_user_count::Column::AccountEnabled.eq(e));
    }
    if let Some(l) = f.licensed {
        q = q.filter(m365_user_count::Column::IsLicensed.eq(l));
    }
    if let Some(l) = f.contact_linked {
        q = q.filter(m365_user_count::Column::ContactLinked.eq(l));
    }
    let n: Option<i64> = q.into_tuple().one(db).await?;
    Ok(Some(n.unwrap_or(0).max(0) as u64))
}

/// `object_id → id` of a tenant's users.
pub async fn ids_of_tenant(db: &impl ConnectionTrait, tenant_row: i64) -> Result<HashMap<String, i64>, DbErr> {
    Ok(m365_user::Entity::find()
        .select_only()
        .columns([m365_user::Column::ObjectId, m365_user::Column::Id])
        .filter(m365_user::Column::TenantId.eq(tenant_row))
        .into_tuple::<(String, i64)>()
        .all(db)
        .await?
        .into_iter()
        .collect())
}

/// Makes the tenant's license assignments the users' current `assignedLicenses`
/// (`ids`: [`ids_of_tenant`] after the users were written): only the assignments that ended are
/// deleted and only new ones inserted, so an unchanged tenant costs one read.
pub async fn replace_assignments(
    db: &impl ConnectionTrait,
    account_id: i64,
    tenant_row: i64,
    users: &[UserRow],
    ids: &HashMap<String, i64>,
) -> Result<(), DbErr> {
    let wanted: std::collections::HashSet<(i64, &str)> = users
        .iter()
        .filter_map(|u| ids.get(&u.object_id).map(|id| (*id, u)))
        .flat_map(|(id, u)| u.sku_ids.iter().map(move |s| (id, s.as_str())))
        .collect();
    let stored: Vec<(i64, i64, String)> = m365_user_license::Entity::find()
        .select_only()
        .columns([m365_user_license::Column::Id, m365_user_license::Column::UserId, m365_user_license::Column::SkuId])
        .filter(m365_user_license::Column::TenantId.eq(tenant_row))
        .into_tuple()
        .all(db)
        .await?;
    let mut ended = vec![];
    let mut kept = std::collections::HashSet::new();
    for (id, user, sku) in &stored {
        // A pair stored twice is a duplicate: the second goes.
        if wanted.contains(&(*user, sku.as_str())) && kept.insert((*user, sku.as_str())) {
            continue;
        }
        ended.push(*id);
    }
    for chunk in ended.chunks(CHUNK * 4) {
        m365_user_license::Entity::delete_many()
            .filter(m365_user_license::Column::Id.is_in(chunk.iter().copied()))
            .exec(db)
            .await?;
    }
    let mut added: Vec<(i64, &str)> = wanted.into_iter().filter(|p| !kept.contains(p)).collect();
    added.sort_unstable();
    for chunk in added.chunks(CHUNK * 4) {
        let rows = chunk.iter().map(|(user_id, sku)| m365_user_license::ActiveModel {
            account_id: Set(account_id),
            tenant_id: Set(tenant_row),
            user_id: Set(*user_id),
            sku_id: Set((*sku).to_owned()),
            ..Default::default()
        });
        m365_user_license::Entity::insert_many(rows).exec_without_returning(db).await?;
    }
    Ok(())
}

/// Replaces the tenant's subscribed SKUs; writes nothing when they are what is stored.
pub async fn replace_licenses(
    db: &impl ConnectionTrait,
    account_id: i64,
    tenant_row: i64,
    licenses: &[LicenseRow],
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    type Stored = (String, String, String, i64, i64, i64, i64);
    let mut stored: Vec<Stored> = m365_license::Entity::find()
        .select_only()
        .columns([
            m365_license::Column::SkuId,
            m365_license::Column::SkuPartNumber,
            m365_license::Column::CapabilityStatus,
            m365_license::Column::EnabledUnits,
            m365_license::Column::ConsumedUnits,
            m365_license::Column::SuspendedUnits,
            m365_license::Column::WarningUnits,
        ])
        .filter(m365_license::Column::TenantId.eq(tenant_row))
        .into_tuple()
        .all(db)
        .await?;
    let mut read: Vec<Stored> = licenses
        .iter()
        .map(|l| {
            let l = l.clone();
            (
                l.sku_id,
                l.sku_part_number,
                l.capability_status,
                l.enabled_units,
                l.consumed_units,
                l.suspended_units,
                l.warning_units,
            )
        })
        .collect();
    stored.sort_unstable();
    read.sort_unstable();
    read.dedup_by(|a, b| a.0 == b.0);
    if stored == read {
        return Ok(());
    }
    for chunk in licenses.chunks(CHUNK) {
        let rows = chunk.iter().map(|l| m365_license::ActiveModel {
            account_id: Set(account_id),
            tenant_id: Set(tenant_row),
            sku_id: Set(l.sku_id.clone()),
            sku_part_number: Set(l.sku_part_number.clone()),
            capability_status: Set(l.capability_status.clone()),
            enabled_units: Set(l.enabled_units),
            consumed_units: Set(l.consumed_units),
            suspended_units: Set(l.suspended_units),
            warning_units: Set(l.warning_units),
            synced_at: Set(now),
            ..Default::default()
        });
        m365_license::Entity::insert_many(rows)
            .on_conflict(
                OnConflict::columns([m365_license::Column::TenantId, m365_license::Column::SkuId])
                    .update_columns([
                        m365_license::Column::SkuPartNumber,
                        m365_license::Column::CapabilityStatus,
                        m365_license::Column::EnabledUnits,
                        m365_license::Column::ConsumedUnits,
                        m365_license::Column::SuspendedUnits,
                        m365_license::Column::WarningUnits,
                        m365_license::Column::SyncedAt,
                    ])
                    .to_owned(),
            )
            .exec_without_returning(db)
            .await?;
    }
    m365_license::Entity::delete_many()
        .filter(m365_license::Column::TenantId.eq(tenant_row))
        .filter(m365_license::Column::SyncedAt.lt(now))
        .exec(db)
        .await?;
    Ok(())
}

/// A user's addresses and current contact link.
#[derive(Debug, sea_orm::FromQueryResult)]
pub struct UserLink {
    pub id: i64,
    pub mail: Option<String>,
    pub user_principal_name: String,
    pub aliases: StringList,
    pub contact_id: Option<i64>,
    pub contact_match: Option<String>,
}

/// Every user of a tenant with addresses and current link.
pub async fn links_of_tenant(db: &impl ConnectionTrait, tenant_row: i64) -> Result<Vec<UserLink>, DbErr> {
    m365_user::Entity::find()
        .select_only()
        .columns([
            m365_user::Column::Id,
            m365_user::Column::Mail,
            m365_user::Column::UserPrincipalName,
            m365_user::Column::Aliases,
            m365_user::Column::ContactId,
            m365_user::Column::ContactMatch,
        ])
        .filter(m365_user::Column::TenantId.eq(tenant_row))
        .into_model::<UserLink>()
        .all(db)
        .await
}

/// Sets users' contact links `(user id, contact id, how)`, many rows per statement (CASE).
pub async fn set_links(db: &impl ConnectionTrait, links: &[(i64, Option<i64>, Option<String>)]) -> Result<(), DbErr> {
    use sea_orm::sea_query::{CaseStatement, SimpleExpr};
    for chunk in links.chunks(200) {
        let mut contact = CaseStatement::new();
        let mut how = CaseStatement::new();
        for (user, c, h) in chunk {
            contact = contact.case(m365_user::Column::Id.eq(*user), SimpleExpr::from(Expr::value(*c)));
            how = how.case(m365_user::Column::Id.eq(*user), SimpleExpr::from(Expr::value(h.clone())));
        }
        m365_user::Entity::update_many()
            .col_expr(m365_user::Column::ContactId, contact.into())
            .col_expr(m365_user::Column::ContactMatch, how.into())
            .filter(m365_user::Column::Id.is_in(chunk.iter().map(|l| l.0)))
            .exec(db)
            .await?;
    }
    if !links.is_empty() {
        let tenants: Vec<i64> = m365_user::Entity::find()
            .select_only()
            .column(m365_user::Column::TenantId)
            .distinct()
            .filter(m365_user::Column::Id.is_in(links.iter().map(|l| l.0)))
            .into_tuple()
            .all(db)
            .await?;
        recount(db, &tenants).await?;
    }
    Ok(())
}

/// Clears the contact links of a tenant's users (unmapping).
pub async fn clear_links(db: &impl ConnectionTrait, tenant_row: i64) -> Result<(), DbErr> {
    m365_user::Entity::update_many()
        .col_expr(m365_user::Column::ContactId, Expr::value(Option::<i64>::None))
        .col_expr(m365_user::Column::ContactMatch, Expr::value(Option::<String>::None))
        .filter(m365_user::Column::TenantId.eq(tenant_row))
        .exec(db)
        .await?;
    recount(db, &[tenant_row]).await
}

/// Filter of the user list (every field optional; all given ones must hold).
#[derive(Clone, Debug, Default)]
pub struct UserFilter {
    /// Only these tenants (rows); `Some(empty)` matches nothing.
    pub tenant_rows: Option<Vec<i64>>,
    pub mfa_status: Option<MfaStatus>,
    pub mfa_verdict: Option<MfaVerdict>,
    pub is_admin: Option<bool>,
    pub account_enabled: Option<bool>,
    pub licensed: Option<bool>,
    pub contact_linked: Option<bool>,
    /// Case-insensitive substring of UPN, display name or mail.
    pub search: Option<String>,
}

/// The columns a user filter and the MFA counts read. `m365_user` (now) and `mfa_history` (as
/// of a moment) share their names and meanings, so one definition serves both.
struct Cols<C> {
    id: C,
    account: C,
    tenant: C,
    status: C,
    verdict: C,
    admin: C,
    enabled: C,
    licensed: C,
    user_type: C,
    upn: C,
    display_name: C,
    mail: C,
}

const NOW: Cols<m365_user::Column> = {
    use m365_user::Column as C;
    Cols {
        id: C::Id,
        account: C::AccountId,
        tenant: C::TenantId,
        status: C::MfaStatus,
        verdict: C::MfaVerdict,
        admin: C::IsAdmin,
        enabled: C::AccountEnabled,
        licensed: C::IsLicensed,
        user_type: C::UserType,
        upn: C::UserPrincipalName,
        display_name: C::DisplayName,
        mail: C::Mail,
    }
};

const HISTORY: Cols<mfa_history::Column> = {
    use mfa_history::Column as C;
    Cols {
        id: C::Id,
        account: C::AccountId,
        tenant: C::TenantId,
        status: C::MfaStatus,
        verdict: C::MfaVerdict,
        admin: C::IsAdmin,
        enabled: C::AccountEnabled,
        licensed: C::IsLicensed,
        user_type: C::UserType,
        upn: C::UserPrincipalName,
        display_name: C::DisplayName,
        mail: C::Mail,
    }
};

/// The filter's conditions on either table (`contact_linked` is `m365_user`'s alone).
fn conditions<C: ColumnTrait>(c: &Cols<C>, account_id: i64, f: &UserFilter) -> sea_orm::Condition {
    use sea_orm::{
        Condition,
        sea_query::{ExprTrait, Func, LikeExpr},
    };
    let mut q = Condition::all().add(c.account.eq(account_id));
    if let Some(rows) = &f.tenant_rows {
        q = q.add(c.tenant.is_in(rows.iter().copied()));
    }
    if let Some(s) = f.mfa_status {
        q = q.add(c.status.eq(s));
    }
    if let Some(v) = f.mfa_verdict {
        q = q.add(c.verdict.eq(v));
    }
    if let Some(a) = f.is_admin {
        q = q.add(c.admin.eq(a));
    }
    if let Some(e) = f.account_enabled {
        q = q.add(c.enabled.eq(e));
    }
    if let Some(l) = f.licensed {
        q = q.add(c.licensed.eq(l));
    }
    if let Some(s) = f.search.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        let p = super::tenants::like_pattern(s);
        let like = |col: C| Expr::expr(Func::lower(Expr::col(col))).like(LikeExpr::new(p.clone()).escape('\\'));
        q = q.add(Condition::any().add(like(c.upn)).add(like(c.display_name)).add(like(c.mail)));
    }
    q
}

fn filtered(account_id: i64, f: &UserFilter) -> sea_orm::Select<m365_user::Entity> {
    let mut q = m365_user::Entity::find().filter(conditions(&NOW, account_id, f));
    if let Some(c) = f.contact_linked {
        q = q.filter(if c {
            m365_user::Column::ContactId.is_not_null()
        } else {
            m365_user::Column::ContactId.is_null()
        });
    }
    q
}

/// A page of the account's users as they were at `at` (from the MFA history), ordered by user
/// id after `after`, and (when `with_total`) the total matching. `contact_linked` is not kept in
/// history and must be `None`.
pub async fn page_as_of(
    db: &impl ConnectionTrait,
    account_id: i64,
    f: &UserFilter,
    at: DateTime<Utc>,
    after: Option<i64>,
    limit: u64,
    with_total: bool,
) -> Result<(Vec<mfa_history::Model>, u64), DbErr> {
    use sea_orm::{PaginatorTrait, QueryOrder};
    let q =
        mfa_history::Entity::find().filter(conditions(&HISTORY, account_id, f)).filter(super::evidence::valid_at(at));
    let total = if with_total { q.clone().count(db).await? } else { 0 };
    let q = match after {
        Some(a) => q.filter(mfa_history::Column::UserId.gt(a)),
        None => q,
    };
    Ok((q.order_by_asc(mfa_history::Column::UserId).limit(limit).all(db).await?, total))
}

/// Which of a user row's larger columns a page reads. One left out comes back empty (`[]` or
/// null) without being read, sent or decoded: the explanation sentences are most of a row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UserColumns {
    /// `aliases`.
    pub aliases: bool,
    /// `mfa_enforcement_sources`, `mfa_policies`, `mfa_enforcement_reason`.
    pub enforcement: bool,
    /// `mfa_explanation`.
    pub explanation: bool,
}

impl UserColumns {
    /// Every column.
    pub const ALL: Self = Self { aliases: true, enforcement: true, explanation: true };
}

/// A page of the account's users ordered by id after `after`, reading the larger columns in
/// `cols`, and (when `with_total`) the total matching.
pub async fn page(
    db: &impl ConnectionTrait,
    account_id: i64,
    f: &UserFilter,
    after: Option<i64>,
    limit: u64,
    with_total: bool,
    cols: UserColumns,
) -> Result<(Vec<m365_user::Model>, u64), DbErr> {
    use sea_orm::{PaginatorTrait, QueryOrder};
    let q = filtered(account_id, f);
    let total = match with_total {
        false => 0,
        true => match tallied(db, account_id, f).await? {
            Some(n) => n,
            None => q.clone().count(db).await?,
        },
    };
    let q = match after {
        Some(a) => q.filter(m365_user::Column::Id.gt(a)),
        None => q,
    };
    let q = project(q, cols, db.get_database_backend());
    let rows = q.order_by_asc(m365_user::Column::Id).limit(limit).into_model::<PageRow>().all(db).await?;
    Ok((rows.into_iter().map(|r| r.0).collect(), total))
}

/// A user row of a page, decoded by column position. The derived decoder finds each of the 27
/// columns by name, a hash lookup per column per row: 2.2 % of the service's CPU on the users
/// page in a profile (`perf record --call-graph dwarf` during `read_api`). [`project`] selects
/// the columns in `m365_user::Column`'s order, which is the model's field order.
struct PageRow(m365_user::Model);

impl sea_orm::FromQueryResult for PageRow {
    fn from_query_result(r: &sea_orm::QueryResult, _pre: &str) -> Result<Self, DbErr> {
        fn at<T: sea_orm::TryGetable>(r: &sea_orm::QueryResult, i: usize) -> Result<T, DbErr> {
            r.try_get_by_index(i)
        }
        Ok(Self(m365_user::Model {
            id: at(r, 0)?,
            account_id: at(r, 1)?,
            tenant_id: at(r, 2)?,
            object_id: at(r, 3)?,
            display_name: at(r, 4)?,
            user_principal_name: at(r, 5)?,
            mail: at(r, 6)?,
            aliases: at(r, 7)?,
            account_enabled: at(r, 8)?,
            user_type: at(r, 9)?,
            is_admin: at(r, 10)?,
            is_licensed: at(r, 11)?,
            mfa_status: at(r, 12)?,
            mfa_methods: at(r, 13)?,
            mfa_source: at(r, 14)?,
            mfa_checked_at: at(r, 15)?,
            mfa_unavailable_reason: at(r, 16)?,
            mfa_enforcement: at(r, 17)?,
            mfa_enforcement_sources: at(r, 18)?,
            mfa_policies: at(r, 19)?,
            mfa_enforcement_reason: at(r, 20)?,
            mfa_verdict: at(r, 21)?,
            mfa_explanation: at(r, 22)?,
            contact_id: at(r, 23)?,
            contact_match: at(r, 24)?,
            synced_at: at(r, 25)?,
            content_hash: at(r, 26)?,
        }))
    }
}

/// Selects every user column in `m365_user::Column`'s order (what [`PageRow`] decodes by
/// position); the larger ones `cols` leaves out read as empty.
fn project(
    q: sea_orm::Select<m365_user::Entity>,
    cols: UserColumns,
    backend: sea_orm::DatabaseBackend,
) -> sea_orm::Select<m365_user::Entity> {
    use m365_user::Column as C;
    use sea_orm::{IdenStatic, Iterable};
    let list = match backend {
        sea_orm::DatabaseBackend::Postgres => "CAST('[]' AS JSON)",
        _ => "'[]'",
    };
    let left_out: Vec<(C, &str)> = [
        (C::Aliases, cols.aliases, list),
        (C::MfaEnforcementSources, cols.enforcement, list),
        (C::MfaPolicies, cols.enforcement, list),
        (C::MfaEnforcementReason, cols.enforcement, "NULL"),
        (C::MfaExplanation, cols.explanation, list),
    ]
    .into_iter()
    .filter(|(_, read, _)| !read)
    .map(|(c, _, empty)| (c, empty))
    .collect();
    let mut q = q.select_only();
    for c in C::iter() {
        q = match left_out.iter().find(|(l, _)| l.as_str() == c.as_str()) {
            Some((_, empty)) => q.column_as(Expr::cust(*empty), c.as_str()),
            None => q.column(c),
        };
    }
    q
}

/// `(user id, license row)` for the given users' assignments, in assignment order (one
/// statement: the assignments joined to their tenants' subscribed SKUs).
pub async fn licenses_of_users(
    db: &impl ConnectionTrait,
    user_ids: &[i64],
) -> Result<Vec<(i64, m365_license::Model)>, DbErr> {
    use sea_orm::{
        FromQueryResult, Iterable,
        sea_query::{Alias, ExprTrait, Order, Query},
    };
    use {m365_license::Column as L, m365_user_license::Column as A};
    if user_ids.is_empty() {
        return Ok(vec![]);
    }
    let (license, assignment) = (m365_license::Entity, m365_user_license::Entity);
    let mut q = Query::select();
    q.expr_as(Expr::col((assignment, A::UserId)), Alias::new("holder"))
        .columns(L::iter().map(|c| (license, c)))
        .from(license)
        .inner_join(
            assignment,
            Expr::col((assignment, A::TenantId))
                .equals((license, L::TenantId))
                .and(Expr::col((assignment, A::SkuId)).equals((license, L::SkuId))),
        )
        .and_where(Expr::col((assignment, A::UserId)).is_in(user_ids.iter().copied()))
        .order_by((assignment, A::Id), Order::Asc);
    db.query_all(&q)
        .await?
        .iter()
        .map(|r| Ok((r.try_get::<i64>("", "holder")?, m365_license::Model::from_query_result(r, "")?)))
        .collect()
}

/// Users per tenant for the given tenants (one grouped statement).
pub async fn count_by_tenants(db: &impl ConnectionTrait, tenant_rows: &[i64]) -> Result<HashMap<i64, i64>, DbErr> {
    let rows: Vec<(i64, i64)> = m365_user::Entity::find()
        .select_only()
        .column(m365_user::Column::TenantId)
        .column_as(m365_user::Column::Id.count(), "n")
        .filter(m365_user::Column::TenantId.is_in(tenant_rows.iter().copied()))
        .group_by(m365_user::Column::TenantId)
        .into_tuple()
        .all(db)
        .await?;
    Ok(rows.into_iter().collect())
}

/// The account's licenses in scope, with how many users hold each.
pub async fn licenses(
    db: &impl ConnectionTrait,
    account_id: i64,
    tenant_rows: Option<&[i64]>,
) -> Result<Vec<(m365_license::Model, i64)>, DbErr> {
    use sea_orm::QueryOrder;
    let mut q = m365_license::Entity::find().filter(m365_license::Column::AccountId.eq(account_id));
    let mut a = m365_user_license::Entity::find()
        .select_only()
        .columns([m365_user_license::Column::TenantId, m365_user_license::Column::SkuId])
        .column_as(m365_user_license::Column::Id.count(), "n")
        .filter(m365_user_license::Column::AccountId.eq(account_id))
        .group_by(m365_user_license::Column::TenantId)
        .group_by(m365_user_license::Column::SkuId);
    if let Some(rows) = tenant_rows {
        q = q.filter(m365_license::Column::TenantId.is_in(rows.iter().copied()));
        a = a.filter(m365_user_license::Column::TenantId.is_in(rows.iter().copied()));
    }
    let lic = q
        .order_by_asc(m365_license::Column::TenantId)
        .order_by_asc(m365_license::Column::SkuPartNumber)
        .all(db)
        .await?;
    let counts: HashMap<(i64, String), i64> =
        a.into_tuple::<(i64, String, i64)>().all(db).await?.into_iter().map(|(t, s, n)| ((t, s), n)).collect();
    Ok(lic
        .into_iter()
        .map(|l| {
            let n = counts.get(&(l.tenant_id, l.sku_id.clone())).copied().unwrap_or(0);
            (l, n)
        })
        .collect())
}

/// MFA counts of one tenant, for coverage.
#[derive(Clone, Debug, Default, sea_orm::FromQueryResult)]
pub struct MfaCounts {
    pub tenant_id: i64,
    #[sea_orm(nested)]
    pub figures: EvidenceFigures,
}

/// MFA counts per tenant in one grouped statement (conditional sums): now, or as of `at` from
/// the MFA history.
pub async fn mfa_counts(
    db: &impl ConnectionTrait,
    account_id: i64,
    tenant_rows: Option<&[i64]>,
    include_disabled_accounts: bool,
    at: Option<DateTime<Utc>>,
) -> Result<Vec<MfaCounts>, DbErr> {
    let f = UserFilter {
        tenant_rows: tenant_rows.map(<[i64]>::to_vec),
        account_enabled: (!include_disabled_accounts).then_some(true),
        ..UserFilter::default()
    };
    match at {
        None => counts(m365_user::Entity::find(), &NOW, account_id, &f).into_model::<MfaCounts>().all(db).await,
        Some(at) => {
            counts(mfa_history::Entity::find().filter(super::evidence::valid_at(at)), &HISTORY, account_id, &f)
                .into_model::<MfaCounts>()
                .all(db)
                .await
        }
    }
}

fn counts<E: EntityTrait>(
    q: sea_orm::Select<E>,
    c: &Cols<E::Column>,
    account_id: i64,
    f: &UserFilter,
) -> sea_orm::Select<E> {
    use sea_orm::sea_query::{CaseStatement, ExprTrait, Func, SimpleExpr};
    let count_when = |cond: SimpleExpr| -> SimpleExpr {
        let case: SimpleExpr = CaseStatement::new().case(cond, Expr::val(1)).finally(Expr::val(0)).into();
        Func::sum(case).into()
    };
    let not_enabled = || c.status.ne(MfaStatus::Enabled);
    q.select_only()
        .column_as(c.tenant, "tenant_id")
        .column_as(c.id.count(), "users")
        .column_as(count_when(c.status.eq(MfaStatus::Enabled)), "enabled")
        .column_as(count_when(c.status.eq(MfaStatus::Disabled)), "disabled")
        .column_as(count_when(c.status.eq(MfaStatus::Unavailable)), "unavailable")
        .column_as(count_when(c.admin.eq(true).and(not_enabled())), "admins_without_mfa")
        .column_as(
            count_when(c.licensed.eq(true).and(c.enabled.eq(true)).and(c.user_type.eq("Member")).and(not_enabled())),
            "licensed_members_without_mfa",
        )
        .column_as(count_when(c.verdict.eq(MfaVerdict::Protected)), "protected")
        .column_as(count_when(c.verdict.eq(MfaVerdict::NotEnforced)), "not_enforced")
        .column_as(count_when(c.verdict.eq(MfaVerdict::NotRegistered)), "not_registered")
        .column_as(count_when(c.verdict.eq(MfaVerdict::Unprotected)), "unprotected")
        .column_as(count_when(c.verdict.eq(MfaVerdict::Unknown)), "unknown")
        .filter(conditions(c, account_id, f))
        .group_by(c.tenant)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row() -> UserRow {
        UserRow {
            object_id: "u1".into(),
            display_name: Some("Ann".into()),
            user_principal_name: "ann@contoso.com".into(),
            mail: None,
            aliases: vec!["a@contoso.com".into()],
            account_enabled: true,
            user_type: Some("Member".into()),
            is_admin: Some(false),
            sku_ids: vec!["sku".into()],
            mfa_status: MfaStatus::Enabled,
            mfa_methods: vec!["microsoftAuthenticator".into()],
            mfa_source: Some(MfaSource::RegistrationReport),
            mfa_unavailable_reason: None,
            mfa_enforcement: MfaEnforcementState::Enforced,
            mfa_enforcement_sources: vec![EnforcementSource::SecurityDefaults],
            mfa_policies: vec![],
            mfa_enforcement_reason: None,
            mfa_verdict: MfaVerdict::Protected,
            mfa_explanation: vec!["Security defaults require MFA.".into()],
            contact_id: None,
            contact_match: None,
        }
    }

    #[test]
    fn the_content_hash_sees_every_synced_field_and_nothing_else() {
        let base = content_hash(&row());
        assert_eq!(content_hash(&row()), base, "deterministic");
        type Change = Box<dyn Fn(&mut UserRow)>;
        let changes: Vec<Change> = vec![
            Box::new(|u| u.display_name = Some("Anne".into())),
            Box::new(|u| u.display_name = None),
            Box::new(|u| u.mail = Some(String::new())), // None and "" differ
            Box::new(|u| u.aliases.push("b@contoso.com".into())),
            Box::new(|u| u.account_enabled = false),
            Box::new(|u| u.is_admin = None),
            Box::new(|u| u.sku_ids.clear()),
            Box::new(|u| u.mfa_status = MfaStatus::Disabled),
            Box::new(|u| u.mfa_methods.clear()),
            Box::new(|u| u.mfa_enforcement_sources.clear()),
            Box::new(|u| u.mfa_policies.push("Require MFA".into())),
            Box::new(|u| u.mfa_verdict = MfaVerdict::NotEnforced),
            Box::new(|u| u.mfa_explanation.push("More.".into())),
            // Field boundaries count: moving text from one list item to the next is a change.
            Box::new(|u| u.aliases = vec!["a@contoso.".into(), "com".into()]),
        ];
        for (i, change) in changes.iter().enumerate() {
            let mut u = row();
            change(&mut u);
            assert_ne!(content_hash(&u), base, "change {i} is seen");
        }
        // A license that changes which SKU (not whether any) is the assignments' business.
        let mut u = row();
        u.sku_ids = vec!["other".into()];
        assert_eq!(content_hash(&u), base);
        // The contact link is compared as stored, not hashed.
        u.contact_id = Some(5);
        assert_eq!(content_hash(&u), base);
    }
}
