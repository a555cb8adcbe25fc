//! `createTenantMapping`, `bulkCreateTenantMappings`, `deleteTenantMapping`,
//! `acceptTenantSuggestions`.

use async_graphql::{Context, ID, Object};
use entity::states::MappingMethod;

use serde_json::json;

use crate::{
    audit::AuditKind,
    db,
    error::{AppError, AppResult},
    graphql::{
        ContextExt, audit, m365_manager,
        types::{
            parse_id,
            tenant::{BulkTenantMappingPayload, SkippedTenant, TenantMapping, TenantMappingInput},
        },
    },
    mapping::{self, Acceptance, MappingRequest, suggest},
};

#[derive(Default)]
pub struct MappingMutation;

#[Object]
impl MappingMutation {
    /// Maps a tenant to a client (Create Mapping); the tenant's users are linked to the client's
    /// contacts at once. Errors: `UNAUTHENTICATED`, `FORBIDDEN`, `FEATURE_DISABLED`,
    /// `BAD_USER_INPUT` (unknown tenant or client, named in `extensions.field`), `CONFLICT`
    /// (already mapped: delete the mapping first).
    async fn create_tenant_mapping(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The tenant to map (`M365Tenant.id`).")] tenant_id: ID,
        #[graphql(desc = "The client it belongs to (`Client.id`).")] client_id: ID,
    ) -> AppResult<TenantMapping> {
        let r = m365_manager(ctx).await?;
        let req = MappingRequest {
            tenant_row: parse_id(&tenant_id, "tenantId")?,
            client_id: parse_id(&client_id, "clientId")?,
            path: "mapping".into(),
        };
        let app = ctx.state();
        let mut made =
            mapping::create(&app.db, r.account.id, &[req], MappingMethod::Manual, &r.caller.user, app.clock.now())
                .await?;
        let m = made.remove(0);
        let detail = json!({"tenantId": m.tenant_id.to_string(), "clientId": m.client_id.to_string()});
        audit(ctx, &r, AuditKind::MappingCreated, detail).await;
        Ok(m.into())
    }

    /// Maps several tenants at once (Map Selected), all or nothing: a bad item is named in the
    /// error (`mappings[i]`) and nothing is stored. At most 1,000.
    /// Errors: as `createTenantMapping`.
    async fn bulk_create_tenant_mappings(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The mappings to make, all or none (Map Selected).")] mappings: Vec<TenantMappingInput>,
    ) -> AppResult<BulkTenantMappingPayload> {
        let r = m365_manager(ctx).await?;
        let reqs = mappings
            .iter()
            .enumerate()
            .map(|(i, m)| {
                Ok(MappingRequest {
                    tenant_row: parse_id(&m.tenant_id, &format!("mappings[{i}].tenantId"))?,
                    client_id: parse_id(&m.client_id, &format!("mappings[{i}].clientId"))?,
                    path: format!("mappings[{i}]"),
                })
            })
            .collect::<AppResult<Vec<_>>>()?;
        let app = ctx.state();
        let made =
            mapping::create(&app.db, r.account.id, &reqs, MappingMethod::Bulk, &r.caller.user, app.clock.now()).await?;
        audit(ctx, &r, AuditKind::MappingsBulkCreated, json!({"count": made.len()})).await;
        Ok(BulkTenantMappingPayload { mappings: made.into_iter().map(TenantMapping::from).collect(), skipped: vec![] })
    }

    /// Accepts the top suggestion of each selected tenant whose confidence is at least
    /// `minConfidence`; the others are returned as skipped with the reason.
    /// Errors: `UNAUTHENTICATED`, `FORBIDDEN`, `FEATURE_DISABLED`, `BAD_USER_INPUT`.
    async fn accept_tenant_suggestions(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The selected tenants (`M365Tenant.id`), in order.")] tenant_ids: Vec<ID>,
        #[graphql(default = 80, desc = "Lowest confidence (0–100) accepted.")] min_confidence: i32,
    ) -> AppResult<BulkTenantMappingPayload> {
        let r = m365_manager(ctx).await?;
        if !(0..=100).contains(&min_confidence) {
            return Err(AppError::bad_input("minConfidence", "minConfidence must be between 0 and 100"));
        }
        let app = ctx.state();
        let rows = db::mappings::candidate_rows(&app.db, r.account.id).await?;
        let (candidates, mapped) = suggest::candidates(rows);
        let tenants: std::collections::HashMap<i64, entity::m365_tenant::Model> =
            db::tenants::list(&app.db, r.account.id).await?.into_iter().map(|t| (t.id, t)).collect();
        let mut selected = Vec::with_capacity(tenant_ids.len());
        for (i, id) in tenant_ids.iter().enumerate() {
            let row = parse_id(id, &format!("tenantIds[{i}]"))?;
            let t = tenants.get(&row).ok_or_else(|| {
                AppError::bad_input(format!("tenantIds[{i}]"), format!("tenantIds[{i}]: no such tenant"))
            })?;
            selected.push(t);
        }
        let mut reqs = vec![];
        let mut skipped = vec![];
        let decisions = mapping::accept_suggestions(&selected, &candidates, mapped, min_confidence);
        for (i, (t, decision)) in selected.iter().zip(decisions).enumerate() {
            match decision {
                Acceptance::Map(client_id) => {
                    reqs.push(MappingRequest { tenant_row: t.id, client_id, path: format!("tenantIds[{i}]") })
                }
                Acceptance::Skip(reason) => skipped.push(SkippedTenant { tenant_id: tenant_ids[i].clone(), reason }),
            }
        }
        let made =
            mapping::create(&app.db, r.account.id, &reqs, MappingMethod::Suggestion, &r.caller.user, app.clock.now())
                .await?;
        audit(ctx, &r, AuditKind::SuggestionsAccepted, json!({"count": made.len(), "skipped": skipped.len()})).await;
        Ok(BulkTenantMappingPayload { mappings: made.into_iter().map(TenantMapping::from).collect(), skipped })
    }

    /// Unmaps a tenant; its users' contact links are removed. Returns true.
    /// Errors: `UNAUTHENTICATED`, `FORBIDDEN`, `FEATURE_DISABLED`, `NOT_FOUND` (no such tenant,
    /// or not mapped), `BAD_USER_INPUT`.
    async fn delete_tenant_mapping(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The tenant to unmap (`M365Tenant.id`).")] tenant_id: ID,
    ) -> AppResult<bool> {
        let r = m365_manager(ctx).await?;
        let row = parse_id(&tenant_id, "tenantId")?;
        mapping::delete(&ctx.state().db, r.account.id, row).await?;
        audit(ctx, &r, AuditKind::MappingDeleted, json!({"tenantId": row.to_string()})).await;
        Ok(true)
    }
}
