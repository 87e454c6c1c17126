//! Server-function declarations. Bodies only fetch the domain service from
//! context and call it.

use leptos::prelude::*;
use model::Overview;

/// What the server provides to server functions (see server/src/router.rs).
#[cfg(feature = "ssr")]
#[derive(Clone)]
pub struct ServerContext {
    pub overview: std::sync::Arc<domain::overview::OverviewService>,
}

/// Everything the Overview shows: topology, history, HAProxy, endpoints.
#[server(endpoint = "overview")]
pub async fn get_overview() -> Result<Overview, ServerFnError> {
    let ctx = expect_context::<ServerContext>();
    Ok(ctx.overview.overview().await)
}
