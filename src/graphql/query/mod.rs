//! The query root: one object per domain, merged.

mod clients;
mod integration;

use async_graphql::MergedObject;

/// Read access to the account's Microsoft 365 integration and the MSP's own data.
/// Every field needs a valid token; data is always the caller's account's.
#[derive(Default, MergedObject)]
pub struct Query(integration::IntegrationQuery, clients::ClientsQuery);
