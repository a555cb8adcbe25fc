//! The domain model of `DESIGN.md`: accounts, clients, contacts, the Microsoft connection and
//! connect states, tenants, mappings, users, licenses, sync runs and the license-name cache.

use sea_orm_migration::{prelude::*, schema::*};

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261128_000001_domain_model"
    }
}

fn ts(col: impl IntoIden) -> ColumnDef {
    timestamp_with_time_zone(col)
}

fn ts_null(col: impl IntoIden) -> ColumnDef {
    timestamp_with_time_zone_null(col)
}

fn index(name: &str, table: impl IntoIden, cols: &[&'static str], unique: bool) -> IndexCreateStatement {
    let mut idx = Index::create();
    idx.name(name).table(table);
    for c in cols {
        idx.col(Alias::new(*c));
    }
    if unique {
        idx.unique();
    }
    idx.to_owned()
}

fn fk(table: impl IntoIden, col: &'static str, to: impl IntoIden, cascade: bool) -> ForeignKeyCreateStatement {
    let mut f = ForeignKey::create();
    f.from(table, Alias::new(col)).to(to, Alias::new("id"));
    if cascade {
        f.on_delete(ForeignKeyAction::Cascade);
    }
    f.to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Account::Table)
                .col(big_pk_auto(Account::Id))
                .col(string(Account::Name))
                .col(boolean(Account::M365Enabled).default(false))
                .col(ts(Account::CreatedAt))
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Client::Table)
                .col(big_pk_auto(Client::Id))
                .col(big_integer(Client::AccountId))
                .col(string(Client::Source))
                .col(string(Client::ExternalId))
                .col(string(Client::Name))
                .col(json(Client::Domains))
                .col(ts(Client::CreatedAt))
                .col(ts(Client::UpdatedAt))
                .foreign_key(&mut fk(Client::Table, "account_id", Account::Table, true))
                .to_owned(),
        )
        .await?;
        m.create_index(index("ux_client_source", Client::Table, &["account_id", "source", "external_id"], true))
            .await?;

        m.create_table(
            Table::create()
                .table(Contact::Table)
                .col(big_pk_auto(Contact::Id))
                .col(big_integer(Contact::AccountId))
                .col(big_integer(Contact::ClientId))
                .col(string(Contact::Source))
                .col(string(Contact::ExternalId))
                .col(string(Contact::Name))
                .col(json(Contact::Emails))
                .col(ts(Contact::CreatedAt))
                .col(ts(Contact::UpdatedAt))
                .foreign_key(&mut fk(Contact::Table, "account_id", Account::Table, true))
                .foreign_key(&mut fk(Contact::Table, "client_id", Client::Table, true))
                .to_owned(),
        )
        .await?;
        m.create_index(index("ux_contact_source", Contact::Table, &["account_id", "source", "external_id"], true))
            .await?;
        m.create_index(index("ix_contact_client", Contact::Table, &["client_id"], false)).await?;

        m.create_table(
            Table::create()
                .table(M365Connection::Table)
                .col(big_pk_auto(M365Connection::Id))
                .col(big_integer_uniq(M365Connection::AccountId))
                .col(string(M365Connection::PartnerTenantId))
                .col(string_null(M365Connection::PartnerTenantName))
                .col(text(M365Connection::RefreshTokenEnc))
                .col(string(M365Connection::KeyId))
                .col(text(M365Connection::Scopes))
                .col(string(M365Connection::Status))
                .col(string(M365Connection::ConnectedBy))
                .col(ts(M365Connection::ConnectedAt))
                .col(text_null(M365Connection::LastError))
                .col(ts_null(M365Connection::LastManualSyncAt))
                .col(ts(M365Connection::UpdatedAt))
                .foreign_key(&mut fk(M365Connection::Table, "account_id", Account::Table, true))
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(OauthState::Table)
                .col(big_pk_auto(OauthState::Id))
                .col(string_uniq(OauthState::StateHash))
                .col(string(OauthState::PkceVerifier))
                .col(big_integer(OauthState::AccountId))
                .col(string(OauthState::UserSub))
                .col(ts(OauthState::CreatedAt))
                .col(ts(OauthState::ExpiresAt))
                .col(ts_null(OauthState::UsedAt))
                .foreign_key(&mut fk(OauthState::Table, "account_id", Account::Table, true))
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(M365Tenant::Table)
                .col(big_pk_auto(M365Tenant::Id))
                .col(big_integer(M365Tenant::AccountId))
                .col(string(M365Tenant::TenantId))
                .col(string(M365Tenant::DisplayName))
                .col(string_null(M365Tenant::DefaultDomain))
                .col(json(M365Tenant::Domains))
                .col(json(M365Tenant::GdapRoles))
                .col(string_null(M365Tenant::SyncStatus))
                .col(string_null(M365Tenant::SyncErrorCode))
                .col(text_null(M365Tenant::SyncError))
                .col(text_null(M365Tenant::Remediation))
                .col(string_null(M365Tenant::MfaSource))
                .col(ts_null(M365Tenant::LastSyncedAt))
                .col(ts(M365Tenant::CreatedAt))
                .foreign_key(&mut fk(M365Tenant::Table, "account_id", Account::Table, true))
                .to_owned(),
        )
        .await?;
        m.create_index(index("ux_tenant_ms_id", M365Tenant::Table, &["account_id", "tenant_id"], true)).await?;

        m.create_table(
            Table::create()
                .table(TenantMapping::Table)
                .col(big_pk_auto(TenantMapping::Id))
                .col(big_integer(TenantMapping::AccountId))
                .col(big_integer_uniq(TenantMapping::TenantId))
                .col(big_integer(TenantMapping::ClientId))
                .col(string(TenantMapping::Method))
                .col(string(TenantMapping::CreatedBy))
                .col(ts(TenantMapping::CreatedAt))
                .foreign_key(&mut fk(TenantMapping::Table, "account_id", Account::Table, true))
                .foreign_key(&mut fk(TenantMapping::Table, "tenant_id", M365Tenant::Table, true))
                .foreign_key(&mut fk(TenantMapping::Table, "client_id", Client::Table, true))
                .to_owned(),
        )
        .await?;
        m.create_index(index("ix_mapping_client", TenantMapping::Table, &["client_id"], false)).await?;

        m.create_table(
            Table::create()
                .table(M365User::Table)
                .col(big_pk_auto(M365User::Id))
                .col(big_integer(M365User::AccountId))
                .col(big_integer(M365User::TenantId))
                .col(string(M365User::ObjectId))
                .col(string_null(M365User::DisplayName))
                .col(string(M365User::UserPrincipalName))
                .col(string_null(M365User::Mail))
                .col(json(M365User::Aliases))
                .col(boolean(M365User::AccountEnabled))
                .col(string_null(M365User::UserType))
                .col(boolean_null(M365User::IsAdmin))
                .col(boolean(M365User::IsLicensed).default(false))
                .col(string(M365User::MfaStatus))
                .col(json(M365User::MfaMethods))
                .col(string_null(M365User::MfaSource))
                .col(ts_null(M365User::MfaCheckedAt))
                .col(text_null(M365User::MfaUnavailableReason))
                .col(big_integer_null(M365User::ContactId))
                .col(string_null(M365User::ContactMatch))
                .col(ts(M365User::SyncedAt))
                .foreign_key(&mut fk(M365User::Table, "account_id", Account::Table, true))
                .foreign_key(&mut fk(M365User::Table, "tenant_id", M365Tenant::Table, true))
                .foreign_key(
                    ForeignKey::create()
                        .from(M365User::Table, M365User::ContactId)
                        .to(Contact::Table, Contact::Id)
                        .on_delete(ForeignKeyAction::SetNull),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(index("ux_user_object", M365User::Table, &["tenant_id", "object_id"], true)).await?;
        m.create_index(index("ix_user_account", M365User::Table, &["account_id", "id"], false)).await?;
        m.create_index(index("ix_user_contact", M365User::Table, &["contact_id"], false)).await?;

        m.create_table(
            Table::create()
                .table(M365License::Table)
                .col(big_pk_auto(M365License::Id))
                .col(big_integer(M365License::AccountId))
                .col(big_integer(M365License::TenantId))
                .col(string(M365License::SkuId))
                .col(string(M365License::SkuPartNumber))
                .col(string(M365License::CapabilityStatus))
                .col(big_integer(M365License::EnabledUnits))
                .col(big_integer(M365License::ConsumedUnits))
                .col(big_integer(M365License::SuspendedUnits))
                .col(big_integer(M365License::WarningUnits))
                .col(ts(M365License::SyncedAt))
                .foreign_key(&mut fk(M365License::Table, "account_id", Account::Table, true))
                .foreign_key(&mut fk(M365License::Table, "tenant_id", M365Tenant::Table, true))
                .to_owned(),
        )
        .await?;
        m.create_index(index("ux_license_sku", M365License::Table, &["tenant_id", "sku_id"], true)).await?;

        m.create_table(
            Table::create()
                .table(M365UserLicense::Table)
                .col(big_pk_auto(M365UserLicense::Id))
                .col(big_integer(M365UserLicense::AccountId))
                .col(big_integer(M365UserLicense::TenantId))
                .col(big_integer(M365UserLicense::UserId))
                .col(string(M365UserLicense::SkuId))
                .foreign_key(&mut fk(M365UserLicense::Table, "user_id", M365User::Table, true))
                .foreign_key(&mut fk(M365UserLicense::Table, "tenant_id", M365Tenant::Table, true))
                .to_owned(),
        )
        .await?;
        m.create_index(index("ux_user_license", M365UserLicense::Table, &["user_id", "sku_id"], true)).await?;
        m.create_index(index("ix_user_license_tenant", M365UserLicense::Table, &["tenant_id", "sku_id"], false))
            .await?;

        m.create_table(
            Table::create()
                .table(SyncRun::Table)
                .col(big_pk_auto(SyncRun::Id))
                .col(big_integer(SyncRun::AccountId))
                .col(string(SyncRun::Trigger))
                .col(string(SyncRun::Status))
                .col(string_null(SyncRun::Phase))
                .col(string_null(SyncRun::CurrentTenant))
                .col(big_integer(SyncRun::TenantsTotal).default(0))
                .col(big_integer(SyncRun::TenantsDone).default(0))
                .col(big_integer(SyncRun::TenantsFailed).default(0))
                .col(big_integer(SyncRun::UsersSynced).default(0))
                .col(text_null(SyncRun::Error))
                .col(json(SyncRun::TenantResults))
                .col(string_null(SyncRun::LeaseOwner))
                .col(ts_null(SyncRun::LeaseExpiresAt))
                .col(string_null(SyncRun::CreatedBy))
                .col(ts(SyncRun::CreatedAt))
                .col(ts_null(SyncRun::StartedAt))
                .col(ts_null(SyncRun::FinishedAt))
                .foreign_key(&mut fk(SyncRun::Table, "account_id", Account::Table, true))
                .to_owned(),
        )
        .await?;
        m.create_index(index("ix_sync_run_account", SyncRun::Table, &["account_id", "id"], false)).await?;

        m.create_table(
            Table::create()
                .table(LicenseName::Table)
                .col(string(LicenseName::SkuId).primary_key())
                .col(string(LicenseName::SkuPartNumber))
                .col(string(LicenseName::FriendlyName))
                .col(ts(LicenseName::FetchedAt))
                .to_owned(),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for t in [
            LicenseName::Table.into_iden(),
            SyncRun::Table.into_iden(),
            M365UserLicense::Table.into_iden(),
            M365License::Table.into_iden(),
            M365User::Table.into_iden(),
            TenantMapping::Table.into_iden(),
            M365Tenant::Table.into_iden(),
            OauthState::Table.into_iden(),
            M365Connection::Table.into_iden(),
            Contact::Table.into_iden(),
            Client::Table.into_iden(),
            Account::Table.into_iden(),
        ] {
            m.drop_table(Table::drop().table(t).to_owned()).await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden, Clone, Copy)]
enum Account {
    Table,
    Id,
    Name,
    M365Enabled,
    CreatedAt,
}
#[derive(DeriveIden, Clone, Copy)]
enum Client {
    Table,
    Id,
    AccountId,
    Source,
    ExternalId,
    Name,
    Domains,
    CreatedAt,
    UpdatedAt,
}
#[derive(DeriveIden, Clone, Copy)]
enum Contact {
    Table,
    Id,
    AccountId,
    ClientId,
    Source,
    ExternalId,
    Name,
    Emails,
    CreatedAt,
    UpdatedAt,
}
#[derive(DeriveIden, Clone, Copy)]
enum M365Connection {
    Table,
    Id,
    AccountId,
    PartnerTenantId,
    PartnerTenantName,
    RefreshTokenEnc,
    KeyId,
    Scopes,
    Status,
    ConnectedBy,
    ConnectedAt,
    LastError,
    LastManualSyncAt,
    UpdatedAt,
}
#[derive(DeriveIden, Clone, Copy)]
enum OauthState {
    Table,
    Id,
    StateHash,
    PkceVerifier,
    AccountId,
    UserSub,
    CreatedAt,
    ExpiresAt,
    UsedAt,
}
#[derive(DeriveIden, Clone, Copy)]
enum M365Tenant {
    Table,
    Id,
    AccountId,
    TenantId,
    DisplayName,
    DefaultDomain,
    Domains,
    GdapRoles,
    SyncStatus,
    SyncErrorCode,
    SyncError,
    Remediation,
    MfaSource,
    LastSyncedAt,
    CreatedAt,
}
#[derive(DeriveIden, Clone, Copy)]
enum TenantMapping {
    Table,
    Id,
    AccountId,
    TenantId,
    ClientId,
    Method,
    CreatedBy,
    CreatedAt,
}
#[derive(DeriveIden, Clone, Copy)]
enum M365User {
    Table,
    Id,
    AccountId,
    TenantId,
    ObjectId,
    DisplayName,
    UserPrincipalName,
    Mail,
    Aliases,
    AccountEnabled,
    UserType,
    IsAdmin,
    IsLicensed,
    MfaStatus,
    MfaMethods,
    MfaSource,
    MfaCheckedAt,
    MfaUnavailableReason,
    ContactId,
    ContactMatch,
    SyncedAt,
}
#[derive(DeriveIden, Clone, Copy)]
enum M365License {
    Table,
    Id,
    AccountId,
    TenantId,
    SkuId,
    SkuPartNumber,
    CapabilityStatus,
    EnabledUnits,
    ConsumedUnits,
    SuspendedUnits,
    WarningUnits,
    SyncedAt,
}
#[derive(DeriveIden, Clone, Copy)]
enum M365UserLicense {
    Table,
    Id,
    AccountId,
    TenantId,
    UserId,
    SkuId,
}
#[derive(DeriveIden, Clone, Copy)]
enum SyncRun {
    Table,
    Id,
    AccountId,
    Trigger,
    Status,
    Phase,
    CurrentTenant,
    TenantsTotal,
    TenantsDone,
    TenantsFailed,
    UsersSynced,
    Error,
    TenantResults,
    LeaseOwner,
    LeaseExpiresAt,
    CreatedBy,
    CreatedAt,
    StartedAt,
    FinishedAt,
}
#[derive(DeriveIden, Clone, Copy)]
enum LicenseName {
    Table,
    SkuId,
    SkuPartNumber,
    FriendlyName,
    FetchedAt,
}
