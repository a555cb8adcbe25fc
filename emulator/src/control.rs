//! `/_emulator/...`: knobs, request counts, a summary of the world, and the license-names CSV
//! (same columns as Microsoft's product-names file, for the SKUs the emulator uses).

use axum::{
    Json, Router,
    extract::{Path, State},
    http::{StatusCode, header},
    response::{IntoResponse, Response},
    routing::{get, post, put},
};
use serde_json::{Value, json};

use super::{AuthorizeMode, EmulatorState, PartnerKnobs, Scenario, catalog, world::TenantKnobs};

pub fn routes() -> Router<EmulatorState> {
    Router::new()
        .route("/_emulator/stats", get(stats))
        .route("/_emulator/stats/reset", post(reset))
        .route("/_emulator/world", get(world))
        .route("/_emulator/tenants/{tenant}/knobs", put(tenant_knobs))
        .route("/_emulator/partner/knobs", put(partner_knobs))
        .route("/_emulator/authorize", put(authorize_mode))
        .route("/_emulator/scenario", put(scenario))
        .route("/_emulator/redirect-uris", post(redirect_uri))
        .route("/_emulator/licensing/product-names.csv", get(license_csv))
}

async fn stats(State(s): State<EmulatorState>) -> Json<Value> {
    let stats = s.stats();
    let graph_total: u64 = stats
        .iter()
        .filter(|(k, _)| k.starts_with("GET /v1.0") || k.as_str() == "POST /v1.0/$batch")
        .map(|(_, v)| v)
        .sum();
    Json(json!({"requests": stats, "graphRequests": graph_total}))
}

async fn reset(State(s): State<EmulatorState>) -> StatusCode {
    s.reset_stats();
    StatusCode::NO_CONTENT
}

async fn world(State(s): State<EmulatorState>) -> Json<Value> {
    let g = s.lock();
    let p = g.world.partner();
    Json(json!({
        "clientId": g.app.client_id,
        "partner": {"id": p.id, "displayName": p.display_name, "users": p.users.iter().map(|u| json!({"upn": u.upn, "globalAdmin": u.global_admin})).collect::<Vec<_>>()},
        "tenants": g.world.customers().iter().enumerate().map(|(i, t)| json!({
            "index": i, "id": t.id, "displayName": t.display_name, "defaultDomain": t.default_domain(),
            "domains": t.domains.iter().map(|d| d.name.clone()).collect::<Vec<_>>(),
            "users": t.users.len(), "hasP1": g.world.has_p1(i + 1), "roles": g.world.roles_in(&t.id),
            "knobs": g.world.knobs(&t.id),
        })).collect::<Vec<_>>(),
    }))
}

async fn tenant_knobs(
    State(s): State<EmulatorState>,
    Path(tenant): Path<String>,
    Json(k): Json<TenantKnobs>,
) -> StatusCode {
    if s.set_tenant_knobs(&tenant, k) { StatusCode::NO_CONTENT } else { StatusCode::NOT_FOUND }
}

async fn partner_knobs(State(s): State<EmulatorState>, Json(k): Json<PartnerKnobs>) -> StatusCode {
    s.set_partner_knobs(k);
    StatusCode::NO_CONTENT
}

async fn authorize_mode(State(s): State<EmulatorState>, Json(m): Json<AuthorizeMode>) -> StatusCode {
    s.set_authorize(m);
    StatusCode::NO_CONTENT
}

async fn scenario(State(s): State<EmulatorState>, Json(sc): Json<Scenario>) -> Response {
    match s.apply(&sc) {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => (StatusCode::BAD_REQUEST, e).into_response(),
    }
}

async fn redirect_uri(State(s): State<EmulatorState>, Json(v): Json<Value>) -> StatusCode {
    match v["uri"].as_str().and_then(|u| url::Url::parse(u).ok()) {
        Some(u) => {
            s.add_redirect_uri(u.as_str());
            StatusCode::NO_CONTENT
        }
        None => StatusCode::BAD_REQUEST,
    }
}

/// The product-names CSV for the emulated SKUs, in Microsoft's format (UTF-8 with BOM, one row
/// per SKU and service plan). Exchange Online (Plan 1) is left out on purpose, so that clients
/// show how they fall back to the part number for a SKU the file does not list.
pub fn license_csv_text() -> String {
    let mut out = String::from(
        "\u{feff}Product_Display_Name,String_Id,GUID,Service_Plan_Name,Service_Plan_Id,Service_Plans_Included_Friendly_Names\r\n",
    );
    for s in catalog::ALL_SKUS.iter().filter(|s| s.part_number != "EXCHANGESTANDARD") {
        for (plan_id, plan) in s.plans {
            let field = |v: &str| if v.contains(',') { format!("\"{v}\"") } else { v.to_owned() };
            out.push_str(&format!(
                "{},{},{},{},{},{}\r\n",
                field(s.display_name),
                s.part_number,
                s.sku_id,
                plan,
                plan_id,
                field(plan)
            ));
        }
    }
    out
}

async fn license_csv() -> Response {
    ([(header::CONTENT_TYPE, "text/csv; charset=utf-8")], license_csv_text()).into_response()
}
