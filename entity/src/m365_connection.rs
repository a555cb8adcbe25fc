//! `m365_connection`: one per account, the stored Microsoft authorization.

use crate::states::ConnectionStatus;
use sea_orm::entity::prelude::*;

#[derive(Clone, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "m365_connection")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    #[sea_orm(unique)]
    pub account_id: i64,
    pub partner_tenant_id: String,
    pub partner_tenant_name: Option<String>,
    /// AES-256-GCM ciphertext of the refresh token (base64 of nonce || ciphertext).
    pub refresh_token_enc: String,
    /// Which encryption key wrote `refresh_token_enc`.
    pub key_id: String,
    pub scopes: String,
    pub status: ConnectionStatus,
    pub connected_by: String,
    /// The Microsoft user who consented: UPN and object id.
    pub consented_by_upn: Option<String>,
    pub consented_by_oid: Option<String>,
    pub connected_at: DateTimeUtc,
    pub last_error: Option<String>,
    /// Last manual sync trigger, for the cooldown.
    pub last_manual_sync_at: Option<DateTimeUtc>,
    pub updated_at: DateTimeUtc,
    /// When the next scheduled sync is due.
    pub next_sync_at: Option<DateTimeUtc>,
}

// Hand-written so that the encrypted token never reaches a log line either.
impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("m365_connection::Model")
            .field("id", &self.id)
            .field("account_id", &self.account_id)
            .field("partner_tenant_id", &self.partner_tenant_id)
            .field("status", &self.status)
            .field("refresh_token_enc", &"<redacted>")
            .finish_non_exhaustive()
    }
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
