//! m365-integration: a GraphQL service that gives MSPs a one-click, tenant-level Microsoft 365
//! connection. It discovers customer tenants through GDAP, syncs users, MFA status and licenses,
//! maps tenants to the MSP's clients, links users to contacts and pushes sync progress live.
//!
//! Layers, each depending only on the ones below it (see the README's architecture sketch):
//! - [`http`]: the hand-written HTTP/1 server (connection caps, header and body deadlines),
//!   GraphQL over POST/GET and WebSocket, the OAuth callback, health;
//! - [`graphql`]: the schema, thin resolvers that map domain types to GraphQL types,
//!   dataloaders, and the document limits checked before parsing;
//! - domain services: [`connect`] (consent, state + PKCE, token vault), [`sync`] (triggers, the
//!   lease, and the engine: read → MFA resolution and enforcement → plan → fenced write), [`mapping`]
//!   (suggestions, accepting them, mappings), [`contacts`], [`clients`], [`licenses`], [`audit`],
//!   [`evidence`] (MFA history, chained snapshots, verification);
//! - [`microsoft`]: the identity and Graph clients, every Graph read typed
//!   ([`microsoft::directory`]), wire models, Microsoft's product-names file;
//! - [`db`]: SeaORM queries per table group; entities and the domain's state enums
//!   (`entity::states`) live in the `entity` crate, migrations in `migration`;
//! - [`app`], [`config`], [`auth`], [`error`]: wiring shared by all of them.
//!
//! The Microsoft emulator that tests, benchmarks and `demo` run against is its own crate,
//! `m365-emulator`, which imports nothing from this one.

pub mod app;
pub mod audit;
pub mod auth;
pub mod cli;
pub mod clients;
pub mod config;
pub mod connect;
pub mod contacts;
pub mod db;
pub mod demo;
pub mod error;
pub mod evidence;
pub mod graphql;
pub mod http;
pub mod licenses;
pub mod mapping;
pub mod metrics;
pub mod microsoft;
pub mod sync;
pub mod telemetry;

/// Builders shared by unit tests.
#[cfg(test)]
pub(crate) mod test_support {
    use entity::{m365_tenant, types::TenantGuid};

    /// A stored tenant of account 1, never synced.
    pub fn tenant(id: i64, name: &str, domains: &[&str]) -> m365_tenant::Model {
        m365_tenant::Model {
            id,
            account_id: 1,
            microsoft_tenant_id: TenantGuid(format!("guid-{id}")),
            display_name: name.into(),
            default_domain: None,
            domains: domains.iter().map(|d| d.to_string()).collect::<Vec<_>>().into(),
            gdap_roles: Default::default(),
            sync_status: None,
            sync_error_code: None,
            sync_error: None,
            remediation: None,
            mfa_source: None,
            last_synced_at: None,
            mfa_policy: None,
            created_at: chrono::Utc::now(),
        }
    }
}
