//! SeaORM entities: one module per table of the domain model (see `DESIGN.md`).
//!
//! Every row that belongs to an MSP carries `account_id`; queries in the service are always
//! scoped by the caller's account.

pub mod account;
pub mod audit_event;
pub mod client;
pub mod contact;
pub mod license_name;
pub mod m365_connection;
pub mod m365_license;
pub mod m365_tenant;
pub mod m365_user;
pub mod m365_user_count;
pub mod m365_user_license;
pub mod mfa_evidence_chain;
pub mod mfa_evidence_snapshot;
pub mod mfa_history;
pub mod oauth_state;
pub mod prelude;
pub mod states;
pub mod sync_run;
pub mod tenant_mapping;
pub mod types;
