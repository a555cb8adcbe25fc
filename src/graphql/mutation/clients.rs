//! `upsertClients`, `upsertContacts`.

use async_graphql::{Context, Object};

use serde_json::json;

use crate::{
    audit::AuditKind,
    clients::{self, ClientUpsert, ContactUpsert},
    error::AppResult,
    graphql::{
        ContextExt, audit, manager,
        types::client::{Client, ClientInput, Contact, ContactInput},
    },
};

#[derive(Default)]
pub struct ClientsMutation;

#[Object]
impl ClientsMutation {
    /// Inserts or updates up to 1,000 clients, keyed by (`source`, `externalId`); calling it
    /// again with the same input changes nothing. All or nothing: a bad item gives
    /// `BAD_USER_INPUT` with `extensions.field` naming it, and nothing is stored.
    /// Returns the stored clients in input order. Errors: `UNAUTHENTICATED`, `FORBIDDEN`, `BAD_USER_INPUT`.
    async fn upsert_clients(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Clients keyed by `(source, externalId)`: inserted, or updated when known.")] clients: Vec<
            ClientInput,
        >,
    ) -> AppResult<Vec<Client>> {
        let r = manager(ctx).await?;
        let items = clients
            .into_iter()
            .map(|c| ClientUpsert { source: c.source, external_id: c.external_id, name: c.name, domains: c.domains })
            .collect();
        let rows = clients::upsert_clients(&ctx.state().db, r.account.id, items).await?;
        audit(ctx, &r, AuditKind::ClientsUpserted, json!({"count": rows.len()})).await;
        Ok(rows.into_iter().map(Client::from).collect())
    }

    /// Inserts or updates up to 1,000 contacts, keyed by (`source`, `externalId`); each names its
    /// client by `clientExternalId` in the same source. All or nothing, like `upsertClients`.
    /// Errors: `UNAUTHENTICATED`, `FORBIDDEN`, `BAD_USER_INPUT` (including an unknown client).
    async fn upsert_contacts(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Contacts keyed by `(source, externalId)`: inserted, or updated when known.")] contacts: Vec<
            ContactInput,
        >,
    ) -> AppResult<Vec<Contact>> {
        let r = manager(ctx).await?;
        let items = contacts
            .into_iter()
            .map(|c| ContactUpsert {
                source: c.source,
                external_id: c.external_id,
                client_external_id: c.client_external_id,
                name: c.name,
                emails: c.emails,
            })
            .collect();
        let rows = clients::upsert_contacts(&ctx.state().db, r.account.id, items).await?;
        audit(ctx, &r, AuditKind::ContactsUpserted, json!({"count": rows.len()})).await;
        Ok(rows.into_iter().map(Contact::from).collect())
    }
}
