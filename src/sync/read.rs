//! The read step: what one sync asks Microsoft, through the typed calls of
//! [`crate::microsoft::directory`]. Nothing here writes; [`super::plan`] decides what the answers
//! mean.

use std::collections::BTreeMap;

use entity::types::TenantGuid;

use super::mfa::{MethodsRead, ReportRead};
use crate::microsoft::{
    graph::{GraphClient, GraphError},
    models::{DelegatedAdminRelationship, Organization, SubscribedSku, User},
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
}

/// How many users' methods are asked first, to learn whether the tenant refuses them all.
const PROBE: usize = 20;

/// Reads one tenant: organization, users and licenses (these fail the tenant when refused,
/// except licenses), then MFA: the registration report when the tenant has Entra ID P1, else,
/// or when refused, each user's authentication methods.
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
    Ok(TenantRead { org, users, licenses, report, methods })
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
