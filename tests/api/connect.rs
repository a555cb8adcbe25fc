//! Connect, callback, token vault and disconnect, against the emulator over real HTTP.

use std::time::Duration;

use entity::{
    m365_connection,
    prelude::*,
    states::{ConnectionStatus, MappingMethod, RunStatus},
};
use m365_emulator::{AuthorizeMode, PartnerKnobs};
use m365_integration::{config::Secret, connect::vault::Vault, db};
use sea_orm::{ConnectionTrait, EntityTrait, PaginatorTrait, Statement};
use serde_json::{Value, json};

use crate::helpers::{Browser, TestApp, data, error_code};

const INTEGRATION: &str = "{ m365Integration { connection { status partnerTenantId partnerTenantName connectedBy lastError scopes } sync { state } } }";

/// What the database stores, as text: the SQLite files (and WAL) as they are on disk, or every
/// PostgreSQL row of the tables that could hold a secret.
async fn database_dump(app: &TestApp) -> String {
    let url = &app.state.config.database_url;
    if let Some(path) = url.strip_prefix("sqlite://") {
        let path = path.split('?').next().unwrap();
        let mut bytes = std::fs::read(path).unwrap();
        bytes.extend(std::fs::read(format!("{path}-wal")).unwrap_or_default());
        return String::from_utf8_lossy(&bytes).into_owned();
    }
    let mut all = String::new();
    for table in ["m365_connection", "oauth_state", "sync_run", "m365_tenant", "m365_user", "audit_event"] {
        let rows = app
            .state
            .db
            .query_all_raw(Statement::from_string(
                app.state.db.get_database_backend(),
                format!("SELECT CAST(t AS text) FROM {table} t"),
            ))
            .await
            .unwrap();
        for r in rows {
            all.push_str(&r.try_get_by_index::<String>(0).unwrap());
        }
    }
    all
}

async fn callback_page(r: reqwest::Response) -> (u16, String) {
    let status = r.status().as_u16();
    (status, r.text().await.unwrap())
}

#[tokio::test]
async fn connect_stores_the_connection_and_starts_the_first_sync() {
    let app = TestApp::spawn().await;
    let acc = app.account("A", true).await;
    let t = app.admin_token(acc);
    let body = app.gql(Some(&t), "mutation { connectM365 { authorizationUrl expiresAt } }", json!({})).await;
    let d = data(body);
    let start = d["connectM365"]["authorizationUrl"].as_str().unwrap().to_owned();
    assert!(start.starts_with(&app.url("/oauth/m365/start?t=")), "our own start URL: {start}");
    let mut browser = Browser::default();
    let url = url::Url::parse(&browser.location(&start).await).unwrap();
    assert!(browser.cookie.is_some(), "the start URL sets the browser cookie");
    let q: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
    assert!(q["state"].len() >= 43, "state carries at least 256 bits");
    assert_eq!(q["code_challenge_method"], "S256");
    assert!(q["scope"].contains("offline_access") && q["scope"].contains("https://graph.microsoft.com/.default"));
    assert_eq!(q["redirect_uri"], app.state.config.redirect_uri().as_str());
    let expires: chrono::DateTime<chrono::Utc> = d["connectM365"]["expiresAt"].as_str().unwrap().parse().unwrap();
    let ttl = expires - chrono::Utc::now();
    assert!(ttl > chrono::Duration::minutes(14) && ttl <= chrono::Duration::minutes(15));
    // The state is stored only as a hash.
    let stored = OauthState::find().one(&app.state.db).await.unwrap().unwrap();
    assert_ne!(stored.state_hash, q["state"]);
    assert!(!stored.state_hash.contains(&q["state"][..10]));

    let callback = browser.location(url.as_str()).await;
    let (status, page) = callback_page(browser.get(&callback).await).await;
    assert_eq!(status, 200, "{page}");
    assert!(browser.cookie.is_none(), "the callback clears the cookie");
    assert!(page.contains("Microsoft 365 is connected"));
    let d = data(app.gql(Some(&t), INTEGRATION, json!({})).await);
    let c = &d["m365Integration"]["connection"];
    assert_eq!(c["status"], "CONNECTED");
    assert_eq!(c["partnerTenantName"], "Scopable Demo MSP");
    assert_eq!(c["partnerTenantId"], app.emu.state.lock().world.partner().id.as_str());
    assert_eq!(c["connectedBy"], format!("user-of-{acc}"));
    assert_eq!(c["lastError"], Value::Null);
    let sync = app.wait_idle(&t).await;
    assert_eq!(sync["lastRun"]["status"], "SUCCEEDED", "the first sync ran: {sync}");
    assert_eq!(sync["lastRun"]["tenantsTotal"], 4);
}

#[tokio::test]
async fn the_database_never_holds_a_token_in_plain_text() {
    let app = TestApp::spawn().await;
    let acc = app.account("A", true).await;
    app.connected(acc).await;
    let conn = M365Connection::find().one(&app.state.db).await.unwrap().unwrap();
    let issued: Vec<String> = app.emu.state.lock().refresh.keys().cloned().collect();
    assert!(!issued.is_empty());
    // Scan the stored bytes for every refresh token Microsoft issued.
    let dump = database_dump(&app).await;
    assert!(dump.contains(&conn.partner_tenant_id), "the scan sees the stored data");
    for rt in &issued {
        assert!(!dump.contains(rt.as_str()), "a refresh token is stored in plain text");
    }
    assert!(!format!("{conn:?}").contains(&conn.refresh_token_enc), "Debug output redacts the ciphertext too");
    // The stored ciphertext decrypts to the latest rotated token, with the configured key only.
    let vault = Vault::new(app.state.config.token_encryption_key.as_ref().unwrap(), &[]).unwrap();
    let plain = vault.decrypt(acc, &conn.key_id, &conn.refresh_token_enc).unwrap();
    assert!(issued.contains(&plain.expose().to_owned()));
    // The token never appears over GraphQL either.
    let all = app.gql(Some(&app.admin_token(acc)), INTEGRATION, json!({})).await.to_string();
    for rt in &issued {
        assert!(!all.contains(rt.as_str()));
    }
}

#[tokio::test]
async fn consent_denied_and_non_admin_get_the_guide_messages() {
    let app = TestApp::spawn().await;
    let acc = app.account("A", true).await;
    let t = app.admin_token(acc);
    for (mode, code, text) in [
        (AuthorizeMode::AutoError { error: "cancel".into() }, "ACCESS_DENIED", "You denied the authorization request"),
        (AuthorizeMode::AutoError { error: "decline".into() }, "ACCESS_DENIED", "You denied the authorization request"),
        (AuthorizeMode::AutoAccept { user: "tech".into() }, "ADMIN_CONSENT_REQUIRED", "Admin consent is required"),
    ] {
        app.emu.state.set_authorize(mode);
        let (status, page) = callback_page(app.browser_connect(&t).await).await;
        assert_eq!(status, 400);
        assert!(page.contains(text), "{code}: {page}");
    }
    let d = data(app.gql(Some(&t), INTEGRATION, json!({})).await);
    assert_eq!(d["m365Integration"]["connection"], Value::Null, "nothing was stored");
    // With FRONTEND_URL the browser goes back to the frontend with the code.
    let app = TestApp::spawn_with(|c| {
        c.frontend_url = Some(url::Url::parse("https://app.example.com/integrations?tab=m365").unwrap())
    })
    .await;
    let acc = app.account("A", true).await;
    app.emu.state.set_authorize(AuthorizeMode::AutoAccept { user: "tech".into() });
    let r = app.browser_connect(&app.admin_token(acc)).await;
    assert_eq!(
        r.headers()["location"],
        "https://app.example.com/integrations?tab=m365&m365_error=ADMIN_CONSENT_REQUIRED"
    );
    app.emu.state.set_authorize(AuthorizeMode::AutoAccept { user: "admin".into() });
    let r = app.browser_connect(&app.admin_token(acc)).await;
    assert_eq!(r.headers()["location"], "https://app.example.com/integrations?tab=m365&m365=connected");
}

#[tokio::test]
async fn state_reused_expired_forged_or_foreign_is_a_session_expired() {
    let app = TestApp::spawn().await;
    let a = app.account("A", true).await;
    let t = app.admin_token(a);
    let expired = "Your session has expired. Please try connecting again.";
    // Reused: the same callback URL twice.
    let body = app.gql(Some(&t), "mutation { connectM365 { authorizationUrl } }", json!({})).await;
    let auth_url = data(body)["connectM365"]["authorizationUrl"].as_str().unwrap().to_owned();
    let mut browser = Browser::default();
    let cb = browser.consent_to_callback(&auth_url).await;
    let nonce = browser.cookie.clone();
    assert_eq!(browser.get(&cb).await.status(), 200);
    browser.cookie = nonce; // even with the cookie kept, a used state is used
    let (status, page) = callback_page(browser.get(&cb).await).await;
    assert_eq!(status, 400);
    assert!(page.contains(expired), "{page}");
    // Expired: 16 minutes pass between Connect and the callback.
    let body = app.gql(Some(&t), "mutation { connectM365 { authorizationUrl } }", json!({})).await;
    let auth_url = data(body)["connectM365"]["authorizationUrl"].as_str().unwrap().to_owned();
    app.state.clock.advance(Duration::from_secs(16 * 60));
    let (status, page) = callback_page(Browser::default().get(&auth_url).await).await;
    assert_eq!(status, 400);
    assert!(page.contains(expired));
    // Forged or missing state.
    for q in ["?code=abc&state=forged", "?code=abc", "?error=access_denied&state=forged"] {
        let (status, page) = callback_page(browser.get(&app.url(&format!("/oauth/m365/callback{q}"))).await).await;
        assert_eq!(status, 400, "{q}");
        assert!(page.contains(expired), "{q}: {page}");
    }
    // A state belongs to the account that asked: B's callback never touches A, and A's partner
    // tenant cannot be connected to B as well.
    let b = app.account("B", true).await;
    let (status, page) = callback_page(app.browser_connect(&app.admin_token(b)).await).await;
    assert_eq!(status, 400);
    assert!(page.contains("already connected to another Scopable account"), "{page}");
    assert!(db::connections::get(&app.state.db, b).await.unwrap().is_none());
    let a_conn = db::connections::get(&app.state.db, a).await.unwrap().unwrap();
    assert_eq!(a_conn.connected_by, format!("user-of-{a}"), "A's connection is A's own");
}

#[tokio::test]
async fn no_refresh_token_and_failed_exchange() {
    let app = TestApp::spawn().await;
    let acc = app.account("A", true).await;
    let t = app.admin_token(acc);
    app.emu
        .state
        .set_partner_knobs(PartnerKnobs { withhold_scopes: vec!["offline_access".into()], ..Default::default() });
    let (status, page) = callback_page(app.browser_connect(&t).await).await;
    assert_eq!(status, 400);
    assert!(page.contains("Microsoft did not provide a refresh token"), "{page}");
    app.emu.state.set_partner_knobs(PartnerKnobs { omit_refresh_token: true, ..Default::default() });
    let (_, page) = callback_page(app.browser_connect(&t).await).await;
    assert!(page.contains("Microsoft did not provide a refresh token"));
    app.emu.state.set_partner_knobs(PartnerKnobs::default());
    // The code exchange fails (the app's secret was rotated on Microsoft's side): a clear
    // message with the AADSTS code, never a raw dump.
    app.emu.state.lock().app.client_secret = "rotated".into();
    let (status, page) = callback_page(app.browser_connect(&t).await).await;
    assert_eq!(status, 400);
    assert!(page.contains("AADSTS7000215") && !page.contains("Trace ID"), "{page}");
    assert_eq!(M365Connection::find().count(&app.state.db).await.unwrap(), 0);
}

#[tokio::test]
async fn mutations_need_permission_and_the_tab() {
    let app = TestApp::spawn().await;
    let on = app.account("On", true).await;
    let off = app.account("Off", false).await;
    for m in [
        "mutation { connectM365 { authorizationUrl } }",
        "mutation { disconnectM365 { users } }",
        "mutation { triggerM365Sync { id } }",
    ] {
        assert_eq!(error_code(&app.gql(Some(&app.token(on, &[])), m, json!({})).await), Some("FORBIDDEN"), "{m}");
        assert_eq!(
            error_code(&app.gql(Some(&app.admin_token(off)), m, json!({})).await),
            Some("FEATURE_DISABLED"),
            "{m}"
        );
        assert_eq!(error_code(&app.gql(None, m, json!({})).await), Some("UNAUTHENTICATED"), "{m}");
    }
    assert_eq!(
        error_code(&app.gql(Some(&app.admin_token(on)), "mutation { disconnectM365 { users } }", json!({})).await),
        Some("NOT_CONNECTED")
    );
    assert_eq!(
        error_code(&app.gql(Some(&app.admin_token(on)), "mutation { triggerM365Sync { id } }", json!({})).await),
        Some("NOT_CONNECTED")
    );
}

#[tokio::test]
async fn reconnect_replaces_the_authorization_and_keeps_the_data() {
    let app = TestApp::spawn().await;
    let acc = app.account("A", true).await;
    let t = app.admin_token(acc);
    app.connected(acc).await;
    let before = M365Connection::find().one(&app.state.db).await.unwrap().unwrap();
    let users = M365User::find().count(&app.state.db).await.unwrap();
    assert!(users > 0);
    // Revoked: the next sync marks the connection, and mutations needing Microsoft refuse.
    app.emu.state.set_partner_knobs(PartnerKnobs { refresh_revoked: true, ..Default::default() });
    app.state.clock.advance(Duration::from_secs(31));
    data(app.gql(Some(&t), "mutation { triggerM365Sync { id } }", json!({})).await);
    let sync = app.wait_idle(&t).await;
    assert_eq!(sync["lastRun"]["status"], "FAILED");
    assert_eq!(sync["lastRun"]["error"], "Your Microsoft authorization has expired or been revoked.");
    let d = data(app.gql(Some(&t), INTEGRATION, json!({})).await);
    assert_eq!(d["m365Integration"]["connection"]["status"], "NEEDS_RECONNECT");
    assert_eq!(
        d["m365Integration"]["connection"]["lastError"],
        "Your Microsoft authorization has expired or been revoked."
    );
    app.state.clock.advance(Duration::from_secs(31));
    let body = app.gql(Some(&t), "mutation { triggerM365Sync { id } }", json!({})).await;
    assert_eq!(error_code(&body), Some("M365_AUTHORIZATION_REVOKED"));
    assert_eq!(M365User::find().count(&app.state.db).await.unwrap(), users, "a failed sync deletes nothing");
    // Reconnect: a new authorization replaces the old one, data stays, status is back.
    app.emu.state.set_partner_knobs(PartnerKnobs::default());
    assert_eq!(app.browser_connect(&t).await.status(), 200);
    let after = M365Connection::find().one(&app.state.db).await.unwrap().unwrap();
    assert_eq!(after.id, before.id);
    assert_ne!(after.refresh_token_enc, before.refresh_token_enc);
    assert_eq!(after.status, ConnectionStatus::Connected);
    assert_eq!(after.last_error, None);
    assert!(M365User::find().count(&app.state.db).await.unwrap() >= users);
}

#[tokio::test]
async fn expired_refresh_token_needs_reconnect() {
    let app = TestApp::spawn().await;
    let acc = app.account("A", true).await;
    let t = app.admin_token(acc);
    app.connected(acc).await;
    app.emu.state.set_partner_knobs(PartnerKnobs { refresh_expired: true, ..Default::default() });
    app.state.clock.advance(Duration::from_secs(31));
    data(app.gql(Some(&t), "mutation { triggerM365Sync { id } }", json!({})).await);
    let sync = app.wait_idle(&t).await;
    assert_eq!(sync["lastRun"]["error"], "Your Microsoft authorization has expired or been revoked.");
    let conn = db::connections::get(&app.state.db, acc).await.unwrap().unwrap();
    assert_eq!(conn.status, ConnectionStatus::NeedsReconnect);
}

#[tokio::test]
async fn disconnect_removes_everything_but_clients_and_contacts() {
    let app = TestApp::spawn().await;
    let acc = app.account("A", true).await;
    let other = app.account("B", true).await;
    let t = app.admin_token(acc);
    data(app.gql(Some(&t), "mutation { upsertClients(clients: [{source: \"cw\", externalId: \"1\", name: \"Contoso\", domains: [\"contoso.com\"]}]) { id } }", json!({})).await);
    data(app.gql(Some(&t), "mutation { upsertContacts(contacts: [{source: \"cw\", externalId: \"c\", clientExternalId: \"1\", name: \"X\", emails: [\"x@contoso.com\"]}]) { id } }", json!({})).await);
    // One partner tenant per account: B's connection is moved to a tenant of its own first.
    app.connected(other).await;
    app.sql("UPDATE m365_connection SET partner_tenant_id = 'another-partner' WHERE account_id = $1", [other.into()])
        .await;
    app.connected(acc).await;
    let users = M365User::find().count(&app.state.db).await.unwrap() / 2;
    let licenses = M365License::find().count(&app.state.db).await.unwrap() / 2;
    // A mapping, so that one is removed too.
    let tenant = M365Tenant::find().one(&app.state.db).await.unwrap().unwrap();
    let client = Client::find().one(&app.state.db).await.unwrap().unwrap();
    sea_orm::ActiveModelTrait::insert(
        entity::tenant_mapping::ActiveModel {
            account_id: sea_orm::Set(acc),
            tenant_id: sea_orm::Set(tenant.id),
            client_id: sea_orm::Set(client.id),
            method: sea_orm::Set(MappingMethod::Manual),
            created_by: sea_orm::Set("t".into()),
            created_at: sea_orm::Set(chrono::Utc::now()),
            ..Default::default()
        },
        &app.state.db,
    )
    .await
    .unwrap();
    let d = data(app.gql(Some(&t), "mutation { disconnectM365 { users licenses licenseAssignments tenants mappings connectStates authorizationRemoved syncsCancelled } }", json!({})).await);
    let p = &d["disconnectM365"];
    assert_eq!(p["users"], users);
    assert_eq!(p["licenses"], licenses);
    assert_eq!(p["tenants"], 4);
    assert_eq!(p["mappings"], 1);
    assert_eq!(p["authorizationRemoved"], true);
    assert!(p["licenseAssignments"].as_i64().unwrap() > 0);
    let db = &app.state.db;
    use sea_orm::{ColumnTrait, QueryFilter};
    assert_eq!(M365User::find().filter(entity::m365_user::Column::AccountId.eq(acc)).count(db).await.unwrap(), 0);
    assert_eq!(M365Tenant::find().filter(entity::m365_tenant::Column::AccountId.eq(acc)).count(db).await.unwrap(), 0);
    assert_eq!(M365Connection::find().filter(m365_connection::Column::AccountId.eq(acc)).count(db).await.unwrap(), 0);
    assert_eq!(Client::find().count(db).await.unwrap(), 1, "clients stay");
    assert_eq!(Contact::find().count(db).await.unwrap(), 1, "contacts stay");
    // The other account is untouched.
    assert_eq!(M365User::find().filter(entity::m365_user::Column::AccountId.eq(other)).count(db).await.unwrap(), users);
    let d = data(app.gql(Some(&t), INTEGRATION, json!({})).await);
    assert_eq!(d["m365Integration"]["connection"], Value::Null);
}

#[tokio::test]
async fn disconnect_while_a_sync_is_writing_leaves_nothing_behind() {
    // Slow Microsoft: the sync is mid-flight when the disconnect lands.
    let app =
        TestApp::spawn_world(m365_emulator::world::WorldSpec { seed: 3, tenants: 12, users_per_tenant: 30 }, |c| {
            c.sync_concurrency = 2
        })
        .await;
    let acc = app.account("A", true).await;
    let t = app.admin_token(acc);
    app.emu.state.lock().latency = Duration::from_millis(40);
    assert_eq!(app.browser_connect(&t).await.status(), 200);
    // Wait until some tenants are written, then disconnect.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while M365User::find().count(&app.state.db).await.unwrap() == 0 {
        assert!(std::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let d = data(app.gql(Some(&t), "mutation { disconnectM365 { users syncsCancelled } }", json!({})).await);
    assert_eq!(d["disconnectM365"]["syncsCancelled"], 1);
    // Give the worker time to try its late writes.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let db = &app.state.db;
    assert_eq!(M365User::find().count(db).await.unwrap(), 0, "no late user write survived");
    assert_eq!(M365Tenant::find().count(db).await.unwrap(), 0);
    assert_eq!(M365License::find().count(db).await.unwrap(), 0);
    let run = SyncRun::find().one(db).await.unwrap().unwrap();
    assert_eq!(run.status, RunStatus::Cancelled);
}

#[tokio::test]
async fn a_wrong_encryption_key_is_a_clear_error_not_a_panic() {
    let app = TestApp::spawn().await;
    let acc = app.account("A", true).await;
    let t = app.admin_token(acc);
    app.connected(acc).await;
    // The same database served with another key: the stored authorization cannot be read.
    let url = app.state.config.database_url.clone();
    let dir = tempfile::tempdir().unwrap();
    let other = TestApp::spawn_on(
        url,
        m365_emulator::world::WorldSpec::default(),
        |c| {
            c.token_encryption_key =
                Some(Secret::new(base64::Engine::encode(&base64::engine::general_purpose::STANDARD, [9u8; 32])));
        },
        dir,
    )
    .await;
    other.state.clock.advance(Duration::from_secs(31));
    data(other.gql(Some(&t), "mutation { triggerM365Sync { id } }", json!({})).await);
    let sync = other.wait_idle(&t).await;
    assert_eq!(sync["lastRun"]["status"], "FAILED");
    // Readers get a code and an error id; the operator finds "encrypted with key …, which is
    // not configured (was TOKEN_ENCRYPTION_KEY changed?)" in the log under that id.
    let err = sync["lastRun"]["error"].as_str().unwrap();
    assert!(err.contains("error id") && !err.contains("TOKEN_ENCRYPTION_KEY"), "{err}");
    // And a malformed key stops start-up with instructions.
    let mut c = m365_integration::config::Config::defaults();
    c.auth_jwt_secret = Some(Secret::new("x"));
    c.token_encryption_key = Some(Secret::new("too-short"));
    let err = m365_integration::app::Application::build(c).await.err().unwrap().to_string();
    assert!(err.contains("openssl rand -base64 32"), "{err}");
}

/// The consent is bound to the browser that started it (RFC 9700 §4.7): a callback URL
/// completed elsewhere stores nothing and does not use the state up.
#[tokio::test]
async fn consent_is_bound_to_the_starting_browser() {
    let app = TestApp::spawn().await;
    let acc = app.account("A", true).await;
    let t = app.admin_token(acc);
    let url = start_url(&app, &t).await;
    let mut admin_browser = Browser::default();
    let callback = admin_browser.consent_to_callback(&url).await;
    // The start URL is single-use.
    let (status, page) = callback_page(Browser::default().get(&url).await).await;
    assert_eq!(status, 400);
    assert!(page.contains("Your session has expired"), "{page}");
    // The same callback URL from a second browser (no cookie, or another browser's cookie).
    let mut other = Browser::default();
    let (status, page) = callback_page(other.get(&callback).await).await;
    assert_eq!(status, 400);
    assert!(page.contains("Your session has expired"), "{page}");
    other.cookie = Some("not-the-right-nonce".into());
    let (status, _) = callback_page(other.get(&callback).await).await;
    assert_eq!(status, 400);
    assert!(db::connections::get(&app.state.db, acc).await.unwrap().is_none(), "nothing stored");
    // The PKCE verifier is stored encrypted: not the verifier, but it decrypts to the one whose
    // challenge went to Microsoft.
    let row =
        OauthState::find().all(&app.state.db).await.unwrap().into_iter().find(|s| s.browser_hash.is_some()).unwrap();
    let verifier = app.state.vault.decrypt(acc, row.pkce_key_id.as_deref().unwrap(), &row.pkce_verifier).unwrap();
    assert_ne!(row.pkce_verifier, verifier.expose());
    let dump = database_dump(&app).await;
    assert!(dump.contains(&row.state_hash), "the scan sees the pending state");
    assert!(!dump.contains(verifier.expose()), "the PKCE verifier is stored in plain text");
    // The starting browser still completes, and the cookie is cleared.
    let (status, page) = callback_page(admin_browser.get(&callback).await).await;
    assert_eq!(status, 200, "{page}");
    assert!(admin_browser.cookie.is_none());
    // Who consented is recorded and shown.
    let q = "{ m365Integration { connection { partnerTenantName consentedBy { userPrincipalName objectId } } } }";
    let c = data(app.gql(Some(&t), q, json!({})).await)["m365Integration"]["connection"].clone();
    let world = app.emu.state.lock().world.clone();
    let admin = world.partner().users.iter().find(|u| u.global_admin).unwrap().clone();
    assert_eq!(c["consentedBy"]["userPrincipalName"], admin.upn.as_str());
    assert_eq!(c["consentedBy"]["objectId"], admin.id.as_str());
    app.wait_idle(&t).await;

    // Reconnecting to a different partner tenant is refused until a disconnect.
    let conn = db::connections::get(&app.state.db, acc).await.unwrap().unwrap();
    let mut am: m365_connection::ActiveModel = conn.into();
    am.partner_tenant_id = sea_orm::Set("00000000-0000-0000-0000-00000000beef".into());
    am.partner_tenant_name = sea_orm::Set(Some("Old Partner Ltd".into()));
    sea_orm::ActiveModelTrait::update(am, &app.state.db).await.unwrap();
    let (status, page) = callback_page(app.browser_connect(&t).await).await;
    assert_eq!(status, 400);
    assert!(page.contains("Old Partner Ltd") && page.contains("Scopable Demo MSP"), "{page}");
    let conn = db::connections::get(&app.state.db, acc).await.unwrap().unwrap();
    assert_eq!(conn.partner_tenant_name.as_deref(), Some("Old Partner Ltd"), "nothing replaced");

    // At most three pending connects: the oldest of four stops working.
    let urls =
        [start_url(&app, &t).await, start_url(&app, &t).await, start_url(&app, &t).await, start_url(&app, &t).await];
    let (status, page) = callback_page(Browser::default().get(&urls[0]).await).await;
    assert_eq!(status, 400);
    assert!(page.contains("Your session has expired"), "{page}");
    let microsoft = Browser::default().location(&urls[3]).await;
    assert!(microsoft.contains("/oauth2/v2.0/authorize"), "{microsoft}");
}

async fn start_url(app: &TestApp, token: &str) -> String {
    let body = app.gql(Some(token), "mutation { connectM365 { authorizationUrl } }", json!({})).await;
    data(body)["connectM365"]["authorizationUrl"].as_str().unwrap().to_owned()
}

/// An administrator of a customer tenant consents from their own home tenant: to this service
/// that is a second partner tenant (another MSP's Global Administrator).
fn second_partner_admin(app: &TestApp) -> (String, String) {
    let world = app.emu.state.lock().world.clone();
    let t = &world.customers()[0];
    let admin = t.users.iter().find(|u| u.is_admin && u.user_type == "Member" && u.account_enabled).unwrap();
    (admin.upn.clone(), t.display_name.clone())
}

/// Account A's consent URL completed by another MSP's admin: refused without A's browser
/// cookie, and refused as PARTNER_TENANT_IN_USE when that tenant is already another account's.
#[tokio::test]
async fn another_partners_admin_cannot_complete_an_accounts_consent() {
    let app = TestApp::spawn().await;
    let a = app.account("Acme MSP", true).await;
    let b = app.account("Rival MSP", true).await;
    let (other_admin, other_tenant) = second_partner_admin(&app);
    // B is the other MSP: connected to its own partner tenant.
    app.emu.state.set_authorize(AuthorizeMode::AutoAccept { user: other_admin.clone() });
    let (status, page) = callback_page(app.browser_connect(&app.admin_token(b)).await).await;
    assert_eq!(status, 200, "{page}");
    let b_conn = db::connections::get(&app.state.db, b).await.unwrap().unwrap();
    assert_eq!(b_conn.partner_tenant_name.as_deref(), Some(other_tenant.as_str()));
    assert_eq!(b_conn.consented_by_upn.as_deref(), Some(other_admin.as_str()));
    // A's admin starts; the URL is sent to B's admin, who consents in their own browser.
    let url = start_url(&app, &app.admin_token(a)).await;
    let mut victim = Browser::default();
    let callback = victim.consent_to_callback(&url).await;
    let (status, page) = callback_page(Browser::default().get(&callback).await).await;
    assert_eq!(status, 400);
    assert!(page.contains("Your session has expired"), "{page}");
    // Even completed in A's own browser, B's partner tenant is refused for A, naming no account.
    let (status, page) = callback_page(victim.get(&callback).await).await;
    assert_eq!(status, 400);
    assert!(page.contains("already connected to another Scopable account"), "{page}");
    assert!(!page.contains("Rival"), "the other account is not named: {page}");
    assert!(db::connections::get(&app.state.db, a).await.unwrap().is_none(), "nothing stored for A");
    // With FRONTEND_URL the code travels as ?m365_error=.
    let front =
        TestApp::spawn_with(|c| c.frontend_url = Some(url::Url::parse("https://app.example.com/m365").unwrap())).await;
    let fa = front.account("A", true).await;
    let fb = front.account("B", true).await;
    let (other_admin, _) = second_partner_admin(&front);
    front.emu.state.set_authorize(AuthorizeMode::AutoAccept { user: other_admin });
    assert_eq!(front.browser_connect(&front.admin_token(fb)).await.status(), 303);
    let r = front.browser_connect(&front.admin_token(fa)).await;
    assert!(r.headers()["location"].to_str().unwrap().ends_with("m365_error=PARTNER_TENANT_IN_USE"));
}

/// Every audit event kind, once, with its actor; managers only; kept by a disconnect.
#[tokio::test]
async fn the_audit_trail_records_every_action_and_survives_a_disconnect() {
    let app = TestApp::spawn().await;
    let acc = app.account("A", true).await;
    let t = app.admin_token(acc);
    let actor = format!("user-of-{acc}");
    // connect_started + connected, then connect_started + reconnected.
    app.connected(acc).await;
    assert_eq!(app.browser_connect(&t).await.status(), 200);
    app.wait_idle(&t).await;
    // connect_started + connect_failed (another partner tenant).
    let (other_admin, _) = second_partner_admin(&app);
    app.emu.state.set_authorize(AuthorizeMode::AutoAccept { user: other_admin });
    assert_eq!(app.browser_connect(&t).await.status(), 400);
    app.state.clock.advance(Duration::from_secs(31));
    let run = data(app.gql(Some(&t), "mutation { triggerM365Sync { id } }", json!({})).await);
    app.wait_idle(&t).await;
    let clients = app
        .upsert_clients(&t, json!([{"source": "cw", "externalId": "1", "name": "One"}, {"source": "cw", "externalId": "2", "name": "Two"}]))
        .await;
    data(
        app.gql(
            Some(&t),
            "mutation($c: [ContactInput!]!) { upsertContacts(contacts: $c) { id } }",
            json!({"c": [
        {"source": "cw", "externalId": "p", "clientExternalId": "1", "name": "Pat", "emails": ["pat@example.com"]}]}),
        )
        .await,
    );
    let tenants = data(app.gql(Some(&t), "{ m365Tenants(first: 10) { edges { node { id } } } }", json!({})).await);
    let tenant = |i: usize| tenants["m365Tenants"]["edges"][i]["node"]["id"].clone();
    let client = |i: usize| clients[i]["id"].clone();
    data(
        app.gql(
            Some(&t),
            "mutation($t: ID!, $c: ID!) { createTenantMapping(tenantId: $t, clientId: $c) { createdAt } }",
            json!({"t": tenant(0), "c": client(0)}),
        )
        .await,
    );
    data(app.gql(Some(&t), "mutation($t: ID!) { deleteTenantMapping(tenantId: $t) }", json!({"t": tenant(0)})).await);
    data(app.gql(Some(&t), "mutation($m: [TenantMappingInput!]!) { bulkCreateTenantMappings(mappings: $m) { mappings { createdAt } } }", json!({"m": [{"tenantId": tenant(1), "clientId": client(1)}]})).await);
    data(
        app.gql(
            Some(&t),
            "mutation($t: [ID!]!) { acceptTenantSuggestions(tenantIds: $t) { skipped { reason } } }",
            json!({"t": [tenant(2)]}),
        )
        .await,
    );
    let removed = data(app.gql(Some(&t), "mutation { disconnectM365 { users tenants mappings } }", json!({})).await);

    let q = "query($f: AuditEventFilter, $after: String) { auditEvents(first: 100, filter: $f, after: $after) { totalCount edges { cursor node { kind actor at detail } } pageInfo { hasNextPage endCursor } } }";
    let all = data(app.gql(Some(&t), q, json!({})).await)["auditEvents"].clone();
    let events = all["edges"].as_array().unwrap();
    let count = |kind: &str| events.iter().filter(|e| e["node"]["kind"] == kind).count();
    for (kind, n) in [
        ("CONNECT_STARTED", 3),
        ("CONNECTED", 1),
        ("RECONNECTED", 1),
        ("CONNECT_FAILED", 1),
        ("SYNC_TRIGGERED", 1),
        ("CLIENTS_UPSERTED", 1),
        ("CONTACTS_UPSERTED", 1),
        ("MAPPING_CREATED", 1),
        ("MAPPING_DELETED", 1),
        ("MAPPINGS_BULK_CREATED", 1),
        ("SUGGESTIONS_ACCEPTED", 1),
        ("DISCONNECTED", 1),
    ] {
        assert_eq!(count(kind), n, "{kind}: {all}");
    }
    assert_eq!(all["totalCount"], 14);
    assert!(events.iter().all(|e| e["node"]["actor"] == actor.as_str()), "{all}");
    // Newest first, with the detail each kind promises.
    assert_eq!(events[0]["node"]["kind"], "DISCONNECTED");
    let detail = |kind: &str| -> Value {
        let e = events.iter().find(|e| e["node"]["kind"] == kind).unwrap();
        serde_json::from_str(e["node"]["detail"].as_str().unwrap()).unwrap()
    };
    let d = detail("DISCONNECTED");
    assert_eq!(d["users"], removed["disconnectM365"]["users"]);
    assert_eq!(d["tenants"], removed["disconnectM365"]["tenants"]);
    assert_eq!(d["authorizationRemoved"], true);
    assert_eq!(detail("CONNECT_FAILED")["code"], "PARTNER_TENANT_MISMATCH");
    assert_eq!(detail("CONNECTED")["partnerTenantName"], "Scopable Demo MSP");
    assert!(detail("CONNECTED")["consentedBy"].as_str().is_some());
    assert_eq!(detail("SYNC_TRIGGERED")["runId"], run["triggerM365Sync"]["id"]);
    assert_eq!(detail("CLIENTS_UPSERTED")["count"], 2);
    assert_eq!(detail("MAPPING_CREATED")["tenantId"], tenant(0));
    // No secret in any detail.
    let stored = serde_json::to_string(&all).unwrap();
    assert!(!stored.to_lowercase().contains("token") && !stored.contains("secret"), "{stored}");
    // Filters and paging.
    let f = data(app.gql(Some(&t), q, json!({"f": {"kind": "CONNECT_STARTED"}})).await)["auditEvents"].clone();
    assert_eq!(f["totalCount"], 3);
    let later = app.state.clock.now() + chrono::Duration::hours(1);
    let f = data(app.gql(Some(&t), q, json!({"f": {"since": later}})).await)["auditEvents"].clone();
    assert_eq!(f["totalCount"], 0);
    let p1 = data(
        app.gql(
            Some(&t),
            "{ auditEvents(first: 5) { edges { node { kind } } pageInfo { hasNextPage endCursor } } }",
            json!({}),
        )
        .await,
    )["auditEvents"]
        .clone();
    assert_eq!(p1["pageInfo"]["hasNextPage"], true);
    let p2 = data(app.gql(Some(&t), q, json!({"after": p1["pageInfo"]["endCursor"]})).await)["auditEvents"].clone();
    assert_eq!(p2["edges"].as_array().unwrap().len(), 9);
    // Managers only, and only their own account.
    let reader = app.token(acc, &[]);
    assert_eq!(error_code(&app.gql(Some(&reader), q, json!({})).await), Some("FORBIDDEN"));
    let other = app.account("Other", true).await;
    let theirs = data(app.gql(Some(&app.admin_token(other)), q, json!({})).await);
    assert_eq!(theirs["auditEvents"]["totalCount"], 0);
}

/// Under an https `PUBLIC_URL` the browser cookie is `Secure` too.
#[tokio::test]
async fn the_browser_cookie_is_secure_under_https() {
    let app = TestApp::spawn_with(|c| c.public_url = Some(url::Url::parse("https://m365.example.com").unwrap())).await;
    let t = app.admin_token(app.account("A", true).await);
    let start = url::Url::parse(&start_url(&app, &t).await).unwrap();
    assert_eq!(start.origin().ascii_serialization(), "https://m365.example.com");
    let r = Browser::default().get(&app.url(&format!("{}?{}", start.path(), start.query().unwrap()))).await;
    assert_eq!(r.status(), 303);
    let cookie = r.headers()["set-cookie"].to_str().unwrap();
    for attr in ["HttpOnly", "SameSite=Lax", "Secure", "Path=/oauth/m365", "Max-Age=900"] {
        assert!(cookie.contains(attr), "{attr} in {cookie}");
    }
}
