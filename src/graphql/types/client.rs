//! `Client` and `Contact`: the MSP's own data.

use async_graphql::{ComplexObject, Context, ID, InputObject, SimpleObject};
use entity::{client, contact};

use crate::{
    connection,
    error::AppResult,
    graphql::loaders::{ContactsByClient, load},
};

/// One of the MSP's own customers, usually pushed from a PSA.
#[derive(Clone, Debug, SimpleObject)]
#[graphql(complex)]
pub struct Client {
    /// Our id for the client.
    pub id: ID,
    /// The system the client comes from, e.g. `connectwise` (lower case).
    pub source: String,
    /// The client's id in that system.
    pub external_id: String,
    /// Display name.
    pub name: String,
    /// The client's domain names, lower case.
    pub domains: Vec<String>,
    /// When the client was first stored.
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// When the client was last upserted.
    pub updated_at: chrono::DateTime<chrono::Utc>,
    #[graphql(skip)]
    pub row_id: i64,
}

impl From<client::Model> for Client {
    fn from(m: client::Model) -> Self {
        Self {
            id: ID(m.id.to_string()),
            source: m.source,
            external_id: m.external_id,
            name: m.name,
            domains: m.domains.0,
            created_at: m.created_at,
            updated_at: m.updated_at,
            row_id: m.id,
        }
    }
}

#[ComplexObject]
impl Client {
    /// The client's contacts, oldest first.
    #[graphql(complexity = "10 * child_complexity")]
    async fn contacts(&self, ctx: &Context<'_>) -> AppResult<Vec<Contact>> {
        let rows = load::<ContactsByClient>(ctx, self.row_id).await?.unwrap_or_default();
        Ok(rows.into_iter().map(Contact::from).collect())
    }
}

/// A contact person of a client.
#[derive(Clone, Debug, SimpleObject)]
pub struct Contact {
    /// Our id for the contact.
    pub id: ID,
    /// Our id of the contact's client.
    pub client_id: ID,
    /// The system the contact comes from (lower case).
    pub source: String,
    /// The contact's id in that system.
    pub external_id: String,
    /// Display name.
    pub name: String,
    /// E-mail addresses, lower case; Microsoft 365 users are linked by these.
    pub emails: Vec<String>,
}

impl From<contact::Model> for Contact {
    fn from(m: contact::Model) -> Self {
        Self {
            id: ID(m.id.to_string()),
            client_id: ID(m.client_id.to_string()),
            source: m.source,
            external_id: m.external_id,
            name: m.name,
            emails: m.emails.0,
        }
    }
}

connection!(ClientConnection, ClientEdge, Client, "A page of the MSP's clients.", "A client with its cursor.");

/// A client to insert or update, keyed by (`source`, `externalId`).
#[derive(Clone, Debug, InputObject)]
pub struct ClientInput {
    /// The system the client comes from, e.g. `connectwise`; 1–64 characters, stored lower case.
    pub source: String,
    /// The client's id in that system; 1–128 characters.
    pub external_id: String,
    /// Display name; 1–200 characters.
    pub name: String,
    /// Domain names (at most 50); replaces the stored list. Omitted: none.
    pub domains: Option<Vec<String>>,
}

/// A contact to insert or update, keyed by (`source`, `externalId`).
#[derive(Clone, Debug, InputObject)]
pub struct ContactInput {
    /// The system the contact comes from; 1–64 characters, stored lower case.
    pub source: String,
    /// The contact's id in that system; 1–128 characters.
    pub external_id: String,
    /// `externalId` of the contact's client in the same `source`; the client must exist.
    pub client_external_id: String,
    /// Display name; 1–200 characters.
    pub name: String,
    /// One to 20 e-mail addresses; replaces the stored list.
    pub emails: Vec<String>,
}
