//! The query root: one object per domain, merged.

mod audit;
mod clients;
pub mod evidence;
mod integration;
mod m365;

use async_graphql::MergedObject;

/// Read access to the account's Microsoft 365 integration and the MSP's own data.
/// Every field needs a valid token; data is always the caller's account's.
#[derive(Default, MergedObject)]
pub struct Query(
    integration::IntegrationQuery,
    m365::M365Query,
    evidence::EvidenceQuery,
    clients::ClientsQuery,
    audit::AuditQuery,
);
