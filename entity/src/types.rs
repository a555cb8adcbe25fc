//! Column value types shared by several entities.

use sea_orm::FromJsonQueryResult;
use serde::{Deserialize, Serialize};

/// A list of strings stored as a JSON array (domains, e-mail addresses, role names, methods).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, FromJsonQueryResult)]
pub struct StringList(pub Vec<String>);

impl StringList {
    /// The strings as a slice.
    pub fn as_slice(&self) -> &[String] {
        &self.0
    }
}

impl From<Vec<String>> for StringList {
    fn from(v: Vec<String>) -> Self {
        Self(v)
    }
}

/// The outcome of one tenant inside a sync run, stored as JSON on the run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenantResult {
    /// Microsoft tenant id.
    pub tenant_id: String,
    /// Tenant display name at the time of the run.
    pub display_name: String,
    /// `OK`, `PARTIAL` or `FAILED`.
    pub outcome: String,
    /// Machine-readable reason when not OK.
    pub error_code: Option<String>,
    /// Human-readable reason when not OK.
    pub error: Option<String>,
    /// What the MSP can do about it.
    pub remediation: Option<String>,
    /// Users written for this tenant.
    pub users_synced: i64,
}

/// All tenant results of a run.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, FromJsonQueryResult)]
pub struct TenantResults(pub Vec<TenantResult>);
