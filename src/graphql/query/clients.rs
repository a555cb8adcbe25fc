//! `clients`.

use async_graphql::{Context, Object};

use crate::graphql::types::wants_total;

use crate::{
    db,
    error::AppResult,
    graphql::{
        ContextExt, reader,
        types::{
            PageArgs,
            client::{Client, ClientConnection},
            list_complexity, page_of,
        },
    },
};

#[derive(Default)]
pub struct ClientsQuery;

#[Object]
impl ClientsQuery {
    /// The MSP's clients, oldest first, each with its contacts.
    /// Errors: `UNAUTHENTICATED`, `BAD_USER_INPUT` (`first` above 500, bad cursor).
    #[graphql(complexity = "list_complexity(first, child_complexity)")]
    async fn clients(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Page size, 0 to 500 (default 50).")] first: Option<i32>,
        #[graphql(desc = "Cursor of the item after which the page starts.")] after: Option<String>,
        #[graphql(desc = "Case-insensitive substring of the client name.")] search: Option<String>,
    ) -> AppResult<ClientConnection> {
        let r = reader(ctx).await?;
        let args = PageArgs::parse(first, after, "client")?;
        let (rows, total) = db::clients::page(
            &ctx.state().db,
            r.account.id,
            search.as_deref(),
            args.after,
            args.first + 1,
            wants_total(ctx),
        )
        .await?;
        let (edges, info) = page_of(rows, args, "client", |m| m.id, Client::from);
        Ok(ClientConnection::new(edges, info, total))
    }
}
