//! A sync run's published states are numbered: `version` goes up by one with every change a
//! subscriber can see, and `updated_at` says when that change happened. Replicas that relay
//! progress use the pair to keep every subscriber's stream ordered and to repair a missed step.

use sea_orm_migration::{prelude::*, schema::*};

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261129_000008_run_version"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite adds one at a time.
        m.alter_table(
            Table::alter().table(SyncRun::Table).add_column(big_integer(SyncRun::Version).default(0)).to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(SyncRun::Table)
                .add_column(timestamp_with_time_zone_null(SyncRun::UpdatedAt))
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(Table::alter().table(SyncRun::Table).drop_column(SyncRun::UpdatedAt).to_owned()).await?;
        m.alter_table(Table::alter().table(SyncRun::Table).drop_column(SyncRun::Version).to_owned()).await
    }
}

#[derive(DeriveIden)]
enum SyncRun {
    Table,
    Version,
    UpdatedAt,
}
