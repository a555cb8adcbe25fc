//! The subscription root: one object per domain, merged.

mod sync;

use async_graphql::MergedSubscription;

/// Live updates over `/graphql/ws` (graphql-transport-ws or the legacy graphql-ws). The token
/// goes in the `connection_init` payload.
#[derive(Default, MergedSubscription)]
pub struct Subscription(sync::SyncSubscription);
