//! `m365Tenants`, `m365Tenant`, `m365TenantMappingSummary`, `m365Users`, `m365Licenses`,
//! `mfaCoverage`: the data behind user and MFA visibility, license inventory and GRC evidence.

use std::collections::HashMap;

use async_graphql::{Context, ID, Object};
use chrono::{DateTime, Utc};

use super::evidence::as_of_time;

use crate::graphql::types::wants_total;

use crate::{
    db::{self, tenants::TenantFilter, users::UserFilter},
    error::{AppError, AppResult},
    graphql::{
        ContextExt,
        loaders::{prefetch_tenants, prefetch_users},
        m365_reader,
        types::{
            PageArgs,
            coverage::{MfaCoverage, MfaFigures, TenantCoverage},
            list_complexity, page_of, parse_id,
            tenant::{M365Tenant, M365TenantConnection, M365TenantFilter, TenantMappingSummary},
            user::{M365License, M365User, M365UserConnection, M365UserFilter},
        },
    },
};

#[derive(Default)]
pub struct M365Query;

/// The tenant rows a `tenantId` / `clientId` pair selects; `None` means the whole account.
/// Ids of another account are `NOT_FOUND`, exactly like ids that do not exist.
pub async fn scope(
    db: &sea_orm::DatabaseConnection,
    account_id: i64,
    tenant_id: Option<&ID>,
    client_id: Option<&ID>,
) -> AppResult<Option<Vec<i64>>> {
    let mut rows: Option<Vec<i64>> = None;
    if let Some(t) = tenant_id {
        let id = parse_id(t, "tenantId")?;
        db::tenants::get(db, account_id, id).await?.ok_or(AppError::NotFound("tenant"))?;
        rows = Some(vec![id]);
    }
    if let Some(c) = client_id {
        let id = parse_id(c, "clientId")?;
        db::clients::get(db, account_id, id).await?.ok_or(AppError::NotFound("client"))?;
        let mapped = db::mappings::tenants_of_clients(db, &[id]).await?;
        rows = Some(match rows {
            Some(r) => r.into_iter().filter(|t| mapped.contains(t)).collect(),
            None => mapped,
        });
    }
    Ok(rows)
}

#[Object]
impl M365Query {
    /// Discovered customer tenants, oldest first. Errors: `UNAUTHENTICATED`, `FEATURE_DISABLED`,
    /// `BAD_USER_INPUT` (`first` above 500, bad cursor).
    #[graphql(complexity = "list_complexity(first, child_complexity)")]
    async fn m365_tenants(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Page size, 0 to 500 (default 50).")] first: Option<i32>,
        #[graphql(desc = "Cursor of the item after which the page starts.")] after: Option<String>,
        #[graphql(desc = "Mapped or not, and a name search.")] filter: Option<M365TenantFilter>,
    ) -> AppResult<M365TenantConnection> {
        let r = m365_reader(ctx).await?;
        let args = PageArgs::parse(first, after, "tenant")?;
        let f = filter.unwrap_or_default();
        let filter = TenantFilter { mapped: f.mapped, search: f.search };
        let (rows, total) =
            db::tenants::page(&ctx.state().db, r.account.id, &filter, args.after, args.first + 1, wants_total(ctx))
                .await?;
        prefetch_tenants(ctx, &rows).await?;
        let (edges, info) = page_of(rows, args, "tenant", |m| m.id, M365Tenant::from);
        Ok(M365TenantConnection::new(edges, info, total))
    }

    /// One tenant by our id; null when it is not one of the account's tenants.
    /// Errors: `UNAUTHENTICATED`, `FEATURE_DISABLED`, `BAD_USER_INPUT` (malformed id).
    async fn m365_tenant(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The tenant's `M365Tenant.id`.")] id: ID,
    ) -> AppResult<Option<M365Tenant>> {
        let r = m365_reader(ctx).await?;
        let id = parse_id(&id, "id")?;
        Ok(db::tenants::get(&ctx.state().db, r.account.id, id).await?.map(M365Tenant::from))
    }

    /// Total, mapped and unmapped tenants. Errors: `UNAUTHENTICATED`, `FEATURE_DISABLED`.
    async fn m365_tenant_mapping_summary(&self, ctx: &Context<'_>) -> AppResult<TenantMappingSummary> {
        let r = m365_reader(ctx).await?;
        let db = &ctx.state().db;
        let total = db::tenants::count(db, r.account.id).await? as i32;
        let mapped = db::mappings::count(db, r.account.id).await? as i32;
        Ok(TenantMappingSummary { total, mapped, unmapped: total - mapped })
    }

    /// Synced users, in a stable order (cursors stay valid as users are added).
    /// Errors: `UNAUTHENTICATED`, `FEATURE_DISABLED`, `NOT_FOUND` (filter tenant or client of
    /// no account of yours), `BAD_USER_INPUT` (`first` above 500, bad cursor or id).
    #[graphql(complexity = "list_complexity(first, child_complexity)")]
    async fn m365_users(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Page size, 0 to 500 (default 50).")] first: Option<i32>,
        #[graphql(desc = "Cursor of the item after which the page starts.")] after: Option<String>,
        #[graphql(desc = "Every given condition must hold.")] filter: Option<M365UserFilter>,
        #[graphql(
            desc = "Answer as of this moment, from the MFA history (within `EVIDENCE_RETENTION_DAYS`): users, their flags and MFA facts as they were then; `syncedAt` and `mfa.checkedAt` say when that state was first recorded. Licenses and contact links are not kept in history (empty and null), so `filter.contactLinked` cannot be combined with it. Tenant and client scope use today's mappings."
        )]
        as_of: Option<DateTime<Utc>>,
    ) -> AppResult<M365UserConnection> {
        let r = m365_reader(ctx).await?;
        let args = PageArgs::parse(first, after, "user")?;
        let as_of = as_of_time(ctx.state(), as_of)?;
        let f = filter.unwrap_or_default();
        if as_of.is_some() && f.contact_linked.is_some() {
            return Err(AppError::bad_input(
                "filter.contactLinked",
                "contactLinked cannot be combined with asOf: contact links are not kept in the MFA history.",
            ));
        }
        let db = &ctx.state().db;
        let tenant_rows = scope(db, r.account.id, f.tenant_id.as_ref(), f.client_id.as_ref()).await?;
        let filter = UserFilter {
            tenant_rows,
            mfa_status: f.mfa_status.map(Into::into),
            mfa_verdict: f.mfa_verdict.map(Into::into),
            is_admin: f.is_admin,
            account_enabled: f.account_enabled,
            licensed: f.licensed,
            contact_linked: f.contact_linked,
            search: f.search,
        };
        if let Some(at) = as_of {
            let (rows, total) =
                db::users::page_as_of(db, r.account.id, &filter, at, args.after, args.first + 1, wants_total(ctx))
                    .await?;
            let (edges, info) = page_of(rows, args, "user", |h| h.user_id, M365User::historical);
            return Ok(M365UserConnection::new(edges, info, total));
        }
        // The larger columns only when selected (anywhere, fragments included: the look-ahead
        // is a superset of what the fields resolve).
        let node = ctx.look_ahead().field("edges").field("node");
        let cols = db::users::UserColumns {
            aliases: node.field("aliases").exists(),
            enforcement: node.field("mfa").field("enforcement").exists(),
            explanation: node.field("mfa").field("explanation").exists(),
        };
        let (rows, total) =
            db::users::page(db, r.account.id, &filter, args.after, args.first + 1, wants_total(ctx), cols).await?;
        prefetch_users(ctx, &rows).await?;
        let (edges, info) = page_of(rows, args, "user", |m| m.id, M365User::from);
        Ok(M365UserConnection::new(edges, info, total))
    }

    /// License inventory: each tenant's subscribed SKUs with friendly names, seats and the users
    /// holding them; for one tenant, the tenants of one client, or (neither) the whole account.
    /// Errors: `UNAUTHENTICATED`, `FEATURE_DISABLED`, `NOT_FOUND`, `BAD_USER_INPUT`.
    async fn m365_licenses(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Only this tenant (`M365Tenant.id`).")] tenant_id: Option<ID>,
        #[graphql(desc = "Only the tenants mapped to this client (`Client.id`); ignored when `tenantId` is given.")]
        client_id: Option<ID>,
    ) -> AppResult<Vec<M365License>> {
        let r = m365_reader(ctx).await?;
        let app = ctx.state();
        let rows = scope(&app.db, r.account.id, tenant_id.as_ref(), client_id.as_ref()).await?;
        let lic = db::users::licenses(&app.db, r.account.id, rows.as_deref()).await?;
        Ok(lic.into_iter().map(|(l, n)| M365License::new(l, Some(n), &app.license_names)).collect())
    }

    /// MFA coverage for one tenant, the tenants of one client, or (neither) the whole account:
    /// evidence a GRC tool can file, with when it was computed and how fresh the data is.
    /// Errors: `UNAUTHENTICATED`, `FEATURE_DISABLED`, `NOT_FOUND`, `BAD_USER_INPUT`.
    async fn mfa_coverage(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Only this tenant (`M365Tenant.id`).")] tenant_id: Option<ID>,
        #[graphql(desc = "Only the tenants mapped to this client (`Client.id`); ignored when `tenantId` is given.")]
        client_id: Option<ID>,
        #[graphql(default = false, desc = "Count accounts whose sign-in is blocked too.")]
        include_disabled_accounts: bool,
        #[graphql(
            desc = "Answer as of this moment, from the MFA history (within `EVIDENCE_RETENTION_DAYS`); `dataAsOf` is then each tenant's newest evidence snapshot at or before it. Tenant and client scope use today's mappings."
        )]
        as_of: Option<DateTime<Utc>>,
    ) -> AppResult<MfaCoverage> {
        let r = m365_reader(ctx).await?;
        let app = ctx.state();
        let as_of = as_of_time(app, as_of)?;
        let rows = scope(&app.db, r.account.id, tenant_id.as_ref(), client_id.as_ref()).await?;
        let counts =
            db::users::mfa_counts(&app.db, r.account.id, rows.as_deref(), include_disabled_accounts, as_of).await?;
        let tenants = match &rows {
            Some(r) => db::tenants::by_ids(&app.db, r).await?,
            None => db::tenants::list(&app.db, r.account.id).await?,
        };
        let synced: HashMap<i64, Option<DateTime<Utc>>> = match as_of {
            None => tenants.iter().map(|t| (t.id, t.last_synced_at)).collect(),
            Some(at) => db::evidence::confirmed_at(&app.db, r.account.id, at)
                .await?
                .into_iter()
                .map(|(t, at)| (t, Some(at)))
                .collect(),
        };
        let per_tenant: Vec<TenantCoverage> =
            counts.iter().map(|c| TenantCoverage::new(c, synced.get(&c.tenant_id).copied().flatten())).collect();
        let data_as_of = match as_of {
            None => tenants.iter().filter_map(|t| t.last_synced_at).min(),
            Some(_) => per_tenant.iter().filter_map(|t| t.data_as_of).min(),
        };
        Ok(MfaCoverage {
            figures: MfaFigures::sum(per_tenant.iter().map(|t| &t.figures)),
            tenants: per_tenant,
            generated_at: app.clock.now(),
            data_as_of,
        })
    }
}
