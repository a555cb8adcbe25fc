//! `mfaEvidence`, `mfaEvidenceDiff`: the snapshots a GRC tool files, and what changed between
//! two of them.

use async_graphql::{Context, ID, Object};
use chrono::{DateTime, Utc};

use crate::{
    app::App,
    db::{self, evidence::SnapshotFilter},
    error::{AppError, AppResult},
    evidence,
    graphql::{
        ContextExt, m365_reader,
        types::{
            PageArgs,
            evidence::{
                EvidenceUser, EvidenceUserChange, MfaEvidenceDiff, MfaEvidenceSnapshot, MfaEvidenceSnapshotConnection,
            },
            list_complexity, page_of, parse_id, wants_total,
        },
    },
};

#[derive(Default)]
pub struct EvidenceQuery;

/// Checks an `asOf` argument: not in the future, not before the retention horizon.
pub fn as_of_time(app: &App, as_of: Option<DateTime<Utc>>) -> AppResult<Option<DateTime<Utc>>> {
    let Some(t) = as_of else { return Ok(None) };
    let now = app.clock.now();
    if t > now {
        return Err(AppError::bad_input("asOf", "asOf is in the future; leave it out for the current state."));
    }
    let days = app.config.evidence_retention_days;
    if t < evidence::horizon(now, days) {
        return Err(AppError::bad_input(
            "asOf",
            format!(
                "asOf is before the evidence retention horizon: history is kept for {days} days (EVIDENCE_RETENTION_DAYS)."
            ),
        ));
    }
    Ok(Some(t))
}

// `mfaEvidence` takes the arguments DESIGN.md names, one parameter each.
#[allow(clippy::too_many_arguments)]
#[Object]
impl EvidenceQuery {
    /// Evidence snapshots of one tenant, the tenants of one client (mapped when the snapshot was
    /// taken), or (neither) the whole account, oldest first; one per tenant synced OK or PARTIAL
    /// per run. Errors: `UNAUTHENTICATED`, `FEATURE_DISABLED`, `NOT_FOUND` (tenant or client of
    /// no account of yours), `BAD_USER_INPUT` (`first` above 500, bad cursor or id, `from` after
    /// `to`).
    #[graphql(complexity = "list_complexity(first, child_complexity)")]
    async fn mfa_evidence(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Only this tenant (`M365Tenant.id`).")] tenant_id: Option<ID>,
        #[graphql(desc = "Only snapshots taken while the tenant was mapped to this client (`Client.id`).")]
        client_id: Option<ID>,
        #[graphql(desc = "Only snapshots taken at or after this time.")] from: Option<DateTime<Utc>>,
        #[graphql(desc = "Only snapshots taken at or before this time.")] to: Option<DateTime<Utc>>,
        #[graphql(desc = "Page size, 0 to 500 (default 50).")] first: Option<i32>,
        #[graphql(desc = "Cursor of the item after which the page starts.")] after: Option<String>,
    ) -> AppResult<MfaEvidenceSnapshotConnection> {
        let r = m365_reader(ctx).await?;
        let app = ctx.state();
        let args = PageArgs::parse(first, after, "evidence")?;
        if let (Some(f), Some(t)) = (from, to)
            && f > t
        {
            return Err(AppError::bad_input("from", "from is after to."));
        }
        let mut filter = SnapshotFilter { from, to, ..Default::default() };
        if let Some(t) = &tenant_id {
            // A tenant that is gone keeps its snapshots: only another account's id is refused.
            let id = parse_id(t, "tenantId")?;
            let ours = db::tenants::get(&app.db, r.account.id, id).await?.is_some()
                || !db::evidence::snapshots_page(
                    &app.db,
                    r.account.id,
                    &SnapshotFilter { tenant_row: Some(id), ..Default::default() },
                    None,
                    1,
                    false,
                )
                .await?
                .0
                .is_empty();
            if !ours {
                return Err(AppError::NotFound("tenant"));
            }
            filter.tenant_row = Some(id);
        }
        if let Some(c) = &client_id {
            let id = parse_id(c, "clientId")?;
            db::clients::get(&app.db, r.account.id, id).await?.ok_or(AppError::NotFound("client"))?;
            filter.client_id = Some(id);
        }
        let (rows, total) =
            db::evidence::snapshots_page(&app.db, r.account.id, &filter, args.after, args.first + 1, wants_total(ctx))
                .await?;
        let (edges, info) = page_of(rows, args, "evidence", |s| s.id, MfaEvidenceSnapshot::from);
        Ok(MfaEvidenceSnapshotConnection::new(edges, info, total))
    }

    /// What changed between two snapshots of the same tenant: users added, removed, and whose
    /// verdict changed (with both states). Errors: `UNAUTHENTICATED`, `FEATURE_DISABLED`,
    /// `NOT_FOUND` (a snapshot of no account of yours), `BAD_USER_INPUT` (snapshots of different
    /// tenants, malformed id), `EVIDENCE_ROWS_PURGED` (a snapshot's per-user rows were purged).
    async fn mfa_evidence_diff(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The earlier snapshot (`MfaEvidenceSnapshot.id`).")] from: ID,
        #[graphql(desc = "The later snapshot (`MfaEvidenceSnapshot.id`).")] to: ID,
    ) -> AppResult<MfaEvidenceDiff> {
        let r = m365_reader(ctx).await?;
        let app = ctx.state();
        let get = |id: i64| db::evidence::snapshot(&app.db, r.account.id, id);
        let a = get(parse_id(&from, "from")?).await?.ok_or(AppError::NotFound("snapshot"))?;
        let b = get(parse_id(&to, "to")?).await?.ok_or(AppError::NotFound("snapshot"))?;
        if a.microsoft_tenant_id != b.microsoft_tenant_id {
            return Err(AppError::bad_input("to", "from and to are snapshots of different tenants."));
        }
        let d = evidence::diff(evidence::rows_of(&app.db, &a).await?, evidence::rows_of(&app.db, &b).await?);
        Ok(MfaEvidenceDiff {
            from: a.into(),
            to: b.into(),
            added: d.added.iter().map(EvidenceUser::from).collect(),
            removed: d.removed.iter().map(EvidenceUser::from).collect(),
            verdict_changed: d
                .verdict_changed
                .iter()
                .map(|(x, y)| EvidenceUserChange { object_id: x.object_id.clone(), before: x.into(), after: y.into() })
                .collect(),
        })
    }
}
