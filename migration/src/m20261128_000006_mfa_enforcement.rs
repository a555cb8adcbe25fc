//! MFA enforcement beside registration: per user, whether MFA is required at sign-in, from what,
//! the verdict and its explanation; per tenant, the policies read. Existing rows start UNKNOWN
//! (nothing was read yet) until the next sync.

use sea_orm_migration::{prelude::*, schema::*};

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261128_000006_mfa_enforcement"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite alters one at a time.
        let columns = [
            string(M365User::MfaEnforcement).default("unknown").to_owned(),
            json(M365User::MfaEnforcementSources).default("[]").to_owned(),
            json(M365User::MfaPolicies).default("[]").to_owned(),
            text_null(M365User::MfaEnforcementReason).to_owned(),
            string(M365User::MfaVerdict).default("unknown").to_owned(),
            json(M365User::MfaExplanation).default("[]").to_owned(),
        ];
        for mut c in columns {
            m.alter_table(Table::alter().table(M365User::Table).add_column(&mut c).to_owned()).await?;
        }
        m.create_index(
            Index::create()
                .name("ix_m365_user_verdict")
                .table(M365User::Table)
                .col(M365User::AccountId)
                .col(M365User::MfaVerdict)
                .to_owned(),
        )
        .await?;
        m.alter_table(Table::alter().table(M365Tenant::Table).add_column(json_null(M365Tenant::MfaPolicy)).to_owned())
            .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_index(Index::drop().name("ix_m365_user_verdict").table(M365User::Table).to_owned()).await?;
        m.alter_table(Table::alter().table(M365Tenant::Table).drop_column(M365Tenant::MfaPolicy).to_owned()).await?;
        for c in [
            M365User::MfaEnforcement,
            M365User::MfaEnforcementSources,
            M365User::MfaPolicies,
            M365User::MfaEnforcementReason,
            M365User::MfaVerdict,
            M365User::MfaExplanation,
        ] {
            m.alter_table(Table::alter().table(M365User::Table).drop_column(c).to_owned()).await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden, Clone, Copy)]
enum M365User {
    Table,
    AccountId,
    MfaEnforcement,
    MfaEnforcementSources,
    MfaPolicies,
    MfaEnforcementReason,
    MfaVerdict,
    MfaExplanation,
}

#[derive(DeriveIden)]
enum M365Tenant {
    Table,
    MfaPolicy,
}
