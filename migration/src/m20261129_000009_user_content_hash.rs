//! A user row carries a digest of what the sync wrote, so a sync that reads the same user again
//! rewrites nothing. Existing rows start at 0 (unknown): the next sync rewrites them once.

use sea_orm_migration::{prelude::*, schema::*};

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261129_000009_user_content_hash"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter().table(M365User::Table).add_column(big_integer(M365User::ContentHash).default(0)).to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(Table::alter().table(M365User::Table).drop_column(M365User::ContentHash).to_owned()).await
    }
}

#[derive(DeriveIden)]
enum M365User {
    Table,
    ContentHash,
}
