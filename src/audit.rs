//! The audit trail: who did what to an account's Microsoft 365 integration, and when. Rows are
//! only ever inserted (never updated), carry the actor (the token's `sub`) and a small JSON
//! detail (tenant ids, counts, codes; never a token or secret), and survive a disconnect: the
//! `disconnected` event, written in the purge's own transaction, is the receipt that the purge
//! happened and what it removed.

use async_graphql::Enum;
use sea_orm::{ConnectionTrait, DbErr};
use serde_json::Value;

use crate::db;

/// What happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Enum)]
pub enum AuditKind {
    /// Connect M365 was clicked (a consent URL was issued).
    ConnectStarted,
    /// A Global Administrator consented and the connection was stored (first time).
    Connected,
    /// A consent replaced the authorization of an existing connection (same partner tenant).
    Reconnected,
    /// A connect came back and was refused (`detail.code` says why).
    ConnectFailed,
    /// Microsoft 365 was disconnected (`detail` holds the purge counts).
    Disconnected,
    /// A manual sync was triggered (`detail.runId`).
    SyncTriggered,
    /// A tenant was mapped to a client (Create Mapping).
    MappingCreated,
    /// A tenant's mapping was removed.
    MappingDeleted,
    /// Several tenants were mapped at once (Map Selected; `detail.count`).
    MappingsBulkCreated,
    /// Suggestions were accepted (`detail.count`, `detail.skipped`).
    SuggestionsAccepted,
    /// Clients were inserted or updated (`detail.count`).
    ClientsUpserted,
    /// Contacts were inserted or updated (`detail.count`).
    ContactsUpserted,
}

impl AuditKind {
    /// Every kind, in declaration order.
    pub const ALL: [Self; 12] = [
        Self::ConnectStarted,
        Self::Connected,
        Self::Reconnected,
        Self::ConnectFailed,
        Self::Disconnected,
        Self::SyncTriggered,
        Self::MappingCreated,
        Self::MappingDeleted,
        Self::MappingsBulkCreated,
        Self::SuggestionsAccepted,
        Self::ClientsUpserted,
        Self::ContactsUpserted,
    ];

    /// The stored text.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ConnectStarted => "connect_started",
            Self::Connected => "connected",
            Self::Reconnected => "reconnected",
            Self::ConnectFailed => "connect_failed",
            Self::Disconnected => "disconnected",
            Self::SyncTriggered => "sync_triggered",
            Self::MappingCreated => "mapping_created",
            Self::MappingDeleted => "mapping_deleted",
            Self::MappingsBulkCreated => "mappings_bulk_created",
            Self::SuggestionsAccepted => "suggestions_accepted",
            Self::ClientsUpserted => "clients_upserted",
            Self::ContactsUpserted => "contacts_upserted",
        }
    }

    /// From the stored text; `None` for text no version of this service writes.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// Appends an event.
pub async fn record(
    db: &impl ConnectionTrait,
    account_id: i64,
    kind: AuditKind,
    actor: &str,
    detail: Value,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(), DbErr> {
    db::audit::insert(db, account_id, kind.as_str(), actor, detail, now).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_and_are_distinct() {
        let mut seen = std::collections::HashSet::new();
        for k in AuditKind::ALL {
            assert_eq!(AuditKind::parse(k.as_str()), Some(k));
            assert!(seen.insert(k.as_str()));
        }
        assert_eq!(AuditKind::parse("nope"), None);
    }
}
