//! `connectM365`, `disconnectM365`, `triggerM365Sync`.

use async_graphql::{Context, Object};
use entity::states::RunTrigger;

use serde_json::json;

use crate::{
    audit::AuditKind,
    connect,
    error::AppResult,
    graphql::{
        ContextExt, audit, m365_manager,
        types::integration::{ConnectM365Payload, DisconnectM365Payload, SyncRun},
    },
    sync,
};

#[derive(Default)]
pub struct IntegrationMutation;

#[Object]
impl IntegrationMutation {
    /// Starts connecting Microsoft 365 (Connect M365): returns Microsoft's consent URL with a
    /// one-time state bound to the caller and account, valid 15 minutes. Connecting again while
    /// connected replaces the authorization and keeps the synced data.
    /// Errors: `UNAUTHENTICATED`, `FORBIDDEN`, `FEATURE_DISABLED`.
    async fn connect_m365(&self, ctx: &Context<'_>) -> AppResult<ConnectM365Payload> {
        let r = m365_manager(ctx).await?;
        let start = connect::start(ctx.state(), &r.caller).await?;
        audit(ctx, &r, AuditKind::ConnectStarted, json!({"expiresAt": start.expires_at})).await;
        Ok(ConnectM365Payload { authorization_url: start.authorization_url.to_string(), expires_at: start.expires_at })
    }

    /// Disconnects Microsoft 365: removes, in one transaction, the synced users, licenses,
    /// tenants, tenant-to-client mappings, pending connect attempts and the stored authorization,
    /// and stops a running sync. Clients and contacts stay.
    /// Errors: `UNAUTHENTICATED`, `FORBIDDEN`, `FEATURE_DISABLED`, `NOT_CONNECTED`.
    async fn disconnect_m365(&self, ctx: &Context<'_>) -> AppResult<DisconnectM365Payload> {
        let r = m365_manager(ctx).await?;
        Ok(connect::disconnect(ctx.state(), r.account.id, &r.caller.user).await?.into())
    }

    /// Starts a sync now (Trigger Sync). Manual syncs have a 30-second cooldown per account.
    /// Follow progress with `m365SyncProgress` or `m365Integration.sync` (Refresh Status).
    /// Errors: `UNAUTHENTICATED`, `FORBIDDEN`, `FEATURE_DISABLED`, `NOT_CONNECTED`,
    /// `M365_AUTHORIZATION_REVOKED` (reconnect first), `SYNC_COOLDOWN` (with
    /// `retryAfterSeconds`), `SYNC_ALREADY_RUNNING`.
    async fn trigger_m365_sync(&self, ctx: &Context<'_>) -> AppResult<SyncRun> {
        let r = m365_manager(ctx).await?;
        let app = ctx.state();
        let run = sync::trigger(app, r.account.id, RunTrigger::Manual, Some(&r.caller.user)).await?;
        audit(ctx, &r, AuditKind::SyncTriggered, json!({"runId": run.id.to_string()})).await;
        Ok(run.into())
    }
}
