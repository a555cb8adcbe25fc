//! `sync_run`: one sync of an account; its live lease doubles as the sync lock.

use crate::{
    states::{RunPhase, RunStatus, RunTrigger},
    types::TenantResults,
};
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, serde::Serialize, serde::Deserialize)]
#[sea_orm(table_name = "sync_run")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub account_id: i64,
    pub trigger: RunTrigger,
    pub status: RunStatus,
    pub phase: Option<RunPhase>,
    pub current_tenant: Option<String>,
    pub tenants_total: i64,
    pub tenants_done: i64,
    pub tenants_failed: i64,
    pub users_synced: i64,
    pub error: Option<String>,
    /// Machine-readable reason beside `error` (e.g. `M365_AUTHORIZATION_REVOKED`).
    pub error_code: Option<String>,
    #[sea_orm(column_type = "Json")]
    pub tenant_results: TenantResults,
    /// Who holds the lease (a worker id), and until when.
    pub lease_owner: Option<String>,
    pub lease_expires_at: Option<DateTimeUtc>,
    pub created_by: Option<String>,
    pub created_at: DateTimeUtc,
    pub started_at: Option<DateTimeUtc>,
    pub finished_at: Option<DateTimeUtc>,
    /// Goes up by one with every change subscribers see (a run's states are ordered by it; a
    /// terminal state comes after every other state of its run whatever its number).
    pub version: i64,
    /// When the state numbered `version` was reached.
    pub updated_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
