//! The sync lock and schedule: at most one queued or running sync run per account (a partial
//! unique index, so the database itself refuses a second claim, across processes), and the
//! connection's next scheduled sync time (claimed with a conditional update by one process).

use sea_orm_migration::{prelude::*, schema::*};

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261128_000002_sync_lock"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.get_connection()
            .execute_unprepared(
                "CREATE UNIQUE INDEX ux_sync_run_active ON sync_run (account_id) WHERE status IN ('queued', 'running')",
            )
            .await?;
        m.alter_table(
            Table::alter()
                .table(M365Connection::Table)
                .add_column(timestamp_with_time_zone_null(M365Connection::NextSyncAt))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_connection_next_sync")
                .table(M365Connection::Table)
                .col(M365Connection::NextSyncAt)
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_index(Index::drop().name("ix_connection_next_sync").table(M365Connection::Table).to_owned()).await?;
        m.alter_table(Table::alter().table(M365Connection::Table).drop_column(M365Connection::NextSyncAt).to_owned())
            .await?;
        m.drop_index(Index::drop().name("ux_sync_run_active").table(SyncRun::Table).to_owned()).await
    }
}

#[derive(DeriveIden)]
enum M365Connection {
    Table,
    NextSyncAt,
}

#[derive(DeriveIden)]
enum SyncRun {
    Table,
}
