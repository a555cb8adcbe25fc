//! `mfa_evidence_chain`: one per (account, Microsoft tenant): the head of the snapshot chain
//! (so deleting the newest snapshot is detected) and where retention pruned it (the digest of the
//! last pruned snapshot anchors the first kept one).

use crate::types::TenantGuid;
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "mfa_evidence_chain")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub account_id: i64,
    pub microsoft_tenant_id: TenantGuid,
    /// Sequence of the newest snapshot (0 before the first).
    pub head_sequence: i64,
    pub head_digest: Option<String>,
    /// Snapshots up to this sequence were pruned by retention (0: none).
    pub pruned_through: i64,
    /// Digest of the last pruned snapshot: the `previous_digest` the first kept one must carry.
    pub pruned_digest: Option<String>,
    /// The retention horizon of the last pruning.
    pub pruned_before: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
