//! Binding a consent to the browser that started it, and to one account per partner tenant:
//! the connect state keeps the hash of the browser's nonce and the key that encrypts its PKCE
//! verifier; the connection records who consented; a partner tenant is connected to at most one
//! account (a unique index, so two racing callbacks cannot both win).

use sea_orm_migration::{prelude::*, schema::*};

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261128_000004_consent_binding"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter().table(OauthState::Table).add_column(string_null(OauthState::BrowserHash)).to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter().table(OauthState::Table).add_column(string_null(OauthState::PkceKeyId)).to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(M365Connection::Table)
                .add_column(string_null(M365Connection::ConsentedByUpn))
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(M365Connection::Table)
                .add_column(string_null(M365Connection::ConsentedByOid))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ux_connection_partner_tenant")
                .table(M365Connection::Table)
                .col(M365Connection::PartnerTenantId)
                .unique()
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_index(Index::drop().name("ux_connection_partner_tenant").table(M365Connection::Table).to_owned())
            .await?;
        for col in [M365Connection::ConsentedByUpn, M365Connection::ConsentedByOid] {
            m.alter_table(Table::alter().table(M365Connection::Table).drop_column(col).to_owned()).await?;
        }
        for col in [OauthState::BrowserHash, OauthState::PkceKeyId] {
            m.alter_table(Table::alter().table(OauthState::Table).drop_column(col).to_owned()).await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum OauthState {
    Table,
    BrowserHash,
    PkceKeyId,
}

#[derive(DeriveIden)]
enum M365Connection {
    Table,
    PartnerTenantId,
    ConsentedByUpn,
    ConsentedByOid,
}
