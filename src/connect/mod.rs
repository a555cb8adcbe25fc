//! Connecting Microsoft 365 (the guide's Steps 1–3) and letting go of it: the consent URL with a
//! one-time state and PKCE, the callback with every Troubleshooting message, the stored and
//! rotated authorization, and disconnect.

pub mod vault;

use std::time::Duration;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::{DateTime, Utc};
use entity::m365_connection;
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::{
    app::AppState,
    audit::{self, AuditKind},
    auth::Caller,
    config::Secret,
    db::{self, connections::Removed},
    error::{AppError, AppResult},
    microsoft::identity::{IdentityError, classify_redirect},
};

/// How long a connect state is valid (the guide: "about 15 minutes").
pub const STATE_TTL: Duration = Duration::from_secs(15 * 60);

/// The guide's message for an expired or revoked authorization.
pub const REVOKED_MESSAGE: &str = "Your Microsoft authorization has expired or been revoked.";

/// Where to send the browser to approve the connection.
#[derive(Clone, Debug)]
pub struct ConnectStart {
    /// Microsoft's consent URL.
    pub authorization_url: url::Url,
    /// When the one-time state stops being accepted.
    pub expires_at: DateTime<Utc>,
}

fn hash_state(state: &str) -> String {
    Sha256::digest(state.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// Pending connects an account may have at once; starting one more invalidates the oldest.
pub const MAX_PENDING_STATES: u64 = 3;

/// The cookie that binds a connect to the browser that started it.
pub const BROWSER_COOKIE: &str = "m365_connect";

fn random_token() -> String {
    let mut raw = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut raw);
    URL_SAFE_NO_PAD.encode(raw)
}

fn start_key(start_token: &str) -> String {
    format!("start:{}", hash_state(start_token))
}

/// Starts a connect for the caller: a single-use start token on our own `/oauth/m365/start`
/// (stored only as a hash, bound to the account and user, valid 15 minutes). The state sent to
/// Microsoft, the PKCE verifier and the browser binding are made when a browser opens it.
pub async fn start(app: &AppState, caller: &Caller) -> AppResult<ConnectStart> {
    let token = random_token();
    let now = app.clock.now();
    let expires_at = now + chrono::Duration::from_std(STATE_TTL).expect("15 minutes fit");
    db::connections::purge_states(&app.db, caller.account_id, now).await?;
    db::connections::insert_state(&app.db, &start_key(&token), caller.account_id, &caller.user, now, expires_at)
        .await?;
    db::connections::cap_pending_states(&app.db, caller.account_id, MAX_PENDING_STATES).await?;
    let mut url = app.config.public_url();
    url.set_path("/oauth/m365/start");
    url.set_query(None);
    url.query_pairs_mut().append_pair("t", &token);
    Ok(ConnectStart { authorization_url: url, expires_at })
}

/// Where `/oauth/m365/start` sends the browser, and the nonce its cookie keeps.
pub struct Begun {
    /// Microsoft's consent URL (state and PKCE challenge in it).
    pub microsoft_url: url::Url,
    /// The nonce for the `HttpOnly` cookie; only its hash is stored.
    pub browser_nonce: String,
}

/// Opens a pending connect in this browser (once): makes the state and the PKCE verifier
/// (stored encrypted) and a browser nonce (stored as a hash), and returns Microsoft's URL.
pub async fn begin(app: &AppState, start_token: &str) -> Result<Begun, CallbackError> {
    if start_token.is_empty() || start_token.len() > 512 {
        return Err(CallbackError::SessionExpired);
    }
    let (state, nonce) = (random_token(), random_token());
    let auth = app.identity.authorization_url(&state);
    let now = app.clock.now();
    // The account is known only from the row; the verifier is encrypted bound to it, so read it.
    let Some(pending) =
        db::connections::pending_state(&app.db, &start_key(start_token), now).await.map_err(internal)?
    else {
        return Err(CallbackError::SessionExpired);
    };
    let (key_id, verifier_enc) = app.vault.encrypt(pending.account_id, &auth.pkce_verifier);
    let begun = db::connections::BegunState {
        state_hash: &hash_state(&state),
        verifier_enc: &verifier_enc,
        key_id: &key_id,
        browser_hash: &hash_state(&nonce),
    };
    if !db::connections::begin_state(&app.db, &start_key(start_token), &begun, now).await.map_err(internal)? {
        return Err(CallbackError::SessionExpired);
    }
    Ok(Begun { microsoft_url: auth.url, browser_nonce: nonce })
}

/// Why a callback failed, each with a stable code and the guide's message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CallbackError {
    /// Consent was cancelled or declined.
    AccessDenied,
    /// A non-admin tried to approve.
    AdminConsentRequired,
    /// The state is unknown, used or expired.
    SessionExpired,
    /// Microsoft returned no refresh token.
    NoRefreshToken,
    /// The account no longer has the Microsoft 365 tab.
    FeatureDisabled,
    /// The partner tenant is already connected to another account.
    PartnerTenantInUse,
    /// The account is connected to another partner tenant; disconnect first.
    PartnerTenantMismatch {
        /// The tenant the account is connected to.
        connected: String,
        /// The tenant the consent came from.
        consented: String,
    },
    /// Anything else Microsoft refused, with its AADSTS number when known.
    Microsoft {
        /// OAuth error or a short description.
        error: String,
        /// AADSTS number.
        aadsts: Option<u32>,
    },
    /// Our side failed (logged with an id).
    Internal(String),
}

impl CallbackError {
    /// The stable code (`?m365_error=CODE`).
    pub fn code(&self) -> &'static str {
        match self {
            Self::AccessDenied => "ACCESS_DENIED",
            Self::AdminConsentRequired => "ADMIN_CONSENT_REQUIRED",
            Self::SessionExpired => "SESSION_EXPIRED",
            Self::NoRefreshToken => "NO_REFRESH_TOKEN",
            Self::FeatureDisabled => "FEATURE_DISABLED",
            Self::PartnerTenantInUse => "PARTNER_TENANT_IN_USE",
            Self::PartnerTenantMismatch { .. } => "PARTNER_TENANT_MISMATCH",
            Self::Microsoft { .. } => "MICROSOFT_ERROR",
            Self::Internal(_) => "INTERNAL_SERVER_ERROR",
        }
    }

    /// The message, in the guide's words.
    pub fn message(&self) -> String {
        match self {
            Self::AccessDenied => "You denied the authorization request".into(),
            Self::AdminConsentRequired => "Admin consent is required".into(),
            Self::SessionExpired => "Your session has expired. Please try connecting again.".into(),
            Self::NoRefreshToken => "Microsoft did not provide a refresh token".into(),
            Self::FeatureDisabled => "The Microsoft 365 integration is not enabled for this account.".into(),
            Self::PartnerTenantInUse => {
                "This Microsoft 365 tenant is already connected to another Scopable account.".into()
            }
            Self::PartnerTenantMismatch { connected, consented } => format!(
                "This account is connected to the Microsoft 365 tenant {connected}, but consent came from {consented}."
            ),
            Self::Microsoft { error, aadsts: Some(n) } => {
                format!("Microsoft could not complete the connection (AADSTS{n}: {error}).")
            }
            Self::Microsoft { error, aadsts: None } => {
                format!("Microsoft could not complete the connection ({error}).")
            }
            Self::Internal(id) => format!("Something went wrong on our side while connecting (error id {id})."),
        }
    }

    /// What to do next (the guide's Troubleshooting advice).
    pub fn help(&self) -> &'static str {
        match self {
            Self::AccessDenied => {
                "The consent screen was cancelled, or the account used can't grant consent. Click Connect M365 again and Accept all requested permissions, signing in with a Global Administrator account."
            }
            Self::AdminConsentRequired => {
                "A non-admin attempted to approve the connection. Have a Global Administrator complete the consent step."
            }
            Self::SessionExpired => {
                "The one-time security token used during connect expired (it's valid for about 15 minutes) or was already used. Simply click Connect M365 again to restart."
            }
            Self::NoRefreshToken => {
                "Microsoft didn't return the long-lived token Scopable needs, usually because not all requested permissions were approved. Reconnect and approve the full set."
            }
            Self::FeatureDisabled => "The integration is enabled gradually. Contact Scopable to request access.",
            Self::PartnerTenantInUse => {
                "Sign in with a Global Administrator of your own Partner Center tenant. If this tenant should move to this account, disconnect it from the other account first."
            }
            Self::PartnerTenantMismatch { .. } => {
                "To switch tenants, click Disconnect M365 first, then connect again. To keep the current tenant, sign in with one of its Global Administrators."
            }
            Self::Microsoft { .. } => {
                "Click Connect M365 to try again. If it keeps failing, email us with a screenshot of this page."
            }
            Self::Internal(_) => "Click Connect M365 to try again. If it keeps failing, email us with this error id.",
        }
    }
}

fn from_identity(e: IdentityError) -> CallbackError {
    match e {
        IdentityError::ConsentDenied => CallbackError::AccessDenied,
        IdentityError::AdminConsentRequired => CallbackError::AdminConsentRequired,
        IdentityError::Transport(t) => {
            CallbackError::Microsoft { error: format!("Microsoft could not be reached: {t}"), aadsts: None }
        }
        IdentityError::Rejected { ref error, .. } => {
            CallbackError::Microsoft { error: error.clone(), aadsts: e.aadsts() }
        }
        other => CallbackError::Microsoft { error: other.to_string(), aadsts: other.aadsts() },
    }
}

fn internal(e: impl std::fmt::Display) -> CallbackError {
    let id = uuid::Uuid::new_v4().to_string();
    tracing::error!(error_id = %id, error = %e, "connect callback failed");
    CallbackError::Internal(id)
}

/// The query Microsoft sends to the redirect URI.
#[derive(Clone, Debug, Default, serde::Deserialize)]
pub struct CallbackParams {
    /// The authorization code.
    pub code: Option<String>,
    /// Our state, echoed.
    pub state: Option<String>,
    /// OAuth error.
    pub error: Option<String>,
    /// `AADSTSnnnn: …`.
    pub error_description: Option<String>,
    /// E.g. `cancel`.
    pub error_subcode: Option<String>,
}

/// Completes a connect: checks and consumes the state (one atomic step), maps Microsoft's
/// errors, exchanges the code, requires a refresh token, reads the partner tenant, stores the
/// connection encrypted. Returns the account connected.
pub async fn callback(app: &AppState, p: CallbackParams, browser_nonce: Option<&str>) -> Result<i64, CallbackError> {
    let now = app.clock.now();
    let Some(state) = p.state.as_deref().filter(|s| !s.is_empty() && s.len() <= 512) else {
        return Err(CallbackError::SessionExpired);
    };
    // Without the starting browser's cookie the state is left alone (a replay from elsewhere
    // cannot use it up), and nothing is stored.
    let Some(nonce) = browser_nonce.filter(|n| !n.is_empty() && n.len() <= 512) else {
        return Err(CallbackError::SessionExpired);
    };
    let st = db::connections::consume_state(&app.db, &hash_state(state), &hash_state(nonce), now)
        .await
        .map_err(internal)?
        .ok_or(CallbackError::SessionExpired)?;
    // From here the account is known: a refusal goes on its audit trail.
    match complete(app, &st, p, now).await {
        Ok(()) => Ok(st.account_id),
        Err(e) => {
            let detail = serde_json::json!({"code": e.code()});
            if let Err(db) =
                audit::record(&app.db, st.account_id, AuditKind::ConnectFailed, &st.user_sub, detail, now).await
            {
                tracing::error!(error = %db, "recording a failed connect in the audit trail failed");
            }
            Err(e)
        }
    }
}

/// The callback once its state is consumed: Microsoft's answer, the code exchange, the partner
/// tenant checks, and the connection stored with its audit event in one transaction.
async fn complete(
    app: &AppState,
    st: &entity::oauth_state::Model,
    p: CallbackParams,
    now: DateTime<Utc>,
) -> Result<(), CallbackError> {
    if let Some(error) = p.error.as_deref() {
        return Err(from_identity(classify_redirect(
            error,
            p.error_description.as_deref(),
            p.error_subcode.as_deref(),
        )));
    }
    let Some(code) = p.code.as_deref().filter(|c| !c.is_empty()) else {
        return Err(CallbackError::Microsoft { error: "no authorization code was returned".into(), aadsts: None });
    };
    match db::accounts::get(&app.db, st.account_id).await.map_err(internal)? {
        Some(acc) if acc.m365_enabled => {}
        _ => return Err(CallbackError::FeatureDisabled),
    }
    let verifier = app
        .vault
        .decrypt(st.account_id, st.pkce_key_id.as_deref().unwrap_or_default(), &st.pkce_verifier)
        .map_err(internal)?;
    let tokens = app.identity.exchange_code(code, &verifier).await.map_err(from_identity)?;
    let refresh = tokens.refresh_token.ok_or(CallbackError::NoRefreshToken)?;
    // The redirect's tenant can be spoofed; ask Graph with the token instead.
    let org = app
        .graph
        .organization(tokens.access_token.expose())
        .await
        .map_err(|e| CallbackError::Microsoft {
            error: format!("reading your organization failed: {e}"),
            aadsts: None,
        })?
        .ok_or_else(|| CallbackError::Microsoft {
            error: "Microsoft returned no organization for the signed-in account".into(),
            aadsts: None,
        })?;
    // One partner tenant per account, one account per partner tenant.
    let existing = db::connections::get(&app.db, st.account_id).await.map_err(internal)?;
    if let Some(existing) = &existing
        && existing.partner_tenant_id != org.id
    {
        return Err(CallbackError::PartnerTenantMismatch {
            connected: existing.partner_tenant_name.clone().unwrap_or_else(|| existing.partner_tenant_id.clone()),
            consented: org.display_name.clone().unwrap_or_else(|| org.id.clone()),
        });
    }
    if db::connections::partner_tenant_elsewhere(&app.db, &org.id, st.account_id).await.map_err(internal)? {
        return Err(CallbackError::PartnerTenantInUse);
    }
    // Who consented (for the record; a failure here does not fail the connect).
    let me = match app.graph.me(tokens.access_token.expose()).await {
        Ok(me) => Some(me),
        Err(e) => {
            tracing::warn!(error = %e, "reading the consenting user failed");
            None
        }
    };
    let (key_id, enc) = app.vault.encrypt(st.account_id, &refresh);
    let scopes = tokens.scopes.join(" ");
    // A unique index lets one of two callbacks racing for one partner tenant win.
    let taken =
        |e: sea_orm::DbErr| if db::is_unique_violation(&e) { CallbackError::PartnerTenantInUse } else { internal(e) };
    let txn = db::write_txn(&app.db).await.map_err(internal)?;
    db::connections::upsert(
        &txn,
        db::connections::NewConnection {
            account_id: st.account_id,
            partner_tenant_id: &org.id,
            partner_tenant_name: org.display_name.as_deref(),
            key_id: &key_id,
            refresh_token_enc: &enc,
            scopes: &scopes,
            connected_by: &st.user_sub,
            consented_by_upn: me.as_ref().and_then(|m| m.user_principal_name.as_deref()),
            consented_by_oid: me.as_ref().map(|m| m.id.as_str()),
            now,
            next_sync_at: (!app.config.sync_interval.is_zero()).then(|| {
                now + chrono::Duration::from_std(app.config.sync_interval).unwrap_or(chrono::Duration::hours(6))
            }),
        },
    )
    .await
    .map_err(taken)?;
    let kind = if existing.is_some() { AuditKind::Reconnected } else { AuditKind::Connected };
    let detail = serde_json::json!({
        "partnerTenantId": org.id,
        "partnerTenantName": org.display_name,
        "consentedBy": me.as_ref().and_then(|m| m.user_principal_name.as_deref()),
    });
    audit::record(&txn, st.account_id, kind, &st.user_sub, detail, now).await.map_err(internal)?;
    txn.commit().await.map_err(taken)?;
    tracing::info!(account_id = st.account_id, partner_tenant = %org.id, "Microsoft 365 connected");
    crate::sync::connected(app, st.account_id).await;
    Ok(())
}

/// A Graph token for the partner tenant, from the stored authorization. The rotated refresh
/// token replaces the stored one. An expired or revoked authorization marks the connection
/// `NEEDS_RECONNECT` and answers `M365_AUTHORIZATION_REVOKED`.
pub async fn partner_session(app: &AppState, conn: &m365_connection::Model) -> AppResult<PartnerSession> {
    let refresh =
        app.vault.decrypt(conn.account_id, &conn.key_id, &conn.refresh_token_enc).map_err(AppError::internal)?;
    match app.identity.refresh("organizations", &refresh).await {
        Ok(t) => {
            let refresh = match t.refresh_token {
                Some(rotated) => {
                    let (kid, enc) = app.vault.encrypt(conn.account_id, &rotated);
                    if !db::connections::store_rotated_token(&app.db, conn.id, &kid, &enc, app.clock.now()).await? {
                        return Err(AppError::NotConnected);
                    }
                    rotated
                }
                None => refresh,
            };
            Ok(PartnerSession { access_token: t.access_token, refresh_token: refresh })
        }
        Err(e) if e.is_authorization_revoked() => {
            tracing::warn!(account_id = conn.account_id, error = %e, "Microsoft authorization expired or revoked");
            db::connections::mark_needs_reconnect(&app.db, conn.id, REVOKED_MESSAGE, app.clock.now()).await?;
            Err(AppError::AuthorizationRevoked)
        }
        Err(e) => Err(AppError::internal_while("refreshing the partner token", e)),
    }
}

/// Tokens of a sync: the partner's Graph token and the refresh token used for customer tenants.
pub struct PartnerSession {
    /// Graph token in the partner tenant.
    pub access_token: Secret,
    /// The (rotated) refresh token, used against customer tenants' authorities.
    pub refresh_token: Secret,
}

/// Removes the account's Microsoft 365 data and authorization in one transaction, stops a
/// running sync, and reports what was removed. Clients and contacts stay.
/// The `disconnected` audit event (the receipt, with the counts) is written in the same
/// transaction, so a purge is never without its record.
pub async fn disconnect(app: &AppState, account_id: i64, actor: &str) -> AppResult<Removed> {
    if db::connections::get(&app.db, account_id).await?.is_none() {
        return Err(AppError::NotConnected);
    }
    let now = app.clock.now();
    let txn = db::write_txn(&app.db).await?;
    let removed = db::connections::remove_all(&txn, account_id, now).await?;
    let detail = serde_json::json!({
        "users": removed.users,
        "licenseAssignments": removed.license_assignments,
        "licenses": removed.licenses,
        "mappings": removed.mappings,
        "tenants": removed.tenants,
        "connectStates": removed.connect_states,
        "authorizationRemoved": removed.authorization,
        "syncsCancelled": removed.cancelled_runs,
        "mfaHistoryRows": removed.history_rows,
        "evidenceSnapshotsKept": removed.snapshots_kept,
    });
    audit::record(&txn, account_id, AuditKind::Disconnected, actor, detail, now).await?;
    txn.commit().await?;
    crate::sync::disconnected(app, account_id).await;
    tracing::info!(account_id, ?removed, "Microsoft 365 disconnected");
    Ok(removed)
}
