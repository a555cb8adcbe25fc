//! Per-tenant tallies of users by the values the user list filters on (MFA status and verdict,
//! admin, enabled, licensed, linked to a contact), so `totalCount` over 100,000 users sums a few
//! rows per tenant instead of counting users. Filled from the users already stored.

use sea_orm_migration::{prelude::*, schema::*};

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261129_000010_user_counts"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(M365UserCount::Table)
                .col(big_pk_auto(M365UserCount::Id))
                .col(big_integer(M365UserCount::AccountId))
                .col(big_integer(M365UserCount::TenantId))
                .col(string(M365UserCount::MfaStatus))
                .col(string(M365UserCount::MfaVerdict))
                .col(boolean_null(M365UserCount::IsAdmin))
                .col(boolean(M365UserCount::AccountEnabled))
                .col(boolean(M365UserCount::IsLicensed))
                .col(boolean(M365UserCount::ContactLinked))
                .col(big_integer(M365UserCount::Users))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("idx_m365_user_count_account_tenant")
                .table(M365UserCount::Table)
                .col(M365UserCount::AccountId)
                .col(M365UserCount::TenantId)
                .to_owned(),
        )
        .await?;
        m.get_connection()
            .execute_unprepared(&format!("INSERT INTO m365_user_count ({COLUMNS}) {TALLY} GROUP BY {GROUPS}"))
            .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(M365UserCount::Table).to_owned()).await
    }
}

const COLUMNS: &str =
    "account_id, tenant_id, mfa_status, mfa_verdict, is_admin, account_enabled, is_licensed, contact_linked, users";
const TALLY: &str = "SELECT account_id, tenant_id, mfa_status, mfa_verdict, is_admin, account_enabled, is_licensed, \
     contact_id IS NOT NULL, COUNT(*) FROM m365_user";
const GROUPS: &str =
    "account_id, tenant_id, mfa_status, mfa_verdict, is_admin, account_enabled, is_licensed, contact_id IS NOT NULL";

#[derive(DeriveIden)]
enum M365UserCount {
    Table,
    Id,
    AccountId,
    TenantId,
    MfaStatus,
    MfaVerdict,
    IsAdmin,
    AccountEnabled,
    IsLicensed,
    ContactLinked,
    Users,
}
