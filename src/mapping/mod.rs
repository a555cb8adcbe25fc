//! Tenant mapping (the guide's Step 4): each discovered tenant maps to one of the MSP's clients.
//! Suggested matches come from [`suggest`]; creating or deleting a mapping relinks the tenant's
//! users to the client's contacts at once, in the same transaction.

pub mod scoring;
pub mod suggest;

use entity::{states::MappingMethod, tenant_mapping};
use sea_orm::{ConnectionTrait, DatabaseConnection};

use crate::{
    contacts, db,
    error::{AppError, AppResult},
};

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
