//! `oauth_state`: one-time connect state (hash only), with its PKCE verifier.

use sea_orm::entity::prelude::*;

#[derive(Clone, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "oauth_state")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    /// SHA-256 of the state sent to Microsoft (hex); before the browser opened the start URL,
    /// `start:` + SHA-256 of the one-time start token.
    #[sea_orm(unique)]
    pub state_hash: String,
    /// The PKCE verifier, encrypted like refresh tokens (empty until the start URL is opened).
    pub pkce_verifier: String,
    /// Which encryption key wrote `pkce_verifier`.
    pub pkce_key_id: Option<String>,
    /// SHA-256 of the nonce in the starting browser's cookie (hex).
    pub browser_hash: Option<String>,
    pub account_id: i64,
    pub user_sub: String,
    pub created_at: DateTimeUtc,
    pub expires_at: DateTimeUtc,
    pub used_at: Option<DateTimeUtc>,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("oauth_state::Model")
            .field("id", &self.id)
            .field("account_id", &self.account_id)
            .field("expires_at", &self.expires_at)
            .field("used_at", &self.used_at)
            .finish_non_exhaustive()
    }
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
