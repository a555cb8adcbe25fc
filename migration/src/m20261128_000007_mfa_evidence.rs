//! GRC evidence: per-user MFA history stored as changes (`valid_from` / `valid_to`), immutable
//! per-tenant snapshots chained by SHA-256 digests, and one chain row per (account, Microsoft
//! tenant) holding the chain's head and where retention pruned it.
//!
//! Existing users get an open history row each (valid from their last sync), so history starts
//! with the data already stored.

use sea_orm_migration::{prelude::*, schema::*};

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261128_000007_mfa_evidence"
    }
}

/// The columns a history row shares with `m365_user` (same names, same types).
const SHARED: &str = "account_id, tenant_id, object_id, user_principal_name, display_name, mail, user_type, \
     account_enabled, is_admin, is_licensed, mfa_status, mfa_methods, mfa_source, mfa_unavailable_reason, \
     mfa_enforcement, mfa_enforcement_sources, mfa_policies, mfa_enforcement_reason, mfa_verdict, mfa_explanation";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(MfaHistory::Table)
                .col(big_pk_auto(MfaHistory::Id))
                .col(big_integer(MfaHistory::AccountId))
                .col(big_integer(MfaHistory::TenantId))
                .col(big_integer(MfaHistory::UserId))
                .col(string(MfaHistory::ObjectId))
                .col(string(MfaHistory::UserPrincipalName))
                .col(string_null(MfaHistory::DisplayName))
                .col(string_null(MfaHistory::Mail))
                .col(string_null(MfaHistory::UserType))
                .col(boolean(MfaHistory::AccountEnabled))
                .col(boolean_null(MfaHistory::IsAdmin))
                .col(boolean(MfaHistory::IsLicensed))
                .col(string(MfaHistory::MfaStatus))
                .col(json(MfaHistory::MfaMethods))
                .col(string_null(MfaHistory::MfaSource))
                .col(text_null(MfaHistory::MfaUnavailableReason))
                .col(string(MfaHistory::MfaEnforcement))
                .col(json(MfaHistory::MfaEnforcementSources))
                .col(json(MfaHistory::MfaPolicies))
                .col(text_null(MfaHistory::MfaEnforcementReason))
                .col(string(MfaHistory::MfaVerdict))
                .col(json(MfaHistory::MfaExplanation))
                .col(timestamp_with_time_zone(MfaHistory::ValidFrom))
                .col(timestamp_with_time_zone_null(MfaHistory::ValidTo))
                .foreign_key(
                    ForeignKey::create()
                        .from(MfaHistory::Table, MfaHistory::AccountId)
                        .to(Account::Table, Account::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        // Reconstruction of a tenant at a time (and the open rows a sync compares with).
        m.create_index(
            Index::create()
                .name("ix_mfa_history_tenant")
                .table(MfaHistory::Table)
                .col(MfaHistory::TenantId)
                .col(MfaHistory::ObjectId)
                .col(MfaHistory::ValidFrom)
                .to_owned(),
        )
        .await?;
        // Account-wide `asOf` pages (ordered by user) and retention pruning.
        m.create_index(
            Index::create()
                .name("ix_mfa_history_account_user")
                .table(MfaHistory::Table)
                .col(MfaHistory::AccountId)
                .col(MfaHistory::UserId)
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_mfa_history_account_valid_to")
                .table(MfaHistory::Table)
                .col(MfaHistory::AccountId)
                .col(MfaHistory::ValidTo)
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(MfaEvidenceSnapshot::Table)
                .col(big_pk_auto(MfaEvidenceSnapshot::Id))
                .col(big_integer(MfaEvidenceSnapshot::AccountId))
                .col(big_integer(MfaEvidenceSnapshot::TenantId))
                .col(string(MfaEvidenceSnapshot::MicrosoftTenantId))
                .col(string(MfaEvidenceSnapshot::TenantName))
                .col(big_integer_null(MfaEvidenceSnapshot::ClientId))
                .col(string_null(MfaEvidenceSnapshot::ClientName))
                .col(big_integer(MfaEvidenceSnapshot::RunId))
                .col(big_integer(MfaEvidenceSnapshot::Sequence))
                .col(timestamp_with_time_zone(MfaEvidenceSnapshot::TakenAt))
                .col(big_integer(MfaEvidenceSnapshot::UserCount))
                .col(json(MfaEvidenceSnapshot::Figures))
                .col(string(MfaEvidenceSnapshot::RowsSha256))
                .col(string_null(MfaEvidenceSnapshot::PreviousDigest))
                .col(string(MfaEvidenceSnapshot::Digest))
                .col(timestamp_with_time_zone_null(MfaEvidenceSnapshot::RowsPurgedAt))
                .col(string_null(MfaEvidenceSnapshot::RowsPurgeReason))
                .foreign_key(
                    ForeignKey::create()
                        .from(MfaEvidenceSnapshot::Table, MfaEvidenceSnapshot::AccountId)
                        .to(Account::Table, Account::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ux_mfa_evidence_snapshot_chain")
                .table(MfaEvidenceSnapshot::Table)
                .col(MfaEvidenceSnapshot::AccountId)
                .col(MfaEvidenceSnapshot::MicrosoftTenantId)
                .col(MfaEvidenceSnapshot::Sequence)
                .unique()
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_mfa_evidence_snapshot_tenant")
                .table(MfaEvidenceSnapshot::Table)
                .col(MfaEvidenceSnapshot::TenantId)
                .col(MfaEvidenceSnapshot::TakenAt)
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(MfaEvidenceChain::Table)
                .col(big_pk_auto(MfaEvidenceChain::Id))
                .col(big_integer(MfaEvidenceChain::AccountId))
                .col(string(MfaEvidenceChain::MicrosoftTenantId))
                .col(big_integer(MfaEvidenceChain::HeadSequence))
                .col(string_null(MfaEvidenceChain::HeadDigest))
                .col(big_integer(MfaEvidenceChain::PrunedThrough).default(0))
                .col(string_null(MfaEvidenceChain::PrunedDigest))
                .col(timestamp_with_time_zone_null(MfaEvidenceChain::PrunedBefore))
                .foreign_key(
                    ForeignKey::create()
                        .from(MfaEvidenceChain::Table, MfaEvidenceChain::AccountId)
                        .to(Account::Table, Account::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ux_mfa_evidence_chain")
                .table(MfaEvidenceChain::Table)
                .col(MfaEvidenceChain::AccountId)
                .col(MfaEvidenceChain::MicrosoftTenantId)
                .unique()
                .to_owned(),
        )
        .await?;

        m.get_connection()
            .execute_unprepared(&format!(
                "INSERT INTO mfa_history (user_id, {SHARED}, valid_from) SELECT id, {SHARED}, synced_at FROM m365_user"
            ))
            .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(MfaEvidenceChain::Table).to_owned()).await?;
        m.drop_table(Table::drop().table(MfaEvidenceSnapshot::Table).to_owned()).await?;
        m.drop_table(Table::drop().table(MfaHistory::Table).to_owned()).await
    }
}

#[derive(DeriveIden)]
enum MfaHistory {
    Table,
    Id,
    AccountId,
    TenantId,
    UserId,
    ObjectId,
    UserPrincipalName,
    DisplayName,
    Mail,
    UserType,
    AccountEnabled,
    IsAdmin,
    IsLicensed,
    MfaStatus,
    MfaMethods,
    MfaSource,
    MfaUnavailableReason,
    MfaEnforcement,
    MfaEnforcementSources,
    MfaPolicies,
    MfaEnforcementReason,
    MfaVerdict,
    MfaExplanation,
    ValidFrom,
    ValidTo,
}

#[derive(DeriveIden)]
enum MfaEvidenceSnapshot {
    Table,
    Id,
    AccountId,
    TenantId,
    MicrosoftTenantId,
    TenantName,
    ClientId,
    ClientName,
    RunId,
    Sequence,
    TakenAt,
    UserCount,
    Figures,
    RowsSha256,
    PreviousDigest,
    Digest,
    RowsPurgedAt,
    RowsPurgeReason,
}

#[derive(DeriveIden)]
enum MfaEvidenceChain {
    Table,
    Id,
    AccountId,
    MicrosoftTenantId,
    HeadSequence,
    HeadDigest,
    PrunedThrough,
    PrunedDigest,
    PrunedBefore,
}

#[derive(DeriveIden)]
enum Account {
    Table,
    Id,
}
