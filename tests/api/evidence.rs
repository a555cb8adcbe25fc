//! GRC evidence end to end: history written only on change, `asOf` answers equal the state at
//! that time, chained snapshots, the CSV export recomputed with the README's commands,
//! `evidence verify` catching an edited row, retention pruning, disconnect.

use std::{collections::BTreeMap, process::Command, time::Duration};

use m365_emulator::world::{Method, WorldSpec};
use m365_integration::evidence::verify;
use sea_orm::{ConnectionTrait, Statement};
use serde_json::{Value, json};

use crate::helpers::{TestApp, data, error_code};

const BIN: &str = env!("CARGO_BIN_EXE_m365-integration");
const USERS_AS_OF: &str = "query($at: DateTime, $after: String) { m365Users(first: 500, after: $after, asOf: $at) { totalCount pageInfo { hasNextPage endCursor } edges { node { objectId userPrincipalName accountEnabled isAdmin isLicensed mfa { status methods verdict enforcement { state } } } } } }";
const COVERAGE: &str = "query($at: DateTime, $t: ID) { mfaCoverage(asOf: $at, tenantId: $t) { users enabled disabled unavailable adminsWithoutMfa licensedMembersWithoutMfa verdicts { protected notEnforced notRegistered unprotected unknown } } }";
const SNAPSHOTS: &str = "query($t: ID) { mfaEvidence(tenantId: $t, first: 500) { totalCount edges { node { id sequence takenAt userCount digest previousDigest rowsDigest rowsAvailable runId tenantName microsoftTenantId exportPath figures { users enabled disabled unavailable adminsWithoutMfa licensedMembersWithoutMfa verdicts { protected notEnforced notRegistered unprotected unknown } } } } } }";

fn spec() -> WorldSpec {
    WorldSpec { seed: 21, tenants: 3, users_per_tenant: 9 }
}

async fn count(app: &TestApp, sql: &str) -> i64 {
    let db = &app.state.db;
    let row = db.query_one_raw(Statement::from_string(db.get_database_backend(), sql)).await.unwrap().unwrap();
    row.try_get_by_index::<i64>(0).unwrap()
}

async fn resync(app: &TestApp, token: &str) -> Value {
    app.state.clock.advance(Duration::from_secs(31));
    let r = app.gql(Some(token), "mutation { triggerM365Sync { id } }", json!({})).await;
    assert!(r["errors"].is_null(), "{r}");
    app.wait_idle(token).await
}

/// Every user as `m365Users` answers (now, or as of `at`), keyed by object id.
async fn users(app: &TestApp, token: &str, at: Option<&str>) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    let mut after = Value::Null;
    loop {
        let d = data(app.gql(Some(token), USERS_AS_OF, json!({"at": at, "after": after})).await);
        let page = &d["m365Users"];
        for e in page["edges"].as_array().unwrap() {
            out.insert(e["node"]["objectId"].as_str().unwrap().to_owned(), e["node"].clone());
        }
        if page["pageInfo"]["hasNextPage"] != true {
            assert_eq!(page["totalCount"].as_u64().unwrap() as usize, out.len());
            return out;
        }
        after = page["pageInfo"]["endCursor"].clone();
    }
}

async fn coverage(app: &TestApp, token: &str, at: Option<&str>, tenant: Option<&Value>) -> Value {
    data(app.gql(Some(token), COVERAGE, json!({"at": at, "t": tenant})).await)["mfaCoverage"].clone()
}

/// The app clock as an `asOf` argument.
fn now(app: &TestApp) -> String {
    app.state.clock.now().to_rfc3339()
}

/// Sets a customer user's strong methods in the emulator (`None`: password only).
fn set_mfa(app: &TestApp, tenant: usize, user: usize, method: Option<Method>) -> String {
    let mut g = app.emu.state.lock();
    let u = &mut g.world.tenants[1 + tenant].users[user];
    u.methods = std::iter::once(Method::Password).chain(method).collect();
    u.id.clone()
}

#[tokio::test]
async fn history_is_written_on_change_only_and_as_of_answers_the_state_of_each_moment() {
    let app = TestApp::spawn_world(spec(), |_| {}).await;
    let acc = app.account("A", true).await;
    let t = app.admin_token(acc);
    app.connected(acc).await;
    let first = count(&app, "SELECT COUNT(*) FROM mfa_history").await;
    assert_eq!(first, count(&app, "SELECT COUNT(*) FROM m365_user").await, "one open row per user");
    let (t1, users1, cov1) = (now(&app), users(&app, &t, None).await, coverage(&app, &t, None, None).await);

    // Nothing changed: no history row written (the run still took its snapshots).
    let snaps = count(&app, "SELECT COUNT(*) FROM mfa_evidence_snapshot").await;
    resync(&app, &t).await;
    assert_eq!(count(&app, "SELECT COUNT(*) FROM mfa_history").await, first);
    assert_eq!(count(&app, "SELECT COUNT(*) FROM mfa_evidence_snapshot").await, snaps * 2);

    // One user loses MFA, another gains it: each ends one row and opens one.
    let (loser, gainer) = {
        let w = &app.emu.state.lock().world;
        let tenant = &w.tenants[1];
        let has = |u: &m365_emulator::world::User| u.methods.iter().any(|m| *m != Method::Password);
        (tenant.users.iter().position(has).unwrap(), tenant.users.iter().position(|u| !has(u)).unwrap())
    };
    let loser_id = set_mfa(&app, 0, loser, None);
    let gainer_id = set_mfa(&app, 0, gainer, Some(Method::Fido2));
    app.state.clock.advance(Duration::from_secs(60));
    resync(&app, &t).await;
    assert_eq!(count(&app, "SELECT COUNT(*) FROM mfa_history").await, first + 2);
    assert_eq!(count(&app, "SELECT COUNT(*) FROM mfa_history WHERE valid_to IS NOT NULL").await, 2);
    let (t2, users2, cov2) = (now(&app), users(&app, &t, None).await, coverage(&app, &t, None, None).await);
    assert_eq!(users2[&loser_id]["mfa"]["status"], "DISABLED");
    assert_eq!(users2[&gainer_id]["mfa"]["status"], "ENABLED");

    // The loser gets MFA back and one user leaves the tenant.
    set_mfa(&app, 0, loser, Some(Method::Authenticator));
    let gone = app.emu.state.lock().world.tenants[2].users.pop().unwrap().id;
    app.state.clock.advance(Duration::from_secs(60));
    resync(&app, &t).await;
    let (t3, users3, cov3) = (now(&app), users(&app, &t, None).await, coverage(&app, &t, None, None).await);
    assert!(!users3.contains_key(&gone) && users2.contains_key(&gone));
    assert_eq!(users3[&loser_id]["mfa"]["status"], "ENABLED");

    // Each moment answers as it was, users and coverage alike.
    for (at, expected_users, expected_cov) in [(&t1, &users1, &cov1), (&t2, &users2, &cov2), (&t3, &users3, &cov3)] {
        assert_eq!(&users(&app, &t, Some(at)).await, expected_users, "m365Users as of {at}");
        assert_eq!(&coverage(&app, &t, Some(at), None).await, expected_cov, "mfaCoverage as of {at}");
    }
    assert_ne!(users1, users2);
    assert_ne!(cov1, cov2);
    // `dataAsOf` of a past answer is the newest snapshot at or before that moment.
    let q = "query($at: DateTime) { mfaCoverage(asOf: $at) { dataAsOf } mfaEvidence(first: 500) { edges { node { takenAt } } } }";
    let d = data(app.gql(Some(&t), q, json!({"at": t2})).await);
    let time = |v: &Value| v.as_str().unwrap().parse::<chrono::DateTime<chrono::Utc>>().unwrap();
    let taken: Vec<_> =
        d["mfaEvidence"]["edges"].as_array().unwrap().iter().map(|e| time(&e["node"]["takenAt"])).collect();
    let (t2_time, as_of) = (time(&json!(t2)), time(&d["mfaCoverage"]["dataAsOf"]));
    assert!(as_of <= t2_time && taken.contains(&as_of), "{d}");

    // Before retention, in the future, or with a contact filter: a clear error.
    let q = "query($at: DateTime) { m365Users(asOf: $at) { totalCount } }";
    let old = (app.state.clock.now() - chrono::Duration::days(401)).to_rfc3339();
    let r = app.gql(Some(&t), q, json!({"at": old})).await;
    assert_eq!(error_code(&r), Some("BAD_USER_INPUT"));
    assert!(r["errors"][0]["message"].as_str().unwrap().contains("400 days"), "{r}");
    let future = (app.state.clock.now() + chrono::Duration::hours(1)).to_rfc3339();
    assert_eq!(error_code(&app.gql(Some(&t), q, json!({"at": future})).await), Some("BAD_USER_INPUT"));
    let q = "query($at: DateTime) { m365Users(asOf: $at, filter: {contactLinked: true}) { totalCount } }";
    assert_eq!(error_code(&app.gql(Some(&t), q, json!({"at": t1})).await), Some("BAD_USER_INPUT"));
}

/// The first tenant's id and its snapshots, oldest first.
async fn snapshots(app: &TestApp, token: &str, tenant: &Value) -> Vec<Value> {
    let d = data(app.gql(Some(token), SNAPSHOTS, json!({"t": tenant})).await);
    d["mfaEvidence"]["edges"].as_array().unwrap().iter().map(|e| e["node"].clone()).collect()
}

async fn tenant_ids(app: &TestApp, token: &str) -> Vec<Value> {
    let d =
        data(app.gql(Some(token), "{ m365Tenants(first: 100) { edges { node { id tenantId } } } }", json!({})).await);
    d["m365Tenants"]["edges"].as_array().unwrap().iter().map(|e| e["node"].clone()).collect()
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// Runs a shell pipeline on a file (the README's commands) and returns the hash it prints.
fn shell_hash(pipeline: &str, file: &std::path::Path) -> String {
    let out = Command::new("sh").arg("-c").arg(pipeline.replace("FILE", &file.display().to_string())).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().split_whitespace().next().unwrap().to_owned()
}

/// The README's two commands, exactly.
const HEADER_DIGEST: &str = r#"awk '!/^# /{exit} {print substr($0,3)}' FILE | grep -v '^digest: ' | sha256sum"#;
const ROWS_DIGEST: &str = r#"awk 'f || !/^# /{f=1; print}' FILE | sha256sum"#;

#[tokio::test]
async fn snapshots_chain_export_and_recompute_from_the_file_alone() {
    let app = TestApp::spawn_world(spec(), |_| {}).await;
    let acc = app.account("A", true).await;
    let t = app.admin_token(acc);
    app.connected(acc).await;
    let tenants = tenant_ids(&app, &t).await;
    let first_guid = app.emu.state.lock().world.tenants[1].id.clone();
    let tenant = tenants.iter().find(|n| n["tenantId"] == first_guid.as_str()).unwrap()["id"].clone();
    let (loser, _) = {
        let w = &app.emu.state.lock().world;
        let i = w.tenants[1].users.iter().position(|u| u.methods.iter().any(|m| *m != Method::Password)).unwrap();
        (i, ())
    };
    let loser_id = set_mfa(&app, 0, loser, None);
    let gone = app.emu.state.lock().world.tenants[1].users.pop().unwrap().id;
    resync(&app, &t).await;

    let snaps = snapshots(&app, &t, &tenant).await;
    assert_eq!(snaps.len(), 2);
    assert_eq!((snaps[0]["sequence"].clone(), snaps[1]["sequence"].clone()), (json!(1), json!(2)));
    assert_eq!(snaps[0]["previousDigest"], Value::Null);
    assert_eq!(snaps[1]["previousDigest"], snaps[0]["digest"], "chained");
    assert_ne!(snaps[0]["digest"], snaps[1]["digest"]);
    // A snapshot's figures are the coverage as of its moment.
    for s in &snaps {
        let cov = coverage(&app, &t, Some(s["takenAt"].as_str().unwrap()), Some(&tenant)).await;
        for k in
            ["users", "enabled", "disabled", "unavailable", "adminsWithoutMfa", "licensedMembersWithoutMfa", "verdicts"]
        {
            assert_eq!(s["figures"][k], cov[k], "{k}: {s} vs {cov}");
        }
    }

    // The CSV export: the digests recomputed from the file alone, in Rust and with the README's
    // commands, equal the stored ones.
    let s = &snaps[1];
    let resp = app.http.get(app.url(s["exportPath"].as_str().unwrap())).bearer_auth(&t).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "text/csv; charset=utf-8");
    assert_eq!(resp.headers()["x-evidence-digest"], s["digest"].as_str().unwrap());
    let csv = resp.text().await.unwrap();
    let split = csv.lines().take_while(|l| l.starts_with("# ")).map(|l| l.len() + 1).sum::<usize>();
    let (meta, rows) = csv.split_at(split);
    let header: String =
        meta.lines().map(|l| &l[2..]).filter(|l| !l.starts_with("digest: ")).map(|l| format!("{l}\n")).collect();
    assert_eq!(sha256_hex(rows.as_bytes()), s["rowsDigest"].as_str().unwrap());
    assert_eq!(sha256_hex(header.as_bytes()), s["digest"].as_str().unwrap());
    assert!(header.contains(&format!("rows_sha256: {}\n", s["rowsDigest"].as_str().unwrap())));
    assert!(header.contains(&format!("previous_digest: {}\n", snaps[0]["digest"].as_str().unwrap())));
    assert!(meta.contains(&format!("# tenant_id: {first_guid}\n")));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("evidence.csv");
    std::fs::write(&file, &csv).unwrap();
    assert_eq!(shell_hash(HEADER_DIGEST, &file), s["digest"].as_str().unwrap());
    assert_eq!(shell_hash(ROWS_DIGEST, &file), s["rowsDigest"].as_str().unwrap());
    assert_eq!(rows.lines().count() as i64, 1 + s["userCount"].as_i64().unwrap(), "header line + one per user");
    assert!(rows.starts_with("object_id,user_principal_name,display_name,"));
    assert!(rows.lines().any(|l| l.starts_with(&format!("{loser_id},")) && l.contains(",DISABLED,")), "{rows}");

    // JSON carries the same header and rows.
    let url = app.url(&format!("/evidence/mfa?snapshot={}&format=json", s["id"].as_str().unwrap()));
    let j: Value = app.http.get(url).bearer_auth(&t).send().await.unwrap().json().await.unwrap();
    assert_eq!(j["evidence"]["digest"], s["digest"]);
    assert_eq!(j["evidence"]["rows_sha256"], s["rowsDigest"]);
    assert_eq!(j["users"].as_array().unwrap().len() as i64, s["userCount"].as_i64().unwrap());

    // A read-only token may export; no token, a bad format or an unknown id get a code.
    let ro = app.token(acc, &[]);
    assert_eq!(
        app.http.get(app.url(s["exportPath"].as_str().unwrap())).bearer_auth(&ro).send().await.unwrap().status(),
        200
    );
    let get = |q: &str, token: Option<&str>| {
        let mut r = app.http.get(app.url(&format!("/evidence/mfa?{q}")));
        if let Some(tok) = token {
            r = r.bearer_auth(tok);
        }
        async move {
            let resp = r.send().await.unwrap();
            let status = resp.status().as_u16();
            (status, resp.json::<Value>().await.unwrap()["errors"][0]["extensions"]["code"].clone())
        }
    };
    assert_eq!(get("snapshot=1", None).await, (401, json!("UNAUTHENTICATED")));
    assert_eq!(get("snapshot=1&format=xml", Some(&t)).await, (400, json!("BAD_USER_INPUT")));
    assert_eq!(get("format=csv", Some(&t)).await, (400, json!("BAD_USER_INPUT")));
    assert_eq!(get("snapshot=99999", Some(&t)).await, (404, json!("NOT_FOUND")));

    // The diff: the removed user, and the verdict that changed with both states.
    let q = "query($a: ID!, $b: ID!) { mfaEvidenceDiff(from: $a, to: $b) { added { objectId } removed { objectId } verdictChanged { objectId before { mfaStatus verdict } after { mfaStatus verdict } } } }";
    let d = data(app.gql(Some(&t), q, json!({"a": snaps[0]["id"], "b": snaps[1]["id"]})).await);
    let d = &d["mfaEvidenceDiff"];
    assert_eq!(d["removed"], json!([{"objectId": gone}]));
    assert_eq!(d["added"], json!([]));
    let changed = d["verdictChanged"].as_array().unwrap();
    assert_eq!(changed.len(), 1, "{d}");
    assert_eq!(changed[0]["objectId"], loser_id.as_str());
    assert_eq!(changed[0]["before"]["mfaStatus"], "ENABLED");
    assert_eq!(changed[0]["after"]["mfaStatus"], "DISABLED");
    let other = tenants.iter().find(|n| n["id"] != tenant).unwrap()["id"].clone();
    let other_snap = snapshots(&app, &t, &other).await[0]["id"].clone();
    let r = app.gql(Some(&t), q, json!({"a": snaps[0]["id"], "b": other_snap})).await;
    assert_eq!(error_code(&r), Some("BAD_USER_INPUT"));
}

#[tokio::test]
async fn an_edited_history_row_or_a_deleted_snapshot_fails_verify_and_names_the_snapshot() {
    let app = TestApp::spawn_world(spec(), |_| {}).await;
    let acc = app.account("A", true).await;
    let t = app.admin_token(acc);
    app.connected(acc).await;
    resync(&app, &t).await;
    let db_url = app.state.config.database_url.clone();
    let verify_cli = |args: &[&str]| {
        let out =
            Command::new(BIN).args(["evidence", "verify"]).args(args).env("DATABASE_URL", &db_url).output().unwrap();
        (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let (ok, out) = verify_cli(&[]);
    assert!(ok, "{out}");
    assert!(out.contains("every chain holds") && out.contains("6 snapshot(s): 6 recomputed"), "{out}");

    // Editing one history row (a user's MFA status) breaks the chain at the first snapshot
    // that covers it.
    let (row, tenant_row): (i64, i64) = {
        let db = &app.state.db;
        let q = "SELECT id, tenant_id FROM mfa_history WHERE mfa_status = 'disabled' ORDER BY id LIMIT 1";
        let r = db.query_one_raw(Statement::from_string(db.get_database_backend(), q)).await.unwrap().unwrap();
        (r.try_get_by_index(0).unwrap(), r.try_get_by_index(1).unwrap())
    };
    let first_snapshot =
        count(&app, &format!("SELECT MIN(id) FROM mfa_evidence_snapshot WHERE tenant_id = {tenant_row}")).await;
    app.sql("UPDATE mfa_history SET mfa_status = 'enabled' WHERE id = $1", [row.into()]).await;
    let (ok, out) = verify_cli(&["--account", &acc.to_string()]);
    assert!(!ok, "{out}");
    assert!(out.contains(&format!("BROKEN account {acc} tenant")), "{out}");
    assert!(out.contains(&format!("snapshot {first_snapshot} (sequence 1)")), "{out}");
    assert!(out.contains("does not hash to rows_sha256"), "{out}");
    assert_eq!(out.matches("BROKEN").count(), 1, "only that tenant's chain: {out}");
    app.sql("UPDATE mfa_history SET mfa_status = 'disabled' WHERE id = $1", [row.into()]).await;
    assert!(verify::verify(&app.state.db, Some(acc)).await.unwrap().holds());

    // Editing a snapshot's figures, or deleting the newest snapshot, is caught too.
    let newest =
        count(&app, &format!("SELECT MAX(id) FROM mfa_evidence_snapshot WHERE tenant_id = {tenant_row}")).await;
    app.sql("UPDATE mfa_evidence_snapshot SET user_count = user_count + 1 WHERE id = $1", [newest.into()]).await;
    let r = verify::verify(&app.state.db, Some(acc)).await.unwrap();
    assert_eq!(r.breaks.len(), 1);
    assert_eq!(r.breaks[0].snapshot_id, Some(newest));
    assert!(r.breaks[0].reason.contains("do not hash to its digest"), "{:?}", r.breaks);
    app.sql("DELETE FROM mfa_evidence_snapshot WHERE id = $1", [newest.into()]).await;
    let r = verify::verify(&app.state.db, Some(acc)).await.unwrap();
    assert_eq!(r.breaks.len(), 1);
    assert!(r.breaks[0].reason.contains("snapshots were deleted"), "{:?}", r.breaks);
    // Another account's verification is not affected.
    let other = app.account("B", true).await;
    assert!(verify::verify(&app.state.db, Some(other)).await.unwrap().holds());
}

#[tokio::test]
async fn retention_prunes_history_and_snapshots_and_the_chain_still_verifies() {
    let app = TestApp::spawn_world(spec(), |c| c.evidence_retention_days = 1).await;
    let acc = app.account("A", true).await;
    let t = app.admin_token(acc);
    app.connected(acc).await;
    let t0 = now(&app);
    set_mfa(&app, 0, 0, None);
    set_mfa(&app, 0, 1, Some(Method::Phone));
    app.state.clock.advance(Duration::from_secs(3600));
    resync(&app, &t).await; // changes recorded an hour later
    let closed = count(&app, "SELECT COUNT(*) FROM mfa_history WHERE valid_to IS NOT NULL").await;
    assert!(closed >= 1);
    let per_run = count(&app, "SELECT COUNT(*) FROM mfa_evidence_snapshot").await / 2;
    app.state.clock.advance(Duration::from_secs(2 * 86_400));
    resync(&app, &t).await;
    // Both earlier runs' snapshots and the history rows that ended before the horizon are gone.
    assert_eq!(count(&app, "SELECT COUNT(*) FROM mfa_evidence_snapshot").await, per_run);
    assert_eq!(count(&app, "SELECT COUNT(*) FROM mfa_history WHERE valid_to IS NOT NULL").await, 0);
    assert_eq!(count(&app, "SELECT MIN(pruned_through) FROM mfa_evidence_chain").await, 2);
    let r = verify::verify(&app.state.db, Some(acc)).await.unwrap();
    assert!(r.holds(), "{:?}", r.breaks);
    assert_eq!((r.snapshots as i64, r.rows_recomputed as i64), (per_run, per_run));
    // The kept snapshot still links to the pruned one.
    let tenant = tenant_ids(&app, &t).await[0]["id"].clone();
    let kept = snapshots(&app, &t, &tenant).await;
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0]["sequence"], 3);
    assert!(kept[0]["previousDigest"].is_string());
    // `asOf` before the horizon is refused; within it, answered.
    let q = "query($at: DateTime) { m365Users(asOf: $at) { totalCount } }";
    assert_eq!(error_code(&app.gql(Some(&t), q, json!({"at": t0})).await), Some("BAD_USER_INPUT"));
    let d = data(app.gql(Some(&t), q, json!({"at": now(&app)})).await);
    assert_eq!(d["m365Users"]["totalCount"], count(&app, "SELECT COUNT(*) FROM m365_user").await);
}

#[tokio::test]
async fn disconnect_purges_per_user_history_and_keeps_the_aggregate_snapshots() {
    let app = TestApp::spawn_world(spec(), |_| {}).await;
    let acc = app.account("A", true).await;
    let t = app.admin_token(acc);
    app.connected(acc).await;
    let history = count(&app, "SELECT COUNT(*) FROM mfa_history").await;
    let snaps = count(&app, "SELECT COUNT(*) FROM mfa_evidence_snapshot").await;
    assert!(history > 0 && snaps > 0);
    let q = "mutation { disconnectM365 { users mfaHistoryRows evidenceSnapshotsKept } }";
    let d = data(app.gql(Some(&t), q, json!({})).await)["disconnectM365"].clone();
    assert_eq!(d["mfaHistoryRows"], history);
    assert_eq!(d["evidenceSnapshotsKept"], snaps);
    assert_eq!(count(&app, "SELECT COUNT(*) FROM mfa_history").await, 0);
    assert_eq!(count(&app, "SELECT COUNT(*) FROM mfa_evidence_snapshot").await, snaps);
    // The snapshots still list, with their figures and digests, and say why rows are gone.
    let q = "{ mfaEvidence(first: 500) { totalCount edges { node { id tenant { id } digest rowsAvailable rowsPurgeReason figures { users } } } } }";
    let d = data(app.gql(Some(&t), q, json!({})).await);
    assert_eq!(d["mfaEvidence"]["totalCount"], snaps);
    let node = &d["mfaEvidence"]["edges"][0]["node"];
    assert_eq!((node["rowsAvailable"].clone(), node["tenant"].clone()), (json!(false), Value::Null));
    assert!(node["rowsPurgeReason"].as_str().unwrap().contains("disconnected"));
    assert!(node["figures"]["users"].as_i64().unwrap() > 0);
    // Exports and diffs answer with a code; the chains still verify (digests and links).
    let id = node["id"].as_str().unwrap();
    let r = app.http.get(app.url(&format!("/evidence/mfa?snapshot={id}"))).bearer_auth(&t).send().await.unwrap();
    assert_eq!(r.status(), 410);
    assert_eq!(r.json::<Value>().await.unwrap()["errors"][0]["extensions"]["code"], "EVIDENCE_ROWS_PURGED");
    let q = "query($a: ID!) { mfaEvidenceDiff(from: $a, to: $a) { added { objectId } } }";
    assert_eq!(error_code(&app.gql(Some(&t), q, json!({"a": id})).await), Some("EVIDENCE_ROWS_PURGED"));
    let r = verify::verify(&app.state.db, Some(acc)).await.unwrap();
    assert!(r.holds(), "{:?}", r.breaks);
    assert_eq!((r.rows_purged as i64, r.rows_recomputed), (snaps, 0));
    // The audit receipt says so too.
    let q = "{ auditEvents(first: 10) { edges { node { kind detail } } } }";
    let d = data(app.gql(Some(&t), q, json!({})).await);
    let ev = d["auditEvents"]["edges"].as_array().unwrap().iter().find(|e| e["node"]["kind"] == "DISCONNECTED");
    let detail: Value = serde_json::from_str(ev.unwrap()["node"]["detail"].as_str().unwrap()).unwrap();
    assert_eq!(
        (detail["evidenceSnapshotsKept"].clone(), detail["mfaHistoryRows"].clone()),
        (json!(snaps), json!(history))
    );

    // An account that no longer syncs is still pruned past retention (the hourly pass), and its
    // emptied chains still verify.
    app.state.clock.advance(Duration::from_secs(401 * 86_400));
    assert_eq!(m365_integration::evidence::prune_everywhere(&app.state).await.unwrap(), 1);
    assert_eq!(count(&app, "SELECT COUNT(*) FROM mfa_evidence_snapshot").await, 0);
    let r = verify::verify(&app.state.db, Some(acc)).await.unwrap();
    assert!(r.holds() && r.chains as i64 == snaps, "{:?}", r.breaks);
}

/// A synthetic user as the sync writes it.
fn synthetic_user(i: usize) -> m365_integration::db::users::UserRow {
    use entity::states::{MfaEnforcementState, MfaStatus, MfaVerdict};
    m365_integration::db::users::UserRow {
        object_id: format!("{i:08x}-0000-4000-8000-000000000000"),
        display_name: Some(format!("User {i}")),
        user_principal_name: format!("user{i}@big.example"),
        mail: None,
        aliases: vec![],
        account_enabled: true,
        user_type: Some("Member".into()),
        is_admin: Some(false),
        sku_ids: vec![],
        mfa_status: MfaStatus::Enabled,
        mfa_methods: vec!["microsoftAuthenticatorPush".into()],
        mfa_source: None,
        mfa_unavailable_reason: None,
        mfa_enforcement: MfaEnforcementState::Enforced,
        mfa_enforcement_sources: vec![],
        mfa_policies: vec![],
        mfa_enforcement_reason: None,
        mfa_verdict: MfaVerdict::Protected,
        mfa_explanation: vec![],
        contact_id: None,
        contact_match: None,
    }
}

#[tokio::test]
async fn streaming_exports_are_capped_per_account_so_slow_readers_cannot_take_the_pool() {
    use m365_integration::{db, evidence};
    let app = TestApp::spawn_with(|c| c.evidence_exports_per_account = 1).await;
    let acc = app.account("A", true).await;
    let t = app.admin_token(acc);
    // A tenant big enough that an unread export stays open (more than the socket buffers).
    let db = &app.state.db;
    let guid = "0b1e5c6a-0000-4000-8000-000000000001".to_owned().into();
    let tenant = db::tenants::upsert_discovered(
        db,
        acc,
        &[db::tenants::NewTenant { tenant_id: &guid, display_name: "Big", gdap_roles: &[] }],
        chrono::Utc::now(),
    )
    .await
    .unwrap()
    .remove(0);
    let rows: Vec<_> = (0..30_000).map(synthetic_user).collect();
    let now = evidence::canonical::micros(app.state.clock.now());
    let txn = db::write_txn(db).await.unwrap();
    let ids = db::users::replace_users(&txn, acc, tenant.id, &rows, now).await.unwrap().ids;
    let rec = evidence::Recording {
        account_id: acc,
        tenant: &tenant,
        run_id: 0,
        users: &rows,
        user_ids: &ids,
        snapshot: true,
        now,
    };
    let snap = evidence::record(&txn, &rec).await.unwrap().snapshot.unwrap();
    txn.commit().await.unwrap();
    let url = app.url(&format!("/evidence/mfa?snapshot={}", snap.id));

    // The first export streams to a reader that does not read; the second waits its turn.
    let held = app.http.get(&url).bearer_auth(&t).send().await.unwrap();
    assert_eq!(held.status(), 200);
    let r = app.http.get(&url).bearer_auth(&t).send().await.unwrap();
    assert_eq!(r.status(), 503);
    assert!(r.headers().contains_key("retry-after"));
    assert_eq!(r.json::<Value>().await.unwrap()["errors"][0]["extensions"]["code"], "TOO_MANY_EXPORTS");
    // When the reader goes away its slot frees; the whole file then arrives.
    drop(held);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let r = app.http.get(&url).bearer_auth(&t).send().await.unwrap();
        if r.status() == 200 {
            let text = r.text().await.unwrap();
            assert_eq!(text.lines().filter(|l| !l.starts_with("# ")).count(), 30_001);
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the slot was not freed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
