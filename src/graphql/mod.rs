//! The GraphQL schema: roots merged from per-domain objects, limits, and the helpers every
//! resolver uses to find its caller. `schema_builder()` needs no runtime data, so `schema`
//! and the SDL test can print it.

pub mod limits;
pub mod loaders;
pub mod mutation;
pub mod query;
pub mod subscription;
pub mod types;

use async_graphql::{Context, Schema, SchemaBuilder};

use crate::{
    app::AppState,
    auth::{Auth, Caller},
    config::Config,
    db,
    error::{AppError, AppResult},
};

/// The schema type served at `/graphql`.
pub type AppSchema = Schema<query::Query, mutation::Mutation, subscription::Subscription>;

/// The schema with its limits, without runtime data.
pub fn schema_builder(config: &Config) -> SchemaBuilder<query::Query, mutation::Mutation, subscription::Subscription> {
    let mut b =
        Schema::build(query::Query::default(), mutation::Mutation::default(), subscription::Subscription::default())
            // Depth is checked by `DocumentLimits` (with introspection's own budget); this is a backstop.
            .limit_depth(config.graphql_max_depth.max(limits::INTROSPECTION_MAX_DEPTH))
            .limit_complexity(config.graphql_max_complexity)
            .limit_recursive_depth(config.graphql_max_nesting)
            .limit_directives(config.graphql_max_directives)
            .extension(document_limits(config))
            .extension(crate::metrics::GraphqlMetrics);
    if !config.graphql_introspection {
        b = b.disable_introspection();
    }
    b
}

/// The document limits configured.
pub fn document_limits(config: &Config) -> limits::DocumentLimits {
    limits::DocumentLimits {
        max_tokens: config.graphql_max_tokens,
        max_nesting: config.graphql_max_nesting,
        max_arguments: config.graphql_max_arguments,
        max_depth: config.graphql_max_depth,
        max_aliases: config.graphql_max_aliases,
        max_root_fields: config.graphql_max_root_fields,
        max_directives: config.graphql_max_directives,
    }
}

/// The code of a request stopped at `REQUEST_TIMEOUT_SECS`.
pub const REQUEST_TIMEOUT_CODE: &str = crate::error::codes::REQUEST_TIMEOUT;

/// The error of a request stopped at `REQUEST_TIMEOUT_SECS`.
pub fn timeout_error(config: &Config) -> async_graphql::ServerError {
    let mut e = async_graphql::ServerError::new(
        format!(
            "The request ran longer than {} seconds and was stopped. Ask for less (a smaller `first`, fewer fields) or try again later.",
            config.request_timeout_secs.max(1)
        ),
        None,
    );
    e.extensions.get_or_insert_with(Default::default).set("code", REQUEST_TIMEOUT_CODE);
    e
}

/// Runs a query or mutation within `REQUEST_TIMEOUT_SECS` and caps its errors at
/// `GRAPHQL_MAX_ERRORS`; `None` when it ran out of time (its work is dropped, a transaction
/// rolled back).
pub async fn execute_bounded(
    schema: &AppSchema,
    config: &Config,
    req: async_graphql::Request,
) -> Option<async_graphql::Response> {
    let timeout = std::time::Duration::from_secs(config.request_timeout_secs.max(1));
    let mut resp = tokio::time::timeout(timeout, schema.execute(req)).await.ok()?;
    limits::cap_errors(&mut resp.errors, config.graphql_max_errors);
    Some(resp)
}

/// The SDL that `schema.graphql` holds.
pub fn sdl() -> String {
    schema_builder(&Config::defaults()).finish().sdl()
}

/// The schema bound to the running app.
pub fn build(state: AppState) -> AppSchema {
    schema_builder(&state.config).data(state).finish()
}

/// Helpers on the resolver context.
pub trait ContextExt {
    /// The running app.
    fn state(&self) -> &AppState;
    /// The authenticated caller, or `UNAUTHENTICATED`.
    fn caller(&self) -> AppResult<&Caller>;
}

impl ContextExt for Context<'_> {
    fn state(&self) -> &AppState {
        self.data_unchecked::<AppState>()
    }

    fn caller(&self) -> AppResult<&Caller> {
        match self.data_opt::<Auth>() {
            Some(auth) => auth.caller(),
            None => Auth::Anonymous.caller(),
        }
    }
}

/// A caller whose token is valid and whose account exists, with that account.
pub struct Reader {
    /// Who is calling.
    pub caller: Caller,
    /// The caller's account.
    pub account: entity::account::Model,
}

/// Any valid token of an existing account (reads).
pub async fn reader(ctx: &Context<'_>) -> AppResult<Reader> {
    let caller = ctx.caller()?.clone();
    let account = db::accounts::get(&ctx.state().db, caller.account_id)
        .await?
        .ok_or_else(|| AppError::Unauthenticated("the token's account does not exist".into()))?;
    Ok(Reader { caller, account })
}

/// A reader that holds `manage_tenant_settings` (every mutation).
pub async fn manager(ctx: &Context<'_>) -> AppResult<Reader> {
    let r = reader(ctx).await?;
    if !r.caller.can_manage() {
        return Err(AppError::Forbidden(
            "This action needs the Manage Tenant Settings permission (manage_tenant_settings).".into(),
        ));
    }
    Ok(r)
}

/// A manager on an account with the Microsoft 365 tab (Microsoft 365 mutations).
pub async fn m365_manager(ctx: &Context<'_>) -> AppResult<Reader> {
    let r = manager(ctx).await?;
    if !r.account.m365_enabled {
        return Err(AppError::FeatureDisabled);
    }
    Ok(r)
}

/// Appends to the caller's audit trail after a mutation succeeded. A failure to record is
/// logged, not returned: the action itself is done and must not be reported as failed.
pub async fn audit(ctx: &Context<'_>, r: &Reader, kind: crate::audit::AuditKind, detail: serde_json::Value) {
    let app = ctx.state();
    if let Err(e) = crate::audit::record(&app.db, r.account.id, kind, &r.caller.user, detail, app.clock.now()).await {
        tracing::error!(error = %e, account_id = r.account.id, kind = kind.as_str(), "recording an audit event failed");
    }
}

/// A reader on an account with the Microsoft 365 tab (Microsoft 365 reads).
pub async fn m365_reader(ctx: &Context<'_>) -> AppResult<Reader> {
    let r = reader(ctx).await?;
    if !r.account.m365_enabled {
        return Err(AppError::FeatureDisabled);
    }
    Ok(r)
}
