//! The Microsoft clients against the emulator, over real HTTP: the connect flow and every error
//! the product maps, Graph paging, `$batch` partial failures, throttling and retries.

use std::time::{Duration, Instant};

use futures_util::TryStreamExt;
use m365_emulator::{
    AuthorizeMode, Emulator, EmulatorConfig, PartnerKnobs,
    world::{TenantKnobs, Throttle, WorldSpec},
};
use m365_integration::{
    config::Secret,
    microsoft::{
        directory::USER_SELECT,
        graph::{BatchGet, GraphClient, GraphError, RetryPolicy},
        identity::{IdentityClient, IdentityError, TokenSet, classify_redirect},
        models::{Organization, User},
    },
};
use serde_json::Value;

const REDIRECT: &str = "http://127.0.0.1:9/oauth/m365/callback";

pub struct Ms {
    pub emu: Emulator,
    pub identity: IdentityClient,
    pub graph: GraphClient,
}

pub async fn ms(tenants: usize, users: usize) -> Ms {
    let config = EmulatorConfig {
        spec: WorldSpec { seed: 1, tenants, users_per_tenant: users },
        redirect_uris: vec![REDIRECT.into()],
        ..EmulatorConfig::default()
    };
    let emu = Emulator::spawn("127.0.0.1:0".parse().unwrap(), config.clone()).await.unwrap();
    let base = url::Url::parse(&emu.base_url()).unwrap();
    let identity = IdentityClient::new(
        base.clone(),
        &config.client_id,
        Secret::new(config.client_secret.clone()),
        url::Url::parse(REDIRECT).unwrap(),
        Duration::from_secs(10),
    );
    let retry = RetryPolicy {
        base_delay: Duration::from_millis(20),
        max_delay: Duration::from_millis(200),
        ..RetryPolicy::default()
    };
    let graph = GraphClient::new(base, retry);
    Ms { emu, identity, graph }
}

/// Follows authorize like a browser would, up to the redirect back to us; returns its query.
pub async fn authorize(url: &url::Url) -> Vec<(String, String)> {
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let resp = http.get(url.clone()).send().await.unwrap();
    assert_eq!(resp.status(), 303, "authorize redirects: {:?}", resp.text().await);
    let loc = url::Url::parse(resp.headers()["location"].to_str().unwrap()).unwrap();
    assert!(loc.as_str().starts_with(REDIRECT));
    loc.query_pairs().into_owned().collect()
}

fn get<'a>(q: &'a [(String, String)], k: &str) -> Option<&'a str> {
    q.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str())
}

async fn connect(m: &Ms) -> TokenSet {
    m.emu.state.set_authorize(AuthorizeMode::AutoAccept { user: "admin".into() });
    let start = m.identity.authorization_url("state-1");
    let q = authorize(&start.url).await;
    assert_eq!(get(&q, "state"), Some("state-1"));
    m.identity.exchange_code(get(&q, "code").unwrap(), &start.pkce_verifier).await.unwrap()
}

#[tokio::test]
async fn full_connect_flow_and_gdap_tokens() {
    let m = ms(3, 5).await;
    let tokens = connect(&m).await;
    let rt = tokens.refresh_token.expect("offline_access gives a refresh token");
    let org: serde_json::Value = m.graph.get(tokens.access_token.expose(), "/organization").await.unwrap();
    assert_eq!(org["value"][0]["displayName"], "Scopable Demo MSP");
    // The partner's refresh token, used on a customer's authority, gives that tenant's token.
    let customer = m.emu.state.lock().world.customers()[1].clone();
    let t = m.identity.refresh(&customer.id, &rt).await.unwrap();
    assert!(t.refresh_token.is_some(), "every refresh rotates the refresh token");
    let page: m365_integration::microsoft::models::Page<Organization> =
        m.graph.get(t.access_token.expose(), "/organization").await.unwrap();
    assert_eq!(page.value[0].id, customer.id, "the token is bound to the customer tenant");
    assert!(page.value[0].verified_domains.iter().any(|d| d.is_default));
}

#[tokio::test]
async fn consent_errors_map_to_the_guide_cases() {
    let m = ms(1, 1).await;
    for (mode, expected) in [
        (AuthorizeMode::AutoError { error: "cancel".into() }, IdentityError::ConsentDenied),
        (AuthorizeMode::AutoError { error: "decline".into() }, IdentityError::ConsentDenied),
        (AuthorizeMode::AutoAccept { user: "tech".into() }, IdentityError::AdminConsentRequired),
    ] {
        m.emu.state.set_authorize(mode.clone());
        let q = authorize(&m.identity.authorization_url("s").url).await;
        assert!(get(&q, "code").is_none(), "{mode:?}");
        assert_eq!(get(&q, "state"), Some("s"));
        let got = classify_redirect(get(&q, "error").unwrap(), get(&q, "error_description"), get(&q, "error_subcode"));
        assert_eq!(got, expected, "{mode:?} gave {q:?}");
    }
    // Once a Global Administrator has consented, a non-admin may sign in.
    connect(&m).await;
    m.emu.state.set_authorize(AuthorizeMode::AutoAccept { user: "tech".into() });
    let q = authorize(&m.identity.authorization_url("s").url).await;
    assert!(get(&q, "code").is_some());
}

#[tokio::test]
async fn authorize_is_strict() {
    let m = ms(1, 1).await;
    m.emu.state.set_authorize(AuthorizeMode::AutoAccept { user: "admin".into() });
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let good = m.identity.authorization_url("s").url;
    let with = |k: &str, v: Option<&str>| {
        let mut u = good.clone();
        let pairs: Vec<(String, String)> = good.query_pairs().into_owned().filter(|(n, _)| n != k).collect();
        let mut qp = u.query_pairs_mut();
        qp.clear();
        for (n, val) in &pairs {
            qp.append_pair(n, val);
        }
        if let Some(v) = v {
            qp.append_pair(k, v);
        }
        drop(qp);
        u
    };
    // Unregistered redirect URI: an error page, never a redirect.
    let r = http.get(with("redirect_uri", Some("http://evil.example/cb"))).send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("AADSTS50011"));
    let r = http.get(with("client_id", Some("someone-else"))).send().await.unwrap();
    assert_eq!(r.status(), 400);
    // No PKCE: redirected with invalid_request.
    let r = http.get(with("code_challenge", None)).send().await.unwrap();
    let loc = r.headers()["location"].to_str().unwrap().to_owned();
    assert!(loc.contains("error=invalid_request"), "{loc}");
    let r = http.get(with("code_challenge_method", Some("plain"))).send().await.unwrap();
    assert!(r.headers()["location"].to_str().unwrap().contains("error=invalid_request"));
    let r = http.get(with("scope", Some("openid Mail.Send"))).send().await.unwrap();
    assert!(r.headers()["location"].to_str().unwrap().contains("error=invalid_scope"));
    // The consent page is served when no scenario answers for the person.
    m.emu.state.set_authorize(AuthorizeMode::Page);
    let r = http.get(good.clone()).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let html = r.text().await.unwrap();
    assert!(html.contains("Accept") && html.contains("admin@demomsp.com"));
    // The page's Accept posts back and redirects with a code.
    let mut form: Vec<(String, String)> = good.query_pairs().into_owned().collect();
    form.push(("user".into(), "admin@demomsp.com".into()));
    form.push(("action".into(), "accept".into()));
    let r = http.post(good.as_str().split('?').next().unwrap()).form(&form).send().await.unwrap();
    assert!(r.headers()["location"].to_str().unwrap().contains("code="));
}

#[tokio::test]
async fn code_exchange_rejections() {
    let m = ms(1, 1).await;
    m.emu.state.set_authorize(AuthorizeMode::AutoAccept { user: "admin".into() });
    let start = m.identity.authorization_url("s");
    let q = authorize(&start.url).await;
    let code = get(&q, "code").unwrap().to_owned();
    // Wrong PKCE verifier.
    let err = m.identity.exchange_code(&code, &Secret::new("x".repeat(43))).await.unwrap_err();
    assert_eq!(err, IdentityError::Rejected { error: "invalid_grant".into(), code: 501481 });
    // Right verifier works once; a reused code is refused.
    m.identity.exchange_code(&code, &start.pkce_verifier).await.unwrap();
    let err = m.identity.exchange_code(&code, &start.pkce_verifier).await.unwrap_err();
    assert_eq!(err, IdentityError::Rejected { error: "invalid_grant".into(), code: 54005 });
    // Wrong client secret.
    let bad = IdentityClient::new(
        url::Url::parse(&m.emu.base_url()).unwrap(),
        &EmulatorConfig::default().client_id,
        Secret::new("wrong"),
        url::Url::parse(REDIRECT).unwrap(),
        Duration::from_secs(5),
    );
    let start = bad.authorization_url("s");
    let q = authorize(&start.url).await;
    let err = bad.exchange_code(get(&q, "code").unwrap(), &start.pkce_verifier).await.unwrap_err();
    assert_eq!(err, IdentityError::InvalidClient(7000215));
}

#[tokio::test]
async fn refresh_token_failures_are_typed() {
    let m = ms(4, 2).await;
    m.emu.state.set_partner_knobs(PartnerKnobs { omit_refresh_token: true, ..Default::default() });
    assert!(connect(&m).await.refresh_token.is_none(), "no refresh token when Microsoft withholds it");
    m.emu.state.set_partner_knobs(PartnerKnobs::default());
    let rt = connect(&m).await.refresh_token.unwrap();
    let customers: Vec<String> = m.emu.state.lock().world.customers().iter().map(|t| t.id.clone()).collect();
    m.emu.state.set_tenant_knobs(&customers[0], TenantKnobs { consent_missing: true, ..Default::default() });
    assert_eq!(m.identity.refresh(&customers[0], &rt).await.unwrap_err(), IdentityError::ConsentMissing(65001));
    m.emu.state.set_tenant_knobs(&customers[1], TenantKnobs { no_gdap_access: true, ..Default::default() });
    assert_eq!(m.identity.refresh(&customers[1], &rt).await.unwrap_err(), IdentityError::NoGdapAccess(50020));
    assert_eq!(
        m.identity.refresh("00000000-0000-0000-0000-000000000000", &rt).await.unwrap_err(),
        IdentityError::TenantNotFound(90002)
    );
    assert!(m.identity.refresh(&customers[2], &rt).await.is_ok());
    m.emu.state.set_partner_knobs(PartnerKnobs { refresh_expired: true, ..Default::default() });
    let e = m.identity.refresh("organizations", &rt).await.unwrap_err();
    assert_eq!(e, IdentityError::RefreshTokenExpired(700082));
    assert!(e.is_authorization_revoked());
    m.emu.state.set_partner_knobs(PartnerKnobs { refresh_revoked: true, ..Default::default() });
    assert_eq!(m.identity.refresh("organizations", &rt).await.unwrap_err(), IdentityError::RefreshTokenRevoked(50173));
}

async fn customer_token(m: &Ms, idx: usize) -> (String, String) {
    let rt = connect(m).await.refresh_token.unwrap();
    let id = m.emu.state.lock().world.customers()[idx].id.clone();
    (m.identity.refresh(&id, &rt).await.unwrap().access_token.expose().to_owned(), id)
}

#[tokio::test]
async fn paging_follows_next_links_across_many_pages() {
    let m = ms(1, 53).await;
    let (token, _) = customer_token(&m, 0).await;
    m.emu.state.reset_stats();
    let pages: Vec<Vec<User>> =
        m.graph.pages(&token, &format!("/users?$select={USER_SELECT}&$top=5")).try_collect().await.unwrap();
    assert_eq!(pages.len(), 11);
    let users: Vec<User> = pages.into_iter().flatten().collect();
    assert_eq!(users.len(), 53);
    let ids: std::collections::HashSet<_> = users.iter().map(|u| &u.id).collect();
    assert_eq!(ids.len(), 53, "no duplicates, none lost");
    assert!(users.iter().all(|u| u.account_enabled.is_some()), "$select fields come back");
    assert_eq!(m.emu.state.stats()["GET /v1.0/users"], 11);
    // Graph's own limits are enforced and come back typed.
    let err = m.graph.get::<Value>(&token, "/users?$top=1000").await.unwrap_err();
    assert_eq!(err.status(), Some(400));
    assert!(matches!(&err, GraphError::Api { message, .. } if message.contains("between 1 and 999")));
    let err = m.graph.get::<Value>("not-a-token", "/users").await.unwrap_err();
    assert_eq!(err.code(), Some("InvalidAuthenticationToken"));
    let err = m.graph.get::<Value>(&token, "/users?$select=secretThing").await.unwrap_err();
    assert_eq!(err.status(), Some(400));
}

#[tokio::test]
async fn registration_report_needs_p1() {
    let m = ms(10, 3).await;
    let (token, _) = customer_token(&m, 9).await; // one tenant in ten lacks P1
    let err = m.graph.get::<Value>(&token, "/reports/authenticationMethods/userRegistrationDetails").await.unwrap_err();
    assert_eq!(err.code(), Some("Authentication_RequestFromNonPremiumTenantOrB2CTenant"));
    let (token, _) = customer_token(&m, 0).await;
    let ok: Value = m.graph.get(&token, "/reports/authenticationMethods/userRegistrationDetails").await.unwrap();
    assert_eq!(ok["value"].as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn batch_answers_each_item_and_reports_partial_failures() {
    let m = ms(2, 30).await;
    let (token, tenant) = customer_token(&m, 0).await;
    let users: Vec<String> = m.emu.state.lock().world.customers()[0].users.iter().map(|u| u.id.clone()).collect();
    let mut items: Vec<BatchGet> = users
        .iter()
        .map(|id| BatchGet { id: id.clone(), url: format!("/users/{id}/authentication/methods") })
        .collect();
    items.push(BatchGet {
        id: "ghost".into(),
        url: "/users/00000000-0000-4000-a000-000000000000/authentication/methods".into(),
    });
    m.emu.state.reset_stats();
    let out = m.graph.batch_get(&token, &items).await.unwrap();
    assert_eq!(out.len(), 31);
    assert_eq!(m.emu.state.stats()["POST /v1.0/$batch"], 2, "31 items go in two batches of at most 20");
    assert!(
        out[&users[0]].as_ref().unwrap()["value"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["@odata.type"] == "#microsoft.graph.passwordAuthenticationMethod")
    );
    assert_eq!(out["ghost"].as_ref().unwrap_err().status(), Some(404));
    // Forbidden for every item when the role does not allow reading methods.
    m.emu.state.set_tenant_knobs(&tenant, TenantKnobs { methods_forbidden: true, ..Default::default() });
    let out = m.graph.batch_get(&token, &items[..3]).await.unwrap();
    assert!(out.values().all(|r| r.as_ref().unwrap_err().code() == Some("Authorization_RequestDenied")));
}

#[tokio::test]
async fn throttling_is_honoured_and_nothing_is_lost() {
    let m = ms(1, 40).await;
    let (token, tenant) = customer_token(&m, 0).await;
    let throttle = Throttle { requests: 2, window_ms: 400, retry_after_secs: 0.4 };
    m.emu.state.set_tenant_knobs(&tenant, TenantKnobs { throttle: Some(throttle.clone()), ..Default::default() });
    let started = Instant::now();
    let pages: Vec<Vec<User>> =
        m.graph.pages(&token, &format!("/users?$select={USER_SELECT}&$top=10")).try_collect().await.unwrap();
    let elapsed = started.elapsed();
    assert_eq!(pages.into_iter().flatten().count(), 40);
    assert!(elapsed >= Duration::from_millis(400), "Retry-After (0.4 s) was waited: {elapsed:?}");
    // $batch: throttled items are retried alone after Retry-After.
    m.emu.state.set_tenant_knobs(
        &tenant,
        TenantKnobs {
            throttle: Some(Throttle { requests: 5, window_ms: 300, retry_after_secs: 0.3 }),
            ..Default::default()
        },
    );
    let users: Vec<String> = m.emu.state.lock().world.customers()[0].users.iter().map(|u| u.id.clone()).collect();
    let items: Vec<BatchGet> = users
        .iter()
        .take(12)
        .map(|id| BatchGet { id: id.clone(), url: format!("/users/{id}/authentication/methods") })
        .collect();
    let started = Instant::now();
    let out = m.graph.batch_get(&token, &items).await.unwrap();
    assert!(out.values().all(|r| r.is_ok()), "every throttled item was retried to success");
    assert!(started.elapsed() >= Duration::from_millis(300));
}

#[tokio::test]
async fn server_errors_are_retried_then_given_up() {
    let m = ms(1, 3).await;
    let (token, tenant) = customer_token(&m, 0).await;
    m.emu.state.set_tenant_knobs(&tenant, TenantKnobs { fail_next: 2, ..Default::default() });
    m.emu.state.reset_stats();
    let v: Value = m.graph.get(&token, "/subscribedSkus").await.unwrap();
    assert!(!v["value"].as_array().unwrap().is_empty());
    assert_eq!(m.emu.state.stats()["GET /v1.0/subscribedSkus"], 3, "two failures, then success");
    m.emu.state.set_tenant_knobs(&tenant, TenantKnobs { fail_next: 100, fail_status: Some(500), ..Default::default() });
    m.emu.state.reset_stats();
    let err = m.graph.get::<Value>(&token, "/subscribedSkus").await.unwrap_err();
    assert_eq!(err.status(), Some(500));
    assert_eq!(
        m.emu.state.stats()["GET /v1.0/subscribedSkus"],
        RetryPolicy::default().max_attempts as u64,
        "bounded attempts"
    );
}

#[tokio::test]
async fn gdap_listing_and_license_names() {
    let m = ms(30, 1).await;
    let tokens = connect(&m).await;
    let rels: Vec<Vec<m365_integration::microsoft::models::DelegatedAdminRelationship>> = m
        .graph
        .pages(
            tokens.access_token.expose(),
            "/tenantRelationships/delegatedAdminRelationships?$filter=status eq 'active'&$top=7",
        )
        .try_collect()
        .await
        .unwrap();
    let rels: Vec<_> = rels.into_iter().flatten().collect();
    assert_eq!(rels.len(), 30, "one active relationship per customer; expired and terminated ones filtered");
    assert!(rels.iter().all(|r| r.status == "active"));
    let csv = reqwest::get(format!("{}/_emulator/licensing/product-names.csv", m.emu.base_url()))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(csv.starts_with("\u{feff}Product_Display_Name,String_Id,GUID,Service_Plan_Name,Service_Plan_Id"));
    assert!(csv.contains("Microsoft 365 Business Premium,SPB,cbdc14ab-d96c-4c30-b9f4-6ada7cdc1d46"));
}
