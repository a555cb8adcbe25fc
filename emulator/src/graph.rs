//! Microsoft Graph v1.0 as the service uses it: organization, GDAP relationships and customers,
//! users, the registration report, per-user authentication methods, subscribed SKUs, `$batch`.
//! Bearer tokens are checked and bound to their tenant; scopes and GDAP roles are enforced;
//! paging uses opaque `$skiptoken`s; throttling and faults follow the tenant's knobs.

use std::time::{Duration, Instant};

use axum::{
    Router,
    body::Bytes,
    extract::State,
    http::{HeaderMap, Method, StatusCode, Uri, header},
    response::{IntoResponse, Response},
    routing::any,
};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use serde_json::{Value, json};

use super::{
    EmulatorState, Inner,
    catalog::roles,
    world::{Method as AuthMethod, Tenant, User},
};

pub fn routes() -> Router<EmulatorState> {
    Router::new().route("/v1.0/{*path}", any(handle)).route("/beta/{*path}", any(handle))
}

/// One Graph answer (also the shape of a `$batch` item).
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Value,
}

fn error(status: u16, code: &str, message: &str) -> Reply {
    let request_id = uuid::Uuid::new_v4().to_string();
    let date = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S").to_string();
    Reply {
        status,
        headers: vec![("request-id".into(), request_id.clone())],
        body: json!({"error": {"code": code, "message": message, "innerError": {"date": date, "request-id": request_id, "client-request-id": request_id}}}),
    }
}

fn ok(body: Value) -> Reply {
    Reply { status: 200, headers: vec![("request-id".into(), uuid::Uuid::new_v4().to_string())], body }
}

fn denied() -> Reply {
    error(403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.")
}

/// Counts a request under a normalised key (ids replaced by `{id}`).
fn count(g: &mut Inner, version: &str, method: &str, path: &str) {
    let norm: Vec<String> = path
        .split('/')
        .map(|seg| if seg.len() >= 32 && seg.contains('-') { "{id}".to_owned() } else { seg.to_owned() })
        .collect();
    *g.stats.entry(format!("{method} /{version}{}", norm.join("/"))).or_default() += 1;
}

struct Caller {
    tenant_idx: usize,
    user_id: String,
    scopes: Vec<String>,
}

impl Caller {
    fn has_scope(&self, any_of: &[&str]) -> bool {
        self.scopes.iter().any(|s| any_of.contains(&s.as_str()))
    }
}

fn authenticate(g: &Inner, token: Option<&str>) -> Result<Caller, Reply> {
    let Some(token) = token else {
        return Err(error(401, "InvalidAuthenticationToken", "Access token is empty."));
    };
    match g.access.get(token) {
        Some(a) if a.expires > Instant::now() => {
            Ok(Caller { tenant_idx: a.tenant_idx, user_id: a.user_id.clone(), scopes: a.scopes.clone() })
        }
        Some(_) => Err(error(401, "InvalidAuthenticationToken", "Access token has expired or is not yet valid.")),
        None => {
            Err(error(401, "InvalidAuthenticationToken", "IDX14100: JWT is not well formed, there are no dots (.)."))
        }
    }
}

/// Roles the caller holds in the token's tenant.
fn roles_of(g: &Inner, c: &Caller) -> Vec<String> {
    if c.tenant_idx == 0 {
        let admin = g.world.partner().users.iter().any(|u| u.id == c.user_id && u.global_admin);
        return if admin { vec![roles::GLOBAL_ADMINISTRATOR.to_owned()] } else { vec![] };
    }
    g.world.roles_in(&g.world.tenants[c.tenant_idx].id)
}

fn holds(roles: &[String], any_of: &[&str]) -> bool {
    roles.iter().any(|r| any_of.contains(&r.as_str()))
}

/// Throttling and injected failures for the tenant; `Some(reply)` when the request fails.
fn faults(g: &mut Inner, tenant_idx: usize) -> Option<Reply> {
    let id = g.world.tenants[tenant_idx].id.clone();
    let knobs = g.world.knobs.get_mut(&id)?;
    if knobs.fail_next > 0 {
        knobs.fail_next -= 1;
        let status = knobs.fail_status.unwrap_or(503);
        *g.stats.entry("injected failures".into()).or_default() += 1;
        return Some(error(
            status,
            "serviceNotAvailable",
            "The service is temporarily unavailable. Please try again later.",
        ));
    }
    let throttle = knobs.throttle.clone()?;
    let now = Instant::now();
    let w = g.windows.entry(id).or_insert((now, 0));
    if now.duration_since(w.0) >= Duration::from_millis(throttle.window_ms) {
        *w = (now, 0);
    }
    w.1 += 1;
    if w.1 > throttle.requests {
        *g.stats.entry("429 responses".into()).or_default() += 1;
        let mut r = error(429, "TooManyRequests", "Please retry again later.");
        r.body["error"]["innerError"]["code"] = json!("429");
        r.body["error"]["innerError"]["status"] = json!("429");
        r.body["error"]["innerError"]["message"] = json!("Please retry after");
        r.headers.push(("Retry-After".into(), format!("{}", throttle.retry_after_secs)));
        return Some(r);
    }
    None
}

type Query = Vec<(String, String)>;

fn q<'a>(query: &'a Query, name: &str) -> Option<&'a str> {
    query.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
}

/// Parses `$top` within `1..=max` (default `default`).
fn top(query: &Query, default: usize, max: usize) -> Result<usize, Reply> {
    match q(query, "$top") {
        None => Ok(default),
        Some(v) => match v.parse::<usize>() {
            Ok(n) if (1..=max).contains(&n) => Ok(n),
            _ => Err(error(
                400,
                "Request_BadRequest",
                &format!("Invalid page size specified: '{v}'. Must be between 1 and {max} inclusive."),
            )),
        },
    }
}

/// Decodes a `$skiptoken` bound to a tenant and a listing.
fn offset(query: &Query, tenant_id: &str, listing: &str) -> Result<usize, Reply> {
    let Some(tok) = q(query, "$skiptoken") else { return Ok(0) };
    URL_SAFE_NO_PAD
        .decode(tok)
        .ok()
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        .filter(|v| v["t"] == tenant_id && v["l"] == listing)
        .and_then(|v| v["o"].as_u64())
        .map(|o| o as usize)
        .ok_or_else(|| {
            error(400, "Directory_ExpiredPageToken", "The specified page token value has expired or is invalid.")
        })
}

/// Where a listing is served from, for its `@odata.nextLink`s.
struct Listing<'a> {
    base: &'a str,
    path: &'a str,
    query: &'a Query,
    tenant_id: &'a str,
    name: &'a str,
    context: &'a str,
}

impl Listing<'_> {
    /// A page of `items` starting at `start` of `total`, with `@odata.nextLink` when more follow.
    fn page(&self, items: Vec<Value>, start: usize, total: usize) -> Value {
        let mut body = json!({"@odata.context": format!("https://graph.microsoft.com/v1.0/$metadata#{}", self.context), "value": items});
        let end = start + body["value"].as_array().map_or(0, Vec::len);
        if end < total {
            let tok = URL_SAFE_NO_PAD.encode(json!({"t": self.tenant_id, "l": self.name, "o": end}).to_string());
            let mut url = url::Url::parse(&format!("{}/v1.0{}", self.base, self.path)).expect("base URL");
            {
                let mut qp = url.query_pairs_mut();
                for (k, v) in self.query.iter().filter(|(k, _)| !k.eq_ignore_ascii_case("$skiptoken")) {
                    qp.append_pair(k, v);
                }
                qp.append_pair("$skiptoken", &tok);
            }
            body["@odata.nextLink"] = json!(url.to_string());
        }
        body
    }
}

const USER_DEFAULT: &[&str] = &[
    "businessPhones",
    "displayName",
    "givenName",
    "id",
    "jobTitle",
    "mail",
    "mobilePhone",
    "officeLocation",
    "preferredLanguage",
    "surname",
    "userPrincipalName",
];
/// Properties `$select` may name beyond the default set.
const USER_EXTRA: &[&str] = &[
    "accountEnabled",
    "userType",
    "otherMails",
    "proxyAddresses",
    "assignedLicenses",
    "createdDateTime",
    "usageLocation",
    "onPremisesSyncEnabled",
];

fn user_json(u: &User, select: &[&str]) -> Value {
    let (given, surname) = u.display_name.split_once(' ').unwrap_or((&u.display_name, ""));
    let full = json!({
        "businessPhones": [], "displayName": u.display_name, "givenName": given, "id": u.id, "jobTitle": null,
        "mail": u.mail, "mobilePhone": null, "officeLocation": null, "preferredLanguage": "en-US",
        "surname": surname, "userPrincipalName": u.upn, "accountEnabled": u.account_enabled, "userType": u.user_type,
        "otherMails": u.other_mails, "proxyAddresses": u.proxy_addresses,
        "assignedLicenses": u.sku_ids.iter().map(|s| json!({"disabledPlans": [], "skuId": s})).collect::<Vec<_>>(),
        "createdDateTime": "2024-03-01T09:00:00Z", "usageLocation": "US", "onPremisesSyncEnabled": null,
    });
    let mut out = serde_json::Map::new();
    out.insert("id".into(), full["id"].clone());
    for f in select {
        out.insert((*f).to_owned(), full[*f].clone());
    }
    Value::Object(out)
}

fn select<'a>(query: &'a Query, default: &'a [&'a str], extra: &[&str], ty: &str) -> Result<Vec<&'a str>, Reply> {
    let Some(sel) = q(query, "$select") else { return Ok(default.to_vec()) };
    let mut out = vec![];
    for f in sel.split(',').map(str::trim).filter(|f| !f.is_empty()) {
        if !default.contains(&f) && !extra.contains(&f) {
            return Err(error(
                400,
                "Request_BadRequest",
                &format!("Could not find a property named '{f}' on type 'microsoft.graph.{ty}'."),
            ));
        }
        out.push(f);
    }
    Ok(out)
}

fn method_name(m: AuthMethod) -> Option<&'static str> {
    Some(match m {
        AuthMethod::Password => return None,
        AuthMethod::Phone => "mobilePhone",
        AuthMethod::Authenticator => "microsoftAuthenticatorPush",
        AuthMethod::Fido2 => "fido2",
        AuthMethod::WindowsHello => "windowsHelloForBusiness",
        AuthMethod::SoftwareOath => "softwareOneTimePasscode",
        AuthMethod::Email => "email",
    })
}

fn is_strong(m: AuthMethod) -> bool {
    !matches!(m, AuthMethod::Password | AuthMethod::Email)
}

fn registration_json(u: &User) -> Value {
    let registered: Vec<&str> = u.methods.iter().filter_map(|m| method_name(*m)).collect();
    let mfa = u.methods.iter().any(|m| is_strong(*m));
    let preferred = if u.methods.contains(&AuthMethod::Authenticator) {
        "push"
    } else if u.methods.contains(&AuthMethod::Phone) {
        "sms"
    } else if u.methods.contains(&AuthMethod::SoftwareOath) {
        "oath"
    } else {
        ""
    };
    json!({
        "id": u.id, "userPrincipalName": u.upn, "userDisplayName": u.display_name,
        "userType": u.user_type.to_ascii_lowercase(), "isAdmin": u.is_admin,
        "isSsprRegistered": mfa, "isSsprEnabled": true, "isSsprCapable": mfa,
        "isMfaRegistered": mfa, "isMfaCapable": mfa,
        "isPasswordlessCapable": u.methods.iter().any(|m| matches!(m, AuthMethod::Fido2 | AuthMethod::WindowsHello)),
        "methodsRegistered": registered, "isSystemPreferredAuthenticationMethodEnabled": true,
        "systemPreferredAuthenticationMethods": if mfa { json!([preferred]) } else { json!([]) },
        "userPreferredMethodForSecondaryAuthentication": preferred,
        "lastUpdatedDateTime": "2026-11-27T06:00:00Z",
    })
}

fn methods_json(u: &User) -> Value {
    let value: Vec<Value> = u
        .methods
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let id = format!("{:08x}-0000-4000-a000-{:012x}", i, u.id.len() + i);
            match m {
                AuthMethod::Password => json!({"@odata.type": "#microsoft.graph.passwordAuthenticationMethod", "id": "28c10230-6103-485e-b985-444c60001490", "password": null, "createdDateTime": "2024-03-01T09:00:00Z"}),
                AuthMethod::Phone => json!({"@odata.type": "#microsoft.graph.phoneAuthenticationMethod", "id": "3179e48a-750b-4051-897c-87b9720928f7", "phoneNumber": "+1 2065550100", "phoneType": "mobile", "smsSignInState": "notSupported"}),
                AuthMethod::Authenticator => json!({"@odata.type": "#microsoft.graph.microsoftAuthenticatorAuthenticationMethod", "id": id, "displayName": "iPhone 15", "deviceTag": "SoftwareTokenActivated", "phoneAppVersion": "6.8.2"}),
                AuthMethod::Fido2 => json!({"@odata.type": "#microsoft.graph.fido2AuthenticationMethod", "id": id, "displayName": "YubiKey 5", "aaGuid": "cb69481e-8ff7-4039-93ec-0a2729a154a8", "model": "YubiKey 5 Series", "attestationCertificates": [], "attestationLevel": "attested"}),
                AuthMethod::WindowsHello => json!({"@odata.type": "#microsoft.graph.windowsHelloForBusinessAuthenticationMethod", "id": id, "displayName": "LAPTOP-01", "keyStrength": "normal"}),
                AuthMethod::SoftwareOath => json!({"@odata.type": "#microsoft.graph.softwareOathAuthenticationMethod", "id": id, "secretKey": null}),
                AuthMethod::Email => json!({"@odata.type": "#microsoft.graph.emailAuthenticationMethod", "id": id, "emailAddress": "backup@example.com"}),
            }
        })
        .collect();
    json!({"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#users('x')/authentication/methods", "value": value})
}

fn org_json(t: &Tenant) -> Value {
    json!({
        "id": t.id, "displayName": t.display_name, "tenantType": "AAD", "countryLetterCode": "US",
        "createdDateTime": "2019-05-01T10:00:00Z",
        "verifiedDomains": t.domains.iter().map(|d| json!({
            "capabilities": if d.is_initial { "Email, OfficeCommunicationsOnline" } else { "Email" },
            "isDefault": d.is_default, "isInitial": d.is_initial, "name": d.name, "type": "Managed"
        })).collect::<Vec<_>>(),
    })
}

fn sku_json(t: &Tenant, s: &super::world::TenantSku) -> Value {
    json!({
        "accountId": t.id, "accountName": t.display_name, "appliesTo": "User",
        "capabilityStatus": s.capability_status, "consumedUnits": t.consumed(s.def.sku_id),
        "id": format!("{}_{}", t.id, s.def.sku_id),
        "prepaidUnits": {"enabled": s.enabled, "suspended": 0, "warning": if s.capability_status == "Warning" { s.enabled } else { 0 }, "lockedOut": 0},
        "servicePlans": s.def.plans.iter().map(|(id, name)| json!({"servicePlanId": id, "servicePlanName": name, "provisioningStatus": "Success", "appliesTo": "User"})).collect::<Vec<_>>(),
        "skuId": s.def.sku_id, "skuPartNumber": s.def.part_number, "subscriptionIds": [format!("{}-sub", &s.def.sku_id[..8])],
    })
}

fn relationship_json(g: &Inner, r: &super::world::Relationship) -> Value {
    let roles = if r.status == "active" {
        g.world.knobs.get(&r.customer_tenant_id).and_then(|k| k.roles.clone()).unwrap_or_else(|| r.roles.clone())
    } else {
        r.roles.clone()
    };
    let active = r.status == "active";
    json!({
        "@odata.type": "#microsoft.graph.delegatedAdminRelationship", "@odata.etag": format!("W/\"{}\"", &r.id[..8]),
        "id": r.id, "displayName": r.display_name, "duration": "P730D",
        "customer": {"tenantId": r.customer_tenant_id, "displayName": r.customer_name},
        "accessDetails": {"unifiedRoles": roles.iter().map(|id| json!({"roleDefinitionId": id})).collect::<Vec<_>>()},
        "status": r.status, "autoExtendDuration": "P180D",
        "createdDateTime": "2025-01-10T08:00:00Z", "lastModifiedDateTime": "2025-01-11T08:00:00Z",
        "activatedDateTime": if active { json!("2025-01-11T08:00:00Z") } else { Value::Null },
        "endDateTime": if active { json!("2027-01-11T08:00:00Z") } else { json!("2025-06-01T00:00:00Z") },
    })
}

/// Answers one Graph request (directly or inside `$batch`).
pub fn dispatch(
    g: &mut Inner,
    base: &str,
    version: &str,
    method: &str,
    path_and_query: &str,
    token: Option<&str>,
) -> Reply {
    let (path, raw_query) = path_and_query.split_once('?').unwrap_or((path_and_query, ""));
    let query: Query = url::form_urlencoded::parse(raw_query.as_bytes()).into_owned().collect();
    count(g, version, method, path);
    let caller = match authenticate(g, token) {
        Ok(c) => c,
        Err(r) => return r,
    };
    if let Some(r) = faults(g, caller.tenant_idx) {
        return r;
    }
    let roles = roles_of(g, &caller);
    let tenant_id = g.world.tenants[caller.tenant_idx].id.clone();
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    match (method, segs.as_slice()) {
        // The signed-in user (delegated tokens; User.Read is implied by any user scope).
        ("GET", ["me"]) => {
            let fields = match select(&query, USER_DEFAULT, USER_EXTRA, "user") {
                Ok(f) => f,
                Err(r) => return r,
            };
            match g.world.tenants[caller.tenant_idx].users.iter().find(|u| u.id == caller.user_id) {
                Some(u) => ok(user_json(u, &fields)),
                None => error(404, "Request_ResourceNotFound", "The signed-in user does not exist in the directory."),
            }
        }
        ("GET", ["organization"]) => ok(
            json!({"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#organization", "value": [org_json(&g.world.tenants[caller.tenant_idx])]}),
        ),
        ("GET", ["tenantRelationships", listing @ ("delegatedAdminRelationships" | "delegatedAdminCustomers")]) => {
            if caller.tenant_idx != 0
                || !caller.has_scope(&["DelegatedAdminRelationship.Read.All"])
                || !holds(&roles, &[roles::GLOBAL_ADMINISTRATOR, roles::GLOBAL_READER])
            {
                return denied();
            }
            let only_active = match q(&query, "$filter") {
                None => false,
                Some(f)
                    if f.replace(' ', "") == "status eq 'active'".replace(' ', "")
                        && *listing == "delegatedAdminRelationships" =>
                {
                    true
                }
                Some(f) => return error(400, "BadRequest", &format!("The filter '{f}' is not supported.")),
            };
            let n = match top(&query, 100, 300) {
                Ok(n) => n,
                Err(r) => return r,
            };
            let start = match offset(&query, &tenant_id, listing) {
                Ok(o) => o,
                Err(r) => return r,
            };
            let items: Vec<Value> = if *listing == "delegatedAdminRelationships" {
                g.world
                    .relationships
                    .iter()
                    .filter(|r| !only_active || r.status == "active")
                    .map(|r| relationship_json(g, r))
                    .collect()
            } else {
                let mut seen = std::collections::HashSet::new();
                g.world.relationships.iter().filter(|r| seen.insert(r.customer_tenant_id.clone())).map(|r| json!({
                    "@odata.type": "#microsoft.graph.delegatedAdminCustomer", "id": r.customer_tenant_id, "tenantId": r.customer_tenant_id, "displayName": r.customer_name
                })).collect()
            };
            let total = items.len();
            let slice = items.into_iter().skip(start).take(n).collect();
            let context = format!("tenantRelationships/{listing}");
            ok(Listing { base, path, query: &query, tenant_id: &tenant_id, name: listing, context: &context }
                .page(slice, start, total))
        }
        ("GET", ["tenantRelationships", "delegatedAdminRelationships", id, "accessAssignments"]) => {
            if caller.tenant_idx != 0 || !caller.has_scope(&["DelegatedAdminRelationship.Read.All"]) {
                return denied();
            }
            let Some(r) = g.world.relationships.iter().find(|r| r.id == *id) else {
                return error(
                    404,
                    "Request_ResourceNotFound",
                    &format!(
                        "Resource '{id}' does not exist or one of its queried reference-property objects are not present."
                    ),
                );
            };
            let rel = relationship_json(g, r);
            ok(json!({"value": [{
                "id": format!("{}", &r.group_id), "status": if r.status == "active" { "active" } else { "deleted" },
                "accessContainer": {"accessContainerId": r.group_id, "accessContainerType": "securityGroup"},
                "accessDetails": rel["accessDetails"].clone(),
            }]}))
        }
        ("GET", ["users"]) => {
            if !caller.has_scope(&["User.Read.All", "Directory.Read.All", "User.ReadBasic.All"])
                || !holds(&roles, roles::DIRECTORY_READ)
            {
                return denied();
            }
            let fields = match select(&query, USER_DEFAULT, USER_EXTRA, "user") {
                Ok(f) => f,
                Err(r) => return r,
            };
            let n = match top(&query, 100, 999) {
                Ok(n) => n,
                Err(r) => return r,
            };
            let start = match offset(&query, &tenant_id, "users") {
                Ok(o) => o,
                Err(r) => return r,
            };
            let filter: Box<dyn Fn(&User) -> bool> = match q(&query, "$filter").map(|f| f.replace(' ', "")) {
                None => Box::new(|_| true),
                Some(f) if f == "accountEnabledeqtrue" => Box::new(|u| u.account_enabled),
                Some(f) if f == "accountEnabledeqfalse" => Box::new(|u| !u.account_enabled),
                Some(f) if f == "userTypeeq'Member'" => Box::new(|u| u.user_type == "Member"),
                Some(f) if f == "userTypeeq'Guest'" => Box::new(|u| u.user_type == "Guest"),
                Some(_) => {
                    return error(
                        400,
                        "Request_UnsupportedQuery",
                        "Unsupported or invalid query filter clause specified for property of resource 'User'.",
                    );
                }
            };
            let users = &g.world.tenants[caller.tenant_idx].users;
            let matching: Vec<&User> = users.iter().filter(|u| filter(u)).collect();
            let slice = matching.iter().skip(start).take(n).map(|u| user_json(u, &fields)).collect();
            ok(Listing { base, path, query: &query, tenant_id: &tenant_id, name: "users", context: "users" }.page(
                slice,
                start,
                matching.len(),
            ))
        }
        ("GET", ["reports", "authenticationMethods", "userRegistrationDetails"]) => {
            if !caller.has_scope(&["AuditLog.Read.All", "UserAuthenticationMethod.Read.All"]) {
                return denied();
            }
            if !g.world.has_p1(caller.tenant_idx) {
                return error(
                    403,
                    "Authentication_RequestFromNonPremiumTenantOrB2CTenant",
                    "Neither tenant is B2C or tenant doesn't have premium license",
                );
            }
            if !holds(&roles, roles::REPORTS_READ) {
                return error(403, "Authentication_RequestFromUnsupportedUserRole", "User is not in the allowed roles");
            }
            let n = match top(&query, 100, 999) {
                Ok(n) => n,
                Err(r) => return r,
            };
            let start = match offset(&query, &tenant_id, "registration") {
                Ok(o) => o,
                Err(r) => return r,
            };
            let users = &g.world.tenants[caller.tenant_idx].users;
            let slice = users.iter().skip(start).take(n).map(registration_json).collect();
            let context = "reports/authenticationMethods/userRegistrationDetails";
            ok(Listing { base, path, query: &query, tenant_id: &tenant_id, name: "registration", context }.page(
                slice,
                start,
                users.len(),
            ))
        }
        ("GET", ["users", id, "authentication", "methods"]) => {
            let knobs = g.world.knobs(&tenant_id);
            if !caller.has_scope(&["UserAuthenticationMethod.Read.All", "UserAuthenticationMethod.ReadWrite.All"])
                || knobs.methods_forbidden
                || !holds(&roles, roles::METHODS_READ)
            {
                return denied();
            }
            match g.world.tenants[caller.tenant_idx]
                .users
                .iter()
                .find(|u| u.id == *id || u.upn.eq_ignore_ascii_case(id))
            {
                Some(u) => ok(methods_json(u)),
                None => error(
                    404,
                    "Request_ResourceNotFound",
                    &format!(
                        "Resource '{id}' does not exist or one of its queried reference-property objects are not present."
                    ),
                ),
            }
        }
        ("GET", ["subscribedSkus"]) => {
            if !caller.has_scope(&["Organization.Read.All", "Directory.Read.All"])
                || !holds(&roles, roles::DIRECTORY_READ)
            {
                return denied();
            }
            if q(&query, "$filter").is_some() {
                return error(400, "Request_UnsupportedQuery", "Query option 'Filter' is not allowed.");
            }
            let t = &g.world.tenants[caller.tenant_idx];
            ok(
                json!({"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#subscribedSkus", "value": t.skus.iter().map(|s| sku_json(t, s)).collect::<Vec<_>>()}),
            )
        }
        // Security defaults: every tenant has the policy, no premium license needed.
        ("GET", ["policies", "identitySecurityDefaultsEnforcementPolicy"]) => {
            if !caller.has_scope(&["Policy.Read.All"]) || !holds(&roles, roles::POLICY_READ) {
                return denied();
            }
            let on = g.world.tenants[caller.tenant_idx].policies.security_defaults;
            ok(json!({
                "@odata.context": format!("https://graph.microsoft.com/{version}/$metadata#policies/identitySecurityDefaultsEnforcementPolicy/$entity"),
                "id": "00000000-0000-0000-0000-000000000005",
                "displayName": "Security Defaults",
                "description": "Security defaults is a set of basic identity security mechanisms recommended by Microsoft. When enabled, these recommendations will be automatically enforced in your organization. Administrators and users will be better protected from common identity related attacks.",
                "isEnabled": on
            }))
        }
        // Conditional Access: 1 request per second per tenant, 429 without Retry-After above it.
        ("GET", ["identity", "conditionalAccess", "policies"]) => {
            if !caller.has_scope(&["Policy.Read.All"]) || !holds(&roles, roles::POLICY_READ) {
                return denied();
            }
            let now = Instant::now();
            if let Some(last) = g.ca_last.get(&tenant_id)
                && now.duration_since(*last) < Duration::from_secs(1)
            {
                *g.stats.entry("429 responses".into()).or_default() += 1;
                return error(429, "TooManyRequests", "Too many requests.");
            }
            g.ca_last.insert(tenant_id.clone(), now);
            let t = &g.world.tenants[caller.tenant_idx];
            ok(json!({
                "@odata.context": format!("https://graph.microsoft.com/{version}/$metadata#identity/conditionalAccess/policies"),
                "value": t.policies.conditional_access
            }))
        }
        ("GET", ["groups", id, "transitiveMembers"]) => {
            if !caller.has_scope(&["GroupMember.Read.All", "Group.Read.All", "Directory.Read.All"])
                || !holds(&roles, roles::DIRECTORY_READ)
            {
                return denied();
            }
            let t = &g.world.tenants[caller.tenant_idx];
            if !t.policies.groups.iter().any(|g| g.id == *id) {
                return error(
                    404,
                    "Request_ResourceNotFound",
                    &format!(
                        "Resource '{id}' does not exist or one of its queried reference-property objects are not present."
                    ),
                );
            }
            let (users, groups) = t.transitive_members(id);
            let mut value: Vec<Value> =
                users.iter().map(|u| json!({"@odata.type": "#microsoft.graph.user", "id": u})).collect();
            value.extend(groups.iter().map(|g| json!({"@odata.type": "#microsoft.graph.group", "id": g})));
            ok(
                json!({"@odata.context": format!("https://graph.microsoft.com/{version}/$metadata#directoryObjects"), "value": value}),
            )
        }
        ("GET", [role, "members"]) if role.starts_with("directoryRoles(roleTemplateId=") => {
            if !caller.has_scope(&["RoleManagement.Read.Directory", "Directory.Read.All"])
                || !holds(&roles, roles::DIRECTORY_READ)
            {
                return denied();
            }
            let template = role
                .trim_start_matches("directoryRoles(roleTemplateId=")
                .trim_end_matches(')')
                .replace("%27", "'")
                .trim_matches('\'')
                .to_owned();
            let members = g.world.tenants[caller.tenant_idx].role_members(&template);
            let value: Vec<Value> =
                members.iter().map(|u| json!({"@odata.type": "#microsoft.graph.user", "id": u})).collect();
            ok(
                json!({"@odata.context": format!("https://graph.microsoft.com/{version}/$metadata#directoryObjects"), "value": value}),
            )
        }
        // Legacy per-user MFA: beta only.
        ("GET", ["users", id, "authentication", "requirements"]) if version == "beta" => {
            if !caller.has_scope(&["Policy.Read.All"]) || !holds(&roles, roles::PER_USER_MFA_READ) {
                return denied();
            }
            match g.world.tenants[caller.tenant_idx]
                .users
                .iter()
                .find(|u| u.id == *id || u.upn.eq_ignore_ascii_case(id))
            {
                Some(u) => ok(json!({"perUserMfaState": u.per_user_mfa})),
                None => error(
                    404,
                    "Request_ResourceNotFound",
                    &format!(
                        "Resource '{id}' does not exist or one of its queried reference-property objects are not present."
                    ),
                ),
            }
        }
        _ => {
            error(400, "BadRequest", &format!("Resource not found for the segment '{}'.", segs.first().unwrap_or(&"")))
        }
    }
}

fn to_response(r: Reply) -> Response {
    let mut resp = (StatusCode::from_u16(r.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR), axum::Json(r.body))
        .into_response();
    for (k, v) in r.headers {
        if let (Ok(k), Ok(v)) = (header::HeaderName::try_from(k), header::HeaderValue::try_from(v)) {
            resp.headers_mut().insert(k, v);
        }
    }
    resp
}

fn bearer(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|t| t.trim().to_owned())
}

fn base_url(headers: &HeaderMap) -> String {
    format!("http://{}", headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("localhost"))
}

async fn handle(State(s): State<EmulatorState>, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let token = bearer(&headers);
    let delay = {
        let mut g = s.lock();
        *g.stats.entry("http requests".into()).or_default() += 1;
        let tenant_latency = token
            .as_deref()
            .and_then(|t| g.access.get(t))
            .map(|a| g.world.knobs(&g.world.tenants[a.tenant_idx].id).latency_ms)
            .unwrap_or(0);
        g.latency + Duration::from_millis(tenant_latency)
    };
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let path_and_query = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let (version, rel) = match path_and_query.strip_prefix("/beta") {
        Some(rel) => ("beta", rel),
        None => ("v1.0", path_and_query.strip_prefix("/v1.0").unwrap_or(path_and_query)),
    };
    let base = base_url(&headers);
    if method == Method::POST && rel.split('?').next() == Some("/$batch") {
        return to_response(batch(&s, &base, version, token.as_deref(), &body));
    }
    let reply = dispatch(&mut s.lock(), &base, version, method.as_str(), rel, token.as_deref());
    to_response(reply)
}

/// `POST /{version}/$batch`: at most 20 requests, answered in a different order than sent; each
/// URL is relative to the batch's version.
fn batch(s: &EmulatorState, base: &str, version: &str, token: Option<&str>, body: &[u8]) -> Reply {
    let mut g = s.lock();
    *g.stats.entry(format!("POST /{version}/$batch")).or_default() += 1;
    if let Err(r) = authenticate(&g, token) {
        return r;
    }
    let Ok(req) = serde_json::from_slice::<Value>(body) else {
        return error(400, "BadRequest", "Invalid JSON body.");
    };
    let Some(requests) = req["requests"].as_array() else {
        return error(400, "BadRequest", "The batch request must contain a 'requests' array.");
    };
    if requests.len() > 20 {
        return error(400, "BadRequest", "Number of requests in a batch exceeds the limit of 20.");
    }
    let mut ids = std::collections::HashSet::new();
    let mut responses = vec![];
    for r in requests {
        let (Some(id), Some(method), Some(url)) = (r["id"].as_str(), r["method"].as_str(), r["url"].as_str()) else {
            return error(400, "BadRequest", "Each batch request needs id, method and url.");
        };
        if !ids.insert(id.to_owned()) {
            return error(400, "BadRequest", &format!("Batch request ids must be unique: '{id}' is repeated."));
        }
        if !url.starts_with('/') || url.starts_with("/v1.0") || url.starts_with("/beta") || url.starts_with("http") {
            return error(
                400,
                "BadRequest",
                &format!("Invalid batch request url '{url}': use a URL relative to the version, such as /users."),
            );
        }
        *g.stats.entry("batch item".into()).or_default() += 1;
        let reply = dispatch(&mut g, base, version, method, url, token);
        let headers: serde_json::Map<String, Value> = reply.headers.into_iter().map(|(k, v)| (k, json!(v))).collect();
        responses.push(json!({"id": id, "status": reply.status, "headers": headers, "body": reply.body}));
    }
    responses.reverse();
    ok(json!({"responses": responses}))
}
