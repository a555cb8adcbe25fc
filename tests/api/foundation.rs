//! Foundation: auth, isolation, feature flag, clients and contacts, GraphQL over HTTP, limits.

use m365_integration::auth::AuthKeys;
use m365_integration::config::Secret;
use serde_json::{Value, json};

use crate::helpers::{JWT_SECRET, TestApp, data, error_code};

const INTEGRATION: &str =
    "{ m365Integration { enabled canManage connection { status } sync { state cooldownRemainingSeconds } } }";

const UPSERT_CLIENTS: &str =
    "mutation($c: [ClientInput!]!) { upsertClients(clients: $c) { id source externalId name domains } }";
const UPSERT_CONTACTS: &str =
    "mutation($c: [ContactInput!]!) { upsertContacts(contacts: $c) { id clientId name emails } }";
const CLIENTS: &str = "query($first: Int, $after: String, $search: String) { clients(first: $first, after: $after, search: $search) { totalCount pageInfo { hasNextPage endCursor } edges { cursor node { id name domains contacts { name emails } } } } }";

#[tokio::test]
async fn health_and_readiness() {
    let app = TestApp::spawn().await;
    let r = app.http.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let r = app.http.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers().contains_key("x-request-id"), "every response carries a request id");
}

#[tokio::test]
async fn every_auth_failure_is_unauthenticated() {
    let app = TestApp::spawn().await;
    let acc = app.account("A", true).await;
    // No token.
    assert_eq!(error_code(&app.gql(None, INTEGRATION, json!({})).await), Some("UNAUTHENTICATED"));
    // Signed with another secret.
    let forged =
        AuthKeys::new(&Secret::new("not-the-secret")).mint(acc, "mallory", &[], std::time::Duration::from_secs(60));
    let body = app.gql(Some(&forged), INTEGRATION, json!({})).await;
    assert_eq!(error_code(&body), Some("UNAUTHENTICATED"));
    assert!(body["errors"][0]["message"].as_str().unwrap().contains("signature"));
    // Expired.
    let old =
        AuthKeys::new(&Secret::new(JWT_SECRET)).mint_with_exp(acc, "u", &[], chrono::Utc::now().timestamp() - 120);
    let body = app.gql(Some(&old), INTEGRATION, json!({})).await;
    assert_eq!(error_code(&body), Some("UNAUTHENTICATED"));
    assert!(body["errors"][0]["message"].as_str().unwrap().contains("expired"));
    // Garbage and wrong scheme.
    assert_eq!(error_code(&app.gql(Some("x.y.z"), INTEGRATION, json!({})).await), Some("UNAUTHENTICATED"));
    let r: Value = app
        .http
        .post(app.url("/graphql"))
        .header("authorization", "Basic Zm9vOmJhcg==")
        .json(&json!({"query": INTEGRATION}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(error_code(&r), Some("UNAUTHENTICATED"));
    // A valid signature for an account that does not exist.
    assert_eq!(
        error_code(&app.gql(Some(&app.admin_token(9999)), INTEGRATION, json!({})).await),
        Some("UNAUTHENTICATED")
    );
    // Valid token without manage_tenant_settings: reads work, mutations are FORBIDDEN.
    let reader = app.token(acc, &[]);
    let d = data(app.gql(Some(&reader), INTEGRATION, json!({})).await);
    assert_eq!(d["m365Integration"]["canManage"], false);
    let body =
        app.gql(Some(&reader), UPSERT_CLIENTS, json!({"c": [{"source":"cw","externalId":"1","name":"X"}]})).await;
    assert_eq!(error_code(&body), Some("FORBIDDEN"));
    assert_eq!(
        data(app.gql(Some(&reader), CLIENTS, json!({})).await)["clients"]["totalCount"],
        0,
        "nothing was stored"
    );
}

#[tokio::test]
async fn integration_reports_the_feature_flag_and_permission() {
    let app = TestApp::spawn().await;
    let on = app.account("On", true).await;
    let off = app.account("Off", false).await;
    let d = data(app.gql(Some(&app.admin_token(on)), INTEGRATION, json!({})).await);
    assert_eq!(d["m365Integration"]["enabled"], true);
    assert_eq!(d["m365Integration"]["canManage"], true);
    assert_eq!(d["m365Integration"]["connection"], Value::Null);
    assert_eq!(d["m365Integration"]["sync"]["state"], "IDLE");
    let d = data(app.gql(Some(&app.admin_token(off)), INTEGRATION, json!({})).await);
    assert_eq!(d["m365Integration"]["enabled"], false);
    // Microsoft 365 data of an account without the tab is refused with FEATURE_DISABLED.
    let body = app.gql(Some(&app.admin_token(off)), "{ m365SyncRuns { totalCount } }", json!({})).await;
    assert_eq!(error_code(&body), Some("FEATURE_DISABLED"));
    let body = app.gql(Some(&app.admin_token(on)), "{ m365SyncRuns { totalCount } }", json!({})).await;
    assert_eq!(data(body)["m365SyncRuns"]["totalCount"], 0);
    // Switching the tab on through the same code path the CLI uses.
    m365_integration::db::accounts::set_m365_enabled(&app.state.db, off, true).await.unwrap();
    let d = data(app.gql(Some(&app.admin_token(off)), INTEGRATION, json!({})).await);
    assert_eq!(d["m365Integration"]["enabled"], true);
}

fn clients_input() -> Value {
    json!([
        {"source": "ConnectWise", "externalId": "100", "name": " Contoso Ltd ", "domains": ["Contoso.com", "contoso.co.uk"]},
        {"source": "connectwise", "externalId": "200", "name": "Fabrikam", "domains": []},
    ])
}

#[tokio::test]
async fn upserts_are_idempotent_and_update_in_place() {
    let app = TestApp::spawn().await;
    let acc = app.account("A", true).await;
    let t = app.admin_token(acc);
    let first = data(app.gql(Some(&t), UPSERT_CLIENTS, json!({"c": clients_input()})).await);
    let rows = first["upsertClients"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["source"], "connectwise");
    assert_eq!(rows[0]["name"], "Contoso Ltd");
    assert_eq!(rows[0]["domains"], json!(["contoso.com", "contoso.co.uk"]));
    let again = data(app.gql(Some(&t), UPSERT_CLIENTS, json!({"c": clients_input()})).await);
    assert_eq!(first["upsertClients"][0]["id"], again["upsertClients"][0]["id"], "same key, same row");
    let renamed = data(
        app.gql(
            Some(&t),
            UPSERT_CLIENTS,
            json!({"c": [{"source":"connectwise","externalId":"100","name":"Contoso Limited"}]}),
        )
        .await,
    );
    assert_eq!(renamed["upsertClients"][0]["id"], first["upsertClients"][0]["id"]);
    assert_eq!(renamed["upsertClients"][0]["domains"], json!([]));
    let list = data(app.gql(Some(&t), CLIENTS, json!({})).await);
    assert_eq!(list["clients"]["totalCount"], 2);
    assert_eq!(list["clients"]["edges"][0]["node"]["name"], "Contoso Limited");

    let contacts = json!([
        {"source":"connectwise","externalId":"c1","clientExternalId":"100","name":"Alice","emails":["Alice@Contoso.com"," alice.smith@contoso.com "]},
        {"source":"connectwise","externalId":"c2","clientExternalId":"200","name":"Bob","emails":["bob@fabrikam.com"]},
    ]);
    let c1 = data(app.gql(Some(&t), UPSERT_CONTACTS, json!({"c": contacts})).await);
    let c2 = data(app.gql(Some(&t), UPSERT_CONTACTS, json!({"c": contacts})).await);
    assert_eq!(c1, c2, "idempotent");
    assert_eq!(c1["upsertContacts"][0]["emails"], json!(["alice@contoso.com", "alice.smith@contoso.com"]));
    let list = data(app.gql(Some(&t), CLIENTS, json!({})).await);
    assert_eq!(list["clients"]["edges"][0]["node"]["contacts"][0]["name"], "Alice");
    assert_eq!(list["clients"]["edges"][1]["node"]["contacts"][0]["name"], "Bob");
}

#[tokio::test]
async fn a_bad_item_stores_nothing_and_is_named() {
    let app = TestApp::spawn().await;
    let acc = app.account("A", true).await;
    let t = app.admin_token(acc);
    let mut items = clients_input();
    items
        .as_array_mut()
        .unwrap()
        .push(json!({"source":"cw","externalId":"300","name":"Bad","domains":["not a domain"]}));
    let body = app.gql(Some(&t), UPSERT_CLIENTS, json!({"c": items})).await;
    assert_eq!(error_code(&body), Some("BAD_USER_INPUT"));
    assert_eq!(body["errors"][0]["extensions"]["field"], "clients[2].domains[0]");
    assert_eq!(data(app.gql(Some(&t), CLIENTS, json!({})).await)["clients"]["totalCount"], 0);

    for (bad, field) in [
        (json!({"source":"","externalId":"1","name":"X"}), "clients[0].source"),
        (json!({"source":"cw","externalId":"1","name":"x".repeat(201)}), "clients[0].name"),
        (json!({"source":"cw","externalId":" ","name":"X"}), "clients[0].externalId"),
    ] {
        let body = app.gql(Some(&t), UPSERT_CLIENTS, json!({"c": [bad]})).await;
        assert_eq!(body["errors"][0]["extensions"]["field"], field);
    }
    let dup = json!([{"source":"cw","externalId":"1","name":"X"},{"source":"CW","externalId":"1","name":"Y"}]);
    assert_eq!(
        app.gql(Some(&t), UPSERT_CLIENTS, json!({"c": dup})).await["errors"][0]["extensions"]["field"],
        "clients[1].externalId"
    );
    let many: Vec<Value> = (0..1001).map(|i| json!({"source":"cw","externalId": i.to_string(),"name":"X"})).collect();
    assert_eq!(error_code(&app.gql(Some(&t), UPSERT_CLIENTS, json!({"c": many})).await), Some("BAD_USER_INPUT"));

    data(app.gql(Some(&t), UPSERT_CLIENTS, json!({"c": clients_input()})).await);
    let contacts = json!([
        {"source":"connectwise","externalId":"c1","clientExternalId":"100","name":"Alice","emails":["alice@contoso.com"]},
        {"source":"connectwise","externalId":"c2","clientExternalId":"999","name":"Ghost","emails":["g@contoso.com"]},
    ]);
    let body = app.gql(Some(&t), UPSERT_CONTACTS, json!({"c": contacts})).await;
    assert_eq!(body["errors"][0]["extensions"]["field"], "contacts[1].clientExternalId");
    let bad_mail =
        json!([{"source":"connectwise","externalId":"c1","clientExternalId":"100","name":"Alice","emails":["alice@"]}]);
    assert_eq!(
        app.gql(Some(&t), UPSERT_CONTACTS, json!({"c": bad_mail})).await["errors"][0]["extensions"]["field"],
        "contacts[0].emails[0]"
    );
    let no_mail =
        json!([{"source":"connectwise","externalId":"c1","clientExternalId":"100","name":"Alice","emails":[]}]);
    assert_eq!(
        app.gql(Some(&t), UPSERT_CONTACTS, json!({"c": no_mail})).await["errors"][0]["extensions"]["field"],
        "contacts[0].emails"
    );
    let list = data(app.gql(Some(&t), CLIENTS, json!({})).await);
    assert_eq!(list["clients"]["edges"][0]["node"]["contacts"], json!([]), "the good contact was not stored either");
}

#[tokio::test]
async fn accounts_never_see_each_other() {
    let app = TestApp::spawn().await;
    let a = app.account("A", true).await;
    let b = app.account("B", true).await;
    let (ta, tb) = (app.admin_token(a), app.admin_token(b));
    data(app.gql(Some(&ta), UPSERT_CLIENTS, json!({"c": clients_input()})).await);
    data(app.gql(Some(&ta), UPSERT_CONTACTS, json!({"c": [{"source":"connectwise","externalId":"c1","clientExternalId":"100","name":"Alice","emails":["alice@contoso.com"]}]})).await);
    assert_eq!(data(app.gql(Some(&tb), CLIENTS, json!({})).await)["clients"]["totalCount"], 0);
    // B cannot attach a contact to A's client, even knowing its external id.
    let body = app.gql(Some(&tb), UPSERT_CONTACTS, json!({"c": [{"source":"connectwise","externalId":"c9","clientExternalId":"100","name":"Eve","emails":["eve@evil.com"]}]})).await;
    assert_eq!(error_code(&body), Some("BAD_USER_INPUT"));
    // Same keys in B create B's own rows and leave A's untouched.
    data(
        app.gql(
            Some(&tb),
            UPSERT_CLIENTS,
            json!({"c": [{"source":"connectwise","externalId":"100","name":"B's client"}]}),
        )
        .await,
    );
    let a_list = data(app.gql(Some(&ta), CLIENTS, json!({})).await);
    assert_eq!(a_list["clients"]["edges"][0]["node"]["name"], "Contoso Ltd");
    assert_eq!(a_list["clients"]["edges"][0]["node"]["contacts"][0]["name"], "Alice");
    let b_list = data(app.gql(Some(&tb), CLIENTS, json!({})).await);
    assert_eq!(b_list["clients"]["totalCount"], 1);
    assert_eq!(b_list["clients"]["edges"][0]["node"]["contacts"], json!([]));
    // A cursor from A's list does not reveal A's rows to B.
    let cursor = a_list["clients"]["edges"][0]["cursor"].clone();
    let page = data(app.gql(Some(&tb), CLIENTS, json!({"after": cursor})).await);
    assert!(page["clients"]["edges"].as_array().unwrap().iter().all(|e| e["node"]["name"] == "B's client"));
}

#[tokio::test]
async fn client_pages_search_and_bounds() {
    let app = TestApp::spawn().await;
    let t = app.admin_token(app.account("A", true).await);
    let items: Vec<Value> =
        (0..7).map(|i| json!({"source":"cw","externalId": i.to_string(),"name": format!("Client {i}")})).collect();
    data(app.gql(Some(&t), UPSERT_CLIENTS, json!({"c": items})).await);
    let mut seen = vec![];
    let mut after = Value::Null;
    loop {
        let page = data(app.gql(Some(&t), CLIENTS, json!({"first": 3, "after": after})).await);
        assert_eq!(page["clients"]["totalCount"], 7);
        for e in page["clients"]["edges"].as_array().unwrap() {
            seen.push(e["node"]["name"].as_str().unwrap().to_owned());
        }
        if page["clients"]["pageInfo"]["hasNextPage"] == false {
            break;
        }
        after = page["clients"]["pageInfo"]["endCursor"].clone();
    }
    assert_eq!(seen, (0..7).map(|i| format!("Client {i}")).collect::<Vec<_>>());
    let found = data(app.gql(Some(&t), CLIENTS, json!({"search": "CLIENT 3"})).await);
    assert_eq!(found["clients"]["totalCount"], 1);
    let none = data(app.gql(Some(&t), CLIENTS, json!({"search": "%"})).await);
    assert_eq!(none["clients"]["totalCount"], 0, "LIKE wildcards are escaped");
    let body = app.gql(Some(&t), CLIENTS, json!({"first": 501})).await;
    assert_eq!(error_code(&body), Some("BAD_USER_INPUT"));
    let body = app.gql(Some(&t), CLIENTS, json!({"first": 2_000_000_000})).await;
    assert_eq!(error_code(&body), Some("BAD_USER_INPUT"), "huge first is refused, not allocated: {body}");
    let body = app.gql(Some(&t), CLIENTS, json!({"after": "bm90LWEtY3Vyc29y"})).await;
    assert_eq!(error_code(&body), Some("BAD_USER_INPUT"));
}

#[tokio::test]
async fn graphql_over_http_rules() {
    let app = TestApp::spawn().await;
    let t = app.admin_token(app.account("A", true).await);
    // A mutation over GET is refused with 405.
    let r = app
        .http
        .get(app.url("/graphql"))
        .bearer_auth(&t)
        .query(&[("query", "mutation { upsertClients(clients: []) { id } }")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);
    assert_eq!(r.headers()["allow"], "POST");
    // A query over GET works.
    let r = app
        .http
        .get(app.url("/graphql"))
        .bearer_auth(&t)
        .query(&[("query", "{ m365Integration { enabled } }")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["data"]["m365Integration"]["enabled"], true);
    // POST without a JSON content type (e.g. a cross-site form) is 415.
    let r = app
        .http
        .post(app.url("/graphql"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("query=%7Bclients%7BtotalCount%7D%7D")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 415);
    let r = app.http.post(app.url("/graphql")).header("content-type", "text/plain").body("{}").send().await.unwrap();
    assert_eq!(r.status(), 415);
    // Oversize body is 413.
    let big = json!({"query": "{ clients { totalCount } }", "variables": {"pad": "x".repeat(2 * 1024 * 1024)}});
    let r = app.http.post(app.url("/graphql")).json(&big).send().await.unwrap();
    assert_eq!(r.status(), 413);
    assert_eq!(error_code(&r.json().await.unwrap()), Some("PAYLOAD_TOO_LARGE"));
    // Parse and validation errors: 400 under application/graphql-response+json, no data entry.
    let r = app
        .http
        .post(app.url("/graphql"))
        .header("accept", "application/graphql-response+json")
        .json(&json!({"query": "{ clients { "}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("application/graphql-response+json"));
    let body: Value = r.json().await.unwrap();
    assert!(body.get("data").is_none());
    assert_eq!(error_code(&body), Some("BAD_USER_INPUT"));
    let r = app
        .http
        .post(app.url("/graphql"))
        .header("accept", "application/graphql-response+json")
        .json(&json!({"query": "{ noSuchField }"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    // ...and 200 under legacy application/json.
    let r = app
        .http
        .post(app.url("/graphql"))
        .header("accept", "application/json")
        .json(&json!({"query": "{ noSuchField }"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("application/json"));
    // A field error keeps 200 and data under graphql-response+json.
    let r = app
        .http
        .post(app.url("/graphql"))
        .header("accept", "application/graphql-response+json")
        .json(&json!({"query": "{ m365Integration { enabled } }"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // Unacceptable Accept is 406; bad JSON is 400.
    let r = app
        .http
        .post(app.url("/graphql"))
        .header("accept", "text/csv")
        .json(&json!({"query": "{ __typename }"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 406);
    let r = app
        .http
        .post(app.url("/graphql"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    // A browser gets GraphiQL.
    let r = app.http.get(app.url("/graphql")).header("accept", "text/html").send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().to_lowercase().contains("graphiql"));
}

#[tokio::test]
async fn query_limits_answer_with_clear_errors() {
    let app = TestApp::spawn().await;
    let t = app.admin_token(app.account("A", true).await);
    let deep = format!(
        "{{ __schema {{ types {{ fields {{ type {} }} }} }} }}",
        "{ ofType ".repeat(12) + "{ name }" + &" }".repeat(12)
    );
    let body = app.gql(Some(&t), &deep, json!({})).await;
    assert!(body["errors"][0]["message"].as_str().unwrap().to_lowercase().contains("deep"), "{body}");
    assert_eq!(error_code(&body), Some("QUERY_LIMIT_EXCEEDED"));
    assert_eq!(body["errors"][0]["extensions"]["limit"], "depth");
    let aliases: String = (0..31).map(|i| format!("a{i}: enabled ")).collect();
    let body = app.gql(Some(&t), &format!("{{ m365Integration {{ {aliases} }} }}"), json!({})).await;
    assert!(body["errors"][0]["message"].as_str().unwrap().contains("aliases"), "{body}");
    let roots: String = (0..21).map(|i| format!("r{i}: __typename ")).collect();
    let body = app.gql(Some(&t), &format!("{{ {roots} }}"), json!({})).await;
    assert!(body["errors"][0]["message"].as_str().unwrap().contains("root fields"), "{body}");
    let complex = "{ clients(first: 500) { edges { node { id name domains contacts { id name emails externalId source clientId } } } } }";
    let body = app.gql(Some(&t), complex, json!({})).await;
    assert!(body["errors"][0]["message"].as_str().unwrap().to_lowercase().contains("complex"), "{body}");
    let app2 = TestApp::spawn_with(|c| c.graphql_introspection = false).await;
    let t2 = app2.admin_token(app2.account("A", true).await);
    let body = app2.gql(Some(&t2), "{ __schema { types { name } } }", json!({})).await;
    assert!(body.get("errors").is_some() || body["data"]["__schema"].is_null(), "introspection is off: {body}");
}
