//! Queries on `m365_connection`.

use entity::{
    m365_connection,
    states::{ConnectionStatus, RunStatus},
};
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter};

/// The account's connection, if any.
pub async fn get(db: &impl ConnectionTrait, account_id: i64) -> Result<Option<m365_connection::Model>, DbErr> {
    m365_connection::Entity::find().filter(m365_connection::Column::AccountId.eq(account_id)).one(db).await
}

use chrono::{DateTime, Utc};
use entity::{
    m365_license, m365_tenant, m365_user, m365_user_count, m365_user_license, oauth_state, sync_run, tenant_mapping,
};
use sea_orm::{ActiveModelTrait, Set, sea_query::Expr};

/// Stores a new one-time connect state (only its hash).
pub async fn insert_state(
    db: &impl ConnectionTrait,
    state_hash: &str,
    account_id: i64,
    user: &str,
    now: DateTime<Utc>,
    expires_at: DateTime<Utc>,
) -> Result<(), DbErr> {
    oauth_state::ActiveModel {
        state_hash: Set(state_hash.to_owned()),
        pkce_verifier: Set(String::new()),
        pkce_key_id: Set(None),
        browser_hash: Set(None),
        account_id: Set(account_id),
        user_sub: Set(user.to_owned()),
        created_at: Set(now),
        expires_at: Set(expires_at),
        used_at: Set(None),
        ..Default::default()
    }
    .insert(db)
    .await
    .map(|_| ())
}

/// A pending connect by its key, while unused and unexpired.
pub async fn pending_state(
    db: &impl ConnectionTrait,
    state_hash: &str,
    now: DateTime<Utc>,
) -> Result<Option<oauth_state::Model>, DbErr> {
    oauth_state::Entity::find()
        .filter(oauth_state::Column::StateHash.eq(state_hash))
        .filter(oauth_state::Column::UsedAt.is_null())
        .filter(oauth_state::Column::ExpiresAt.gt(now))
        .one(db)
        .await
}

/// Moves a pending connect from its start token to the state sent to Microsoft, with the
/// encrypted PKCE verifier and the browser's nonce hash; once, only while unexpired.
pub async fn begin_state(
    db: &impl ConnectionTrait,
    start_hash: &str,
    begun: &BegunState<'_>,
    now: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let res = oauth_state::Entity::update_many()
        .col_expr(oauth_state::Column::StateHash, Expr::value(begun.state_hash))
        .col_expr(oauth_state::Column::PkceVerifier, Expr::value(begun.verifier_enc))
        .col_expr(oauth_state::Column::PkceKeyId, Expr::value(begun.key_id))
        .col_expr(oauth_state::Column::BrowserHash, Expr::value(begun.browser_hash))
        .filter(oauth_state::Column::StateHash.eq(start_hash))
        .filter(oauth_state::Column::UsedAt.is_null())
        .filter(oauth_state::Column::ExpiresAt.gt(now))
        .exec(db)
        .await?;
    Ok(res.rows_affected == 1)
}

/// What opening the start URL stores.
pub struct BegunState<'a> {
    /// Hash of the state sent to Microsoft.
    pub state_hash: &'a str,
    /// The encrypted PKCE verifier.
    pub verifier_enc: &'a str,
    /// The key that encrypted it.
    pub key_id: &'a str,
    /// Hash of the browser's nonce.
    pub browser_hash: &'a str,
}

/// Keeps the account's newest `keep` pending (unused) connect states; older ones stop working.
pub async fn cap_pending_states(db: &impl ConnectionTrait, account_id: i64, keep: u64) -> Result<u64, DbErr> {
    use sea_orm::{QueryOrder, QuerySelect};
    let stale: Vec<i64> = oauth_state::Entity::find()
        .select_only()
        .column(oauth_state::Column::Id)
        .filter(oauth_state::Column::AccountId.eq(account_id))
        .filter(oauth_state::Column::UsedAt.is_null())
        .order_by_desc(oauth_state::Column::Id)
        .offset(keep)
        .limit(1000) // SQLite needs a LIMIT with an OFFSET; an account never has that many
        .into_tuple()
        .all(db)
        .await?;
    if stale.is_empty() {
        return Ok(0);
    }
    Ok(oauth_state::Entity::delete_many().filter(oauth_state::Column::Id.is_in(stale)).exec(db).await?.rows_affected)
}

/// Consumes a state in one conditional update: succeeds once, only while unexpired, and only
/// for the browser that started it (its nonce hash must match).
pub async fn consume_state(
    db: &impl ConnectionTrait,
    state_hash: &str,
    browser_hash: &str,
    now: DateTime<Utc>,
) -> Result<Option<oauth_state::Model>, DbErr> {
    let res = oauth_state::Entity::update_many()
        .col_expr(oauth_state::Column::UsedAt, Expr::value(now))
        .filter(oauth_state::Column::StateHash.eq(state_hash))
        .filter(oauth_state::Column::BrowserHash.eq(browser_hash))
        .filter(oauth_state::Column::UsedAt.is_null())
        .filter(oauth_state::Column::ExpiresAt.gt(now))
        .exec(db)
        .await?;
    if res.rows_affected != 1 {
        return Ok(None);
    }
    oauth_state::Entity::find().filter(oauth_state::Column::StateHash.eq(state_hash)).one(db).await
}

/// Deletes the account's expired or used states.
pub async fn purge_states(db: &impl ConnectionTrait, account_id: i64, now: DateTime<Utc>) -> Result<u64, DbErr> {
    let res = oauth_state::Entity::delete_many()
        .filter(oauth_state::Column::AccountId.eq(account_id))
        .filter(
            sea_orm::Condition::any()
                .add(oauth_state::Column::ExpiresAt.lte(now))
                .add(oauth_state::Column::UsedAt.is_not_null()),
        )
        .exec(db)
        .await?;
    Ok(res.rows_affected)
}

/// What a successful connect stores.
pub struct NewConnection<'a> {
    pub account_id: i64,
    pub partner_tenant_id: &'a str,
    pub partner_tenant_name: Option<&'a str>,
    pub key_id: &'a str,
    pub refresh_token_enc: &'a str,
    pub scopes: &'a str,
    pub connected_by: &'a str,
    pub consented_by_upn: Option<&'a str>,
    pub consented_by_oid: Option<&'a str>,
    pub now: DateTime<Utc>,
    pub next_sync_at: Option<DateTime<Utc>>,
}

/// Whether another account is connected to this partner tenant.
pub async fn partner_tenant_elsewhere(
    db: &impl ConnectionTrait,
    partner_tenant_id: &str,
    account_id: i64,
) -> Result<bool, DbErr> {
    Ok(m365_connection::Entity::find()
        .filter(m365_connection::Column::PartnerTenantId.eq(partner_tenant_id))
        .filter(m365_connection::Column::AccountId.ne(account_id))
        .one(db)
        .await?
        .is_some())
}

/// Stores the account's connection, replacing an earlier authorization (synced data stays).
pub async fn upsert(db: &impl ConnectionTrait, c: NewConnection<'_>) -> Result<m365_connection::Model, DbErr> {
    match get(db, c.account_id).await? {
        Some(existing) => {
            let mut am: m365_connection::ActiveModel = existing.into();
            am.partner_tenant_id = Set(c.partner_tenant_id.to_owned());
            am.partner_tenant_name = Set(c.partner_tenant_name.map(str::to_owned));
            am.key_id = Set(c.key_id.to_owned());
            am.refresh_token_enc = Set(c.refresh_token_enc.to_owned());
            am.scopes = Set(c.scopes.to_owned());
            am.status = Set(ConnectionStatus::Connected);
            am.connected_by = Set(c.connected_by.to_owned());
            am.consented_by_upn = Set(c.consented_by_upn.map(str::to_owned));
            am.consented_by_oid = Set(c.consented_by_oid.map(str::to_owned));
            am.connected_at = Set(c.now);
            am.last_error = Set(None);
            am.updated_at = Set(c.now);
            am.next_sync_at = Set(c.next_sync_at);
            am.update(db).await
        }
        None => {
            m365_connection::ActiveModel {
                account_id: Set(c.account_id),
                partner_tenant_id: Set(c.partner_tenant_id.to_owned()),
                partner_tenant_name: Set(c.partner_tenant_name.map(str::to_owned)),
                refresh_token_enc: Set(c.refresh_token_enc.to_owned()),
                key_id: Set(c.key_id.to_owned()),
                scopes: Set(c.scopes.to_owned()),
                status: Set(ConnectionStatus::Connected),
                connected_by: Set(c.connected_by.to_owned()),
                consented_by_upn: Set(c.consented_by_upn.map(str::to_owned)),
                consented_by_oid: Set(c.consented_by_oid.map(str::to_owned)),
                connected_at: Set(c.now),
                last_error: Set(None),
                last_manual_sync_at: Set(None),
                updated_at: Set(c.now),
                next_sync_at: Set(c.next_sync_at),
                ..Default::default()
            }
            .insert(db)
            .await
        }
    }
}

/// Replaces the stored refresh token of connection `id` (rotation); false when the connection
/// is gone (disconnected meanwhile), so nothing is resurrected.
pub async fn store_rotated_token(
    db: &impl ConnectionTrait,
    id: i64,
    key_id: &str,
    enc: &str,
    now: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let res = m365_connection::Entity::update_many()
        .col_expr(m365_connection::Column::KeyId, Expr::value(key_id))
        .col_expr(m365_connection::Column::RefreshTokenEnc, Expr::value(enc))
        .col_expr(m365_connection::Column::UpdatedAt, Expr::value(now))
        .filter(m365_connection::Column::Id.eq(id))
        .exec(db)
        .await?;
    Ok(res.rows_affected == 1)
}

/// Marks connection `id` as needing a reconnect, with the reason.
pub async fn mark_needs_reconnect(
    db: &impl ConnectionTrait,
    id: i64,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    m365_connection::Entity::update_many()
        .col_expr(m365_connection::Column::Status, Expr::value(ConnectionStatus::NeedsReconnect))
        .col_expr(m365_connection::Column::LastError, Expr::value(reason))
        .col_expr(m365_connection::Column::UpdatedAt, Expr::value(now))
        .filter(m365_connection::Column::Id.eq(id))
        .exec(db)
        .await
        .map(|_| ())
}

/// Takes a shared lock on connection `id` for the current transaction; false when it is gone.
/// Every sync write starts with this: many tenant transactions hold it together, while a
/// disconnect (which deletes the row) or a lease takeover (which locks it exclusively first)
/// waits for them, and every transaction after those finds the row gone or the run failed.
/// (On SQLite, write transactions are serialised by `BEGIN IMMEDIATE` and the lock clause is
/// not used.)
pub async fn fence(db: &impl ConnectionTrait, id: i64) -> Result<bool, DbErr> {
    use sea_orm::QuerySelect;
    let mut q = m365_connection::Entity::find()
        .select_only()
        .column(m365_connection::Column::Id)
        .filter(m365_connection::Column::Id.eq(id));
    if db.get_database_backend() == sea_orm::DbBackend::Postgres {
        q = q.lock_shared();
    }
    Ok(q.into_tuple::<i64>().one(db).await?.is_some())
}

/// Locks the account's connection row exclusively for the current transaction (waits for the
/// sync writes holding [`fence`]).
pub async fn lock_exclusive(db: &impl ConnectionTrait, account_id: i64) -> Result<(), DbErr> {
    m365_connection::Entity::update_many()
        .col_expr(m365_connection::Column::UpdatedAt, Expr::col(m365_connection::Column::UpdatedAt))
        .filter(m365_connection::Column::AccountId.eq(account_id))
        .exec(db)
        .await
        .map(|_| ())
}

/// What a disconnect removed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Removed {
    pub users: u64,
    pub license_assignments: u64,
    pub licenses: u64,
    pub mappings: u64,
    pub tenants: u64,
    pub connect_states: u64,
    pub authorization: bool,
    pub cancelled_runs: u64,
    /// Per-user MFA history rows removed.
    pub history_rows: u64,
    /// Evidence snapshots kept (figures and digests, no personal data).
    pub snapshots_kept: u64,
}

/// Removes the account's Microsoft 365 data and authorization (call inside a transaction).
/// The connection row goes first: it is the lock sync writes take, so a sync that is writing
/// finishes its transaction before this one proceeds, and every later sync write finds no
/// connection and fails.
pub async fn remove_all(db: &impl ConnectionTrait, account_id: i64, now: DateTime<Utc>) -> Result<Removed, DbErr> {
    let authorization = m365_connection::Entity::delete_many()
        .filter(m365_connection::Column::AccountId.eq(account_id))
        .exec(db)
        .await?
        .rows_affected
        > 0;
    let cancelled_runs = sync_run::Entity::update_many()
        .col_expr(sync_run::Column::Status, Expr::value(RunStatus::Cancelled))
        .col_expr(sync_run::Column::Error, Expr::value("Stopped: Microsoft 365 was disconnected."))
        .col_expr(sync_run::Column::FinishedAt, Expr::value(now))
        .col_expr(sync_run::Column::LeaseExpiresAt, Expr::value(Option::<DateTime<Utc>>::None))
        .col_expr(
            sync_run::Column::Version,
            sea_orm::sea_query::ExprTrait::add(Expr::col(sync_run::Column::Version), 1),
        )
        .col_expr(sync_run::Column::UpdatedAt, Expr::value(now))
        .filter(sync_run::Column::AccountId.eq(account_id))
        .filter(sync_run::Column::Status.is_in(super::sync_runs::ACTIVE))
        .exec(db)
        .await?
        .rows_affected;
    let evidence = super::evidence::purge_account(db, account_id, now, crate::evidence::PURGED_BY_DISCONNECT).await?;
    let license_assignments = m365_user_license::Entity::delete_many()
        .filter(m365_user_license::Column::AccountId.eq(account_id))
        .exec(db)
        .await?
        .rows_affected;
    let users = m365_user::Entity::delete_many()
        .filter(m365_user::Column::AccountId.eq(account_id))
        .exec(db)
        .await?
        .rows_affected;
    m365_user_count::Entity::delete_many().filter(m365_user_count::Column::AccountId.eq(account_id)).exec(db).await?;
    let licenses = m365_license::Entity::delete_many()
        .filter(m365_license::Column::AccountId.eq(account_id))
        .exec(db)
        .await?
        .rows_affected;
    let mappings = tenant_mapping::Entity::delete_many()
        .filter(tenant_mapping::Column::AccountId.eq(account_id))
        .exec(db)
        .await?
        .rows_affected;
    let tenants = m365_tenant::Entity::delete_many()
        .filter(m365_tenant::Column::AccountId.eq(account_id))
        .exec(db)
        .await?
        .rows_affected;
    let connect_states = oauth_state::Entity::delete_many()
        .filter(oauth_state::Column::AccountId.eq(account_id))
        .exec(db)
        .await?
        .rows_affected;
    Ok(Removed {
        users,
        license_assignments,
        licenses,
        mappings,
        tenants,
        connect_states,
        authorization,
        cancelled_runs,
        history_rows: evidence.history_rows,
        snapshots_kept: evidence.snapshots_kept,
    })
}

/// Starts the manual cooldown if it has run out: true when this trigger may proceed.
pub async fn take_manual_slot(
    db: &impl ConnectionTrait,
    id: i64,
    now: DateTime<Utc>,
    cooldown: chrono::Duration,
) -> Result<bool, DbErr> {
    let res = m365_connection::Entity::update_many()
        .col_expr(m365_connection::Column::LastManualSyncAt, Expr::value(now))
        .filter(m365_connection::Column::Id.eq(id))
        .filter(
            sea_orm::Condition::any()
                .add(m365_connection::Column::LastManualSyncAt.is_null())
                .add(m365_connection::Column::LastManualSyncAt.lte(now - cooldown)),
        )
        .exec(db)
        .await?;
    Ok(res.rows_affected == 1)
}

/// Connections due for a scheduled sync.
pub async fn due_for_schedule(
    db: &impl ConnectionTrait,
    now: DateTime<Utc>,
    limit: u64,
) -> Result<Vec<m365_connection::Model>, DbErr> {
    use sea_orm::{QueryOrder, QuerySelect};
    let mut q = m365_connection::Entity::find()
        .filter(m365_connection::Column::Status.eq(ConnectionStatus::Connected))
        // An account whose Microsoft 365 tab was switched off is not synced on a schedule.
        .filter(
            m365_connection::Column::AccountId.in_subquery(
                sea_orm::sea_query::Query::select()
                    .column(entity::account::Column::Id)
                    .from(entity::account::Entity)
                    .and_where(entity::account::Column::M365Enabled.eq(true))
                    .to_owned(),
            ),
        )
        .filter(
            sea_orm::Condition::any()
                .add(m365_connection::Column::NextSyncAt.is_null())
                .add(m365_connection::Column::NextSyncAt.lte(now)),
        )
        .order_by_asc(m365_connection::Column::NextSyncAt)
        .limit(limit);
    if db.get_database_backend() == sea_orm::DbBackend::Postgres {
        // Several processes share the work: each skips rows another is claiming.
        q = q.lock_with_behavior(sea_orm::sea_query::LockType::Update, sea_orm::sea_query::LockBehavior::SkipLocked);
    }
    q.all(db).await
}

/// Claims a due scheduled slot (moves `next_sync_at` on); true for exactly one process.
pub async fn claim_schedule(
    db: &impl ConnectionTrait,
    id: i64,
    due: Option<DateTime<Utc>>,
    next: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let mut q = m365_connection::Entity::update_many()
        .col_expr(m365_connection::Column::NextSyncAt, Expr::value(next))
        .filter(m365_connection::Column::Id.eq(id));
    q = match due {
        Some(d) => q.filter(m365_connection::Column::NextSyncAt.eq(d)),
        None => q.filter(m365_connection::Column::NextSyncAt.is_null()),
    };
    Ok(q.exec(db).await?.rows_affected == 1)
}

/// Makes the account's scheduled sync due now (a draining replica hands its run over).
pub async fn schedule_now(db: &impl ConnectionTrait, account_id: i64, now: DateTime<Utc>) -> Result<(), DbErr> {
    m365_connection::Entity::update_many()
        .col_expr(m365_connection::Column::NextSyncAt, Expr::value(now))
        .filter(m365_connection::Column::AccountId.eq(account_id))
        .exec(db)
        .await
        .map(|_| ())
}
