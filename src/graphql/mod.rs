//! The GraphQL schema: roots merged from per-domain objects, limits, and the helpers every
//! resolver uses to find its caller. `schema_builder()` needs no runtime data, so `schema`
//! and the SDL test can print it.

pub mod fast;
pub mod limits;
pub mod loaders;
pub mod mutation;
pub mod parsed;
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
            .limit_directives(config.graphql_max_directives);
    // No schema extensions: with any registered, async-graphql looks every field's type up by
    // name and runs it through the extension chain (a profile of the users page put that near a
    // tenth of the request). The document limits and the operation metrics run once per request
    // instead, in [`prepare`] and its callers.
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

/// Checks a request's document against the document limits before the parser sees it (the
/// parser's recursion is what a hostile document attacks) and after, parses it once (the parsed
/// document rides on the request, so execution does not parse again; a document seen before is
/// taken from [`parsed`], skipping the checks it passed then), and says which kind of
/// operation it runs (`query`, `mutation` or `subscription`). An error is answered like a parse
/// error: no `data`, the error with its code; it is counted as an `invalid` operation.
pub fn prepare(config: &Config, req: &mut async_graphql::Request) -> Result<&'static str, async_graphql::ServerError> {
    use async_graphql::parser::types::{DocumentOperations, OperationType};
    let limits = document_limits(config);
    let checked = (|| {
        let name = req.operation_name.clone();
        // A document seen before passed these limits then: its parse is reused.
        let cached = parsed::global().get(limits, &req.query);
        let outcome = if cached.is_some() { "hit" } else { "miss" };
        metrics::counter!("graphql_parse_cache_total", "outcome" => outcome).increment(1);
        let doc = match cached {
            Some(doc) => {
                req.set_parsed_query(doc);
                req.parsed_query()?
            }
            None => {
                limits.scan(&req.query).map_err(limits::LimitError::into_server_error)?;
                let doc = async_graphql::parser::parse_query(&req.query).map_err(async_graphql::ServerError::from)?;
                limits.check(&doc).map_err(limits::LimitError::into_server_error)?;
                parsed::global().put(limits, &req.query, &doc);
                req.set_parsed_query(doc);
                req.parsed_query()?
            }
        };
        let ty = match &doc.operations {
            DocumentOperations::Single(op) => Some(op.node.ty),
            DocumentOperations::Multiple(ops) => match &name {
                Some(n) => ops.iter().find(|(k, _)| k.as_str() == n).map(|(_, op)| op.node.ty),
                None if ops.len() == 1 => ops.values().next().map(|op| op.node.ty),
                // Validation says which operation is missing or ambiguous.
                None => None,
            },
        };
        Ok(match ty {
            Some(OperationType::Mutation) => "mutation",
            Some(OperationType::Subscription) => "subscription",
            _ => "query",
        })
    })();
    if checked.is_err() {
        metrics::counter!("graphql_operations_total", "operation" => "invalid", "outcome" => "error").increment(1);
    }
    checked
}

/// Runs a query or mutation within `REQUEST_TIMEOUT_SECS` and caps its errors at
/// `GRAPHQL_MAX_ERRORS`; `None` when it ran out of time (its work is dropped, a transaction
/// rolled back).
pub async fn execute_bounded(
    schema: &AppSchema,
    config: &Config,
    req: async_graphql::Request,
) -> Option<async_graphql::Response> {
    let mut req = req;
    let kind = match prepare(config, &mut req) {
        Ok(kind) => kind,
        Err(e) => return Some(async_graphql::Response::from_errors(vec![e])),
    };
    let timeout = std::time::Duration::from_secs(config.request_timeout_secs.max(1));
    let start = std::time::Instant::now();
    let mut resp = tokio::time::timeout(timeout, schema.execute(req)).await.ok()?;
    let outcome = if resp.is_ok() { "ok" } else { "error" };
    metrics::counter!("graphql_operations_total", "operation" => kind, "outcome" => outcome).increment(1);
    metrics::histogram!("graphql_operation_duration_seconds", "operation" => kind)
        .record(start.elapsed().as_secs_f64());
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
