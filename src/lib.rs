//! m365-integration: a GraphQL service that gives MSPs a one-click, tenant-level Microsoft 365
//! connection. It discovers customer tenants through GDAP, syncs users, MFA status and licenses,
//! maps tenants to the MSP's clients, links users to contacts and pushes sync progress live.
//!
//! Data flows left to right (see `DESIGN.md`):
//! - [`http`]: axum router, GraphQL over HTTP and WebSocket, health;
//! - [`graphql`]: the schema, thin resolvers, dataloaders;
//! - domain services: [`clients`], [`sync`];
//! - [`db`]: SeaORM queries per domain (entities in the `entity` crate, migrations in `migration`);
//! - [`app`], [`config`], [`auth`], [`error`]: wiring shared by all of them.

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
pub mod graphql;
pub mod http;
pub mod licenses;
pub mod mapping;
pub mod microsoft;
pub mod sync;
