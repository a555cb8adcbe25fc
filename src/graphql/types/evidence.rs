//! `MfaEvidenceSnapshot`, `MfaEvidenceDiff`, `EvidenceUser`: GRC evidence.

use async_graphql::{ComplexObject, Context, ID, SimpleObject};
use chrono::{DateTime, Utc};
use entity::{mfa_evidence_snapshot, types::EvidenceFigures};

use crate::{
    error::AppResult,
    evidence::canonical::EvidenceRow,
    graphql::{
        loaders::{ClientById, TenantById, load},
        types::{
            client::Client,
            coverage::{MfaFigures, MfaVerdictCounts, percent},
            tenant::M365Tenant,
            user::{MfaEnforcementSource, MfaEnforcementState, MfaStatus, MfaVerdict},
        },
    },
};

/// An immutable record of one tenant's MFA state after a sync, chained to the tenant's previous
/// snapshot: `digest` is SHA-256 over a canonical header that includes `rowsDigest` (SHA-256 of
/// the canonical per-user rows as of `takenAt`) and `previousDigest`, so editing or deleting any
/// past row or snapshot breaks the chain (`m365-integration evidence verify`). The README
/// documents the serialisation and how to recompute both digests from an export.
#[derive(Clone, Debug, SimpleObject)]
#[graphql(complex)]
pub struct MfaEvidenceSnapshot {
    /// Our id for the snapshot (`GET /evidence/mfa?snapshot=ID` exports its rows).
    pub id: ID,
    /// Microsoft's tenant id (the chain is per account and Microsoft tenant).
    pub microsoft_tenant_id: String,
    /// The tenant's name when the snapshot was taken.
    pub tenant_name: String,
    /// The client the tenant was mapped to when the snapshot was taken; null when unmapped.
    pub client_name: Option<String>,
    /// The sync run that took it.
    pub run_id: ID,
    /// Position in the tenant's chain, from 1.
    pub sequence: i32,
    /// When it was taken: the moment the run wrote the tenant's users.
    pub taken_at: DateTime<Utc>,
    /// Users of the tenant at `takenAt`, sign-in blocked accounts included (the rows exported).
    pub user_count: i32,
    /// MFA figures over the sign-in enabled accounts (as `mfaCoverage(tenantId, asOf: takenAt)`).
    pub figures: MfaFigures,
    /// SHA-256 (hex) of the canonical per-user rows.
    pub rows_digest: String,
    /// The digest of the chain's previous snapshot; null for the first.
    pub previous_digest: Option<String>,
    /// SHA-256 (hex) of the canonical header, chaining this snapshot to all before it.
    pub digest: String,
    /// Whether the per-user rows can still be exported and compared.
    pub rows_available: bool,
    /// When the per-user rows were purged; null while they exist.
    pub rows_purged_at: Option<DateTime<Utc>>,
    /// Why they were purged (disconnect, tenant no longer reachable).
    pub rows_purge_reason: Option<String>,
    /// Path of the CSV export of the rows (add `format=json` for JSON); needs the Bearer token.
    pub export_path: String,
    #[graphql(skip)]
    pub account_id: i64,
    #[graphql(skip)]
    pub tenant_row: i64,
    #[graphql(skip)]
    pub client_id: Option<i64>,
}

impl MfaFigures {
    /// From a snapshot's stored figures.
    pub fn from_evidence(f: &EvidenceFigures) -> Self {
        Self {
            users: f.users as i32,
            enabled: f.enabled as i32,
            disabled: f.disabled as i32,
            unavailable: f.unavailable as i32,
            coverage_percent: percent(f.enabled, f.disabled),
            admins_without_mfa: f.admins_without_mfa as i32,
            licensed_members_without_mfa: f.licensed_members_without_mfa as i32,
            verdicts: MfaVerdictCounts {
                protected: f.protected as i32,
                not_enforced: f.not_enforced as i32,
                not_registered: f.not_registered as i32,
                unprotected: f.unprotected as i32,
                unknown: f.unknown as i32,
            },
        }
    }
}

impl From<mfa_evidence_snapshot::Model> for MfaEvidenceSnapshot {
    fn from(s: mfa_evidence_snapshot::Model) -> Self {
        Self {
            id: ID(s.id.to_string()),
            microsoft_tenant_id: s.microsoft_tenant_id.0,
            tenant_name: s.tenant_name,
            client_name: s.client_name,
            run_id: ID(s.run_id.to_string()),
            sequence: s.sequence as i32,
            taken_at: s.taken_at,
            user_count: s.user_count as i32,
            figures: MfaFigures::from_evidence(&s.figures),
            rows_digest: s.rows_sha256,
            previous_digest: s.previous_digest,
            digest: s.digest,
            rows_available: s.rows_purged_at.is_none(),
            rows_purged_at: s.rows_purged_at,
            rows_purge_reason: s.rows_purge_reason,
            export_path: format!("/evidence/mfa?snapshot={}&format=csv", s.id),
            account_id: s.account_id,
            tenant_row: s.tenant_id,
            client_id: s.client_id,
        }
    }
}

#[ComplexObject]
impl MfaEvidenceSnapshot {
    /// The tenant as it is now; null when it is gone (no longer reachable, or disconnected).
    async fn tenant(&self, ctx: &Context<'_>) -> AppResult<Option<M365Tenant>> {
        Ok(load::<TenantById>(ctx, self.tenant_row)
            .await?
            .filter(|t| t.account_id == self.account_id)
            .map(M365Tenant::from))
    }

    /// The client the tenant was mapped to at `takenAt`, as it is now; null when unmapped then
    /// or the client is gone.
    async fn client(&self, ctx: &Context<'_>) -> AppResult<Option<Client>> {
        let Some(id) = self.client_id else { return Ok(None) };
        Ok(load::<ClientById>(ctx, id).await?.filter(|c| c.account_id == self.account_id).map(Client::from))
    }
}

crate::connection!(
    MfaEvidenceSnapshotConnection,
    MfaEvidenceSnapshotEdge,
    MfaEvidenceSnapshot,
    "A page of evidence snapshots, oldest first.",
    "An evidence snapshot with its cursor."
);

/// A user's evidence row: the facts a snapshot's digest covers.
#[derive(Clone, Debug, SimpleObject)]
pub struct EvidenceUser {
    /// Microsoft's object id.
    pub object_id: String,
    /// Sign-in name.
    pub user_principal_name: String,
    /// Display name.
    pub display_name: Option<String>,
    /// `Member` or `Guest`.
    pub user_type: Option<String>,
    /// Whether sign-in was allowed.
    pub account_enabled: bool,
    /// Whether the user held an admin role; null when unknown.
    pub is_admin: Option<bool>,
    /// Whether any license was assigned.
    pub is_licensed: bool,
    /// MFA registration.
    pub mfa_status: MfaStatus,
    /// Registered methods, sorted.
    pub methods: Vec<String>,
    /// Whether MFA was required at sign-in.
    pub enforcement: MfaEnforcementState,
    /// What required it.
    pub enforcement_sources: Vec<MfaEnforcementSource>,
    /// Registration and enforcement together.
    pub verdict: MfaVerdict,
}

impl From<&EvidenceRow> for EvidenceUser {
    fn from(r: &EvidenceRow) -> Self {
        Self {
            object_id: r.object_id.clone(),
            user_principal_name: r.user_principal_name.clone(),
            display_name: r.display_name.clone(),
            user_type: r.user_type.clone(),
            account_enabled: r.account_enabled,
            is_admin: r.is_admin,
            is_licensed: r.is_licensed,
            mfa_status: r.mfa_status.into(),
            methods: r.methods().into_iter().map(str::to_owned).collect(),
            enforcement: r.mfa_enforcement.into(),
            enforcement_sources: {
                let mut s = r.mfa_enforcement_sources.0.clone();
                s.sort_unstable();
                s.into_iter().map(Into::into).collect()
            },
            verdict: r.mfa_verdict.into(),
        }
    }
}

/// A user whose verdict differs between two snapshots.
#[derive(Clone, Debug, SimpleObject)]
pub struct EvidenceUserChange {
    /// Microsoft's object id.
    pub object_id: String,
    /// The user at the earlier snapshot.
    pub before: EvidenceUser,
    /// The user at the later snapshot.
    pub after: EvidenceUser,
}

/// What changed between two snapshots of one tenant's chain.
#[derive(Clone, Debug, SimpleObject)]
pub struct MfaEvidenceDiff {
    /// The earlier snapshot.
    pub from: MfaEvidenceSnapshot,
    /// The later snapshot.
    pub to: MfaEvidenceSnapshot,
    /// Users in `to` but not in `from`, by object id.
    pub added: Vec<EvidenceUser>,
    /// Users in `from` but not in `to`, by object id.
    pub removed: Vec<EvidenceUser>,
    /// Users in both whose verdict changed, with both states, by object id.
    pub verdict_changed: Vec<EvidenceUserChange>,
}
