//! The identity platform: authorize (consent page or scripted answer) and token endpoints.

use std::time::{Duration, Instant};

use axum::{
    Form, Router,
    extract::{Path, Query, State},
    http::{HeaderMap, StatusCode, header},
    response::{Html, IntoResponse, Redirect, Response},
    routing::get,
};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use serde_json::json;
use sha2::{Digest, Sha256};

use super::{AccessGrant, AuthorizeMode, EmulatorState, Inner, IssuedCode, RefreshGrant, random_token};

type Params = Vec<(String, String)>;

pub fn routes() -> Router<EmulatorState> {
    Router::new()
        .route("/{tenant}/oauth2/v2.0/authorize", get(authorize).post(consent))
        .route("/{tenant}/oauth2/v2.0/token", axum::routing::post(token))
}

fn param<'a>(p: &'a Params, name: &str) -> Option<&'a str> {
    p.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// Scopes that need no admin consent.
const BASIC_SCOPES: &[&str] = &["openid", "profile", "email", "offline_access", "User.Read"];

/// Graph delegated permissions the shared app is registered with (what `/.default` means).
pub const APP_PERMISSIONS: &[&str] = &[
    "User.Read",
    "User.Read.All",
    "Directory.Read.All",
    "Organization.Read.All",
    "DelegatedAdminRelationship.Read.All",
    "AuditLog.Read.All",
    "UserAuthenticationMethod.Read.All",
    "Reports.Read.All",
    "Policy.Read.All",
    "LicenseAssignment.Read.All",
];

const GRAPH: &str = "https://graph.microsoft.com/";

/// Normalises requested scopes to bare names; `None` when one is unknown.
fn resolve_scopes(raw: &str) -> Result<Vec<String>, String> {
    let mut out = vec![];
    for s in raw.split_whitespace() {
        let bare = s.strip_prefix(GRAPH).unwrap_or(s);
        if bare == ".default" {
            out.extend(APP_PERMISSIONS.iter().map(|p| p.to_string()));
        } else if BASIC_SCOPES.contains(&bare) || APP_PERMISSIONS.contains(&bare) {
            out.push(bare.to_owned());
        } else {
            return Err(s.to_owned());
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

fn error_page(code: u32, message: &str) -> Response {
    let body = format!(
        "<!doctype html><title>Sign in to your account</title><h1>Sorry, but we’re having trouble signing you in.</h1><p>AADSTS{code}: {}</p>",
        html_escape(message)
    );
    (StatusCode::BAD_REQUEST, Html(body)).into_response()
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn redirect_with(redirect_uri: &str, pairs: &[(&str, &str)]) -> Response {
    let mut url = url::Url::parse(redirect_uri).expect("registered redirect URIs are URLs");
    {
        let mut q = url.query_pairs_mut();
        for (k, v) in pairs {
            q.append_pair(k, v);
        }
    }
    Redirect::to(url.as_str()).into_response()
}

fn redirect_error(
    redirect_uri: &str,
    state: Option<&str>,
    error: &str,
    code: Option<u32>,
    description: Option<&str>,
    subcode: Option<&str>,
) -> Response {
    let mut pairs: Vec<(&str, String)> = vec![("error", error.to_owned())];
    if let (Some(c), Some(d)) = (code, description) {
        pairs.push(("error_description", format!("AADSTS{c}: {d}")));
        pairs.push(("error_uri", format!("https://login.microsoftonline.com/error?code={c}")));
    }
    if let Some(s) = subcode {
        pairs.push(("error_subcode", s.to_owned()));
    }
    if let Some(s) = state {
        pairs.push(("state", s.to_owned()));
    }
    let refs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
    redirect_with(redirect_uri, &refs)
}

/// Checks an authorize request; Ok(redirect_uri) when it may proceed, Err(response) otherwise.
#[allow(clippy::result_large_err)] // the error is the HTTP answer itself, built once per request
fn validate(g: &Inner, tenant: &str, p: &Params) -> Result<(String, Vec<String>), Response> {
    if !matches!(tenant, "organizations" | "common") && g.world.tenant_index(tenant).is_none() {
        return Err(error_page(
            90002,
            &format!(
                "Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud."
            ),
        ));
    }
    let client_id = param(p, "client_id").unwrap_or_default();
    if client_id != g.app.client_id {
        return Err(error_page(
            700016,
            &format!("Application with identifier '{client_id}' was not found in the directory 'Microsoft'."),
        ));
    }
    let redirect_uri = param(p, "redirect_uri").unwrap_or_default();
    if !g.app.redirect_uris.iter().any(|u| u == redirect_uri) {
        return Err(error_page(
            50011,
            &format!(
                "The redirect URI '{redirect_uri}' specified in the request does not match the redirect URIs configured for the application '{client_id}'."
            ),
        ));
    }
    let state = param(p, "state");
    if param(p, "response_type") != Some("code") {
        return Err(redirect_error(
            redirect_uri,
            state,
            "unsupported_response_type",
            Some(700054),
            Some("response_type 'code' is required."),
            None,
        ));
    }
    let scopes = match resolve_scopes(param(p, "scope").unwrap_or_default()) {
        Ok(s) if !s.is_empty() => s,
        Ok(_) => {
            return Err(redirect_error(
                redirect_uri,
                state,
                "invalid_request",
                Some(900144),
                Some("The request body must contain the following parameter: 'scope'."),
                None,
            ));
        }
        Err(bad) => {
            return Err(redirect_error(
                redirect_uri,
                state,
                "invalid_scope",
                Some(70011),
                Some(&format!(
                    "The provided value for the input parameter 'scope' is not valid. The scope {bad} is not valid."
                )),
                None,
            ));
        }
    };
    match (param(p, "code_challenge"), param(p, "code_challenge_method")) {
        (Some(c), Some("S256")) if c.len() >= 43 => {}
        _ => {
            return Err(redirect_error(
                redirect_uri,
                state,
                "invalid_request",
                Some(9002325),
                Some("Proof Key for Code Exchange is required: send code_challenge with code_challenge_method=S256."),
                None,
            ));
        }
    }
    Ok((redirect_uri.to_owned(), scopes))
}

/// `GET /{tenant}/oauth2/v2.0/authorize`.
async fn authorize(State(s): State<EmulatorState>, Path(tenant): Path<String>, Query(p): Query<Params>) -> Response {
    let mode = {
        let g = s.lock();
        if let Err(resp) = validate(&g, &tenant, &p) {
            return resp;
        }
        g.authorize.clone()
    };
    match mode {
        AuthorizeMode::Page => consent_page(&s, &tenant, &p),
        AuthorizeMode::AutoAccept { user } => decide(&s, &tenant, &p, &user, "accept"),
        AuthorizeMode::AutoError { error } => decide(&s, &tenant, &p, "", &error),
    }
}

fn consent_page(s: &EmulatorState, tenant: &str, p: &Params) -> Response {
    let g = s.lock();
    let hidden: String = p
        .iter()
        .map(|(k, v)| format!(r#"<input type="hidden" name="{}" value="{}">"#, html_escape(k), html_escape(v)))
        .collect();
    let users: String = g
        .world
        .partner()
        .users
        .iter()
        .enumerate()
        .map(|(i, u)| {
            format!(
                r#"<label><input type="radio" name="user" value="{}" {}> {} &lt;{}&gt; — {}</label><br>"#,
                html_escape(&u.upn),
                if i == 0 { "checked" } else { "" },
                html_escape(&u.display_name),
                html_escape(&u.upn),
                if u.global_admin { "Global Administrator" } else { "not an administrator" }
            )
        })
        .collect();
    let body = format!(
        r#"<!doctype html><html><head><meta charset="utf-8"><title>Permissions requested</title>
<style>body{{font-family:Segoe UI,Arial,sans-serif;max-width:560px;margin:40px auto}}button{{padding:8px 20px;margin-right:8px}}</style></head>
<body><p><b>Microsoft (emulated)</b> · tenant {tenant}</p><h2>Permissions requested</h2>
<p>An app wants to read directory data, users, licenses, reports and authentication methods in your organization.</p>
<form method="post">{hidden}<p>Sign in as:</p>{users}
<p><button name="action" value="accept">Accept</button><button name="action" value="cancel">Cancel</button><button name="action" value="decline">Decline</button></p></form></body></html>"#,
        tenant = html_escape(tenant)
    );
    Html(body).into_response()
}

/// `POST /{tenant}/oauth2/v2.0/authorize`: the consent page's buttons.
async fn consent(State(s): State<EmulatorState>, Path(tenant): Path<String>, Form(p): Form<Params>) -> Response {
    {
        let g = s.lock();
        if let Err(resp) = validate(&g, &tenant, &p) {
            return resp;
        }
    }
    let user = param(&p, "user").unwrap_or_default().to_owned();
    let action = param(&p, "action").unwrap_or("cancel").to_owned();
    decide(&s, &tenant, &p, &user, &action)
}

/// Accept as `user`, or answer with the error `action` names.
fn decide(s: &EmulatorState, tenant: &str, p: &Params, user: &str, action: &str) -> Response {
    let mut g = s.lock();
    let (redirect_uri, mut scopes) = match validate(&g, tenant, p) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let state = param(p, "state");
    match action {
        "accept" => {}
        "cancel" => return redirect_error(&redirect_uri, state, "access_denied", None, None, Some("cancel")),
        "decline" => {
            return redirect_error(
                &redirect_uri,
                state,
                "consent_required",
                Some(65004),
                Some("User declined to consent to access the app."),
                None,
            );
        }
        "adminConsentRequired" => {
            return redirect_error(
                &redirect_uri,
                state,
                "access_denied",
                Some(90094),
                Some("Admin consent is required for the permissions requested by this application."),
                None,
            );
        }
        other => return redirect_error(&redirect_uri, state, other, None, None, None),
    }
    let partner = g.world.partner();
    let wanted = match user {
        "admin" => partner.users.iter().find(|u| u.global_admin).map(|u| (0, u)),
        "tech" => partner.users.iter().find(|u| !u.global_admin).map(|u| (0, u)),
        // Any tenant's user signs in to their home tenant (`organizations` authority).
        upn => g
            .world
            .tenants
            .iter()
            .enumerate()
            .find_map(|(i, t)| t.users.iter().find(|u| u.upn.eq_ignore_ascii_case(upn)).map(|u| (i, u))),
    };
    let Some((home, u)) = wanted.map(|(i, u)| (i, u.clone())) else {
        return redirect_error(
            &redirect_uri,
            state,
            "access_denied",
            Some(50034),
            Some("The user account does not exist in the directory."),
            None,
        );
    };
    let needs_admin = scopes.iter().any(|sc| !BASIC_SCOPES.contains(&sc.as_str()));
    // In the partner tenant a Global Administrator (or an earlier tenant-wide grant) consents;
    // in another tenant its administrators do.
    let can_consent = if home == 0 { g.world.partner().app_consented || u.global_admin } else { u.is_admin };
    if needs_admin && !can_consent {
        // A non-admin cannot grant admin-restricted permissions (AADSTS90094).
        return redirect_error(
            &redirect_uri,
            state,
            "access_denied",
            Some(90094),
            Some(
                "Admin consent is required for the permissions requested by this application. An admin consent request may be sent to the admin.",
            ),
            None,
        );
    }
    if home == 0 && u.global_admin {
        g.world.partner_mut().app_consented = true;
    }
    let withheld = g.partner.withhold_scopes.clone();
    scopes.retain(|sc| !withheld.iter().any(|w| w.eq_ignore_ascii_case(sc)));
    let code = random_token(64);
    let client_id = g.app.client_id.clone();
    g.codes.insert(
        code.clone(),
        IssuedCode {
            client_id,
            redirect_uri: redirect_uri.clone(),
            challenge: param(p, "code_challenge").unwrap_or_default().to_owned(),
            scopes,
            user_id: u.id.clone(),
            home,
            expires: Instant::now() + Duration::from_secs(600),
            used: false,
        },
    );
    let mut pairs = vec![("code", code.as_str())];
    if let Some(st) = state {
        pairs.push(("state", st));
    }
    redirect_with(&redirect_uri, &pairs)
}

/// A token-endpoint error in Microsoft's shape.
pub fn token_error(status: StatusCode, error: &str, code: u32, message: &str, suberror: Option<&str>) -> Response {
    let trace = uuid::Uuid::new_v4();
    let correlation = uuid::Uuid::new_v4();
    let ts = chrono::Utc::now().format("%Y-%m-%d %H:%M:%SZ").to_string();
    let mut body = json!({
        "error": error,
        "error_description": format!("AADSTS{code}: {message}\r\nTrace ID: {trace}\r\nCorrelation ID: {correlation}\r\nTimestamp: {ts}"),
        "error_codes": [code],
        "timestamp": ts,
        "trace_id": trace.to_string(),
        "correlation_id": correlation.to_string(),
        "error_uri": format!("https://login.microsoftonline.com/error?code={code}"),
    });
    if let Some(sub) = suberror {
        body["suberror"] = json!(sub);
    }
    (status, [(header::CONTENT_TYPE, "application/json; charset=utf-8")], body.to_string()).into_response()
}

/// AADSTS900144: a required form parameter is missing.
fn missing_param(name: &str) -> Response {
    token_error(
        StatusCode::BAD_REQUEST,
        "invalid_request",
        900144,
        &format!("The request body must contain the following parameter: '{name}'."),
        None,
    )
}

/// AADSTS9002313: a code or refresh token this authority never issued.
fn malformed_grant() -> Response {
    token_error(
        StatusCode::BAD_REQUEST,
        "invalid_grant",
        9002313,
        "Invalid request. Request is malformed or invalid.",
        None,
    )
}

fn client_credentials(headers: &HeaderMap, p: &Params) -> (Option<String>, Option<String>) {
    if let Some(basic) =
        headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Basic "))
        && let Ok(raw) = base64::engine::general_purpose::STANDARD.decode(basic.trim())
        && let Ok(text) = String::from_utf8(raw)
        && let Some((id, secret)) = text.split_once(':')
    {
        let dec =
            |s: &str| url::form_urlencoded::parse(format!("x={s}").as_bytes()).next().map(|(_, v)| v.into_owned());
        return (dec(id), dec(secret));
    }
    (param(p, "client_id").map(str::to_owned), param(p, "client_secret").map(str::to_owned))
}

fn issue(g: &mut Inner, tenant_idx: usize, user_id: &str, scopes: &[String], with_refresh: bool) -> serde_json::Value {
    let at = random_token(48);
    g.access.insert(
        at.clone(),
        AccessGrant {
            tenant_idx,
            user_id: user_id.to_owned(),
            scopes: scopes.to_vec(),
            expires: Instant::now() + Duration::from_secs(3599),
        },
    );
    let graph_scopes: Vec<String> = scopes
        .iter()
        .filter(|s| !["openid", "profile", "email", "offline_access"].contains(&s.as_str()))
        .map(|s| format!("{GRAPH}{s}"))
        .collect();
    let mut body = json!({
        "token_type": "Bearer",
        "scope": graph_scopes.join(" "),
        "expires_in": 3599,
        "ext_expires_in": 3599,
        "access_token": at,
    });
    if with_refresh && scopes.iter().any(|s| s == "offline_access") && !g.partner.omit_refresh_token {
        let rt = random_token(96);
        g.refresh.insert(
            rt.clone(),
            RefreshGrant { user_id: user_id.to_owned(), scopes: scopes.to_vec(), home: tenant_idx },
        );
        body["refresh_token"] = json!(rt);
    }
    if scopes.iter().any(|s| s == "openid") {
        let tid = g.world.tenants[tenant_idx].id.clone();
        let claims = json!({"tid": tid, "oid": user_id, "ver": "2.0"});
        body["id_token"] = json!(format!("eyJhbGciOiJub25lIn0.{}.", URL_SAFE_NO_PAD.encode(claims.to_string())));
    }
    body
}

/// `POST /{tenant}/oauth2/v2.0/token`.
async fn token(
    State(s): State<EmulatorState>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    Form(p): Form<Params>,
) -> Response {
    let latency = s.lock().latency;
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let mut g = s.lock();
    *g.stats.entry("POST /{tenant}/oauth2/v2.0/token".into()).or_default() += 1;
    let (client_id, secret) = client_credentials(&headers, &p);
    if client_id.as_deref() != Some(g.app.client_id.as_str()) {
        return token_error(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            700016,
            &format!("Application with identifier '{}' was not found in the directory.", client_id.unwrap_or_default()),
            None,
        );
    }
    if secret.as_deref() != Some(g.app.client_secret.as_str()) {
        return token_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            7000215,
            "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID.",
            None,
        );
    }
    // `organizations` / `common` mean the signed-in user's home tenant (known from the grant).
    let home_paths = ["organizations", "common"];
    let named = if home_paths.contains(&tenant.as_str()) {
        None
    } else {
        match g.world.tenant_index(&tenant) {
            Some(i) => Some(i),
            None => {
                return token_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    90002,
                    &format!(
                        "Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud."
                    ),
                    None,
                );
            }
        }
    };
    match param(&p, "grant_type") {
        Some("authorization_code") => {
            let Some(code) = param(&p, "code") else {
                return missing_param("code");
            };
            let Some(issued) = g.codes.get(code).cloned() else {
                return malformed_grant();
            };
            if issued.used {
                return token_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    54005,
                    "OAuth2 Authorization code was already redeemed, please retry with a new valid code or use an existing refresh token.",
                    None,
                );
            }
            if issued.expires < Instant::now() {
                return token_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    70008,
                    "The provided authorization code or refresh token has expired due to inactivity. Send a new interactive authorization request for this user and resource.",
                    None,
                );
            }
            if named.is_some_and(|i| i != issued.home) {
                return token_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    700005,
                    "Provided Authorization Code is intended to use against other tenant, thus rejected.",
                    None,
                );
            }
            if param(&p, "redirect_uri") != Some(issued.redirect_uri.as_str()) {
                return token_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    500112,
                    "The reply address does not match the reply address provided when requesting Authorization code.",
                    None,
                );
            }
            let verifier = param(&p, "code_verifier").unwrap_or_default();
            let computed = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
            if verifier.is_empty() || computed != issued.challenge {
                return token_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    501481,
                    "The Code_Verifier does not match the code_challenge supplied in the authorization request.",
                    None,
                );
            }
            g.codes.get_mut(code).expect("looked up above").used = true;
            let body = issue(&mut g, issued.home, &issued.user_id, &issued.scopes, true);
            (StatusCode::OK, axum::Json(body)).into_response()
        }
        Some("refresh_token") => {
            let Some(rt) = param(&p, "refresh_token") else {
                return missing_param("refresh_token");
            };
            let Some(grant) = g.refresh.get(rt).cloned() else {
                return malformed_grant();
            };
            if g.partner.refresh_revoked {
                return token_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    50173,
                    "The provided grant has expired due to it being revoked, a fresh auth token is needed. The user might have changed or reset their password.",
                    None,
                );
            }
            if g.partner.refresh_expired {
                return token_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    700082,
                    "The refresh token has expired due to inactivity. The token was issued on 2026-01-01T00:00:00Z and was inactive for 90.00:00:00.",
                    Some("bad_token"),
                );
            }
            let tenant_idx = named.unwrap_or(grant.home);
            if tenant_idx != grant.home {
                let t = &g.world.tenants[tenant_idx];
                let knobs = g.world.knobs(&t.id);
                // GDAP relationships are the (first) partner's; a user of another tenant has none.
                let has_gdap = grant.home == 0
                    && g.world.relationships.iter().any(|r| r.customer_tenant_id == t.id && r.status == "active");
                if knobs.no_gdap_access || !has_gdap {
                    let upn = g
                        .world
                        .partner()
                        .users
                        .iter()
                        .find(|u| u.id == grant.user_id)
                        .map(|u| u.upn.clone())
                        .unwrap_or_default();
                    let msg = format!(
                        "User account '{upn}' from identity provider 'https://sts.windows.net/{}/' does not exist in tenant '{}' and cannot access the application '{}'(Scopable) in that tenant.",
                        g.world.partner().id,
                        t.display_name,
                        g.app.client_id
                    );
                    return token_error(StatusCode::BAD_REQUEST, "invalid_grant", 50020, &msg, None);
                }
                if knobs.consent_missing || !t.app_consented {
                    let msg = format!(
                        "The user or administrator has not consented to use the application with ID '{}' named 'Scopable'. Send an interactive authorization request for this user and resource.",
                        g.app.client_id
                    );
                    return token_error(
                        StatusCode::BAD_REQUEST,
                        "invalid_grant",
                        65001,
                        &msg,
                        Some("consent_required"),
                    );
                }
            }
            if let Some(requested) = param(&p, "scope") {
                match resolve_scopes(requested) {
                    Ok(req)
                        if req.iter().all(|r| {
                            grant.scopes.contains(r) || r == "offline_access" || r == "openid" || r == "profile"
                        }) => {}
                    _ => {
                        return token_error(
                            StatusCode::BAD_REQUEST,
                            "invalid_scope",
                            70011,
                            "The provided value for the input parameter 'scope' is not valid.",
                            None,
                        );
                    }
                }
            }
            let body = issue(&mut g, tenant_idx, &grant.user_id, &grant.scopes, true);
            (StatusCode::OK, axum::Json(body)).into_response()
        }
        Some(other) => token_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            70003,
            &format!("The app requested an unsupported grant type '{other}'."),
            None,
        ),
        None => missing_param("grant_type"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_resolve() {
        let s = resolve_scopes("openid offline_access https://graph.microsoft.com/.default").unwrap();
        assert!(s.contains(&"offline_access".to_string()) && s.contains(&"User.Read.All".to_string()));
        assert!(resolve_scopes("Mail.Send").is_err());
    }
}
