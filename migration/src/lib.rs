//! Database migrations, one timestamped module per change. The service runs them on start and
//! through `m365-integration migrate`; tests run them on every fresh database, so they are tested
//! on SQLite and PostgreSQL alike.

pub use sea_orm_migration::prelude::*;

mod m20261128_000001_domain_model;
mod m20261128_000002_sync_lock;
mod m20261128_000003_run_error_code;
mod m20261128_000004_consent_binding;
mod m20261128_000005_audit_event;
mod m20261128_000006_mfa_enforcement;
mod m20261128_000007_mfa_evidence;
mod m20261129_000008_run_version;
mod m20261129_000009_user_content_hash;
mod m20261129_000010_user_counts;

/// Every migration, oldest first.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261128_000001_domain_model::Migration),
            Box::new(m20261128_000002_sync_lock::Migration),
            Box::new(m20261128_000003_run_error_code::Migration),
            Box::new(m20261128_000004_consent_binding::Migration),
            Box::new(m20261128_000005_audit_event::Migration),
            Box::new(m20261128_000006_mfa_enforcement::Migration),
            Box::new(m20261128_000007_mfa_evidence::Migration),
            Box::new(m20261129_000008_run_version::Migration),
            Box::new(m20261129_000009_user_content_hash::Migration),
            Box::new(m20261129_000010_user_counts::Migration),
        ]
    }
}
