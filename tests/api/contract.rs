//! Contract tests: payloads exactly as Microsoft's documentation shows them
//! (`tests/fixtures/microsoft/`, sources in its `SOURCES.md`) decode through the service's wire
//! models, and the emulator's answers for the same calls have the same shape: no property the
//! documentation does not have, and no property of another JSON type.

use std::collections::BTreeMap;

use m365_emulator::AuthorizeMode;
use m365_integration::{
    config::Secret,
    microsoft::{
        directory::USER_SELECT,
        graph::GraphError,
        identity::{IdentityClient, IdentityError},
        models::{
            AuthenticationMethod, BatchResponse, ConditionalAccessPolicy, DelegatedAdminRelationship, Organization,
            Page, SecurityDefaultsPolicy, SubscribedSku, User, UserRegistrationDetails,
        },
    },
    sync::{enforcement, mfa, read},
};
use serde_json::{Value, json};

use crate::microsoft::{authorize, ms};

macro_rules! fixture {
    ($name:literal) => {
        include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/microsoft/", $name))
    };
}

fn decode<T: serde::de::DeserializeOwned>(text: &str) -> T {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("a documented payload does not decode: {e}"))
}

#[test]
fn documented_registration_details_decode_and_resolve() {
    let page: Page<UserRegistrationDetails> = decode(fixture!("graph/list-userregistrationdetails.json"));
    assert_eq!(page.value.len(), 3);
    let alex = &page.value[0];
    assert_eq!(alex.id, "86462606-fde0-4fc4-9e0c-a20eb73e54c6");
    assert_eq!(alex.user_principal_name.as_deref(), Some("AlexW@Contoso.com"));
    assert_eq!((alex.is_admin, alex.is_mfa_registered, alex.is_mfa_capable), (Some(false), Some(true), Some(true)));
    assert_eq!(alex.methods_registered, ["microsoftAuthenticatorPush", "softwareOneTimePasscode"]);
    let status: Vec<_> = page.value.iter().map(|r| mfa::from_report(r).status).collect();
    use entity::states::MfaStatus::*;
    assert_eq!(status, [Enabled, Disabled, Enabled]);
}

#[test]
fn documented_authentication_methods_decode_and_count_as_mfa() {
    let page: Page<AuthenticationMethod> = decode(fixture!("graph/list-authentication-methods.json"));
    let types: Vec<&str> = page.value.iter().map(|m| m.odata_type.as_str()).collect();
    assert_eq!(
        types,
        ["#microsoft.graph.fido2AuthenticationMethod", "#microsoft.graph.windowsHelloForBusinessAuthenticationMethod"]
    );
    let m = mfa::from_methods(&page.value);
    assert_eq!(m.status, entity::states::MfaStatus::Enabled);
    assert_eq!(m.methods, ["fido2", "windowsHelloForBusiness"]);
}

#[test]
fn documented_subscribed_skus_decode() {
    let page: Page<SubscribedSku> = decode(fixture!("graph/list-subscribedskus.json"));
    let first = &page.value[0];
    assert_eq!(
        (first.sku_id.as_str(), first.sku_part_number.as_str()),
        ("c7df2760-2c81-4ef7-b578-5b5392b571df", "ENTERPRISEPREMIUM")
    );
    assert_eq!(first.capability_status.as_deref(), Some("Enabled"));
    assert_eq!((first.consumed_units, first.prepaid_units.enabled, first.prepaid_units.locked_out), (14, 25, 0));
    assert_eq!(first.service_plans[0].service_plan_name, "ADALLOM_S_O365");
    let second = &page.value[1];
    assert_eq!((second.capability_status.as_deref(), second.prepaid_units.suspended), (Some("Suspended"), 25));
    assert!(!read::has_p1(&page.value), "neither SKU includes Entra ID P1");
}

#[test]
fn documented_relationships_decode_and_only_active_ones_are_customers() {
    let page: Page<DelegatedAdminRelationship> = decode(fixture!("graph/list-delegatedadminrelationships.json"));
    assert_eq!(page.value.len(), 3);
    let found = read::customers(page.value);
    // One active relationship; the terminated one and the pending reseller one are not customers.
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].tenant_id.as_str(), "52eaad04-13a2-4a2f-9ce8-93a294fadf36");
    assert_eq!(found[0].display_name, "Contoso Inc");
    assert_eq!(found[0].gdap_roles, ["dd4db9a0-cc4a-4213-9f9f-70242232d97e"]);
}

#[test]
fn documented_organization_and_users_decode() {
    let org: Organization = decode(fixture!("graph/get-organization.json"));
    assert_eq!(
        (org.id.as_str(), org.display_name.as_deref()),
        ("84841066-274d-4ec0-a5c1-276be684bdd3", Some("Contoso"))
    );
    assert_eq!(org.verified_domains.len(), 1);
    assert!(org.verified_domains[0].is_default && org.verified_domains[0].is_initial);
    assert_eq!(org.verified_domains[0].name, "Contoso.com");
    let users: Page<User> = decode(fixture!("graph/list-users.json"));
    assert_eq!(users.value[0].user_principal_name, "Adams@contoso.com");
    assert_eq!(users.value[1].mail, None, "a null mail is no mail");
    assert_eq!(users.value[1].display_name.as_deref(), Some("MOD Administrator"));
}

#[test]
fn documented_policies_decode_and_evaluate() {
    let sd: SecurityDefaultsPolicy = decode(fixture!("graph/get-security-defaults.json"));
    assert!(sd.is_enabled);
    assert_eq!(sd.id, "00000000-0000-0000-0000-000000000005");
    let page: Page<ConditionalAccessPolicy> = decode(fixture!("graph/list-conditional-access-policies.json"));
    assert_eq!(page.value.len(), 2);
    let s: Vec<_> = page.value.iter().map(enforcement::summarize).collect();
    assert_eq!((s[0].name.as_str(), s[0].state.as_str(), s[0].requires_mfa), ("SimplePolicy1", "disabled", false));
    assert!(s[1].requires_mfa && !s[1].all_users && !s[1].all_apps && !s[1].conditional);
}

#[test]
fn documented_batch_response_decodes_with_each_items_status() {
    let batch: BatchResponse = decode(fixture!("graph/json-batching-response.json"));
    let status: Vec<(&str, u16)> = batch.responses.iter().map(|r| (r.id.as_str(), r.status)).collect();
    assert_eq!(status, [("1", 200), ("2", 403), ("3", 403), ("4", 405), ("5", 200)]);
    let denied = GraphError::from_body(403, &batch.responses[2].body, None);
    assert_eq!((denied.status(), denied.code()), (Some(403), Some("Authorization_RequestDenied")));
    // An empty code (item 2) is still a 403 with its message.
    let blank = GraphError::from_body(403, &batch.responses[1].body, None);
    assert_eq!(blank.status(), Some(403));
    assert!(blank.to_string().contains("You do not have the required permissions"), "{blank}");
    let users: Page<User> = serde_json::from_value(batch.responses[4].body.clone()).unwrap();
    assert_eq!(users.value[0].user_principal_name, "LynneR@contoso.com");
    assert_eq!(batch.responses[0].retry_after(), None);
}

/// Serves one documented token-endpoint body, as the identity platform would.
async fn token_endpoint(status: u16, body: &'static str) -> url::Url {
    use axum::{Router, http::StatusCode, routing::post};
    let app = Router::new().route(
        "/{tenant}/oauth2/v2.0/token",
        post(move || async move {
            (StatusCode::from_u16(status).unwrap(), [("content-type", "application/json; charset=utf-8")], body)
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    url::Url::parse(&format!("http://{addr}")).unwrap()
}

fn identity(authority: url::Url) -> IdentityClient {
    IdentityClient::new(
        authority,
        "6731de76-14a6-49ae-97bc-6eba6914391e",
        Secret::new("secret"),
        url::Url::parse("http://localhost/myapp/").unwrap(),
        std::time::Duration::from_secs(5),
    )
}

#[tokio::test]
async fn documented_token_answers_decode_over_http() {
    let ok = identity(token_endpoint(200, fixture!("identity/token-success.json")).await);
    let t = ok.refresh("contoso.onmicrosoft.com", &Secret::new("rt")).await.unwrap();
    assert!(t.access_token.expose().starts_with("eyJ0eXAiOiJKV1Qi"));
    assert_eq!(t.refresh_token.unwrap().expose(), "AwABAAAAvPM1KaPlrEqdFSBzjqfTGAMxZGUTdM0t4B4...");
    assert_eq!(t.expires_in.as_secs(), 3599);
    assert_eq!(t.scopes, ["https%3A%2F%2Fgraph.microsoft.com%2Fmail.read"]);

    let refused = identity(token_endpoint(400, fixture!("identity/token-error-invalid-scope.json")).await);
    let e = refused.refresh("contoso.onmicrosoft.com", &Secret::new("rt")).await.unwrap_err();
    assert_eq!(e, IdentityError::Rejected { error: "invalid_scope".into(), code: 70011 });
}

/// Every property path of a JSON value with its JSON type (`a.b[].c` → `string`); a path seen
/// as null and as something else keeps the something else.
fn shape(v: &Value) -> BTreeMap<String, &'static str> {
    fn walk(v: &Value, path: String, out: &mut BTreeMap<String, &'static str>) {
        let ty = match v {
            Value::Null => "null",
            Value::Bool(_) => "boolean",
            Value::Number(_) => "number",
            Value::String(_) => "string",
            Value::Array(a) => {
                for x in a {
                    walk(x, format!("{path}[]"), out);
                }
                "array"
            }
            Value::Object(m) => {
                for (k, x) in m {
                    walk(x, if path.is_empty() { k.clone() } else { format!("{path}.{k}") }, out);
                }
                "object"
            }
        };
        let e = out.entry(path).or_insert(ty);
        if *e == "null" {
            *e = ty;
        }
    }
    let mut out = BTreeMap::new();
    walk(v, String::new(), &mut out);
    out
}

/// The emulator's answer has no property the documented one lacks (besides `documented`:
/// properties the resource's page lists but its example leaves out, with their types), and no
/// property of another type. Paths under `opaque` prefixes are not compared.
fn assert_same_shape(
    what: &str,
    documented_example: &Value,
    emulator: &Value,
    documented: &[(&str, &str)],
    opaque: &[&str],
) {
    let doc = shape(documented_example);
    let emu = shape(emulator);
    let mut problems = vec![];
    for (path, ty) in &emu {
        if opaque.iter().any(|p| path.starts_with(p)) {
            continue;
        }
        let known = doc.get(path).copied().or_else(|| documented.iter().find(|(p, _)| p == path).map(|(_, t)| *t));
        match known {
            None => problems.push(format!("{path} ({ty}) is not in Microsoft's documentation")),
            Some(d) if d != *ty && d != "null" && *ty != "null" => {
                problems.push(format!("{path} is {ty} in the emulator but {d} in Microsoft's documentation"))
            }
            _ => {}
        }
    }
    assert!(problems.is_empty(), "{what}:\n{}", problems.join("\n"));
    // The emulator answered something: at least one property beside the envelope.
    assert!(emu.len() > 3, "{what}: the emulator's answer is empty: {emulator}");
}

#[tokio::test]
async fn the_emulators_answers_have_microsofts_shapes() {
    let m = ms(4, 4).await;
    m.emu.state.set_authorize(AuthorizeMode::AutoAccept { user: "admin".into() });
    let start = m.identity.authorization_url("s");
    let q = authorize(&start.url).await;
    let code = q.iter().find(|(k, _)| k == "code").map(|(_, v)| v.clone()).unwrap();
    let partner = m.identity.exchange_code(&code, &start.pkce_verifier).await.unwrap();
    let (tenant, user) = {
        let g = m.emu.state.lock();
        let t = &g.world.customers()[0];
        (t.id.clone(), t.users[0].id.clone())
    };
    let customer = m.identity.refresh(&tenant, partner.refresh_token.as_ref().unwrap()).await.unwrap();
    let base = m.emu.base_url();
    let http = reqwest::Client::new();
    let get = |token: &Secret, path: &str| {
        let req = http.get(format!("{base}/v1.0{path}")).bearer_auth(token.expose());
        async move {
            let resp = req.send().await.unwrap();
            assert!(resp.status().is_success(), "{}", resp.status());
            resp.json::<Value>().await.unwrap()
        }
    };
    let doc = |text: &str| serde_json::from_str::<Value>(text).unwrap();

    let emu =
        get(&partner.access_token, "/tenantRelationships/delegatedAdminRelationships?$filter=status eq 'active'").await;
    assert_same_shape(
        "delegatedAdminRelationships",
        &doc(fixture!("graph/list-delegatedadminrelationships.json")),
        &emu,
        &[("@odata.nextLink", "string")],
        &[],
    );

    let token = &customer.access_token;
    let emu = get(token, "/reports/authenticationMethods/userRegistrationDetails?$top=999").await;
    assert_same_shape(
        "userRegistrationDetails",
        &doc(fixture!("graph/list-userregistrationdetails.json")),
        &emu,
        &[("@odata.nextLink", "string")],
        &[],
    );

    let emu = get(token, &format!("/users/{user}/authentication/methods")).await;
    assert_same_shape(
        "authentication methods",
        &doc(fixture!("graph/list-authentication-methods.json")),
        &emu,
        &[
            // phoneAuthenticationMethod, softwareOath…, microsoftAuthenticator… (resource pages).
            ("@odata.context", "string"),
            ("value[].phoneNumber", "string"),
            ("value[].phoneType", "string"),
            ("value[].smsSignInState", "string"),
            ("value[].deviceTag", "string"),
            ("value[].phoneAppVersion", "string"),
            ("value[].secretKey", "string"),
            ("value[].emailAddress", "string"),
            ("value[].createdDateTime", "string"),
            // passwordAuthenticationMethod: "For security, the password is always returned as null."
            ("value[].password", "string"),
        ],
        &[],
    );

    let emu = get(token, "/subscribedSkus").await;
    assert_same_shape("subscribedSkus", &doc(fixture!("graph/list-subscribedskus.json")), &emu, &[], &[]);

    let emu = get(token, "/organization?$select=id,displayName,verifiedDomains").await;
    let one = emu["value"][0].clone();
    assert_same_shape("organization", &doc(fixture!("graph/get-organization.json")), &one, &[], &[]);

    let emu = get(token, &format!("/users?$select={USER_SELECT}&$top=999")).await;
    assert_same_shape(
        "users",
        &doc(fixture!("graph/list-users.json")),
        &emu,
        // Selected properties, typed as the user resource page lists them.
        &[
            ("@odata.nextLink", "string"),
            ("value[].otherMails", "array"),
            ("value[].otherMails[]", "string"),
            ("value[].proxyAddresses", "array"),
            ("value[].proxyAddresses[]", "string"),
            ("value[].accountEnabled", "boolean"),
            ("value[].userType", "string"),
            ("value[].assignedLicenses", "array"),
            ("value[].assignedLicenses[]", "object"),
            ("value[].assignedLicenses[].skuId", "string"),
            ("value[].assignedLicenses[].disabledPlans", "array"),
            ("value[].assignedLicenses[].disabledPlans[]", "string"),
        ],
        &[],
    );

    let emu = get(token, "/policies/identitySecurityDefaultsEnforcementPolicy").await;
    assert_same_shape("security defaults", &doc(fixture!("graph/get-security-defaults.json")), &emu, &[], &[]);

    // Customer 1 has Conditional Access (customer 0 has security defaults instead).
    let (tenant1, user1) = {
        let g = m.emu.state.lock();
        let t = &g.world.customers()[1];
        (t.id.clone(), t.users[0].id.clone())
    };
    let customer1 = m.identity.refresh(&tenant1, partner.refresh_token.as_ref().unwrap()).await.unwrap();
    let emu = get(&customer1.access_token, "/identity/conditionalAccess/policies").await;
    assert_same_shape(
        "conditional access policies",
        &doc(fixture!("graph/list-conditional-access-policies.json")),
        &emu,
        // conditionalAccessConditionSet, conditionalAccessGrantControls (resource pages).
        &[
            ("value[].conditions.userRiskLevels", "array"),
            ("value[].conditions.locations.includeLocations", "array"),
            ("value[].conditions.locations.includeLocations[]", "string"),
            ("value[].conditions.locations.excludeLocations", "array"),
            ("value[].conditions.locations.excludeLocations[]", "string"),
            ("value[].conditions.users.includeUsers[]", "string"),
            ("value[].conditions.users.excludeGroups[]", "string"),
            ("value[].grantControls.authenticationStrength", "object"),
            ("value[].grantControls.authenticationStrength.id", "string"),
            ("value[].grantControls.authenticationStrength.displayName", "string"),
        ],
        &[],
    );
    // The Conditional Access service allows one request per second per tenant and says nothing
    // about when to come back.
    let again = http
        .get(format!("{base}/v1.0/identity/conditionalAccess/policies"))
        .bearer_auth(customer1.access_token.expose())
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 429);
    assert!(again.headers().get("retry-after").is_none());
    // Customer 3 has a group policy whose group has a nested group.
    let (tenant3, group) = {
        let g = m.emu.state.lock();
        let t = &g.world.customers()[3];
        (t.id.clone(), t.policies.groups[0].id.clone())
    };
    let customer3 = m.identity.refresh(&tenant3, partner.refresh_token.as_ref().unwrap()).await.unwrap();
    let emu = get(&customer3.access_token, &format!("/groups/{group}/transitiveMembers")).await;
    assert_same_shape(
        "transitiveMembers",
        &doc(fixture!("graph/list-group-transitivemembers.json")),
        &emu,
        &[("@odata.context", "string")],
        &[],
    );
    let members: Page<m365_integration::microsoft::models::DirectoryObject> = serde_json::from_value(emu).unwrap();
    assert!(members.value.iter().any(|m| m.odata_type == "#microsoft.graph.group"), "the nested group is listed too");
    let resp = http
        .get(format!("{base}/beta/users/{user1}/authentication/requirements"))
        .bearer_auth(customer1.access_token.expose())
        .send()
        .await
        .unwrap();
    let state: Value = resp.json().await.unwrap();
    assert!(["disabled", "enabled", "enforced"].contains(&state["perUserMfaState"].as_str().unwrap()), "{state}");

    let batch = json!({"requests": [
        {"id": "1", "method": "GET", "url": format!("/users/{user}/authentication/methods")},
        {"id": "2", "method": "GET", "url": "/users/00000000-0000-0000-0000-000000000000/authentication/methods"},
    ]});
    let resp = http.post(format!("{base}/v1.0/$batch")).bearer_auth(token.expose()).json(&batch).send().await.unwrap();
    let emu: Value = resp.json().await.unwrap();
    // Item bodies and header names differ with the request; the envelope must not.
    assert_same_shape(
        "$batch",
        &doc(fixture!("graph/json-batching-response.json")),
        &emu,
        &[],
        &["responses[].body.", "responses[].headers."],
    );
    for item in emu["responses"].as_array().unwrap() {
        assert!(
            item["headers"].as_object().unwrap().values().all(Value::is_string),
            "header values are strings: {item}"
        );
    }
}

#[test]
fn the_shape_check_catches_inventions_and_type_changes() {
    let doc = json!({"value": [{"id": "a", "isAdmin": false, "mail": null}]});
    let same = json!({"value": [{"id": "b", "isAdmin": true, "mail": "x@y.z"}, {"id": "c"}]});
    assert_same_shape("same", &doc, &same, &[], &[]);
    let invented = json!({"value": [{"id": "b", "isAdmin": true, "isAdministrator": true}]});
    let r = std::panic::catch_unwind(|| assert_same_shape("invented", &doc, &invented, &[], &[]));
    assert!(r.is_err(), "a property Microsoft does not document is caught");
    let retyped = json!({"value": [{"id": "b", "isAdmin": "false", "mail": "m"}]});
    let r = std::panic::catch_unwind(|| assert_same_shape("retyped", &doc, &retyped, &[], &[]));
    assert!(r.is_err(), "a property of another type is caught");
}
