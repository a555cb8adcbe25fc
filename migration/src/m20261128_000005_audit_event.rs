//! The audit trail: an append-only record of what people did to an account's Microsoft 365
//! integration (connect, disconnect, sync triggers, mappings, client and contact upserts). It
//! holds no Microsoft data beyond tenant ids and counts, so a disconnect keeps it: it is the
//! receipt that a purge happened.

use sea_orm_migration::{prelude::*, schema::*};

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261128_000005_audit_event"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(AuditEvent::Table)
                .col(big_pk_auto(AuditEvent::Id))
                .col(big_integer(AuditEvent::AccountId))
                .col(string(AuditEvent::Kind))
                .col(string(AuditEvent::Actor))
                .col(json(AuditEvent::Detail))
                .col(timestamp_with_time_zone(AuditEvent::CreatedAt))
                .foreign_key(
                    ForeignKey::create()
                        .from(AuditEvent::Table, AuditEvent::AccountId)
                        .to(Account::Table, Account::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_audit_event_account")
                .table(AuditEvent::Table)
                .col(AuditEvent::AccountId)
                .col(AuditEvent::Id)
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(AuditEvent::Table).to_owned()).await
    }
}

#[derive(DeriveIden)]
enum AuditEvent {
    Table,
    Id,
    AccountId,
    Kind,
    Actor,
    Detail,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Account {
    Table,
    Id,
}
