//! Tenant mapping (the guide's Step 4): each discovered tenant maps to one of the MSP's clients.
//! Suggested matches come from [`suggest`]; creating or deleting a mapping relinks the tenant's
//! users to the client's contacts at once, in the same transaction.

pub mod scoring;
pub mod suggest;

use entity::{m365_tenant, states::MappingMethod, tenant_mapping};
use sea_orm::{ConnectionTrait, DatabaseConnection};

use crate::{
    contacts, db,
    error::{AppError, AppResult},
};

/// What accepting suggestions does with one selected tenant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Acceptance {
    /// Map it to this client.
    Map(i64),
    /// Leave it, for this reason.
    Skip(String),
}

/// Accepting suggestions (pure): for each selected tenant in order, its top suggestion when the
/// confidence is at least `min_confidence` and it is not mapped yet. A client accepted for one
/// tenant counts as mapped for the next ones, so it ranks lower there as it would after saving.
pub fn accept_suggestions(
    tenants: &[&m365_tenant::Model],
    candidates: &[suggest::Candidate],
    mut mapped: suggest::Mapped,
    min_confidence: i32,
) -> Vec<Acceptance> {
    let mut out = Vec::with_capacity(tenants.len());
    for t in tenants {
        if mapped.values().any(|ts| ts.contains(&t.id)) {
            out.push(Acceptance::Skip("already mapped".into()));
            continue;
        }
        let elsewhere = |client: i64| mapped.get(&client).is_some_and(|ts| ts.iter().any(|x| *x != t.id));
        out.push(match suggest::suggest(&t.display_name, &t.domains.0, candidates, elsewhere, 1).into_iter().next() {
            Some(s) if s.confidence >= min_confidence => {
                mapped.entry(s.client_id).or_default().insert(t.id);
                Acceptance::Map(s.client_id)
            }
            Some(s) => {
                Acceptance::Skip(format!("best suggestion has confidence {} (below {min_confidence})", s.confidence))
            }
            None => Acceptance::Skip("no suggestion".into()),
        });
    }
    out
}

/// One requested mapping, with the input path used to name it in errors.
#[derive(Clone, Debug)]
pub struct MappingRequest {
    /// `m365_tenant.id`.
    pub tenant_row: i64,
    /// `client.id`.
    pub client_id: i64,
    /// Where it came from, e.g. `mappings[2]`.
    pub path: String,
}

async fn create_one(
    db: &impl ConnectionTrait,
    account_id: i64,
    r: &MappingRequest,
    how: MappingMethod,
    by: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> AppResult<tenant_mapping::Model> {
    let tenant = db::tenants::get(db, account_id, r.tenant_row).await?.ok_or_else(|| {
        AppError::bad_input(format!("{}.tenantId", r.path), format!("{}.tenantId: no such tenant", r.path))
    })?;
    if db::clients::get(db, account_id, r.client_id).await?.is_none() {
        return Err(AppError::bad_input(
            format!("{}.clientId", r.path),
            format!("{}.clientId: no such client", r.path),
        ));
    }
    let Some(m) = db::mappings::create(db, account_id, tenant.id, r.client_id, how, by, now).await? else {
        return Err(AppError::Conflict(format!(
            "{}: tenant {} is already mapped; delete that mapping first",
            r.path, tenant.display_name
        )));
    };
    contacts::relink_tenant(db, tenant.id).await?;
    Ok(m)
}

/// Maps tenants to clients, all or nothing: the first bad item is named and nothing is stored.
pub async fn create(
    db: &DatabaseConnection,
    account_id: i64,
    requests: &[MappingRequest],
    how: MappingMethod,
    by: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> AppResult<Vec<tenant_mapping::Model>> {
    if requests.len() > 1000 {
        return Err(AppError::bad_input("mappings", "at most 1000 mappings per call"));
    }
    let mut seen = std::collections::HashSet::new();
    for r in requests {
        if !seen.insert(r.tenant_row) {
            return Err(AppError::bad_input(
                format!("{}.tenantId", r.path),
                format!("{}.tenantId: the same tenant appears twice", r.path),
            ));
        }
    }
    let txn = db::write_txn(db).await?;
    let mut out = Vec::with_capacity(requests.len());
    for r in requests {
        out.push(create_one(&txn, account_id, r, how, by, now).await?);
    }
    txn.commit().await?;
    Ok(out)
}

/// Unmaps a tenant and removes its users' contact links; `NOT_FOUND` when it is not mapped.
pub async fn delete(db: &DatabaseConnection, account_id: i64, tenant_row: i64) -> AppResult<()> {
    let txn = db::write_txn(db).await?;
    if db::tenants::get(&txn, account_id, tenant_row).await?.is_none() {
        return Err(AppError::NotFound("tenant"));
    }
    if !db::mappings::delete(&txn, account_id, tenant_row).await? {
        return Err(AppError::NotFound("mapping"));
    }
    db::users::clear_links(&txn, tenant_row).await?;
    txn.commit().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::{HashMap, HashSet};

    use super::*;
    use crate::test_support::tenant;
    use suggest::Candidate;

    #[test]
    fn accepting_maps_confident_tenants_and_says_why_others_stay() {
        let clients = vec![
            Candidate::new(1, "Contoso".into(), vec!["contoso.com".into()], HashMap::new()),
            Candidate::new(2, "Fabrikam".into(), vec![], HashMap::new()),
        ];
        let (a, b, c, d) = (
            tenant(10, "Contoso Ltd", &["contoso.com", "contoso.onmicrosoft.com"]),
            tenant(11, "Fabrikam", &[]),
            tenant(12, "Nothing Alike Whatsoever", &[]),
            tenant(13, "Contoso", &[]),
        );
        let mapped = HashMap::from([(2, HashSet::from([11]))]);
        let decisions = accept_suggestions(&[&a, &b, &c, &d], &clients, mapped.clone(), 80);
        assert_eq!(decisions[0], Acceptance::Map(1));
        assert_eq!(decisions[1], Acceptance::Skip("already mapped".into()));
        assert_eq!(decisions[2], Acceptance::Skip("no suggestion".into()));
        // Client 1 was just taken by tenant 10, so for tenant 13 it ranks 20 lower: 80 → 60.
        assert_eq!(decisions[3], Acceptance::Skip("best suggestion has confidence 60 (below 80)".into()));
        // With a lower bar the same tenant is mapped.
        assert_eq!(accept_suggestions(&[&d], &clients, mapped, 50), [Acceptance::Map(1)]);
    }
}
