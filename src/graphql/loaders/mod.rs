//! DataLoaders: one per lookup, each batching a resolver's per-item queries into one statement.
//! Keys are ids the resolver already scoped to the caller's account.
//!
//! Loaders live per request, with a cache: list resolvers prefetch what the query selects (one
//! statement per relation, see [`prefetch_users`]), so nested fields are cache hits and a page
//! costs a fixed number of statements however long it is. (Batching alone is not enough: the
//! executor yields every 32 list items, and a loader's timer can fire in between.)

use std::{collections::HashMap, sync::Arc};

use async_graphql::{
    Request,
    dataloader::{DataLoader, HashMapCache, Loader},
};
use entity::contact;
use sea_orm::DatabaseConnection;

use crate::{app::AppState, db, error::AppError, graphql::ContextExt};

/// Contacts of a client.
pub struct ContactsByClient(pub DatabaseConnection);

impl Loader<i64> for ContactsByClient {
    type Value = Vec<contact::Model>;
    type Error = Arc<AppError>;

    async fn load(&self, keys: &[i64]) -> Result<HashMap<i64, Self::Value>, Self::Error> {
        let rows = db::clients::contacts_of(&self.0, keys).await.map_err(|e| Arc::new(e.into()))?;
        // An answer for every key (empty included), so the request cache never asks twice.
        let mut out: HashMap<i64, Vec<contact::Model>> = keys.iter().map(|k| (*k, vec![])).collect();
        for r in rows {
            out.entry(r.client_id).or_default().push(r);
        }
        Ok(out)
    }
}

/// A loader of this request, with its cache.
pub type Cached<L> = DataLoader<L, HashMapCache>;

fn cached<L: Loader<i64>>(l: L) -> Cached<L> {
    DataLoader::with_cache(l, tokio::spawn, HashMapCache::default())
}

/// Adds this request's loaders to a request.
pub fn attach(req: Request, db: &DatabaseConnection) -> Request {
    req.data(SuggestionCache::default())
        .data(cached(ContactsByClient(db.clone())))
        .data(cached(TenantById(db.clone())))
        .data(cached(MappingByTenant(db.clone())))
        .data(cached(ClientById(db.clone())))
        .data(cached(ContactById(db.clone())))
        .data(cached(LicensesByUser(db.clone())))
        .data(cached(UserCountByTenant(db.clone())))
}

/// Loads one value through this request's loader.
pub async fn load<L: Loader<i64, Error = Arc<AppError>>>(
    ctx: &async_graphql::Context<'_>,
    key: i64,
) -> Result<Option<L::Value>, AppError>
where
    L::Value: Clone,
{
    ctx.data_unchecked::<Cached<L>>().load_one(key).await.map_err(loader_err)
}

/// Loads many values at once into this request's cache (one statement).
pub async fn warm<L: Loader<i64, Error = Arc<AppError>>>(
    ctx: &async_graphql::Context<'_>,
    keys: impl IntoIterator<Item = i64>,
) -> Result<HashMap<i64, L::Value>, AppError>
where
    L::Value: Clone,
{
    ctx.data_unchecked::<Cached<L>>().load_many(keys).await.map_err(loader_err)
}

/// Prefetches what a page of users selects: tenants, their mappings and clients (and those
/// clients' contacts), licenses, linked contacts, tenants' user counts.
pub async fn prefetch_users(
    ctx: &async_graphql::Context<'_>,
    users: &[entity::m365_user::Model],
) -> Result<(), AppError> {
    let node = ctx.look_ahead().field("edges").field("node");
    let tenants: std::collections::BTreeSet<i64> = users.iter().map(|u| u.tenant_id).collect();
    let tenant_sel = node.field("tenant");
    let client_sel = node.field("client");
    let mapping_sel = tenant_sel.field("mapping");
    if client_sel.exists() || mapping_sel.exists() {
        // Tenants, mappings and clients in one statement, fed to the three loaders.
        let ids: Vec<i64> = tenants.iter().copied().collect();
        let rows = db::mappings::tenants_with_clients(&ctx.state().db, &ids).await?;
        let mut clients = vec![];
        let (mut tenant_rows, mut mapping_rows, mut client_rows) = (vec![], vec![], vec![]);
        for (t, m, c) in rows {
            mapping_rows.push((t.id, m));
            if let Some(c) = c {
                clients.push(c.id);
                client_rows.push((c.id, c));
            }
            tenant_rows.push((t.id, Arc::new(t)));
        }
        // A tenant that is not there (never: users point at their tenant) stays unmapped.
        let found: std::collections::BTreeSet<i64> = mapping_rows.iter().map(|(t, _)| *t).collect();
        mapping_rows.extend(tenants.iter().filter(|t| !found.contains(t)).map(|t| (*t, None)));
        ctx.data_unchecked::<Cached<TenantById>>().feed_many(tenant_rows).await;
        ctx.data_unchecked::<Cached<MappingByTenant>>().feed_many(mapping_rows).await;
        ctx.data_unchecked::<Cached<ClientById>>().feed_many(client_rows).await;
        if client_sel.field("contacts").exists() || mapping_sel.field("client").field("contacts").exists() {
            warm::<ContactsByClient>(ctx, clients.iter().copied()).await?;
        }
    } else if tenant_sel.exists() {
        warm::<TenantById>(ctx, tenants.iter().copied()).await?;
    }
    if tenant_sel.field("userCount").exists() {
        warm::<UserCountByTenant>(ctx, tenants.iter().copied()).await?;
    }
    if node.field("licenses").exists() {
        warm::<LicensesByUser>(ctx, users.iter().map(|u| u.id)).await?;
        if node.field("licenses").field("tenant").exists() {
            warm::<TenantById>(ctx, tenants.iter().copied()).await?;
        }
    }
    if node.field("contact").exists() {
        warm::<ContactById>(ctx, users.iter().filter_map(|u| u.contact_id)).await?;
    }
    Ok(())
}

/// Prefetches what a page of tenants selects: mappings and their clients, user counts.
pub async fn prefetch_tenants(
    ctx: &async_graphql::Context<'_>,
    tenants: &[entity::m365_tenant::Model],
) -> Result<(), AppError> {
    let node = ctx.look_ahead().field("edges").field("node");
    let ids: Vec<i64> = tenants.iter().map(|t| t.id).collect();
    if node.field("mapping").exists() {
        let mappings = warm::<MappingByTenant>(ctx, ids.iter().copied()).await?;
        if node.field("mapping").field("client").exists() {
            warm::<ClientById>(ctx, mappings.values().flatten().map(|m| m.client_id)).await?;
        }
    }
    if node.field("userCount").exists() {
        warm::<UserCountByTenant>(ctx, ids.iter().copied()).await?;
    }
    Ok(())
}

/// Turns a loader's shared error back into the API error.
pub fn loader_err(e: Arc<AppError>) -> AppError {
    (*e).clone()
}

/// Tenants by row id.
pub struct TenantById(pub DatabaseConnection);

impl Loader<i64> for TenantById {
    /// Shared: every user of a tenant on a page gets the same row, not a copy.
    type Value = Arc<entity::m365_tenant::Model>;
    type Error = Arc<AppError>;

    async fn load(&self, keys: &[i64]) -> Result<HashMap<i64, Self::Value>, Self::Error> {
        let rows = db::tenants::by_ids(&self.0, keys).await.map_err(|e| Arc::new(e.into()))?;
        Ok(rows.into_iter().map(|r| (r.id, Arc::new(r))).collect())
    }
}

/// A tenant's mapping, by tenant row id.
pub struct MappingByTenant(pub DatabaseConnection);

impl Loader<i64> for MappingByTenant {
    /// `None` for an unmapped tenant (cached like any answer).
    type Value = Option<entity::tenant_mapping::Model>;
    type Error = Arc<AppError>;

    async fn load(&self, keys: &[i64]) -> Result<HashMap<i64, Self::Value>, Self::Error> {
        let rows = db::mappings::by_tenants(&self.0, keys).await.map_err(|e| Arc::new(e.into()))?;
        let mut out: HashMap<i64, Self::Value> = keys.iter().map(|k| (*k, None)).collect();
        out.extend(rows.into_iter().map(|r| (r.tenant_id, Some(r))));
        Ok(out)
    }
}

/// Clients by id.
pub struct ClientById(pub DatabaseConnection);

impl Loader<i64> for ClientById {
    type Value = entity::client::Model;
    type Error = Arc<AppError>;

    async fn load(&self, keys: &[i64]) -> Result<HashMap<i64, Self::Value>, Self::Error> {
        let rows = db::clients::by_ids(&self.0, keys).await.map_err(|e| Arc::new(e.into()))?;
        Ok(rows.into_iter().map(|r| (r.id, r)).collect())
    }
}

/// Contacts by id.
pub struct ContactById(pub DatabaseConnection);

impl Loader<i64> for ContactById {
    type Value = contact::Model;
    type Error = Arc<AppError>;

    async fn load(&self, keys: &[i64]) -> Result<HashMap<i64, Self::Value>, Self::Error> {
        let rows = db::clients::contacts_by_ids(&self.0, keys).await.map_err(|e| Arc::new(e.into()))?;
        Ok(rows.into_iter().map(|r| (r.id, r)).collect())
    }
}

/// A user's licenses, by user row id.
pub struct LicensesByUser(pub DatabaseConnection);

impl Loader<i64> for LicensesByUser {
    type Value = Vec<entity::m365_license::Model>;
    type Error = Arc<AppError>;

    async fn load(&self, keys: &[i64]) -> Result<HashMap<i64, Self::Value>, Self::Error> {
        let rows = db::users::licenses_of_users(&self.0, keys).await.map_err(|e| Arc::new(e.into()))?;
        let mut out: HashMap<i64, Self::Value> = keys.iter().map(|k| (*k, vec![])).collect();
        for (user, lic) in rows {
            out.entry(user).or_default().push(lic);
        }
        Ok(out)
    }
}

/// Users per tenant, by tenant row id.
pub struct UserCountByTenant(pub DatabaseConnection);

impl Loader<i64> for UserCountByTenant {
    type Value = i64;
    type Error = Arc<AppError>;

    async fn load(&self, keys: &[i64]) -> Result<HashMap<i64, Self::Value>, Self::Error> {
        let mut out: HashMap<i64, i64> = keys.iter().map(|k| (*k, 0)).collect();
        out.extend(db::users::count_by_tenants(&self.0, keys).await.map_err(|e| Arc::new(e.into()))?);
        Ok(out)
    }
}

/// Suggestions scored in this request, by tenant row: each tenant is scored once however many
/// users' `tenant { suggestions }` ask, and always for the most suggestions a field may ask for
/// (20), so that every `first` is a prefix of one answer.
///
/// Both steps are CPU work proportional to the account's size: loading the candidates (every
/// client with its contacts' domains, decoded and prepared once per request) and comparing a
/// tenant with each of them. Both run on a blocking thread, in the account's turn (see
/// [`crate::mapping::scoring`]), so async workers stay free for other requests, this work never
/// takes more than `SUGGESTION_WORKERS` cores, and accounts take turns. A request that is
/// dropped (timed out, disconnected) stops after the step in progress.
#[derive(Default)]
pub struct SuggestionCache {
    candidates: tokio::sync::OnceCell<Candidates>,
    scored: std::sync::Mutex<HashMap<i64, Arc<tokio::sync::OnceCell<Scored>>>>,
}

/// Clients as candidates, and client id → tenant rows it is mapped to.
pub type Candidates = Arc<(Vec<crate::mapping::suggest::Candidate>, crate::mapping::suggest::Mapped)>;

/// A tenant's suggestions, best first.
pub type Scored = Arc<Vec<crate::mapping::suggest::Suggestion>>;

impl SuggestionCache {
    /// The account's candidates, loaded once per request on a blocking thread in its turn.
    async fn candidates(&self, app: &AppState, account_id: i64) -> Result<Candidates, AppError> {
        self.candidates
            .get_or_try_init(|| async {
                let _turn = app.scoring.turn(account_id).await;
                let db = app.db.clone();
                let runtime = tokio::runtime::Handle::current();
                // Row decoding and name preparation happen where this future is polled: here,
                // on the blocking thread, not on an async worker.
                let loaded = tokio::task::spawn_blocking(move || {
                    runtime
                        .block_on(db::mappings::candidate_rows(&db, account_id))
                        .map(crate::mapping::suggest::candidates)
                })
                .await
                .map_err(AppError::internal)??;
                Ok(Arc::new(loaded))
            })
            .await
            .cloned()
    }

    /// The tenant's suggestions, scored now or earlier in this request.
    pub async fn get(
        &self,
        app: &AppState,
        account_id: i64,
        tenant_row: i64,
        name: &str,
        domains: &[String],
    ) -> Result<Scored, AppError> {
        let cell = self.scored.lock().unwrap_or_else(|p| p.into_inner()).entry(tenant_row).or_default().clone();
        cell.get_or_try_init(|| async {
            let candidates = self.candidates(app, account_id).await?;
            let _turn = app.scoring.turn(account_id).await;
            let (name, domains) = (name.to_owned(), domains.to_vec());
            let scored = tokio::task::spawn_blocking(move || {
                let (clients, mapped) = (&candidates.0, &candidates.1);
                let elsewhere = |client: i64| mapped.get(&client).is_some_and(|t| t.iter().any(|t| *t != tenant_row));
                crate::mapping::suggest::suggest(&name, &domains, clients, elsewhere, 20)
            })
            .await
            .map_err(AppError::internal)?;
            Ok(Arc::new(scored))
        })
        .await
        .cloned()
    }
}
