//! DataLoaders: one per lookup, each batching a resolver's per-item queries into one statement.
//! Keys are ids the resolver already scoped to the caller's account.

use std::{collections::HashMap, sync::Arc};

use async_graphql::{
    SchemaBuilder,
    dataloader::{DataLoader, Loader},
};
use entity::contact;
use sea_orm::DatabaseConnection;

use crate::{db, error::AppError};

/// Contacts of a client.
pub struct ContactsByClient(pub DatabaseConnection);

impl Loader<i64> for ContactsByClient {
    type Value = Vec<contact::Model>;
    type Error = Arc<AppError>;

    async fn load(&self, keys: &[i64]) -> Result<HashMap<i64, Self::Value>, Self::Error> {
        let rows = db::clients::contacts_of(&self.0, keys).await.map_err(|e| Arc::new(e.into()))?;
        let mut out: HashMap<i64, Vec<contact::Model>> = HashMap::new();
        for r in rows {
            out.entry(r.client_id).or_default().push(r);
        }
        Ok(out)
    }
}

/// Adds every loader to the schema's data.
pub fn register<Q, M, S>(b: SchemaBuilder<Q, M, S>, db: &DatabaseConnection) -> SchemaBuilder<Q, M, S> {
    b.data(DataLoader::new(ContactsByClient(db.clone()), tokio::spawn))
}

/// Turns a loader's shared error back into the API error.
pub fn loader_err(e: Arc<AppError>) -> AppError {
    AppError::Internal(e.to_string())
}
