//! `m365-integration evidence verify`: recomputes every snapshot chain from what is stored and
//! names the first broken link of each chain.
//!
//! For each chain, in sequence order from where retention pruned it: the sequence has no gap,
//! `previous_digest` equals the digest before it (or the pruned anchor), the stored fields hash
//! to `digest`, and, while the per-user rows exist, the history as of `taken_at` hashes to
//! `rows_sha256` and gives the stored count and figures. The last snapshot must be the chain's
//! recorded head.

use futures_util::TryStreamExt;
use sea_orm::{DatabaseConnection, DbErr};

use super::canonical::{EvidenceRow, Header, RowsDigest};
use crate::db;
use entity::{mfa_evidence_chain, mfa_evidence_snapshot, types::TenantGuid};

/// The first broken link of a chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Break {
    pub account_id: i64,
    pub tenant: TenantGuid,
    /// The snapshot at which the chain breaks (none when the break is a missing snapshot at the
    /// head).
    pub snapshot_id: Option<i64>,
    pub sequence: i64,
    pub reason: String,
}

impl std::fmt::Display for Break {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.snapshot_id {
            Some(id) => write!(
                f,
                "account {} tenant {}: snapshot {id} (sequence {}): {}",
                self.account_id, self.tenant, self.sequence, self.reason
            ),
            None => write!(
                f,
                "account {} tenant {}: sequence {}: {}",
                self.account_id, self.tenant, self.sequence, self.reason
            ),
        }
    }
}

/// What a verification found.
#[derive(Clone, Debug, Default)]
pub struct Report {
    pub chains: usize,
    pub snapshots: usize,
    /// Snapshots whose per-user rows were recomputed.
    pub rows_recomputed: usize,
    /// Snapshots whose rows were purged (disconnect, tenant removed): only their digest and link
    /// were checked.
    pub rows_purged: usize,
    /// The first broken link of each broken chain.
    pub breaks: Vec<Break>,
}

impl Report {
    /// Whether every chain holds.
    pub fn holds(&self) -> bool {
        self.breaks.is_empty()
    }
}

/// Verifies the chains of one account, or of every account.
pub async fn verify(db: &DatabaseConnection, account_id: Option<i64>) -> Result<Report, DbErr> {
    let mut report = Report::default();
    let chains = db::evidence::chains(db, account_id).await?;
    let known: std::collections::HashSet<(i64, &TenantGuid)> =
        chains.iter().map(|c| (c.account_id, &c.microsoft_tenant_id)).collect();
    for (account, tenant) in db::evidence::snapshot_chains(db, account_id).await? {
        if !known.contains(&(account, &tenant)) {
            let first = db::evidence::chain_snapshots(db, account, &tenant).await?.into_iter().next();
            report.breaks.push(Break {
                account_id: account,
                tenant,
                snapshot_id: first.as_ref().map(|s| s.id),
                sequence: first.map_or(0, |s| s.sequence),
                reason: "the chain's record (head and pruning anchor) is missing".into(),
            });
        }
    }
    for chain in &chains {
        report.chains += 1;
        let snapshots = db::evidence::chain_snapshots(db, chain.account_id, &chain.microsoft_tenant_id).await?;
        if let Some(b) = verify_chain(db, chain, &snapshots, &mut report).await? {
            report.breaks.push(b);
        }
    }
    Ok(report)
}

async fn verify_chain(
    db: &DatabaseConnection,
    chain: &mfa_evidence_chain::Model,
    snapshots: &[mfa_evidence_snapshot::Model],
    report: &mut Report,
) -> Result<Option<Break>, DbErr> {
    let broken = |s: Option<&mfa_evidence_snapshot::Model>, sequence: i64, reason: String| Break {
        account_id: chain.account_id,
        tenant: chain.microsoft_tenant_id.clone(),
        snapshot_id: s.map(|s| s.id),
        sequence,
        reason,
    };
    let mut expected_sequence = chain.pruned_through + 1;
    let mut expected_previous = chain.pruned_digest.clone();
    for s in snapshots {
        report.snapshots += 1;
        if s.sequence != expected_sequence {
            let reason = if s.sequence > expected_sequence {
                format!("snapshot sequence {expected_sequence} is missing (deleted)")
            } else {
                format!("sequence {} was expected after the pruned or previous snapshot", expected_sequence)
            };
            return Ok(Some(broken(Some(s), s.sequence, reason)));
        }
        if s.previous_digest != expected_previous {
            return Ok(Some(broken(
                Some(s),
                s.sequence,
                "previous_digest does not match the digest of the snapshot before it".into(),
            )));
        }
        if Header::of(s).digest() != s.digest {
            return Ok(Some(broken(
                Some(s),
                s.sequence,
                "its stored fields do not hash to its digest (the snapshot was edited)".into(),
            )));
        }
        if s.rows_purged_at.is_some() {
            report.rows_purged += 1;
        } else {
            let (rows_sha256, count, figures) = recompute(db, s).await?;
            report.rows_recomputed += 1;
            if rows_sha256 != s.rows_sha256 || count != s.user_count || figures != s.figures {
                return Ok(Some(broken(
                    Some(s),
                    s.sequence,
                    "the per-user history as of taken_at does not hash to rows_sha256 (a history row was edited, added or deleted)"
                        .into(),
                )));
            }
        }
        expected_previous = Some(s.digest.clone());
        expected_sequence += 1;
    }
    if chain.head_sequence != expected_sequence - 1 || chain.head_digest != expected_previous {
        return Ok(Some(broken(
            None,
            chain.head_sequence,
            format!(
                "the chain's head is sequence {} but the newest snapshot found is {} (snapshots were deleted)",
                chain.head_sequence,
                expected_sequence - 1
            ),
        )));
    }
    Ok(None)
}

/// The rows digest, count and figures of a snapshot's tenant as of its `taken_at`, streamed
/// from the history.
pub async fn recompute(
    db: &DatabaseConnection,
    s: &mfa_evidence_snapshot::Model,
) -> Result<(String, i64, entity::types::EvidenceFigures), DbErr> {
    let mut digest = RowsDigest::default();
    let mut rows =
        db::evidence::rows_at::<EvidenceRow>(db.get_database_backend(), s.tenant_id, s.taken_at).stream(db).await?;
    let mut line = String::new();
    while let Some(row) = rows.try_next().await? {
        line.clear();
        digest.push(&row, &mut line);
    }
    let (count, figures) = (digest.count, digest.figures);
    Ok((digest.finish(), count, figures))
}
