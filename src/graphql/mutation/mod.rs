//! The mutation root: one object per domain, merged. Every mutation needs
//! `manage_tenant_settings`.

mod clients;
mod integration;
mod mapping;

use async_graphql::MergedObject;

/// Changes. Every mutation needs a token with `manage_tenant_settings` (else `FORBIDDEN`);
/// Microsoft 365 mutations also need the account's Microsoft 365 tab (else `FEATURE_DISABLED`).
#[derive(Default, MergedObject)]
pub struct Mutation(integration::IntegrationMutation, mapping::MappingMutation, clients::ClientsMutation);
