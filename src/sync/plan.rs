//! The plan step: pure. From what was read from a tenant, its MFA resolution and the contact
//! index of its mapped client, the rows to write, the tenant's details, and its outcome with
//! the problem a person sees first. No I/O, so every outcome is unit-tested here.

use chrono::{DateTime, Utc};
use entity::{
    m365_tenant,
    states::{MfaSource, MfaVerdict, TenantOutcome},
    types::{CaPolicySummary, MfaPolicy, TenantResult},
};

use super::{
    enforcement::{self, CaRead},
    mfa::MfaResolution,
    read::TenantRead,
};
use crate::{
    contacts::{self, ContactIndex},
    db::users::{LicenseRow, UserRow},
    microsoft::{
        graph::GraphError,
        models::{SubscribedSku, User},
    },
};

/// Something that kept a tenant from being read in full (or at all).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// Machine-readable, e.g. `MFA_UNAVAILABLE`, `LICENSES_UNREADABLE`, `CONSENT_MISSING`.
    pub code: &'static str,
    /// What went wrong, for a person.
    pub message: String,
    /// What the MSP can do about it.
    pub remediation: String,
}

/// What was learned about the tenant itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Details {
    pub display_name: String,
    pub default_domain: Option<String>,
    pub domains: Vec<String>,
    pub mfa_source: Option<MfaSource>,
    pub mfa_policy: MfaPolicy,
}

/// Everything the write step stores for one tenant.
#[derive(Debug)]
pub struct TenantPlan {
    pub users: Vec<UserRow>,
    /// None when licenses could not be read: the stored ones are kept.
    pub licenses: Option<Vec<LicenseRow>>,
    pub details: Details,
    /// OK, or PARTIAL with the problems, most important first.
    pub outcome: TenantOutcome,
    pub problems: Vec<Problem>,
}

impl TenantPlan {
    /// The first problem, which the tenant row and the run's result show.
    pub fn first_problem(&self) -> Option<&Problem> {
        self.problems.first()
    }

    /// The tenant's entry in the run's results.
    pub fn result(&self, tenant: &m365_tenant::Model) -> TenantResult {
        let p = self.first_problem();
        TenantResult {
            tenant_id: tenant.microsoft_tenant_id.clone(),
            display_name: self.details.display_name.clone(),
            outcome: self.outcome,
            error_code: p.map(|p| p.code.to_owned()),
            error: p.map(|p| p.message.clone()),
            remediation: p.map(|p| p.remediation.clone()),
            users_synced: self.users.len() as i64,
        }
    }
}

const LICENSES_REMEDIATION: &str = "Give the GDAP relationship Global Reader (or Directory Readers) and make sure the consent includes organization read access.";

/// Plans one tenant's write (`now` is when its policies were read).
pub fn plan(
    known_name: &str,
    read: &TenantRead,
    mfa: &MfaResolution,
    index: Option<&ContactIndex>,
    now: DateTime<Utc>,
) -> TenantPlan {
    let users: Vec<UserRow> =
        read.users.iter().enumerate().map(|(i, u)| user_row(u, read.by_policy(i), read, mfa, index)).collect();
    let mfa_policy = mfa_policy(read, now);
    let mut problems = vec![];
    if let Some((reason, remediation)) = mfa.problem() {
        problems.push(Problem {
            code: "MFA_UNAVAILABLE",
            message: reason.to_owned(),
            remediation: remediation.to_owned(),
        });
    }
    let licenses = match &read.licenses {
        Ok(skus) => Some(skus.iter().map(license_row).collect()),
        Err(e) => {
            problems.push(licenses_unreadable(e));
            None
        }
    };
    if let Some(why) = &mfa_policy.unavailable_reason {
        problems.push(Problem {
            code: "MFA_ENFORCEMENT_UNKNOWN",
            message: format!("Whether MFA is required could not be read for every user: {why}"),
            remediation: "Give the GDAP relationship Global Reader (it covers security defaults, Conditional Access, memberships and per-user MFA), and make sure the consent includes Policy.Read.All.".into(),
        });
    }
    let org = read.org.as_ref();
    let domains = org.map(|o| o.verified_domains.iter().map(|v| v.name.to_lowercase()).collect()).unwrap_or_default();
    let default_domain =
        org.and_then(|o| o.verified_domains.iter().find(|v| v.is_default)).map(|v| v.name.to_lowercase());
    let display_name = org.and_then(|o| o.display_name.clone()).unwrap_or_else(|| known_name.to_owned());
    TenantPlan {
        users,
        licenses,
        details: Details { display_name, default_domain, domains, mfa_source: mfa.source(), mfa_policy },
        outcome: if problems.is_empty() { TenantOutcome::Ok } else { TenantOutcome::Partial },
        problems,
    }
}

fn licenses_unreadable(e: &GraphError) -> Problem {
    Problem {
        code: "LICENSES_UNREADABLE",
        message: format!("Subscribed licenses could not be read: {e}."),
        remediation: LICENSES_REMEDIATION.into(),
    }
}

/// The tenant's policies as read, for `M365Tenant.mfaPolicy`.
fn mfa_policy(read: &TenantRead, now: DateTime<Utc>) -> MfaPolicy {
    let p = read.policies();
    let mut reasons: Vec<String> = vec![];
    if let Err(e) = &p.security_defaults {
        reasons.push(e.clone());
    }
    let (conditional_access, licensed) = match &p.conditional_access {
        CaRead::Policies(list) => (
            list.iter()
                .map(enforcement::summarize)
                .filter(|s| s.requires_mfa || s.mfa_optional)
                .map(|s| CaPolicySummary {
                    name: s.name,
                    state: s.state,
                    requires_mfa: s.requires_mfa,
                    all_users: s.all_users,
                    all_apps: s.all_apps,
                    conditional: s.conditional,
                })
                .collect(),
            true,
        ),
        CaRead::NotLicensed => (vec![], false),
        CaRead::Refused(e) => {
            if !reasons.contains(e) {
                reasons.push(e.clone());
            }
            (vec![], true)
        }
    };
    for e in p.groups.values().chain(p.roles.values()).filter_map(|r| r.as_ref().err()) {
        if !reasons.contains(e) {
            reasons.push(e.clone());
        }
    }
    if let Some(e) = read.per_user.values().find_map(|r| r.as_ref().err())
        && !reasons.contains(e)
    {
        reasons.push(e.clone());
    }
    MfaPolicy {
        security_defaults_enabled: p.security_defaults.as_ref().ok().copied(),
        conditional_access,
        conditional_access_licensed: licensed,
        readable: reasons.is_empty(),
        unavailable_reason: (!reasons.is_empty()).then(|| reasons.join(" ")),
        read_at: now,
    }
}

fn user_row(
    u: &User,
    by_policy: &enforcement::Enforcement,
    read: &TenantRead,
    mfa: &MfaResolution,
    index: Option<&ContactIndex>,
) -> UserRow {
    let aliases = contacts::aliases(&u.proxy_addresses, &u.other_mails);
    let link =
        index.map(|ix| ix.matches(&contacts::user_addresses(u.mail.as_deref(), &u.user_principal_name, &aliases)));
    let (contact_id, contact_match) = link.map(|l| l.columns()).unwrap_or((None, None));
    let m = mfa.user(&u.id);
    let e = enforcement::with_per_user(by_policy.clone(), read.per_user.get(&u.id));
    UserRow {
        object_id: u.id.clone(),
        display_name: u.display_name.clone(),
        user_principal_name: u.user_principal_name.clone(),
        mail: u.mail.clone(),
        aliases,
        account_enabled: u.account_enabled.unwrap_or(true),
        user_type: u.user_type.clone(),
        is_admin: mfa.is_admin(&u.id),
        sku_ids: u.assigned_licenses.iter().map(|l| l.sku_id.to_lowercase()).collect(),
        mfa_status: m.status,
        mfa_methods: m.methods,
        mfa_source: m.source,
        mfa_verdict: MfaVerdict::of(m.status, e.state),
        mfa_unavailable_reason: m.unavailable_reason,
        mfa_enforcement: e.state,
        mfa_enforcement_sources: e.sources,
        mfa_policies: e.policies,
        mfa_enforcement_reason: e.unknown_reason,
        mfa_explanation: e.explanation,
        contact_id,
        contact_match,
    }
}

fn license_row(s: &SubscribedSku) -> LicenseRow {
    LicenseRow {
        sku_id: s.sku_id.to_lowercase(),
        sku_part_number: s.sku_part_number.clone(),
        capability_status: s.capability_status.clone().unwrap_or_else(|| "Enabled".into()),
        enabled_units: s.prepaid_units.enabled,
        consumed_units: s.consumed_units,
        suspended_units: s.prepaid_units.suspended,
        warning_units: s.prepaid_units.warning,
    }
}

/// A tenant that could not be read: its entry in the run's results (nothing else is written
/// but the outcome, so stored data is kept).
pub fn failed(tenant: &m365_tenant::Model, problem: &Problem) -> TenantResult {
    TenantResult {
        tenant_id: tenant.microsoft_tenant_id.clone(),
        display_name: tenant.display_name.clone(),
        outcome: TenantOutcome::Failed,
        error_code: Some(problem.code.to_owned()),
        error: Some(problem.message.clone()),
        remediation: Some(problem.remediation.clone()),
        users_synced: 0,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use entity::states::MfaStatus;
    use serde_json::json;

    use super::*;
    use crate::sync::{
        enforcement::PolicyRead,
        mfa::{self, MethodsRead, ReportRead},
    };

    fn user(id: &str, mail: &str, proxies: &[&str]) -> User {
        serde_json::from_value(json!({
            "id": id, "displayName": id, "userPrincipalName": format!("{id}@contoso.onmicrosoft.com"),
            "mail": mail, "proxyAddresses": proxies, "otherMails": [], "accountEnabled": true,
            "userType": "Member", "assignedLicenses": [{"skuId": "6FD2C87F-B296-42F0-B197-1E91E994B900"}]
        }))
        .unwrap()
    }

    fn read(licenses: Result<Vec<SubscribedSku>, GraphError>) -> TenantRead {
        let org = serde_json::from_value(json!({
            "id": "t", "displayName": "Contoso",
            "verifiedDomains": [{"name": "Contoso.onmicrosoft.com", "isDefault": false}, {"name": "Contoso.com", "isDefault": true}]
        }))
        .unwrap();
        let users = vec![
            user("alice", "Alice@contoso.com", &["SMTP:Alice@contoso.com", "smtp:a@contoso.com"]),
            user("bob", "bob@contoso.com", &[]),
        ];
        let policies = PolicyRead {
            security_defaults: Ok(false),
            conditional_access: CaRead::Policies(vec![
                serde_json::from_value(json!({
                    "id": "p", "displayName": "Require MFA for all users", "state": "enabled",
                    "conditions": {"users": {"includeUsers": ["All"]}, "applications": {"includeApplications": ["All"]}},
                    "grantControls": {"operator": "OR", "builtInControls": ["mfa"]}
                }))
                .unwrap(),
            ]),
            groups: HashMap::new(),
            roles: HashMap::new(),
        };
        TenantRead::new(Some(org), users, licenses, ReportRead::NotLicensed, MethodsRead::NotRead, policies)
    }

    fn skus() -> Vec<SubscribedSku> {
        vec![
            serde_json::from_value(
                json!({"skuId": "ABC", "skuPartNumber": "SPB", "consumedUnits": 3, "prepaidUnits": {"enabled": 5}}),
            )
            .unwrap(),
        ]
    }

    fn by_report() -> MfaResolution {
        MfaResolution::Report {
            users: HashMap::from([
                ("alice".into(), mfa::from_methods(&[])),
                ("bob".into(), mfa::unavailable("lagging".into())),
            ]),
            is_admin: HashMap::from([("alice".into(), true)]),
        }
    }

    fn now() -> DateTime<Utc> {
        "2026-11-28T12:00:00Z".parse().unwrap()
    }

    #[test]
    fn unreadable_policies_are_partial_and_every_verdict_unknown() {
        let r = read(Ok(skus()));
        let mut policies = r.policies().clone();
        policies.security_defaults = Err("refused: give Security Reader".into());
        policies.conditional_access = CaRead::Refused("refused: give Security Reader".into());
        let r = r.with_policies(policies);
        let p = plan("x", &r, &by_report(), None, now());
        assert_eq!(p.outcome, TenantOutcome::Partial);
        assert_eq!(p.first_problem().unwrap().code, "MFA_ENFORCEMENT_UNKNOWN");
        assert!(!p.details.mfa_policy.readable);
        assert_eq!(p.details.mfa_policy.unavailable_reason.as_deref(), Some("refused: give Security Reader"));
        assert!(p.users.iter().all(|u| u.mfa_verdict == MfaVerdict::Unknown));
        assert!(
            p.users.iter().all(|u| u.mfa_enforcement_reason.as_deref().is_some_and(|r| r.contains("Security Reader")))
        );
        // No P1: no Conditional Access, said so, and readable.
        let mut policies = r.policies().clone();
        policies.security_defaults = Ok(false);
        policies.conditional_access = CaRead::NotLicensed;
        let r = r.with_policies(policies);
        let p = plan("x", &r, &by_report(), None, now());
        assert!(p.details.mfa_policy.readable && !p.details.mfa_policy.conditional_access_licensed);
        assert_eq!(p.users[0].mfa_verdict, MfaVerdict::Unprotected);
    }

    fn unavailable() -> MfaResolution {
        MfaResolution::Unavailable { reason: "MFA is unavailable: x".into(), remediation: "add Global Reader".into() }
    }

    #[test]
    fn everything_read_is_ok_with_rows_details_and_links() {
        let index = ContactIndex::new([(7_i64, &["a@contoso.com".to_string()][..])]);
        let p = plan("Old name", &read(Ok(skus())), &by_report(), Some(&index), now());
        assert_eq!(p.outcome, TenantOutcome::Ok);
        assert!(p.problems.is_empty());
        let d = &p.details;
        assert_eq!(
            (d.display_name.as_str(), d.default_domain.as_deref(), d.domains.as_slice(), d.mfa_source),
            (
                "Contoso",
                Some("contoso.com"),
                &["contoso.onmicrosoft.com".to_string(), "contoso.com".to_string()][..],
                Some(MfaSource::RegistrationReport)
            )
        );
        assert_eq!(d.mfa_policy.security_defaults_enabled, Some(false));
        assert!(d.mfa_policy.readable && d.mfa_policy.conditional_access_licensed);
        assert_eq!(d.mfa_policy.conditional_access[0].name, "Require MFA for all users");
        // Alice has no strong method but the policy requires MFA; Bob's registration is unknown.
        assert_eq!(p.users[0].mfa_enforcement, entity::states::MfaEnforcementState::Enforced);
        assert_eq!(p.users[0].mfa_verdict, MfaVerdict::NotRegistered);
        assert_eq!(p.users[0].mfa_policies, ["Require MFA for all users"]);
        assert_eq!(p.users[1].mfa_verdict, MfaVerdict::Unknown);
        let alice = &p.users[0];
        assert_eq!(alice.aliases, ["a@contoso.com", "alice@contoso.com"]);
        assert_eq!((alice.contact_id, alice.contact_match.as_deref()), (Some(7), Some("linked:a@contoso.com")));
        assert_eq!(
            (alice.is_admin, alice.sku_ids.as_slice()),
            (Some(true), &["6fd2c87f-b296-42f0-b197-1e91e994b900".to_string()][..])
        );
        assert_eq!(p.users[1].mfa_status, MfaStatus::Unavailable);
        assert_eq!((p.users[1].is_admin, p.users[1].contact_id), (None, None));
        let lic = p.licenses.as_ref().unwrap();
        assert_eq!(
            (lic[0].sku_id.as_str(), lic[0].capability_status.as_str(), lic[0].enabled_units),
            ("abc", "Enabled", 5)
        );
        let t = tenant();
        let r = p.result(&t);
        assert_eq!((r.outcome, r.users_synced, r.error_code), (TenantOutcome::Ok, 2, None));
    }

    #[test]
    fn an_unmapped_tenant_links_nobody() {
        let p = plan("x", &read(Ok(skus())), &by_report(), None, now());
        assert!(p.users.iter().all(|u| u.contact_id.is_none() && u.contact_match.is_none()));
    }

    #[test]
    fn unreadable_licenses_are_partial_and_keep_stored_ones() {
        let e = GraphError::Api {
            status: 403,
            code: "Authorization_RequestDenied".into(),
            message: "no".into(),
            request_id: None,
        };
        let p = plan("x", &read(Err(e)), &by_report(), None, now());
        assert_eq!(p.outcome, TenantOutcome::Partial);
        assert!(p.licenses.is_none());
        assert_eq!(p.first_problem().unwrap().code, "LICENSES_UNREADABLE");
        assert_eq!(p.users.len(), 2, "users are still written");
    }

    #[test]
    fn unavailable_mfa_is_partial_and_comes_before_licenses() {
        let e = GraphError::Transport("reset".into());
        let p = plan("x", &read(Err(e)), &unavailable(), None, now());
        assert_eq!(p.outcome, TenantOutcome::Partial);
        assert_eq!(p.problems.iter().map(|p| p.code).collect::<Vec<_>>(), ["MFA_UNAVAILABLE", "LICENSES_UNREADABLE"]);
        assert_eq!(p.details.mfa_source, None);
        assert!(p.users.iter().all(|u| u.mfa_unavailable_reason.as_deref() == Some("MFA is unavailable: x")));
        let r = p.result(&tenant());
        assert_eq!(
            (r.outcome, r.error_code.as_deref(), r.remediation.as_deref()),
            (TenantOutcome::Partial, Some("MFA_UNAVAILABLE"), Some("add Global Reader"))
        );
    }

    #[test]
    fn no_organization_keeps_the_known_name() {
        let mut r = read(Ok(skus()));
        r.org = None;
        let p = plan("Known", &r, &by_report(), None, now());
        assert_eq!((p.details.display_name.as_str(), p.details.domains.len()), ("Known", 0));
    }

    #[test]
    fn a_failed_tenant_keeps_its_name_and_carries_the_problem() {
        let problem = Problem { code: "CONSENT_MISSING", message: "m".into(), remediation: "r".into() };
        let r = failed(&tenant(), &problem);
        assert_eq!((r.outcome, r.users_synced, r.display_name.as_str()), (TenantOutcome::Failed, 0, "Stored"));
        assert_eq!(r.error_code.as_deref(), Some("CONSENT_MISSING"));
    }

    fn tenant() -> m365_tenant::Model {
        crate::test_support::tenant(1, "Stored", &[])
    }
}
