//! What the Microsoft 365 tab shows: the connection and the sync status, and sync runs.

use std::sync::Arc;

use async_graphql::{Enum, ID, Object, SimpleObject};
use chrono::{DateTime, Utc};
use entity::{m365_connection, sync_run};

use crate::connection;

/// The account's Microsoft 365 integration, as the Microsoft 365 tab shows it.
#[derive(Clone, Debug, SimpleObject)]
pub struct M365Integration {
    /// Whether the Microsoft 365 tab is switched on for the account (rolled out gradually).
    /// When false, Microsoft 365 mutations answer `FEATURE_DISABLED`.
    pub enabled: bool,
    /// Whether the caller holds `manage_tenant_settings` (Connect M365 is disabled otherwise).
    pub can_manage: bool,
    /// The stored connection; null until connected (and after a disconnect).
    pub connection: Option<M365Connection>,
    /// Sync state, current and last run, cooldown and schedule.
    pub sync: SyncStatus,
    /// Helper text for the connection card.
    pub helper_text: String,
}

/// Whether the stored authorization still works.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Enum)]
#[graphql(remote = "entity::states::ConnectionStatus")]
pub enum ConnectionStatus {
    /// Connected; syncs run.
    Connected,
    /// Microsoft refused the stored authorization (expired or revoked): disconnect and reconnect.
    NeedsReconnect,
}

/// The tenant-level Microsoft 365 connection of the account.
#[derive(Clone, Debug, SimpleObject)]
pub struct M365Connection {
    /// Connected, or needing a reconnect.
    pub status: ConnectionStatus,
    /// The MSP's own (partner) Microsoft tenant id.
    pub partner_tenant_id: String,
    /// The partner tenant's display name; null if Microsoft did not return one.
    pub partner_tenant_name: Option<String>,
    /// When the Global Administrator approved the connection.
    pub connected_at: DateTime<Utc>,
    /// The user (token subject) who clicked Connect M365.
    pub connected_by: String,
    /// The last problem with the authorization, in the guide's words; null when none.
    pub last_error: Option<String>,
    /// Permissions (scopes) Microsoft granted.
    pub scopes: Vec<String>,
    /// The Microsoft user who approved the consent; null for connections made before this was
    /// recorded, or when Microsoft did not say.
    pub consented_by: Option<ConsentedBy>,
}

/// The Microsoft user who approved a connection.
#[derive(Clone, Debug, SimpleObject)]
pub struct ConsentedBy {
    /// Their user principal name, e.g. `admin@contoso.onmicrosoft.com`; null if unknown.
    pub user_principal_name: Option<String>,
    /// Their object id in the partner tenant.
    pub object_id: String,
}

impl From<m365_connection::Model> for M365Connection {
    fn from(m: m365_connection::Model) -> Self {
        Self {
            status: m.status.into(),
            partner_tenant_id: m.partner_tenant_id,
            partner_tenant_name: m.partner_tenant_name,
            connected_at: m.connected_at,
            connected_by: m.connected_by,
            last_error: m.last_error,
            scopes: m.scopes.split_whitespace().map(str::to_owned).collect(),
            consented_by: m
                .consented_by_oid
                .map(|object_id| ConsentedBy { user_principal_name: m.consented_by_upn, object_id }),
        }
    }
}

/// Whether a sync is going on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Enum)]
#[graphql(remote = "crate::sync::SyncState")]
pub enum SyncState {
    /// No sync is queued or running.
    Idle,
    /// A sync was accepted and waits for a worker.
    Queued,
    /// A sync is running (it holds the sync lock).
    Running,
}

/// The account's sync status ("Refresh Status").
#[derive(Clone, Debug, SimpleObject)]
pub struct SyncStatus {
    /// Idle, queued or running.
    pub state: SyncState,
    /// Seconds before another manual sync may be triggered (0 when it may be now).
    pub cooldown_remaining_seconds: i32,
    /// The queued or running sync; null when idle.
    pub current_run: Option<SyncRun>,
    /// The most recent finished sync; null before the first one.
    pub last_run: Option<SyncRun>,
    /// When the next scheduled sync is due; null when not connected or scheduling is off.
    pub next_scheduled_at: Option<DateTime<Utc>>,
}

impl From<crate::sync::SyncStatus> for SyncStatus {
    fn from(s: crate::sync::SyncStatus) -> Self {
        Self {
            state: s.state.into(),
            cooldown_remaining_seconds: s.cooldown_remaining_seconds as i32,
            current_run: s.current_run.map(SyncRun::from),
            last_run: s.last_run.map(SyncRun::from),
            next_scheduled_at: s.next_scheduled_at,
        }
    }
}

/// What started a sync.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Enum)]
#[graphql(remote = "entity::states::RunTrigger")]
pub enum SyncTrigger {
    /// Trigger Sync was clicked.
    Manual,
    /// The periodic schedule.
    Scheduled,
    /// The first sync after connecting.
    Initial,
}

/// Where a sync run is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Enum)]
#[graphql(remote = "entity::states::RunStatus")]
pub enum SyncRunStatus {
    /// Accepted, not started.
    Queued,
    /// Running.
    Running,
    /// Every tenant synced.
    Succeeded,
    /// Finished, but at least one tenant failed or was only partly read.
    Partial,
    /// The run as a whole failed (e.g. the authorization was revoked).
    Failed,
    /// Stopped (e.g. by a disconnect).
    Cancelled,
}

/// How one tenant fared in a sync run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Enum)]
#[graphql(remote = "entity::states::TenantOutcome")]
pub enum TenantOutcome {
    /// Everything was read.
    Ok,
    /// Users were read but something (e.g. MFA) was not.
    Partial,
    /// Nothing was read; stored data was kept.
    Failed,
}

/// One tenant's result inside a sync run.
#[derive(Clone, Debug, SimpleObject)]
pub struct TenantSyncResult {
    /// Microsoft tenant id.
    pub tenant_id: String,
    /// Tenant name at the time of the run.
    pub display_name: String,
    /// OK, PARTIAL or FAILED.
    pub outcome: TenantOutcome,
    /// Machine-readable reason when not OK (e.g. `CONSENT_MISSING`, `NO_GDAP_ACCESS`, `MFA_UNAVAILABLE`).
    pub error_code: Option<String>,
    /// What went wrong, for a person; null when OK.
    pub error: Option<String>,
    /// What the MSP can do about it; null when OK.
    pub remediation: Option<String>,
    /// Users written for this tenant.
    pub users_synced: i32,
}

/// One sync of the account.
///
/// A view over the stored run, shared between everyone it is sent to: a field is computed only
/// when a query selects it (a subscriber asking for three fields costs three fields).
#[derive(Clone, Debug)]
pub struct SyncRun(pub Arc<sync_run::Model>);

impl From<sync_run::Model> for SyncRun {
    fn from(m: sync_run::Model) -> Self {
        Self(Arc::new(m))
    }
}

impl From<Arc<sync_run::Model>> for SyncRun {
    fn from(m: Arc<sync_run::Model>) -> Self {
        Self(m)
    }
}

/// One sync of the account.
#[Object]
impl SyncRun {
    /// Run id.
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }

    /// What started it.
    async fn trigger(&self) -> SyncTrigger {
        self.0.trigger.into()
    }

    /// Where it is in its life.
    async fn status(&self) -> SyncRunStatus {
        self.0.status.into()
    }

    /// Current step while running (`starting`, `refreshing_token`, `discovering_tenants`,
    /// `syncing_tenants`); the last step reached once finished.
    async fn phase(&self) -> Option<String> {
        self.0.phase.map(|p| sea_orm::ActiveEnum::to_value(&p))
    }

    /// Name of the tenant being synced right now; null when none.
    async fn current_tenant(&self) -> Option<&str> {
        self.0.current_tenant.as_deref()
    }

    /// Tenants to sync in this run.
    async fn tenants_total(&self) -> i32 {
        self.0.tenants_total as i32
    }

    /// Tenants finished (any outcome).
    async fn tenants_done(&self) -> i32 {
        self.0.tenants_done as i32
    }

    /// Tenants that failed.
    async fn tenants_failed(&self) -> i32 {
        self.0.tenants_failed as i32
    }

    /// Users written so far.
    async fn users_synced(&self) -> i32 {
        self.0.users_synced as i32
    }

    /// When it was accepted.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    /// When a worker started it; null while queued.
    async fn started_at(&self) -> Option<DateTime<Utc>> {
        self.0.started_at
    }

    /// When it ended; null while queued or running.
    async fn finished_at(&self) -> Option<DateTime<Utc>> {
        self.0.finished_at
    }

    /// Why the run as a whole failed or was cancelled, for a person (internal details are
    /// logged under the error id it names, never shown); null otherwise.
    async fn error(&self) -> Option<&str> {
        self.0.error.as_deref()
    }

    /// Machine-readable reason beside `error`: `M365_AUTHORIZATION_REVOKED`, `CANCELLED`,
    /// `DISCOVERY_FAILED`, `WORKER_LOST` or `INTERNAL_SERVER_ERROR`; null when none.
    async fn error_code(&self) -> Option<&str> {
        self.0.error_code.as_deref()
    }

    /// Per-tenant outcomes, in the order tenants finished.
    async fn tenant_results(&self) -> Vec<TenantSyncResult> {
        self.0
            .tenant_results
            .0
            .iter()
            .map(|r| TenantSyncResult {
                tenant_id: r.tenant_id.0.clone(),
                display_name: r.display_name.clone(),
                outcome: r.outcome.into(),
                error_code: r.error_code.clone(),
                error: r.error.clone(),
                remediation: r.remediation.clone(),
                users_synced: r.users_synced as i32,
            })
            .collect()
    }

    /// The number of this state within the run: it goes up with every change, so a client
    /// (or a dashboard fed by several servers) can tell the order of two states of one run. The
    /// terminal state comes last whatever its number.
    async fn version(&self) -> i32 {
        self.0.version.min(i64::from(i32::MAX)) as i32
    }

    /// When this state was reached (the run's last change).
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at.unwrap_or(self.0.created_at)
    }
}

connection!(
    SyncRunConnection,
    SyncRunEdge,
    SyncRun,
    "A page of sync runs, newest first.",
    "A sync run with its cursor."
);

/// Where to send the browser to approve the connection.
#[derive(Clone, Debug, SimpleObject)]
pub struct ConnectM365Payload {
    /// Microsoft's sign-in and consent page; open it in the browser. A Global Administrator must
    /// approve; Microsoft then redirects to `/oauth/m365/callback`.
    pub authorization_url: String,
    /// When the one-time state in the URL expires (15 minutes); after it the callback answers
    /// "Your session has expired. Please try connecting again."
    pub expires_at: DateTime<Utc>,
}

/// What a disconnect removed. Clients and contacts (the MSP's own data) are kept.
#[derive(Clone, Debug, SimpleObject)]
pub struct DisconnectM365Payload {
    /// Synced user records removed.
    pub users: i32,
    /// License records (subscribed SKUs) removed.
    pub licenses: i32,
    /// User license assignments removed.
    pub license_assignments: i32,
    /// Discovered tenants removed.
    pub tenants: i32,
    /// Tenant-to-client mappings removed.
    pub mappings: i32,
    /// Pending connect attempts discarded.
    pub connect_states: i32,
    /// Whether a stored authorization was removed.
    pub authorization_removed: bool,
    /// Running syncs stopped.
    pub syncs_cancelled: i32,
    /// Per-user MFA history rows removed (the personal data behind evidence snapshots).
    pub mfa_history_rows: i32,
    /// Evidence snapshots kept: figures and digests, no personal data, so past evidence stays
    /// verifiable (`mfaEvidence` lists them; their per-user rows can no longer be exported).
    pub evidence_snapshots_kept: i32,
}

impl From<crate::db::connections::Removed> for DisconnectM365Payload {
    fn from(r: crate::db::connections::Removed) -> Self {
        Self {
            users: r.users as i32,
            licenses: r.licenses as i32,
            license_assignments: r.license_assignments as i32,
            tenants: r.tenants as i32,
            mappings: r.mappings as i32,
            connect_states: r.connect_states as i32,
            authorization_removed: r.authorization,
            syncs_cancelled: r.cancelled_runs as i32,
            mfa_history_rows: r.history_rows as i32,
            evidence_snapshots_kept: r.snapshots_kept as i32,
        }
    }
}
