//! `m365Integration` and `m365SyncRuns`.

use async_graphql::{Context, Object};

use crate::{
    db,
    error::AppResult,
    graphql::{
        ContextExt, m365_reader, reader,
        types::{
            PageArgs,
            integration::{M365Connection, M365Integration, SyncRun, SyncRunConnection},
            list_complexity, page_of,
        },
    },
    sync,
};

/// The helper text of the Microsoft 365 Connection card.
pub const HELPER_TEXT: &str =
    "Connect your Partner Center account to sync M365 user data, MFA status, and license info.";

#[derive(Default)]
pub struct IntegrationQuery;

#[Object]
impl IntegrationQuery {
    /// What the Microsoft 365 tab shows for the caller's account: whether the tab is on, whether
    /// the caller may manage it, the connection (null until connected) and the sync status.
    /// Errors: `UNAUTHENTICATED`.
    async fn m365_integration(&self, ctx: &Context<'_>) -> AppResult<M365Integration> {
        let r = reader(ctx).await?;
        let state = ctx.state();
        let connection = db::connections::get(&state.db, r.account.id).await?;
        let sync = sync::status(state, r.account.id).await?;
        Ok(M365Integration {
            enabled: r.account.m365_enabled,
            can_manage: r.caller.can_manage(),
            connection: connection.map(M365Connection::from),
            sync: sync.into(),
            helper_text: HELPER_TEXT.to_owned(),
        })
    }

    /// The account's sync runs, newest first, with per-tenant results.
    /// Errors: `UNAUTHENTICATED`, `FEATURE_DISABLED`, `BAD_USER_INPUT` (`first` above 500, bad cursor).
    #[graphql(complexity = "list_complexity(first, child_complexity)")]
    async fn m365_sync_runs(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Page size, 0 to 500 (default 50).")] first: Option<i32>,
        #[graphql(desc = "Cursor of the item after which the page starts.")] after: Option<String>,
    ) -> AppResult<SyncRunConnection> {
        let r = m365_reader(ctx).await?;
        let args = PageArgs::parse(first, after, "run")?;
        let (rows, total) = db::sync_runs::page(&ctx.state().db, r.account.id, args.after, args.first + 1).await?;
        let (edges, info) = page_of(rows, args, "run", |m| m.id, SyncRun::from);
        Ok(SyncRunConnection::new(edges, info, total))
    }
}
