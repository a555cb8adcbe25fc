//! Re-exports of every entity under its table name.

pub use super::account::Entity as Account;
pub use super::audit_event::Entity as AuditEvent;
pub use super::client::Entity as Client;
pub use super::contact::Entity as Contact;
pub use super::license_name::Entity as LicenseName;
pub use super::m365_connection::Entity as M365Connection;
pub use super::m365_license::Entity as M365License;
pub use super::m365_tenant::Entity as M365Tenant;
pub use super::m365_user::Entity as M365User;
pub use super::m365_user_license::Entity as M365UserLicense;
pub use super::mfa_evidence_chain::Entity as MfaEvidenceChain;
pub use super::mfa_evidence_snapshot::Entity as MfaEvidenceSnapshot;
pub use super::mfa_history::Entity as MfaHistory;
pub use super::oauth_state::Entity as OauthState;
pub use super::sync_run::Entity as SyncRun;
pub use super::tenant_mapping::Entity as TenantMapping;
