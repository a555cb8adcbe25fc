//! GraphQL object types shared by several domains, and the Relay connection plumbing.

pub mod audit;
pub mod client;
pub mod coverage;
pub mod evidence;
pub mod integration;
pub mod tenant;
pub mod user;

use async_graphql::{ID, SimpleObject};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};

use crate::error::{AppError, AppResult};

/// Default page size when `first` is omitted.
pub const DEFAULT_PAGE: i32 = 50;
/// Largest page a caller may ask for.
pub const MAX_PAGE: i32 = 500;

/// Relay page information.
#[derive(Clone, Debug, SimpleObject)]
pub struct PageInfo {
    /// Whether more items follow this page.
    pub has_next_page: bool,
    /// Whether items precede this page (true when `after` was given).
    pub has_previous_page: bool,
    /// Cursor of the first item on this page; null when the page is empty.
    pub start_cursor: Option<String>,
    /// Cursor of the last item; pass it as `after` for the next page. Null when the page is empty.
    pub end_cursor: Option<String>,
}

/// A validated `first` / `after` pair.
#[derive(Clone, Copy, Debug)]
pub struct PageArgs {
    /// Items wanted.
    pub first: u64,
    /// Id after which the page starts.
    pub after: Option<i64>,
}

impl PageArgs {
    /// Checks `first` (0..=500) and decodes `after`; anything else is `BAD_USER_INPUT`.
    pub fn parse(first: Option<i32>, after: Option<String>, kind: &str) -> AppResult<Self> {
        let first = first.unwrap_or(DEFAULT_PAGE);
        if !(0..=MAX_PAGE).contains(&first) {
            return Err(AppError::bad_input("first", format!("first must be between 0 and {MAX_PAGE}, got {first}")));
        }
        let after = after.map(|c| decode_cursor(&c, kind)).transpose()?;
        Ok(Self { first: first as u64, after })
    }
}

/// Complexity of a list field: `first` (clamped to the cap, so an oversized `first` reaches the
/// resolver and gets `BAD_USER_INPUT`) times the cost of one item.
pub fn list_complexity(first: Option<i32>, child: usize) -> usize {
    (first.unwrap_or(DEFAULT_PAGE).clamp(1, MAX_PAGE) as usize).saturating_mul(child.max(1))
}

/// Whether the query asks for `totalCount` (counting a large list is the costly part of a page).
pub fn wants_total(ctx: &async_graphql::Context<'_>) -> bool {
    ctx.look_ahead().field("totalCount").exists()
}

/// An opaque cursor for an item of `kind` with row id `id`.
pub fn encode_cursor(kind: &str, id: i64) -> String {
    URL_SAFE_NO_PAD.encode(format!("{kind}:{id}"))
}

/// Decodes a cursor made by [`encode_cursor`] for the same kind.
pub fn decode_cursor(cursor: &str, kind: &str) -> AppResult<i64> {
    URL_SAFE_NO_PAD
        .decode(cursor.trim())
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| s.strip_prefix(&format!("{kind}:")).and_then(|id| id.parse().ok()))
        .ok_or_else(|| AppError::bad_input("after", "after is not a cursor of this list"))
}

/// Parses a GraphQL `ID` of our rows.
pub fn parse_id(id: &ID, field: &str) -> AppResult<i64> {
    id.parse::<i64>().map_err(|_| AppError::bad_input(field, format!("{field} is not a valid id")))
}

/// Builds a connection page from rows fetched with `limit = first + 1`.
pub fn page_of<T, N>(
    mut rows: Vec<T>,
    args: PageArgs,
    kind: &str,
    id_of: impl Fn(&T) -> i64,
    node: impl Fn(T) -> N,
) -> (Vec<(String, N)>, PageInfo) {
    let has_next_page = rows.len() as u64 > args.first;
    rows.truncate(args.first as usize);
    let edges: Vec<(String, N)> = rows.into_iter().map(|r| (encode_cursor(kind, id_of(&r)), node(r))).collect();
    let info = PageInfo {
        has_next_page,
        has_previous_page: args.after.is_some(),
        start_cursor: edges.first().map(|e| e.0.clone()),
        end_cursor: edges.last().map(|e| e.0.clone()),
    };
    (edges, info)
}

/// Declares `XConnection` and `XEdge` for a node type, with descriptions.
#[macro_export]
macro_rules! connection {
    ($conn:ident, $edge:ident, $node:ty, $doc_conn:literal, $doc_edge:literal) => {
        $crate::connection!(@with $conn, $edge, $node, $doc_conn, $doc_edge, Vec<$edge>, std::convert::identity);
    };
    // The edges held in `$edges`, a wrapper over `Vec<$edge>` with its own resolver (see
    // `graphql::fast`).
    ($conn:ident, $edge:ident, $node:ty, $doc_conn:literal, $doc_edge:literal, edges = $edges:ident) => {
        $crate::connection!(@with $conn, $edge, $node, $doc_conn, $doc_edge, $edges, $edges);
    };
    (@with $conn:ident, $edge:ident, $node:ty, $doc_conn:literal, $doc_edge:literal, $edges_ty:ty, $wrap:expr) => {
        #[doc = $doc_conn]
        #[derive(async_graphql::SimpleObject)]
        pub struct $conn {
            /// The items on this page, in a stable order, each with its cursor.
            pub edges: $edges_ty,
            /// Where this page sits in the whole list.
            pub page_info: $crate::graphql::types::PageInfo,
            /// How many items match, across all pages.
            pub total_count: i64,
        }

        #[doc = $doc_edge]
        #[derive(async_graphql::SimpleObject)]
        pub struct $edge {
            /// Opaque cursor; pass it as `after` to get the items that follow.
            pub cursor: String,
            /// The item.
            pub node: $node,
        }

        impl $conn {
            /// Wraps a page built by `page_of`.
            pub fn new(
                edges: Vec<(String, $node)>,
                page_info: $crate::graphql::types::PageInfo,
                total_count: u64,
            ) -> Self {
                Self {
                    edges: $wrap(edges.into_iter().map(|(cursor, node)| $edge { cursor, node }).collect()),
                    page_info,
                    total_count: total_count as i64,
                }
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_are_kind_bound() {
        let c = encode_cursor("client", 42);
        assert_eq!(decode_cursor(&c, "client").unwrap(), 42);
        assert!(decode_cursor(&c, "user").is_err());
        assert!(decode_cursor("garbage!", "client").is_err());
    }

    #[test]
    fn first_bounds() {
        assert_eq!(PageArgs::parse(None, None, "x").unwrap().first, 50);
        assert!(PageArgs::parse(Some(501), None, "x").is_err());
        assert!(PageArgs::parse(Some(-1), None, "x").is_err());
        assert_eq!(list_complexity(Some(1_000_000), 2), 1000);
    }
}
