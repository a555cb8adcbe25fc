//! A sync run's error gets a machine-readable code beside its message (the message is for a
//! person and never carries internal detail; that goes to the log under an error id).

use sea_orm_migration::{prelude::*, schema::*};

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261128_000003_run_error_code"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(Table::alter().table(SyncRun::Table).add_column(string_null(SyncRun::ErrorCode)).to_owned()).await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(Table::alter().table(SyncRun::Table).drop_column(SyncRun::ErrorCode).to_owned()).await
    }
}

#[derive(DeriveIden)]
enum SyncRun {
    Table,
    ErrorCode,
}
