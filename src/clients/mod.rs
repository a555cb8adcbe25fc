//! The MSP's own clients and contacts (usually pushed from a PSA such as ConnectWise Manage):
//! validation and all-or-nothing, idempotent upserts keyed by (`source`, `externalId`).

pub mod validate;

use std::collections::{HashMap, HashSet};

use entity::{client, contact};
use sea_orm::DatabaseConnection;

use crate::{
    db,
    error::{AppError, AppResult},
};

/// A client as pushed by a caller.
#[derive(Clone, Debug)]
pub struct ClientUpsert {
    /// Source system, e.g. `connectwise`.
    pub source: String,
    /// Id in that source.
    pub external_id: String,
    /// Display name.
    pub name: String,
    /// Domains; `None` keeps none.
    pub domains: Option<Vec<String>>,
}

/// A contact as pushed by a caller.
#[derive(Clone, Debug)]
pub struct ContactUpsert {
    /// Source system.
    pub source: String,
    /// Id in that source.
    pub external_id: String,
    /// External id of the contact's client, in the same source.
    pub client_external_id: String,
    /// Display name.
    pub name: String,
    /// One or more addresses.
    pub emails: Vec<String>,
}

fn check_batch(len: usize, what: &str) -> AppResult<()> {
    if len > validate::MAX_BATCH {
        return Err(AppError::bad_input(what, format!("at most {} {what} per call, got {len}", validate::MAX_BATCH)));
    }
    Ok(())
}

fn field<T>(path: String, r: Result<T, String>) -> AppResult<T> {
    r.map_err(|msg| AppError::bad_input(path.clone(), format!("{path}: {msg}")))
}

fn dedupe(values: Vec<String>) -> Vec<String> {
    let mut seen = HashSet::new();
    values.into_iter().filter(|v| seen.insert(v.clone())).collect()
}

/// Validates every item, then stores all of them in one transaction, or nothing.
pub async fn upsert_clients(
    db: &DatabaseConnection,
    account_id: i64,
    items: Vec<ClientUpsert>,
) -> AppResult<Vec<client::Model>> {
    check_batch(items.len(), "clients")?;
    let mut clean = Vec::with_capacity(items.len());
    let mut keys = HashSet::new();
    for (i, c) in items.into_iter().enumerate() {
        let p = |f: &str| format!("clients[{i}].{f}");
        let source = field(p("source"), validate::text(&c.source, validate::MAX_SOURCE))?.to_ascii_lowercase();
        let external_id = field(p("externalId"), validate::text(&c.external_id, validate::MAX_EXTERNAL_ID))?;
        let name = field(p("name"), validate::text(&c.name, validate::MAX_NAME))?;
        let domains = c.domains.unwrap_or_default();
        if domains.len() > validate::MAX_DOMAINS {
            return Err(AppError::bad_input(p("domains"), format!("at most {} domains", validate::MAX_DOMAINS)));
        }
        let domains = domains
            .iter()
            .enumerate()
            .map(|(j, d)| field(p(&format!("domains[{j}]")), validate::domain(d)))
            .collect::<AppResult<Vec<_>>>()?;
        if !keys.insert((source.clone(), external_id.clone())) {
            return Err(AppError::bad_input(
                p("externalId"),
                format!("{}: ({source}, {external_id}) appears twice in this batch", p("externalId")),
            ));
        }
        clean.push(db::clients::ClientRow { source, external_id, name, domains: dedupe(domains) });
    }
    let txn = crate::db::write_txn(db).await?;
    let rows = db::clients::upsert_clients(&txn, account_id, &clean).await?;
    txn.commit().await?;
    Ok(rows)
}

/// Validates every item (including that its client exists), then stores all or nothing.
pub async fn upsert_contacts(
    db: &DatabaseConnection,
    account_id: i64,
    items: Vec<ContactUpsert>,
) -> AppResult<Vec<contact::Model>> {
    check_batch(items.len(), "contacts")?;
    let mut clean = Vec::with_capacity(items.len());
    let mut keys = HashSet::new();
    for (i, c) in items.into_iter().enumerate() {
        let p = |f: &str| format!("contacts[{i}].{f}");
        let source = field(p("source"), validate::text(&c.source, validate::MAX_SOURCE))?.to_ascii_lowercase();
        let external_id = field(p("externalId"), validate::text(&c.external_id, validate::MAX_EXTERNAL_ID))?;
        let client_external_id =
            field(p("clientExternalId"), validate::text(&c.client_external_id, validate::MAX_EXTERNAL_ID))?;
        let name = field(p("name"), validate::text(&c.name, validate::MAX_NAME))?;
        if c.emails.is_empty() || c.emails.len() > validate::MAX_EMAILS {
            return Err(AppError::bad_input(
                p("emails"),
                format!("{}: give 1 to {} e-mail addresses", p("emails"), validate::MAX_EMAILS),
            ));
        }
        let emails = c
            .emails
            .iter()
            .enumerate()
            .map(|(j, e)| field(p(&format!("emails[{j}]")), validate::email(e)))
            .collect::<AppResult<Vec<_>>>()?;
        if !keys.insert((source.clone(), external_id.clone())) {
            return Err(AppError::bad_input(
                p("externalId"),
                format!("{}: ({source}, {external_id}) appears twice in this batch", p("externalId")),
            ));
        }
        clean.push((i, source, external_id, client_external_id, name, dedupe(emails)));
    }
    let wanted: Vec<(String, String)> = clean.iter().map(|c| (c.1.clone(), c.3.clone())).collect();
    let txn = crate::db::write_txn(db).await?;
    let clients: HashMap<(String, String), i64> = db::clients::client_ids_by_key(&txn, account_id, &wanted).await?;
    let mut rows = Vec::with_capacity(clean.len());
    for (i, source, external_id, client_external_id, name, emails) in clean {
        let Some(&client_id) = clients.get(&(source.clone(), client_external_id.clone())) else {
            let path = format!("contacts[{i}].clientExternalId");
            return Err(AppError::bad_input(
                path.clone(),
                format!("{path}: no client ({source}, {client_external_id}) in this account; upsert the client first"),
            ));
        };
        rows.push(db::clients::ContactRow { client_id, source, external_id, name, emails });
    }
    // A contact moved to another client must let go of its old client's users too: relink the
    // tenants of the clients these contacts belonged to before, and of those they belong to now.
    let keys: Vec<(String, String)> = rows.iter().map(|r| (r.source.clone(), r.external_id.clone())).collect();
    let mut client_ids = db::clients::clients_of_contacts(&txn, account_id, &keys).await?;
    let stored = db::clients::upsert_contacts(&txn, account_id, &rows).await?;
    client_ids.extend(rows.iter().map(|r| r.client_id));
    client_ids.sort_unstable();
    client_ids.dedup();
    for tenant in db::mappings::tenants_of_clients(&txn, &client_ids).await? {
        crate::contacts::relink_tenant(&txn, tenant).await?;
    }
    txn.commit().await?;
    Ok(stored)
}
