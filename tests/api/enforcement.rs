//! MFA enforcement end to end against the emulator: the verdict of every seeded case, per-user
//! reads only for the users that need them (counted in the emulator's stats), and the UNKNOWN
//! path with its remediation.

use std::time::Duration;

use m365_emulator::world::{TenantKnobs, WorldSpec};
use m365_integration::microsoft::roles;
use serde_json::{Value, json};

use crate::helpers::{TestApp, data};

const USERS: &str = "query($t: ID) { m365Users(first: 100, filter: {tenantId: $t}) { edges { node { objectId mfa { status verdict explanation enforcement { state sources policies unknownReason } } } } } }";
const TENANTS: &str = "{ m365Tenants(first: 100) { edges { node { id tenantId displayName syncErrorCode mfaPolicy { securityDefaultsEnabled conditionalAccessLicensed readable unavailableReason conditionalAccess { name state requiresMfa allUsers allApps conditional } } } } } }";
const PER_USER: &str = "GET /beta/users/{id}/authentication/requirements";

/// What the seeded world says, by the emulator's own rules (customer `i`, user `j`):
/// (enforced by security defaults or Conditional Access, conditional, per-user MFA on).
fn expected(i: usize, j: usize) -> (bool, bool, bool) {
    let admin = j < 2;
    let per_user = j % 7 < 2;
    match i % 5 {
        0 => (admin, !admin, per_user),
        1 => (j != 0, false, per_user), // user 0 is the break-glass administrator
        2 => (admin, false, per_user),
        3 => ((1..=3).contains(&j), true, per_user), // Finance (2, 3) and its nested group (1)
        _ => (false, false, per_user),
    }
}

fn verdict(status: &str, state: &str) -> &'static str {
    match (status, state) {
        ("UNAVAILABLE", _) | (_, "UNKNOWN") => "UNKNOWN",
        ("ENABLED", "ENFORCED") => "PROTECTED",
        ("ENABLED", _) => "NOT_ENFORCED",
        (_, "ENFORCED") => "NOT_REGISTERED",
        _ => "UNPROTECTED",
    }
}

#[tokio::test]
async fn every_seeded_case_gets_its_verdict_and_unknown_says_why() {
    let app = TestApp::spawn_world(WorldSpec { seed: 12, tenants: 5, users_per_tenant: 14 }, |_| {}).await;
    let acc = app.account("A", true).await;
    let t = app.admin_token(acc);
    let world: Vec<(String, Vec<String>)> = app
        .emu
        .state
        .lock()
        .world
        .customers()
        .iter()
        .map(|c| (c.id.clone(), c.users.iter().map(|u| u.id.clone()).collect()))
        .collect();
    app.emu.state.reset_stats();
    app.connected(acc).await;
    let tenants = data(app.gql(Some(&t), TENANTS, json!({})).await)["m365Tenants"]["edges"].as_array().unwrap().clone();
    let mut needed_per_user = 0;
    for (i, (tenant_guid, users)) in world.iter().enumerate() {
        let tenant = tenants.iter().map(|e| &e["node"]).find(|n| n["tenantId"] == *tenant_guid).unwrap();
        let policy = &tenant["mfaPolicy"];
        assert_eq!(policy["readable"], true, "{tenant}");
        assert_eq!(policy["securityDefaultsEnabled"], i % 5 == 0, "{tenant}");
        let rows = data(app.gql(Some(&t), USERS, json!({"t": tenant["id"]})).await);
        let rows: Vec<&Value> = rows["m365Users"]["edges"].as_array().unwrap().iter().map(|e| &e["node"]).collect();
        assert_eq!(rows.len(), users.len());
        for (j, id) in users.iter().enumerate() {
            let row = rows.iter().find(|r| r["objectId"] == *id).unwrap();
            let m = &row["mfa"];
            let (by_policy, conditional, per_user) = expected(i, j);
            needed_per_user += usize::from(!by_policy);
            let state = if by_policy || per_user {
                "ENFORCED"
            } else if conditional {
                "CONDITIONAL"
            } else {
                "NOT_ENFORCED"
            };
            assert_eq!(m["enforcement"]["state"], state, "tenant {i}, user {j}: {m}");
            assert_eq!(m["verdict"], verdict(m["status"].as_str().unwrap(), state), "tenant {i}, user {j}: {m}");
            assert!(!m["explanation"].as_array().unwrap().is_empty());
            let sources = m["enforcement"]["sources"].as_array().unwrap();
            assert_eq!(sources.contains(&json!("PER_USER")), !by_policy && per_user, "tenant {i}, user {j}: {m}");
        }
        // One sentence per case, as a person reads it.
        let explain = |j: usize| -> Vec<String> {
            let row = rows.iter().find(|r| r["objectId"] == users[j]).unwrap();
            row["mfa"]["explanation"].as_array().unwrap().iter().map(|s| s.as_str().unwrap().to_owned()).collect()
        };
        match i % 5 {
            0 => assert!(explain(0).iter().any(|s| s.contains("administrators must use MFA at every sign-in"))),
            1 => {
                assert!(explain(5).contains(&"Conditional Access policy \"Require MFA for all users\" (enabled) requires MFA for all cloud apps; the user is included (All users) and not excluded.".to_owned()));
                assert!(explain(0).iter().any(|s| s.contains("excluded (group")), "{:?}", explain(0));
                assert!(explain(5).iter().any(|s| s.contains("is report-only")));
                let ca = policy["conditionalAccess"].as_array().unwrap();
                assert_eq!(ca.len(), 2, "{policy}");
            }
            2 => {
                assert!(explain(0).iter().any(|s| s.contains("included (role Global Administrator)")));
                assert!(explain(5).iter().any(|s| s.contains("one option among other controls")));
            }
            3 => {
                assert!(explain(1).iter().any(|s| s.contains("\"Finance requires MFA\"")), "{:?}", explain(1));
                assert!(explain(5).iter().any(|s| s.contains("under conditions")));
            }
            _ => assert!(explain(0).iter().any(|s| s.contains("Per-user MFA is enforced"))),
        }
    }
    // Per-user MFA was asked only for the users no tenant policy enforces.
    let stats = app.emu.state.stats();
    assert_eq!(stats.get(PER_USER).copied().unwrap_or(0) as usize, needed_per_user, "{stats:?}");

    // A relationship without a role that may read policies: UNKNOWN with the remediation.
    let (guid, _) = &world[4];
    app.emu.state.set_tenant_knobs(
        guid,
        TenantKnobs {
            roles: Some(vec![roles::DIRECTORY_READERS.into(), roles::USER_ADMINISTRATOR.into()]),
            ..Default::default()
        },
    );
    app.state.clock.advance(Duration::from_secs(31));
    data(app.gql(Some(&t), "mutation { triggerM365Sync { id } }", json!({})).await);
    app.wait_idle(&t).await;
    let tenants = data(app.gql(Some(&t), TENANTS, json!({})).await)["m365Tenants"]["edges"].as_array().unwrap().clone();
    let tenant = tenants.iter().map(|e| &e["node"]).find(|n| n["tenantId"] == *guid).unwrap();
    assert_eq!(tenant["mfaPolicy"]["readable"], false, "{tenant}");
    // The others were read again (through the Conditional Access service's 429s, if the two
    // syncs came within its one second).
    for (other, _) in &world[..4] {
        let t = tenants.iter().map(|e| &e["node"]).find(|n| n["tenantId"] == *other).unwrap();
        assert_eq!(t["mfaPolicy"]["readable"], true, "{t}");
    }
    let why = tenant["mfaPolicy"]["unavailableReason"].as_str().unwrap();
    assert!(why.contains("Security Reader or Global Reader"), "{why}");
    let rows = data(app.gql(Some(&t), USERS, json!({"t": tenant["id"]})).await);
    for e in rows["m365Users"]["edges"].as_array().unwrap() {
        let m = &e["node"]["mfa"];
        assert_eq!(m["verdict"], "UNKNOWN", "{m}");
        assert_eq!(m["enforcement"]["state"], "UNKNOWN", "never a false NOT_ENFORCED: {m}");
        assert!(m["enforcement"]["unknownReason"].as_str().unwrap().contains("Global Reader"), "{m}");
    }
    // Coverage counts per verdict add up.
    let cov = data(
        app.gql(
            Some(&t),
            "{ mfaCoverage { users verdicts { protected notEnforced notRegistered unprotected unknown } } }",
            json!({}),
        )
        .await,
    );
    let v = &cov["mfaCoverage"]["verdicts"];
    let sum: i64 = ["protected", "notEnforced", "notRegistered", "unprotected", "unknown"]
        .iter()
        .map(|k| v[*k].as_i64().unwrap())
        .sum();
    assert_eq!(sum, cov["mfaCoverage"]["users"].as_i64().unwrap(), "{cov}");
    assert!(v["unknown"].as_i64().unwrap() >= 14);
    let filtered =
        data(app.gql(Some(&t), "{ m365Users(filter: {mfaVerdict: UNKNOWN}) { totalCount } }", json!({})).await);
    assert_eq!(filtered["m365Users"]["totalCount"], v["unknown"]);
}
