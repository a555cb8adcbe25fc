//! `auditEvents`.

use async_graphql::{Context, Object};

use crate::{
    db,
    error::AppResult,
    graphql::{
        ContextExt, manager,
        types::{
            PageArgs,
            audit::{AuditEvent, AuditEventConnection, AuditEventFilter},
            list_complexity, page_of, wants_total,
        },
    },
};

#[derive(Default)]
pub struct AuditQuery;

#[Object]
impl AuditQuery {
    /// The account's audit trail, newest first: connects (and who consented), disconnects with
    /// what they removed, manual syncs, mappings, client and contact upserts. Readable by the
    /// account's managers only (it names people); it survives a disconnect.
    /// Errors: `UNAUTHENTICATED`, `FORBIDDEN` (no `manage_tenant_settings`), `BAD_USER_INPUT`
    /// (`first` above 500, bad cursor).
    #[graphql(complexity = "list_complexity(first, child_complexity)")]
    async fn audit_events(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Page size, 0 to 500 (default 50).")] first: Option<i32>,
        #[graphql(desc = "Cursor of the event after which the page starts.")] after: Option<String>,
        #[graphql(desc = "Which events; null for all.")] filter: Option<AuditEventFilter>,
    ) -> AppResult<AuditEventConnection> {
        let r = manager(ctx).await?;
        let args = PageArgs::parse(first, after, "audit")?;
        let filter = filter.unwrap_or_default();
        let f = db::audit::Filter { kind: filter.kind.map(|k| k.as_str()), since: filter.since };
        let (rows, total) =
            db::audit::page(&ctx.state().db, r.account.id, f, args.after, args.first + 1, wants_total(ctx)).await?;
        let (edges, info) = page_of(rows, args, "audit", |m| m.id, AuditEvent::from);
        Ok(AuditEventConnection::new(edges, info, total))
    }
}
