//! `mfa_evidence_snapshot`: an immutable record of one tenant's MFA state after a sync, chained
//! to the tenant's previous snapshot by digest. It holds figures and digests, no personal data,
//! so it outlives the per-user history (a disconnect purges the history and keeps these).

use crate::types::{EvidenceFigures, TenantGuid};
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "mfa_evidence_snapshot")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub account_id: i64,
    /// Our row id of the tenant at the time (the tenant may be gone since).
    pub tenant_id: i64,
    pub microsoft_tenant_id: TenantGuid,
    pub tenant_name: String,
    /// The client the tenant was mapped to at `taken_at`.
    pub client_id: Option<i64>,
    pub client_name: Option<String>,
    pub run_id: i64,
    /// Position in the tenant's chain, from 1.
    pub sequence: i64,
    pub taken_at: DateTimeUtc,
    pub user_count: i64,
    #[sea_orm(column_type = "Json")]
    pub figures: EvidenceFigures,
    /// SHA-256 of the canonical per-user rows (hex).
    pub rows_sha256: String,
    /// The digest of the previous snapshot of the chain; null for the first.
    pub previous_digest: Option<String>,
    /// SHA-256 of the canonical header, which includes `rows_sha256` and `previous_digest`.
    pub digest: String,
    /// When the per-user rows behind it were purged (disconnect, tenant removed).
    pub rows_purged_at: Option<DateTimeUtc>,
    pub rows_purge_reason: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
