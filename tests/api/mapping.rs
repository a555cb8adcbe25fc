//! Tenant mapping, suggestions, contact matching, and the read API (users, licenses, coverage),
//! including account isolation on every root field and the statement-count test.

use std::sync::atomic::Ordering;

use m365_emulator::world::WorldSpec;
use serde_json::{Value, json};

use crate::helpers::{TestApp, data, error_code};

const TENANTS: &str = "query($f: M365TenantFilter) { m365Tenants(first: 50, filter: $f) { totalCount edges { node { id tenantId displayName defaultDomain domains gdapRoles userCount syncStatus mfaSource mapping { method client { name } } suggestions { confidence reasons client { id name } } } } } }";
const SUMMARY: &str = "{ m365TenantMappingSummary { total mapped unmapped } }";
const MAP: &str = "mutation($t: ID!, $c: ID!) { createTenantMapping(tenantId: $t, clientId: $c) { method createdBy tenant { displayName } client { name } } }";

/// A synced account with clients shaped like the emulated tenants.
async fn setup(app: &TestApp) -> (i64, String, Vec<Value>) {
    let acc = app.account("A", true).await;
    let t = app.admin_token(acc);
    app.connected(acc).await;
    let tenants: Vec<Value> = data(app.gql(Some(&t), TENANTS, json!({})).await)["m365Tenants"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"].clone())
        .collect();
    (acc, t, tenants)
}

#[tokio::test]
async fn suggestions_rank_domains_then_names() {
    let app = TestApp::spawn().await;
    let (_, t, tenants) = setup(&app).await;
    let t0 = &tenants[0];
    let domain = t0["defaultDomain"].as_str().unwrap().to_owned();
    let name = t0["displayName"].as_str().unwrap().to_owned();
    let base = name.split_whitespace().next().unwrap().to_owned();
    let clients = app
        .upsert_clients(
            &t,
            json!([
                {"source": "cw", "externalId": "1", "name": "Unrelated Name", "domains": [domain]},
                {"source": "cw", "externalId": "2", "name": format!("{base}, Inc.")},
                {"source": "cw", "externalId": "3", "name": "Nothing Alike At All"},
            ]),
        )
        .await;
    data(app.gql(Some(&t), "mutation($c: [ContactInput!]!) { upsertContacts(contacts: $c) { id } }", json!({"c": [
        {"source": "cw", "externalId": "k", "clientExternalId": "3", "name": "K", "emails": [format!("k@{}", tenants[1]["defaultDomain"].as_str().unwrap())]}
    ]})).await);
    let list = data(app.gql(Some(&t), TENANTS, json!({})).await);
    let nodes: Vec<&Value> = list["m365Tenants"]["edges"].as_array().unwrap().iter().map(|e| &e["node"]).collect();
    let s0 = &nodes[0]["suggestions"];
    assert_eq!(s0[0]["client"]["id"], clients[0]["id"], "the shared domain ranks first: {s0}");
    assert_eq!(s0[0]["confidence"], 95);
    assert!(s0[0]["reasons"][0].as_str().unwrap().contains(&domain));
    if base.len() > 3 {
        assert_eq!(s0[1]["client"]["id"], clients[1]["id"], "then the name: {s0}");
    }
    // Tenant 1: a contact of client 3 has its domain.
    let s1 = &nodes[1]["suggestions"];
    assert_eq!(s1[0]["client"]["id"], clients[2]["id"]);
    assert_eq!(s1[0]["confidence"], 85);
}

#[tokio::test]
async fn mapping_links_users_to_contacts_and_unmapping_removes_the_links() {
    let app = TestApp::spawn().await;
    let (_, t, tenants) = setup(&app).await;
    let tenant = &tenants[0];
    let world = app.emu.state.lock().world.clone();
    let wt = world.customers().iter().find(|w| w.id == tenant["tenantId"]).unwrap().clone();
    let members: Vec<_> = wt.users.iter().filter(|u| u.user_type == "Member").collect();
    let alias = members[1]
        .proxy_addresses
        .iter()
        .find(|p| p.starts_with("smtp:"))
        .map(|p| p[5..].to_owned())
        .unwrap_or_else(|| members[1].upn.clone());
    let clients = app.upsert_clients(&t, json!([{"source": "cw", "externalId": "1", "name": "C"}])).await;
    data(app.gql(Some(&t), "mutation($c: [ContactInput!]!) { upsertContacts(contacts: $c) { id } }", json!({"c": [
        {"source": "cw", "externalId": "a", "clientExternalId": "1", "name": "By mail", "emails": [members[0].upn.to_uppercase()]},
        {"source": "cw", "externalId": "b", "clientExternalId": "1", "name": "By alias", "emails": [alias.clone()]},
        {"source": "cw", "externalId": "c1", "clientExternalId": "1", "name": "Twin 1", "emails": [members[2].upn.clone()]},
        {"source": "cw", "externalId": "c2", "clientExternalId": "1", "name": "Twin 2", "emails": [members[2].upn.clone()]},
    ]})).await);
    let users_q = "query($f: M365UserFilter) { m365Users(first: 100, filter: $f) { totalCount edges { node { userPrincipalName contact { name } contactMatch { status matchedAddress } client { name } } } } }";
    let linked = |v: &Value| {
        v["m365Users"]["edges"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["node"]["contactMatch"]["status"] == "LINKED")
            .count()
    };
    // Unmapped: nobody is linked.
    let before = data(app.gql(Some(&t), users_q, json!({"f": {"tenantId": tenant["id"]}})).await);
    assert_eq!(linked(&before), 0);
    let m = data(app.gql(Some(&t), MAP, json!({"t": tenant["id"], "c": clients[0]["id"]})).await);
    assert_eq!(m["createTenantMapping"]["method"], "MANUAL");
    let after = data(app.gql(Some(&t), users_q, json!({"f": {"tenantId": tenant["id"]}})).await);
    let by_upn = |upn: &str| {
        after["m365Users"]["edges"].as_array().unwrap().iter().find(|e| e["node"]["userPrincipalName"] == upn).unwrap()
            ["node"]
            .clone()
    };
    let u0 = by_upn(&members[0].upn);
    assert_eq!(u0["contact"]["name"], "By mail");
    assert_eq!(u0["contactMatch"]["matchedAddress"], members[0].upn.to_lowercase());
    assert_eq!(u0["client"]["name"], "C");
    assert_eq!(by_upn(&members[1].upn)["contact"]["name"], "By alias");
    let twin = by_upn(&members[2].upn);
    assert_eq!(twin["contactMatch"]["status"], "AMBIGUOUS");
    assert_eq!(twin["contact"], Value::Null);
    assert_eq!(linked(&after), 2);
    let f = data(app.gql(Some(&t), users_q, json!({"f": {"contactLinked": true}})).await);
    assert_eq!(f["m365Users"]["totalCount"], 2);
    let by_client = data(app.gql(Some(&t), users_q, json!({"f": {"clientId": clients[0]["id"]}})).await);
    assert_eq!(by_client["m365Users"]["totalCount"], after["m365Users"]["totalCount"]);
    // A contact added later links at once.
    data(app.gql(Some(&t), "mutation($c: [ContactInput!]!) { upsertContacts(contacts: $c) { id } }", json!({"c": [
        {"source": "cw", "externalId": "d", "clientExternalId": "1", "name": "Late", "emails": [members[3].upn.clone()]},
    ]})).await);
    assert_eq!(linked(&data(app.gql(Some(&t), users_q, json!({"f": {"tenantId": tenant["id"]}})).await)), 3);
    // Links survive a resync.
    app.state.clock.advance(std::time::Duration::from_secs(31));
    data(app.gql(Some(&t), "mutation { triggerM365Sync { id } }", json!({})).await);
    app.wait_idle(&t).await;
    assert_eq!(linked(&data(app.gql(Some(&t), users_q, json!({"f": {"tenantId": tenant["id"]}})).await)), 3);
    // Unmapping removes the links.
    assert_eq!(
        data(
            app.gql(Some(&t), "mutation($t: ID!) { deleteTenantMapping(tenantId: $t) }", json!({"t": tenant["id"]}))
                .await
        )["deleteTenantMapping"],
        true
    );
    let gone = data(app.gql(Some(&t), users_q, json!({"f": {"tenantId": tenant["id"]}})).await);
    assert_eq!(linked(&gone), 0);
    assert!(
        gone["m365Users"]["edges"].as_array().unwrap().iter().all(|e| e["node"]["contactMatch"]["status"] == "NONE")
    );
    assert_eq!(
        error_code(
            &app.gql(Some(&t), "mutation($t: ID!) { deleteTenantMapping(tenantId: $t) }", json!({"t": tenant["id"]}))
                .await
        ),
        Some("NOT_FOUND")
    );
}

#[tokio::test]
async fn summary_bulk_all_or_nothing_and_accepting_suggestions() {
    let app = TestApp::spawn().await;
    let (_, t, tenants) = setup(&app).await;
    let clients = app
        .upsert_clients(
            &t,
            json!([
                {"source": "cw", "externalId": "1", "name": "One", "domains": [tenants[2]["defaultDomain"]]},
                {"source": "cw", "externalId": "2", "name": "Two"},
            ]),
        )
        .await;
    assert_eq!(
        data(app.gql(Some(&t), SUMMARY, json!({})).await)["m365TenantMappingSummary"],
        json!({"total": 4, "mapped": 0, "unmapped": 4})
    );
    let bulk = "mutation($m: [TenantMappingInput!]!) { bulkCreateTenantMappings(mappings: $m) { mappings { method tenant { id } client { id } } } }";
    // One bad item: named, and nothing stored.
    let body = app
        .gql(
            Some(&t),
            bulk,
            json!({"m": [
                {"tenantId": tenants[0]["id"], "clientId": clients[0]["id"]},
                {"tenantId": tenants[1]["id"], "clientId": "999999"},
            ]}),
        )
        .await;
    assert_eq!(error_code(&body), Some("BAD_USER_INPUT"));
    assert_eq!(body["errors"][0]["extensions"]["field"], "mappings[1].clientId");
    assert_eq!(data(app.gql(Some(&t), SUMMARY, json!({})).await)["m365TenantMappingSummary"]["mapped"], 0);
    let dup = app
        .gql(
            Some(&t),
            bulk,
            json!({"m": [
                {"tenantId": tenants[0]["id"], "clientId": clients[0]["id"]},
                {"tenantId": tenants[0]["id"], "clientId": clients[1]["id"]},
            ]}),
        )
        .await;
    assert_eq!(dup["errors"][0]["extensions"]["field"], "mappings[1].tenantId");
    let ok = data(
        app.gql(
            Some(&t),
            bulk,
            json!({"m": [
                {"tenantId": tenants[0]["id"], "clientId": clients[0]["id"]},
                {"tenantId": tenants[1]["id"], "clientId": clients[1]["id"]},
            ]}),
        )
        .await,
    );
    assert_eq!(ok["bulkCreateTenantMappings"]["mappings"][1]["method"], "BULK");
    assert_eq!(
        data(app.gql(Some(&t), SUMMARY, json!({})).await)["m365TenantMappingSummary"],
        json!({"total": 4, "mapped": 2, "unmapped": 2})
    );
    // One client per tenant: mapping a mapped tenant again is a conflict.
    assert_eq!(
        error_code(&app.gql(Some(&t), MAP, json!({"t": tenants[0]["id"], "c": clients[1]["id"]})).await),
        Some("CONFLICT")
    );
    // Filter by mapped.
    let unmapped = data(app.gql(Some(&t), TENANTS, json!({"f": {"mapped": false}})).await);
    assert_eq!(unmapped["m365Tenants"]["totalCount"], 2);
    // Accept suggestions above a threshold: tenant 2 matches client One by domain (95, lowered
    // by 20 because One is already mapped to tenant 0); tenant 3 has no suggestion.
    let accept = "mutation($ids: [ID!]!, $min: Int) { acceptTenantSuggestions(tenantIds: $ids, minConfidence: $min) { mappings { method client { name } } skipped { tenantId reason } } }";
    let r = data(
        app.gql(Some(&t), accept, json!({"ids": [tenants[2]["id"], tenants[3]["id"], tenants[0]["id"]], "min": 70}))
            .await,
    );
    let p = &r["acceptTenantSuggestions"];
    assert_eq!(p["mappings"].as_array().unwrap().len(), 1, "{p}");
    assert_eq!(p["mappings"][0]["method"], "SUGGESTION");
    assert_eq!(p["mappings"][0]["client"]["name"], "One");
    assert_eq!(p["skipped"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn licenses_have_friendly_names_and_coverage_is_evidence() {
    let app = TestApp::spawn_world(WorldSpec { seed: 21, tenants: 10, users_per_tenant: 12 }, |_| {}).await;
    let (_, t, tenants) = setup(&app).await;
    m365_integration::licenses::refresh(&app.state).await.unwrap();
    let lic = data(app.gql(Some(&t), "query($t: ID) { m365Licenses(tenantId: $t) { skuId skuPartNumber friendlyName enabledUnits consumedUnits availableUnits assignedUsers tenant { id } } }", json!({"t": tenants[0]["id"]})).await);
    let rows = lic["m365Licenses"].as_array().unwrap();
    assert!(!rows.is_empty());
    for l in rows {
        assert_eq!(l["tenant"]["id"], tenants[0]["id"]);
        assert_eq!(
            l["availableUnits"].as_i64().unwrap(),
            l["enabledUnits"].as_i64().unwrap() - l["consumedUnits"].as_i64().unwrap()
        );
        assert_eq!(l["assignedUsers"], l["consumedUnits"]);
        if l["skuPartNumber"] == "EXCHANGESTANDARD" {
            assert_eq!(l["friendlyName"], "EXCHANGESTANDARD", "unknown to the CSV: the part number");
        } else {
            assert_ne!(l["friendlyName"], l["skuPartNumber"], "known SKUs get their product name: {l}");
            assert!(!l["friendlyName"].as_str().unwrap().contains('-'), "never a bare GUID");
        }
    }
    let all = data(app.gql(Some(&t), "{ m365Licenses { skuId } }", json!({})).await);
    assert!(all["m365Licenses"].as_array().unwrap().len() > rows.len());
    // Coverage: figures equal a recount of the users.
    let users = data(app.gql(Some(&t), "{ m365Users(first: 500) { edges { node { accountEnabled isAdmin isLicensed userType mfa { status } } } } }", json!({})).await);
    let nodes: Vec<&Value> = users["m365Users"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["node"])
        .filter(|n| n["accountEnabled"] == true)
        .collect();
    let count = |s: &str| nodes.iter().filter(|n| n["mfa"]["status"] == s).count() as i64;
    let cov = data(app.gql(Some(&t), "{ mfaCoverage { users enabled disabled unavailable coveragePercent adminsWithoutMfa licensedMembersWithoutMfa generatedAt dataAsOf tenants { tenant { id } users } } }", json!({})).await);
    let c = &cov["mfaCoverage"];
    assert_eq!(c["users"].as_i64().unwrap(), nodes.len() as i64);
    assert_eq!(c["enabled"].as_i64().unwrap(), count("ENABLED"));
    assert_eq!(c["disabled"].as_i64().unwrap(), count("DISABLED"));
    assert_eq!(c["unavailable"].as_i64().unwrap(), count("UNAVAILABLE"));
    let pct = count("ENABLED") as f64 * 100.0 / (count("ENABLED") + count("DISABLED")) as f64;
    assert!((c["coveragePercent"].as_f64().unwrap() - pct).abs() < 0.01);
    let admins = nodes.iter().filter(|n| n["isAdmin"] == true && n["mfa"]["status"] != "ENABLED").count() as i64;
    assert_eq!(c["adminsWithoutMfa"].as_i64().unwrap(), admins);
    let lm = nodes
        .iter()
        .filter(|n| n["isLicensed"] == true && n["userType"] == "Member" && n["mfa"]["status"] != "ENABLED")
        .count() as i64;
    assert_eq!(c["licensedMembersWithoutMfa"].as_i64().unwrap(), lm);
    assert_eq!(c["tenants"].as_array().unwrap().len(), 10);
    assert!(c["dataAsOf"].is_string() && c["generatedAt"].is_string());
    let one = data(
        app.gql(
            Some(&t),
            "query($t: ID) { mfaCoverage(tenantId: $t) { tenants { tenant { id } } } }",
            json!({"t": tenants[3]["id"]}),
        )
        .await,
    );
    assert_eq!(one["mfaCoverage"]["tenants"].as_array().unwrap().len(), 1);
    let with_blocked =
        data(app.gql(Some(&t), "{ mfaCoverage(includeDisabledAccounts: true) { users } }", json!({})).await);
    assert_eq!(with_blocked["mfaCoverage"]["users"], 120);
}

#[tokio::test]
async fn user_pages_are_stable_and_bounded() {
    let app = TestApp::spawn_world(WorldSpec { seed: 3, tenants: 3, users_per_tenant: 17 }, |_| {}).await;
    let (_, t, _) = setup(&app).await;
    let q = "query($first: Int, $after: String, $f: M365UserFilter) { m365Users(first: $first, after: $after, filter: $f) { totalCount pageInfo { hasNextPage endCursor } edges { node { id } } } }";
    let mut ids = vec![];
    let mut after = Value::Null;
    loop {
        let p = data(app.gql(Some(&t), q, json!({"first": 10, "after": after})).await);
        assert_eq!(p["m365Users"]["totalCount"], 51);
        ids.extend(
            p["m365Users"]["edges"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["node"]["id"].as_str().unwrap().parse::<i64>().unwrap()),
        );
        if p["m365Users"]["pageInfo"]["hasNextPage"] == false {
            break;
        }
        after = p["m365Users"]["pageInfo"]["endCursor"].clone();
    }
    assert_eq!(ids.len(), 51);
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "stable order, no repeats");
    // A cursor stays valid after a resync (ids do not change).
    let first = data(app.gql(Some(&t), q, json!({"first": 5})).await);
    let cursor = first["m365Users"]["pageInfo"]["endCursor"].clone();
    app.state.clock.advance(std::time::Duration::from_secs(31));
    data(app.gql(Some(&t), "mutation { triggerM365Sync { id } }", json!({})).await);
    app.wait_idle(&t).await;
    let next = data(app.gql(Some(&t), q, json!({"first": 5, "after": cursor})).await);
    assert_eq!(next["m365Users"]["edges"][0]["node"]["id"].as_str().unwrap().parse::<i64>().unwrap(), ids[5]);
    assert_eq!(error_code(&app.gql(Some(&t), q, json!({"first": 501})).await), Some("BAD_USER_INPUT"));
    let filtered = data(app.gql(Some(&t), q, json!({"first": 100, "f": {"mfaStatus": "ENABLED", "accountEnabled": true, "licensed": true, "isAdmin": false, "search": "."}})).await);
    assert!(filtered["m365Users"]["totalCount"].as_i64().unwrap() < 51);
}

#[tokio::test]
async fn a_page_costs_a_fixed_number_of_statements() {
    let app = TestApp::spawn_world(WorldSpec { seed: 12, tenants: 6, users_per_tenant: 40 }, |_| {}).await;
    let (_, t, tenants) = setup(&app).await;
    let clients = app.upsert_clients(&t, json!([{"source": "cw", "externalId": "1", "name": "C"}])).await;
    // Every tenant mapped, so every page exercises every relation.
    for tenant in &tenants {
        data(app.gql(Some(&t), MAP, json!({"t": tenant["id"], "c": clients[0]["id"]})).await);
    }
    let q = "query($first: Int) { m365Users(first: $first) { totalCount edges { cursor node { id userPrincipalName mfa { status methods source checkedAt unavailableReason } licenses { skuId friendlyName tenant { id } } contact { name emails } contactMatch { status } tenant { id displayName mapping { client { name } } userCount } client { name contacts { name } } } } } }";
    let mut counts = vec![];
    for first in [5, 50, 200] {
        let before = app.state.statements.load(Ordering::SeqCst);
        let d = data(app.gql(Some(&t), q, json!({"first": first})).await);
        let after = app.state.statements.load(Ordering::SeqCst);
        assert_eq!(d["m365Users"]["edges"].as_array().unwrap().len(), first);
        counts.push(after - before);
    }
    assert_eq!(counts[0], counts[1], "statements do not grow with the page: {counts:?}");
    assert_eq!(counts[1], counts[2], "statements do not grow with the page: {counts:?}");
    // account, count, page, tenants with their mappings and clients, user counts, client
    // contacts, licenses, linked contacts (none are linked here).
    assert!(counts[0] <= 8, "{counts:?}");
    eprintln!("statements per m365Users page with every nested field: {counts:?}");
}

/// Account B's view, recording which root fields it called.
struct Intruder<'a> {
    app: &'a TestApp,
    token: String,
    called: std::cell::RefCell<std::collections::BTreeSet<String>>,
}

impl Intruder<'_> {
    async fn gql(&self, query: &str, variables: Value) -> Value {
        let doc = async_graphql::parser::parse_query(query).expect("the test's own documents parse");
        for (_, op) in doc.operations.iter() {
            for sel in &op.node.selection_set.node.items {
                if let async_graphql::parser::types::Selection::Field(f) = &sel.node {
                    self.called.borrow_mut().insert(f.node.name.node.to_string());
                }
            }
        }
        self.app.gql(Some(&self.token), query, variables).await
    }
}

/// Every root field of the schema (Query, Mutation, Subscription), from the SDL.
fn schema_root_fields() -> std::collections::BTreeSet<String> {
    use async_graphql::parser::types::{TypeKind, TypeSystemDefinition};
    let doc = async_graphql::parser::parse_schema(m365_integration::graphql::sdl()).expect("SDL parses");
    let mut out = std::collections::BTreeSet::new();
    for def in doc.definitions {
        if let TypeSystemDefinition::Type(t) = def
            && ["Query", "Mutation", "Subscription"].contains(&t.node.name.node.as_str())
            && let TypeKind::Object(o) = &t.node.kind
        {
            out.extend(o.fields.iter().map(|f| f.node.name.node.to_string()));
        }
    }
    out
}

#[tokio::test]
async fn no_root_field_reaches_another_account() {
    let app = TestApp::spawn().await;
    let (acc_a, ta, tenants) = setup(&app).await;
    let clients = app.upsert_clients(&ta, json!([{"source": "cw", "externalId": "1", "name": "A's client"}])).await;
    data(app.gql(Some(&ta), MAP, json!({"t": tenants[0]["id"], "c": clients[0]["id"]})).await);
    let b = app.account("B", true).await;
    let b = Intruder { app: &app, token: app.admin_token(b), called: Default::default() };
    let (tid, cid) = (tenants[0]["id"].clone(), clients[0]["id"].clone());
    assert_eq!(data(b.gql("{ m365Tenants { totalCount } }", json!({})).await)["m365Tenants"]["totalCount"], 0);
    assert_eq!(
        data(b.gql("query($id: ID!) { m365Tenant(id: $id) { id } }", json!({"id": tid})).await)["m365Tenant"],
        Value::Null
    );
    assert_eq!(data(b.gql(SUMMARY, json!({})).await)["m365TenantMappingSummary"]["total"], 0);
    assert_eq!(data(b.gql("{ m365Users { totalCount } }", json!({})).await)["m365Users"]["totalCount"], 0);
    let q = "query($t: ID) { m365Users(filter: {tenantId: $t}) { totalCount } }";
    assert_eq!(error_code(&b.gql(q, json!({"t": tid})).await), Some("NOT_FOUND"));
    let q = "query($c: ID) { m365Users(filter: {clientId: $c}) { totalCount } }";
    assert_eq!(error_code(&b.gql(q, json!({"c": cid})).await), Some("NOT_FOUND"));
    let q = "query($t: ID) { m365Licenses(tenantId: $t) { skuId } }";
    assert_eq!(error_code(&b.gql(q, json!({"t": tid})).await), Some("NOT_FOUND"));
    assert_eq!(data(b.gql("{ m365Licenses { skuId } }", json!({})).await)["m365Licenses"], json!([]));
    let q = "query($c: ID) { mfaCoverage(clientId: $c) { users } }";
    assert_eq!(error_code(&b.gql(q, json!({"c": cid})).await), Some("NOT_FOUND"));
    assert_eq!(data(b.gql("{ mfaCoverage { users tenants { users } } }", json!({})).await)["mfaCoverage"]["users"], 0);
    assert_eq!(data(b.gql("{ m365SyncRuns { totalCount } }", json!({})).await)["m365SyncRuns"]["totalCount"], 0);
    assert_eq!(data(b.gql("{ clients { totalCount } }", json!({})).await)["clients"]["totalCount"], 0);
    assert_eq!(data(b.gql("{ auditEvents { totalCount } }", json!({})).await)["auditEvents"]["totalCount"], 0);
    assert_eq!(
        data(b.gql("{ m365Integration { connection { status } } }", json!({})).await)["m365Integration"]["connection"],
        Value::Null
    );
    // GRC evidence: A's snapshots, history and exports.
    let snaps = data(app.gql(Some(&ta), "{ mfaEvidence { edges { node { id takenAt } } } }", json!({})).await);
    let snaps = snaps["mfaEvidence"]["edges"].as_array().unwrap().clone();
    assert!(!snaps.is_empty(), "A's first sync took snapshots");
    let (sid, taken) = (snaps[0]["node"]["id"].clone(), snaps[0]["node"]["takenAt"].clone());
    assert_eq!(data(b.gql("{ mfaEvidence { totalCount } }", json!({})).await)["mfaEvidence"]["totalCount"], 0);
    let q = "query($t: ID) { mfaEvidence(tenantId: $t) { totalCount } }";
    assert_eq!(error_code(&b.gql(q, json!({"t": tid})).await), Some("NOT_FOUND"));
    let q = "query($c: ID) { mfaEvidence(clientId: $c) { totalCount } }";
    assert_eq!(error_code(&b.gql(q, json!({"c": cid})).await), Some("NOT_FOUND"));
    let q = "query($a: ID!, $b: ID!) { mfaEvidenceDiff(from: $a, to: $b) { added { objectId } } }";
    assert_eq!(error_code(&b.gql(q, json!({"a": sid, "b": sid})).await), Some("NOT_FOUND"));
    let q = "query($at: DateTime) { m365Users(asOf: $at) { totalCount } mfaCoverage(asOf: $at) { users } }";
    let past = data(b.gql(q, json!({"at": taken})).await);
    assert_eq!((past["m365Users"]["totalCount"].clone(), past["mfaCoverage"]["users"].clone()), (json!(0), json!(0)));
    let export_url = app.url(&format!("/evidence/mfa?snapshot={}&format=csv", sid.as_str().unwrap()));
    let export = |token: String| app.http.get(&export_url).bearer_auth(token).send();
    let r = export(b.token.clone()).await.unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(r.json::<Value>().await.unwrap()["errors"][0]["extensions"]["code"], "NOT_FOUND");
    assert_eq!(export(ta.clone()).await.unwrap().status(), 200, "A's own export works");
    // Mutations on A's ids from B.
    let q = "mutation($c: [ClientInput!]!) { upsertClients(clients: $c) { id name } }";
    let bc = data(b.gql(q, json!({"c": [{"source": "cw", "externalId": "1", "name": "B's client"}]})).await);
    let bc = bc["upsertClients"][0]["id"].clone();
    assert_ne!(bc, cid, "the same external id in another account is another client");
    let q = "mutation($c: [ContactInput!]!) { upsertContacts(contacts: $c) { id } }";
    let contact =
        json!([{"source": "cw", "externalId": "9", "clientExternalId": "1", "name": "B's", "emails": ["b@b.com"]}]);
    assert!(b.gql(q, json!({"c": contact})).await["errors"].is_null(), "B's contact goes to B's client");
    assert_eq!(error_code(&b.gql(MAP, json!({"t": tid, "c": bc})).await), Some("BAD_USER_INPUT"));
    let q = "mutation($m: [TenantMappingInput!]!) { bulkCreateTenantMappings(mappings: $m) { mappings { method } } }";
    assert_eq!(error_code(&b.gql(q, json!({"m": [{"tenantId": tid, "clientId": bc}]})).await), Some("BAD_USER_INPUT"));
    let q = "mutation($t: ID!) { deleteTenantMapping(tenantId: $t) }";
    assert_eq!(error_code(&b.gql(q, json!({"t": tid})).await), Some("NOT_FOUND"));
    let q = "mutation($ids: [ID!]!) { acceptTenantSuggestions(tenantIds: $ids) { skipped { reason } } }";
    assert_eq!(error_code(&b.gql(q, json!({"ids": [tid]})).await), Some("BAD_USER_INPUT"));
    assert_eq!(error_code(&b.gql("mutation { triggerM365Sync { id } }", json!({})).await), Some("NOT_CONNECTED"));
    // B's disconnect and connect touch B alone.
    assert_eq!(error_code(&b.gql("mutation { disconnectM365 { tenants } }", json!({})).await), Some("NOT_CONNECTED"));
    let url = data(b.gql("mutation { connectM365 { authorizationUrl } }", json!({})).await);
    assert!(url["connectM365"]["authorizationUrl"].as_str().unwrap().contains("/oauth/m365/start"));
    // A's data is intact.
    let a = data(app.gql(Some(&ta), SUMMARY, json!({})).await);
    assert_eq!(a["m365TenantMappingSummary"]["mapped"], 1);
    assert!(m365_integration::db::connections::get(&app.state.db, acc_a).await.unwrap().is_some());
    // The progress subscription: B's subscriber hears nothing of A's run, which A's hears to
    // its end (the hub publishes to both before A's `complete`).
    let progress = "subscription { m365SyncProgress { id status } }";
    let app_ref = &app;
    let subscriber = |token: String| async move {
        let mut ws = crate::ws::connect(app_ref, "graphql-transport-ws").await;
        crate::ws::send(&mut ws, json!({"type": "connection_init", "payload": {"token": token}})).await;
        assert_eq!(crate::ws::next(&mut ws).await.unwrap()["type"], "connection_ack");
        crate::ws::send(&mut ws, json!({"type": "subscribe", "id": "p", "payload": {"query": progress}})).await;
        ws
    };
    let mut wb = subscriber(b.token.clone()).await;
    b.called.borrow_mut().insert("m365SyncProgress".into());
    let mut wa = subscriber(ta.clone()).await;
    // A's subscriber first gets A's finished run, then follows the next one.
    assert_eq!(crate::ws::next(&mut wa).await.unwrap()["type"], "next");
    app.state.clock.advance(std::time::Duration::from_secs(31));
    data(app.gql(Some(&ta), "mutation { triggerM365Sync { id } }", json!({})).await);
    while crate::ws::next(&mut wa).await.unwrap()["type"] != "complete" {}
    let leaked = tokio::time::timeout(std::time::Duration::from_millis(300), crate::ws::next(&mut wb)).await;
    assert!(leaked.is_err(), "B's subscriber got a message about A's sync: {leaked:?}");
    // Every root field of the schema was tried from the other account.
    let missing: Vec<String> = schema_root_fields().difference(&b.called.borrow()).cloned().collect();
    assert!(missing.is_empty(), "root fields this test does not try from another account: {missing:?}");
}

/// The users page answers from memory in one loop (`graphql::fast`); async-graphql's derived
/// resolvers are the reference. The same document, with fragments, aliases, fields selected
/// twice, `__typename`, `@skip`/`@include` and every nested object, gets the same answer from
/// both, and over HTTP.
#[tokio::test]
async fn the_fast_users_page_answers_as_the_derived_resolvers_do() {
    use m365_integration::{auth::Auth, graphql};
    let app = TestApp::spawn_world(WorldSpec { seed: 21, tenants: 4, users_per_tenant: 12 }, |_| {}).await;
    let (_, t, tenants) = setup(&app).await;
    let clients = app
        .upsert_clients(
            &t,
            json!([{"source": "cw", "externalId": "1", "name": "C"}, {"source": "cw", "externalId": "2", "name": "D"}]),
        )
        .await;
    // Two tenants mapped to different clients, the others unmapped; contacts for some users
    // (one address shared by two contacts: ambiguous).
    data(app.gql(Some(&t), MAP, json!({"t": tenants[0]["id"], "c": clients[0]["id"]})).await);
    data(app.gql(Some(&t), MAP, json!({"t": tenants[1]["id"], "c": clients[1]["id"]})).await);
    let users = data(
        app.gql(
            Some(&t),
            "{ m365Users(first: 100) { edges { node { userPrincipalName tenant { id } } } } }",
            json!({}),
        )
        .await,
    );
    let upns: Vec<(String, Value)> = users["m365Users"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["node"]["userPrincipalName"].as_str().unwrap().into(), e["node"]["tenant"]["id"].clone()))
        .collect();
    let mut contacts = vec![];
    for (i, (upn, tenant)) in upns.iter().enumerate().filter(|(i, _)| i % 3 == 0) {
        let client = if *tenant == tenants[0]["id"] { "1" } else { "2" };
        contacts.push(json!({"source": "cw", "externalId": format!("c{i}"), "clientExternalId": client, "name": format!("Contact {i}"), "emails": [upn]}));
        if i % 2 == 0 {
            contacts.push(json!({"source": "cw", "externalId": format!("d{i}"), "clientExternalId": client, "name": format!("Twin {i}"), "emails": [upn]}));
        }
    }
    data(
        app.gql(
            Some(&t),
            "mutation($c: [ContactInput!]!) { upsertContacts(contacts: $c) { id } }",
            json!({"c": contacts}),
        )
        .await,
    );

    let doc = r#"query($yes: Boolean!, $no: Boolean!) { m365Users(first: 100) { totalCount pageInfo { hasNextPage endCursor }
      edges { __typename cursor
        node { __typename ...U upn: userPrincipalName
          mfa { status }
          ... on M365User { mfa { methods enforcement { state } } }
          mfa { __typename source checkedAt unavailableReason verdict explanation enforcement { __typename sources policies unknownReason } }
          licenses { __typename skuId skuPartNumber friendlyName capabilityStatus enabledUnits consumedUnits availableUnits suspendedUnits warningUnits assignedUsers tenant { id displayName } }
          contact { __typename id clientId source externalId name emails }
          contactMatch { __typename status matchedAddress }
          tenant { id displayName }
          tenant { defaultDomain userCount mapping { method client { name } } suggestions(first: 2) { confidence client { name } } }
          t2: tenant { id }
          client { __typename name contacts { name } }
          mail @include(if: $yes)
          aliases @skip(if: $no)
          displayName @skip(if: $yes)
        }
        node { id objectId }
        n2: node { mfa { status } }
      } } }
      fragment U on M365User { id objectId displayName mail aliases accountEnabled userType isAdmin isLicensed syncedAt }"#;
    let vars = json!({"yes": true, "no": false});
    let schema = graphql::build(app.state.clone());
    // In process, so no transport splices: the fast path's JSON comes back parsed.
    let run = |doc: &'static str, vars: &Value, derived: bool| {
        let mut req = async_graphql::Request::new(doc)
            .variables(async_graphql::Variables::from_json(vars.clone()))
            .data(Auth::from_header(&app.state.auth, Some(&format!("Bearer {t}"))));
        if derived {
            req = req.data(graphql::fast::DerivedResolvers);
        }
        let req = graphql::loaders::attach(req, &app.state.db);
        let schema = schema.clone();
        async move { serde_json::to_value(schema.execute(req).await).unwrap() }
    };
    let (fast, reference) = (run(doc, &vars, false).await, run(doc, &vars, true).await);
    assert!(reference["errors"].is_null(), "{reference}");
    assert_eq!(fast, reference);
    let edges = fast["data"]["m365Users"]["edges"].as_array().unwrap();
    assert_eq!(edges.len(), 48);
    // The document reached every kind of answer.
    let nodes: Vec<&Value> = edges.iter().map(|e| &e["node"]).collect();
    assert!(nodes.iter().any(|n| n["contactMatch"]["status"] == "LINKED" && n["contact"]["name"].is_string()));
    assert!(nodes.iter().any(|n| n["contactMatch"]["status"] == "AMBIGUOUS" && n["contact"].is_null()));
    assert!(nodes.iter().any(|n| n["client"]["name"] == "C") && nodes.iter().any(|n| n["client"]["name"] == "D"));
    assert!(nodes.iter().any(|n| n["client"].is_null() && n["tenant"]["mapping"].is_null()));
    assert!(nodes.iter().any(|n| n["licenses"].as_array().is_some_and(|l| !l.is_empty())));
    let n = nodes[0];
    assert_eq!(n["__typename"], "M365User");
    assert!(
        n["mfa"]["status"].is_string()
            && n["mfa"]["methods"].is_array()
            && n["mfa"]["enforcement"]["state"].is_string()
    );
    assert!(
        n["tenant"]["id"].is_string() && n["tenant"]["userCount"].is_number() && n["t2"]["id"] == n["tenant"]["id"]
    );
    assert!(n["upn"].is_string(), "the alias answers");
    assert!(
        n.get("mail").is_some() && n.get("aliases").is_some(),
        "@include(if: true) and @skip(if: false) keep fields"
    );
    assert!(n.get("displayName").is_some(), "from the fragment, though skipped where selected directly");
    assert_eq!(edges[0]["n2"]["mfa"]["status"], n["mfa"]["status"]);
    // What HTTP serves is the fast answer.
    assert_eq!(app.gql(Some(&t), doc, vars.clone()).await, fast);
    // The larger columns are read only when selected; selected only through fragments, they
    // are read all the same.
    let via_fragments = data(
        app.gql(
            Some(&t),
            "{ m365Users(first: 100) { edges { node { id ...A } } } }
        fragment A on M365User { ... on M365User { aliases mfa { ...E } } }
        fragment E on MfaInfo { explanation enforcement { sources policies unknownReason } }",
            json!({}),
        )
        .await,
    );
    let direct: Vec<Value> = nodes
        .iter()
        .map(|n| json!({"id": n["id"], "aliases": n["aliases"], "mfa": {"explanation": n["mfa"]["explanation"], "enforcement": {"sources": n["mfa"]["enforcement"]["sources"], "policies": n["mfa"]["enforcement"]["policies"], "unknownReason": n["mfa"]["enforcement"]["unknownReason"]}}}))
        .collect();
    let fragments: Vec<Value> =
        via_fragments["m365Users"]["edges"].as_array().unwrap().iter().map(|e| e["node"].clone()).collect();
    assert_eq!(fragments, direct);
    assert!(nodes.iter().all(|n| !n["mfa"]["explanation"].as_array().unwrap().is_empty()));
    assert!(nodes.iter().any(|n| !n["aliases"].as_array().unwrap().is_empty()));
    assert!(nodes.iter().any(|n| !n["mfa"]["enforcement"]["sources"].as_array().unwrap().is_empty()));

    // A field that fails inside the page is left out with its error and path, as the derived
    // resolvers leave it out; the rest of the page answers. The tenant's answer is shared by
    // its users, so its error is reported once, at the first user that asked.
    let failing = "{ m365Users(first: 100) { edges { node { id tenant { id suggestions(first: 99) { confidence } } \
      licenses { skuId tenant { displayName suggestions(first: 21) { confidence } } } } } } }";
    let (fast, reference) = (run(failing, &json!({}), false).await, run(failing, &json!({}), true).await);
    assert_eq!(fast["data"], reference["data"]);
    let first = &fast["data"]["m365Users"]["edges"][0]["node"];
    assert!(
        first["id"].is_string() && first["tenant"]["id"].is_string() && first["tenant"].get("suggestions").is_none()
    );
    let (errors, all) = (fast["errors"].as_array().unwrap(), reference["errors"].as_array().unwrap());
    assert!(errors.iter().all(|e| all.contains(e)), "{errors:?}");
    assert!(errors.iter().any(|e| e["path"] == json!(["m365Users", "edges", 0, "node", "tenant", "suggestions"])));
    let licensed = edges.iter().position(|e| !e["node"]["licenses"].as_array().unwrap().is_empty()).unwrap();
    assert!(
        errors
            .iter()
            .any(|e| e["path"]
                == json!(["m365Users", "edges", licensed, "node", "licenses", 0, "tenant", "suggestions"]))
    );
    // One error per tenant and field: four tenants under `tenant`, the licensed ones' under
    // `licenses`.
    assert!(errors.len() < all.len() && errors.len() <= 8, "{errors:?}");
    // Over HTTP and over a WebSocket, the answers written ahead are spliced in as they are.
    assert_eq!(app.gql(Some(&t), failing, json!({})).await, fast);
    let mut ws = crate::ws::connect(&app, "graphql-transport-ws").await;
    crate::ws::send(&mut ws, json!({"type": "connection_init", "payload": {"token": t}})).await;
    assert_eq!(crate::ws::next(&mut ws).await.unwrap()["type"], "connection_ack");
    crate::ws::send(&mut ws, json!({"type": "subscribe", "id": "q", "payload": {"query": failing}})).await;
    let next = crate::ws::next(&mut ws).await.unwrap();
    assert_eq!((&next["type"], &next["payload"]), (&json!("next"), &fast));
    // Two pages in one document: each is spliced in at its own place.
    let two = "{ a: m365Users(first: 5) { edges { cursor } } b: m365Users(first: 3) { edges { node { id mfa { status } } } } }";
    let (fast, reference) = (run(two, &json!({}), false).await, run(two, &json!({}), true).await);
    assert_eq!(fast, reference);
    assert_eq!(
        (fast["data"]["a"]["edges"].as_array().unwrap().len(), fast["data"]["b"]["edges"].as_array().unwrap().len()),
        (5, 3)
    );
    assert_eq!(app.gql(Some(&t), two, json!({})).await, fast);
}
