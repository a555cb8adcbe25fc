//! The read step: what one sync asks Microsoft, through the typed calls of
//! [`crate::microsoft::directory`]. Nothing here writes; [`super::plan`] decides what the answers
//! mean.

use std::collections::BTreeMap;

use entity::types::TenantGuid;

use std::collections::{HashMap, HashSet};

use super::{
    enforcement::{self, CaRead, Enforcement, PolicyRead, UserFacts},
    mfa::{MethodsRead, ReportRead},
};
use crate::microsoft::{
    graph::{GraphClient, GraphError},
    models::{DelegatedAdminRelationship, Organization, SubscribedSku, User},
    roles,
};

/// A customer tenant found through GDAP.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Discovered {
    /// Microsoft's tenant id.
    pub tenant_id: TenantGuid,
    /// Name from the relationship.
    pub display_name: String,
    /// Role template ids held across its active relationships, sorted.
    pub gdap_roles: Vec<String>,
}

/// Customers with an active GDAP relationship.
pub async fn discover(graph: &GraphClient, token: &str) -> Result<Vec<Discovered>, GraphError> {
    Ok(customers(graph.active_relationships(token).await?))
}

/// Groups relationships by customer tenant with the union of their roles. Relationships that are
/// not active, or that Microsoft's transition tool made (`MLT_*`), are skipped.
pub fn customers(relationships: Vec<DelegatedAdminRelationship>) -> Vec<Discovered> {
    let mut by_tenant: BTreeMap<String, (String, Vec<String>)> = BTreeMap::new();
    for r in relationships {
        if r.status != "active" || r.display_name.as_deref().is_some_and(|n| n.starts_with("MLT_")) {
            continue;
        }
        let Some(c) = r.customer else { continue };
        let entry = by_tenant
            .entry(c.tenant_id.clone())
            .or_insert_with(|| (c.display_name.clone().unwrap_or_else(|| c.tenant_id.clone()), vec![]));
        for role in r.access_details.map(|a| a.unified_roles).unwrap_or_default() {
            if !entry.1.contains(&role.role_definition_id) {
                entry.1.push(role.role_definition_id);
            }
        }
    }
    by_tenant
        .into_iter()
        .map(|(tenant_id, (display_name, mut gdap_roles))| {
            gdap_roles.sort();
            Discovered { tenant_id: TenantGuid(tenant_id), display_name, gdap_roles }
        })
        .collect()
}

/// Everything read from one tenant.
#[derive(Debug)]
pub struct TenantRead {
    /// None when Microsoft listed no organization.
    pub org: Option<Organization>,
    pub users: Vec<User>,
    /// Subscriptions, or why they could not be read (the tenant is still synced without them).
    pub licenses: Result<Vec<SubscribedSku>, GraphError>,
    pub report: ReportRead,
    pub methods: MethodsRead,
    /// Legacy per-user MFA of the users the policies leave not enforced: the state, or why it
    /// could not be read.
    pub per_user: HashMap<String, Result<String, String>>,
    /// Security defaults, Conditional Access and the memberships they name.
    policies: PolicyRead,
    /// Each user's enforcement by the tenant's policies alone (before per-user MFA), in `users`
    /// order: evaluated once, when the policies are set, for deciding whose per-user state to read
    /// and for the plan.
    by_policy: Vec<Enforcement>,
    /// `isAdmin` of the registration report, by user id (empty without the report).
    admin_by_report: HashMap<String, bool>,
}

impl TenantRead {
    /// What was read, with the policies evaluated for every user.
    pub fn new(
        org: Option<Organization>,
        users: Vec<User>,
        licenses: Result<Vec<SubscribedSku>, GraphError>,
        report: ReportRead,
        methods: MethodsRead,
        policies: PolicyRead,
    ) -> Self {
        let admin_by_report = match &report {
            ReportRead::Rows(rows) => rows.iter().filter_map(|r| r.is_admin.map(|a| (r.id.clone(), a))).collect(),
            _ => HashMap::new(),
        };
        let by_policy = evaluate_all(&users, &policies, &admin_by_report);
        Self { org, users, licenses, report, methods, per_user: HashMap::new(), policies, by_policy, admin_by_report }
    }

    /// The same read with other policies (evaluated again).
    pub fn with_policies(mut self, policies: PolicyRead) -> Self {
        self.by_policy = evaluate_all(&self.users, &policies, &self.admin_by_report);
        self.policies = policies;
        self
    }

    /// The tenant's policies as read.
    pub fn policies(&self) -> &PolicyRead {
        &self.policies
    }

    /// User `i`'s enforcement by the tenant's policies alone.
    pub fn by_policy(&self, i: usize) -> &Enforcement {
        &self.by_policy[i]
    }
}

/// What the enforcement evaluation needs to know about a user: a guest, and an administrator
/// by the report, else by Global Administrator membership.
fn facts<'a>(u: &'a User, policies: &PolicyRead, admin_by_report: &HashMap<String, bool>) -> UserFacts<'a> {
    let from_report = admin_by_report.get(&u.id).copied();
    let from_role = match policies.roles.get(roles::GLOBAL_ADMINISTRATOR) {
        Some(Ok(members)) => Some(members.contains(&u.id)),
        _ => None,
    };
    UserFacts {
        id: &u.id,
        guest: u.user_type.as_deref().is_some_and(|t| t.eq_ignore_ascii_case("Guest")),
        admin: from_report.or(from_role).unwrap_or(false),
    }
}

fn evaluate_all(users: &[User], policies: &PolicyRead, admin_by_report: &HashMap<String, bool>) -> Vec<Enforcement> {
    users.iter().map(|u| enforcement::evaluate(&facts(u, policies, admin_by_report), policies)).collect()
}

fn refused(what: &str, e: &GraphError) -> String {
    enforcement::refusal(what, e.status(), e.code())
}

/// Reads what decides MFA enforcement: security defaults, Conditional Access (not asked when the
/// SKUs show no Entra ID P1), the members of the groups and roles the MFA policies name (and of
/// Global Administrator when security defaults are on and the report did not say who is an
/// administrator).
async fn policies(graph: &GraphClient, token: &str, p1: Option<bool>, report_has_admins: bool) -> PolicyRead {
    let security_defaults = graph.security_defaults(token).await.map_err(|e| refused("security defaults", &e));
    let conditional_access = match p1 {
        Some(false) => CaRead::NotLicensed,
        _ => match graph.conditional_access_policies(token).await {
            Ok(p) => CaRead::Policies(p),
            Err(e) => CaRead::Refused(refused("Conditional Access policies", &e)),
        },
    };
    let (group_ids, mut role_ids) = match &conditional_access {
        CaRead::Policies(p) => enforcement::named_groups_and_roles(p),
        _ => (vec![], vec![]),
    };
    if security_defaults == Ok(true) && !report_has_admins && !role_ids.iter().any(|r| r == roles::GLOBAL_ADMINISTRATOR)
    {
        role_ids.push(roles::GLOBAL_ADMINISTRATOR.to_owned());
    }
    let mut groups = HashMap::new();
    for g in group_ids {
        let members = graph.group_user_members(token, &g).await;
        groups.insert(g, members.map(HashSet::from_iter).map_err(|e| refused("group members", &e)));
    }
    let mut role_members = HashMap::new();
    for r in role_ids {
        let members = graph.role_user_members(token, &r).await;
        role_members.insert(r, members.map(HashSet::from_iter).map_err(|e| refused("role members", &e)));
    }
    PolicyRead { security_defaults, conditional_access, groups, roles: role_members }
}

/// How many users' methods are asked first, to learn whether the tenant refuses them all.
const PROBE: usize = 20;

/// Reads one tenant: organization, users and licenses (these fail the tenant when refused,
/// except licenses); MFA registration: the registration report when the tenant has Entra ID P1,
/// else, or when refused, each user's authentication methods; then MFA enforcement: the tenant's
/// policies ([`policies`]) and per-user MFA for the users they leave not enforced.
pub async fn tenant(graph: &GraphClient, token: &str) -> Result<TenantRead, GraphError> {
    let org = graph.organization(token).await?;
    let users = graph.users(token).await?;
    let licenses = graph.subscribed_skus(token).await;
    // The report needs Entra ID P1: when the tenant's SKUs show none, do not ask.
    let report = match &licenses {
        Ok(skus) if !has_p1(skus) => ReportRead::NotLicensed,
        _ => match graph.registration_details(token).await {
            Ok(rows) => ReportRead::Rows(rows),
            Err(e) => ReportRead::Refused(e),
        },
    };
    let methods = match report {
        ReportRead::Rows(_) => MethodsRead::NotRead,
        _ => {
            let ids: Vec<&str> = users.iter().map(|u| u.id.as_str()).collect();
            let split = ids.len().min(PROBE);
            let mut per_user = graph.authentication_methods(token, &ids[..split]).await?;
            let refused_at_probe =
                !per_user.is_empty() && per_user.values().all(|a| matches!(a, Err(e) if e.status() == Some(403)));
            if !refused_at_probe && split < ids.len() {
                per_user.extend(graph.authentication_methods(token, &ids[split..]).await?);
            }
            MethodsRead::Answers { per_user, refused_at_probe }
        }
    };
    let p1 = licenses.as_ref().ok().map(|skus| has_p1(skus));
    let report_has_admins = matches!(&report, ReportRead::Rows(rows) if rows.iter().any(|r| r.is_admin.is_some()));
    let policies = policies(graph, token, p1, report_has_admins).await;
    let mut read = TenantRead::new(org, users, licenses, report, methods, policies);
    // Per-user MFA only for the users the tenant's policies leave not enforced.
    let pending: Vec<&str> = read
        .users
        .iter()
        .zip(&read.by_policy)
        .filter(|(_, e)| e.needs_per_user())
        .map(|(u, _)| u.id.as_str())
        .collect();
    if !pending.is_empty() {
        let per_user: HashMap<String, Result<String, String>> = match graph.per_user_mfa(token, &pending).await {
            Ok(answers) => {
                answers.into_iter().map(|(id, a)| (id, a.map_err(|e| refused("per-user MFA", &e)))).collect()
            }
            Err(e) => {
                let why = refused("per-user MFA", &e);
                pending.iter().map(|id| ((*id).to_owned(), Err(why.clone()))).collect()
            }
        };
        read.per_user = per_user;
    }
    Ok(read)
}

/// Whether an enabled subscription includes Entra ID P1 (or P2), which the report needs.
pub fn has_p1(skus: &[SubscribedSku]) -> bool {
    skus.iter().any(|s| {
        matches!(s.capability_status.as_deref(), None | Some("Enabled") | Some("Warning"))
            && s.service_plans.iter().any(|p| matches!(p.service_plan_name.as_str(), "AAD_PREMIUM" | "AAD_PREMIUM_P2"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn relationship(json: serde_json::Value) -> DelegatedAdminRelationship {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn customers_union_roles_and_skip_inactive_and_transition_relationships() {
        let rel = |name: &str, status: &str, tenant: &str, roles: &[&str]| {
            relationship(serde_json::json!({
                "id": name, "displayName": name, "status": status,
                "customer": {"tenantId": tenant, "displayName": format!("{tenant} Ltd")},
                "accessDetails": {"unifiedRoles": roles.iter().map(|r| serde_json::json!({"roleDefinitionId": r})).collect::<Vec<_>>()}
            }))
        };
        let found = customers(vec![
            rel("a", "active", "t2", &["r2", "r1"]),
            rel("b", "active", "t2", &["r1", "r3"]),
            rel("c", "expired", "t3", &["r1"]),
            rel("MLT_x", "active", "t4", &["r1"]),
            rel("d", "active", "t1", &[]),
        ]);
        assert_eq!(
            found,
            vec![
                Discovered { tenant_id: TenantGuid("t1".into()), display_name: "t1 Ltd".into(), gdap_roles: vec![] },
                Discovered {
                    tenant_id: TenantGuid("t2".into()),
                    display_name: "t2 Ltd".into(),
                    gdap_roles: vec!["r1".into(), "r2".into(), "r3".into()]
                },
            ]
        );
    }

    #[test]
    fn p1_comes_from_an_enabled_plan() {
        let sku = |status: Option<&str>, plan: &str| -> SubscribedSku {
            serde_json::from_value(serde_json::json!({
                "skuId": "s", "skuPartNumber": "X", "capabilityStatus": status,
                "servicePlans": [{"servicePlanId": "p", "servicePlanName": plan}]
            }))
            .unwrap()
        };
        assert!(has_p1(&[sku(Some("Enabled"), "AAD_PREMIUM")]));
        assert!(has_p1(&[sku(None, "AAD_PREMIUM_P2")]));
        assert!(has_p1(&[sku(Some("Warning"), "AAD_PREMIUM")]));
        assert!(!has_p1(&[sku(Some("Suspended"), "AAD_PREMIUM")]));
        assert!(!has_p1(&[sku(Some("Enabled"), "EXCHANGE_S_STANDARD")]));
        assert!(!has_p1(&[]));
    }
}
