//! `AuditEvent`: one entry of the account's audit trail.

use async_graphql::{ID, InputObject, SimpleObject};
use chrono::{DateTime, Utc};
use entity::audit_event;

use crate::{audit::AuditKind, connection};

/// Something a person did to the account's Microsoft 365 integration. Entries are never
/// changed or removed, not even by a disconnect.
#[derive(Clone, Debug, SimpleObject)]
pub struct AuditEvent {
    /// The event's id.
    pub id: ID,
    /// What happened; null for a kind this version does not know (written by a newer one).
    pub kind: Option<AuditKind>,
    /// Who did it: the API token's subject (`sub`). For `CONNECTED`, `RECONNECTED` and
    /// `CONNECT_FAILED`, the user who clicked Connect M365.
    pub actor: String,
    /// When it happened.
    pub at: DateTime<Utc>,
    /// Details as a JSON object (tenant ids, counts, codes; never a token or secret).
    pub detail: String,
}

impl From<audit_event::Model> for AuditEvent {
    fn from(m: audit_event::Model) -> Self {
        Self {
            id: ID(m.id.to_string()),
            kind: AuditKind::parse(&m.kind),
            actor: m.actor,
            at: m.created_at,
            detail: m.detail.to_string(),
        }
    }
}

connection!(
    AuditEventConnection,
    AuditEventEdge,
    AuditEvent,
    "A page of audit events, newest first.",
    "An audit event with its cursor."
);

/// Which audit events to list.
#[derive(Clone, Debug, Default, InputObject)]
pub struct AuditEventFilter {
    /// Only events of this kind; null for all.
    pub kind: Option<AuditKind>,
    /// Only events at or after this time; null for all.
    pub since: Option<DateTime<Utc>>,
}
