//! GRC evidence: point-in-time MFA history, tamper-evident snapshots, exports and verification.
//!
//! - **History** (`mfa_history`): per-user MFA facts stored as *changes*. The sync compares each
//!   user it writes with the user's open history row and, only when a fact differs, ends that row
//!   (`valid_to = now`) and opens a new one (`valid_from = now`), in the same fenced transaction
//!   as the user rows ([`record`]). A resync with nothing changed writes no history. Any moment
//!   within retention is the set of rows with `valid_from <= t < valid_to`.
//! - **Snapshots** (`mfa_evidence_snapshot`): in the same transaction, for a tenant synced OK or
//!   PARTIAL, its figures and the digests of [`canonical`]: `rows_sha256` over the canonical
//!   per-user rows as of `taken_at`, and `digest` over a header that includes `rows_sha256` and
//!   the previous snapshot's digest, so every snapshot vouches for the whole chain before it.
//! - **Chains** (`mfa_evidence_chain`): one per (account, Microsoft tenant), with its head (so a
//!   deleted newest snapshot is noticed) and where retention pruned it ([`apply_retention`]).
//! - [`verify`] recomputes every chain from the stored rows.
//!
//! A disconnect (and a tenant GDAP no longer reaches) purges the per-user history and keeps the
//! snapshots, which hold figures and digests, no personal data.

pub mod canonical;
pub mod verify;

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use entity::{m365_tenant, mfa_evidence_snapshot, mfa_history, types::*};
use sea_orm::{ConnectionTrait, DbErr, Set};

use crate::db::{self, users::UserRow};
use canonical::{EvidenceRow, Header, RowsDigest};

/// Why a snapshot's rows were purged.
pub const PURGED_BY_DISCONNECT: &str = "Microsoft 365 was disconnected";
/// Why a snapshot's rows were purged.
pub const PURGED_TENANT_REMOVED: &str = "the tenant is no longer reachable through GDAP";

/// What a sync wrote for one tenant, for [`record`].
pub struct Recording<'a> {
    pub account_id: i64,
    pub tenant: &'a m365_tenant::Model,
    pub run_id: i64,
    /// The tenant's complete user listing, as written.
    pub users: &'a [UserRow],
    /// `object_id → m365_user.id` after the write.
    pub user_ids: &'a HashMap<String, i64>,
    /// Take a snapshot (the tenant synced OK or PARTIAL).
    pub snapshot: bool,
    /// The write's time, in microseconds ([`canonical::micros`]).
    pub now: DateTime<Utc>,
}

/// What [`record`] wrote.
#[derive(Debug, Default)]
pub struct Recorded {
    /// History rows opened.
    pub opened: usize,
    /// History rows ended.
    pub ended: usize,
    /// The snapshot taken.
    pub snapshot: Option<mfa_evidence_snapshot::Model>,
}

/// Writes a tenant's history changes and (when asked) its snapshot. Call inside the sync's
/// fenced transaction, after the users were written.
pub async fn record(db: &impl ConnectionTrait, r: &Recording<'_>) -> Result<Recorded, DbErr> {
    let open = db::evidence::open_rows(db, r.tenant.id).await?;
    let mut open: HashMap<&str, &mfa_history::Model> = open.iter().map(|h| (h.object_id.as_str(), h)).collect();
    let mut ended = vec![];
    let mut started = vec![];
    for u in r.users {
        let Some(&user_id) = r.user_ids.get(&u.object_id) else { continue };
        match open.remove(u.object_id.as_str()) {
            Some(h) if unchanged(h, u, user_id) => {}
            Some(h) => {
                ended.push(h.id);
                started.push(history_row(r, user_id, u));
            }
            None => started.push(history_row(r, user_id, u)),
        }
    }
    ended.extend(open.values().map(|h| h.id));
    let recorded_counts = (started.len(), ended.len());
    db::evidence::close_rows(db, &ended, r.now).await?;
    db::evidence::insert_rows(db, started).await?;
    let snapshot = if r.snapshot { Some(snapshot(db, r).await?) } else { None };
    Ok(Recorded { opened: recorded_counts.0, ended: recorded_counts.1, snapshot })
}

/// Whether a user's open history row still says what the sync read.
fn unchanged(h: &mfa_history::Model, u: &UserRow, user_id: i64) -> bool {
    h.user_id == user_id
        && h.user_principal_name == u.user_principal_name
        && h.display_name == u.display_name
        && h.mail == u.mail
        && h.user_type == u.user_type
        && h.account_enabled == u.account_enabled
        && h.is_admin == u.is_admin
        && h.is_licensed == licensed(u)
        && h.mfa_status == u.mfa_status
        && h.mfa_methods.0 == u.mfa_methods
        && h.mfa_source == u.mfa_source
        && h.mfa_unavailable_reason == u.mfa_unavailable_reason
        && h.mfa_enforcement == u.mfa_enforcement
        && h.mfa_enforcement_sources.0 == u.mfa_enforcement_sources
        && h.mfa_policies.0 == u.mfa_policies
        && h.mfa_enforcement_reason == u.mfa_enforcement_reason
        && h.mfa_verdict == u.mfa_verdict
        && h.mfa_explanation.0 == u.mfa_explanation
}

/// Whether any license is assigned (as `m365_user.is_licensed`).
fn licensed(u: &UserRow) -> bool {
    !u.sku_ids.is_empty()
}

fn history_row(r: &Recording<'_>, user_id: i64, u: &UserRow) -> mfa_history::ActiveModel {
    mfa_history::ActiveModel {
        account_id: Set(r.account_id),
        tenant_id: Set(r.tenant.id),
        user_id: Set(user_id),
        object_id: Set(u.object_id.clone()),
        user_principal_name: Set(u.user_principal_name.clone()),
        display_name: Set(u.display_name.clone()),
        mail: Set(u.mail.clone()),
        user_type: Set(u.user_type.clone()),
        account_enabled: Set(u.account_enabled),
        is_admin: Set(u.is_admin),
        is_licensed: Set(licensed(u)),
        mfa_status: Set(u.mfa_status),
        mfa_methods: Set(StringList(u.mfa_methods.clone())),
        mfa_source: Set(u.mfa_source),
        mfa_unavailable_reason: Set(u.mfa_unavailable_reason.clone()),
        mfa_enforcement: Set(u.mfa_enforcement),
        mfa_enforcement_sources: Set(EnforcementSources(u.mfa_enforcement_sources.clone())),
        mfa_policies: Set(StringList(u.mfa_policies.clone())),
        mfa_enforcement_reason: Set(u.mfa_enforcement_reason.clone()),
        mfa_verdict: Set(u.mfa_verdict),
        mfa_explanation: Set(StringList(u.mfa_explanation.clone())),
        valid_from: Set(r.now),
        valid_to: Set(None),
        ..Default::default()
    }
}

/// The evidence columns of a user as the sync wrote it.
fn evidence_row(u: &UserRow) -> EvidenceRow {
    EvidenceRow {
        object_id: u.object_id.clone(),
        user_principal_name: u.user_principal_name.clone(),
        display_name: u.display_name.clone(),
        user_type: u.user_type.clone(),
        account_enabled: u.account_enabled,
        is_admin: u.is_admin,
        is_licensed: licensed(u),
        mfa_status: u.mfa_status,
        mfa_methods: StringList(u.mfa_methods.clone()),
        mfa_enforcement: u.mfa_enforcement,
        mfa_enforcement_sources: EnforcementSources(u.mfa_enforcement_sources.clone()),
        mfa_verdict: u.mfa_verdict,
    }
}

/// Takes the tenant's snapshot from the rows just written (they are the history as of `now`),
/// links it to the chain's head and moves the head.
async fn snapshot(db: &impl ConnectionTrait, r: &Recording<'_>) -> Result<mfa_evidence_snapshot::Model, DbErr> {
    let mut rows: Vec<EvidenceRow> =
        r.users.iter().filter(|u| r.user_ids.contains_key(&u.object_id)).map(evidence_row).collect();
    rows.sort_unstable_by(|a, b| a.object_id.cmp(&b.object_id));
    let mut digest = RowsDigest::default();
    let mut line = String::new();
    for row in &rows {
        line.clear();
        digest.push(row, &mut line);
    }
    let (count, figures) = (digest.count, digest.figures);
    let rows_sha256 = digest.finish();
    let guid = &r.tenant.microsoft_tenant_id;
    let chain = db::evidence::chain(db, r.account_id, guid).await?;
    let sequence = chain.as_ref().map_or(0, |c| c.head_sequence) + 1;
    let previous = chain.and_then(|c| c.head_digest);
    let client = db::evidence::client_of_tenant(db, r.tenant.id).await?;
    let header = Header {
        tenant_id: guid.as_str(),
        tenant_name: &r.tenant.display_name,
        client_name: client.as_ref().map(|c| c.1.as_str()),
        run_id: r.run_id,
        sequence,
        taken_at: r.now,
        user_count: count,
        figures: &figures,
        rows_sha256: &rows_sha256,
        previous_digest: previous.as_deref(),
    };
    let digest = header.digest();
    let saved = db::evidence::insert_snapshot(
        db,
        mfa_evidence_snapshot::ActiveModel {
            account_id: Set(r.account_id),
            tenant_id: Set(r.tenant.id),
            microsoft_tenant_id: Set(guid.clone()),
            tenant_name: Set(r.tenant.display_name.clone()),
            client_id: Set(client.as_ref().map(|c| c.0)),
            client_name: Set(client.map(|c| c.1)),
            run_id: Set(r.run_id),
            sequence: Set(sequence),
            taken_at: Set(r.now),
            user_count: Set(count),
            figures: Set(figures),
            rows_sha256: Set(rows_sha256),
            previous_digest: Set(previous),
            digest: Set(digest.clone()),
            rows_purged_at: Set(None),
            rows_purge_reason: Set(None),
            ..Default::default()
        },
    )
    .await?;
    db::evidence::advance_chain(db, r.account_id, guid, sequence, &digest).await?;
    Ok(saved)
}

/// The oldest moment evidence is kept for, at `now`.
pub fn horizon(now: DateTime<Utc>, retention_days: u32) -> DateTime<Utc> {
    now - chrono::Duration::days(i64::from(retention_days))
}

/// How often every account's evidence is checked against retention (besides after each sync),
/// so an account that no longer syncs (disconnected, its snapshots kept) is pruned too.
pub const RETENTION_EVERY: std::time::Duration = std::time::Duration::from_secs(3600);

/// Prunes every account holding evidence past retention. Idempotent, so replicas may overlap.
pub async fn prune_everywhere(app: &crate::app::AppState) -> Result<usize, DbErr> {
    let now = app.clock.now();
    let days = app.config.evidence_retention_days;
    let accounts = db::evidence::accounts_past(&app.db, horizon(now, days)).await?;
    for a in &accounts {
        apply_retention(&app.db, *a, now, days).await?;
    }
    Ok(accounts.len())
}

/// Runs [`prune_everywhere`] at start and every [`RETENTION_EVERY`], until the runtime stops.
pub async fn retention_loop(app: crate::app::AppState) {
    loop {
        if let Err(e) = prune_everywhere(&app).await {
            tracing::warn!(error = %e, "pruning evidence past retention failed");
        }
        tokio::time::sleep(RETENTION_EVERY).await;
    }
}

/// Prunes an account's evidence past retention, in one transaction (see
/// [`db::evidence::prune`]).
pub async fn apply_retention(
    db: &sea_orm::DatabaseConnection,
    account_id: i64,
    now: DateTime<Utc>,
    retention_days: u32,
) -> Result<db::evidence::Pruned, DbErr> {
    let txn = db::write_txn(db).await?;
    let pruned = db::evidence::prune(&txn, account_id, horizon(now, retention_days)).await?;
    txn.commit().await?;
    if pruned != db::evidence::Pruned::default() {
        tracing::info!(
            account_id,
            snapshots = pruned.snapshots,
            history_rows = pruned.history_rows,
            "evidence pruned past retention"
        );
    }
    Ok(pruned)
}

/// The per-user rows behind a snapshot, in canonical order; `EVIDENCE_ROWS_PURGED` when they
/// were purged.
pub async fn rows_of(
    db: &sea_orm::DatabaseConnection,
    s: &mfa_evidence_snapshot::Model,
) -> Result<Vec<EvidenceRow>, crate::error::AppError> {
    if s.rows_purged_at.is_some() {
        return Err(crate::error::AppError::EvidenceRowsPurged {
            snapshot: s.id,
            reason: s.rows_purge_reason.clone().unwrap_or_default(),
        });
    }
    Ok(db::evidence::rows_at(db.get_database_backend(), s.tenant_id, s.taken_at).all(db).await?)
}

/// What changed between two row sets.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Diff {
    /// In the later set only.
    pub added: Vec<EvidenceRow>,
    /// In the earlier set only.
    pub removed: Vec<EvidenceRow>,
    /// In both with another verdict: (before, after).
    pub verdict_changed: Vec<(EvidenceRow, EvidenceRow)>,
}

/// Compares two row sets sorted by object id (a merge, linear in both). Pure.
pub fn diff(before: Vec<EvidenceRow>, after: Vec<EvidenceRow>) -> Diff {
    use std::cmp::Ordering;
    let mut d = Diff::default();
    let (mut b, mut a) = (before.into_iter().peekable(), after.into_iter().peekable());
    loop {
        let order = match (b.peek(), a.peek()) {
            (None, None) => break,
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (Some(x), Some(y)) => x.object_id.cmp(&y.object_id),
        };
        match order {
            Ordering::Less => d.removed.extend(b.next()),
            Ordering::Greater => d.added.extend(a.next()),
            Ordering::Equal => {
                let (x, y) = (b.next().expect("peeked"), a.next().expect("peeked"));
                if x.mfa_verdict != y.mfa_verdict {
                    d.verdict_changed.push((x, y));
                }
            }
        }
    }
    d
}

#[cfg(test)]
mod tests {
    use entity::states::{MfaEnforcementState, MfaStatus, MfaVerdict};

    use super::*;

    fn row(id: &str, verdict: MfaVerdict) -> EvidenceRow {
        EvidenceRow {
            object_id: id.into(),
            user_principal_name: format!("{id}@x"),
            display_name: None,
            user_type: None,
            account_enabled: true,
            is_admin: None,
            is_licensed: false,
            mfa_status: MfaStatus::Enabled,
            mfa_methods: Default::default(),
            mfa_enforcement: MfaEnforcementState::Enforced,
            mfa_enforcement_sources: Default::default(),
            mfa_verdict: verdict,
        }
    }

    #[test]
    fn diff_lists_added_removed_and_verdict_changes() {
        use MfaVerdict::*;
        let before = vec![row("a", Protected), row("b", Protected), row("c", Unprotected)];
        let mut same_verdict = row("c", Unprotected);
        same_verdict.display_name = Some("renamed".into());
        let after = vec![row("b", NotEnforced), same_verdict, row("d", Protected)];
        let d = diff(before, after);
        assert_eq!(d.removed, vec![row("a", Protected)]);
        assert_eq!(d.added, vec![row("d", Protected)]);
        assert_eq!(d.verdict_changed, vec![(row("b", Protected), row("b", NotEnforced))]);
        assert_eq!(diff(vec![], vec![]), Diff::default());
    }

    #[test]
    fn horizon_is_retention_days_back() {
        let now = chrono::DateTime::from_timestamp(1_000_000_000, 0).unwrap();
        assert_eq!(horizon(now, 400), now - chrono::Duration::days(400));
    }
}
